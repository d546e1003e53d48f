import Alignment
import Evaluation
import Common
import Foundation
import Jobs
import JSON
import Preference

/// The demo's report: report.json (every number, the contract other tools read), report.md (the tables) and a
/// self-contained report.html (the tables, SVG charts and example pairs with their images inline).
struct DemoReport {
    let run: DemoRun
    let json: JSONValue
    let rows: [(String, JSONValue)]

    /// Bootstrap draws per interval and per paired bootstrap.
    static let resamples = 2000

    init(run: DemoRun, base: String, total: Double) throws {
        self.run = run
        var models: [(String, JSONValue)] = [("base", try run.scores(name: "base", adapter: nil))]
        for m in run.methods { models.append((m.name, try run.scores(name: m.name, adapter: run.path("train/\(m.name)/adapter")))) }
        // Every figure's interval, and every trained model against the base on the same questions and images.
        let baseFigures = try run.figures(name: "base")
        for i in models.indices {
            let figures = i == 0 ? baseFigures : try run.figures(name: models[i].0)
            var intervals: [(String, JSONValue)] = [], tests: [(String, JSONValue)] = []
            for (k, column) in Self.columns.enumerated() {
                let key = column.1.joined(separator: ".")
                guard let f = figures[key] else { continue }
                let seed = run.settings.seed &* 1_000_003 &+ UInt64(k)
                if let ci = Statistics.interval(f.ratio, resamples: Self.resamples, seed: seed) {
                    intervals.append((key, .array([.double(ci.lower), .double(ci.upper)])))
                }
                guard i > 0, let b = baseFigures[key] else { continue }
                if let mine = f.correct, let theirs = b.correct {
                    tests.append((key, PairedComparison.mcNemar(base: theirs, model: mine).json))
                } else if let t = Statistics.pairedBootstrap(b.ratio, f.ratio, resamples: Self.resamples, seed: seed) {
                    tests.append((key, .object([("difference", .double(t.difference)), ("interval", .array([.double(t.lower), .double(t.upper)])),
                                                ("p", .double(t.p)), ("test", .string("paired-bootstrap"))])))
                }
            }
            var fields = models[i].1.objectValue ?? []
            fields.append(("intervals", .object(intervals)))
            if i > 0 { fields.append(("vs_base", .object(tests))) }
            models[i].1 = .object(fields)
        }
        rows = models
        var pairs: [(String, JSONValue)] = []
        for recipe in ["realign", "vapr"] {
            let file = run.path("pairs/\(recipe).jsonl")
            let summary = try? JSONValue.parse(contentsOf: run.path("pairs/\(recipe).summary.json"))
            pairs.append((recipe, .object([("path", .string(run.relative(file))), ("pairs", .int(try JSONLines(path: file).records.count)),
                                           ("summary", summary ?? .null), ("quality", try run.pairQuality(file))])))
        }
        json = .object([
            ("seed", .int(Int(run.settings.seed))),
            ("seeds", .array(run.methods.map(\.seed).reduce(into: [UInt64]()) { if !$0.contains($1) { $0.append($1) } }.map { .int(Int($0)) })),
            ("settings", run.settings.json),
            ("time_seconds", .object(run.times.map { ($0.0, .double($0.1)) } + [("total", .double(total))])),
            ("base_model", .string(base)),
            ("questions", .object(DemoRun.splits.map { ($0, .string("world/pope/pope_\($0).jsonl")) })),
            ("pairs", .object(pairs.map { ($0.0, $0.1["path"]!) })),
            ("pair_counts", .object(pairs.map { ($0.0, $0.1["pairs"]!) })),
            ("pair_summaries", .object(pairs.map { ($0.0, $0.1["summary"]!) })),
            ("pair_quality", .object(pairs.map { ($0.0, $0.1["quality"]!) })),
            ("statistics", .object([("interval", .string("percentile bootstrap over images, 95 %")), ("resamples", .int(Self.resamples)),
                                    ("accuracy_test", .string("McNemar's exact test, two-sided, on the same questions")),
                                    ("other_test", .string("paired bootstrap over images, two-sided")),
                                    ("detectable_80", .string("(z_0.975 + z_0.8) sqrt(discordant share / questions): the smallest accuracy difference the paired test detects with 80 % power"))])),
            ("models", .object(models)),
        ])
    }

    func write() throws {
        try (json.serialized(pretty: true) + "\n").write(toFile: run.path("report.json"), atomically: true, encoding: .utf8)
        try markdown.write(toFile: run.path("report.md"), atomically: true, encoding: .utf8)
        try html().write(toFile: run.path("report.html"), atomically: true, encoding: .utf8)
    }

    // MARK: numbers

    /// The report's columns: (header, how to read it, higher is better).
    static let columns: [(String, [String], Bool)] = [
        ("POPE random acc", ["pope", "random", "accuracy"], true), ("popular acc", ["pope", "popular", "accuracy"], true),
        ("adversarial acc", ["pope", "adversarial", "accuracy"], true), ("adversarial F1", ["pope", "adversarial", "f1"], true),
        ("yes ratio (adv.)", ["pope", "adversarial", "yes_ratio"], false), ("false-yes rate", ["yes_bias", "false_yes_rate"], false),
        ("false yes: absent partner", ["prior", "absent_partner_false_yes"], false), ("false yes: other absent", ["prior", "other_absent_false_yes"], false),
        ("CHAIRs", ["chair", "CHAIRs"], false), ("CHAIRi", ["chair", "CHAIRi"], false), ("CHAIR recall", ["chair", "recall"], true),
        ("attributes acc", ["attributes", "accuracy"], true),
    ]

    func cell(_ model: JSONValue, _ keys: [String]) -> Double? {
        var v: JSONValue? = model
        for k in keys { v = v?[k] }
        return v?.doubleValue
    }

    var table: String {
        var out = "| model | " + Self.columns.map(\.0).joined(separator: " | ") + " |\n"
        out += "| --- |" + String(repeating: " ---: |", count: Self.columns.count) + "\n"
        let base = rows[0].1
        for (name, model) in rows {
            let cells = Self.columns.map { column -> String in
                guard let v = cell(model, column.1) else { return "–" }
                guard name != "base", let b = cell(base, column.1) else { return String(format: "%.3f", v) }
                return String(format: "%.3f (%@%.3f)", v, v - b >= 0 ? "+" : "−", abs(v - b))
            }
            out += "| \(name) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// The pairs by kind of sample, with how many rejected answers name an absent shape or an absent partner, and
    /// how much of the chosen answer the masks hid.
    var pairKinds: String {
        var out = "| pairs | kinds | rejected names an absent shape | … an absent partner | masks hide (mean) |\n| --- | --- | ---: | ---: | ---: |\n"
        for recipe in ["realign", "vapr"] {
            guard let q = json["pair_quality"]?[recipe] else { continue }
            let kinds = (q["categories"]?.objectValue ?? []).map { "\($0.0) \($0.1.intValue ?? 0)" }.joined(separator: ", ")
            let masked = json["pair_summaries"]?[recipe]?["mean_masked_fraction"]?.doubleValue.map { String(format: "%.0f%%", 100 * $0) } ?? "–"
            out += "| \(recipe) | \(kinds.isEmpty ? "–" : kinds) | \(q["rejected_names_absent_shape"]?.intValue ?? 0) | \(q["rejected_names_absent_partner"]?.intValue ?? 0) | \(masked) |\n"
        }
        return out
    }

    var intervalTable: String {
        var out = "| model | " + Self.columns.map(\.0).joined(separator: " | ") + " |\n"
        out += "| --- |" + String(repeating: " ---: |", count: Self.columns.count) + "\n"
        for (name, model) in rows {
            let cells = Self.columns.map { column -> String in
                guard let ci = model["intervals"]?[column.1.joined(separator: ".")]?.arrayValue, ci.count == 2,
                      let lo = ci[0].doubleValue, let hi = ci[1].doubleValue else { return "–" }
                return String(format: "[%.3f, %.3f]", lo, hi)
            }
            out += "| \(name) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// McNemar's exact p for accuracies (with the questions only the model / only the base got right), a paired
    /// bootstrap's p for the rest.
    var testTable: String {
        var out = "| model | " + Self.columns.map(\.0).joined(separator: " | ") + " |\n"
        out += "| --- |" + String(repeating: " ---: |", count: Self.columns.count) + "\n"
        for (name, model) in rows.dropFirst() {
            let cells = Self.columns.map { column -> String in
                guard let t = model["vs_base"]?[column.1.joined(separator: ".")], let p = t["p"]?.doubleValue else { return "–" }
                if let b = t["better"]?.intValue, let w = t["worse"]?.intValue { return String(format: "p %.3g (+%d/−%d)", p, b, w) }
                // No bootstrap draw crossed zero: the p-value is below what the draws can resolve.
                return p == 0 ? String(format: "p < %.2g", 2.0 / Double(Self.resamples)) : String(format: "p %.3g", p)
            }
            out += "| \(name) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// What the evaluation can tell: the smallest accuracy difference detectable with 80 % power (two-sided 5 %),
    /// for two independent samples of this size at the base's accuracy, and for the paired tests run here.
    var power: String {
        var parts: [String] = []
        for (label, key, questionsKey) in DemoRun.splits.map({ ("POPE \($0)", "pope.\($0).accuracy", $0) }) + [("attributes", "attributes.accuracy", "attributes")] {
            guard let p = cell(rows[0].1, key.split(separator: ".").map(String.init)) else { continue }
            let n = questionsKey == "attributes" ? rows[0].1["attributes"]?["questions"]?.intValue ?? 0 : questionCount(split: questionsKey)
            guard n > 0 else { continue }
            let unpaired = 2.801585 * (2 * p * (1 - p) / Double(n)).squareRoot()
            let paired = rows.dropFirst().compactMap { $0.1["vs_base"]?[key] }.filter { ($0["better"]?.intValue ?? 0) + ($0["worse"]?.intValue ?? 0) > 0 }
                .compactMap { $0["detectable_80"]?.doubleValue }
            var text = String(format: "%@ (%d questions): %.1f points unpaired", label, n, 100 * unpaired)
            if let lo = paired.min(), let hi = paired.max() {
                text += String(format: ", %.1f–%.1f paired", 100 * lo, 100 * hi)
            } else {
                text += ", no answer changed"
            }
            parts.append(text)
        }
        guard !parts.isEmpty else { return "" }
        return "Smallest accuracy difference detectable with 80 % power at the two-sided 5 % level — for two independent "
            + "samples of this size at the base's accuracy (2.80 sqrt(2p(1-p)/n)), and for the paired tests above, from the "
            + "share of questions each model answers differently from the base (2.80 sqrt(discordant share / n)): "
            + parts.joined(separator: "; ") + ". McNemar's counts are the questions only the model (+) or only the base (−) answers right."
    }

    func questionCount(split: String) -> Int {
        (try? JSONLines(path: (run.world as NSString).appendingPathComponent("pope/pope_\(split).jsonl")).records.count) ?? 0
    }

    /// Mean and spread (min–max) over seeds of each method, when there is more than one seed.
    var spreadTable: String? {
        guard run.settings.seeds > 1 else { return nil }
        var groups: [(String, [JSONValue])] = []
        for (name, model) in rows.dropFirst() {
            let method = name.components(separatedBy: "-seed").first!
            if let i = groups.firstIndex(where: { $0.0 == method }) { groups[i].1.append(model) } else { groups.append((method, [model])) }
        }
        let picked = ["POPE random acc", "adversarial acc", "false yes: absent partner", "CHAIRi", "attributes acc"]
            .compactMap { name in Self.columns.first { $0.0 == name } }
        var out = "| method (\(run.settings.seeds) seeds) | " + picked.map { $0.0 + " mean [min, max]" }.joined(separator: " | ") + " |\n"
        out += "| --- |" + String(repeating: " ---: |", count: picked.count) + "\n"
        for (method, models) in groups {
            let cells = picked.map { column -> String in
                let vs = models.compactMap { cell($0, column.1) }
                guard !vs.isEmpty else { return "–" }
                return String(format: "%.3f [%.3f, %.3f]", vs.reduce(0, +) / Double(vs.count), vs.min()!, vs.max()!)
            }
            out += "| \(method) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    var timeTable: String {
        var out = "| stage | time |\n| --- | ---: |\n"
        for (name, s) in run.times { out += "| \(name) | \(formatDuration(s)) |\n" }
        out += "| **total** | **\(formatDuration(run.times.reduce(0) { $0 + $1.1 }))** |\n"
        return out
    }

    /// What the numbers say, written from them (nothing here is chosen by hand).
    var findings: [String] {
        let base = rows[0].1
        var lines: [String] = []
        guard let baseRandom = cell(base, ["pope", "random", "accuracy"]), let baseAdv = cell(base, ["pope", "adversarial", "accuracy"]) else { return lines }
        for recipe in ["realign", "vapr"] {
            guard let q = json["pair_quality"]?[recipe], let n = q["pairs"]?.intValue, n > 0,
                  let absent = q["rejected_names_absent_shape"]?.intValue, let partner = q["rejected_names_absent_partner"]?.intValue else { continue }
            lines.append(String(format: "%@ pairs: %d; in %d (%.0f%%) the rejected answer names a shape the image lacks, in %d (%.0f%%) the absent partner of a present shape.",
                                recipe == "realign" ? "Re-Align" : "VaPR", n, absent, 100 * Double(absent) / Double(n), partner, 100 * Double(partner) / Double(n)))
        }
        lines.append(String(format: "The base model answers POPE random at %.3f and adversarial at %.3f: the prior of the training scenes (partner shapes) costs it %.1f points where the partner is asked about but absent.", baseRandom, baseAdv, 100 * (baseRandom - baseAdv)))
        if let partner = cell(base, ["prior", "absent_partner_false_yes"]), let other = cell(base, ["prior", "other_absent_false_yes"]) {
            lines.append(String(format: "Asked about an absent shape whose partner is in the image, the base says yes %.0f%% of the time; about other absent shapes, %.0f%%.", 100 * partner, 100 * other))
            if let adv = cell(base, ["prior", "absent_partner_share", "adversarial"]), let random = cell(base, ["prior", "absent_partner_share", "random"]) {
                lines.append(String(format: "Of the adversarial split's \"no\" questions %.0f%% ask about an absent partner, of the random split's %.0f%%: at these false-yes rates that makes the adversarial split about %.1f points harder than random, and even a model that said yes to every absent partner and to nothing else would find it only %.1f points harder.",
                                    100 * adv, 100 * random, 50 * (adv - random) * (partner - other), 50 * (adv - random)))
            }
        }
        for (name, model) in rows.dropFirst() {
            guard let adv = cell(model, ["pope", "adversarial", "accuracy"]), let chair = cell(model, ["chair", "CHAIRi"]),
                  let baseChair = cell(base, ["chair", "CHAIRi"]), let attr = cell(model, ["attributes", "accuracy"]),
                  let baseAttr = cell(base, ["attributes", "accuracy"]) else { continue }
            let verdict = adv > baseAdv + 0.005 ? "improves" : adv < baseAdv - 0.005 ? "lowers" : "leaves unchanged"
            var line = String(format: "%@ %@ adversarial accuracy (%+.3f), CHAIRi %+.3f, attribute accuracy %+.3f", name, verdict, adv - baseAdv, chair - baseChair, attr - baseAttr)
            if let p = cell(model, ["prior", "absent_partner_false_yes"]), let b = cell(base, ["prior", "absent_partner_false_yes"]) {
                line += String(format: ", yes to an absent partner %+.0f points", 100 * (p - b))
            }
            lines.append(line + ".")
        }
        return lines
    }

    var markdown: String {
        let s = run.settings
        var out = "# ReAlign demo on ShapesWorld\n\n"
        out += "Mode \(s.name), seed \(s.seed)\(s.seeds > 1 ? " (training seeds \(s.seed)–\(s.seed + UInt64(s.seeds) - 1))" : ""); "
        out += "\(s.preferenceScenes) preference scenes, \(s.testScenes) held-out scenes (POPE over \(s.popeImages) images, "
        out += "CHAIR over \(s.chairImages), \(s.attributeQuestions) attribute questions); LoRA r \(s.loraR), batch \(s.batchSize); "
        out += s.methods.map { "\($0.name) lr \($0.learningRate), \($0.epochs) epochs, beta \($0.beta)" }.joined(separator: "; ") + ".\n\n"
        out += "## Hallucination before and after (deltas against the base)\n\n" + table + "\n"
        out += "## 95 % intervals (bootstrap over images, \(Self.resamples) resamples, seeded)\n\n" + intervalTable + "\n"
        out += "## Against the base, on the same questions (p-values)\n\n" + testTable + "\n" + power + "\n\n"
        if let spread = spreadTable { out += "## Spread over seeds\n\n" + spread + "\n" }
        let counts = json["pair_counts"]
        out += "## Preference data\n\nRe-Align pairs: \(counts?["realign"]?.intValue ?? 0); VaPR pairs: \(counts?["vapr"]?.intValue ?? 0) "
        out += "(of \(s.preferenceScenes) samples each; the rest are in the `.skipped.jsonl` files with their reasons).\n\n"
        out += pairKinds + "\n"
        out += "## What the numbers say\n\n" + findings.map { "- " + $0 }.joined(separator: "\n") + "\n\n"
        out += "## Time per stage\n\n" + timeTable
        return out
    }

    // MARK: html

    func barChart() -> String {
        let names = rows.map(\.0)
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        let width = 760.0, height = 320.0, left = 50.0, bottom = 40.0, top = 40.0
        let groupWidth = (width - left - 170) / Double(DemoRun.splits.count)
        let barWidth = groupWidth / Double(names.count + 1)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"\(left)\" y=\"22\" font-size=\"15\">POPE accuracy by split and model (axis from 0.5)</text>"
        func y(_ v: Double) -> Double { top + (1 - (max(0.5, v) - 0.5) / 0.5) * (height - top - bottom) }
        for t in [0.5, 0.6, 0.7, 0.8, 0.9, 1.0] {
            out += "<line x1=\"\(left)\" x2=\"\(width - 170)\" y1=\"\(y(t))\" y2=\"\(y(t))\" stroke=\"#ddd\"/><text x=\"\(left - 6)\" y=\"\(y(t) + 4)\" text-anchor=\"end\">\(t)</text>"
        }
        for (g, split) in DemoRun.splits.enumerated() {
            let x0 = left + Double(g) * groupWidth
            out += "<text x=\"\(x0 + groupWidth / 2)\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(split)</text>"
            for (i, (_, model)) in rows.enumerated() {
                guard let v = cell(model, ["pope", split, "accuracy"]) else { continue }
                let x = x0 + Double(i) * barWidth + barWidth / 2
                out += "<rect x=\"\(x)\" y=\"\(y(v))\" width=\"\(barWidth * 0.9)\" height=\"\(height - bottom - y(v))\" fill=\"\(colors[i % colors.count])\"><title>\(Charts.escape(names[i])) \(split): \(String(format: "%.3f", v))</title></rect>"
            }
        }
        for (i, n) in names.enumerated() {
            out += "<rect x=\"\(width - 160)\" y=\"\(top + 18 * Double(i) - 10)\" width=\"12\" height=\"12\" fill=\"\(colors[i % colors.count])\"/><text x=\"\(width - 142)\" y=\"\(top + 18 * Double(i))\">\(Charts.escape(n))</text>"
        }
        return out + "</svg>"
    }

    /// One metric over training steps, a line per method.
    func trainingChart(_ key: String, title: String) -> String {
        var series: [(String, [(Double, Double)])] = []
        for m in run.methods {
            guard let data = FileManager.default.contents(atPath: run.path("train/\(m.name)/metrics.jsonl")) else { continue }
            var points: [(Double, Double)] = []
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let v = try? JSONValue.parse(Array(line)), let step = v["step"]?.doubleValue, let y = v[key]?.doubleValue { points.append((step, y)) }
            }
            if !points.isEmpty { series.append((m.name, points)) }
        }
        return series.isEmpty ? "" : Charts.svg(title: title, series: series)
    }

    func dataURL(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return "data:image/png;base64," + data.base64EncodedString()
    }

    func examples() -> String {
        var out = ""
        for recipe in ["realign", "vapr"] {
            guard let lines = try? JSONLines(path: run.path("pairs/\(recipe).jsonl")) else { continue }
            out += "<h3>\(recipe == "realign" ? "Re-Align pairs (masked, retrieved image, induced rejection)" : "VaPR pairs (rule editor)")</h3>"
            for (_, r) in lines.records.prefix(4) {
                let image = r["image"]?.stringValue ?? "", retrieved = r["retrieved_image"]?.stringValue
                out += "<div class=\"pair\"><div><img src=\"\(dataURL(image))\" alt=\"image\"><br>image</div>"
                if let retrieved { out += "<div><img src=\"\(dataURL(retrieved))\" alt=\"retrieved\"><br>retrieved (rank \(r["retrieval_rank"]?.intValue ?? 0))</div>" }
                out += "<dl><dt>prompt</dt><dd>\(Charts.escape(r["prompt"]?.stringValue ?? ""))</dd>"
                if let masked = r["masked"]?.stringValue { out += "<dt>masked</dt><dd>\(Charts.escape(masked))</dd>" }
                out += "<dt>chosen</dt><dd class=\"chosen\">\(Charts.escape(r["chosen"]?.stringValue ?? ""))</dd>"
                out += "<dt>rejected</dt><dd class=\"rejected\">\(Charts.escape(r["rejected"]?.stringValue ?? ""))</dd>"
                if let sim = r["similarity"]?.doubleValue { out += "<dt>similarity</dt><dd>\(String(format: "%.3f", sim))</dd>" }
                if let subs = r["substitutions"]?.arrayValue { out += "<dt>substitutions</dt><dd>\(Charts.escape(subs.compactMap { $0.stringValue }.joined(separator: "; ")))</dd>" }
                out += "</dl></div>"
            }
        }
        return out
    }

    /// A Markdown table as an HTML table (the report's own tables only: no inline markup beyond **bold**).
    func htmlTable(_ markdown: String) -> String {
        let lines = markdown.split(separator: "\n").map(String.init)
        guard lines.count >= 2 else { return "" }
        func cells(_ line: String) -> [String] {
            line.trimmingCharacters(in: CharacterSet(charactersIn: "| ")).components(separatedBy: " | ").map {
                Charts.escape($0).replacingOccurrences(of: "**", with: "")
            }
        }
        var out = "<table><tr>" + cells(lines[0]).map { "<th>\($0)</th>" }.joined() + "</tr>"
        for line in lines.dropFirst(2) { out += "<tr>" + cells(line).map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return out + "</table>"
    }

    func html() -> String {
        let s = run.settings
        var out = """
            <!DOCTYPE html><html><head><meta charset="utf-8"><title>ReAlign demo on ShapesWorld</title><style>
            body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222} table{border-collapse:collapse;font-size:13px}
            td,th{border:1px solid #ccc;padding:4px 8px;text-align:right} td:first-child,th:first-child{text-align:left}
            .pair{display:flex;gap:16px;align-items:flex-start;border-top:1px solid #ddd;padding:10px 0}
            .pair img{width:192px;height:192px;image-rendering:pixelated} .pair div{text-align:center;font-size:12px}
            dl{margin:0;font-size:13px} dt{font-weight:bold;margin-top:4px} dd{margin:0} .chosen{color:#1a7f37} .rejected{color:#b42318}
            </style></head><body>
            <h1>ReAlign demo on ShapesWorld</h1>
            """
        out += "<p>Mode \(s.name), seed \(s.seed); \(s.preferenceScenes) preference scenes, \(s.testScenes) held-out scenes; LoRA r \(s.loraR), batch \(s.batchSize); "
            + Charts.escape(s.methods.map { "\($0.name) lr \($0.learningRate), \($0.epochs) epochs, beta \($0.beta)" }.joined(separator: "; "))
            + ". Every number below is measured in this run.</p>"
        out += "<h2>Hallucination before and after</h2>" + htmlTable(table)
        out += "<h2>95 % intervals (bootstrap over images)</h2>" + htmlTable(intervalTable)
        out += "<h2>Against the base, on the same questions</h2>" + htmlTable(testTable) + "<p>\(Charts.escape(power))</p>"
        if let spread = spreadTable { out += "<h2>Spread over seeds</h2>" + htmlTable(spread) }
        out += "<h2>What the numbers say</h2><ul>" + findings.map { "<li>\(Charts.escape($0))</li>" }.joined() + "</ul>"
        out += "<h2>POPE by split</h2>" + barChart()
        out += "<h2>Training</h2>" + trainingChart("rewards/margins", title: "Reward margin (chosen - rejected) per step")
        out += trainingChart("rewards/accuracies", title: "Reward accuracy per step")
        out += "<h2>Example pairs</h2>" + examples()
        out += "<h2>Time per stage</h2>" + htmlTable(timeTable)
        return out + "</body></html>\n"
    }
}
