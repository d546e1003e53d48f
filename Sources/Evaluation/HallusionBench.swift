import Common
import Foundation
import JSON

/// HallusionBench: all-question accuracy (aAcc), figure accuracy (fAcc: every question about one figure right),
/// question-pair accuracy (qAcc: one question right over all its figures), overall, Easy (visual_input != 2),
/// Hard (== 2) and per category, grouped as tianyi-lab/HallusionBench utils.py groups them.
public struct HallusionBenchScorer: Sendable {
    /// How an answer is judged: VLMEvalKit's yes/no extraction, or an LLM judge's yes/no/uncertain verdict
    /// (the official way; verdicts come from the judge client as answers already reduced to yes/no).
    public var judge: @Sendable (String, String) -> YesNo

    /// An LLM judge's verdict on a question row (with its reference answer) and an answer: correct, incorrect,
    /// or nil for unclear (counted wrong, as the official evaluation counts it). Replaces `judge` when set.
    public var correctness: (@Sendable (_ question: JSONValue, _ answer: String) -> Bool?)?

    public init(judge: @escaping @Sendable (_ question: String, _ answer: String) -> YesNo = { _, answer in YesNoRule.vlmevalkit.parse(answer) }) {
        self.judge = judge
    }

    /// The reference answer a judge compares with: `gt_answer_details` when the row has it, else Yes/No.
    public static func reference(_ question: JSONValue) -> String {
        if let details = question["gt_answer_details"]?.stringValue, !details.isEmpty { return details }
        return question["gt_answer"]?.stringValue == "1" ? "Yes" : "No"
    }

    struct Row {
        var category, subcategory, setID, figureID, questionID, visualInput: String
        var correct: Bool
    }

    public struct Metrics: Sendable {
        public var count = 0, aAcc = 0.0, fAcc = 0.0, qAcc = 0.0
        var json: JSONValue { .object([("count", .int(count)), ("aAcc", .double(aAcc)), ("fAcc", .double(fAcc)), ("qAcc", .double(qAcc))]) }
    }

    static func metrics(_ rows: [Row]) -> Metrics {
        func groupAccuracy(_ rows: [Row], key: (Row) -> String) -> Double {
            var groups: [String: Bool] = [:]
            for r in rows { groups[key(r)] = (groups[key(r)] ?? true) && r.correct }
            return groups.isEmpty ? 0 : Double(groups.values.filter { $0 }.count) / Double(groups.count)
        }
        var m = Metrics()
        m.count = rows.count
        m.aAcc = rows.isEmpty ? 0 : Double(rows.filter(\.correct).count) / Double(rows.count)
        // Figures: the visual-supplement questions asked without an image (figure 0) have no figure.
        m.fAcc = groupAccuracy(rows.filter { !($0.category == "VS" && $0.figureID == "0") }) { [$0.category, $0.subcategory, $0.setID, $0.figureID].joined(separator: "_") }
        m.qAcc = groupAccuracy(rows) { [$0.category, $0.subcategory, $0.setID, $0.questionID].joined(separator: "_") }
        return m
    }

    public struct Result: Sendable {
        public var overall: Metrics, easy: Metrics, hard: Metrics
        public var categories: [(String, Metrics)]
        public var parsed: [YesNo]
        public var matchMode: MatchMode
        public var questions: Int
        public var missing: Int
        public var issues: [EvalIssue]

        public func report(rule: String) -> Report {
            Report(.object([
                ("benchmark", .string("hallusionbench")), ("rule", .string(rule)), ("matched_by", .string(matchMode.rawValue)),
                ("questions", .int(questions)), ("scored", .int(overall.count)), ("missing", .int(missing)),
                ("overall", overall.json), ("easy", easy.json), ("hard", hard.json),
                ("categories", .object(categories.map { ($0.0, $0.1.json) })), ("issues", issuesJSON(issues)),
            ]))
        }
    }

    public func score(questionsFile: String, answersFile: String) throws -> Result {
        let qf = try JSONLines(path: questionsFile), af = try JSONLines(path: answersFile)
        var issues = qf.issues + af.issues
        var questions: [Question] = []
        var seen = Set<String>()
        for (line, record) in qf.records {
            let q = Question(line: line, record: record, idKeys: ["id"])
            let fields = ["category", "subcategory", "set_id", "figure_id", "question_id", "visual_input"].map { record.text([$0]) }
            guard fields.allSatisfy({ $0 != nil }), let truth = record.text(["gt_answer"]), truth == "0" || truth == "1" else {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "needs category, subcategory, set_id, figure_id, question_id, visual_input and gt_answer 0/1; not scored"))
                continue
            }
            guard fields[0] == "VD" || fields[0] == "VS" else {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "unknown category \"\(fields[0]!)\" (VD or VS); not scored"))
                continue
            }
            let key = fields.prefix(5).map { $0! }.joined(separator: "_")
            if !seen.insert(key).inserted {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "a second question \(key); not scored"))
                continue
            }
            questions.append(q)
        }
        let matched = Matched(questions: questions, questionsFile: questionsFile,
                              answers: af.records.map { Answer(line: $0.line, record: $0.value, idKeys: ["id"]) }, answersFile: answersFile, idName: "id")
        issues += matched.issues
        var rows: [Row] = []
        var parsed: [YesNo] = []
        for (q, a) in matched.pairs {
            let r = q.record
            let truth: YesNo = r.text(["gt_answer"]) == "1" ? .yes : .no
            let verdict: YesNo
            if let correctness {
                switch correctness(r, a.text) {
                case true?: verdict = truth
                case false?: verdict = truth == .yes ? .no : .yes
                case nil: verdict = .unknown
                }
            } else {
                verdict = judge(q.text, a.text)
            }
            parsed.append(verdict)
            rows.append(Row(category: r.text(["category"])!, subcategory: r.text(["subcategory"])!, setID: r.text(["set_id"])!,
                            figureID: r.text(["figure_id"])!, questionID: r.text(["question_id"])!, visualInput: r.text(["visual_input"])!,
                            correct: verdict == truth))
        }
        let categories = ["VD", "VS"].filter { c in rows.contains { $0.category == c } }.map { c in (c, Self.metrics(rows.filter { $0.category == c })) }
        return Result(overall: Self.metrics(rows), easy: Self.metrics(rows.filter { $0.visualInput != "2" }),
                      hard: Self.metrics(rows.filter { $0.visualInput == "2" }), categories: categories, parsed: parsed,
                      matchMode: matched.mode, questions: qf.records.count, missing: matched.missing, issues: issues)
    }
}

extension HallusionBenchScorer {
    /// Scores with an LLM judge, as the official evaluation does: a first pass collects what the judge must read,
    /// the judge answers what its cache (`cachePath`) does not hold, and a second pass scores with its verdicts
    /// (an unclear or failed verdict counts as wrong). `failures` hears each failed request.
    public func scoreJudged(questionsFile: String, answersFile: String, judge: AnswerJudge,
                            failures: @Sendable ([String]) -> Void = { _ in }) async throws -> Result {
        final class Collected: @unchecked Sendable {
            var items: [(JSONValue, String)] = []
            let lock = NSLock()
            func add(_ row: JSONValue, _ answer: String) { lock.withLock { items.append((row, answer)) } }
        }
        let collected = Collected()
        var first = self
        first.correctness = { row, answer in collected.add(row, answer); return nil }
        _ = try first.score(questionsFile: questionsFile, answersFile: answersFile)
        let items = collected.items.map { (question: $0.0["question"]?.stringValue ?? "", reference: Self.reference($0.0), prediction: $0.1) }
        failures(await judge.judgeAll(items))
        var second = self
        second.correctness = { row, answer in
            judge.known(question: row["question"]?.stringValue ?? "", reference: Self.reference(row), prediction: answer)
        }
        return try second.score(questionsFile: questionsFile, answersFile: answersFile)
    }
}
