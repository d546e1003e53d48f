import Foundation
import JSON
import TestSupport
import XCTest

/// `realign demo --quick` end to end, through the built executable, and resumed after a kill.
final class DemoTests: XCTestCase {
    func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "demo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Runs the demo; `killWhen` sees stderr as it grows and may ask for SIGKILL.
    @discardableResult
    func demo(_ out: String, killWhen: ((String) -> Bool)? = nil) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try realignExecutable())
        process.arguments = ["demo", "--quick", "--out", out, "--sentence-model", try miniLMFolder()]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        final class Log: @unchecked Sendable { var text = ""; let lock = NSLock() }
        let log = Log()
        errors.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            log.lock.withLock { log.text += String(decoding: d, as: UTF8.self) }
        }
        try process.run()
        while process.isRunning {
            if let killWhen, log.lock.withLock({ killWhen(log.text) }) {
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        errors.fileHandleForReading.readabilityHandler = nil
        if killWhen == nil && process.terminationStatus != 0 { XCTFail("demo failed:\n" + log.lock.withLock { String(log.text.suffix(3000)) }) }
        return process.terminationStatus
    }

    func lines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(Array($0.utf8)) }
    }

    func testQuickDemoFillsTheReportContractAndAResumedRunGivesTheSameReport() throws {
        let whole = try temporaryFolder(), resumed = try temporaryFolder()
        try demo(whole)
        let report = try JSONValue.parse(contentsOf: whole + "/report.json")
        XCTAssertEqual(report["seed"]?.intValue, 0)
        XCTAssertNotNil(report["time_seconds"]?["total"]?.doubleValue)
        XCTAssertTrue(FileManager.default.fileExists(atPath: report["base_model"]!.stringValue! + "/model.safetensors"))
        for split in ["random", "popular", "adversarial"] {
            let questions = try lines(whole + "/" + report["questions"]![split]!.stringValue!)
            XCTAssertFalse(questions.isEmpty)
            for q in questions {
                XCTAssertNotNil(q["question_id"]?.intValue)
                XCTAssertNotNil(q["image"]?.stringValue)
                XCTAssertNotNil(q["text"]?.stringValue)
                XCTAssertTrue(["yes", "no"].contains(q["label"]?.stringValue ?? ""))
            }
        }
        for recipe in ["realign", "vapr"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: whole + "/" + report["pairs"]![recipe]!.stringValue!))
            // Every pair is matched to its image's annotation, and no chosen answer (from the annotations) names
            // a shape the image lacks.
            let quality = report["pair_quality"]?[recipe]
            XCTAssertEqual(quality?["pairs"], report["pair_counts"]?[recipe], recipe)
            XCTAssertEqual(quality?["chosen_names_absent_shape"]?.intValue, 0, recipe)
        }
        let noQuestions = try lines(whole + "/world/pope/pope_all.jsonl").filter { $0["label"]?.stringValue == "no" }.count
        let models = report["models"]!
        for name in ["base", "realign-rdpo", "realign-dpo", "mdpo", "vapr-dpo"] {
            guard let m = models[name] else { XCTFail("no row \(name)"); continue }
            XCTAssertEqual(m["adapter"]?.isNull, name == "base", name)
            for split in ["random", "popular", "adversarial"] {
                for metric in ["accuracy", "precision", "recall", "f1", "yes_ratio"] {
                    XCTAssertNotNil(m["pope"]?[split]?[metric]?.doubleValue, "\(name) \(split) \(metric)")
                }
                let answers = try lines(whole + "/" + m["answers"]![split]!.stringValue!)
                XCTAssertEqual(answers.count, try lines(whole + "/" + report["questions"]![split]!.stringValue!).count)
                for a in answers {
                    XCTAssertNotNil(a["question_id"])
                    XCTAssertNotNil(a["prompt"]?.stringValue)
                    XCTAssertNotNil(a["text"]?.stringValue)
                }
            }
            XCTAssertNotNil(m["yes_bias"]?["false_yes_rate"]?.doubleValue)
            // Every absent-shape question is counted once: with its partner in the image, or not.
            XCTAssertEqual((m["prior"]?["absent_partner_questions"]?.intValue ?? 0) + (m["prior"]?["other_absent_questions"]?.intValue ?? 0),
                           noQuestions, name)
            XCTAssertNotNil(m["chair"]?["CHAIRi"]?.doubleValue)
            XCTAssertNotNil(m["attributes"]?["accuracy"]?.doubleValue)
            // Every figure has its interval around it; every trained model a paired test against the base.
            for key in ["pope.adversarial.accuracy", "chair.CHAIRi", "attributes.accuracy", "prior.absent_partner_false_yes"] {
                let path = key.split(separator: ".").map(String.init)
                var value: JSONValue? = m
                for k in path { value = value?[k] }
                guard let v = value?.doubleValue, let ci = m["intervals"]?[key]?.arrayValue, ci.count == 2,
                      let lo = ci[0].doubleValue, let hi = ci[1].doubleValue else { XCTFail("\(name) \(key): no interval"); continue }
                XCTAssertTrue(lo <= v + 1e-12 && v <= hi + 1e-12, "\(name) \(key): \(v) outside [\(lo), \(hi)]")
                if name != "base" {
                    let p = m["vs_base"]?[key]?["p"]?.doubleValue
                    XCTAssertTrue(p.map { (0...1).contains($0) } ?? false, "\(name) \(key): p \(String(describing: p))")
                }
            }
        }
        // Re-Align's samples mix captions with questions answered in sentences; the pairs are counted by kind.
        let kinds = report["pair_quality"]?["realign"]?["categories"]?.objectValue?.map(\.0) ?? []
        XCTAssertTrue(kinds.contains("caption") && kinds.count >= 2, "\(kinds)")
        XCTAssertNotNil(report["pair_summaries"]?["realign"]?["mean_masked_fraction"]?.doubleValue)
        for file in ["report.md", "report.html"] {
            let text = try String(contentsOfFile: whole + "/" + file, encoding: .utf8)
            XCTAssertTrue(text.contains("realign-rdpo") && text.contains("vapr-dpo"), file)
            XCTAssertTrue(text.contains("95 % intervals") && text.contains("80 % power"), file)
        }
        XCTAssertTrue(try String(contentsOfFile: whole + "/report.html", encoding: .utf8).contains("<svg"))

        // Killed while it builds the Re-Align pairs, then run again: the same pairs, the same numbers.
        let status = try demo(resumed) { log in
            log.contains("demo: realign pairs ...") && ((try? String(contentsOfFile: resumed + "/pairs/realign.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0) >= 3
        }
        XCTAssertEqual(status, 9, "the first run was not killed")
        try demo(resumed)
        let again = try JSONValue.parse(contentsOf: resumed + "/report.json")
        XCTAssertEqual(again["models"]?.serialized().replacingOccurrences(of: resumed, with: "OUT"),
                       report["models"]?.serialized().replacingOccurrences(of: whole, with: "OUT"))
        XCTAssertEqual(again["pair_counts"], report["pair_counts"])
        for file in ["pairs/realign.jsonl", "pairs/vapr.jsonl"] {
            XCTAssertEqual(try String(contentsOfFile: resumed + "/" + file, encoding: .utf8).replacingOccurrences(of: resumed, with: "OUT"),
                           try String(contentsOfFile: whole + "/" + file, encoding: .utf8).replacingOccurrences(of: whole, with: "OUT"), file)
        }
    }

    func realign(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try realignExecutable())
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let log = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, String(decoding: log.suffix(2000), as: UTF8.self))
    }

    /// `realign world pretrain` with a few steps per stage: a llava-hf folder with fp16 weights that loads, and the
    /// same command gives the same bytes (what the shipped model's reproduction rests on).
    func testPretrainingIsReproducible() throws {
        let root = try temporaryFolder()
        try realign(["world", "generate", "--out", root + "/world", "--train", "12", "--test", "6"])
        var weights: [Data] = []
        for run in ["a", "b"] {
            try realign(["world", "pretrain", "--out", root + "/" + run, "--world", root + "/world", "--vision-steps", "3",
                         "--align-steps", "2", "--sft-steps", "2", "--polish-steps", "2", "--batch-size", "4"])
            let model = root + "/\(run)/model"
            let config = try JSONValue.parse(contentsOf: model + "/config.json")
            XCTAssertEqual(config["model_type"]?.stringValue, "llava")
            XCTAssertEqual(config["dtype"]?.stringValue, "float16")
            for file in ["tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json", "chat_template.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: model + "/" + file), file)
            }
            weights.append(try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors")))
        }
        XCTAssertEqual(weights[0], weights[1])
        // The model answers through the ordinary commands.
        try realign(["generate", "--model", root + "/a/model", "--image", root + "/world/images/test/test-000000.png",
                     "--prompt", "describe the image.", "--max-new-tokens", "4"])
    }
}
