import Common
import Foundation
import JSON
import Jobs
import TestSupport
import Testing

/// `realign run` over the shipped ShapesWorld model: every method x benchmark in the report, the same report
/// after kills at random moments, and bad recipes refused before anything runs.
@Suite(.serialized) struct RunCommandTests {
    func recipe(world: String, model: String, minilm: String) -> String {
        """
        model_name_or_path: \(model)
        seed: 5
        pairs:
          - {name: realign, method: realign, samples: \(world)/samples.jsonl, sentence_model: \(minilm), mask_words: \(world)/mask_words.txt, concurrency: 1}
          - {name: vapr, method: vapr, samples: \(world)/sft.jsonl, editor: rules, editor_lexicon: \(world)/editor_lexicon.json, max_reuse: 100, concurrency: 1}
        training_defaults:
          max_steps: 3
          per_device_train_batch_size: 2
          gradient_accumulation_steps: 1
          learning_rate: 1.0e-3
          lora_rank: 4
          save_steps: 1
        training:
          - {name: rdpo, pairs: realign, pref_loss: rdpo}
          - {name: vapr-dpo, pairs: vapr, pref_loss: "dpo+0.1*sft"}
        benchmarks:
          - {name: adversarial, benchmark: pope, questions: \(world)/pope/pope_adversarial.jsonl, image_root: \(world), max_new_tokens: 4}
          - {name: attributes, benchmark: exact, questions: \(world)/attributes.jsonl, image_root: \(world), max_new_tokens: 6, batch_size: 16}

        """
    }

    /// The report without what a run's place and timing change.
    func comparable(_ folder: String) throws -> String {
        let report = try JSONValue.parse(contentsOf: folder + "/report.json")
        let kept: JSONValue = .object([("models", report["models"] ?? .null), ("pairs", report["pairs"]?.objectValue.map { pairs in
            .object(pairs.map { ($0.0, .object([("pairs", $0.1["pairs"] ?? .null)])) })
        } ?? .null), ("recipe_sha256", report["recipe_sha256"] ?? .null)])
        return kept.serialized().replacingOccurrences(of: folder, with: "OUT")
    }

    @Test func aRecipeRunsEveryMethodOnEveryBenchmarkAndResumesAfterKillsToTheSameReport() throws {
        let root = temporaryFolder("run")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (world, model) = try smallWorld(root)
        let file = root + "/recipe.yaml"
        try recipe(world: world, model: model, minilm: try miniLMFolder()).write(toFile: file, atomically: true, encoding: .utf8)

        let check = try runRealign(["run", file, "--out", root + "/whole", "--check"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/whole"), "--check ran something")

        let whole = try runRealign(["run", file, "--out", root + "/whole"])
        try #require(whole.status == 0, "\(whole.stderr.suffix(3000))")
        let report = try JSONValue.parse(contentsOf: root + "/whole/report.json")
        #expect(report["recipe_sha256"]?.stringValue == sha256Hex(Array(try String(contentsOfFile: file, encoding: .utf8).utf8)))
        #expect(report["recipe"]?.stringValue == (try String(contentsOfFile: file, encoding: .utf8)))
        for name in ["base", "rdpo", "vapr-dpo"] {
            let m = report["models"]?[name]
            #expect(m?["benchmarks"]?["adversarial"]?["overall"]?["accuracy"]?.doubleValue != nil, "\(name)")
            #expect(m?["benchmarks"]?["attributes"]?["accuracy"]?.doubleValue != nil, "\(name)")
            #expect(m?["adapter"]?.isNull == (name == "base"), "\(name)")
        }
        #expect((report["pairs"]?["realign"]?["pairs"]?.intValue ?? 0) > 0)
        let markdown = try String(contentsOfFile: root + "/whole/report.md", encoding: .utf8)
        #expect(markdown.contains("| vapr-dpo |") && markdown.contains("## adversarial (pope, "))
        #expect(try String(contentsOfFile: root + "/whole/report.html", encoding: .utf8).contains("<table>"))

        // Killed at seeded random moments, then finished: the same report, timings aside.
        var generator = SplitMix64(seed: 11)
        var kills = 0
        while true {
            // Five kills at seeded random moments, then left to finish.
            let delay = kills < 5 ? 0.2 + Double(generator.next() % 1200) / 1000 : nil
            let attempt = try runRealign(["run", file, "--out", root + "/resumed"], killAfter: delay)
            if attempt.status == 0 { break }
            #expect(attempt.status == 9, "\(attempt.stderr.suffix(2000))")
            kills += 1
            try #require(kills <= 5, "the run failed after its kills")
        }
        #expect(kills >= 3)
        #expect(try comparable(root + "/resumed") == comparable(root + "/whole"))

        // Another recipe in the same folder is refused.
        try (recipe(world: world, model: model, minilm: try miniLMFolder()) + "# changed\n").write(toFile: file, atomically: true, encoding: .utf8)
        let other = try runRealign(["run", file, "--out", root + "/whole"])
        #expect(other.status != 0 && other.stderr.contains("holds a run of another recipe"), "\(other.stderr)")
    }

    @Test func badRecipesAreRefusedWithKeyAndLineBeforeAnythingRuns() throws {
        let root = temporaryFolder("badrun")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/r.yaml"
        try "model_name_or_path: \(root)\noutput_dir: out\ntraining_defaults:\n  learning_rate: high\n".write(toFile: file, atomically: true, encoding: .utf8)
        let typed = try runRealign(["run", file])
        #expect(typed.status != 0 && typed.stderr.contains("r.yaml:4:18: training_defaults.learning_rate: expected a number, got 'high'"), "\(typed.stderr)")
        try "model_name_or_path: \(root)\noutput_dir: out\nbenchmark:\n  - {}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let unknown = try runRealign(["run", file, "--check"])
        #expect(unknown.status != 0 && unknown.stderr.contains("r.yaml:3:1: benchmark: unknown key (did you mean 'benchmarks'?)"), "\(unknown.stderr)")
        try "model_name_or_path: \(root)\noutput_dir: out\n".write(toFile: file, atomically: true, encoding: .utf8)
        let missing = try runRealign(["run", file])
        #expect(missing.status != 0 && missing.stderr.contains("model_name_or_path: \(root)/config.json does not exist"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/out"))
        let printed = try runRealign(["run", "--print-default"])
        #expect(printed.status == 0)
    }

    @Test func aResumedBuildReportsTheWholeJobsBackendUsage() throws {
        let root = temporaryFolder("ledger")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (world, model) = try smallWorld(root)
        func build(_ out: String, killWhenPairs: Int? = nil) throws -> Int32 {
            let arguments = ["build-prefs", "--input", world + "/samples.jsonl", "--out", out, "--model", model, "--sentence-model", try miniLMFolder(),
                             "--mask-words", world + "/mask_words.txt", "--concurrency", "1"]
            guard let killWhenPairs else { return try runRealign(arguments).status }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try realignExecutable())
            p.arguments = arguments
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            while p.isRunning {
                let lines = (try? String(contentsOfFile: out, encoding: .utf8))?.split(separator: "\n").count ?? 0
                if lines >= killWhenPairs { kill(p.processIdentifier, SIGKILL); break }
                usleep(5_000)
            }
            p.waitUntilExit()
            return p.terminationStatus
        }
        func requests(_ out: String) throws -> Int {
            let summary = try JSONValue.parse(contentsOf: out.replacingOccurrences(of: ".jsonl", with: ".summary.json"))
            return summary["usage"]?.objectValue?.first?.1["requests"]?.intValue ?? 0
        }
        #expect(try build(root + "/whole.jsonl") == 0)
        let all = try requests(root + "/whole.jsonl")
        #expect(try build(root + "/resumed.jsonl", killWhenPairs: 7) == 9)
        #expect(try build(root + "/resumed.jsonl") == 0)
        let ledger = try JSONValue.parse(contentsOf: root + "/resumed.ledger.json")
        #expect(ledger["runs"]?.intValue == 2)
        // The second run made at most 5 of the 12 pairs, so it alone asked well under 80 % of the requests; a kill
        // loses at most the record in flight (concurrency 1), which never costs 20 %.
        let summed = try requests(root + "/resumed.jsonl")
        #expect(summed <= all && Double(summed) >= 0.8 * Double(all), "whole job \(summed) of \(all) requests")
    }
}
