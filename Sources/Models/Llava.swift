import Foundation
import Images
import Torch

/// linear_1 -> activation -> linear_2 (LLaVA-1.5's mlp2x_gelu).
final class LlavaMultiModalProjector: Module, @unchecked Sendable {
    let linear_1: Linear
    let linear_2: Linear
    let act: (Tensor) throws -> Tensor

    init(_ c: LlavaConfig) throws {
        linear_1 = try Linear(c.vision.hiddenSize * c.visionFeatureLayers.count, c.text.hiddenSize, bias: c.projectorBias)
        linear_2 = try Linear(c.text.hiddenSize, c.text.hiddenSize, bias: c.projectorBias)
        act = try activation(c.projectorAct)
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try linear_2(act(linear_1(x))) }
}

/// LlavaForConditionalGeneration: CLIP vision tower -> selected hidden layer(s) -> projector -> features placed at
/// the image-token positions of a LLaMA-family decoder.
public class LlavaForConditionalGeneration: Module, @unchecked Sendable {
    let vision_tower: CLIPVisionModel
    let multi_modal_projector: LlavaMultiModalProjector
    let language_model: LlamaForCausalLM
    public let config: LlavaConfig
    /// The LoRA settings of the attached adapters, if any.
    public var loraConfig: LoRAConfig?

    public init(_ c: LlavaConfig) throws {
        config = c
        vision_tower = try CLIPVisionModel(c.vision)
        multi_modal_projector = try LlavaMultiModalProjector(c)
        language_model = try LlamaForCausalLM(c.text)
        super.init()
    }

    public var visionTower: CLIPVisionModel { vision_tower }
    public var dtype: DType { language_model.model.embed_tokens.weight.dtype }
    public var device: Device { language_model.model.embed_tokens.weight.device }

    /// Projected image features [N, features, text hidden] for preprocessed pixels [N, 3, H, W].
    public func imageFeatures(_ pixels: Tensor) throws -> Tensor {
        let count = config.vision.layers + 1
        let indices = config.visionFeatureLayers.map { $0 < 0 ? count + $0 : $0 }
        guard let deepest = indices.max(), indices.allSatisfy({ $0 >= 0 && $0 < count }) else {
            throw ModelError("vision_feature_layer \(config.visionFeatureLayers) is outside the vision tower's \(count) hidden states")
        }
        // Layers past the deepest selected one do not affect the features: they are not run.
        let states = try vision_tower.vision_model.hiddenStates(pixels.to(device: device), through: deepest)
        var selected = try indices.map { i -> Tensor in
            let s = states[i]
            return config.keepCLS ? s : try s.slice(1, 1)
        }
        let features = selected.count == 1 ? selected.removeFirst() : try Tensor.cat(selected, dim: -1)
        return try multi_modal_projector(features.to(dtype: dtype))
    }

    /// Token embeddings with the image features written at the image-token positions, in order.
    public func embed(inputIDs: Tensor, imageFeatures: Tensor?) throws -> Tensor {
        try embedWithImages(inputIDs, table: language_model.model.embed_tokens, imageTokenID: config.imageTokenID, features: imageFeatures)
    }

    /// Keeps the language model's linear weights (attention and MLP projections, the vocabulary head) in bf16 while
    /// activations stay in fp32. Decoding reads every one of these weights once per token, so this halves the bytes
    /// a token costs; each product takes bf16 inputs with fp32 accumulation and gives an fp32 result. A tied
    /// vocabulary head stays in fp32 (it is also the embedding table), and so do LoRA factors.
    public func storeLinearWeightsInBF16() throws {
        guard dtype == .float32 else {
            throw ModelError("bf16 linear weights need an fp32 model (this one computes in \(dtype))")
        }
        try Models.storeLinearWeightsInBF16(of: language_model)
        hasBF16LinearWeights = true
    }

    /// Whether `storeLinearWeightsInBF16` was applied.
    public private(set) var hasBF16LinearWeights = false

    /// Vocabulary logits for hidden states [..., hidden] (select the positions first: the vocabulary is large).
    public func logits(_ hidden: Tensor) throws -> Tensor { try language_model.logits(hidden) }

    public func makeCache(batch: Int, capacity: Int) -> KVCache { KVCache(layers: config.text.layers, capacity: capacity) }

    /// Replaces each image token by `imageFeatureCount` copies, as the llava-hf processor does.
    public func expandImageTokens(_ ids: [Int]) -> [Int] {
        ids.flatMap { $0 == config.imageTokenID ? Array(repeating: $0, count: config.imageFeatureCount) : [$0] }
    }

    // MARK: the VLM protocol

    static let registryEntry = VLMRegistry.Entry(
        modelType: "llava",
        load: { folder, config, dtype, device in
            let c = try LlavaConfig(config)
            let model = try ParameterInitialisation.skipped { try LlavaForConditionalGeneration(c) }
            try ModelLoader.load(model, from: folder, dtype: dtype, device: device) { model.sanitize($0) }
            return model
        },
        processor: { folder in try CLIPImageInputs(folder: folder) },
        chatFormat: { _ in .llava15 })

    public var imageTokenID: Int { config.imageTokenID }

    public func imageFeatures(_ images: ImageInputs) throws -> Tensor {
        let features = try imageFeatures(images.pixels)
        return try features.view(-1, features.size(-1))
    }

    public func positions(tokens: [[Int]], mask: [[Int]]?, grids: [[Int]]?, count: Int) throws -> Tensor {
        try linearPositions(mask: mask, rows: tokens.count, length: tokens.first?.count ?? 0, count: count, device: device)
    }

    public func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, cache: KVCache?) throws -> Tensor {
        try language_model.model(embeddings: embeddings, positions: positions, mask: mask, cache: cache)
    }

    public func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, past: [(Tensor, Tensor)]?) throws
        -> (hidden: Tensor, keysValues: [(Tensor, Tensor)])
    {
        try language_model.model.forward(embeddings: embeddings, positions: positions, mask: mask, past: past)
    }

    /// CLIP's pooled output (post-layernorm CLS), L2-normalised, as Re-Align's retrieval embeds images.
    public func pooledImageEmbedding(_ images: ImageInputs) throws -> Tensor {
        try vision_tower.embedding(images.pixels.to(device: device))
    }

    public var pooledImageEmbeddingDimension: Int { config.vision.hiddenSize }

    public func visionFingerprint() throws -> [UInt8] {
        try vision_tower.vision_model.embeddings.class_embedding.to(dtype: .float32).bytes()
    }

    /// The llava-hf key layouts (the Hub's `language_model.model.*`, `vision_tower.vision_model.*`; transformers
    /// 5's `model.language_model.*`, `model.vision_tower.*`, `lm_head.*`) onto ours.
    public func sanitize(_ key: String) -> String? {
        var k = key
        for (old, new) in [("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                           ("model.multi_modal_projector.", "multi_modal_projector.")] where k.hasPrefix(old) {
            k = new + k.dropFirst(old.count)
        }
        if k.hasPrefix("lm_head.") { k = "language_model." + k }
        if k.hasPrefix("vision_tower.") && !k.hasPrefix("vision_tower.vision_model.") {
            k = "vision_tower.vision_model." + k.dropFirst("vision_tower.".count)
        }
        // Buffers that older checkpoints saved.
        if k.hasSuffix(".position_ids") || k.hasSuffix("rotary_emb.inv_freq") { return nil }
        if config.text.tieWordEmbeddings && k == "language_model.lm_head.weight" { return nil }
        return k
    }

    public func transformersName(_ ours: String) -> String {
        for (old, new) in [("language_model.model.", "model.language_model."), ("vision_tower.vision_model.", "model.vision_tower."),
                           ("multi_modal_projector.", "model.multi_modal_projector.")] where ours.hasPrefix(old) {
            return new + ours.dropFirst(old.count)
        }
        if ours.hasPrefix("language_model.lm_head") { return String(ours.dropFirst("language_model.".count)) }
        return ours
    }

    public func savedKey(_ ours: String) -> String {
        ours.hasPrefix("vision_tower.vision_model.") ? "vision_tower." + ours.dropFirst("vision_tower.vision_model.".count) : ours
    }

    public func isLanguageModelLinear(_ ours: String) -> Bool { ours.hasPrefix("language_model.model.") }

    public var projectorName: String { "multi_modal_projector" }

    public func part(_ ours: String) -> VLMPart {
        ours.hasPrefix("vision_tower.") ? .vision : ours.hasPrefix("multi_modal_projector.") ? .projector : .language
    }
}

extension LlavaForConditionalGeneration: VLMModel {}

/// LLaVA-1.5's preprocessing: the folder's CLIP image processor (resize, centre crop, normalise), one fixed
/// number of image tokens per image.
struct CLIPImageInputs: VLMImageProcessor {
    let processor: ImageProcessor
    let tokensPerImage: Int

    init(folder: String) throws {
        processor = try ImageProcessor(modelFolder: URL(fileURLWithPath: folder))
        tokensPerImage = try LlavaConfig(ConfigReader.load((folder as NSString).appendingPathComponent("config.json"))).imageFeatureCount
    }

    func preprocess(_ images: [RGBImage]) throws -> ImageInputs {
        let p = try processor.preprocess(images)
        return ImageInputs(pixels: try Tensor(p.values, shape: p.shape), tokenCounts: Array(repeating: tokensPerImage, count: images.count))
    }

    func tokenCount(width: Int, height: Int) -> Int { tokensPerImage }
}
