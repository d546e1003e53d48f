import Foundation
import TestSupport
import JSON
import Testing
@testable import Preference

/// `realign eval hallusionbench --judge`: the official LLM-judge protocol over a real HTTP exchange.
@Suite(.serialized) struct JudgeTests {
    static func firstWord(_ s: String) -> String {
        String(s.lowercased().prefix { $0.isLetter })
    }

    @Test func judgedScoresFollowTheVerdictsAndAreCached() throws {
        // The judge says "correct" when the prediction's first word is the reference answer.
        let server = try ScriptedServer { _, r in
            let body = try? JSONValue.parse(Array(r.body.utf8))
            let prompt = body?["messages"]?.arrayValue?.last?["content"]?.arrayValue?.last?["text"]?.stringValue ?? ""
            let reference = prompt.components(separatedBy: "\nReference answer: ").last?.components(separatedBy: "\n").first ?? ""
            let prediction = prompt.components(separatedBy: "\nPrediction answer:").last?.components(separatedBy: "\nOutput:").first ?? ""
            return .init(body: ScriptedServer.completion(JudgeTests.firstWord(prediction) == reference.lowercased() ? "Correct" : "incorrect"))
        }
        let questions = repoPath("EvaluationTests/Fixtures/hallusionbench_questions.jsonl")
        let folder = temporaryFolder()
        let answers = folder + "/answers.jsonl"
        try FileManager.default.copyItem(atPath: repoPath("EvaluationTests/Fixtures/hallusionbench_answers.jsonl"), toPath: answers)
        let args = ["eval", "hallusionbench", "--questions", questions, "--answers", answers, "--judge", "openai:\(server.baseURL)#judge", "--out", folder + "/report.json", "--json"]
        let run = try runRealign(args)
        #expect(run.status == 0, "\(run.stderr.suffix(300))")
        #expect(server.requests.count == 40)
        // The expected all-question accuracy, computed here from the same rule the judge follows.
        let q = jsonLines(questions), a = jsonLines(answers)
        let correct = zip(q, a).filter { row, answer in
            Self.firstWord(answer["text"] as! String) == ((row["gt_answer"] as! String) == "1" ? "yes" : "no")
        }.count
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/report.json"))) as? [String: Any])
        let overall = try #require(report["overall"] as? [String: Any])
        #expect(abs((overall["aAcc"] as! Double) - Double(correct) / 40) < 1e-12)
        #expect((report["rule"] as? String)?.hasPrefix("llm-judge") == true)
        // A second run reads every verdict from the cache.
        #expect(try runRealign(args).status == 0)
        #expect(server.requests.count == 40)
        #expect(jsonLines(folder + "/answers.judge.jsonl").count == 40)
        // A kill tore the last verdict: the next run cuts it off, asks that one item again and keeps the file whole.
        let cache = folder + "/answers.judge.jsonl"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: cache))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: cache))
        #expect(try runRealign(args).status == 0)
        #expect(server.requests.count == 41)
        #expect(jsonLines(cache).count == 40)
    }
}
