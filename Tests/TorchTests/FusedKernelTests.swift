import Foundation
import Testing
@testable import Torch

/// RMSNorm, the rotary embedding and attention for a few queries run as one pass in the shim where no gradient is
/// needed, and as libtorch's composite ops otherwise. Each fused case is checked against its formula computed in
/// float64, and against the composite (reached by asking for a gradient) where both round alike.
@Suite struct FusedKernelTests {
    /// weight * x / sqrt(mean(x^2) + eps) in float64.
    func rmsReference(_ x: Tensor, _ weight: Tensor?, eps: Double) throws -> Tensor {
        let h = try x.to(dtype: .float64)
        let normed = try h * (h.square().mean(-1, keepDim: true) + eps).rsqrt()
        return try weight.map { try $0.to(dtype: .float64) * normed } ?? normed
    }

    @Test(arguments: [1, 7, 300])
    func rmsNormMatchesItsFormula(width: Int) throws {
        let g = try Generator(seed: UInt64(width))
        let weight = try Tensor.randn([width], generator: g)
        for shape in [[width], [3, width], [2, 5, width]] {
            let x = try Tensor.randn(shape, generator: g)
            for w in [nil, weight] {
                let fused = try withNoGrad { try F.rmsNorm(x, weight: w, eps: 1e-6) }
                #expect(fused.dtype == .float32 && fused.shape == shape)
                let error = try relativeError(fused, rmsReference(x, w, eps: 1e-6))
                #expect(error < 1e-6, "shape \(shape), weight \(w != nil): \(error)")
                // The composite (the path with gradients) gives the same numbers.
                let composite = try F.rmsNorm(x.requiresGrad(true), weight: w, eps: 1e-6)
                #expect(try relativeError(fused, composite) < 1e-6)
            }
        }
    }

    @Test func rmsNormInBFloat16RoundsAsTheComposite() throws {
        let g = try Generator(seed: 11)
        let x = try Tensor.randn([4, 96], generator: g).to(dtype: .bfloat16)
        let w = try Tensor.randn([96], generator: g).to(dtype: .bfloat16)
        let fused = try withNoGrad { try F.rmsNorm(x, weight: w, eps: 1e-5) }
        #expect(fused.dtype == .bfloat16)
        // Rounded twice (the normalised value, then the product with the weight): within two bf16 steps.
        #expect(try relativeError(fused, rmsReference(x, w, eps: 1e-5)) < 1.0 / 64)
        let composite = try F.rmsNorm(x.to(dtype: .float32).requiresGrad(true).to(dtype: .bfloat16), weight: w, eps: 1e-5)
        let differing = try fused.to(dtype: .float32).ne(composite.to(dtype: .float32)).sum().itemInt()
        #expect(differing <= 2, "\(differing) of 384 elements differ from the composite")
    }

    /// x * cos + rotate_half(x) * sin in float64, rotate_half(x) = cat(-x2, x1).
    func rotaryReference(_ x: Tensor, _ cos: Tensor, _ sin: Tensor) throws -> Tensor {
        let h = try x.to(dtype: .float64), half = x.size(-1) / 2
        let rotated = try Tensor.cat([h.slice(-1, half).neg(), h.slice(-1, 0, half)], dim: -1)
        return try h * cos.to(dtype: .float64).unsqueeze(1) + rotated * sin.to(dtype: .float64).unsqueeze(1)
    }

    @Test func rotaryMatchesItsFormula() throws {
        let g = try Generator(seed: 12)
        // [B, L, H, D] transposed to [B, H, L, D], as the attention's projections are viewed.
        for (b, l, h, d) in [(1, 1, 8, 64), (2, 5, 3, 10)] {
            let x = try Tensor.randn([b, l, h, d], generator: g).transpose(1, 2)
            let cos = try Tensor.randn([b, l, d], generator: g), sin = try Tensor.randn([b, l, d], generator: g)
            let fused = try withNoGrad { try F.rotary(x, cos: cos, sin: sin) }
            #expect(fused.shape == [b, h, l, d])
            #expect(try relativeError(fused, rotaryReference(x, cos, sin)) < 1e-6)
            let composite = try F.rotary(x.requiresGrad(true), cos: cos, sin: sin)
            #expect(try fused.equal(composite.detach()), "fp32 [\(b), \(h), \(l), \(d)]")
        }
    }

    @Test func rotaryInBFloat16RoundsAsTheComposite() throws {
        let g = try Generator(seed: 13)
        let x = try Tensor.randn([2, 3, 4, 16], generator: g).transpose(1, 2).to(dtype: .bfloat16)
        let cos = try Tensor.randn([2, 3, 16], generator: g).to(dtype: .bfloat16)
        let sin = try Tensor.randn([2, 3, 16], generator: g).to(dtype: .bfloat16)
        let fused = try withNoGrad { try F.rotary(x, cos: cos, sin: sin) }
        let composite = try F.rotary(x.to(dtype: .float32).requiresGrad(true).to(dtype: .bfloat16), cos: cos, sin: sin)
        // Each product rounded to bf16, then their sum: the same three roundings as the composite's ops.
        #expect(try fused.equal(composite.detach()))
        #expect(try relativeError(fused, rotaryReference(x, cos, sin)) < 1.0 / 64)
    }

    /// softmax(q kᵀ · scale + mask) v in float64.
    func attentionReference(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor?) throws -> Tensor {
        let (q, k, v) = (try q.to(dtype: .float64), try k.to(dtype: .float64), try v.to(dtype: .float64))
        var scores = try q.matmul(k.transpose(-2, -1)) * (1 / Double(q.size(-1)).squareRoot())
        if let mask { scores = try scores + mask.to(dtype: .float64) }
        return try scores.softmax(-1).matmul(v)
    }

    /// 1-16 queries (a decode step) and 37 queries on 37 keys (a short sentence) take the one-pass kernel; 120 on
    /// 37 and 130 on 300 (more than 64 x 64 scores; three blocks of queries, the last one short) the blocked one.
    @Test(arguments: [(1, 37), (3, 37), (16, 37), (37, 37), (120, 37), (130, 300)])
    func attentionMatchesItsFormula(queries: Int, keys s: Int) throws {
        let g = try Generator(seed: UInt64(20 + queries))
        let (b, h, d) = (2, 3, 40)
        // Keys and values are views of a larger cache buffer, as a KV cache hands them over.
        let keyCache = try Tensor.randn([b, h, s + 27, d], generator: g), valueCache = try Tensor.randn([b, h, s + 27, d], generator: g)
        let k = try keyCache.narrow(2, start: 0, length: s), v = try valueCache.narrow(2, start: 0, length: s)
        let q = try Tensor.randn([b, queries, h, d], generator: g).transpose(1, 2)
        // No mask; a per-row mask hiding padding; one mask shared by the batch; one per head; one per key only.
        let hidden = try Tensor.zeros([b, 1, queries, s])
        try hidden.narrow(3, start: 0, length: 5).select(0, 1).copyFrom(Tensor.full([1, queries, 5], -3.4028234663852886e38))
        let shared = try Tensor.randn([1, 1, queries, s], generator: g)
        let perHead = try Tensor.randn([b, h, queries, s], generator: g)
        let perKey = try Tensor.randn([b, 1, 1, s], generator: g)
        for mask in [nil, hidden, shared, perHead, perKey] {
            let fused = try withNoGrad { try F.scaledDotProductAttention(q, k, v, mask: mask) }
            #expect(fused.shape == [b, h, queries, d])
            let error = try relativeError(fused, attentionReference(q, k, v, mask: mask))
            #expect(error < 1e-5, "queries \(queries), keys \(s), mask \(mask?.shape ?? []): \(error)")
        }
    }

    /// is_causal as torch has it (query i sees keys 0...i, also when there are more keys than queries), for a
    /// single block, a block boundary and several blocks; scores far apart push the softmax's exponent to its ends.
    @Test(arguments: [(5, 5), (64, 64), (65, 65), (130, 130), (70, 90)])
    func causalAttentionMatchesItsFormula(queries: Int, keys s: Int) throws {
        let g = try Generator(seed: UInt64(50 + queries))
        let (b, h, d) = (2, 2, 64)
        let q = try Tensor.randn([b, h, queries, d], generator: g) * 3.0
        let k = try Tensor.randn([b, h, s, d], generator: g) * 3.0, v = try Tensor.randn([b, h, s, d], generator: g)
        let visible = try Tensor.ones([queries, s]).tril()
        let mask = try (visible - 1.0) * 3.4028234663852886e38  // 0 where seen, the lowest float where not
        let fused = try withNoGrad { try F.scaledDotProductAttention(q, k, v, causal: true) }
        let error = try relativeError(fused, attentionReference(q, k, v, mask: mask))
        #expect(error < 1e-5, "queries \(queries), keys \(s): \(error)")
        // The composite ops (a gradient is asked) agree.
        let composite = try F.scaledDotProductAttention(q.requiresGrad(true), k, v, causal: true)
        #expect(try relativeError(fused, composite) < 1e-5)
    }

    /// A NaN in one query gives NaN in that query's output only, as the composite does (not a silent zero).
    @Test func aNaNQueryGivesANaNRow() throws {
        let g = try Generator(seed: 77)
        let q = try Tensor.randn([1, 2, 100, 32], generator: g), kv = try Tensor.randn([1, 2, 100, 32], generator: g)
        try q.select(1, 1).select(1, 70).narrow(1, start: 3, length: 1).fillInPlace(Double.nan)
        for causal in [false, true] {
            let y = try withNoGrad { try F.scaledDotProductAttention(q, kv, kv, causal: causal) }
            #expect(try y.select(1, 1).select(1, 70).isnan().all().item() == 1)
            #expect(try y.isnan().sum().item() == 32, "only query 70 of head 1 is NaN")
        }
    }

    /// A zero-width head (a degenerate config) gives an empty result, not a crash: the kernels' block sizes divide
    /// by the width, so these shapes must take the composite ops.
    @Test func zeroWidthHeadsGiveEmptyResults() throws {
        try withNoGrad {
            let x = try Tensor.zeros([1, 2, 3, 0]), cos = try Tensor.zeros([1, 3, 0])
            #expect(try F.rotary(x, cos: cos, sin: cos).shape == [1, 2, 3, 0])
            let q = try Tensor.zeros([1, 2, 1, 0]), kv = try Tensor.zeros([1, 2, 4, 0])
            #expect(try F.scaledDotProductAttention(q, kv, kv).shape == [1, 2, 1, 0])
        }
    }
}
