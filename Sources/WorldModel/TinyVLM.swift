import Foundation
import Images
import JSON
import Models
import ShapesWorld
import Torch

/// The sizes of ShapesWorld's tiny LLaVA: a CLIP-style tower over the 96 x 96 canvas in 24-pixel patches (16 image
/// tokens, one per cell of the world's layout), an MLP projector and a LLaMA-style decoder over the world's vocabulary.
public struct TinyVLMSpec: Sendable {
    public var visionHidden = 128
    public var visionLayers = 4
    public var visionHeads = 4
    public var visionIntermediate = 512
    public var patch = 24
    public var textHidden = 192
    public var textLayers = 4
    public var textHeads = 6
    public var textIntermediate = 512
    public var maxPositions = 256
    public init() {}

    public var canvas: Int { SceneGenerator.biased.canvas }
    public var patchesPerSide: Int { canvas / patch }
}

public enum TinyVLM {
    /// config.json of a llava-hf folder for `spec` over the world's vocabulary.
    public static func config(_ spec: TinyVLMSpec, dtype: String = "float32") -> JSONValue {
        let vocab = WorldTokenizer.vocabulary.count
        let text: JSONValue = .object([
            ("model_type", .string("llama")), ("vocab_size", .int(vocab)), ("hidden_size", .int(spec.textHidden)),
            ("intermediate_size", .int(spec.textIntermediate)), ("num_hidden_layers", .int(spec.textLayers)),
            ("num_attention_heads", .int(spec.textHeads)), ("num_key_value_heads", .int(spec.textHeads)),
            ("head_dim", .int(spec.textHidden / spec.textHeads)), ("hidden_act", .string("silu")),
            ("max_position_embeddings", .int(spec.maxPositions)), ("rms_norm_eps", .double(1e-5)),
            ("rope_parameters", .object([("rope_theta", .double(10000)), ("rope_type", .string("default"))])),
            ("attention_bias", .bool(false)), ("mlp_bias", .bool(false)), ("tie_word_embeddings", .bool(false)),
            ("bos_token_id", .int(1)), ("eos_token_id", .int(2)), ("pad_token_id", .int(3)),
        ])
        let vision: JSONValue = .object([
            ("model_type", .string("clip_vision_model")), ("hidden_size", .int(spec.visionHidden)),
            ("intermediate_size", .int(spec.visionIntermediate)), ("num_hidden_layers", .int(spec.visionLayers)),
            ("num_attention_heads", .int(spec.visionHeads)), ("image_size", .int(spec.canvas)), ("patch_size", .int(spec.patch)),
            ("num_channels", .int(3)), ("hidden_act", .string("quick_gelu")), ("layer_norm_eps", .double(1e-5)),
            ("projection_dim", .int(spec.visionHidden)),
        ])
        return .object([
            ("architectures", .array([.string("LlavaForConditionalGeneration")])),
            ("model_type", .string("llava")),
            ("dtype", .string(dtype)),
            ("image_token_index", .int(WorldTokenizer.imageTokenID)),
            ("image_seq_length", .int(spec.patchesPerSide * spec.patchesPerSide)),
            ("projector_hidden_act", .string("gelu")), ("multimodal_projector_bias", .bool(true)),
            ("vision_feature_layer", .int(-1)), ("vision_feature_select_strategy", .string("default")),
            ("tie_word_embeddings", .bool(false)),
            ("text_config", text), ("vision_config", vision),
        ])
    }

    /// preprocessor_config.json: CLIP's processor at the canvas size (no resize or crop changes the canvas).
    public static func preprocessorConfig(_ spec: TinyVLMSpec) -> JSONValue {
        .object([
            ("crop_size", .object([("height", .int(spec.canvas)), ("width", .int(spec.canvas))])),
            ("do_center_crop", .bool(true)), ("do_convert_rgb", .bool(true)), ("do_normalize", .bool(true)),
            ("do_rescale", .bool(true)), ("do_resize", .bool(true)),
            ("image_mean", .array([0.48145466, 0.4578275, 0.40821073].map { .double($0) })),
            ("image_processor_type", .string("CLIPImageProcessor")),
            ("image_std", .array([0.26862954, 0.26130258, 0.27577711].map { .double($0) })),
            ("processor_class", .string("LlavaProcessor")),
            ("resample", .int(3)), ("rescale_factor", .double(1.0 / 255)),
            ("size", .object([("shortest_edge", .int(spec.canvas))])),
        ])
    }

    /// Writes every file of the folder except the weights: config, tokenizer, processor and generation settings.
    public static func writeFolderFiles(_ spec: TinyVLMSpec, to folder: String, dtype: String = "float32") throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func save(_ v: JSONValue, _ name: String) throws {
            try (v.serialized(pretty: true) + "\n").write(toFile: (folder as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try save(config(spec, dtype: dtype), "config.json")
        try save(preprocessorConfig(spec), "preprocessor_config.json")
        // What LlavaProcessor needs to expand <image> into the 64 feature positions, as llava-hf ships it.
        try save(.object([("image_token", .string("<image>")), ("num_additional_image_tokens", .int(1)), ("patch_size", .int(spec.patch)),
                          ("processor_class", .string("LlavaProcessor")), ("vision_feature_select_strategy", .string("default"))]),
                 "processor_config.json")
        try save(.object([("bos_token_id", .int(1)), ("eos_token_id", .int(2)), ("pad_token_id", .int(3))]), "generation_config.json")
        try WorldTokenizer.write(to: folder)
    }

    /// A new folder with random weights: every matrix N(0, 0.02), biases 0, norms 1 (transformers' LLaMA
    /// initialisation), drawn from `seed`.
    public static func create(_ spec: TinyVLMSpec, at folder: String, seed: UInt64) throws {
        try writeFolderFiles(spec, to: folder)
        let config = try LlavaConfig(configFile: (folder as NSString).appendingPathComponent("config.json"))
        let generator = try Generator(seed: seed)
        let model = try ParameterInitialisation.skipped { try LlavaForConditionalGeneration(config) }
        try withNoGrad {
            for (name, p) in model.namedParameters() {
                if name.contains("norm") {
                    try p.fillInPlace(name.hasSuffix(".weight") ? 1 : 0)
                } else if p.rank == 1 && name.hasSuffix(".bias") {
                    try p.zeroInPlace()
                } else {
                    try p.normalInPlace(mean: 0, std: 0.02, generator: generator)
                }
            }
        }
        try model.saveWeights(to: folder)
    }
}

extension TinyVLM {
    /// The shipped ShapesWorld LLaVA (built by `realign world pretrain` with its defaults, seed 0), a resource of
    /// this module; nil when the build lacks it.
    public static var shippedFolder: String? {
        guard let url = Bundle.module.url(forResource: "shapesworld-llava", withExtension: nil),
              FileManager.default.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) else { return nil }
        return url.path
    }
}
