import CTorch

/// Neural-network functions (torch.nn.functional).
public enum F {
    public static func layerNorm(_ x: Tensor, shape: [Int], weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_layer_norm(x.handle, $0.baseAddress, Int32(shape.count), weight?.handle, bias?.handle, eps, out) } }
    }

    /// Rows of `weight` picked by integer `ids`; the row `paddingIndex` gets no gradient.
    public static func embedding(_ ids: Tensor, weight: Tensor, paddingIndex: Int? = nil) throws -> Tensor {
        try result { ct_embedding(weight.handle, ids.handle, Int64(paddingIndex ?? -1), $0) }
    }

    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                              padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
        let s = [stride.0, stride.1], p = [padding.0, padding.1], d = [dilation.0, dilation.1]
        return try result { out in
            s.withUnsafeBufferPointer { sp in p.withUnsafeBufferPointer { pp in d.withUnsafeBufferPointer { dp in
                ct_conv2d(x.handle, weight.handle, bias?.handle, sp.baseAddress, pp.baseAddress, dp.baseAddress, Int64(groups), out)
            } } }
        }
    }

    /// Zeroes elements with probability p and scales the rest by 1/(1-p) when `training`; identity otherwise.
    public static func dropout(_ x: Tensor, p: Double, training: Bool) throws -> Tensor {
        if !training || p == 0 { return x }
        return try result { ct_dropout(x.handle, p, training, $0) }
    }

    /// Scaled dot-product attention. q [..., L, E], k [..., S, E], v [..., S, Ev]. `mask` is bool (true = attend)
    /// or additive, broadcastable to [..., L, S]. `scale` nil means 1/sqrt(E). Uses libtorch's fused kernel where
    /// it exists (2.1+) and the composite math otherwise (or when `manual` is set).
    public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil,
                                                 dropout: Double = 0, causal: Bool = false, scale: Double? = nil,
                                                 manual: Bool = false) throws -> Tensor {
        try result { ct_sdpa(q.handle, k.handle, v.handle, mask?.handle, dropout, causal, scale ?? 0, manual, $0) }
    }

    public enum Reduction: Int32, Sendable { case none = 0, mean = 1, sum = 2 }

    /// Cross-entropy of logits [N, C] (or [N, C, ...]) against integer targets; targets equal to `ignoreIndex`
    /// contribute nothing (and are left out of the mean).
    public static func crossEntropy(_ logits: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean,
                                    ignoreIndex: Int = -100, labelSmoothing: Double = 0) throws -> Tensor {
        try result { ct_cross_entropy(logits.handle, target.handle, weight?.handle, reduction.rawValue, Int64(ignoreIndex), labelSmoothing, $0) }
    }

    /// Bicubic resize of [N, C, H, W] (torch.nn.functional.interpolate(mode="bicubic")).
    public static func interpolateBicubic(_ x: Tensor, size: (Int, Int), alignCorners: Bool = false) throws -> Tensor {
        try result { ct_interpolate_bicubic(x.handle, Int64(size.0), Int64(size.1), alignCorners, $0) }
    }

    /// Root-mean-square normalisation as LLaMA computes it: in float32, then back to the input dtype, then
    /// scaled by `weight`. (One pass in the shim where no gradient is needed.)
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Double) throws -> Tensor {
        try result { ct_rms_norm(x.handle, weight?.handle, eps, $0) }
    }

    /// Rotary position embedding as transformers applies it: x * cos + rotate_half(x) * sin, with
    /// rotate_half(x) = cat(-x2, x1) over the halves of the last dimension. x [B, H, L, D]; cos, sin [B, L, D].
    public static func rotary(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        try result { ct_rotary(x.handle, cos.handle, sin.handle, $0) }
    }
}
