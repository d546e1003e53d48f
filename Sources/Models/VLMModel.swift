import Foundation
import Images
import JSON
import Tokenizers
import Torch

/// Images prepared for a VLM's vision tower: the pixel tensor it takes and how many image tokens each image
/// stands for in the prompt (a fixed count for LLaVA-1.5; tiles and aspect ratio decide it for LLaVA-NeXT).
public struct ImageInputs {
    /// What the vision tower takes: [N, 3, H, W] for one crop per image; LLaVA-NeXT: every image's tiles, image
    /// after image (base tile first); Qwen2-VL: every image's patch rows [Σ patches, 3 · temporal · patch²].
    public var pixels: Tensor
    public var tokenCounts: [Int]
    /// Tiles per image (empty: one each).
    public var tiles: [Int]
    /// Each image's size before preprocessing (empty when the model does not need it).
    public var originalSizes: [PixelSize]
    /// Each image's patch grid [t, gh, gw] (Qwen2-VL's `image_grid_thw`, which the vision tower needs to unflatten
    /// its patch rows); nil for models with fixed-size crops.
    public var grids: [[Int]]?

    public init(pixels: Tensor, tokenCounts: [Int], tiles: [Int] = [], originalSizes: [PixelSize] = [],
                grids: [[Int]]? = nil) {
        self.pixels = pixels
        self.tokenCounts = tokenCounts
        self.tiles = tiles
        self.originalSizes = originalSizes
        self.grids = grids
    }

    public var count: Int { tokenCounts.count }
}

/// A model's own image preprocessing (resize, crop or tiles, normalisation).
public protocol VLMImageProcessor: Sendable {
    func preprocess(_ images: [RGBImage]) throws -> ImageInputs
    /// The image-token count of an image of this size, without preparing its pixels (equal to what
    /// `preprocess` reports).
    func tokenCount(width: Int, height: Int) -> Int
}

/// The parts of a VLM that training treats apart.
public enum VLMPart: Sendable, Equatable {
    case vision, projector, language
}

/// What every consumer — generation, prompt-sharing log-probs, the trainer, LoRA/PEFT I/O, the knowledge base,
/// the eval runner, `serve`, `build-prefs` — needs of a vision-language model. A backbone conforms in its own
/// file; the consumers never name a concrete model.
public protocol VLMModel: Module {
    /// The placeholder token whose positions receive image features.
    var imageTokenID: Int { get }
    var device: Device { get }
    var dtype: DType { get }

    /// Image features [Σ image tokens, text hidden] for prepared images, image after image, in the order the
    /// prompt's image tokens take them.
    func imageFeatures(_ images: ImageInputs) throws -> Tensor
    /// Token embeddings with image features written at the image-token positions, in order.
    func embed(inputIDs: Tensor, imageFeatures: Tensor?) throws -> Tensor
    /// Position ids of the last `count` tokens of `tokens` (rows of equal length, padded either side; `mask` marks
    /// the real tokens, nil: all are), with `grids` the images' patch grids in prompt order where the scheme needs
    /// them. The model owns its position scheme: LLaMA-family decoders count real tokens ([B, count]); Qwen2-VL
    /// gives M-RoPE's 3-D positions ([3, B, count]), which depend on where the images sit and on their grids.
    func positions(tokens: [[Int]], mask: [[Int]]?, grids: [[Int]]?, count: Int) throws -> Tensor
    /// The decoder over embeddings with a KV cache (inference).
    func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, cache: KVCache?) throws -> Tensor
    /// The decoder over embeddings after graph-connected keys and values (`past`, one pair per layer), returning
    /// the hidden states and every layer's keys and values including `past` (training: prompt sharing).
    func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, past: [(Tensor, Tensor)]?) throws
        -> (hidden: Tensor, keysValues: [(Tensor, Tensor)])
    /// Vocabulary logits for hidden states [..., hidden] (select the positions first: the vocabulary is large).
    func logits(_ hidden: Tensor) throws -> Tensor
    func makeCache(batch: Int, capacity: Int) -> KVCache

    /// One vector per image for the retrieval knowledge base [N, D], from the model's own vision tower.
    func pooledImageEmbedding(_ images: ImageInputs) throws -> Tensor
    var pooledImageEmbeddingDimension: Int { get }
    /// Bytes that identify the vision tower's weights (a knowledge base built with another tower is refused).
    func visionFingerprint() throws -> [UInt8]

    /// The checkpoint key layouts this model accepts (the Hub's, transformers 5's saves) mapped onto its own
    /// parameter names; nil drops a key that holds no parameter.
    func sanitize(_ key: String) -> String?
    /// The name of one of its modules as transformers 5 holds it in memory (what PEFT writes and matches).
    func transformersName(_ ours: String) -> String
    /// The key under which `saveWeights` writes a parameter (transformers 5's save layout).
    func savedKey(_ ours: String) -> String
    /// The LoRA candidates of `--lora-targets all-linear`: the language model's Linear layers, head excluded.
    func isLanguageModelLinear(_ ours: String) -> Bool
    /// The projector module (PEFT `modules_to_save` when it is trained beside the adapters), by our name.
    var projectorName: String { get }
    /// Which part of the model a parameter (by our name) belongs to: what the trainer freezes and groups.
    func part(_ ours: String) -> VLMPart

    /// The LoRA settings of the attached adapters, if any.
    var loraConfig: LoRAConfig? { get set }
    /// Keeps the language model's linear weights in bf16 under fp32 compute.
    func storeLinearWeightsInBF16() throws
    var hasBF16LinearWeights: Bool { get }
}

extension VLMModel {
    /// Final hidden states [B, L, hidden]. `attentionMask` [B, cached + L] marks real tokens with 1; `positions`
    /// defaults to the model's own for whole sequences (`imageGrids`: the images' grids where the model needs them).
    public func hiddenStates(inputIDs: Tensor, imageFeatures: Tensor? = nil, attentionMask: Tensor? = nil,
                             positions: Tensor? = nil, cache: KVCache? = nil, imageGrids: [[Int]]? = nil) throws -> Tensor {
        let embeddings = try embed(inputIDs: inputIDs, imageFeatures: imageFeatures)
        let offset = cache?.length ?? 0
        let l = inputIDs.size(1)
        guard positions != nil || offset == 0 else {
            throw ModelError("tokens after cached ones need their positions (the cached tokens decide them)")
        }
        let pos = try positions ?? self.positions(tokens: intRows(inputIDs), mask: attentionMask.map(intRows), grids: imageGrids, count: l)
        let mask = try AttentionMask.make(padding: attentionMask, queryLength: l, offset: offset, dtype: embeddings.dtype, device: device)
        return try decoder(embeddings: embeddings, positions: pos, mask: mask, cache: cache)
    }

    /// Replaces the i-th image token of `ids` by `counts[i]` copies, as the models' processors do.
    public func expandImageTokens(_ ids: [Int], counts: [Int]) throws -> [Int] {
        var out: [Int] = []
        var next = 0
        for id in ids {
            guard id == imageTokenID else { out.append(id); continue }
            guard next < counts.count else {
                throw ModelError("the prompt has more image placeholders than the \(counts.count) image(s) given")
            }
            out += Array(repeating: id, count: counts[next])
            next += 1
        }
        guard next == counts.count else {
            throw ModelError("the prompt has \(next) image placeholder(s) but \(counts.count) image(s) were given")
        }
        return out
    }
}

/// Token embeddings with image features written, in order, at the image-token positions (transformers'
/// `masked_scatter`); the counts must agree.
func embedWithImages(_ inputIDs: Tensor, table: Embedding, imageTokenID: Int, features: Tensor?) throws -> Tensor {
    let isImage = try inputIDs.eq(imageTokenID)
    let positions = try isImage.sum().itemInt()
    guard let features else {
        // Without images an image token is an ordinary token, as in transformers (a model may generate it,
        // an answer text may contain it) — where the embedding table has a row for it.
        if positions > 0 && imageTokenID >= table.weight.size(0) {
            throw ModelError("the input has \(positions) image tokens but no image was given")
        }
        return try table(inputIDs)
    }
    // The image token may lie outside the embedding table; its rows are replaced anyway.
    let embeddings = try table(inputIDs.maskedFill(isImage, 0))
    // [images, tokens, hidden] or, through the VLM protocol, [Σ tokens, hidden].
    let available = features.shape.dropLast().reduce(1, *)
    guard positions == available else {
        throw ModelError("the input has \(positions) image-token positions but the images give \(available) features \(features.shape.dropLast())")
    }
    let mask = try isImage.unsqueeze(-1).expand(as: embeddings)
    return try embeddings.maskedScatter(mask, features.to(dtype: embeddings.dtype))
}

/// One-dimensional positions [B, count] of the last `count` of `length` tokens per row (LLaMA-family decoders):
/// real tokens count from 0, padding gets 1, as transformers' `generate` does.
public func linearPositions(mask: [[Int]]?, rows: Int, length: Int, count: Int, device: Device) throws -> Tensor {
    var values: [Int64] = []
    values.reserveCapacity(rows * count)
    for r in 0..<rows {
        var real = 0
        for t in 0..<length {
            let isReal = mask.map { $0[r][t] != 0 } ?? true
            if t >= length - count { values.append(isReal ? Int64(real) : 1) }
            if isReal { real += 1 }
        }
    }
    return try Tensor(values, shape: [rows, count]).to(device: device)
}

/// The fp32 weights of every Linear in `module` (LoRA factors excepted) kept in bf16: what
/// `storeLinearWeightsInBF16` does to a language model.
func storeLinearWeightsInBF16(of module: Module) throws {
    for (name, child) in module.namedModules() where !name.contains("lora_") {
        guard let linear = child as? Linear, linear.weight.dtype == .float32 else { continue }
        try linear.weight.setData(linear.weight.detach().to(dtype: .bfloat16))
    }
}

/// A 2-D integer tensor's rows.
public func intRows(_ t: Tensor) throws -> [[Int]] {
    let (b, l) = (t.size(0), t.size(1))
    let flat = try t.to(dtype: .int64).toArray(Int64.self)
    return (0..<b).map { r in flat[(r * l)..<((r + 1) * l)].map(Int.init) }
}

/// The backbones ReAlign runs, by the `model_type` of their `config.json`: how to build the model, its image
/// processor and its chat format. Adding a backbone is one model file and one line here.
public enum VLMRegistry {
    public struct Entry: Sendable {
        public let modelType: String
        let load: @Sendable (_ folder: String, _ config: ConfigReader, _ dtype: DType, _ device: Device) throws -> any VLMModel
        public let processor: @Sendable (_ folder: String) throws -> any VLMImageProcessor
        public let chatFormat: @Sendable (_ config: JSONValue) -> ChatFormat
    }

    public static let entries: [Entry] = [
        LlavaForConditionalGeneration.registryEntry,
        LlavaNextForConditionalGeneration.nextRegistryEntry,
        Qwen2VLForConditionalGeneration.registryEntry(modelType: "qwen2_vl"),
        Qwen2VLForConditionalGeneration.registryEntry(modelType: "qwen2_5_vl"),
    ]

    public static var supported: [String] { entries.map(\.modelType) }

    /// The entry for a folder's `config.json`, or an error naming its `model_type` and the supported ones.
    static func entry(folder: String) throws -> (Entry, ConfigReader) {
        let path = (folder as NSString).appendingPathComponent("config.json")
        let config = try ConfigReader.load(path)
        let type = try config.string("model_type")
        guard let entry = entries.first(where: { $0.modelType == type }) else {
            throw ModelError("\(path): model_type '\(type)' is not supported (supported: \(supported.joined(separator: ", ")))")
        }
        return (entry, config)
    }

    /// The image processor of a folder's backbone, from its processor settings.
    public static func processor(folder: String) throws -> any VLMImageProcessor {
        try entry(folder: folder).0.processor(folder)
    }

    /// Loads a model folder of any supported backbone, weights in `dtype` on `device`.
    public static func load(_ folder: String, dtype: DType = .float32, bf16LinearWeights: Bool = false,
                            device: Device = .cpu) throws -> any VLMModel {
        let (entry, config) = try entry(folder: folder)
        let model = try entry.load(folder, config, dtype, device)
        if bf16LinearWeights { try model.storeLinearWeightsInBF16() }
        return model
    }
}
