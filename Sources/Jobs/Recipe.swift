import Alignment
import Foundation
import Models
import Preference
import Retrieval
import Torch
import Yams

/// The main job as one file: a model, the pairs to build, the training runs, the benchmarks, and the report that
/// compares base and every trained model on every benchmark. Keys follow LLaMA-Factory's and TRL's names where
/// they have one (docs/recipes.md lists them all; `realign run --print-default` writes an annotated recipe).
public struct Recipe: Sendable {
    /// The YAML as given, stored in the report with its hash.
    public var text: String
    public var file: String
    public var model: String
    public var outputDir: String?
    public var seed: UInt64 = 0
    public var knowledgeBase: KnowledgeBaseSpec?
    public var pairs: [PairSpec] = []
    public var training: [TrainSpec] = []
    public var benchmarks: [BenchmarkSpec] = []
    public var title = "ReAlign report"

    public struct KnowledgeBaseSpec: Sendable {
        /// A folder of images or a JSONL with image fields.
        public var images: String
        public var kind: VectorIndex.Kind = .flat
        public var batchSize = 16
    }

    public struct PairSpec: Sendable {
        public var name: String
        /// realign, vapr, or file (pairs made elsewhere, read as they are).
        public var method: String
        /// The job's settings; its input, output and knowledge base are set by the runner.
        public var config: BuildPairsConfig
        /// With method file: the pairs.
        public var path: String?
    }

    public struct TrainSpec: Sendable {
        /// The run's name (with seeds after the first: name-seedN).
        public var name: String
        /// A pair recipe's name, or a file of pairs.
        public var pairs: String
        public var format = "auto"
        public var seed: UInt64
        public var options: TrainingOptions
    }

    public struct BenchmarkSpec: Sendable {
        public static let kinds = ["pope", "mme", "hallusionbench", "chair", "exact"]
        public var name: String
        /// pope, mme, hallusionbench, chair (captions scored against annotations), exact (short answers that
        /// must equal the `answer` field, per `category`).
        public var kind: String
        public var questions: String
        public var imageRoot: String?
        /// The harness rule: pope (pope, lmms-eval, vlmevalkit), mme (mme, vlmevalkit).
        public var rule: String?
        public var maxNewTokens: Int
        public var batchSize = 8
        public var promptSuffix = ""
        public var prompt: String?
        /// chair: the object list (default: the COCO list).
        public var objects: String?
        public var idKeys: [String]
    }
}

extension Recipe {
    static let topKeys = ["model_name_or_path", "output_dir", "seed", "knowledge_base", "pairs", "training_defaults", "training", "benchmarks", "report"]
    static let pairKeys = ["name", "method", "samples", "format", "dataset", "path", "model", "sentence_model", "index", "chosen", "masker", "mask_words",
                           "mask_spans", "mask_kinds", "kind_mix", "seed",
                           "inducer", "induce_mode", "k", "tau", "concurrency", "api_key_env", "timeout", "retries", "editor", "editor_lexicon",
                           "classifier", "max_reuse", "max_length_gap", "max_edit_distance", "bf16_weights"]
    static let trainKeys = ["name", "pairs", "format", "pref_loss", "pref_beta", "seed", "seeds", "num_train_epochs", "max_steps",
                            "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "mm_projector_lr", "weight_decay",
                            "warmup_ratio", "lr_scheduler_type", "max_grad_norm", "finetuning_type", "lora_rank", "lora_alpha", "lora_dropout",
                            "lora_target", "use_rslora", "label_smoothing", "mdpo_delta", "simpo_gamma", "cpo_alpha", "ld_alpha", "save_steps",
                            "bf16", "gradient_checkpointing", "adapter_init", "image_root", "device", "report_to"]
    static let benchmarkKeys = ["name", "benchmark", "questions", "image_root", "rule", "max_new_tokens", "batch_size", "prompt_suffix", "prompt",
                                "objects", "id_keys"]

    /// Reads a recipe file; relative paths in it are relative to its folder.
    public init(contentsOf file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw RecipeError("\(file): cannot read the recipe") }
        guard let text = String(data: data, encoding: .utf8) else { throw RecipeError("\(file): the recipe is not UTF-8 text") }
        try self.init(text: text, file: file, base: (URL(fileURLWithPath: file).standardizedFileURL.path as NSString).deletingLastPathComponent)
    }

    /// Parses and checks a recipe's text: unknown keys, wrong types and bad values are refused with their line.
    public init(text: String, file: String, base: String) throws {
        self.text = text
        self.file = file
        let root = try YAMLMap(composeRecipe(text, file: file), file: file, path: "")
        guard let model = try root.path("model_name_or_path", base: base) else {
            throw RecipeError("\(file): model_name_or_path is required (the base model's Hugging Face folder)")
        }
        self.model = model
        outputDir = try root.path("output_dir", base: base)
        seed = UInt64(try root.int("seed") ?? 0)
        if let kb = try root.map("knowledge_base") {
            guard let images = try kb.path("images", base: base) else { throw kb.fail("images", kb.mark, "required (a folder of images or a JSONL)") }
            var spec = KnowledgeBaseSpec(images: images)
            if let k = try kb.choice("index_kind", VectorIndex.Kind.allNames) { spec.kind = VectorIndex.Kind(rawValue: k)! }
            spec.batchSize = try kb.int("batch_size") ?? 16
            try kb.finish(known: ["images", "index_kind", "batch_size"])
            knowledgeBase = spec
        }
        for p in try root.maps("pairs") ?? [] { pairs.append(try Self.pair(p, model: model, base: base, seed: seed)) }
        let defaults = try root.map("training_defaults")
        for t in try root.maps("training") ?? [] { training += try Self.train(t, defaults: defaults, seed: seed, base: base) }
        _ = try Self.train(nil, defaults: defaults, seed: seed, base: base)
        for b in try root.maps("benchmarks") ?? [] { benchmarks.append(try Self.benchmark(b, base: base)) }
        if let report = try root.map("report") {
            title = try report.string("title") ?? title
            try report.finish(known: ["title"])
        }
        try root.finish(known: Self.topKeys)
        try checkNames()
    }

    static func pair(_ m: YAMLMap, model: String, base: String, seed: UInt64) throws -> PairSpec {
        guard let name = try m.string("name") else { throw RecipeError("\(YAMLMap.place(m.file, m.mark)): \(m.path): name is required") }
        let method = try m.choice("method", ["realign", "vapr", "file"]) ?? "realign"
        var spec = PairSpec(name: name, method: method, config: BuildPairsConfig(input: "", out: "", model: try m.path("model", base: base) ?? model))
        if method == "file" {
            guard let path = try m.path("path", base: base) else { throw m.fail("path", m.mark, "required with method file (the pairs)") }
            spec.path = path
            try m.finish(known: ["name", "method", "path"])
            return spec
        }
        var c = spec.config
        c.method = method == "vapr" ? .vapr : .realign
        guard let samples = try m.path("samples", base: base) else { throw m.fail("samples", m.mark, "required (the samples JSONL pairs are built from)") }
        c.input = samples
        c.inputFormat = try m.choice("format", ["samples"] + PreferenceFormat.allCases.map(\.rawValue)) ?? "samples"
        c.dataset = try m.string("dataset")
        c.sentenceModel = try m.path("sentence_model", base: base)
        c.index = try m.path("index", base: base)
        c.chosen = try m.string("chosen") ?? c.chosen
        c.masker = try m.string("masker") ?? c.masker
        c.maskWords = try m.path("mask_words", base: base)
        c.seed = UInt64(try m.int("seed") ?? Int(seed))
        c.maskSpans = try m.int("mask_spans")
        if let kinds = try m.strings("mask_kinds") {
            c.maskKinds = try kinds.map { k in
                guard let kind = RuleMasker.Kind(rawValue: k) else { throw m.fail("mask_kinds", nil, "'\(k)' is not objects, attributes or relations") }
                return kind
            }
        }
        if let mix = try m.map("kind_mix") {
            var weights: [(kind: String, weight: Double)] = []
            for key in mix.keys {
                guard let w = try mix.double(key), w >= 0 else { throw mix.fail(key, nil, "a weight must be 0 or more") }
                weights.append((key, w))
            }
            guard weights.contains(where: { $0.weight > 0 }) else { throw m.fail("kind_mix", nil, "every weight is 0") }
            c.kindMix = KindMix(weights: weights, seed: c.seed)
        }
        c.inducer = try m.string("inducer") ?? c.inducer
        if let mode = try m.choice("induce_mode", ["continue", "instruct"]) { c.induceMode = Inducer.Mode(rawValue: mode)! }
        c.k = try m.int("k") ?? c.k
        c.tau = try m.double("tau") ?? c.tau
        c.concurrency = try m.int("concurrency") ?? c.concurrency
        c.apiKeyEnv = try m.string("api_key_env")
        c.timeout = try m.double("timeout") ?? c.timeout
        c.retries = try m.int("retries") ?? c.retries
        c.editor = try m.string("editor")
        c.editorLexicon = try m.path("editor_lexicon", base: base)
        c.classifier = try m.string("classifier") ?? c.classifier
        c.maxReuse = try m.int("max_reuse") ?? c.maxReuse
        c.maxLengthGap = try m.int("max_length_gap")
        c.maxEditDistance = try m.int("max_edit_distance")
        c.bf16Weights = try m.bool("bf16_weights") ?? false
        try m.finish(known: pairKeys)
        do { try c.validate() } catch { throw RecipeError("\(YAMLMap.place(m.file, m.mark)): \(m.path) (\(name)): \(error)") }
        spec.config = c
        return spec
    }

    /// A training entry, over the defaults; one per seed.
    /// A training entry over the defaults, one per seed; with no entry, the defaults alone are read (checked).
    static func train(_ entry: YAMLMap?, defaults: YAMLMap?, seed: UInt64, base: String) throws -> [TrainSpec] {
        guard let m = entry ?? defaults else { return [] }
        var name = "", pairs = ""
        if let entry {
            guard let n = try entry.string("name") else { throw RecipeError("\(YAMLMap.place(m.file, m.mark)): \(m.path): name is required") }
            guard let raw = try entry.string("pairs") else { throw m.fail("pairs", m.mark, "required (a pair recipe's name or a file of pairs)") }
            name = n
            pairs = isFile(raw) ? YAMLMap.resolve(raw, base: base) : raw
        }
        // A key of the entry wins over the same key of the defaults.
        func read<T>(_ key: String, _ get: (YAMLMap) throws -> T?) throws -> T? {
            if let entry, entry.has(key) { return try get(entry) }
            if let defaults, defaults.has(key) { return try get(defaults) }
            return nil
        }
        var o = TrainingOptions()
        if let text = try read("pref_loss", { try $0.string("pref_loss") }) {
            do { o.objectives = try ObjectiveMix(parsing: text).terms } catch {
                let at = entry?.has("pref_loss") == true ? entry! : defaults!
                throw at.fail("pref_loss", at.node("pref_loss")?.1, "\(error)")
            }
        }
        o.objectiveSettings.beta = try read("pref_beta") { try $0.double("pref_beta") } ?? o.objectiveSettings.beta
        o.epochs = try read("num_train_epochs") { try $0.double("num_train_epochs") } ?? o.epochs
        o.steps = try read("max_steps") { try $0.int("max_steps") }
        o.batchSize = try read("per_device_train_batch_size") { try $0.int("per_device_train_batch_size") } ?? o.batchSize
        o.gradientAccumulation = try read("gradient_accumulation_steps") { try $0.int("gradient_accumulation_steps") } ?? o.gradientAccumulation
        o.learningRate = try read("learning_rate") { try $0.double("learning_rate") } ?? o.learningRate
        if let p = try read("mm_projector_lr", { try $0.double("mm_projector_lr") }) { o.projectorLearningRate = p > 0 ? p : nil }
        o.weightDecay = try read("weight_decay") { try $0.double("weight_decay") } ?? o.weightDecay
        o.warmupRatio = try read("warmup_ratio") { try $0.double("warmup_ratio") } ?? o.warmupRatio
        if let s = try read("lr_scheduler_type", { try $0.choice("lr_scheduler_type", ["constant", "linear", "cosine"]) }) { o.schedule = LRSchedule.Kind(rawValue: s)! }
        o.maxGradNorm = try read("max_grad_norm") { try $0.double("max_grad_norm") } ?? o.maxGradNorm
        o.full = try read("finetuning_type") { try $0.choice("finetuning_type", ["lora", "full"]) } == "full"
        let r = try read("lora_rank") { try $0.int("lora_rank") } ?? o.lora.r
        let alpha = try read("lora_alpha") { try $0.double("lora_alpha") } ?? Double(2 * r)
        let dropout = try read("lora_dropout") { try $0.double("lora_dropout") } ?? o.lora.dropout
        o.lora = LoRAConfig(r: r, alpha: alpha, dropout: dropout, rsLoRA: try read("use_rslora") { try $0.bool("use_rslora") } ?? false)
        if let t = try read("lora_target", { try $0.string("lora_target") }) { o.loraTargets = try LoRATargets(parsing: t) }
        o.objectiveSettings.labelSmoothing = try read("label_smoothing") { try $0.double("label_smoothing") } ?? 0
        o.objectiveSettings.mdpoDelta = try read("mdpo_delta") { try $0.double("mdpo_delta") } ?? 0
        o.objectiveSettings.simpoGamma = try read("simpo_gamma") { try $0.double("simpo_gamma") } ?? o.objectiveSettings.simpoGamma
        o.objectiveSettings.cpoAlpha = try read("cpo_alpha") { try $0.double("cpo_alpha") } ?? o.objectiveSettings.cpoAlpha
        o.objectiveSettings.ldAlpha = try read("ld_alpha") { try $0.double("ld_alpha") }
        o.checkpointEvery = try read("save_steps") { try $0.int("save_steps") } ?? o.checkpointEvery
        if try read("bf16", { try $0.bool("bf16") }) == true { o.dtype = .bfloat16 }
        o.gradientCheckpointing = try read("gradient_checkpointing") { try $0.bool("gradient_checkpointing") } ?? false
        o.adapterInit = try read("adapter_init") { try $0.path("adapter_init", base: base) }
        o.imageRoot = try read("image_root") { try $0.path("image_root", base: base) }
        if let d = try read("device", { try $0.string("device") }) {
            guard let device = Device(name: d) else { throw m.fail("device", nil, "'\(d)' is not cpu, cuda or cuda:N") }
            o.device = device
        }
        if let targets = try read("report_to", { try $0.strings("report_to") }) { o.tensorBoard = targets.contains("tensorboard") }
        let format = try read("format") { try $0.choice("format", PreferenceFormat.allCases.map(\.rawValue)) } ?? "auto"
        let seeds: [UInt64]
        if let list = try read("seeds", { try $0.strings("seeds") }) {
            seeds = try list.map { text in
                guard let s = UInt64(text) else { throw m.fail("seeds", nil, "'\(text)' is not a seed (a whole number)") }
                return s
            }
        } else {
            seeds = [UInt64(try read("seed") { try $0.int("seed") } ?? Int(seed))]
        }
        try m.finish(known: entry == nil ? trainKeys.filter { $0 != "name" && $0 != "pairs" } : trainKeys)
        return seeds.enumerated().map { k, s in
            var options = o
            options.seed = s
            return TrainSpec(name: k == 0 ? name : "\(name)-seed\(s)", pairs: pairs, format: format, seed: s, options: options)
        }
    }

    static func benchmark(_ m: YAMLMap, base: String) throws -> BenchmarkSpec {
        guard let kind = try m.choice("benchmark", BenchmarkSpec.kinds) else { throw m.fail("benchmark", m.mark, "required: one of \(BenchmarkSpec.kinds.joined(separator: ", "))") }
        let name = try m.string("name") ?? kind
        guard let questions = try m.path("questions", base: base) else { throw m.fail("questions", m.mark, "required (the questions JSONL)") }
        let rules = ["pope": ["pope", "lmms-eval", "vlmevalkit"], "mme": ["mme", "vlmevalkit"]][kind] ?? []
        let rule = rules.isEmpty ? nil : try m.choice("rule", rules) ?? rules[0]
        let tokens = ["pope": 4, "mme": 4, "hallusionbench": 16, "chair": 128, "exact": 8][kind]!
        var spec = BenchmarkSpec(name: name, kind: kind, questions: questions, imageRoot: try m.path("image_root", base: base), rule: rule,
                                 maxNewTokens: try m.int("max_new_tokens") ?? tokens, objects: nil,
                                 idKeys: try m.strings("id_keys") ?? (kind == "hallusionbench" ? ["id"] : ["question_id", "id", "image_id"]))
        spec.batchSize = try m.int("batch_size") ?? spec.batchSize
        spec.promptSuffix = try m.string("prompt_suffix") ?? ""
        spec.prompt = try m.string("prompt")
        spec.objects = try m.path("objects", base: base)
        try m.finish(known: benchmarkKeys + (rules.isEmpty ? [] : ["rule"]))
        guard spec.maxNewTokens >= 1, spec.batchSize >= 1 else { throw m.fail("max_new_tokens", m.mark, "max_new_tokens and batch_size must be positive") }
        return spec
    }

    /// A training entry's `pairs` names a file rather than a pair recipe.
    static func isFile(_ s: String) -> Bool { s.contains("/") || s.hasSuffix(".jsonl") || s.hasSuffix(".json") }

    /// Names are folder names in the output: unique, and plain.
    func checkNames() throws {
        func plain(_ s: String) -> Bool { !s.isEmpty && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) } && s != "base" }
        for (kind, names) in [("pairs", pairs.map(\.name)), ("training", training.map(\.name)), ("benchmarks", benchmarks.map(\.name))] {
            for n in names where !plain(n) { throw RecipeError("\(file): \(kind): the name '\(n)' must be letters, digits, - _ . (and not 'base')") }
            if let d = names.first(where: { n in names.filter { Array($0.utf8) == Array(n.utf8) }.count > 1 }) {
                throw RecipeError("\(file): \(kind): the name '\(d)' is used twice")
            }
        }
        for t in training where !pairs.contains(where: { Array($0.name.utf8) == Array(t.pairs.utf8) }) && !Self.isFile(t.pairs) {
            throw RecipeError("\(file): training '\(t.name)': pairs '\(t.pairs)' is neither a pair recipe's name (\(pairs.map(\.name).joined(separator: ", "))) nor a file")
        }
    }

    /// The files and folders the recipe reads that must exist before it runs (not those an earlier stage makes).
    public func missingFiles() -> [String] {
        let fm = FileManager.default
        var needed: [(String, String)] = [("model_name_or_path", (model as NSString).appendingPathComponent("config.json"))]
        if let kb = knowledgeBase { needed.append(("knowledge_base.images", kb.images)) }
        for p in pairs {
            if let path = p.path { needed.append(("pairs \(p.name): path", path)); continue }
            needed.append(("pairs \(p.name): samples", p.config.input))
            needed.append(("pairs \(p.name): model", (p.config.model as NSString).appendingPathComponent("config.json")))
            for (key, v) in [("sentence_model", p.config.sentenceModel), ("index", p.config.index), ("mask_words", p.config.maskWords),
                             ("editor_lexicon", p.config.editorLexicon)] {
                if let v { needed.append(("pairs \(p.name): \(key)", v)) }
            }
        }
        for t in training where !pairs.contains(where: { Array($0.name.utf8) == Array(t.pairs.utf8) }) {
            needed.append(("training \(t.name): pairs", t.pairs))
        }
        for t in training { if let a = t.options.adapterInit { needed.append(("training \(t.name): adapter_init", a)) } }
        for b in benchmarks {
            needed.append(("benchmarks \(b.name): questions", b.questions))
            if let o = b.objects { needed.append(("benchmarks \(b.name): objects", o)) }
        }
        return needed.filter { !fm.fileExists(atPath: $0.1) }.map { "\(file): \($0.0): \($0.1) does not exist" }
    }
}

extension VectorIndex.Kind {
    static var allNames: [String] { ["flat", "hnsw", "ivf", "ivfpq"] }
}
