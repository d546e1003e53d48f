import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import Testing
@testable import Preference

/// Every command a user runs, on each backbone's tiny folder, the same way: generate, index, build-prefs, train,
/// generate with the adapter, eval, serve and merge.
@Suite(.serialized) struct BackboneCommandTests {
    static let folders = ["tiny-llava", "tiny-llava-next", "tiny-llava-next-mistral", "qwen_vl/qwen2_vl", "qwen_vl/qwen2_5_vl"]

    /// Runs `realign` to the end; returns its exit status, stdout and stderr.
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Drain stderr on its own thread so neither pipe can fill up and block the child.
        let errText = LockedText()
        let reader = Thread { errText.value = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        reader.start()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        while !errText.done { usleep(10_000) }
        return (p.terminationStatus, stdout, errText.value)
    }

    @Test(arguments: folders)
    func everyCommandRuns(_ name: String) async throws {
        let model = repoPath("ModelsTests/Fixtures/\(name)")
        let folder = temporaryFolder("backbone-\(name.replacingOccurrences(of: "/", with: "-"))")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = repoPath("PreferenceTests/Fixtures/shapes/images")
        let image = images + "/00-red-circle.png"

        let answer = try run(["generate", "--model", model, "--image", image, "--prompt", "Describe the image.", "--max-new-tokens", "6"])
        #expect(answer.status == 0, "\(name) generate: \(answer.stderr.suffix(400))")
        #expect(!answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

        let index = folder + "/kb"
        let built = try run(["index", "build", "--model", model, "--images", images, "--out", index])
        #expect(built.status == 0, "\(name) index build: \(built.stderr.suffix(400))")
        let query = try run(["index", "query", "--index", index, "--model", model, "--image", image, "--k", "2", "--json"])
        #expect(query.status == 0, "\(name) index query: \(query.stderr.suffix(400))")
        #expect(query.stdout.contains("00-red-circle.png"), "\(name): the image itself is not its own nearest neighbour: \(query.stdout)")

        let pairs = folder + "/pairs.jsonl"
        let prefs = try run(["build-prefs", "--input", samplesFile, "--out", pairs, "--model", model, "--sentence-model", try miniLMFolder(),
                             "--index", index, "--concurrency", "2"])
        #expect(prefs.status == 0, "\(name) build-prefs: \(prefs.stderr.suffix(400))")
        #expect(!jsonLines(pairs).isEmpty, "\(name): no pairs")

        let train = folder + "/train"
        let trained = try run(["train", "--model", model, "--data", pairs, "--out", train, "--objective", "rdpo+0.1*sft", "--steps", "2",
                               "--batch-size", "2", "--grad-accum", "1", "--lora-r", "4", "--lora-alpha", "8", "--lr", "1e-3"])
        #expect(trained.status == 0, "\(name) train: \(trained.stderr.suffix(600))")
        let adapter = train + "/adapter"
        #expect(FileManager.default.fileExists(atPath: adapter + "/adapter_model.safetensors"))

        let adapted = try run(["generate", "--model", model, "--adapter", adapter, "--image", image, "--prompt", "Describe the image.",
                               "--max-new-tokens", "6"])
        #expect(adapted.status == 0, "\(name) generate --adapter: \(adapted.stderr.suffix(400))")

        let questions = folder + "/pope.jsonl"
        let lines = [("00-red-circle.png", "Is there a circle in the image?", "yes"), ("01-blue-square.png", "Is there a circle in the image?", "no")]
        try lines.enumerated().map { i, q in
            #"{"question_id": \#(i + 1), "image": "\#(images)/\#(q.0)", "text": "\#(q.1)", "label": "\#(q.2)", "category": "random"}"#
        }.joined(separator: "\n").write(toFile: questions, atomically: true, encoding: .utf8)
        let eval = try run(["eval", "pope", "--questions", questions, "--model", model, "--adapter", adapter, "--answers-out", folder + "/answers.jsonl",
                            "--max-new-tokens", "3", "--json"])
        #expect(eval.status == 0, "\(name) eval pope: \(eval.stderr.suffix(400))")
        #expect(jsonLines(folder + "/answers.jsonl").count == 2)

        let merged = folder + "/merged"
        let merge = try run(["merge", "--model", model, "--adapter", adapter, "--out", merged])
        #expect(merge.status == 0, "\(name) merge: \(merge.stderr.suffix(400))")
        let fromMerged = try run(["generate", "--model", merged, "--image", image, "--prompt", "Describe the image.", "--max-new-tokens", "6"])
        #expect(fromMerged.status == 0 && fromMerged.stdout == adapted.stdout, "\(name): the merged folder answers \(fromMerged.stdout), the adapter \(adapted.stdout)")

        try await serveAnswers(model: model, image: image, name: name)
    }

    func serveAnswers(model: String, image: String, name: String) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = ["serve", "--model", model, "--port", "0"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        var text = "", url: String?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, url == nil {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let r = text.range(of: #"listening on (http://[0-9.]+:[0-9]+/v1)"#, options: .regularExpression) {
                url = String(text[r].dropFirst("listening on ".count))
            }
        }
        let base = try #require(url, "\(name): serve did not start: \(text)")
        Thread { while !err.fileHandleForReading.availableData.isEmpty {} }.start()
        let png = try Data(contentsOf: URL(fileURLWithPath: image)).base64EncodedString()
        let body = #"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,\#(png)"}}, {"type": "text", "text": "Describe the image."}]}], "max_tokens": 4}"#
        var request = URLRequest(url: URL(string: base + "/chat/completions")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let answer = String(decoding: data, as: UTF8.self)
        #expect((response as! HTTPURLResponse).statusCode == 200, "\(name) serve: \(answer)")
        #expect(answer.contains("\"completion_tokens\""))
    }
}

final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var finished = false
    var value: String {
        get { lock.withLock { text } }
        set { lock.withLock { text = newValue; finished = true } }
    }
    var done: Bool { lock.withLock { finished } }
}
