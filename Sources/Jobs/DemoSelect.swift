import Common
import Evaluation
import Foundation
import JSON
import ShapesWorld

/// `realign demo --select`: the demo's settings chosen on a validation world that shares no scene with the test
/// world, by a criterion fixed before any run — adversarial POPE accuracy on the validation world's held-out scenes.
/// Phase A picks the rule masker's span count with rdpo at the current settings; phase B gives every method the
/// same grid (learning rate x epochs x beta) on the pairs phase A chose. Both phases are recipes, so a kill
/// resumes inside the unfinished run; the test world is never read.
public final class DemoSelection {
    public let out: String
    public let settings: DemoSettings
    let demo: DemoRun
    let fm = FileManager.default

    /// The grid every method gets (the same number of runs each, so no method is favoured).
    public var learningRates: [Double]
    public var epochs: [Double]
    public var betas: [Double]
    /// Phase A's candidates: spans per answer (0 = every span).
    public var spanCandidates: [Int]

    public init(out: String, settings: DemoSettings, base: String?, sentenceModel: String?) {
        self.out = URL(fileURLWithPath: out).standardizedFileURL.path
        self.settings = settings
        demo = DemoRun(out: out, settings: settings, base: base, sentenceModel: sentenceModel)
        let quick = settings.name == "quick"
        learningRates = quick ? [2e-4] : [2e-4, 5e-4, 1e-3]
        epochs = quick ? [1] : [2, 4]
        betas = quick ? [0.1, 0.5] : [0.1, 0.5]
        spanCandidates = quick ? [1, 0] : [1, 2, 3, 0]
    }

    /// The validation world's seed: far from the test world's (`seed + 1`) and from the shipped model's (0).
    public static func validationSeed(_ seed: UInt64) -> UInt64 { seed &+ 0x7A11D }

    func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
    var world: String { path("world") }

    /// Runs both phases (resuming) and writes selection.md / selection.json; returns the Markdown.
    @discardableResult
    public func run() throws -> String {
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let base = try demo.resolveBase(), minilm = try demo.miniLM()
        log("select: validation world (seed \(Self.validationSeed(settings.seed))) into \(world)")
        if !fm.fileExists(atPath: path("world/vapr_samples.jsonl")) {
            var spec = WorldSpec()
            spec.train = settings.preferenceScenes
            spec.test = settings.testScenes
            spec.seed = Self.validationSeed(settings.seed)
            _ = try generateWorld(spec, out: world, popeImages: settings.popeImages)
            try DemoRun.writeVaPRSamples(world: world)
        }
        // Phase A: the mask's span count, with rdpo at the current settings.
        let rdpo = settings.methods.first { $0.objective == "rdpo" }!
        let phaseA = try RecipeRunner(recipe: try Recipe(text: recipe(base: base, minilm: minilm, spans: spanCandidates, runs: spanCandidates.map { k in
            ("rdpo-spans\(k)", "realign-spans\(k)", rdpo.objective, rdpo.learningRate, rdpo.epochs, rdpo.beta)
        }), file: path("phase-a/recipe.yaml"), base: out), out: path("phase-a"))
        phaseA.label = "select (phase A)"
        try phaseA.run()
        let a = try scores(phaseA)
        let bestSpans = spanCandidates[a.indices.max { a[$0].accuracy < a[$1].accuracy || (a[$0].accuracy == a[$1].accuracy && $0 > $1) }!]
        log("select: phase A chose \(bestSpans == 0 ? "every span" : "\(bestSpans) span(s)")")
        // Phase B: every method over the same grid, on phase A's pairs.
        var runs: [(String, String, String, Double, Double, Double)] = []
        for m in settings.methods {
            for lr in learningRates { for e in epochs { for b in betas {
                runs.append(("\(m.name)-lr\(lr)-ep\(e)-b\(b)", m.pairs, m.objective, lr, e, b))
            } } }
        }
        let realignPairs = path("phase-a/pairs/realign-spans\(bestSpans).jsonl")
        let phaseB = try RecipeRunner(recipe: try Recipe(text: recipe(base: base, minilm: minilm, spans: [], runs: runs, realignFile: realignPairs),
                                                         file: path("phase-b/recipe.yaml"), base: out), out: path("phase-b"))
        phaseB.label = "select (phase B)"
        try phaseB.run()
        let b = try scores(phaseB)
        var chosen: [DemoSettings.MethodSetting] = []
        var tableB: [(String, [JSONValue])] = []
        for m in settings.methods {
            let mine = b.filter { $0.name.hasPrefix(m.name + "-lr") }
            let best = mine.max { $0.accuracy < $1.accuracy || ($0.accuracy == $1.accuracy && $0.order > $1.order) }!
            let run = runs.first { $0.0 == best.name }!
            chosen.append(DemoSettings.MethodSetting(name: m.name, pairs: m.pairs, objective: m.objective, learningRate: run.3, epochs: run.4, beta: run.5))
            tableB.append((m.name, mine.map { $0.json }))
        }
        let json: JSONValue = .object([
            ("validation_seed", .int(Int(Self.validationSeed(settings.seed)))), ("settings", settings.json),
            ("criterion", .string("adversarial POPE accuracy on the validation world's held-out scenes (higher is better; ties: the earlier setting)")),
            ("phase_a", .object([("candidates", .array(a.map(\.json))), ("chosen_spans", .int(bestSpans))])),
            ("phase_b", .object(tableB.map { ($0.0, .array($0.1)) })),
            ("chosen", .array(chosen.map(\.json))),
        ])
        try (json.serialized(pretty: true) + "\n").write(toFile: path("selection.json"), atomically: true, encoding: .utf8)
        let md = markdown(a: a, spans: bestSpans, b: b, chosen: chosen)
        try md.write(toFile: path("selection.md"), atomically: true, encoding: .utf8)
        log("select: \(path("selection.md")), \(path("selection.json"))")
        return md
    }

    /// A run's criterion on the validation world, with its interval.
    struct Score {
        var name: String
        var order: Int
        var accuracy: Double
        var interval: (Double, Double)?
        var json: JSONValue {
            .object([("run", .string(name)), ("adversarial_accuracy", .double(accuracy)),
                     ("interval", interval.map { .array([.double($0.0), .double($0.1)]) } ?? .null)])
        }
    }

    func scores(_ runner: RecipeRunner) throws -> [Score] {
        let questions = (world as NSString).appendingPathComponent("pope/pope_adversarial.jsonl")
        return try runner.recipe.training.enumerated().map { i, t in
            let outcomes = try YesNoOutcome.read(questionsFile: questions, answersFile: runner.answersPath(model: t.name, benchmark: "pope_adversarial"), rule: .pope)
            let ratio = ImageRatio.accuracy(outcomes)
            let ci = Statistics.interval(ratio, resamples: 1000, seed: settings.seed &+ UInt64(i))
            return Score(name: t.name, order: i, accuracy: ratio.value ?? 0, interval: ci.map { ($0.lower, $0.upper) })
        }
    }

    /// A selection recipe over the validation world: Re-Align pairs per span candidate (or the chosen file),
    /// VaPR pairs, the runs, and the criterion's benchmark.
    func recipe(base: String, minilm: String, spans: [Int], runs: [(String, String, String, Double, Double, Double)], realignFile: String? = nil) -> String {
        func q(_ s: String) -> String { JSONValue.string(s).serialized() }
        let w = world, s = settings
        var y = "# ShapesWorld demo: settings selection on the validation world (\(s.name) settings: \(s.json.serialized()))\n"
        y += "model_name_or_path: \(q(base))\nseed: \(s.seed)\n"
        y += "knowledge_base:\n  images: \(q(w + "/samples.jsonl"))\npairs:\n"
        for k in spans {
            y += "  - {name: realign-spans\(k), method: realign, samples: \(q(w + "/instruction_samples.jsonl")), "
            y += "kind_mix: {\(s.kindMix.split(separator: ",").map { $0.replacingOccurrences(of: "=", with: ": ") }.joined(separator: ", "))}, "
            y += "sentence_model: \(q(minilm)), mask_words: \(q(w + "/mask_words.txt"))\(k > 0 ? ", mask_spans: \(k)" : ""), k: 5, tau: 0.95, concurrency: 1}\n"
        }
        if let realignFile { y += "  - {name: realign, method: file, path: \(q(realignFile))}\n" }
        if runs.contains(where: { $0.1 == "vapr" }) {
            y += "  - {name: vapr, method: vapr, samples: \(q(w + "/vapr_samples.jsonl")), editor: rules, editor_lexicon: \(q(w + "/editor_lexicon.json")), max_reuse: 100, concurrency: 1}\n"
        }
        y += "training_defaults:\n  per_device_train_batch_size: \(s.batchSize)\n  gradient_accumulation_steps: 1\n  mm_projector_lr: 0\n"
        y += "  lora_rank: \(s.loraR)\n  lora_alpha: \(2 * s.loraR)\n  save_steps: 10\n  seed: \(s.seed)\ntraining:\n"
        for r in runs {
            y += "  - {name: \(r.0), pairs: \(r.1), pref_loss: \(r.2), learning_rate: \(r.3), num_train_epochs: \(r.4), pref_beta: \(r.5)}\n"
        }
        y += "benchmarks:\n  - {name: pope_adversarial, benchmark: pope, questions: \(q(w + "/pope/pope_adversarial.jsonl")), image_root: \(q(w)), max_new_tokens: 4, batch_size: \(s.evalBatch)}\n"
        return y
    }

    func markdown(a: [Score], spans: Int, b: [Score], chosen: [DemoSettings.MethodSetting]) -> String {
        func cell(_ s: Score) -> String {
            String(format: "%.3f", s.accuracy) + (s.interval.map { String(format: " [%.3f, %.3f]", $0.0, $0.1) } ?? "")
        }
        var md = "# Demo settings chosen on the validation world\n\n"
        md += "Validation world: seed \(Self.validationSeed(settings.seed)), \(settings.preferenceScenes) preference scenes, "
        md += "\(settings.testScenes) held-out scenes (POPE adversarial over \(settings.popeImages) images). Criterion, fixed before "
        md += "any run: adversarial POPE accuracy on the validation world (95 % bootstrap interval over images). The test world is not read.\n\n"
        md += "## Phase A: spans the rule masker hides (rdpo at the current settings)\n\n| spans | adversarial accuracy |\n| --- | ---: |\n"
        for (k, s) in zip(spanCandidates, a) { md += "| \(k == 0 ? "every span" : String(k)) | \(cell(s)) |\n" }
        md += "\nChosen: \(spans == 0 ? "every span" : "\(spans) span(s)").\n\n"
        md += "## Phase B: the same grid for every method\n\n| run | adversarial accuracy |\n| --- | ---: |\n"
        for s in b { md += "| \(s.name) | \(cell(s)) |\n" }
        md += "\n## Chosen\n\n| method | learning rate | epochs | beta |\n| --- | ---: | ---: | ---: |\n"
        for m in chosen { md += "| \(m.name) | \(m.learningRate) | \(m.epochs) | \(m.beta) |\n" }
        return md
    }
}
