import Common
import Foundation
import JSON

/// MME: per-subtask accuracy, accuracy+ (both questions of an image right) and score = 100·acc + 100·acc+,
/// with the perception and cognition totals, as the official eval_tool/calculation.py computes them.
public struct MMEScorer: Sendable {
    public static let perception = ["existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR"]
    public static let cognition = ["commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning"]

    /// `mme`: calculation.py (lower-cased; exact yes/no, else "yes"/"no" inside the first 4 characters, else
    /// other; acc+ over consecutive pairs of a subtask's lines). `vlmevalkit`: YOrN_Extraction, acc+ by image.
    public enum Rule: String, CaseIterable, Sendable { case mme, vlmevalkit }

    public var rule: Rule
    public init(rule: Rule = .mme) { self.rule = rule }

    /// calculation.py parse_pred_ans (answers are single lines there: newlines are deleted first).
    public static func parseOfficial(_ text: String) -> YesNo {
        let pred = text.replacingOccurrences(of: "\n", with: "").lowercased()
        if pred == "yes" { return .yes }
        if pred == "no" { return .no }
        let prefix = String(pred.prefix(4))
        if prefix.contains("yes") { return .yes }
        if prefix.contains("no") { return .no }
        return .unknown
    }

    public struct Subtask: Sendable {
        public var name: String
        public var count: Int
        public var acc: Double
        public var accPlus: Double
        public var score: Double { 100 * acc + 100 * accPlus }
        var json: JSONValue { .object([("acc", .double(acc)), ("acc_plus", .double(accPlus)), ("score", .double(score)), ("count", .int(count))]) }
    }

    public struct Result: Sendable {
        public var subtasks: [Subtask]
        public var perception: Double
        public var cognition: Double
        public var parsed: [(id: String, answer: YesNo)]
        public var matchMode: MatchMode
        public var questions: Int
        public var missing: Int
        public var issues: [EvalIssue]

        public func report(rule: Rule) -> Report {
            Report(.object([
                ("benchmark", .string("mme")), ("rule", .string(rule.rawValue)), ("matched_by", .string(matchMode.rawValue)),
                ("questions", .int(questions)), ("scored", .int(subtasks.reduce(0) { $0 + $1.count })), ("missing", .int(missing)),
                ("totals", .object([("perception", .double(perception)), ("cognition", .double(cognition))])),
                ("subtasks", .object(subtasks.map { ($0.name, $0.json) })), ("issues", issuesJSON(issues)),
            ]))
        }
    }

    public func score(questionsFile: String, answersFile: String) throws -> Result {
        let qf = try JSONLines(path: questionsFile), af = try JSONLines(path: answersFile)
        var issues = qf.issues + af.issues
        var questions: [Question] = []
        for (line, record) in qf.records {
            var q = Question(line: line, record: record)
            // lmms-eval's MME rows name the subtask `category`; the image path's folder names it otherwise.
            if q.category == nil, let image = q.image, image.contains("/") { q.category = String(image.split(separator: "/").first!) }
            guard yesNoTruth(q.label) != nil else {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "answer must be Yes or No (got \(q.label.map { "\"\($0)\"" } ?? "none")), not scored"))
                continue
            }
            guard let c = q.category else {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "no category (subtask), not scored"))
                continue
            }
            if !(Self.perception + Self.cognition).contains(c) {
                issues.append(EvalIssue(file: questionsFile, line: line, message: "unknown MME subtask \"\(c)\"; scored, but in neither total"))
            }
            questions.append(q)
        }
        let matched = Matched(questions: questions, questionsFile: questionsFile,
                              answers: af.records.map { Answer(line: $0.line, record: $0.value) }, answersFile: answersFile)
        issues += matched.issues
        var rows: [String: [(image: String, correct: Bool)]] = [:]
        var order: [String] = []
        var parsed: [(String, YesNo)] = []
        for (q, a) in matched.pairs {
            let answer = rule == .mme ? Self.parseOfficial(a.text) : YesNoRule.vlmevalkit.parse(a.text)
            parsed.append((q.id ?? String(q.line), answer))
            let truth: YesNo = yesNoTruth(q.label)! ? .yes : .no
            if rows[q.category!] == nil { order.append(q.category!) }
            rows[q.category!, default: []].append((q.image ?? "line \(q.line)", answer == truth))
        }
        let known = (Self.perception + Self.cognition).filter { rows[$0] != nil }
        var subtasks: [Subtask] = []
        for name in known + order.filter({ !known.contains($0) }) {
            let r = rows[name]!
            let acc = Double(r.filter(\.correct).count) / Double(r.count)
            var plus: [Bool] = []
            switch rule {
            case .mme:
                for start in stride(from: 0, to: r.count, by: 2) { plus.append(r[start..<min(start + 2, r.count)].allSatisfy(\.correct) && start + 1 < r.count) }
            case .vlmevalkit:
                // Grouped by image; the first two answers of each image count.
                var images: [String] = []
                var byImage: [String: [Bool]] = [:]
                for x in r {
                    if byImage[x.image] == nil { images.append(x.image) }
                    byImage[x.image, default: []].append(x.correct)
                }
                plus = images.map { byImage[$0]!.count >= 2 && byImage[$0]![0] && byImage[$0]![1] }
            }
            subtasks.append(Subtask(name: name, count: r.count, acc: acc, accPlus: Double(plus.filter { $0 }.count) / Double(plus.count)))
        }
        let perception = subtasks.filter { Self.perception.contains($0.name) }.reduce(0) { $0 + $1.score }
        let cognition = subtasks.filter { Self.cognition.contains($0.name) }.reduce(0) { $0 + $1.score }
        return Result(subtasks: subtasks, perception: perception, cognition: cognition, parsed: parsed, matchMode: matched.mode,
                      questions: qf.records.count, missing: matched.missing, issues: issues)
    }
}
