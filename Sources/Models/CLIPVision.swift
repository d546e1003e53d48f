import Torch

final class CLIPVisionEmbeddings: Module, @unchecked Sendable {
    let class_embedding: Tensor
    let patch_embedding: Conv2d
    let position_embedding: Embedding
    let positionIDs: Buffer

    init(_ c: CLIPVisionConfig) throws {
        class_embedding = try Tensor.randn([c.hiddenSize]).requiresGrad(true)
        patch_embedding = try Conv2d(c.channels, c.hiddenSize, kernelSize: (c.patchSize, c.patchSize),
                                     stride: (c.patchSize, c.patchSize), bias: false)
        let positions = c.patchesPerSide * c.patchesPerSide + 1
        position_embedding = try Embedding(positions, c.hiddenSize)
        positionIDs = Buffer(try Tensor.arange(0, positions))
        super.init()
    }

    /// [N, 3, H, W] pixels -> [N, 1 + patches, hidden]
    func callAsFunction(_ pixels: Tensor) throws -> Tensor {
        let weight = patch_embedding.weight
        let patches = try patch_embedding(pixels.to(dtype: weight.dtype)).flatten(start: 2).transpose(1, 2)
        let n = pixels.size(0)
        let cls = try class_embedding.to(dtype: patches.dtype).expand([n, 1, class_embedding.size(0)])
        let positions = try position_embedding(positionIDs.tensor.to(device: pixels.device))
        return try Tensor.cat([cls, patches], dim: 1) + positions
    }
}

final class CLIPAttention: Module, @unchecked Sendable {
    let q_proj: Linear
    let k_proj: Linear
    let v_proj: Linear
    let out_proj: Linear
    let heads: Int

    init(_ c: CLIPVisionConfig) throws {
        heads = c.heads
        q_proj = try Linear(c.hiddenSize, c.hiddenSize)
        k_proj = try Linear(c.hiddenSize, c.hiddenSize)
        v_proj = try Linear(c.hiddenSize, c.hiddenSize)
        out_proj = try Linear(c.hiddenSize, c.hiddenSize)
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, l, d) = (x.size(0), x.size(1), x.size(2))
        let headDim = d / heads
        func split(_ t: Tensor) throws -> Tensor { try t.view(b, l, heads, headDim).transpose(1, 2) }
        let attended = try F.scaledDotProductAttention(split(q_proj(x)), split(k_proj(x)), split(v_proj(x)))
        return try out_proj(attended.transpose(1, 2).reshape(b, l, d))
    }
}

final class CLIPMLP: Module, @unchecked Sendable {
    let fc1: Linear
    let fc2: Linear
    let act: (Tensor) throws -> Tensor

    convenience init(_ c: CLIPVisionConfig) throws {
        try self.init(hidden: c.hiddenSize, intermediate: c.intermediateSize, activation: activation(c.hiddenAct))
    }

    init(hidden: Int, intermediate: Int, activation: @escaping (Tensor) throws -> Tensor) throws {
        fc1 = try Linear(hidden, intermediate)
        fc2 = try Linear(intermediate, hidden)
        act = activation
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(act(fc1(x))) }
}

final class CLIPEncoderLayer: Module, @unchecked Sendable {
    let self_attn: CLIPAttention
    let layer_norm1: LayerNorm
    let mlp: CLIPMLP
    let layer_norm2: LayerNorm

    init(_ c: CLIPVisionConfig) throws {
        self_attn = try CLIPAttention(c)
        layer_norm1 = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        mlp = try CLIPMLP(c)
        layer_norm2 = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try x + self_attn(layer_norm1(x))
        return try h + mlp(layer_norm2(h))
    }
}

final class CLIPEncoder: Module, @unchecked Sendable {
    let layers: [CLIPEncoderLayer]
    init(_ c: CLIPVisionConfig) throws {
        layers = try (0..<c.layers).map { _ in try CLIPEncoderLayer(c) }
        super.init()
    }
}

/// The vision transformer (transformers' CLIPVisionTransformer): patch embeddings with class and position
/// embeddings, pre-LN encoder, post-layernorm on the CLS state.
final class CLIPVisionTransformer: Module, @unchecked Sendable {
    let embeddings: CLIPVisionEmbeddings
    let pre_layrnorm: LayerNorm
    let encoder: CLIPEncoder
    let post_layernorm: LayerNorm

    init(_ c: CLIPVisionConfig) throws {
        embeddings = try CLIPVisionEmbeddings(c)
        pre_layrnorm = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        encoder = try CLIPEncoder(c)
        post_layernorm = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        super.init()
    }

    /// Hidden states as transformers counts them: index 0 is the input to the first layer, index i the output of
    /// layer i. Only layers up to `through` (an index in that list) are run.
    func hiddenStates(_ pixels: Tensor, through: Int) throws -> [Tensor] {
        var states = [try pre_layrnorm(embeddings(pixels))]
        for layer in encoder.layers.prefix(through) { states.append(try layer(states.last!)) }
        return states
    }

    /// The pooled output: post-layernormed CLS state of the last layer [N, hidden].
    func pooled(_ pixels: Tensor) throws -> Tensor {
        let last = try hiddenStates(pixels, through: encoder.layers.count).last!
        return try post_layernorm(last.select(1, 0))
    }
}

/// CLIPVisionModel: `vision_model.*` in checkpoints.
public final class CLIPVisionModel: Module, @unchecked Sendable {
    let vision_model: CLIPVisionTransformer
    public let config: CLIPVisionConfig

    init(_ c: CLIPVisionConfig) throws {
        config = c
        vision_model = try CLIPVisionTransformer(c)
        super.init()
    }

    /// The last layer's hidden states [N, 1 + patches, hidden] and the pooled output [N, hidden], with the graph
    /// kept: what a pretraining objective on the tower reads.
    public func lastHiddenState(_ pixels: Tensor) throws -> (states: Tensor, pooled: Tensor) {
        let last = try vision_model.hiddenStates(pixels, through: vision_model.encoder.layers.count).last!
        return (last, try vision_model.post_layernorm(last.select(1, 0)))
    }

    /// The retrieval embedding: the pooled output, L2-normalised [N, hidden].
    public func embedding(_ pixels: Tensor) throws -> Tensor {
        let pooled = try vision_model.pooled(pixels).to(dtype: .float32)
        return try pooled / pooled.norm(2, dims: [-1], keepDim: true).clamp(min: 1e-12)
    }
}
