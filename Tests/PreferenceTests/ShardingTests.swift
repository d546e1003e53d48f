import Foundation
import Testing
import TestSupport
import Common
@testable import Preference

/// `realign build-prefs` and the eval answer runner split over processes: two local ranks (the built-in launcher, Gloo for the barrier, rank 0
/// merges) and two lone `--shard` runs merged afterwards both write the bytes one process writes, bad input lines
/// and skipped records included; an unfinished shard is named at merge time and finishes on a re-run.
@Suite(.serialized) struct ShardingTests {
    /// The shapes samples with a malformed line, a duplicate id and a sample whose image does not exist.
    func input(_ folder: String) throws -> String {
        let base = URL(fileURLWithPath: samplesFile).deletingLastPathComponent().path
        var lines = try String(contentsOfFile: samplesFile, encoding: .utf8).split(separator: "\n").map(String.init)
        lines = lines.map { $0.replacingOccurrences(of: "\"images/", with: "\"\(base)/images/") }
        lines.insert("{not json", at: 3)
        lines.insert(lines[0], at: 6)
        lines.append(#"{"id": "gone", "image": "/nonexistent/gone.png", "prompt": "Describe the image.", "chosen": "A red circle."}"#)
        let path = folder + "/samples.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func build(_ input: String, _ out: String, _ extra: [String]) throws -> (status: Int32, stderr: String) {
        try runRealign(["build-prefs", "--input", input, "--out", out, "--model", tinyLlava, "--sentence-model", try miniLMFolder(),
                        "--concurrency", "2"] + extra)
    }

    func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    @Test func shardsWriteWhatOneProcessWrites() throws {
        let folder = temporaryFolder("shards")
        let samples = try input(folder)
        let one = folder + "/one.jsonl", ranks = folder + "/ranks.jsonl", lone = folder + "/lone.jsonl"
        let single = try build(samples, one, [])
        #expect(single.status == 0, "\(single.stderr.suffix(400))")
        let kept = jsonLines(one).count, skipped = jsonLines(ResumableOutput.skippedPath(for: one)).count
        #expect(kept >= 10 && skipped == 3, "kept \(kept), skipped \(skipped): the test needs both kinds")

        let parallel = try build(samples, ranks, ["--nproc-per-node", "2"])
        #expect(parallel.status == 0, "\(parallel.stderr.suffix(400))")
        #expect(bytes(ranks) == bytes(one))
        #expect(bytes(ResumableOutput.skippedPath(for: ranks)) == bytes(ResumableOutput.skippedPath(for: one)))

        // Lone shards: merging before shard 1 ran names it and writes nothing; after it, the same bytes.
        #expect(try build(samples, lone, ["--shard", "0/2"]).status == 0)
        let early = try build(samples, lone, ["--merge-shards", "2"])
        #expect(early.status != 0 && early.stderr.contains("shard 1/2"), "\(early.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lone))
        #expect(try build(samples, lone, ["--shard", "1/2"]).status == 0)
        #expect(try build(samples, lone, ["--merge-shards", "2"]).status == 0)
        #expect(bytes(lone) == bytes(one))
        #expect(bytes(ResumableOutput.skippedPath(for: lone)) == bytes(ResumableOutput.skippedPath(for: one)))
    }

    /// The eval answer runner sharded the same ways: the answers file one process writes (an unreadable image's
    /// error record included), and the report from rank 0 alone.
    @Test func shardedAnswersAreTheSingleProcessFile() throws {
        let folder = temporaryFolder("shards-eval")
        let images = URL(fileURLWithPath: samplesFile).deletingLastPathComponent().path + "/images"
        let names = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasSuffix(".png") }.sorted()
        var lines: [String] = []
        for (i, name) in names.prefix(9).enumerated() {
            let shape = ["circle", "square", "triangle"][i % 3]
            lines.append(#"{"question_id": \#(i + 1), "image": "\#(images)/\#(name)", "text": "Is there a \#(shape) in the image?", "label": "\#(i % 2 == 0 ? "yes" : "no")", "category": "random"}"#)
        }
        lines.append(#"{"question_id": 10, "image": "/nonexistent/x.png", "text": "Is there a circle in the image?", "label": "no", "category": "random"}"#)
        let questions = folder + "/pope.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: questions, atomically: true, encoding: .utf8)
        func eval(_ answers: String, _ extra: [String]) throws -> (status: Int32, stderr: String) {
            try runRealign(["eval", "pope", "--questions", questions, "--model", tinyLlava, "--answers-out", answers, "--max-new-tokens", "3",
                            "--batch-size", "3", "--json"] + extra)
        }
        let one = folder + "/one.jsonl", ranks = folder + "/ranks.jsonl", lone = folder + "/lone.jsonl"
        #expect(try eval(one, []).status == 0)
        #expect(jsonLines(one).count == 10)
        let parallel = try eval(ranks, ["--nproc-per-node", "2"])
        #expect(parallel.status == 0, "\(parallel.stderr.suffix(400))")
        #expect(bytes(ranks) == bytes(one))
        #expect(parallel.stderr.components(separatedBy: "merged 2 shards").count == 2)
        #expect(try eval(lone, ["--shard", "1/2"]).status == 0)
        let early = try eval(lone, ["--merge-shards", "2"])
        #expect(early.status != 0 && early.stderr.contains("shard 0/2: 5 record(s)"), "\(early.stderr)")
        #expect(try eval(lone, ["--shard", "0/2"]).status == 0)
        #expect(try eval(lone, ["--merge-shards", "2"]).status == 0)
        #expect(bytes(lone) == bytes(one))
    }

    @Test func shardArgumentsAreChecked() throws {
        for bad in ["2/2", "1", "a/b", "-1/3"] {
            #expect(throws: ShardError.self) { try Shard(parsing: bad) }
        }
        let s = try Shard(parsing: "1/3")
        #expect(s.take(Array(0..<8)) == [1, 4, 7])
        #expect(Shard.outputPath(for: "/x/pairs.jsonl", index: 1, count: 3) == "/x/pairs.shard-1-of-3.jsonl")
        let folder = temporaryFolder("shards-vapr")
        let refused = try runRealign(["build-prefs", "--input", samplesFile, "--out", folder + "/v.jsonl", "--model", tinyLlava,
                                      "--recipe", "vapr", "--editor", "rules", "--shard", "0/2"])
        #expect(refused.status != 0 && refused.stderr.contains("cannot be sharded"), "\(refused.stderr)")
    }
}
