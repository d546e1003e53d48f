import Foundation
import JSON
import Torch

/// LoRA in PEFT's format for any VLM: module names as transformers 5 holds them in memory (the model's
/// `transformersName`, e.g. `model.language_model.layers.0.self_attn.q_proj`), weights under `base_model.model.`.
extension VLMModel {
    /// The Linear modules `targets` selects, by our names. `all-linear` is every Linear of the language model
    /// except lm_head; names and regexes are matched against transformers' names, as PEFT matches them.
    public func loraCandidates(_ targets: LoRATargets) -> [(String, Linear)] {
        namedModules().compactMap { name, module in
            guard let linear = module as? Linear, !name.hasSuffix(".lora_A"), !name.hasSuffix(".lora_B") else { return nil }
            switch targets {
            case .allLinear:
                return isLanguageModelLinear(name) ? (name, linear) : nil
            default:
                return targets.matches(transformersName(name)) ? (name, linear) : nil
            }
        }
    }

    /// Attaches fresh adapters to the selected modules and freezes everything else (vision tower included).
    /// Returns the adapted modules' names. `trainProjector` leaves the projector trainable (Re-Align's
    /// `mm_projector_lr` group; saved as PEFT `modules_to_save`).
    @discardableResult
    public func applyLoRA(_ config: LoRAConfig, targets: LoRATargets, trainProjector: Bool = false,
                          generator: Generator? = nil) throws -> [String] {
        let selected = loraCandidates(targets)
        guard !selected.isEmpty else { throw ModelError("--lora-targets \(targets) selects no Linear module of this model") }
        try freeze()
        for (_, linear) in selected { try linear.attachLoRA(config, generator: generator) }
        for (_, linear) in selected {
            try linear.lora_A!.weight.requiresGrad(true)
            try linear.lora_B!.weight.requiresGrad(true)
        }
        if trainProjector { try unfreeze { $0.hasPrefix(projectorName + ".") } }
        loraConfig = config
        return selected.map(\.0)
    }

    /// Writes `adapter_config.json` + `adapter_model.safetensors` as PEFT does, so `PeftModel.from_pretrained`
    /// loads them. The target modules are saved as a regex that selects exactly the adapted modules.
    public func saveAdapter(to folder: String, baseModel: String, includeProjector: Bool = false) throws {
        let adapted = loraLinears()
        guard !adapted.isEmpty, let config = loraConfig else { throw ModelError("the model has no LoRA adapter to save") }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (name, linear) in adapted {
            let hf = "base_model.model." + transformersName(name)
            tensors[hf + ".lora_A.weight"] = try linear.lora_A!.weight.detach().contiguous()
            tensors[hf + ".lora_B.weight"] = try linear.lora_B!.weight.detach().contiguous()
        }
        if includeProjector {
            for (name, p) in namedParameters() where name.hasPrefix(projectorName + ".") {
                tensors["base_model.model." + transformersName(name)] = try p.detach().contiguous()
            }
        }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: (folder as NSString).appendingPathComponent("adapter_model.safetensors"))
        let targets = adapterTargetRegex(adapted.map { transformersName($0.0) })
        let json = JSONValue.object([
            ("base_model_name_or_path", .string(baseModel)),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)),
            ("lora_alpha", .double(config.alpha)),
            ("lora_dropout", .double(config.dropout)),
            ("modules_to_save", includeProjector ? .array([.string(projectorName)]) : .null),
            ("peft_type", .string("LORA")),
            ("r", .int(config.r)),
            ("target_modules", .string(targets)),
            ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)),
            ("use_rslora", .bool(config.rsLoRA)),
        ])
        try (json.serialized(pretty: true) + "\n").write(toFile: (folder as NSString).appendingPathComponent("adapter_config.json"), atomically: true, encoding: .utf8)
    }
}

/// A regex that full-matches exactly these module names: per layer-indexed family when every layer has the
/// same modules, else the names themselves.
func adapterTargetRegex(_ names: [String]) -> String {
    func escape(_ s: String) -> String { NSRegularExpression.escapedPattern(for: s) }
    var byPrefix: [String: [Int: Set<String>]] = [:]
    var plain: [String] = []
    for name in names {
        let parts = name.split(separator: ".").map(String.init)
        if let i = parts.firstIndex(of: "layers"), i + 2 < parts.count, let layer = Int(parts[i + 1]) {
            let prefix = parts[...i].joined(separator: ".")
            byPrefix[prefix, default: [:]][layer, default: []].insert(parts[(i + 2)...].joined(separator: "."))
        } else {
            plain.append(name)
        }
    }
    var alternatives = plain.sorted().map(escape)
    for (prefix, layers) in byPrefix.sorted(by: { $0.key < $1.key }) {
        let suffixSets = Set(layers.values)
        if suffixSets.count == 1, layers.keys.sorted() == Array(0..<layers.count) {
            let suffixes = suffixSets.first!.sorted().map(escape).joined(separator: "|")
            alternatives.append("\(escape(prefix))\\.\\d+\\.(?:\(suffixes))")
        } else {
            for (layer, suffixes) in layers.sorted(by: { $0.key < $1.key }) {
                for s in suffixes.sorted() { alternatives.append(escape("\(prefix).\(layer).\(s)")) }
            }
        }
    }
    return alternatives.count == 1 ? alternatives[0] : "(?:" + alternatives.joined(separator: "|") + ")"
}

extension VLMModel {
    /// Loads a PEFT LoRA adapter (ours or Python's): the adapted modules come from the weights file, the scaling
    /// from adapter_config.json; `modules_to_save` weights replace the base ones. Every key must find its place.
    public func loadAdapter(from folder: String) throws {
        let configPath = (folder as NSString).appendingPathComponent("adapter_config.json")
        let c = try ConfigReader.load(configPath)
        let type = try c.string("peft_type", "LORA")
        guard type == "LORA" else { throw ModelError("\(configPath): peft_type '\(type)' is not supported (LORA is)") }
        guard !(try c.bool("use_dora", false)) else { throw ModelError("\(configPath): DoRA adapters are not supported") }
        let alpha = try c.double("lora_alpha", 8)
        let rsLoRA = try c.bool("use_rslora", false)
        let dropout = try c.double("lora_dropout", 0)
        let file = (folder as NSString).appendingPathComponent("adapter_model.safetensors")
        let weights = try SafeTensorsFile(path: file)
        let modules = Dictionary(namedModules(), uniquingKeysWith: { a, _ in a })
        var loraPairs: [String: (a: Tensor?, b: Tensor?)] = [:]
        var replaced: [String: Tensor] = [:]
        for key in weights.names {
            guard key.hasPrefix("base_model.model.") else { throw ModelError("\(file): key '\(key)' is not under base_model.model.") }
            let inner = String(key.dropFirst("base_model.model.".count))
            for (suffix, isA) in [(".lora_A.weight", true), (".lora_B.weight", false)] where inner.hasSuffix(suffix) {
                let moduleKey = String(inner.dropLast(suffix.count))
                guard let ours = sanitize(moduleKey + ".weight").map({ String($0.dropLast(".weight".count)) }) else {
                    throw ModelError("\(file): cannot place '\(key)'")
                }
                var pair = loraPairs[ours] ?? (nil, nil)
                if isA { pair.a = try weights.tensor(key) } else { pair.b = try weights.tensor(key) }
                loraPairs[ours] = pair
            }
            if !inner.contains(".lora_") {
                guard let ours = sanitize(inner) else { throw ModelError("\(file): cannot place '\(key)'") }
                replaced[ours] = try weights.tensor(key)
            }
        }
        guard !loraPairs.isEmpty else { throw ModelError("\(file): no LoRA weights") }
        var rank = 0
        for (name, pair) in loraPairs.sorted(by: { $0.key < $1.key }) {
            guard let linear = modules[name] as? Linear else { throw ModelError("\(file): adapter for '\(name)', which is not a Linear module of this model") }
            guard let a = pair.a, let b = pair.b else { throw ModelError("\(file): '\(name)' has only one of lora_A and lora_B") }
            let r = a.size(0)
            guard a.shape == [r, linear.inFeatures], b.shape == [linear.outFeatures, r] else {
                throw ModelError("\(file): '\(name)' has lora_A \(a.shape) and lora_B \(b.shape); the layer is [\(linear.outFeatures), \(linear.inFeatures)]")
            }
            try linear.attachLoRA(LoRAConfig(r: r, alpha: alpha, dropout: dropout, rsLoRA: rsLoRA))
            try withNoGrad {
                try linear.lora_A!.weight.copyFrom(a)
                try linear.lora_B!.weight.copyFrom(b)
            }
            rank = r
        }
        if !replaced.isEmpty {
            let params = Dictionary(namedParameters(), uniquingKeysWith: { a, _ in a })
            for (name, t) in replaced {
                guard let p = params[name], p.shape == t.shape else { throw ModelError("\(file): '\(name)' does not match a parameter of this model") }
                try withNoGrad { try p.copyFrom(t) }
            }
        }
        loraConfig = LoRAConfig(r: rank, alpha: alpha, dropout: dropout, rsLoRA: rsLoRA)
    }

    /// Folds every adapter into the base weights.
    public func mergeAdapters() throws {
        for (_, linear) in loraLinears() { try linear.mergeLoRA() }
        loraConfig = nil
    }

    /// Writes the (merged) model as a Hugging Face folder: transformers 5's key layout, config.json copied from
    /// `baseFolder`, plus the tokenizer and processor files found there.
    public func exportModel(to folder: String, baseFolder: String) throws {
        try saveWeights(to: folder)
        for file in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "preprocessor_config.json", "processor_config.json", "chat_template.json", "chat_template.jinja", "generation_config.json"] {
            let source = (baseFolder as NSString).appendingPathComponent(file)
            let target = (folder as NSString).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: source) else { continue }
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: source, toPath: target)
        }
    }

    /// Writes the weights alone (no config or tokenizer files) in the transformers 5 key layout, in `dtype`
    /// (default: as they are).
    public func saveWeights(to folder: String, dtype: DType? = nil) throws {
        guard loraLinears().isEmpty else { throw ModelError("merge the adapters before exporting the model") }
        var tensors: [String: Tensor] = [:]
        for (name, p) in namedParameters() {
            let key = savedKey(name)
            let t = try p.detach()
            tensors[key] = try (dtype.map { try t.to(dtype: $0) } ?? t).contiguous()
        }
        try Checkpoint.write(tensors, to: folder)
    }
}
