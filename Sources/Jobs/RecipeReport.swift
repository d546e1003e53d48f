import Common
import Evaluation
import Foundation
import JSON
import Preference

/// A recipe's report: report.json (the recipe, its hash, every model's metrics on every benchmark, the pairs'
/// summaries, the stage times), report.md (one table per benchmark, every trained model beside the base with its
/// difference) and report.html (the same tables, self-contained).
public struct RecipeReport {
    let runner: RecipeRunner
    public let json: JSONValue
    /// (model, benchmark, metrics) in the report's order.
    let scores: [(String, [(String, JSONValue)])]

    public init(runner: RecipeRunner) throws {
        self.runner = runner
        var scores: [(String, [(String, JSONValue)])] = []
        for m in runner.models {
            var row: [(String, JSONValue)] = []
            for b in runner.recipe.benchmarks {
                row.append((b.name, try Self.score(b, answers: runner.answersPath(model: m.name, benchmark: b.name))))
            }
            scores.append((m.name, row))
        }
        // The headline figure's interval (bootstrap over images) and, for every run, a paired test against the base.
        for (j, b) in runner.recipe.benchmarks.enumerated() {
            let baseFigure = try Self.figure(b, answers: runner.answersPath(model: "base", benchmark: b.name))
            for i in scores.indices {
                guard let f = i == 0 ? baseFigure : try Self.figure(b, answers: runner.answersPath(model: scores[i].0, benchmark: b.name)),
                      var fields = scores[i].1[j].1.objectValue else { continue }
                let seed = runner.recipe.seed &* 1_000_003 &+ UInt64(j)
                if let ci = Statistics.interval(f.ratio, resamples: 2000, seed: seed) {
                    fields.append(("interval", .object([("figure", .string(Self.headline[b.kind]?.first?.0 ?? "")), ("lower", .double(ci.lower)), ("upper", .double(ci.upper))])))
                }
                if i > 0, let base = baseFigure {
                    if let mine = f.correct, let theirs = base.correct {
                        fields.append(("vs_base", PairedComparison.mcNemar(base: theirs, model: mine).json))
                    } else if let t = Statistics.pairedBootstrap(base.ratio, f.ratio, resamples: 2000, seed: seed) {
                        fields.append(("vs_base", .object([("difference", .double(t.difference)), ("p", .double(t.p)), ("test", .string("paired-bootstrap"))])))
                    }
                }
                scores[i].1[j].1 = .object(fields)
            }
        }
        self.scores = scores
        let pairs: [(String, JSONValue)] = runner.recipe.pairs.map { p in
            let file = runner.pairsPath(p.name)
            let summary = try? JSONValue.parse(contentsOf: URL(fileURLWithPath: file).deletingPathExtension().path + ".summary.json")
            return (p.name, .object([("path", .string(file)), ("pairs", .int((try? JSONLines(path: file).records.count) ?? 0)),
                                     ("summary", summary ?? .null)]))
        }
        json = .object([
            ("title", .string(runner.recipe.title)),
            ("recipe", .string(runner.recipe.text)),
            ("recipe_sha256", .string(runner.recipeHash)),
            ("base_model", .string(runner.recipe.model)),
            ("pairs", .object(pairs)),
            ("models", .object(scores.map { m in
                (m.0, .object([("adapter", runner.models.first { $0.name == m.0 }?.adapter.map { .string($0) } ?? .null),
                               ("benchmarks", .object(m.1))]))
            })),
            ("time_seconds", .object(runner.times.map { ($0.0, .double($0.1)) } + [("total", .double(runner.times.reduce(0) { $0 + $1.1 }))])),
        ])
    }

    /// One benchmark's metrics for one answers file, scored as the benchmark's rule says.
    public static func score(_ b: Recipe.BenchmarkSpec, answers: String) throws -> JSONValue {
        switch b.kind {
        case "pope":
            let rule = YesNoRule(rawValue: b.rule ?? "pope")!
            return try POPEScorer(rule: rule, knownCategories: nil).score(questionsFile: b.questions, answersFile: answers).report(rule: rule).json
        case "mme":
            let rule = MMEScorer.Rule(rawValue: b.rule ?? "mme")!
            return try MMEScorer(rule: rule).score(questionsFile: b.questions, answersFile: answers).report(rule: rule).json
        case "hallusionbench":
            return try HallusionBenchScorer().score(questionsFile: b.questions, answersFile: answers).report(rule: "vlmevalkit-yorn").json
        case "chair":
            let chair = try b.objects.map { path -> CHAIR in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw JobError("\(path): cannot read") }
                return try CHAIR(objectList: text, source: path)
            } ?? CHAIR()
            return try chair.score(annotationsFile: b.questions, answersFile: answers).report().json
        default:
            return try ExactAnswers.score(questions: b.questions, answers: answers)
        }
    }

    /// The benchmark's first headline figure per image (and per question, for McNemar), where it has one: pope and
    /// exact accuracy, CHAIR's CHAIRs.
    static func figure(_ b: Recipe.BenchmarkSpec, answers: String) throws -> (ratio: ImageRatio, correct: [String: Bool]?)? {
        switch b.kind {
        case "pope":
            let outcomes = try YesNoOutcome.read(questionsFile: b.questions, answersFile: answers, rule: YesNoRule(rawValue: b.rule ?? "pope")!)
            return (.accuracy(outcomes), Dictionary(outcomes.map { ($0.id, $0.correct) }, uniquingKeysWith: { a, _ in a }))
        case "exact":
            let outcomes = try ExactAnswers.outcomes(questions: b.questions, answers: answers)
            var r = ImageRatio()
            for o in outcomes { r.add(image: o.image, numerator: o.correct ? 1 : 0, denominator: 1) }
            return (r, Dictionary(outcomes.map { ($0.id, $0.correct) }, uniquingKeysWith: { a, _ in a }))
        case "chair":
            let chair = try b.objects.map { path -> CHAIR in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw JobError("\(path): cannot read") }
                return try CHAIR(objectList: text, source: path)
            } ?? CHAIR()
            return (try chair.score(annotationsFile: b.questions, answersFile: answers).ratios.chairS, nil)
        default:
            return nil
        }
    }

    /// The figures a table shows per benchmark kind: (column, path in the metrics, higher is better).
    static let headline: [String: [(String, [String], Bool)]] = [
        "pope": [("accuracy", ["overall", "accuracy"], true), ("F1", ["overall", "f1"], true), ("yes ratio", ["overall", "yes_ratio"], false)],
        "mme": [("perception", ["totals", "perception"], true), ("cognition", ["totals", "cognition"], true)],
        "hallusionbench": [("aAcc", ["overall", "aAcc"], true), ("fAcc", ["overall", "fAcc"], true), ("qAcc", ["overall", "qAcc"], true)],
        "chair": [("CHAIRs", ["overall", "CHAIRs"], false), ("CHAIRi", ["overall", "CHAIRi"], false), ("recall", ["overall", "recall"], true)],
        "exact": [("accuracy", ["accuracy"], true)],
    ]

    static func value(_ v: JSONValue, _ keys: [String]) -> Double? {
        var x: JSONValue? = v
        for k in keys { x = x?[k] }
        return x?.doubleValue
    }

    /// Per benchmark: (title, header cells, rows of cells).
    var tables: [(String, [String], [[String]])] {
        runner.recipe.benchmarks.enumerated().map { i, b in
            let columns = Self.headline[b.kind] ?? []
            let base = scores[0].1[i].1
            let rows = scores.map { model -> [String] in
                [model.0] + columns.enumerated().map { k, c -> String in
                    guard let v = Self.value(model.1[i].1, c.1) else { return "–" }
                    var text = String(format: "%.3f", v)
                    // The first figure carries its interval and, against the base, its paired test's p.
                    if k == 0, let lo = model.1[i].1["interval"]?["lower"]?.doubleValue, let hi = model.1[i].1["interval"]?["upper"]?.doubleValue {
                        text += String(format: " [%.3f, %.3f]", lo, hi)
                    }
                    guard model.0 != "base", let reference = Self.value(base, c.1) else { return text }
                    text += String(format: " (%@%.3f", v - reference >= 0 ? "+" : "−", abs(v - reference))
                    if k == 0, let p = model.1[i].1["vs_base"]?["p"]?.doubleValue { text += p == 0 ? ", p < 0.001" : String(format: ", p %.3g", p) }
                    return text + ")"
                }
            }
            return ("\(b.name) (\(b.kind)\(b.rule.map { ", \($0) rule" } ?? ""))", ["model"] + columns.map(\.0), rows)
        }
    }

    public var markdown: String {
        var md = "# \(runner.recipe.title)\n\nBase model: `\(runner.recipe.model)`. Recipe: `recipe.yaml` (sha256 \(runner.recipeHash)).\n"
        md += "\nEach table's first figure carries its 95 % bootstrap interval over images and, for a trained model, the p-value of a paired "
        md += "test against the base on the same questions (McNemar's exact test for accuracies, a paired bootstrap for CHAIR).\n"
        for (title, header, rows) in tables {
            md += "\n## \(title)\n\n| " + header.joined(separator: " | ") + " |\n| --- |" + header.dropFirst().map { _ in " ---: |" }.joined() + "\n"
            for r in rows { md += "| " + r.joined(separator: " | ") + " |\n" }
        }
        if !runner.recipe.pairs.isEmpty {
            md += "\n## Pairs\n\n| pairs | kept | unpaired | failed |\n| --- | ---: | ---: | ---: |\n"
            for (name, v) in json["pairs"]?.objectValue ?? [] {
                let s = v["summary"]
                md += "| \(name) | \(v["pairs"]?.intValue ?? 0) | \(s?["unpaired"]?.intValue.map(String.init) ?? "–") | \(s?["failed"]?.intValue.map(String.init) ?? "–") |\n"
            }
        }
        md += "\n## Time\n\n| stage | time |\n| --- | ---: |\n"
        for (stage, seconds) in runner.times { md += "| \(stage) | \(formatDuration(seconds)) |\n" }
        return md
    }

    public var html: String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var body = "<h1>\(esc(runner.recipe.title))</h1><p>Base model: <code>\(esc(runner.recipe.model))</code>; recipe sha256 \(runner.recipeHash)</p>"
        for (title, header, rows) in tables {
            body += "<h2>\(esc(title))</h2><table><tr>" + header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>"
            for r in rows { body += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>" }
            body += "</table>"
        }
        body += "<h2>Recipe</h2><pre>\(esc(runner.recipe.text))</pre>"
        return "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(esc(runner.recipe.title))</title><style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\(body)</body></html>\n"
    }

    /// Writes report.json, report.md and report.html into the run's folder; returns the Markdown.
    public func write() throws -> String {
        try (json.serialized(pretty: true) + "\n").write(toFile: runner.path("report.json"), atomically: true, encoding: .utf8)
        let md = markdown
        try md.write(toFile: runner.path("report.md"), atomically: true, encoding: .utf8)
        try html.write(toFile: runner.path("report.html"), atomically: true, encoding: .utf8)
        return md
    }
}

/// Short answers that must equal the question's `answer` (lower-cased, trimmed of spaces and periods), per
/// `category` and overall: the world's attribute questions, or any exact-match set.
public enum ExactAnswers {
    /// Each question answered, right or wrong, with its image.
    public static func outcomes(questions: String, answers: String) throws -> [(id: String, image: String, correct: Bool)] {
        var truth: [String: (answer: String, image: String)] = [:]
        for (_, r) in try JSONLines(path: questions).records {
            if let id = r.text(["question_id"]), let a = r["answer"]?.stringValue { truth[id] = (a, r["image"]?.stringValue ?? id) }
        }
        return try JSONLines(path: answers).records.compactMap { _, r in
            guard let id = r.text(["question_id"]), let t = truth[id] else { return nil }
            let text = (r["text"]?.stringValue ?? "").lowercased().trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ".")))
            return (id, t.image, Array(text.unicodeScalars) == Array(t.answer.unicodeScalars))
        }
    }

    public static func score(questions: String, answers: String) throws -> JSONValue {
        var truth: [String: (String, String)] = [:]
        for (_, r) in try JSONLines(path: questions).records {
            if let id = r.text(["question_id"]), let a = r["answer"]?.stringValue { truth[id] = (a, r["category"]?.stringValue ?? "all") }
        }
        var right: [String: Int] = [:], total: [String: Int] = [:]
        for (_, r) in try JSONLines(path: answers).records {
            guard let id = r.text(["question_id"]), let (answer, category) = truth[id] else { continue }
            let text = (r["text"]?.stringValue ?? "").lowercased().trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ".")))
            total[category, default: 0] += 1
            if Array(text.unicodeScalars) == Array(answer.unicodeScalars) { right[category, default: 0] += 1 }
        }
        let n = total.values.reduce(0, +)
        var fields: [(String, JSONValue)] = [("accuracy", .double(n == 0 ? 0 : Double(right.values.reduce(0, +)) / Double(n))), ("questions", .int(n))]
        for c in total.keys.sorted() { fields.append((c, .double(Double(right[c] ?? 0) / Double(total[c]!)))) }
        return .object(fields)
    }
}
