import Foundation
import Torch

/// Qwen2-VL's vision tower settings (`vision_config`; the Hub's flat v4 names `in_chans` and
/// `spatial_patch_size` are accepted too).
public struct Qwen2VLVisionConfig: Sendable {
    /// Qwen2-VL: LayerNorm blocks with a two-layer MLP, attention over whole images. Qwen2.5-VL: RMSNorm, SwiGLU,
    /// attention within windows except in `fullAttentionBlocks`.
    public var isQwen25: Bool
    public var depth: Int
    public var embedDim: Int
    /// The merger's output width: the text model's hidden size.
    public var outHiddenSize: Int
    public var intermediateSize: Int
    public var heads: Int
    public var patchSize: Int
    public var mergeSize: Int
    public var temporalPatchSize: Int
    public var channels: Int
    public var hiddenAct: String
    public var ropeTheta: Double
    /// Qwen2.5-VL: the window's side in pixels, and the blocks that attend over the whole image instead.
    public var windowSize: Int
    public var fullAttentionBlocks: [Int]

    init(_ c: ConfigReader, qwen25: Bool) throws {
        isQwen25 = qwen25
        let depth = try c.int("depth")
        self.depth = depth
        heads = try c.int("num_heads")
        if qwen25 {
            embedDim = try c.int("hidden_size")
            outHiddenSize = try c.int("out_hidden_size")
            intermediateSize = try c.int("intermediate_size")
            windowSize = try c.int("window_size")
            guard let blocks = c.json["fullatt_block_indexes"]?.arrayValue?.compactMap(\.intValue),
                  blocks.count == c.json["fullatt_block_indexes"]?.arrayValue?.count else {
                throw ModelError("\(c.file): \(c.prefix)fullatt_block_indexes is missing or not a list of integers")
            }
            // An index past the last block would silently never run (trl #5805): refused.
            if let bad = blocks.first(where: { $0 < 0 || $0 >= depth }) {
                throw ModelError("\(c.file): \(c.prefix)fullatt_block_indexes holds \(bad), outside the \(depth) blocks")
            }
            fullAttentionBlocks = blocks
        } else {
            embedDim = try c.int("embed_dim")
            outHiddenSize = try c.int("hidden_size")
            intermediateSize = embedDim * (try c.int("mlp_ratio", 4))
            windowSize = 0
            fullAttentionBlocks = []
        }
        ropeTheta = try c.object("rope_parameters")?.double("rope_theta", 10_000) ?? 10_000
        patchSize = try c.optionalInt("patch_size") ?? c.int("spatial_patch_size", 14)
        mergeSize = try c.int("spatial_merge_size", 2)
        temporalPatchSize = try c.int("temporal_patch_size", 2)
        channels = try c.optionalInt("in_channels") ?? c.int("in_chans", 3)
        hiddenAct = try c.string("hidden_act", qwen25 ? "silu" : "quick_gelu")
        guard (try? activation(hiddenAct)) != nil else {
            throw ModelError("\(c.file): \(c.prefix)hidden_act '\(hiddenAct)' is not supported")
        }
        guard embedDim % heads == 0, (embedDim / heads) % 4 == 0 else {
            throw ModelError("\(c.file): \(c.prefix)the vision width \(embedDim) over num_heads \(heads) is not a multiple of 4 (the 2-D rotary needs it)")
        }
        if qwen25 {
            guard windowSize > 0, windowSize % (patchSize * mergeSize) == 0 else {
                throw ModelError("\(c.file): \(c.prefix)window_size \(windowSize) (pixels) is not a positive multiple of patch_size x spatial_merge_size")
            }
        }
    }

    var headDim: Int { embedDim / heads }
    /// Values per patch row: channels x temporal x patch x patch.
    var patchValues: Int { channels * temporalPatchSize * patchSize * patchSize }
}

/// The patch embedding's Conv3d (kernel = stride = temporal x patch x patch) applied to flattened patch rows,
/// which makes it one matrix product with the kernel flattened the same way.
final class Qwen2VLPatchProjection: Module, @unchecked Sendable {
    let weight: Tensor  // [E, C, T, P, P], as the checkpoint holds it

    init(_ c: Qwen2VLVisionConfig) throws {
        weight = try Tensor.zeros([c.embedDim, c.channels, c.temporalPatchSize, c.patchSize, c.patchSize]).requiresGrad(true)
        super.init()
    }

    func callAsFunction(_ rows: Tensor) throws -> Tensor {
        try rows.to(dtype: weight.dtype).linear(weight.view(weight.size(0), -1))
    }
}

final class Qwen2VLPatchEmbed: Module, @unchecked Sendable {
    let proj: Qwen2VLPatchProjection
    init(_ c: Qwen2VLVisionConfig) throws {
        proj = try Qwen2VLPatchProjection(c)
        super.init()
    }
}

/// Non-causal attention over one image's patches at a time (`cu_seqlens`), with the 2-D rotary on q and k.
final class Qwen2VLVisionAttention: Module, @unchecked Sendable {
    let qkv: Linear
    let proj: Linear
    let heads: Int

    init(_ c: Qwen2VLVisionConfig) throws {
        heads = c.heads
        qkv = try Linear(c.embedDim, 3 * c.embedDim)
        proj = try Linear(c.embedDim, c.embedDim)
        super.init()
    }

    /// x [N, E]; cos/sin [1, N, headDim]; `spans` the row ranges that attend among themselves.
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, spans: [Range<Int>]) throws -> Tensor {
        let (n, e) = (x.size(0), x.size(1))
        let d = e / heads
        let parts = try qkv(x).view(n, 3, heads, d).permute(1, 2, 0, 3)  // [3, heads, N, d]
        let dtype = x.dtype
        // The rotary runs in float32, as transformers computes it, then back to the input dtype.
        let q = try F.rotary(parts.select(0, 0).unsqueeze(0).to(dtype: .float32), cos: cos, sin: sin).to(dtype: dtype)
        let k = try F.rotary(parts.select(0, 1).unsqueeze(0).to(dtype: .float32), cos: cos, sin: sin).to(dtype: dtype)
        let v = try parts.select(0, 2).unsqueeze(0)
        let outputs = try spans.map { span in
            try F.scaledDotProductAttention(q.narrow(2, start: span.lowerBound, length: span.count),
                                            k.narrow(2, start: span.lowerBound, length: span.count),
                                            v.narrow(2, start: span.lowerBound, length: span.count))
        }
        let attended = try (outputs.count == 1 ? outputs[0] : Tensor.cat(outputs, dim: 2))  // [1, heads, N, d]
        return try proj(attended.squeeze(0).transpose(0, 1).reshape(n, e))
    }
}

/// A layer that maps a tensor to a tensor: what a vision block's norms and MLP are.
protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}
extension LayerNorm: UnaryLayer {}
extension RMSNorm: UnaryLayer {}
extension CLIPMLP: UnaryLayer {}
extension LlamaMLP: UnaryLayer {}

/// A vision block: x + attn(norm1 x), then + mlp(norm2 x). Qwen2-VL's norms are LayerNorms and its MLP
/// fc2(act(fc1 x)); Qwen2.5-VL's are RMSNorms and down(act(gate x) * up x), all with biases.
final class Qwen2VLVisionBlock: Module, @unchecked Sendable {
    let norm1: any UnaryLayer
    let norm2: any UnaryLayer
    let attn: Qwen2VLVisionAttention
    let mlp: any UnaryLayer

    init(_ c: Qwen2VLVisionConfig) throws {
        let e = c.embedDim, act = try activation(c.hiddenAct)
        norm1 = c.isQwen25 ? try RMSNorm(e, eps: 1e-6) : try LayerNorm(e, eps: 1e-6)
        norm2 = c.isQwen25 ? try RMSNorm(e, eps: 1e-6) : try LayerNorm(e, eps: 1e-6)
        attn = try Qwen2VLVisionAttention(c)
        mlp = c.isQwen25 ? try LlamaMLP(hidden: e, intermediate: c.intermediateSize, bias: true, activation: act)
                         : try CLIPMLP(hidden: e, intermediate: c.intermediateSize, activation: act)
        super.init()
    }

    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, spans: [Range<Int>]) throws -> Tensor {
        let h = try x + attn(norm1(x), cos: cos, sin: sin, spans: spans)
        return try h + mlp(norm2(h))
    }
}

/// LayerNorm, then each merge x merge block of patches (contiguous rows) as one row through a two-layer MLP.
final class Qwen2VLPatchMerger: Module, @unchecked Sendable {
    let ln_q: any UnaryLayer  // LayerNorm (Qwen2-VL) or RMSNorm (Qwen2.5-VL)
    let fc1: Linear
    let fc2: Linear
    let group: Int

    override class var checkpointNames: [String: String] { ["fc1": "mlp.0", "fc2": "mlp.2"] }

    init(_ c: Qwen2VLVisionConfig) throws {
        group = c.embedDim * c.mergeSize * c.mergeSize
        ln_q = c.isQwen25 ? try RMSNorm(c.embedDim, eps: 1e-6) : try LayerNorm(c.embedDim, eps: 1e-6)
        fc1 = try Linear(group, group)
        fc2 = try Linear(group, c.outHiddenSize)
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try fc2(fc1(ln_q(x).view(-1, group)).gelu())
    }
}

/// Qwen2-VL's vision transformer (`visual.*`): patch rows in, merged image tokens out.
final class Qwen2VisionTransformer: Module, @unchecked Sendable {
    let patch_embed: Qwen2VLPatchEmbed
    let blocks: [Qwen2VLVisionBlock]
    let merger: Qwen2VLPatchMerger
    let config: Qwen2VLVisionConfig
    let inverseFrequencies: Buffer  // float32 [headDim / 4]

    init(_ c: Qwen2VLVisionConfig) throws {
        config = c
        patch_embed = try Qwen2VLPatchEmbed(c)
        blocks = try (0..<c.depth).map { _ in try Qwen2VLVisionBlock(c) }
        merger = try Qwen2VLPatchMerger(c)
        let half = c.headDim / 2
        let exponents = try Tensor.arange(0, half, step: 2).to(dtype: .float32) / Double(half)
        inverseFrequencies = Buffer(try 1.0 / exponents.rpow(c.ropeTheta))
        super.init()
    }

    /// Each patch row's (h, w) on its image's grid, in the block-major order of the rows: every merge x merge
    /// block contiguous, blocks in raster order, frame after frame.
    static func patchCoordinates(grids: [[Int]], merge: Int) -> (h: [Int], w: [Int]) {
        var hs: [Int] = [], ws: [Int] = []
        for g in grids {
            let (t, gh, gw) = (g[0], g[1], g[2])
            for _ in 0..<t {
                for bh in 0..<(gh / merge) { for bw in 0..<(gw / merge) {
                    for mh in 0..<merge { for mw in 0..<merge {
                        hs.append(bh * merge + mh)
                        ws.append(bw * merge + mw)
                    } }
                } }
            }
        }
        return (hs, ws)
    }

    /// The 2-D rotary's cos and sin [1, N, headDim]: the first half of the frequencies follow h, the second w.
    func rotary(grids: [[Int]], device: Device) throws -> (cos: Tensor, sin: Tensor) {
        let (h, w) = Self.patchCoordinates(grids: grids, merge: config.mergeSize)
        let inv = try inverseFrequencies.tensor.to(device: device)
        let hf = try Tensor(h.map(Int64.init)).to(device: device).to(dtype: .float32).unsqueeze(-1) * inv
        let wf = try Tensor(w.map(Int64.init)).to(device: device).to(dtype: .float32).unsqueeze(-1) * inv
        let angles = try Tensor.cat([hf, wf], dim: -1)
        let emb = try Tensor.cat([angles, angles], dim: -1).unsqueeze(0)
        return (try emb.cos(), try emb.sin())
    }

    /// Merged image tokens [Σ t·gh·gw / merge², out hidden] for patch rows [Σ t·gh·gw, patch values].
    func callAsFunction(_ rows: Tensor, grids: [[Int]]) throws -> Tensor {
        let total = grids.reduce(0) { $0 + $1[0] * $1[1] * $1[2] }
        guard rows.rank == 2, rows.size(0) == total, rows.size(1) == config.patchValues else {
            throw ModelError("Qwen2-VL vision: pixel rows \(rows.shape) do not match the grids \(grids) (\(total) rows of \(config.patchValues) values expected)")
        }
        var spans: [Range<Int>] = []
        var start = 0
        for g in grids {
            for _ in 0..<g[0] {
                spans.append(start..<(start + g[1] * g[2]))
                start += g[1] * g[2]
            }
        }
        var (cos, sin) = try rotary(grids: grids, device: rows.device)
        var h = try patch_embed.proj(rows)
        guard config.isQwen25 else {
            for block in blocks { h = try block(h, cos: cos, sin: sin, spans: spans) }
            return try merger(h)
        }
        // Qwen2.5-VL: rows (in groups of merge², kept together) reordered window by window; windowed blocks attend
        // within a window, the full-attention blocks within the image; the merged tokens are put back in order.
        let windows = Self.windows(grids: grids, merge: config.mergeSize, side: config.windowSize / config.mergeSize / config.patchSize)
        let unit = config.mergeSize * config.mergeSize
        let order = try Tensor(windows.order.flatMap { g in (0..<unit).map { Int64(g * unit + $0) } }).to(device: rows.device)
        h = try h.indexSelect(0, order)
        cos = try cos.indexSelect(1, order)
        sin = try sin.indexSelect(1, order)
        for (i, block) in blocks.enumerated() {
            h = try block(h, cos: cos, sin: sin, spans: config.fullAttentionBlocks.contains(i) ? spans : windows.spans)
        }
        var inverse = Array(repeating: Int64(0), count: windows.order.count)
        for (position, token) in windows.order.enumerated() { inverse[token] = Int64(position) }
        return try merger(h).indexSelect(0, Tensor(inverse).to(device: rows.device))
    }

    /// Qwen2.5-VL's windows over each image's merged grid: windows of side × side merged tokens in raster order
    /// (the last row and column of windows cut short by the grid's edge; no empty window), tokens in raster order
    /// within a window. `order[i]` is the merged token at the i-th place; `spans` the patch-row ranges per window.
    static func windows(grids: [[Int]], merge: Int, side: Int) -> (order: [Int], spans: [Range<Int>]) {
        var order: [Int] = [], spans: [Range<Int>] = []
        var base = 0, row = 0
        let unit = merge * merge
        for g in grids {
            let (t, h, w) = (g[0], g[1] / merge, g[2] / merge)
            for ti in 0..<t {
                for wy in stride(from: 0, to: h, by: side) { for wx in stride(from: 0, to: w, by: side) {
                    let start = order.count
                    for y in wy..<min(wy + side, h) { for x in wx..<min(wx + side, w) {
                        order.append(base + (ti * h + y) * w + x)
                    } }
                    let count = (order.count - start) * unit
                    spans.append(row..<(row + count))
                    row += count
                } }
            }
            base += t * h * w
        }
        return (order, spans)
    }
}

/// Qwen2-VL's 3-D rotary positions (`get_rope_index`), per sample on its real tokens: a text run advances all
/// three axes together; an image run takes t, h and w over its merged grid, from where the text stopped; text
/// after it resumes at that start + max(gh, gw) / merge. Padding gets 0. `delta` is the largest position + 1
/// less the real length: decoding with a cache continues at (cached length + delta) on every axis.
public enum MRoPE {
    public static func positions(ids: [[Int]], mask: [[Int]]?, grids: [[Int]], imageTokenID: Int, merge: Int) throws
        -> (positions: [[[Int]]], deltas: [Int])
    {
        var out = Array(repeating: ids.map { Array(repeating: 0, count: $0.count) }, count: 3)
        var deltas: [Int] = []
        var nextGrid = 0
        for (b, row) in ids.enumerated() {
            let real = (0..<row.count).filter { mask?[b][$0] != 0 }
            var cur = 0, largest = -1
            var i = 0
            while i < real.count {
                let isImage = row[real[i]] == imageTokenID
                var j = i
                while j < real.count && (row[real[j]] == imageTokenID) == isImage { j += 1 }
                if !isImage {
                    for (n, k) in (i..<j).enumerated() {
                        for axis in 0..<3 { out[axis][b][real[k]] = cur + n }
                    }
                    largest = max(largest, cur + j - i - 1)
                    cur += j - i
                } else {
                    guard nextGrid < grids.count else {
                        throw ModelError("the prompts have more image-token runs than the \(grids.count) image grid(s) given")
                    }
                    let g = grids[nextGrid]
                    nextGrid += 1
                    let (t, gh, gw) = (g[0], g[1] / merge, g[2] / merge)
                    guard t * gh * gw == j - i else {
                        throw ModelError("an image run of \(j - i) tokens does not match its grid \(g) (\(t * gh * gw) tokens)")
                    }
                    var k = i
                    for ti in 0..<t { for hi in 0..<gh { for wi in 0..<gw {
                        out[0][b][real[k]] = cur + ti
                        out[1][b][real[k]] = cur + hi
                        out[2][b][real[k]] = cur + wi
                        k += 1
                    } } }
                    largest = max(largest, cur + max(t - 1, gh - 1, gw - 1))
                    cur += max(gh, gw)
                }
                i = j
            }
            deltas.append(largest + 1 - real.count)
        }
        guard nextGrid == grids.count else {
            throw ModelError("\(grids.count) image grid(s) given but the prompts have \(nextGrid) image-token run(s)")
        }
        return (out, deltas)
    }
}

/// Qwen2-VL's settings: the Qwen2 decoder (`text_config`, or the Hub's flat root), the vision tower and the
/// vision token ids.
public struct Qwen2VLConfig: Sendable {
    public var text: LlamaConfig
    public var vision: Qwen2VLVisionConfig
    public var imageTokenID: Int
    public var visionStartTokenID: Int
    public var visionEndTokenID: Int

    init(_ c: ConfigReader) throws {
        var textReader = try c.object("text_config") ?? c
        if c.json["text_config"] == nil || textReader.json["model_type"] == nil {
            // The Hub's v4 files are flat: the decoder's keys sit at the root beside model_type qwen2_vl.
            var object = textReader.json.objectValue ?? []
            object.removeAll { $0.0 == "model_type" }
            object.append(("model_type", .string(try c.string("model_type") == "qwen2_5_vl" ? "qwen2_5_vl_text" : "qwen2_vl_text")))
            textReader = ConfigReader(.object(object), file: c.file, prefix: textReader.prefix)
        }
        text = try LlamaConfig(textReader)
        // transformers 5 keeps tie_word_embeddings at the root; older saves put it in text_config.
        text.tieWordEmbeddings = try c.has("tie_word_embeddings") ? c.bool("tie_word_embeddings", false) : text.tieWordEmbeddings
        guard text.rope.mropeSection != nil else {
            throw ModelError("\(c.file): \(textReader.prefix)rope_parameters.mrope_section is missing (Qwen2-VL's 3-D positions need it)")
        }
        guard let visionReader = try c.object("vision_config") else { throw ModelError("\(c.file): vision_config is missing") }
        vision = try Qwen2VLVisionConfig(visionReader, qwen25: try c.string("model_type") == "qwen2_5_vl")
        guard vision.outHiddenSize == text.hiddenSize else {
            throw ModelError("\(c.file): vision_config.hidden_size \(vision.outHiddenSize) is not the text hidden_size \(text.hiddenSize)")
        }
        imageTokenID = try c.int("image_token_id", 151655)
        visionStartTokenID = try c.int("vision_start_token_id", 151652)
        visionEndTokenID = try c.int("vision_end_token_id", 151653)
    }
}

/// Qwen2VLForConditionalGeneration: the vision tower (`visual`), the Qwen2 decoder (`model`) with M-RoPE and
/// its head. Keys as transformers 5.23 saves them and as the Hub holds them (`model.*`, `visual.*`, `lm_head`);
/// transformers 5's in-memory names (`model.language_model.*`, `model.visual.*`) are accepted too.
public final class Qwen2VLForConditionalGeneration: Module, @unchecked Sendable {
    let model: LlamaModel
    let visual: Qwen2VisionTransformer
    let lm_head: Linear?
    public let config: Qwen2VLConfig

    init(_ c: Qwen2VLConfig) throws {
        config = c
        model = try LlamaModel(c.text)
        visual = try Qwen2VisionTransformer(c.vision)
        lm_head = c.text.tieWordEmbeddings ? nil : try Linear(c.text.hiddenSize, c.text.vocabSize, bias: false)
        super.init()
    }

    /// Our name for a checkpoint key in any of the layouts above.
    static func normalisedKey(_ key: String) -> String {
        if key.hasPrefix("model.language_model.") { return "model." + key.dropFirst("model.language_model.".count) }
        if key.hasPrefix("model.visual.") { return String(key.dropFirst("model.".count)) }
        return key
    }

    /// Image tokens [Σ tokens, hidden] for patch rows and their grids.
    public func imageFeatures(_ images: ImageInputs) throws -> Tensor {
        guard let grids = images.grids else { throw ModelError("Qwen2-VL images need their patch grids (image_grid_thw)") }
        return try visual(images.pixels, grids: grids)
    }

    public func embed(inputIDs: Tensor, imageFeatures: Tensor?) throws -> Tensor {
        try embedWithImages(inputIDs, table: model.embed_tokens, imageTokenID: config.imageTokenID, features: imageFeatures)
    }

    public func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, cache: KVCache?) throws -> Tensor {
        try model(embeddings: embeddings, positions: positions, mask: mask, cache: cache)
    }

    public func logits(_ hidden: Tensor) throws -> Tensor {
        try hidden.linear(lm_head?.weight ?? model.embed_tokens.weight)
    }

    // MARK: the VLM protocol

    static func registryEntry(modelType: String) -> VLMRegistry.Entry {
        VLMRegistry.Entry(
            modelType: modelType,
            load: { folder, config, dtype, device in
                let c = try Qwen2VLConfig(config)
                let model = try ParameterInitialisation.skipped { try Qwen2VLForConditionalGeneration(c) }
                try ModelLoader.load(model, from: folder, dtype: dtype, device: device) { model.sanitize($0) }
                return model
            },
            processor: { folder in try Qwen2VLImageProcessor(folder: folder) },
            chatFormat: { _ in .qwen2VL })
    }

    /// The LoRA settings of the attached adapters, if any.
    public var loraConfig: LoRAConfig?
    public private(set) var hasBF16LinearWeights = false
    public var imageTokenID: Int { config.imageTokenID }
    public var dtype: DType { model.embed_tokens.weight.dtype }
    public var device: Device { model.embed_tokens.weight.device }

    /// M-RoPE's 3-D positions [3, B, count] of the last `count` tokens (see `MRoPE`).
    public func positions(tokens: [[Int]], mask: [[Int]]?, grids: [[Int]]?, count: Int) throws -> Tensor {
        let (p, _) = try MRoPE.positions(ids: tokens, mask: mask, grids: grids ?? [], imageTokenID: config.imageTokenID,
                                         merge: config.vision.mergeSize)
        let length = tokens.first?.count ?? 0
        let flat = p.flatMap { axis in axis.flatMap { $0[(length - count)...].map(Int64.init) } }
        return try Tensor(flat, shape: [3, tokens.count, count]).to(device: device)
    }

    public func decoder(embeddings: Tensor, positions: Tensor, mask: AttentionMask, past: [(Tensor, Tensor)]?) throws
        -> (hidden: Tensor, keysValues: [(Tensor, Tensor)])
    {
        try model.forward(embeddings: embeddings, positions: positions, mask: mask, past: past)
    }

    public func makeCache(batch: Int, capacity: Int) -> KVCache { KVCache(layers: config.text.layers, capacity: capacity) }

    /// The mean of each image's merged tokens, L2-normalised [N, text hidden]: Qwen2-VL has no pooled output, and
    /// these are the vectors its decoder reads.
    public func pooledImageEmbedding(_ images: ImageInputs) throws -> Tensor {
        let features = try imageFeatures(images).to(dtype: .float32)
        let pooled = try Tensor.stack(features.split(sizes: images.tokenCounts, dim: 0).map { try $0.mean(0) }, dim: 0)
        return try pooled / pooled.norm(2, dims: [-1], keepDim: true).clamp(min: 1e-12)
    }

    public var pooledImageEmbeddingDimension: Int { config.text.hiddenSize }

    public func visionFingerprint() throws -> [UInt8] {
        try visual.patch_embed.proj.weight.select(0, 0).to(dtype: .float32).contiguous().bytes()
    }

    public func sanitize(_ key: String) -> String? {
        if key.hasSuffix("rotary_emb.inv_freq") { return nil }
        if config.text.tieWordEmbeddings && key == "lm_head.weight" { return nil }
        return Self.normalisedKey(key)
    }

    /// transformers 5 holds the decoder as `model.language_model.*` and the tower as `model.visual.*`.
    public func transformersName(_ ours: String) -> String {
        if ours.hasPrefix("model.") { return "model.language_model." + ours.dropFirst("model.".count) }
        if ours.hasPrefix("visual.") { return "model." + ours }
        return ours
    }

    public func savedKey(_ ours: String) -> String { ours }

    public func isLanguageModelLinear(_ ours: String) -> Bool { ours.hasPrefix("model.layers.") }

    public var projectorName: String { "visual.merger" }

    public func part(_ ours: String) -> VLMPart {
        ours.hasPrefix("visual.merger.") ? .projector : ours.hasPrefix("visual.") ? .vision : .language
    }

    public func storeLinearWeightsInBF16() throws {
        guard dtype == .float32 else { throw ModelError("bf16 linear weights need an fp32 model (this one computes in \(dtype))") }
        try Models.storeLinearWeightsInBF16(of: model)
        if let lm_head { try Models.storeLinearWeightsInBF16(of: lm_head) }
        hasBF16LinearWeights = true
    }
}

extension Qwen2VLForConditionalGeneration: VLMModel {}
