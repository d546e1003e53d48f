import Common
import Foundation
import JSON

/// Something wrong with one line of an input file: reported with the file and line, counted, never fatal.
public typealias EvalIssue = LineProblem

/// A failure that stops scoring (an unreadable file, a file with no usable record).
public struct EvalError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// The first of `keys` present as a string or a number (numbers as their text).
    public func text(_ keys: [String]) -> String? {
        for key in keys {
            switch self[key] {
            case .string(let s)?: return s
            case .int(let i)?: return String(i)
            case .double(let d)?: return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
            default: continue
            }
        }
        return nil
    }
}

/// A benchmark question, whatever harness wrote the file: `text`|`question`, `label`|`answer`,
/// `image`|`image_source`, `category`, `question_id`.
public struct Question: Sendable {
    public var line: Int
    public var id: String?
    public var text: String
    public var label: String?
    public var image: String?
    public var category: String?
    public var record: JSONValue

    public init(line: Int, record: JSONValue, idKeys: [String] = ["question_id"]) {
        self.line = line
        self.record = record
        id = record.text(idKeys)
        text = record.text(["text", "question", "prompt"]) ?? ""
        label = record.text(["label", "answer", "gt_answer"])
        image = record.text(["image", "image_source", "filename", "image_path"])
        category = record.text(["category"])
    }
}

/// A model's answer: `text` (our runner, LLaVA), `answer` (POPE), `prediction` (VLMEvalKit), `caption` (CHAIR).
public struct Answer: Sendable {
    public var line: Int
    public var id: String?
    public var text: String
    /// Set on the runner's record for a question it could not answer (e.g. an unreadable image).
    public var error: String?

    public init(line: Int, record: JSONValue, idKeys: [String] = ["question_id"]) {
        self.line = line
        id = record.text(idKeys)
        error = record["error"]?.stringValue
        text = record.text(["text", "answer", "prediction", "response", "output", "caption", "model_prediction"]) ?? ""
    }
}

/// How answers were paired with questions; the report says which.
public enum MatchMode: String, Sendable {
    case questionID = "question_id"
    case order
}

/// Questions paired with their answers; questions without one and answers without a question are reported.
public struct Matched: Sendable {
    public var pairs: [(question: Question, answer: Answer)] = []
    public var mode: MatchMode = .order
    public var issues: [EvalIssue] = []
    public var missing = 0

    /// Pairs by `question_id` when every question and every answer carries one, else by order.
    public init(questions: [Question], questionsFile: String, answers: [Answer], answersFile: String, idName: String = "question_id") {
        /// Pairs a question with its answer, unless the answer records a failure: then it counts as missing.
        func add(_ q: Question, _ a: Answer) {
            if let error = a.error {
                missing += 1
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "no answer (\(error))"))
            } else {
                pairs.append((q, a))
            }
        }
        let byID = !questions.isEmpty && !answers.isEmpty && questions.allSatisfy { $0.id != nil } && answers.allSatisfy { $0.id != nil }
        mode = byID ? .questionID : .order
        if byID {
            var index: [String: Answer] = [:]
            for a in answers {
                if index[a.id!] != nil {
                    issues.append(EvalIssue(file: answersFile, line: a.line, message: "a second answer for \(idName) \(a.id!); the first is kept"))
                } else {
                    index[a.id!] = a
                }
            }
            var used = Set<String>()
            for q in questions {
                if let a = index[q.id!] {
                    used.insert(q.id!)
                    add(q, a)
                } else {
                    missing += 1
                    issues.append(EvalIssue(file: questionsFile, line: q.line, message: "no answer for \(idName) \(q.id!)"))
                }
            }
            for a in answers where !used.contains(a.id!) && index[a.id!]?.line == a.line {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "answer for unknown \(idName) \(a.id!), ignored"))
            }
        } else {
            for (i, q) in questions.enumerated() {
                if i < answers.count {
                    add(q, answers[i])
                } else {
                    missing += 1
                    issues.append(EvalIssue(file: questionsFile, line: q.line, message: "no answer (the answers file has \(answers.count) lines)"))
                }
            }
            for a in answers.dropFirst(questions.count) {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "more answers than questions, ignored"))
            }
        }
    }
}

/// A report: metric sections as JSON (for `--json`/`--out` and `compare`), and Markdown tables for people.
public struct Report: Sendable {
    public var json: JSONValue

    public init(_ json: JSONValue) { self.json = json }

    /// Every numeric leaf under `path` prefixes ("overall.accuracy", "categories.random.f1").
    public static func numericLeaves(_ value: JSONValue, prefix: String = "") -> [(String, Double)] {
        switch value {
        case .int(let i): return [(prefix, Double(i))]
        case .double(let d): return [(prefix, d)]
        case .object(let fields):
            return fields.flatMap { numericLeaves($0.1, prefix: prefix.isEmpty ? $0.0 : prefix + "." + $0.0) }
        default: return []
        }
    }

    /// One Markdown table per section object whose values are numbers (rows: sections, columns: metrics).
    public var markdown: String {
        var out = ""
        if let b = json["benchmark"]?.stringValue { out += "## \(b)" + (json["rule"]?.stringValue.map { " (rule: \($0))" } ?? "") + "\n\n" }
        if let m = json["matched_by"]?.stringValue {
            out += "Answers matched by \(m)" + (json["scored"]?.intValue.map { "; \($0) scored" } ?? "")
                + (json["missing"]?.intValue.map { ", \($0) without an answer" } ?? "")
                + (json["issues"]?.arrayValue.map { ", \($0.count) issues reported" } ?? "") + ".\n\n"
        }
        var rows: [(String, [(String, Double)])] = []
        func collect(_ name: String, _ v: JSONValue) {
            guard let fields = v.objectValue else { return }
            let numbers = fields.compactMap { f -> (String, Double)? in
                if case .int(let i) = f.1 { return (f.0, Double(i)) }
                if case .double(let d) = f.1 { return (f.0, d) }
                return nil
            }
            if !numbers.isEmpty { rows.append((name, numbers)) }
            for f in fields where f.1.objectValue != nil { collect(name.isEmpty ? f.0 : name + " / " + f.0, f.1) }
        }
        for section in json.objectValue ?? [] where section.1.objectValue != nil { collect(section.0, section.1) }
        // Group rows sharing the same columns into one table.
        var i = 0
        while i < rows.count {
            let columns = rows[i].1.map(\.0)
            var j = i
            while j < rows.count && rows[j].1.map(\.0) == columns { j += 1 }
            out += "| | " + columns.joined(separator: " | ") + " |\n|---|" + String(repeating: "---:|", count: columns.count) + "\n"
            for row in rows[i..<j] { out += "| \(row.0) | " + row.1.map { Report.format($0.1) }.joined(separator: " | ") + " |\n" }
            out += "\n"
            i = j
        }
        return out
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%.4f", v)
    }

    /// Side by side: every metric both reports hold, with B - A.
    public static func compare(_ a: JSONValue, _ b: JSONValue, names: (String, String)) -> String {
        let left = numericLeaves(a), right = Dictionary(numericLeaves(b), uniquingKeysWith: { x, _ in x })
        var out = "| metric | \(names.0) | \(names.1) | delta |\n|---|---:|---:|---:|\n"
        for (path, x) in left {
            guard let y = right[path] else { continue }
            let delta = y - x
            out += "| \(path) | \(format(x)) | \(format(y)) | \(delta == 0 ? "0" : (delta > 0 ? "+" : "") + format(delta)) |\n"
        }
        return out
    }
}

func issuesJSON(_ issues: [EvalIssue]) -> JSONValue { .array(issues.map { .string($0.description) }) }
