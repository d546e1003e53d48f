import Foundation
import Images
import JSON
import Torch

/// A model folder or config that cannot be used, naming the file and the key.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Typed access to a config.json object with the checkpoint's defaults and errors that name file and key.
struct ConfigReader {
    let json: JSONValue
    let file: String
    let prefix: String

    init(_ json: JSONValue, file: String, prefix: String = "") {
        self.json = json
        self.file = file
        self.prefix = prefix
    }

    private func fail(_ key: String, _ problem: String) -> ModelError { ModelError("\(file): \(prefix)\(key) \(problem)") }

    func has(_ key: String) -> Bool { json[key].map { !$0.isNull } ?? false }

    func int(_ key: String, _ defaultValue: Int? = nil) throws -> Int {
        guard let v = json[key], !v.isNull else {
            if let defaultValue { return defaultValue }
            throw fail(key, "is missing")
        }
        guard let i = v.intValue else { throw fail(key, "is not an integer") }
        return i
    }

    func optionalInt(_ key: String) throws -> Int? { has(key) ? try int(key) : nil }

    func double(_ key: String, _ defaultValue: Double? = nil) throws -> Double {
        guard let v = json[key], !v.isNull else {
            if let defaultValue { return defaultValue }
            throw fail(key, "is missing")
        }
        guard let d = v.doubleValue else { throw fail(key, "is not a number") }
        return d
    }

    func string(_ key: String, _ defaultValue: String? = nil) throws -> String {
        guard let v = json[key], !v.isNull else {
            if let defaultValue { return defaultValue }
            throw fail(key, "is missing")
        }
        guard let s = v.stringValue else { throw fail(key, "is not a string") }
        return s
    }

    func bool(_ key: String, _ defaultValue: Bool) throws -> Bool {
        guard let v = json[key], !v.isNull else { return defaultValue }
        guard let b = v.boolValue else { throw fail(key, "is not true or false") }
        return b
    }

    func object(_ key: String) throws -> ConfigReader? {
        guard let v = json[key], !v.isNull else { return nil }
        guard v.objectValue != nil else { throw fail(key, "is not an object") }
        return ConfigReader(v, file: file, prefix: prefix + key + ".")
    }

    static func load(_ path: String) throws -> ConfigReader {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError("\(path): no such file") }
        do {
            let json = try JSONValue.parse(contentsOf: path)
            guard json.objectValue != nil else { throw ModelError("\(path): not a JSON object") }
            return ConfigReader(json, file: path)
        } catch let e as JSONValue.ParseError {
            throw ModelError("\(path): not valid JSON (\(e))")
        }
    }
}

/// Rotary position embedding settings: `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling`.
public struct RopeConfig: Sendable, Equatable {
    public enum Kind: String, Sendable { case `default`, linear, dynamic, llama3 }
    public var kind: Kind = .default
    public var theta: Double = 10_000
    public var factor: Double = 1
    public var lowFreqFactor: Double = 1
    public var highFreqFactor: Double = 4
    public var originalMaxPositionEmbeddings: Int = 8192
    /// Qwen2-VL's M-RoPE: how many of the headDim/2 frequencies follow the t, h and w position axes.
    public var mropeSection: [Int]? = nil

    init(_ c: ConfigReader) throws {
        let params = try c.object("rope_parameters") ?? c.object("rope_scaling")
        theta = try params?.has("rope_theta") == true ? params!.double("rope_theta") : c.double("rope_theta", 10_000)
        guard let p = params else { return }
        if let section = p.json["mrope_section"], !section.isNull {
            guard let values = section.arrayValue?.compactMap(\.intValue), values.count == 3,
                  values.count == section.arrayValue?.count, values.allSatisfy({ $0 > 0 }) else {
                throw ModelError("\(c.file): \(p.prefix)mrope_section is not three positive integers")
            }
            mropeSection = values
        }
        // The Hub's Qwen2-VL configs say {"type": "mrope"}: default frequencies split over three axes.
        var type = try p.has("rope_type") ? p.string("rope_type") : p.string("type", "default")
        if type == "mrope" && mropeSection != nil { type = "default" }
        guard let k = Kind(rawValue: type) else {
            throw ModelError("\(c.file): \(p.prefix)rope_type '\(type)' is not supported (default, linear, dynamic, llama3 are)")
        }
        kind = k
        if k != .default { factor = try p.double("factor") }
        if k == .llama3 {
            lowFreqFactor = try p.double("low_freq_factor", 1)
            highFreqFactor = try p.double("high_freq_factor", 4)
            originalMaxPositionEmbeddings = try p.int("original_max_position_embeddings", 8192)
        }
    }
}

/// A LLaMA-family decoder (LLaMA, Vicuna, Mistral) as transformers' LlamaConfig describes it.
public struct LlamaConfig: Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    /// o_proj's bias (LLaMA: with the q/k/v biases; Qwen2: q/k/v have one, o_proj not).
    public var outputBias: Bool
    public var mlpBias: Bool
    public var hiddenAct: String
    public var rope: RopeConfig

    init(_ c: ConfigReader) throws {
        let modelType = try c.string("model_type", "llama")
        let qwen = ["qwen2", "qwen2_vl_text", "qwen2_5_vl_text"].contains(modelType)
        guard ["llama", "mistral", "vicuna"].contains(modelType) || qwen else {
            throw ModelError("\(c.file): \(c.prefix)model_type '\(modelType)' is not a LLaMA-family decoder (llama, mistral, qwen2)")
        }
        vocabSize = try c.int("vocab_size", 32000)
        hiddenSize = try c.int("hidden_size", 4096)
        intermediateSize = try c.int("intermediate_size", 11008)
        layers = try c.int("num_hidden_layers", 32)
        heads = try c.int("num_attention_heads", 32)
        kvHeads = try c.optionalInt("num_key_value_heads") ?? heads
        headDim = try c.optionalInt("head_dim") ?? hiddenSize / heads
        rmsNormEps = try c.double("rms_norm_eps", 1e-6)
        maxPositionEmbeddings = try c.int("max_position_embeddings", 2048)
        tieWordEmbeddings = try c.bool("tie_word_embeddings", false)
        attentionBias = qwen ? true : try c.bool("attention_bias", false)
        outputBias = qwen ? false : attentionBias
        mlpBias = try c.bool("mlp_bias", false)
        hiddenAct = try c.string("hidden_act", "silu")
        rope = try RopeConfig(c)
        // Mistral v0.1's sliding window changes attention past `sliding_window` tokens: refused rather than ignored.
        // Qwen2 configs carry a sliding_window that only `use_sliding_window` turns on.
        let windowed = try qwen ? c.bool("use_sliding_window", false) : true
        if let window = try c.optionalInt("sliding_window"), window < maxPositionEmbeddings, windowed {
            throw ModelError("\(c.file): \(c.prefix)sliding_window \(window) is not supported (sliding-window attention is not implemented; null or >= max_position_embeddings is)")
        }
        if let section = rope.mropeSection, section.reduce(0, +) != headDim / 2 {
            throw ModelError("\(c.file): \(c.prefix)rope_parameters.mrope_section \(section) does not sum to head_dim / 2 (\(headDim / 2))")
        }
        guard heads % kvHeads == 0 else {
            throw ModelError("\(c.file): \(c.prefix)num_attention_heads (\(heads)) is not a multiple of num_key_value_heads (\(kvHeads))")
        }
        guard ["silu", "gelu", "gelu_pytorch_tanh", "relu"].contains(hiddenAct) else {
            throw ModelError("\(c.file): \(c.prefix)hidden_act '\(hiddenAct)' is not supported")
        }
    }
}

/// A CLIP vision transformer as transformers' CLIPVisionConfig describes it.
public struct CLIPVisionConfig: Sendable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var layerNormEps: Double
    public var hiddenAct: String

    init(_ c: ConfigReader) throws {
        let modelType = try c.string("model_type", "clip_vision_model")
        guard ["clip_vision_model", "clip"].contains(modelType) else {
            throw ModelError("\(c.file): \(c.prefix)model_type '\(modelType)' is not a CLIP vision tower")
        }
        hiddenSize = try c.int("hidden_size", 768)
        intermediateSize = try c.int("intermediate_size", 3072)
        layers = try c.int("num_hidden_layers", 12)
        heads = try c.int("num_attention_heads", 12)
        imageSize = try c.int("image_size", 224)
        patchSize = try c.int("patch_size", 32)
        channels = try c.int("num_channels", 3)
        layerNormEps = try c.double("layer_norm_eps", 1e-5)
        hiddenAct = try c.string("hidden_act", "quick_gelu")
        guard ["quick_gelu", "gelu", "gelu_pytorch_tanh"].contains(hiddenAct) else {
            throw ModelError("\(c.file): \(c.prefix)hidden_act '\(hiddenAct)' is not supported")
        }
    }

    public var patchesPerSide: Int { imageSize / patchSize }
}

/// LlavaForConditionalGeneration's configuration.
public struct LlavaConfig: Sendable {
    public var text: LlamaConfig
    public var vision: CLIPVisionConfig
    public var imageTokenID: Int
    /// Hidden-state indices of the vision tower whose features are used (negative counts from the end).
    public var visionFeatureLayers: [Int]
    /// "default" drops the CLS position, "full" keeps it.
    public var keepCLS: Bool
    public var projectorAct: String
    public var projectorBias: Bool
    /// LLaVA-NeXT's anyres resolutions (height, width), in pixels; empty for LLaVA-1.5.
    public var gridPinpoints: [PixelSize] = []

    /// `modelType`: the `model_type` this configuration is read for (llava, llava_next).
    init(_ c: ConfigReader, modelType expected: String = "llava") throws {
        let modelType = try c.string("model_type")
        guard modelType == expected else {
            throw ModelError("\(c.file): model_type '\(modelType)' is not \(expected)")
        }
        if expected == "llava_next" {
            guard let list = c.json["image_grid_pinpoints"]?.arrayValue, !list.isEmpty else {
                throw ModelError("\(c.file): image_grid_pinpoints is missing (LLaVA-NeXT needs its anyres resolutions)")
            }
            gridPinpoints = try list.map { pair in
                guard let hw = pair.arrayValue, hw.count == 2, let h = hw[0].intValue, let w = hw[1].intValue, h > 0, w > 0 else {
                    throw ModelError("\(c.file): image_grid_pinpoints holds \(pair.serialized()), not a [height, width] pair of positive integers")
                }
                return PixelSize(height: h, width: w)
            }
        }
        guard let textReader = try c.object("text_config") else { throw ModelError("\(c.file): text_config is missing") }
        guard let visionReader = try c.object("vision_config") else { throw ModelError("\(c.file): vision_config is missing") }
        text = try LlamaConfig(textReader)
        vision = try CLIPVisionConfig(visionReader)
        imageTokenID = try c.optionalInt("image_token_id") ?? c.int("image_token_index", 32000)
        if let list = c.json["vision_feature_layer"]?.arrayValue {
            visionFeatureLayers = try list.map {
                guard let i = $0.intValue else { throw ModelError("\(c.file): vision_feature_layer holds a non-integer") }
                return i
            }
        } else {
            visionFeatureLayers = [try c.int("vision_feature_layer", -2)]
        }
        let strategy = try c.string("vision_feature_select_strategy", "default")
        guard strategy == "default" || strategy == "full" else {
            throw ModelError("\(c.file): vision_feature_select_strategy '\(strategy)' is not supported (default, full)")
        }
        keepCLS = strategy == "full"
        projectorAct = try c.string("projector_hidden_act", "gelu")
        projectorBias = try c.bool("multimodal_projector_bias", true)
        guard ["gelu", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu"].contains(projectorAct) else {
            throw ModelError("\(c.file): projector_hidden_act '\(projectorAct)' is not supported")
        }
    }

    /// Image features per image: patches, plus CLS with the "full" strategy.
    public var imageFeatureCount: Int { vision.patchesPerSide * vision.patchesPerSide + (keepCLS ? 1 : 0) }
}

/// A BERT encoder as transformers' BertConfig describes it (all-MiniLM-L6-v2 and similar).
public struct BertConfig: Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    public var hiddenAct: String

    init(_ c: ConfigReader) throws {
        let modelType = try c.string("model_type", "bert")
        guard modelType == "bert" else { throw ModelError("\(c.file): model_type '\(modelType)' is not a BERT encoder") }
        vocabSize = try c.int("vocab_size", 30522)
        hiddenSize = try c.int("hidden_size", 768)
        intermediateSize = try c.int("intermediate_size", 3072)
        layers = try c.int("num_hidden_layers", 12)
        heads = try c.int("num_attention_heads", 12)
        maxPositionEmbeddings = try c.int("max_position_embeddings", 512)
        typeVocabSize = try c.int("type_vocab_size", 2)
        layerNormEps = try c.double("layer_norm_eps", 1e-12)
        hiddenAct = try c.string("hidden_act", "gelu")
        guard ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"].contains(hiddenAct) else {
            throw ModelError("\(c.file): \(c.prefix)hidden_act '\(hiddenAct)' is not supported")
        }
        let positionType = try c.string("position_embedding_type", "absolute")
        guard positionType == "absolute" else { throw ModelError("\(c.file): position_embedding_type '\(positionType)' is not supported") }
    }
}

/// Activation functions by their transformers names; an unknown name is an error (configs check theirs with
/// the key's name first), never a silent stand-in.
func activation(_ name: String) throws -> (Tensor) throws -> Tensor {
    switch name {
    case "silu": { try $0.silu() }
    case "gelu": { try $0.gelu() }
    case "gelu_pytorch_tanh", "gelu_new": { try $0.gelu(approximate: true) }
    case "quick_gelu": { try $0.quickGelu() }
    case "relu": { try $0.relu() }
    default: throw ModelError("activation '\(name)' is not supported (silu, gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, relu)")
    }
}

extension LlavaConfig {
    /// A llava-hf `config.json`.
    public init(configFile path: String) throws { try self.init(ConfigReader.load(path)) }
}
