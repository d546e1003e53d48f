import Common
import Foundation
import JSON

/// Accuracy, precision, recall, F1 and yes-ratio of a yes/no benchmark, counted the way each harness counts them.
public struct YesNoMetrics: Sendable, Equatable {
    public var count = 0
    public var accuracy = 0.0
    public var precision = 0.0
    public var recall = 0.0
    public var f1 = 0.0
    public var yesRatio = 0.0
    public var unknown = 0

    /// `rows`: truth (true = yes) and the parsed answer. Where a harness would divide by zero, 0.
    public init(rule: YesNoRule, rows: [(truth: Bool, parsed: YesNo)]) {
        func div(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        count = rows.count
        unknown = rows.filter { $0.parsed == .unknown }.count
        var tp = 0, fp = 0, fn = 0, correct = 0
        switch rule {
        case .pope, .vlmevalkit:
            // POPE never yields unknown; VLMEvalKit's F1 counts an unknown as a predicted "no".
            for r in rows {
                let predictedYes = r.parsed == .yes
                if predictedYes && r.truth { tp += 1 }
                if predictedYes && !r.truth { fp += 1 }
                if !predictedYes && r.truth { fn += 1 }
                if rule == .pope ? predictedYes == r.truth : r.parsed == (r.truth ? .yes : .no) { correct += 1 }
            }
            yesRatio = div(rows.filter { $0.parsed == .yes }.count, rows.count)
        case .lmmsEval:
            // Recall's false negatives are only the exact "no" answers; its yes-ratio is the truth's.
            for r in rows {
                if r.parsed == .yes && r.truth { tp += 1 }
                if r.parsed == .yes && !r.truth { fp += 1 }
                if r.parsed == .no && r.truth { fn += 1 }
                if r.parsed == (r.truth ? .yes : .no) { correct += 1 }
            }
            yesRatio = div(rows.filter(\.truth).count, rows.count)
        }
        accuracy = div(correct, rows.count)
        precision = div(tp, tp + fp)
        recall = div(tp, tp + fn)
        f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
    }

    public var json: JSONValue {
        .object([("count", .int(count)), ("accuracy", .double(accuracy)), ("precision", .double(precision)), ("recall", .double(recall)),
                 ("f1", .double(f1)), ("yes_ratio", .double(yesRatio)), ("unknown", .int(unknown))])
    }
}

/// VaPR's yes-bias analysis: the 2x2 confusion of truth vs. answer and the rate of false "yes".
public struct YesBias: Sendable, Equatable {
    public var trueYesPredYes = 0, trueYesPredNo = 0, trueNoPredYes = 0, trueNoPredNo = 0, unknown = 0
    /// False "yes" answers over all questions whose truth is no.
    public var falseYesRate = 0.0

    public init(rows: [(truth: Bool, parsed: YesNo)]) {
        var truthNo = 0
        for r in rows {
            if !r.truth { truthNo += 1 }
            switch (r.truth, r.parsed) {
            case (_, .unknown): unknown += 1
            case (true, .yes): trueYesPredYes += 1
            case (true, .no): trueYesPredNo += 1
            case (false, .yes): trueNoPredYes += 1
            case (false, .no): trueNoPredNo += 1
            }
        }
        falseYesRate = truthNo == 0 ? 0 : Double(trueNoPredYes) / Double(truthNo)
    }

    public var json: JSONValue {
        .object([("true_yes_pred_yes", .int(trueYesPredYes)), ("true_yes_pred_no", .int(trueYesPredNo)),
                 ("true_no_pred_yes", .int(trueNoPredYes)), ("true_no_pred_no", .int(trueNoPredNo)),
                 ("unknown", .int(unknown)), ("false_yes_rate", .double(falseYesRate))])
    }
}

/// Reads a yes/no truth ("yes"/"no" in any case, "1"/"0"); nil for anything else.
func yesNoTruth(_ label: String?) -> Bool? {
    switch label.map({ pythonStrip($0).lowercased() }) {
    case "yes"?, "1"?, "true"?: true
    case "no"?, "0"?, "false"?: false
    default: nil
    }
}

/// Scores answers to POPE questions (or any yes/no set with categories).
public struct POPEScorer: Sendable {
    public static let categories = ["random", "popular", "adversarial"]

    public var rule: YesNoRule
    public var knownCategories: [String]?

    public init(rule: YesNoRule = .pope, knownCategories: [String]? = POPEScorer.categories) {
        self.rule = rule
        self.knownCategories = knownCategories
    }

    public struct Result: Sendable {
        public var overall: YesNoMetrics
        public var categories: [(String, YesNoMetrics)]
        public var yesBias: YesBias
        public var parsed: [(id: String, answer: YesNo)]
        public var matchMode: MatchMode
        public var questions: Int
        public var missing: Int
        public var issues: [EvalIssue]

        public func report(benchmark: String = "pope", rule: YesNoRule) -> Report {
            Report(.object([
                ("benchmark", .string(benchmark)), ("rule", .string(rule.rawValue)), ("matched_by", .string(matchMode.rawValue)),
                ("questions", .int(questions)), ("scored", .int(overall.count)), ("missing", .int(missing)),
                ("overall", overall.json), ("categories", .object(categories.map { ($0.0, $0.1.json) })),
                ("yes_bias", yesBias.json), ("issues", issuesJSON(issues)),
            ]))
        }

        /// The yes-bias table alone (VaPR's analysis of any yes/no set).
        public func yesBiasReport(rule: YesNoRule) -> Report {
            Report(.object([
                ("benchmark", .string("yes-bias")), ("rule", .string(rule.rawValue)), ("matched_by", .string(matchMode.rawValue)),
                ("scored", .int(overall.count)), ("missing", .int(missing)), ("yes_bias", yesBias.json), ("issues", issuesJSON(issues)),
            ]))
        }
    }

    public func score(questionsFile: String, answersFile: String) throws -> Result {
        let qf = try JSONLines(path: questionsFile), af = try JSONLines(path: answersFile)
        return score(questions: qf.records.map { Question(line: $0.line, record: $0.value) }, questionsFile: questionsFile,
                     answers: af.records.map { Answer(line: $0.line, record: $0.value) }, answersFile: answersFile,
                     issues: qf.issues + af.issues)
    }

    public func score(questions: [Question], questionsFile: String, answers: [Answer], answersFile: String, issues: [EvalIssue] = []) -> Result {
        var issues = issues
        var valid: [Question] = []
        for q in questions {
            guard yesNoTruth(q.label) != nil else {
                issues.append(EvalIssue(file: questionsFile, line: q.line, message: "label must be yes or no (got \(q.label.map { "\"\($0)\"" } ?? "none")), not scored"))
                continue
            }
            if let known = knownCategories, let c = q.category, !known.contains(c) {
                issues.append(EvalIssue(file: questionsFile, line: q.line, message: "unknown category \"\(c)\" (expected \(known.joined(separator: ", "))); scored under it"))
            }
            valid.append(q)
        }
        let matched = Matched(questions: valid, questionsFile: questionsFile, answers: answers, answersFile: answersFile)
        issues += matched.issues
        var rows: [(truth: Bool, parsed: YesNo)] = []
        var byCategory: [String: [(truth: Bool, parsed: YesNo)]] = [:]
        var order: [String] = []
        var parsed: [(String, YesNo)] = []
        for (q, a) in matched.pairs {
            let row = (truth: yesNoTruth(q.label)!, parsed: rule.parse(a.text))
            rows.append(row)
            parsed.append((q.id ?? String(q.line), row.parsed))
            if let c = q.category {
                if byCategory[c] == nil { order.append(c) }
                byCategory[c, default: []].append(row)
            }
        }
        // Known categories in their usual order, then others as first seen.
        let known = (knownCategories ?? []).filter { byCategory[$0] != nil }
        let categories = (known + order.filter { !known.contains($0) }).map { ($0, YesNoMetrics(rule: rule, rows: byCategory[$0]!)) }
        return Result(overall: YesNoMetrics(rule: rule, rows: rows), categories: categories, yesBias: YesBias(rows: rows),
                      parsed: parsed, matchMode: matched.mode, questions: questions.count, missing: matched.missing, issues: issues)
    }
}
