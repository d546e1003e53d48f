import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
import JSON
import Alignment
#endif
import TestSupport
import Testing
@testable import Preference

/// `realign build-prefs` and `realign serve` as a user runs them.
@Suite(.serialized) struct CommandTests {
    static let key = "sk-serve-KEY-93be01"

    func buildPrefs(_ out: String, _ extra: [String] = [], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        try runRealign(["build-prefs", "--input", samplesFile, "--out", out, "--model", tinyLlava, "--sentence-model", try miniLMFolder(),
                        "--concurrency", "2"] + extra, environment: environment)
    }

    /// Starts `realign serve` on a free port; returns the process and its base URL.
    func serve(_ extra: [String] = []) throws -> (Process, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = ["serve", "--model", tinyLlava, "--port", "0", "--api-key-env", "REALIGN_SERVE_KEY"] + extra
        var env = ProcessInfo.processInfo.environment
        env["REALIGN_SERVE_KEY"] = Self.key
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let r = text.range(of: #"listening on (http://[0-9.]+:[0-9]+/v1)"#, options: .regularExpression) {
                let url = String(text[r].dropFirst("listening on ".count))
                // Keep draining stderr so the server never blocks on a full pipe.
                Thread { while !err.fileHandleForReading.availableData.isEmpty {} }.start()
                return (p, url)
            }
        }
        p.terminate()
        throw PipelineError("realign serve did not start: \(text)")
    }

    func post(_ url: String, _ body: Data, key: String? = CommandTests.key) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test func servedModelGivesTheSamePairsAsTheLocalOne() async throws {
        let folder = temporaryFolder()
        let local = try buildPrefs(folder + "/local.jsonl")
        #expect(local.status == 0, "\(local.stderr.suffix(400))")
        let (server, url) = try serve()
        defer { server.terminate(); server.waitUntilExit() }
        let remote = try buildPrefs(folder + "/remote.jsonl", ["--inducer", "openai:\(url)", "--api-key-env", "REALIGN_CLIENT_KEY", "--index", folder + "/local.jsonl.index"],
                                    environment: ["REALIGN_CLIENT_KEY": Self.key])
        #expect(remote.status == 0, "\(remote.stderr.suffix(400))")
        #expect(!remote.stderr.contains(Self.key))
        let pairs = jsonLines(folder + "/local.jsonl")
        #expect(pairs.count >= 6)
        // Greedy generation over HTTP (images as base64 PNG) fills the masks exactly as in-process generation.
        #expect(FileManager.default.contents(atPath: folder + "/local.jsonl") == FileManager.default.contents(atPath: folder + "/remote.jsonl"))
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/remote.summary.json"))) as? [String: Any])
        let usage = try #require(summary["usage"] as? [String: [String: Int]])
        #expect(usage.values.contains { $0["requests"] ?? 0 > 0 && $0["completion_tokens"] ?? 0 > 0 })
    }

    /// build-prefs takes another tool's preference file as its input (prompts, images and chosen answers): the
    /// samples written as LLaMA-Factory records give the same pairs as the samples themselves.
    @Test func buildPrefsReadsOtherToolsForms() throws {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let samples = try PreferenceData.load(samplesFile, requireRejected: false).records
        try PreferenceExport.write(samples, as: .llamafactory, to: folder + "/samples_lf.json")
        let local = try buildPrefs(folder + "/local.jsonl")
        #expect(local.status == 0, "\(local.stderr.suffix(400))")
        let converted = try runRealign(["build-prefs", "--input", folder + "/samples_lf.json", "--format", "llamafactory", "--out", folder + "/lf.jsonl",
                                        "--model", tinyLlava, "--sentence-model", try miniLMFolder(), "--concurrency", "2", "--index", folder + "/local.jsonl.index"])
        #expect(converted.status == 0, "\(converted.stderr.suffix(400))")
        #expect(!jsonLines(folder + "/local.jsonl").isEmpty)
        #expect(FileManager.default.contents(atPath: folder + "/local.jsonl") == FileManager.default.contents(atPath: folder + "/lf.jsonl"))
    }

    @Test func serverAnswersBadRequestsWith4xx() async throws {
        let (server, url) = try serve(["--max-body-mib", "1"])
        defer { server.terminate(); server.waitUntilExit() }
        let chat = url + "/chat/completions"
        let ok = Data(#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}"#.utf8)
        #expect(try await post(chat, ok).0 == 200)
        #expect(try await post(chat, ok, key: nil).0 == 401)
        #expect(try await post(chat, ok, key: "wrong").0 == 401)
        let (status, body) = try await post(chat, Data("{\"messages\": [".utf8))
        #expect(status == 400 && body.contains("not JSON"))
        #expect(try await post(chat, Data(#"{"model": "other", "messages": [{"role": "user", "content": "hi"}]}"#.utf8)).0 == 404)
        // What the server does not honour is refused, naming the field, never silently ignored.
        for (field, value) in [("response_format", #"{"type": "json_object"}"#), ("tools", #"[{"type": "function", "function": {"name": "f"}}]"#),
                               ("frequency_penalty", "0.5"), ("logit_bias", #"{"42": 10}"#), ("top_k", "3"), ("top_logprobs", "2")] {
            let (status, body) = try await post(chat, Data(#"{"messages": [{"role": "user", "content": "hi"}], "\#(field)": \#(value)}"#.utf8))
            #expect(status == 400 && body.contains(field), "\(field): \(status) \(body)")
        }
        #expect(try await post(chat, Data(#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "response_format": {"type": "text"}}"#.utf8)).0 == 200)
        #expect(try await post(chat, Data(#"{"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}}"#.utf8)).0 == 400)
        #expect(try await post(chat, Data(#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}]}]}"#.utf8)).0 == 400)
        #expect(try await post(chat, Data(#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}"#.utf8)).0 == 400)
        let huge = Data(("{\"messages\": [{\"role\": \"user\", \"content\": \"" + String(repeating: "a", count: 2 << 20) + "\"}]}").utf8)
        #expect(try await post(chat, huge).0 == 413)
        var models = URLRequest(url: URL(string: url + "/models")!)
        models.setValue("Bearer \(Self.key)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: models)
        #expect(String(decoding: data, as: UTF8.self).contains("\"id\": \"tiny-llava\""))
    }

    /// Streaming as OpenAI clients read it: server-sent events whose deltas make the same answer as the plain
    /// request, the tokens' logprobs (equal to the plain answer's), the finish reason, the usage chunk, [DONE].
    @Test func serverStreamsChunksAndLogprobs() async throws {
        let (server, url) = try serve()
        defer { server.terminate(); server.waitUntilExit() }
        let chat = url + "/chat/completions"
        let ask = #"{"messages": [{"role": "user", "content": "Describe the picture."}], "max_tokens": 12, "logprobs": true, "top_logprobs": 3"#
        let (status, plainBody) = try await post(chat, Data((ask + "}").utf8))
        #expect(status == 200)
        let plain = try JSONValue.parse(Array(plainBody.utf8))
        let answer = try #require(plain["choices"]?.arrayValue?.first)
        let content = try #require(answer["message"]?["content"]?.stringValue)
        let plainLogprobs = try #require(answer["logprobs"]?["content"]?.arrayValue)
        #expect(plainLogprobs.count == plain["usage"]?["completion_tokens"]?.intValue)
        #expect(plainLogprobs.allSatisfy { $0["top_logprobs"]?.arrayValue?.count == 3 && ($0["logprob"]?.doubleValue ?? 1) <= 0 })
        // The chosen token's logprob is at least the best alternative's (greedy picks the most likely).
        #expect(plainLogprobs.allSatisfy { abs(($0["logprob"]?.doubleValue ?? 0) - ($0["top_logprobs"]?.arrayValue?.first?["logprob"]?.doubleValue ?? 1)) < 1e-9 })

        let (streamStatus, streamBody) = try await post(chat, Data((ask + #", "stream": true, "stream_options": {"include_usage": true}}"#).utf8))
        #expect(streamStatus == 200)
        let events = streamBody.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.allSatisfy { $0.hasPrefix("data: ") })
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map { try JSONValue.parse(Array($0.dropFirst("data: ".count).utf8)) }
        #expect(chunks.allSatisfy { $0["object"]?.stringValue == "chat.completion.chunk" && $0["id"] == chunks[0]["id"] })
        #expect(chunks.first?["choices"]?.arrayValue?.first?["delta"]?["role"]?.stringValue == "assistant")
        let choices = chunks.compactMap { $0["choices"]?.arrayValue?.first }
        let streamed = choices.compactMap { $0["delta"]?["content"]?.stringValue }.joined()
        #expect(Array(streamed.unicodeScalars) == Array(content.unicodeScalars), "streamed \(streamed) vs \(content)")
        let streamedLogprobs = choices.flatMap { $0["logprobs"]?["content"]?.arrayValue ?? [] }
        #expect(streamedLogprobs == plainLogprobs)
        #expect(choices.last?["finish_reason"]?.stringValue == answer["finish_reason"]?.stringValue)
        let usage = try #require(chunks.last?["usage"])
        #expect(chunks.last?["choices"]?.arrayValue?.isEmpty == true && usage == plain["usage"])

        // A stop string from the middle of that answer: no streamed text runs past it.
        let scalars = Array(content.unicodeScalars)
        try #require(scalars.count >= 6)
        let stop = String(String.UnicodeScalarView(scalars[3..<5]))
        let stopped = #"{"messages": [{"role": "user", "content": "Describe the picture."}], "max_tokens": 12, "stop": \#(JSONValue.quoted(stop))"#
        let cut = try JSONValue.parse(Array(try await post(chat, Data((stopped + "}").utf8)).1.utf8))["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
        let cutStream = try await post(chat, Data((stopped + #", "stream": true}"#).utf8)).1
        let cutText = try cutStream.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
            .compactMap { try JSONValue.parse(Array($0.dropFirst(6).utf8))["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        #expect(cut.map { Array($0.unicodeScalars) } == Array(cutText.unicodeScalars) && (cut?.unicodeScalars.count ?? 99) <= 3, "\(String(describing: cut)) vs \(cutText)")
    }

    @Test func failingServerLeavesRecordedFailuresNotACrash() throws {
        let server = try ScriptedServer { _, r in
            .init(status: 500, body: "{\"error\": {\"message\": \"overloaded (\(r.headers["authorization"] ?? ""))\"}}")
        }
        let folder = temporaryFolder()
        let run = try buildPrefs(folder + "/out.jsonl", ["--inducer", "openai:\(server.baseURL)", "--api-key-env", "REALIGN_CLIENT_KEY", "--retries", "1", "--k", "2"],
                                 environment: ["REALIGN_CLIENT_KEY": Self.key])
        #expect(run.status == 0, "\(run.stderr.suffix(400))")
        #expect(!run.stderr.contains(Self.key))
        let skipped = jsonLines(folder + "/out.skipped.jsonl")
        #expect(skipped.count == 12)
        #expect(skipped.allSatisfy { ($0["reason"] as? String)?.contains("HTTP 500") == true && ($0["kind"] as? String) == "failed" })
        #expect(!(try String(contentsOfFile: folder + "/out.skipped.jsonl", encoding: .utf8)).contains(Self.key))
        #expect(jsonLines(folder + "/out.jsonl").isEmpty)
        // Each record: one request, one retry.
        #expect(server.requests.count == 24)
    }

    /// SIGKILL the pipeline at 20 random moments, restarting each time: every id ends up exactly once, and the
    /// files equal an uninterrupted run's.
    @Test func sigkillTwentyTimesThenFinish() throws {
        func lines(_ path: String) -> Int { (FileManager.default.contents(atPath: path) ?? Data()).reduce(0) { $0 + ($1 == 10 ? 1 : 0) } }
        let folder = temporaryFolder()
        let straight = folder + "/straight.jsonl"
        #expect(try buildPrefs(straight).status == 0)
        let index = straight + ".index"
        let killed = folder + "/killed.jsonl"
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        for _ in 0..<20 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try realignExecutable())
            p.arguments = ["build-prefs", "--input", samplesFile, "--out", killed, "--model", tinyLlava, "--sentence-model", try miniLMFolder(),
                           "--index", index, "--concurrency", "2"]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            // A quarter of the kills land while the run starts (loading models and the index); the rest at a random
            // moment once it has written a record, so that every machine, fast or slow, kills it mid-work.
            let before = lines(killed) + lines(folder + "/killed.skipped.jsonl")
            try p.run()
            if Int.random(in: 0..<4, using: &rng) == 0 {
                usleep(UInt32.random(in: 0...300_000, using: &rng))
            } else {
                let deadline = Date().addingTimeInterval(60)
                while p.isRunning && lines(killed) + lines(folder + "/killed.skipped.jsonl") == before && Date() < deadline { usleep(1000) }
                usleep(UInt32.random(in: 0...40_000, using: &rng))
            }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            p.waitUntilExit()
        }
        #expect(try buildPrefs(killed, ["--index", index]).status == 0)
        #expect(kills >= 5, "only \(kills) runs were killed before they finished")
        let ids = jsonLines(killed).map { $0["id"] as! String } + jsonLines(folder + "/killed.skipped.jsonl").map { $0["id"] as! String }
        #expect(ids.count == 12 && Set(ids).count == 12)
        #expect(FileManager.default.contents(atPath: killed) == FileManager.default.contents(atPath: straight))
        #expect(FileManager.default.contents(atPath: folder + "/killed.skipped.jsonl") == FileManager.default.contents(atPath: folder + "/straight.skipped.jsonl"))
    }
}
