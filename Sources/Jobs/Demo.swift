import Alignment
import Evaluation
import Common
import Foundation
import JSON
import Models
import Preference
import ShapesWorld
import WorldModel

/// The sizes of a demo run.
public struct DemoSettings: Sendable {
    public var name: String
    public var seed: UInt64 = 0
    public var seeds = 1
    public var preferenceScenes: Int
    public var testScenes: Int
    public var popeImages: Int
    public var chairImages: Int
    public var attributeQuestions: Int
    public var batchSize: Int
    public var loraR = 16
    public var evalBatch = 32
    /// Re-Align's samples: one per preference scene, its caption or one of its questions answered in a full
    /// sentence, drawn with these weights (the paper's instruction data mixes descriptions and conversations).
    public var kindMix = "caption=0.5,existence=0.2,count=0.1,colour=0.1,size=0.05,position=0.05"
    /// The rule masker hides at most this many spans of an answer (objects, attributes, relations): 1, chosen
    /// on the validation world (docs/demo-selection.md).
    public var maskSpans = 1

    // The evaluation has the real POPE's size: 500 images per split (3,000 questions; 1,200 held-out scenes hold
    // about 610 with three or more shapes), CHAIR over 500 captions, 1,000 attribute questions.
    /// Each method's training: its pairs, objective and the settings the validation world chose (`demo --select`;
    /// until a selection is frozen here, the shared defaults above).
    public var methods: [MethodSetting]

    public struct MethodSetting: Sendable, Equatable {
        public var name: String
        /// realign or vapr.
        public var pairs: String
        public var objective: String
        public var learningRate: Double
        public var epochs: Double
        public var beta: Double

        public var json: JSONValue {
            .object([("name", .string(name)), ("pairs", .string(pairs)), ("objective", .string(objective)),
                     ("learning_rate", .double(learningRate)), ("epochs", .double(epochs)), ("beta", .double(beta))])
        }
    }

    /// The four methods of the report, all at one setting.
    public static func methods(learningRate: Double, epochs: Double, beta: Double) -> [MethodSetting] {
        [("realign-rdpo", "realign", "rdpo"), ("realign-dpo", "realign", "dpo"), ("mdpo", "realign", "mdpo"), ("vapr-dpo", "vapr", "dpo")].map {
            MethodSetting(name: $0.0, pairs: $0.1, objective: $0.2, learningRate: learningRate, epochs: epochs, beta: beta)
        }
    }

    /// Each method's learning rate, epochs and beta as `realign demo --select` chose them on the validation world
    /// (seed 499997; docs/demo-selection.md): the best adversarial POPE accuracy there of the same 12-run grid.
    public static let full = DemoSettings(name: "default", preferenceScenes: 600, testScenes: 1200, popeImages: 500, chairImages: 500,
                                          attributeQuestions: 1000, batchSize: 8, methods: [
                                              MethodSetting(name: "realign-rdpo", pairs: "realign", objective: "rdpo", learningRate: 2e-4, epochs: 2, beta: 0.1),
                                              MethodSetting(name: "realign-dpo", pairs: "realign", objective: "dpo", learningRate: 5e-4, epochs: 4, beta: 0.1),
                                              MethodSetting(name: "mdpo", pairs: "realign", objective: "mdpo", learningRate: 5e-4, epochs: 4, beta: 0.1),
                                              MethodSetting(name: "vapr-dpo", pairs: "vapr", objective: "dpo", learningRate: 2e-4, epochs: 2, beta: 0.1),
                                          ])
    public static let quick = DemoSettings(name: "quick", preferenceScenes: 16, testScenes: 30, popeImages: 6, chairImages: 6,
                                           attributeQuestions: 12, batchSize: 4, methods: methods(learningRate: 2e-4, epochs: 1, beta: 0.1))

    public var json: JSONValue {
        .object([("mode", .string(name)), ("seed", .int(Int(seed))), ("seeds", .int(seeds)),
                 ("preference_scenes", .int(preferenceScenes)), ("test_scenes", .int(testScenes)), ("pope_images", .int(popeImages)),
                 ("chair_images", .int(chairImages)), ("attribute_questions", .int(attributeQuestions)),
                 ("batch_size", .int(batchSize)), ("lora_r", .int(loraR)), ("lora_alpha", .int(2 * loraR)), ("kind_mix", .string(kindMix)), ("mask_spans", .int(maskSpans)),
                 ("methods", .array(methods.map(\.json)))])
    }
}

/// One trained row of the report: its objective, its pairs and its seed.
public struct DemoMethod: Sendable {
    var name: String
    var objective: String
    var pairs: String
    var seed: UInt64
}

public final class DemoRun {
    let out: String
    let settings: DemoSettings
    let baseOption: String?
    let sentenceModelOption: String?
    var times: [(String, Double)] { runner?.times ?? [] }
    var runner: RecipeRunner?
    let fm = FileManager.default

    public init(out: String, settings: DemoSettings, base: String?, sentenceModel: String?) {
        self.out = URL(fileURLWithPath: out).standardizedFileURL.path
        self.settings = settings
        baseOption = base
        sentenceModelOption = sentenceModel
    }

    func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
    var world: String { path("world") }

    static let splits = POPEBuilder.splits

    /// The settings this folder was started with; other settings refuse (another --out, or delete it).
    func checkSettings() throws {
        let settingsPath = path("demo_settings.json")
        if fm.fileExists(atPath: settingsPath) {
            let saved = try JSONValue.parse(contentsOf: settingsPath)
            guard saved == settings.json else {
                throw JobError("\(out) holds a demo run with other settings (\(saved.serialized())); use another --out or delete it")
            }
        } else {
            try (settings.json.serialized(pretty: true) + "\n").write(toFile: settingsPath, atomically: true, encoding: .utf8)
        }
    }

    // MARK: the run

    /// The built-in recipe over this run's world: `realign run` runs it as it is (`realign demo --print-recipe`).
    public func recipeText(base: String, sentenceModel: String) -> String {
        func q(_ s: String) -> String { JSONValue.string(s).serialized() }
        let w = world
        let s = settings
        var y = """
            # ShapesWorld demo (\(s.name) settings: \(s.json.serialized()))
            model_name_or_path: \(q(base))
            output_dir: \(q(out))
            seed: \(s.seed)
            knowledge_base:
              images: \(q(w + "/samples.jsonl"))
            pairs:
              - name: realign
                method: realign
                samples: \(q(w + "/instruction_samples.jsonl"))
                kind_mix: {\(s.kindMix.split(separator: ",").map { $0.replacingOccurrences(of: "=", with: ": ") }.joined(separator: ", "))}
                sentence_model: \(q(sentenceModel))
                mask_words: \(q(w + "/mask_words.txt"))
                mask_spans: \(s.maskSpans)
                k: 5
                tau: 0.95
                concurrency: 1
              - name: vapr
                method: vapr
                samples: \(q(w + "/vapr_samples.jsonl"))
                editor: rules
                editor_lexicon: \(q(w + "/editor_lexicon.json"))
                # The paper's 3 uses per substitution is for open vocabularies; the world has 82 words.
                max_reuse: 100
                concurrency: 1
            training_defaults:
              per_device_train_batch_size: \(s.batchSize)
              gradient_accumulation_steps: 1
              mm_projector_lr: 0
              lora_rank: \(s.loraR)
              lora_alpha: \(2 * s.loraR)
              save_steps: 10
              seeds: [\((0..<s.seeds).map { String(s.seed &+ UInt64($0)) }.joined(separator: ", "))]
            training:
            \(s.methods.map { m in "  - {name: \(m.name), pairs: \(m.pairs), pref_loss: \(m.objective), learning_rate: \(m.learningRate), num_train_epochs: \(m.epochs), pref_beta: \(m.beta)}" }.joined(separator: "\n"))
            benchmarks:

            """
        for split in Self.splits {
            y += "  - {name: pope_\(split), benchmark: pope, questions: \(q(w + "/pope/pope_\(split).jsonl")), image_root: \(q(w)), max_new_tokens: 4, batch_size: \(s.evalBatch)}\n"
        }
        y += "  - {name: captions, benchmark: chair, questions: \(q(path("eval/chair_annotations.jsonl"))), objects: \(q(w + "/objects.txt")), image_root: \(q(w)), prompt: \(q(SceneText.captionPrompt)), id_keys: [image_id, question_id], max_new_tokens: 80, batch_size: \(s.evalBatch)}\n"
        y += "  - {name: attributes, benchmark: exact, questions: \(q(path("eval/attributes.jsonl"))), image_root: \(q(w)), id_keys: [question_id], max_new_tokens: 6, batch_size: \(s.evalBatch)}\n"
        y += "report:\n  title: \(q("ShapesWorld demo (\(s.name), seed \(s.seed))"))\n"
        return y
    }

    /// The recipe's methods in the report's order (seeds after the first suffixed).
    public var methods: [DemoMethod] {
        (runner?.recipe.training ?? []).map { t in
            DemoMethod(name: t.name, objective: ObjectiveMix.text(t.options.objectives), pairs: path("pairs/\(t.pairs).jsonl"), seed: t.seed)
        }
    }

    /// The built-in recipe of these settings.
    public func recipe() throws -> String { recipeText(base: try resolveBase(), sentenceModel: try miniLM()) }

    /// World generation, then the built-in recipe; returns the report's Markdown.
    @discardableResult
    public func run() throws -> String {
        let started = Date()
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        try checkSettings()
        log("demo: \(settings.name) run into \(out), seed \(settings.seed)")
        let base = try resolveBase()
        let text = recipeText(base: base, sentenceModel: try miniLM())
        let recipe = try Recipe(text: text, file: path("recipe.yaml"), base: out)
        let runner = try RecipeRunner(recipe: recipe, out: out)
        runner.label = "demo"
        runner.prelude = [("world", { try self.makeWorld() })]
        runner.writeReport = { runner in
            let total = runner.times.reduce(0) { $0 + $1.1 }
            let report = try DemoReport(run: self, base: base, total: total)
            try report.write()
            return report.markdown
        }
        self.runner = runner
        let markdown = try runner.run()
        log("demo: this run \(formatDuration(Date().timeIntervalSince(started)))")
        return markdown
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
        try Self.writeVaPRSamples(world: world)
    }

    /// VaPR edits answers of every task: one record per preference scene, its caption or one of its questions
    /// (world/vapr_samples.jsonl, from sft.jsonl).
    static func writeVaPRSamples(world: String) throws {
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
            throw JobError("the shipped ShapesWorld model is missing from this build; build it with `realign world pretrain --out DIR` and pass --base DIR/model")
        }
        return shipped
    }

    func miniLM() throws -> String {
        if let sentenceModelOption { return sentenceModelOption }
        return try SentenceModels.miniLM()
    }

    /// Everything measured for one model, as the report's contract names it.
    func scores(name: String, adapter: String?) throws -> JSONValue {
        let folder = path("eval/\(name)")
        // The three splits' answers together (ids are unique across splits), for the yes-bias table.
        var together = ""
        for split in Self.splits { together += try String(contentsOfFile: "\(folder)/pope_\(split).answers.jsonl", encoding: .utf8) }
        try together.write(toFile: "\(folder)/pope_all.answers.jsonl", atomically: true, encoding: .utf8)
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

    /// Every POPE question (three splits) about an absent shape: its image, the shape and the split, by question id.
    func absentShapeQuestions() throws -> [String: (image: String, shape: Shape, split: String)] {
        var asked: [String: (image: String, shape: Shape, split: String)] = [:]
        for (_, r) in try JSONLines(path: (world as NSString).appendingPathComponent("pope/pope_all.jsonl")).records {
            guard let id = r.text(["question_id"]), let image = r["image"]?.stringValue, let text = r["text"]?.stringValue,
                  r["label"]?.stringValue == "no",
                  let shape = Shape.allCases.first(where: { Array(POPEBuilder.questionText($0.rawValue).utf8) == Array(text.utf8) }) else { continue }
            asked[id] = (image, shape, r["category"]?.stringValue ?? "")
        }
        return asked
    }

    /// The world's bias, measured on every POPE question of the three splits: how often the model says "yes" to
    /// a shape that is absent while its partner is present (the prior speaking), against other absent shapes.
    func partnerPrior(answers: String) throws -> JSONValue {
        let shapes = try objectsByImage("annotations.jsonl").mapValues { $0.compactMap(Shape.init(rawValue:)) }
        let asked = try absentShapeQuestions()
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
            let absent = Set(chair.mentions(Self.withoutNegations(r["rejected"]?.stringValue ?? ""))).subtracting(present)
            if !absent.isEmpty { rejectedAbsent += 1 }
            let partners = Set(present.compactMap { Shape(rawValue: $0).flatMap(WorldLexicon.partner(of:))?.rawValue })
            if !absent.isDisjoint(with: partners) { rejectedPartner += 1 }
            if !Set(chair.mentions(Self.withoutNegations(r["chosen"]?.stringValue ?? ""))).subtracting(present).isEmpty { chosenAbsent += 1 }
        }
        var fields: [(String, JSONValue)] = [("pairs", .int(pairs)), ("rejected_names_absent_shape", .int(rejectedAbsent)),
                                             ("rejected_names_absent_partner", .int(rejectedPartner)), ("chosen_names_absent_shape", .int(chosenAbsent))]
        if !categories.isEmpty { fields.append(("categories", .object(categories.keys.sorted().map { ($0, .int(categories[$0]!)) }))) }
        return .object(fields)
    }

    /// The answer without "no <shape>" ("no, there is no ring in the image." claims no ring): what CHAIR's word match
    /// would otherwise count as a mention.
    static func withoutNegations(_ text: String) -> String {
        text.replacingOccurrences(of: "\\bno [a-z]+", with: "", options: .regularExpression)
    }

    /// Exact answers to the colour, count, size, position and background questions, per category and overall.
    func attributeScores(answers: String) throws -> JSONValue {
        try ExactAnswers.score(questions: path("eval/attributes.jsonl"), answers: answers)
    }

    func relative(_ p: String) -> String { p.hasPrefix(out + "/") ? String(p.dropFirst(out.count + 1)) : p }

    // MARK: figures per image, for intervals and paired tests

    /// One figure of the report kept per image, and per question where it is an accuracy (McNemar's test pairs
    /// questions).
    struct Figure {
        var ratio: ImageRatio
        var correct: [String: Bool]?
    }

    /// Every figure of the report's table for one model, keyed by its path in report.json ("pope.random.accuracy"),
    /// recomputed from the answer files.
    func figures(name: String) throws -> [String: Figure] {
        let folder = path("eval/\(name)")
        var out: [String: Figure] = [:]
        var all: [YesNoOutcome] = []
        for split in Self.splits {
            let outcomes = try YesNoOutcome.read(questionsFile: (world as NSString).appendingPathComponent("pope/pope_\(split).jsonl"),
                                                 answersFile: "\(folder)/pope_\(split).answers.jsonl", rule: .pope)
            all += outcomes
            out["pope.\(split).accuracy"] = Figure(ratio: .accuracy(outcomes), correct: Dictionary(outcomes.map { ($0.id, $0.correct) }, uniquingKeysWith: { a, _ in a }))
            if split == "adversarial" {
                out["pope.adversarial.f1"] = Figure(ratio: .f1(outcomes))
                out["pope.adversarial.yes_ratio"] = Figure(ratio: .yesRatio(outcomes))
            }
        }
        out["yes_bias.false_yes_rate"] = Figure(ratio: .falseYes(all))
        let prior = try priorRatios(answers: "\(folder)/pope_all.answers.jsonl")
        out["prior.absent_partner_false_yes"] = Figure(ratio: prior.partner)
        out["prior.other_absent_false_yes"] = Figure(ratio: prior.other)
        let chair = try CHAIR(objectList: WorldLexicon.chairObjects, source: "ShapesWorld objects")
            .score(annotationsFile: path("eval/chair_annotations.jsonl"), answersFile: "\(folder)/captions.answers.jsonl").ratios
        out["chair.CHAIRs"] = Figure(ratio: chair.chairS)
        out["chair.CHAIRi"] = Figure(ratio: chair.chairI)
        out["chair.recall"] = Figure(ratio: chair.recall)
        let attributes = try ExactAnswers.outcomes(questions: path("eval/attributes.jsonl"), answers: "\(folder)/attributes.answers.jsonl")
        var ratio = ImageRatio()
        for a in attributes { ratio.add(image: a.image, numerator: a.correct ? 1 : 0, denominator: 1) }
        out["attributes.accuracy"] = Figure(ratio: ratio, correct: Dictionary(attributes.map { ($0.id, $0.correct) }, uniquingKeysWith: { a, _ in a }))
        return out
    }

    /// The partner-prior rates per image: "yes" to an absent shape whose partner is present, and to other absent
    /// shapes (the same questions as `partnerPrior`).
    func priorRatios(answers: String) throws -> (partner: ImageRatio, other: ImageRatio) {
        let shapes = try objectsByImage("annotations.jsonl").mapValues { $0.compactMap(Shape.init(rawValue:)) }
        let asked = try absentShapeQuestions()
        var partner = ImageRatio(), other = ImageRatio()
        for (_, r) in try JSONLines(path: answers).records {
            guard let id = r.text(["question_id"]), let q = asked[id] else { continue }
            let yes: Double = YesNoRule.pope.parse(r["text"]?.stringValue ?? "") == .yes ? 1 : 0
            if (shapes[q.image] ?? []).contains(where: { WorldLexicon.partner(of: $0) == q.shape }) {
                partner.add(image: q.image, numerator: yes, denominator: 1)
            } else {
                other.add(image: q.image, numerator: yes, denominator: 1)
            }
        }
        return (partner, other)
    }

}
