import Alignment
import Common
import Evaluation
import Foundation
import JSON
import ShapesWorld

/// `realign demo --study`: the demo's methods at growing data sizes, over several seeds, on the demo's test
/// world with its frozen settings — rdpo and dpo on Re-Align pairs and dpo on VaPR pairs — plus, at the largest
/// size, rdpo with each retrieved image replaced by a random training scene (does the retrieval matter?). rdpo's
/// image term alone off is dpo on the same pairs, which the curve already has. Pairs are built once over the
/// largest set; a size keeps the pairs of its first scenes. Two recipes, resumable inside every run.
public final class DemoStudy {
    public let out: String
    public let settings: DemoSettings
    let demo: DemoRun
    let fm = FileManager.default
    public var sizes: [Int]
    public var seeds: [UInt64]

    public init(out: String, settings: DemoSettings, base: String?, sentenceModel: String?) {
        self.out = URL(fileURLWithPath: out).standardizedFileURL.path
        var s = settings
        let quick = settings.name == "quick"
        sizes = quick ? [4, 8, 16] : [300, 600, 1200, 2400]
        seeds = quick ? [settings.seed] : (0..<3).map { settings.seed &+ UInt64($0) }
        s.preferenceScenes = sizes.max()!
        self.settings = s
        demo = DemoRun(out: out, settings: s, base: base, sentenceModel: sentenceModel)
    }

    func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
    var world: String { demo.world }

    /// The study's runs: (name, pairs file key, objective, method setting).
    var runs: [(name: String, pairs: String, objective: String, setting: DemoSettings.MethodSetting, seed: UInt64)] {
        let rdpo = settings.methods.first { $0.name == "realign-rdpo" }!, dpo = settings.methods.first { $0.name == "realign-dpo" }!
        let vapr = settings.methods.first { $0.name == "vapr-dpo" }!
        var out: [(String, String, String, DemoSettings.MethodSetting, UInt64)] = []
        for seed in seeds {
            for n in sizes {
                out.append(("realign-rdpo-n\(n)-s\(seed)", "realign-n\(n)", "rdpo", rdpo, seed))
                out.append(("realign-dpo-n\(n)-s\(seed)", "realign-n\(n)", "dpo", dpo, seed))
                out.append(("vapr-dpo-n\(n)-s\(seed)", "vapr-n\(n)", "dpo", vapr, seed))
            }
            out.append(("rdpo-random-image-n\(sizes.max()!)-s\(seed)", "realign-random-n\(sizes.max()!)", "rdpo", rdpo, seed))
            // rdpo's image term alone off: dpo on the same pairs at rdpo's settings.
            out.append(("dpo-at-rdpo-settings-n\(sizes.max()!)-s\(seed)", "realign-n\(sizes.max()!)", "dpo", rdpo, seed))
        }
        return out
    }

    /// World, pairs over the largest set, the subsets, then every run; writes study.md / study.json / study.html.
    @discardableResult
    public func run() throws -> String {
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        try demo.checkSettings()
        let base = try demo.resolveBase(), minilm = try demo.miniLM()
        if !fm.fileExists(atPath: (world as NSString).appendingPathComponent("vapr_samples.jsonl")) || !fm.fileExists(atPath: path("eval/attributes.jsonl")) {
            log("study: world (seed \(settings.seed &+ 1), \(settings.preferenceScenes) preference scenes)")
            try demo.makeWorld()
        }
        // Phase 1: the pairs of the largest set (the demo's recipe without its training runs).
        var pairsRecipe = demo.recipeText(base: base, sentenceModel: minilm)
        pairsRecipe = String(pairsRecipe[..<pairsRecipe.range(of: "training_defaults:")!.lowerBound])
        let phase1 = try RecipeRunner(recipe: try Recipe(text: pairsRecipe, file: path("pairs/recipe.yaml"), base: out), out: path("pairs"))
        phase1.label = "study (pairs)"
        try phase1.run()
        try writeSubsets(realign: phase1.pairsPath("realign"), vapr: phase1.pairsPath("vapr"))
        // Phase 2: every run, evaluated on the test world's adversarial POPE and captions.
        let phase2 = try RecipeRunner(recipe: try Recipe(text: runsRecipe(base: base), file: path("runs/recipe.yaml"), base: out), out: path("runs"))
        phase2.label = "study"
        try phase2.run()
        return try report(phase2)
    }

    func subsetPath(_ key: String) -> String { path("subsets/\(key).jsonl") }

    /// Pairs of the first `n` scenes for every size, and the largest set with random retrieved images.
    func writeSubsets(realign: String, vapr: String) throws {
        try fm.createDirectory(atPath: path("subsets"), withIntermediateDirectories: true)
        func sceneIndex(_ r: JSONValue) -> Int { Int((r["id"]?.stringValue ?? "").split(separator: "-").dropFirst().first ?? "") ?? Int.max }
        for (kind, file) in [("realign", realign), ("vapr", vapr)] {
            let records = try JSONLines(path: file).records.map(\.value)
            for n in sizes {
                let lines = records.filter { sceneIndex($0) < n }.map { $0.serialized() }
                try (lines.joined(separator: "\n") + "\n").write(toFile: subsetPath("\(kind)-n\(n)"), atomically: true, encoding: .utf8)
            }
        }
        // The ablation: each retrieved image replaced by a training scene drawn at random (seeded), never the pair's own.
        let images = try JSONLines(path: (world as NSString).appendingPathComponent("samples.jsonl")).records.compactMap { $0.value["image"]?.stringValue }
            .map { URL(fileURLWithPath: (world as NSString).appendingPathComponent($0)).standardizedFileURL.path }
        var rng = SplitMix64(seed: settings.seed ^ 0xAB1A7E)
        var lines: [String] = []
        for r in try JSONLines(path: realign).records.map(\.value) {
            guard sceneIndex(r) < sizes.max()!, var fields = r.objectValue else { continue }
            var pick = images[Int(rng.next() % UInt64(images.count))]
            while Array(pick.utf8) == Array((r["image"]?.stringValue ?? "").utf8) && images.count > 1 { pick = images[Int(rng.next() % UInt64(images.count))] }
            if let i = fields.firstIndex(where: { $0.0 == "retrieved_image" }) { fields[i].1 = .string(pick) }
            lines.append(JSONValue.object(fields).serialized())
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: subsetPath("realign-random-n\(sizes.max()!)"), atomically: true, encoding: .utf8)
    }

    func runsRecipe(base: String) -> String {
        func q(_ s: String) -> String { JSONValue.string(s).serialized() }
        let s = settings, w = world
        var y = "# ShapesWorld demo: data-size study (\(s.name) settings: \(s.json.serialized())); sizes \(sizes), seeds \(seeds)\n"
        y += "model_name_or_path: \(q(base))\nseed: \(s.seed)\npairs:\n"
        var keys = sizes.flatMap { ["realign-n\($0)", "vapr-n\($0)"] }
        keys.append("realign-random-n\(sizes.max()!)")
        for k in keys { y += "  - {name: \(k), method: file, path: \(q(subsetPath(k)))}\n" }
        y += "training_defaults:\n  per_device_train_batch_size: \(s.batchSize)\n  gradient_accumulation_steps: 1\n  mm_projector_lr: 0\n"
        y += "  lora_rank: \(s.loraR)\n  lora_alpha: \(2 * s.loraR)\n  save_steps: 10\ntraining:\n"
        for r in runs {
            y += "  - {name: \(r.name), pairs: \(r.pairs), pref_loss: \(r.objective), learning_rate: \(r.setting.learningRate), "
            y += "num_train_epochs: \(r.setting.epochs), pref_beta: \(r.setting.beta), seed: \(r.seed)}\n"
        }
        y += "benchmarks:\n"
        y += "  - {name: pope_adversarial, benchmark: pope, questions: \(q(w + "/pope/pope_adversarial.jsonl")), image_root: \(q(w)), max_new_tokens: 4, batch_size: \(s.evalBatch)}\n"
        y += "  - {name: captions, benchmark: chair, questions: \(q(demo.path("eval/chair_annotations.jsonl"))), objects: \(q(w + "/objects.txt")), image_root: \(q(w)), prompt: \(q(SceneText.captionPrompt)), id_keys: [image_id, question_id], max_new_tokens: 80, batch_size: \(s.evalBatch)}\n"
        return y
    }

    /// One run's two figures with their intervals.
    struct Point {
        var accuracy: Double, accuracyCI: (Double, Double)?
        var chairI: Double, chairICI: (Double, Double)?
        var correct: [String: Bool]
    }

    func point(_ runner: RecipeRunner, model: String, seed: UInt64) throws -> Point {
        let outcomes = try YesNoOutcome.read(questionsFile: (world as NSString).appendingPathComponent("pope/pope_adversarial.jsonl"),
                                             answersFile: runner.answersPath(model: model, benchmark: "pope_adversarial"), rule: .pope)
        let acc = ImageRatio.accuracy(outcomes)
        let chair = try CHAIR(objectList: WorldLexicon.chairObjects, source: "ShapesWorld objects")
            .score(annotationsFile: demo.path("eval/chair_annotations.jsonl"), answersFile: runner.answersPath(model: model, benchmark: "captions")).ratios.chairI
        return Point(accuracy: acc.value ?? 0, accuracyCI: Statistics.interval(acc, resamples: 1000, seed: seed).map { ($0.lower, $0.upper) },
                     chairI: chair.value ?? 0, chairICI: Statistics.interval(chair, resamples: 1000, seed: seed).map { ($0.lower, $0.upper) },
                     correct: Dictionary(outcomes.map { ($0.id, $0.correct) }, uniquingKeysWith: { a, _ in a }))
    }

    func report(_ runner: RecipeRunner) throws -> String {
        let base = try point(runner, model: "base", seed: settings.seed)
        func ci(_ c: (Double, Double)?) -> String { c.map { String(format: "[%.3f, %.3f]", $0.0, $0.1) } ?? "" }
        var rows: [JSONValue] = []
        var md = "# Demo study: data size, seeds, and the retrieval ablation\n\n"
        md += "Test world seed \(settings.seed &+ 1) (the demo's), frozen settings: "
        md += settings.methods.map { "\($0.name) lr \($0.learningRate), \($0.epochs) epochs, beta \($0.beta)" }.joined(separator: "; ")
        md += ". Sizes are preference scenes (each run trains on the pairs of its first scenes); seeds \(seeds.map(String.init).joined(separator: ", ")). "
        md += "Adversarial POPE over \(settings.popeImages) images, CHAIRi over \(settings.chairImages) captions, 95 % bootstrap intervals over images.\n\n"
        md += String(format: "Base: adversarial accuracy %.3f %@, CHAIRi %.3f %@.\n\n", base.accuracy, ci(base.accuracyCI), base.chairI, ci(base.chairICI))
        md += "| method | size | seed | pairs | adversarial accuracy | vs base (McNemar) | CHAIRi |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        var series: [String: [(Double, Double)]] = [:], chairSeries: [String: [(Double, Double)]] = [:]
        for r in runs {
            let p = try point(runner, model: r.name, seed: r.seed)
            let test = PairedComparison.mcNemar(base: base.correct, model: p.correct)
            let method = String(r.name[..<r.name.range(of: "-n")!.lowerBound])
            let n = Int(r.name[r.name.range(of: "-n")!.upperBound...].split(separator: "-").first!)!
            let pairs = (try? JSONLines(path: runner.pairsPath(r.pairs)).records.count) ?? 0
            md += String(format: "| %@ | %d | %llu | %d | %.3f %@ | %+.3f, p %.3g | %.3f %@ |\n", method, n, r.seed, pairs, p.accuracy, ci(p.accuracyCI),
                         test.difference, test.p, p.chairI, ci(p.chairICI))
            rows.append(.object([("run", .string(r.name)), ("method", .string(method)), ("size", .int(n)), ("seed", .int(Int(r.seed))), ("pairs", .int(pairs)),
                                 ("adversarial_accuracy", .double(p.accuracy)), ("adversarial_interval", p.accuracyCI.map { .array([.double($0.0), .double($0.1)]) } ?? .null),
                                 ("vs_base", test.json), ("chair_i", .double(p.chairI)),
                                 ("chair_i_interval", p.chairICI.map { .array([.double($0.0), .double($0.1)]) } ?? .null)]))
            series[method, default: []].append((Double(n), p.accuracy))
            chairSeries[method, default: []].append((Double(n), p.chairI))
        }
        // The chart: each method's mean over seeds per size, and the base as a flat line.
        func means(_ s: [String: [(Double, Double)]], base: Double) -> [(String, [(Double, Double)])] {
            var out: [(String, [(Double, Double)])] = [("base", sizes.map { (Double($0), base) })]
            for (method, points) in s.sorted(by: { $0.key < $1.key }) where points.count > 0 {
                let bySize = Dictionary(grouping: points, by: \.0).map { ($0.key, $0.value.map(\.1).reduce(0, +) / Double($0.value.count)) }.sorted { $0.0 < $1.0 }
                out.append((method, bySize))
            }
            return out
        }
        let accuracyChart = Charts.svg(title: "Adversarial POPE accuracy by preference scenes (mean over seeds)", series: means(series, base: base.accuracy))
        let chairChart = Charts.svg(title: "CHAIRi by preference scenes (mean over seeds)", series: means(chairSeries, base: base.chairI))
        let json: JSONValue = .object([("settings", settings.json), ("sizes", .array(sizes.map { .int($0) })), ("seeds", .array(seeds.map { .int(Int($0)) })),
                                       ("base", .object([("adversarial_accuracy", .double(base.accuracy)), ("chair_i", .double(base.chairI))])),
                                       ("runs", .array(rows))])
        try (json.serialized(pretty: true) + "\n").write(toFile: path("study.json"), atomically: true, encoding: .utf8)
        try md.write(toFile: path("study.md"), atomically: true, encoding: .utf8)
        try accuracyChart.write(toFile: path("study_accuracy.svg"), atomically: true, encoding: .utf8)
        try chairChart.write(toFile: path("study_chair.svg"), atomically: true, encoding: .utf8)
        let html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Demo study</title></head><body>"
            + "<pre>\(Charts.escape(md))</pre>" + accuracyChart + chairChart + "</body></html>\n"
        try html.write(toFile: path("study.html"), atomically: true, encoding: .utf8)
        log("study: \(path("study.md")), study.json, study.html, study_accuracy.svg, study_chair.svg")
        return md
    }
}
