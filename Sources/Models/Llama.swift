import Foundation
import Torch

/// Rotary position embedding: inverse frequencies by the config's rope type, cos/sin per position.
final class RotaryEmbedding: @unchecked Sendable {
    let config: LlamaConfig
    let inverseFrequencies: Buffer  // float32 [headDim / 2]

    init(_ config: LlamaConfig) throws {
        self.config = config
        inverseFrequencies = Buffer(try Self.frequencies(config, sequenceLength: nil))
    }

    /// transformers' rope init functions (default, linear, dynamic NTK, llama3), computed in float32 as there.
    static func frequencies(_ c: LlamaConfig, sequenceLength: Int?) throws -> Tensor {
        let dim = c.headDim
        var base = c.rope.theta
        if c.rope.kind == .dynamic, let n = sequenceLength {
            let length = Double(max(n, c.maxPositionEmbeddings))
            let factor = c.rope.factor
            base *= pow(factor * length / Double(c.maxPositionEmbeddings) - (factor - 1), Double(dim) / Double(dim - 2))
        }
        let exponents = try Tensor.arange(0, dim, step: 2).to(dtype: .float32) / Double(dim)
        var inv = try 1.0 / exponents.rpow(base)
        switch c.rope.kind {
        case .default, .dynamic:
            break
        case .linear:
            inv = try inv / c.rope.factor
        case .llama3:
            let r = c.rope
            let lowWavelength = Double(r.originalMaxPositionEmbeddings) / r.lowFreqFactor
            let highWavelength = Double(r.originalMaxPositionEmbeddings) / r.highFreqFactor
            let wavelength = try (2 * Double.pi) / inv
            let scaled = try Tensor.where(wavelength.gt(lowWavelength), inv / r.factor, inv)
            let smooth = try (Double(r.originalMaxPositionEmbeddings) / wavelength - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor)
            let smoothed = try (1.0 - smooth) * scaled / r.factor + smooth * scaled
            let medium = try wavelength.ge(highWavelength).logicalAnd(wavelength.le(lowWavelength))
            inv = try Tensor.where(medium, smoothed, scaled)
        }
        return inv
    }

    /// cos and sin [B, L, headDim] for integer positions [B, L], in `dtype`; or, with an M-RoPE section, for
    /// 3-D positions [3, B, L]: frequency block i follows axis i (t, h, w).
    func callAsFunction(positions: Tensor, dtype: DType) throws -> (cos: Tensor, sin: Tensor) {
        if positions.rank == 3 {
            guard let section = config.rope.mropeSection, positions.size(0) == 3 else {
                throw ModelError("3-D positions \(positions.shape) need an mrope_section in the rope settings")
            }
            let inv = try inverseFrequencies.tensor.to(device: positions.device)
            let freqs = try positions.unsqueeze(-1).to(dtype: .float32) * inv  // [3, B, L, headDim / 2]
            let blocks = try freqs.split(sizes: section, dim: -1).enumerated().map { try $0.element.select(0, $0.offset) }
            let mixed = try Tensor.cat(blocks, dim: -1)
            let emb = try Tensor.cat([mixed, mixed], dim: -1)
            return (try emb.cos().to(dtype: dtype), try emb.sin().to(dtype: dtype))
        }
        var inv = inverseFrequencies.tensor
        if config.rope.kind == .dynamic {
            let longest = try positions.max().itemInt() + 1
            if longest > config.maxPositionEmbeddings { inv = try Self.frequencies(config, sequenceLength: longest) }
        }
        if inv.device != positions.device { inv = try inv.to(device: positions.device) }
        let freqs = try positions.unsqueeze(-1).to(dtype: .float32) * inv
        let emb = try Tensor.cat([freqs, freqs], dim: -1)
        return (try emb.cos().to(dtype: dtype), try emb.sin().to(dtype: dtype))
    }
}

/// Grouped-query self-attention with rotary positions and an optional KV cache.
final class LlamaAttention: Module, @unchecked Sendable {
    let q_proj: Linear
    let k_proj: Linear
    let v_proj: Linear
    let o_proj: Linear
    let heads: Int
    let kvHeads: Int
    let headDim: Int

    init(_ c: LlamaConfig) throws {
        heads = c.heads
        kvHeads = c.kvHeads
        headDim = c.headDim
        q_proj = try Linear(c.hiddenSize, c.heads * c.headDim, bias: c.attentionBias)
        k_proj = try Linear(c.hiddenSize, c.kvHeads * c.headDim, bias: c.attentionBias)
        v_proj = try Linear(c.hiddenSize, c.kvHeads * c.headDim, bias: c.attentionBias)
        o_proj = try Linear(c.heads * c.headDim, c.hiddenSize, bias: c.outputBias)
        super.init()
    }

    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: KVCache.Layer?) throws -> Tensor {
        try attend(x, cos: cos, sin: sin, mask: mask, cache: cache, past: nil).output
    }

    /// Attention over `past` keys/values (graph-connected, e.g. a shared prompt) followed by the new positions;
    /// returns the output and the new positions' rotated keys and values.
    func attend(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: KVCache.Layer?,
                past: (Tensor, Tensor)?) throws -> (output: Tensor, keys: Tensor, values: Tensor) {
        let (b, l) = (x.size(0), x.size(1))
        let q = try q_proj(x).view(b, l, heads, headDim).transpose(1, 2)
        var k = try k_proj(x).view(b, l, kvHeads, headDim).transpose(1, 2)
        var v = try v_proj(x).view(b, l, kvHeads, headDim).transpose(1, 2)
        let qr = try F.rotary(q, cos: cos, sin: sin)
        k = try F.rotary(k, cos: cos, sin: sin)
        let (newKeys, newValues) = (k, v)
        if let (pk, pv) = past {
            k = try Tensor.cat([pk, k], dim: 2)
            v = try Tensor.cat([pv, v], dim: 2)
        }
        if let cache { (k, v) = try cache.append(keys: k, values: v) }
        if kvHeads != heads {
            let repeats = heads / kvHeads
            let t = k.size(2)
            k = try k.unsqueeze(2).expand([b, kvHeads, repeats, t, headDim]).reshape(b, heads, t, headDim)
            v = try v.unsqueeze(2).expand([b, kvHeads, repeats, t, headDim]).reshape(b, heads, t, headDim)
        }
        let attended = try F.scaledDotProductAttention(qr, k, v, mask: mask.additive, causal: mask.causal)
        return (try o_proj(attended.transpose(1, 2).reshape(b, l, heads * headDim)), newKeys, newValues)
    }
}

/// down(act(gate(x)) * up(x))
final class LlamaMLP: Module, @unchecked Sendable {
    let gate_proj: Linear
    let up_proj: Linear
    let down_proj: Linear
    let act: (Tensor) throws -> Tensor

    convenience init(_ c: LlamaConfig) throws {
        try self.init(hidden: c.hiddenSize, intermediate: c.intermediateSize, bias: c.mlpBias, activation: activation(c.hiddenAct))
    }

    init(hidden: Int, intermediate: Int, bias: Bool, activation: @escaping (Tensor) throws -> Tensor) throws {
        gate_proj = try Linear(hidden, intermediate, bias: bias)
        up_proj = try Linear(hidden, intermediate, bias: bias)
        down_proj = try Linear(intermediate, hidden, bias: bias)
        act = activation
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try down_proj(act(gate_proj(x)) * up_proj(x)) }
}

final class LlamaDecoderLayer: Module, @unchecked Sendable {
    let self_attn: LlamaAttention
    let mlp: LlamaMLP
    let input_layernorm: RMSNorm
    let post_attention_layernorm: RMSNorm

    init(_ c: LlamaConfig) throws {
        self_attn = try LlamaAttention(c)
        mlp = try LlamaMLP(c)
        input_layernorm = try RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        post_attention_layernorm = try RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        super.init()
    }

    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: KVCache.Layer?) throws -> Tensor {
        try layer(x, cos: cos, sin: sin, mask: mask, cache: cache, past: nil).output
    }

    func layer(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: KVCache.Layer?,
               past: (Tensor, Tensor)?) throws -> (output: Tensor, keys: Tensor, values: Tensor) {
        let a = try self_attn.attend(input_layernorm(x), cos: cos, sin: sin, mask: mask, cache: cache, past: past)
        let h = try x + a.output
        return (try h + mlp(post_attention_layernorm(h)), a.keys, a.values)
    }

    /// `layer` without a cache, its activations recomputed in backward instead of kept (gradient checkpointing).
    /// The recomputation sees the adapters switched on or off as this call did.
    func checkpointed(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, past: (Tensor, Tensor)?) throws
        -> (output: Tensor, keys: Tensor, values: Tensor)
    {
        let linears = loraLinears().map(\.1)
        let enabled = linears.map(\.loraEnabled)
        var inputs = [x, cos, sin]
        if let past { inputs += [past.0, past.1] }
        let outputs = try checkpoint(inputs, parameters: trainableParameters().map(\.1)) { [self] xs in
            let now = linears.map(\.loraEnabled)
            for (l, on) in zip(linears, enabled) { l.loraEnabled = on }
            defer { for (l, on) in zip(linears, now) { l.loraEnabled = on } }
            let r = try layer(xs[0], cos: xs[1], sin: xs[2], mask: mask, cache: nil, past: xs.count == 5 ? (xs[3], xs[4]) : nil)
            return [r.output, r.keys, r.values]
        }
        return (outputs[0], outputs[1], outputs[2])
    }
}

/// A decoder stack that can recompute its layers' activations in backward instead of keeping them (transformers'
/// `gradient_checkpointing_enable`).
public protocol GradientCheckpointing: AnyObject {
    var gradientCheckpointing: Bool { get set }
}

extension Module {
    /// Switches gradient checkpointing on or off in every stack of this model that supports it; returns how many.
    @discardableResult
    public func setGradientCheckpointing(_ on: Bool) -> Int {
        let stacks = namedModules().compactMap { $0.1 as? GradientCheckpointing }
        for s in stacks { s.gradientCheckpointing = on }
        return stacks.count
    }
}

/// The decoder stack (transformers' LlamaModel): embeddings, layers, final norm.
final class LlamaModel: Module, GradientCheckpointing, @unchecked Sendable {
    let embed_tokens: Embedding
    let layers: [LlamaDecoderLayer]
    let norm: RMSNorm
    let rotary: RotaryEmbedding
    var gradientCheckpointing = false

    init(_ c: LlamaConfig) throws {
        embed_tokens = try Embedding(c.vocabSize, c.hiddenSize)
        layers = try (0..<c.layers).map { _ in try LlamaDecoderLayer(c) }
        norm = try RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        rotary = try RotaryEmbedding(c)
        super.init()
    }

    /// Final hidden states after `past` keys/values per layer (graph-connected), and this call's keys/values.
    func forward(embeddings: Tensor, positions: Tensor, mask: AttentionMask, past: [(Tensor, Tensor)]?) throws
        -> (hidden: Tensor, keysValues: [(Tensor, Tensor)])
    {
        let (cos, sin) = try rotary(positions: positions, dtype: embeddings.dtype)
        var h = embeddings
        var collected: [(Tensor, Tensor)] = []
        let recompute = gradientCheckpointing && isGradEnabled
        for (i, layer) in layers.enumerated() {
            let r = recompute ? try layer.checkpointed(h, cos: cos, sin: sin, mask: mask, past: past?[i])
                : try layer.layer(h, cos: cos, sin: sin, mask: mask, cache: nil, past: past?[i])
            h = r.output
            collected.append((r.keys, r.values))
        }
        return (try norm(h), collected)
    }

    /// Final hidden states [B, L, hidden] for input embeddings [B, L, hidden].
    func callAsFunction(embeddings: Tensor, positions: Tensor, mask: AttentionMask, cache: KVCache?) throws -> Tensor {
        let (cos, sin) = try rotary(positions: positions, dtype: embeddings.dtype)
        var h = embeddings
        let recompute = gradientCheckpointing && isGradEnabled && cache == nil
        for (i, layer) in layers.enumerated() {
            h = recompute ? try layer.checkpointed(h, cos: cos, sin: sin, mask: mask, past: nil).output
                : try layer(h, cos: cos, sin: sin, mask: mask, cache: cache?.layers[i])
        }
        cache?.commit(h.size(1))
        return try norm(h)
    }
}

/// LlamaForCausalLM: the decoder and its vocabulary head (tied to the embeddings when the config says so).
final class LlamaForCausalLM: Module, @unchecked Sendable {
    let model: LlamaModel
    let lm_head: Linear?
    let config: LlamaConfig

    init(_ c: LlamaConfig) throws {
        config = c
        model = try LlamaModel(c)
        lm_head = c.tieWordEmbeddings ? nil : try Linear(c.hiddenSize, c.vocabSize, bias: false)
        super.init()
    }

    /// Vocabulary logits for hidden states [..., hidden].
    func logits(_ hidden: Tensor) throws -> Tensor {
        try hidden.linear(lm_head?.weight ?? model.embed_tokens.weight)
    }
}
