import Common
import Foundation
import JSON
import Testing
@testable import Evaluation

func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

func expected(_ name: String) throws -> JSONValue { try JSONValue.parse(contentsOf: fixture(name)) }

func close(_ a: Double, _ b: JSONValue?) -> Bool {
    guard let b = b?.doubleValue else { return false }
    return abs(a - b) <= 1e-9 * max(1, abs(b))
}

func expectMetrics(_ m: YesNoMetrics, _ e: JSONValue?, _ context: String) {
    guard let e else { Issue.record("\(context): no expected values"); return }
    #expect(m.count == e["count"]?.intValue, "\(context) count")
    #expect(m.unknown == e["unknown"]?.intValue, "\(context) unknown")
    for (name, value) in [("accuracy", m.accuracy), ("precision", m.precision), ("recall", m.recall), ("f1", m.f1), ("yes_ratio", m.yesRatio)] {
        #expect(close(value, e[name]), "\(context) \(name): \(value) vs \(String(describing: e[name]))")
    }
}

/// Every scorer against the value the original harness's rule gives (tools/reference/make_eval_fixtures.py and
/// make_hallusion_chair_fixtures.py; their rules were checked against the harnesses' own code).
@Suite struct ScorerTests {
    @Test(arguments: YesNoRule.allCases) func pope(rule: YesNoRule) throws {
        let want = try expected("pope_expected.json")
        let result = try POPEScorer(rule: rule).score(questionsFile: fixture("pope_questions.jsonl"), answersFile: fixture("pope_answers.jsonl"))
        let e = want["rules"]?[rule.rawValue]
        #expect(result.matchMode == .questionID)
        #expect(result.missing == want["missing"]?.intValue)
        #expect(result.issues.filter { $0.message.hasPrefix("no answer") }.count == 2)
        expectMetrics(result.overall, e?["overall"], "\(rule) overall")
        #expect(Set(result.categories.map(\.0)) == Set(e?["categories"]?.objectValue?.map(\.0) ?? []))
        for (name, m) in result.categories { expectMetrics(m, e?["categories"]?[name], "\(rule) \(name)") }
        for (id, parsed) in result.parsed {
            #expect(parsed.rawValue == e?["parsed"]?[id]?.stringValue, "\(rule) question \(id)")
        }
        let bias = want["yes_bias"]?[rule.rawValue]
        #expect(result.yesBias.trueYesPredYes == bias?["true_yes_pred_yes"]?.intValue)
        #expect(result.yesBias.trueYesPredNo == bias?["true_yes_pred_no"]?.intValue)
        #expect(result.yesBias.trueNoPredYes == bias?["true_no_pred_yes"]?.intValue)
        #expect(result.yesBias.trueNoPredNo == bias?["true_no_pred_no"]?.intValue)
        #expect(result.yesBias.unknown == bias?["unknown"]?.intValue)
        #expect(close(result.yesBias.falseYesRate, bias?["false_yes_rate"]))
    }

    @Test(arguments: MMEScorer.Rule.allCases) func mme(rule: MMEScorer.Rule) throws {
        let want = try expected("mme_expected.json")
        let e = rule == .mme ? want : want["vlmevalkit"]!
        let result = try MMEScorer(rule: rule).score(questionsFile: fixture("mme_questions.jsonl"), answersFile: fixture("mme_answers.jsonl"))
        #expect(result.missing == 0 && result.issues.isEmpty)
        #expect(result.subtasks.map(\.name).sorted() == (e["subtasks"]?.objectValue?.map(\.0).sorted() ?? []))
        for s in result.subtasks {
            let x = e["subtasks"]?[s.name]
            #expect(close(s.acc, x?["acc"]) && close(s.accPlus, x?["acc_plus"]) && close(s.score, x?["score"]), "\(rule) \(s.name)")
            #expect(s.count == x?["count"]?.intValue)
        }
        if rule == .mme {
            #expect(close(result.perception, want["perception"]) && close(result.cognition, want["cognition"]))
            // calculation.py calls an answer that is neither yes nor no "other".
            for (id, parsed) in result.parsed {
                #expect((parsed == .unknown ? "other" : parsed.rawValue) == want["parsed"]?[id]?.stringValue, "question \(id)")
            }
        }
    }

    @Test func hallusionBench() throws {
        let want = try expected("hallusionbench_expected.json")
        let result = try HallusionBenchScorer().score(questionsFile: fixture("hallusionbench_questions.jsonl"),
                                                      answersFile: fixture("hallusionbench_answers.jsonl"))
        #expect(result.matchMode == .order && result.missing == 0)
        #expect(result.parsed.map(\.rawValue) == (want["parsed"]?.arrayValue?.compactMap(\.stringValue) ?? []))
        func check(_ m: HallusionBenchScorer.Metrics, _ e: JSONValue?, _ name: String) {
            #expect(m.count == e?["count"]?.intValue, "\(name) count")
            #expect(close(m.aAcc, e?["aAcc"]) && close(m.fAcc, e?["fAcc"]) && close(m.qAcc, e?["qAcc"]), "\(name): \(m)")
        }
        check(result.overall, want["overall"], "overall")
        check(result.easy, want["easy"], "easy")
        check(result.hard, want["hard"], "hard")
        for (c, m) in result.categories { check(m, want["categories"]?[c], c) }
        #expect(result.categories.count == 2)
    }

    @Test func chair() throws {
        let want = try expected("chair_expected.json")
        let chair = try CHAIR()
        let result = try chair.score(annotationsFile: fixture("chair_annotations.jsonl"), answersFile: fixture("chair_answers.jsonl"))
        #expect(result.issues.isEmpty, "\(result.issues)")
        #expect(close(result.chairS, want["CHAIRs"]) && close(result.chairI, want["CHAIRi"]) && close(result.recall, want["recall"]))
        let perImage = want["per_image"]?.arrayValue ?? []
        #expect(result.images.count == perImage.count)
        for (ours, theirs) in zip(result.images, perImage) {
            let id = theirs.text(["image_id"]) ?? "?"
            #expect(ours.id == id)
            let caption = try JSONLines(path: fixture("chair_answers.jsonl")).records.first { $0.value.text(["image_id"]) == id }!.value["caption"]!.stringValue!
            #expect(WordTokenizer.tokenize(caption.lowercased()) == theirs["tokens"]?.arrayValue?.compactMap(\.stringValue), "tokens of \(id)")
            #expect(chair.words(caption) == theirs["words"]?.arrayValue?.compactMap(\.stringValue), "words of \(id)")
            #expect(ours.mentioned == theirs["mentioned"]?.arrayValue?.compactMap(\.stringValue), "mentions of \(id)")
            #expect(ours.hallucinated == theirs["hallucinated"]?.arrayValue?.compactMap(\.stringValue), "hallucinated in \(id)")
            #expect(ours.groundTruth.sorted() == theirs["ground_truth"]?.arrayValue?.compactMap(\.stringValue), "ground truth of \(id)")
        }
    }

    @Test func yesNoRulesOnEdgeCases() {
        // Hand-checked against each rule's text (see YesNoRule): POPE looks only before the first period.
        #expect(YesNoRule.pope.parse("Yes. But no.") == .yes)
        #expect(YesNoRule.pope.parse("NO") == .yes)
        #expect(YesNoRule.pope.parse("There is no dog") == .no)
        #expect(YesNoRule.lmmsEval.parse("  Yes \n") == .yes)
        #expect(YesNoRule.lmmsEval.parse("Yes.") == .unknown)
        #expect(YesNoRule.vlmevalkit.parse("Yes, it is.") == .yes)
        #expect(YesNoRule.vlmevalkit.parse("yes/no") == .unknown)
        // VLMEvalKit's period rule drops a period after a digit too ("(?!<=\d)" is not a lookbehind).
        #expect(processPunctuation("5. yes") == "5 yes")
        #expect(processPunctuation("1.5 yes") == "1.5 yes")
        #expect(processPunctuation(String(repeating: ".", count: 40)) == String(repeating: ".", count: 8))
    }
}
