import Foundation
import TestSupport
import JSON
import Testing
import Alignment
import Retrieval
@testable import Preference

/// A similarity that answers from a list, call by call: for the cases the real encoder cannot be steered into
/// (exactly tau, a pair only at the third image).
final class ScriptedSimilarity: TextSimilarity, @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double]
    init(_ values: [Double]) { self.values = values }
    func similarity(_ a: String, _ b: String) async throws -> Double { lock.withLock { values.removeFirst() } }
}

@Suite(.serialized) struct PipelineTests {
    let shared = Shared.instance

    @Test func realFilterKeepsOnlyCompletionsBelowTau() async throws {
        let pipeline = shared.pipeline()
        var kept = 0
        for sample in shared.samples {
            let neighbours = try await pipeline.retriever.neighbours(of: sample.image, k: 5)
            guard case .kept(let record) = await pipeline.process(sample) else { continue }
            let json = record.json
            kept += 1
            let chosen = try #require(json["chosen"]?.stringValue), rejected = try #require(json["rejected"]?.stringValue)
            let masked = try #require(json["masked"]?.stringValue)
            let similarity = try #require(json["similarity"]?.doubleValue)
            #expect(similarity < 0.95)
            // The similarity is MiniLM's cosine of the two texts.
            #expect(abs(try shared.encoder.similarity(chosen, rejected) - similarity) < 1e-5)
            // The rejected answer is the masked one with its masks filled: the text around the masks is kept.
            #expect(MaskedText(masked).fills(matching: rejected) != nil)
            try validateMask(original: chosen, masked: masked)
            // Rank and score are those of the retrieved image among the others (self excluded).
            let rank = try #require(json["retrieval_rank"]?.intValue)
            #expect(json["retrieved_image"]?.stringValue == neighbours[rank - 1].path)
            #expect(neighbours[rank - 1].path != sample.image)
            #expect(abs((json["retrieval_score"]?.doubleValue ?? 0) - Double(neighbours[rank - 1].score)) < 1e-5)
        }
        #expect(kept >= 6, "only \(kept) of 12 pairs")
    }

    @Test func nothingPassesANegativeTau() async throws {
        let pipeline = shared.pipeline(tau: -1, k: 3)
        let outcome = await pipeline.process(shared.samples[0])
        guard case .skipped(let id, let kind, let reason) = outcome else { Issue.record("a pair passed tau -1"); return }
        #expect(id == "s00" && kind == "unpaired")
        #expect(reason.contains("rank 1: cosine") && reason.contains("rank 2: cosine") && reason.contains("rank 3: cosine"))
    }

    @Test func triesImagesInRankOrderUntilBelowTau() async throws {
        let sample = shared.samples[1]
        let neighbours = try await shared.pipeline().retriever.neighbours(of: sample.image, k: 5)
        #expect(neighbours.map(\.rank) == [1, 2, 3, 4, 5])
        #expect(zip(neighbours, neighbours.dropFirst()).allSatisfy { $0.score >= $1.score })
        #expect(!neighbours.contains { $0.path == sample.image })
        // 0.95 is not below tau 0.95; the third image's completion is.
        let pipeline = shared.pipeline(similarity: ScriptedSimilarity([0.99, 0.95, 0.4]), tau: 0.95)
        guard case .kept(let record) = await pipeline.process(sample) else { Issue.record("no pair"); return }
        let json = record.json
        #expect(json["retrieval_rank"]?.intValue == 3)
        #expect(json["retrieved_image"]?.stringValue == neighbours[2].path)
        #expect(json["similarity"]?.doubleValue == 0.4)
        // Candidates run out: the record is kept aside with its reason.
        let none = shared.pipeline(similarity: ScriptedSimilarity([0.99, 0.98]), tau: 0.95, k: 2)
        guard case .skipped(_, "unpaired", let reason) = await none.process(sample) else { Issue.record("expected unpaired"); return }
        #expect(reason.contains("over 2 images"))
    }

    @Test func concurrencyAndResumeGiveTheSameFile() async throws {
        let pipeline = shared.pipeline()
        let folder = temporaryFolder()
        var files: [String] = []
        for concurrency in [1, 4] {
            let path = folder + "/c\(concurrency).jsonl"
            let output = try ResumableOutput(path: path)
            _ = try await RecordRunner(concurrency: concurrency).run(shared.samples, output: output) { await pipeline.process($0) }
            files.append(path)
        }
        let one = try #require(FileManager.default.contents(atPath: files[0]))
        #expect(one == FileManager.default.contents(atPath: files[1]))
        #expect(FileManager.default.contents(atPath: ResumableOutput.skippedPath(for: files[0])) == FileManager.default.contents(atPath: ResumableOutput.skippedPath(for: files[1])))

        // A run cut after five records and in the middle of the sixth line resumes to the same file.
        let lines = one.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let partial = folder + "/partial.jsonl"
        var head = Data(lines.prefix(5).joined(separator: [UInt8(ascii: "\n")])) + Data("\n".utf8)
        head += lines[5].prefix(30)
        try head.write(to: URL(fileURLWithPath: partial))
        let output = try ResumableOutput(path: partial)
        #expect(output.done.count == 5 + jsonLines(ResumableOutput.skippedPath(for: partial)).count)
        let counted = CallCounter()
        _ = try await RecordRunner(concurrency: 2).run(shared.samples, output: output) { sample in
            counted.add()
            return await pipeline.process(sample)
        }
        #expect(counted.value == shared.samples.count - 5)
        #expect(FileManager.default.contents(atPath: partial) == one)
    }

    @Test func badInputLinesAreRecordedAndTheRestGoesOn() async throws {
        let folder = temporaryFolder()
        let source = repoPath("PreferenceTests/Fixtures/shapes")
        let input = folder + "/in.jsonl"
        try """
            {"id": "a", "image": "\(source)/images/00-red-circle.png", "prompt": "Describe the image.", "chosen": "A red circle on a white background."}
            {"id": "b", "image": "images/missing.png", "prompt": "Describe the image.", "chosen": "A blue square."}
            this is not json
            {"id": "c", "image": "\(source)/images/01-blue-square.png", "prompt": "Describe the image."}
            {"id": "a", "image": "\(source)/images/02-green-triangle.png", "prompt": "again", "chosen": "Three green triangles."}
            {"id": "d", "image": "\(source)/images/03-yellow-circle.png", "chosen": "Yellow circles."}
            {"id": "e", "image": "\(source)/images/04-purple-square.png", "prompt": "Say it.", "chosen": "It is what it is."}

            """.write(toFile: input, atomically: true, encoding: .utf8)
        let (samples, problems) = try SampleReader.read(input)
        #expect(samples.map(\.id) == ["a", "b", "c", "e"])
        #expect(samples[1].image == folder + "/images/missing.png")
        let output = try ResumableOutput(path: folder + "/out.jsonl")
        let progress = try await RecordRunner(concurrency: 2).run(samples, problems: problems, output: output) { await shared.pipeline().process($0) }
        let skipped = jsonLines(output.skippedPath)
        let reasons = Dictionary(skipped.map { ($0["id"] as! String, $0["reason"] as! String) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons["line-3"]?.contains("in.jsonl:3: not valid JSON") == true)
        #expect(reasons["a#line-5"]?.contains("duplicate id") == true)
        #expect(reasons["d"]?.contains("missing 'prompt'") == true)
        #expect(reasons["b"]?.contains("no such image file") == true)
        #expect(reasons["c"]?.contains("no 'chosen'") == true)
        // "It is what it is." names nothing the rule masker knows: an invalid mask, recorded.
        #expect(reasons["e"]?.contains("invalid mask") == true)
        #expect(progress.kept + progress.unpaired + progress.failed == 7)
        #expect(Set(jsonLines(output.path).map { $0["id"] as! String }).isSubset(of: ["a"]))
    }

    @Test func outputTrainsWithRDPO() async throws {
        let folder = temporaryFolder()
        let out = folder + "/prefs.jsonl"
        let output = try ResumableOutput(path: out)
        let pipeline = shared.pipeline()
        _ = try await RecordRunner(concurrency: 2).run(shared.samples, output: output) { await pipeline.process($0) }
        let (records, problems) = try PreferenceData.load(out, imageRoot: "/nonexistent-root", requireRejected: true)
        #expect(problems.isEmpty)
        #expect(records.count == jsonLines(out).count && records.count >= 6)
        #expect(records.allSatisfy { $0.retrievedImage != nil && $0.image != $0.retrievedImage })
        let run = try runRealign(["train", "--model", tinyLlava, "--data", out, "--out", folder + "/train", "--objective", "rdpo",
                                  "--steps", "1", "--grad-accum", "2", "--lora-r", "4", "--lora-alpha", "8", "--save-steps", "1"])
        #expect(run.status == 0, "\(run.stderr.suffix(500))")
        #expect(FileManager.default.fileExists(atPath: folder + "/train/adapter/adapter_model.safetensors"))
    }
}

final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
