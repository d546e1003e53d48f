import CTorch

/// Elementwise math with broadcasting, comparisons and linear algebra.
extension Tensor {
    // MARK: binary (tensor, tensor)
    public func add(_ o: Tensor) throws -> Tensor { try result { ct_add(handle, o.handle, $0) } }
    public func sub(_ o: Tensor) throws -> Tensor { try result { ct_sub(handle, o.handle, $0) } }
    public func mul(_ o: Tensor) throws -> Tensor { try result { ct_mul(handle, o.handle, $0) } }
    public func div(_ o: Tensor) throws -> Tensor { try result { ct_div(handle, o.handle, $0) } }
    public func pow(_ o: Tensor) throws -> Tensor { try result { ct_pow(handle, o.handle, $0) } }
    public func maximum(_ o: Tensor) throws -> Tensor { try result { ct_maximum(handle, o.handle, $0) } }
    public func minimum(_ o: Tensor) throws -> Tensor { try result { ct_minimum(handle, o.handle, $0) } }
    public func remainder(_ o: Tensor) throws -> Tensor { try result { ct_remainder(handle, o.handle, $0) } }
    public func atan2(_ o: Tensor) throws -> Tensor { try result { ct_atan2(handle, o.handle, $0) } }

    // MARK: with scalars
    public func pow(_ e: Double) throws -> Tensor { try result { ct_pow_scalar(handle, scalar(e), $0) } }
    public func pow(_ e: Int) throws -> Tensor { try result { ct_pow_scalar(handle, scalar(e), $0) } }
    /// base ** self
    public func rpow(_ base: Double) throws -> Tensor { try result { ct_rpow_scalar(handle, scalar(base), $0) } }
    public func remainder(_ s: Int) throws -> Tensor { try result { ct_remainder_scalar(handle, scalar(s), $0) } }
    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try result { ct_clamp(handle, min ?? 0, min != nil, max ?? 0, max != nil, $0) }
    }

    // MARK: unary
    public func neg() throws -> Tensor { try result { ct_neg(handle, $0) } }
    public func abs() throws -> Tensor { try result { ct_abs(handle, $0) } }
    public func exp() throws -> Tensor { try result { ct_exp(handle, $0) } }
    public func log() throws -> Tensor { try result { ct_log(handle, $0) } }
    public func log1p() throws -> Tensor { try result { ct_log1p(handle, $0) } }
    public func expm1() throws -> Tensor { try result { ct_expm1(handle, $0) } }
    public func sqrt() throws -> Tensor { try result { ct_sqrt(handle, $0) } }
    public func rsqrt() throws -> Tensor { try result { ct_rsqrt(handle, $0) } }
    public func square() throws -> Tensor { try result { ct_square(handle, $0) } }
    public func reciprocal() throws -> Tensor { try result { ct_reciprocal(handle, $0) } }
    public func sin() throws -> Tensor { try result { ct_sin(handle, $0) } }
    public func cos() throws -> Tensor { try result { ct_cos(handle, $0) } }
    public func tanh() throws -> Tensor { try result { ct_tanh(handle, $0) } }
    public func erf() throws -> Tensor { try result { ct_erf(handle, $0) } }
    public func sigmoid() throws -> Tensor { try result { ct_sigmoid(handle, $0) } }
    public func logSigmoid() throws -> Tensor { try result { ct_logsigmoid(handle, $0) } }
    public func relu() throws -> Tensor { try result { ct_relu(handle, $0) } }
    public func silu() throws -> Tensor { try result { ct_silu(handle, $0) } }
    /// GELU, exact (erf) by default or with the tanh approximation (`gelu_pytorch_tanh`).
    public func gelu(approximate: Bool = false) throws -> Tensor { try result { ct_gelu(handle, approximate, $0) } }
    /// x * sigmoid(1.702 x), CLIP's activation.
    public func quickGelu() throws -> Tensor { try self * (self * 1.702).sigmoid() }
    public func floor() throws -> Tensor { try result { ct_floor(handle, $0) } }
    public func ceil() throws -> Tensor { try result { ct_ceil(handle, $0) } }
    public func round() throws -> Tensor { try result { ct_round(handle, $0) } }
    public func sign() throws -> Tensor { try result { ct_sign(handle, $0) } }
    public func isnan() throws -> Tensor { try result { ct_isnan(handle, $0) } }
    public func isfinite() throws -> Tensor { try result { ct_isfinite(handle, $0) } }
    public func logicalNot() throws -> Tensor { try result { ct_logical_not(handle, $0) } }

    // MARK: comparisons and logic (bool results)
    public func eq(_ o: Tensor) throws -> Tensor { try result { ct_eq(handle, o.handle, $0) } }
    public func ne(_ o: Tensor) throws -> Tensor { try result { ct_ne(handle, o.handle, $0) } }
    public func lt(_ o: Tensor) throws -> Tensor { try result { ct_lt(handle, o.handle, $0) } }
    public func le(_ o: Tensor) throws -> Tensor { try result { ct_le(handle, o.handle, $0) } }
    public func gt(_ o: Tensor) throws -> Tensor { try result { ct_gt(handle, o.handle, $0) } }
    public func ge(_ o: Tensor) throws -> Tensor { try result { ct_ge(handle, o.handle, $0) } }
    public func eq(_ s: Double) throws -> Tensor { try result { ct_eq_scalar(handle, scalar(s), $0) } }
    public func ne(_ s: Double) throws -> Tensor { try result { ct_ne_scalar(handle, scalar(s), $0) } }
    public func lt(_ s: Double) throws -> Tensor { try result { ct_lt_scalar(handle, scalar(s), $0) } }
    public func le(_ s: Double) throws -> Tensor { try result { ct_le_scalar(handle, scalar(s), $0) } }
    public func gt(_ s: Double) throws -> Tensor { try result { ct_gt_scalar(handle, scalar(s), $0) } }
    public func ge(_ s: Double) throws -> Tensor { try result { ct_ge_scalar(handle, scalar(s), $0) } }
    public func eq(_ s: Int) throws -> Tensor { try result { ct_eq_scalar(handle, scalar(s), $0) } }
    public func ne(_ s: Int) throws -> Tensor { try result { ct_ne_scalar(handle, scalar(s), $0) } }
    public func logicalAnd(_ o: Tensor) throws -> Tensor { try result { ct_logical_and(handle, o.handle, $0) } }
    public func logicalOr(_ o: Tensor) throws -> Tensor { try result { ct_logical_or(handle, o.handle, $0) } }
    public func logicalXor(_ o: Tensor) throws -> Tensor { try result { ct_logical_xor(handle, o.handle, $0) } }

    // MARK: linear algebra
    public func matmul(_ o: Tensor) throws -> Tensor { try result { ct_matmul(handle, o.handle, $0) } }
    public func bmm(_ o: Tensor) throws -> Tensor { try result { ct_bmm(handle, o.handle, $0) } }
    public func outer(_ o: Tensor) throws -> Tensor { try result { ct_outer(handle, o.handle, $0) } }
    /// Matrix [N, K] times vector [K].
    public func mv(_ v: Tensor) throws -> Tensor { try result { ct_mv(handle, v.handle, $0) } }
    /// x Wᵀ + b, with W [out, in] as torch.nn.functional.linear. The shim picks the kernel: inference with few rows
    /// (a decode step) reads the weights once, at the memory's streaming rate, through the shim's own kernel; a
    /// weight stored in bf16 under fp32 inputs is multiplied in bf16 with fp32 accumulation and an fp32 result.
    public func linear(_ weight: Tensor, _ bias: Tensor? = nil) throws -> Tensor {
        try result { ct_linear(handle, weight.handle, bias?.handle, $0) }
    }

    // MARK: operators
    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.add(b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.sub(b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.mul(b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.div(b) }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.neg() }

    public static func + (a: Tensor, s: Double) throws -> Tensor { try result { ct_add_scalar(a.handle, scalar(s), $0) } }
    public static func - (a: Tensor, s: Double) throws -> Tensor { try result { ct_sub_scalar(a.handle, scalar(s), $0) } }
    public static func * (a: Tensor, s: Double) throws -> Tensor { try result { ct_mul_scalar(a.handle, scalar(s), $0) } }
    public static func / (a: Tensor, s: Double) throws -> Tensor { try result { ct_div_scalar(a.handle, scalar(s), $0) } }
    public static func + (s: Double, a: Tensor) throws -> Tensor { try a + s }
    public static func - (s: Double, a: Tensor) throws -> Tensor { try result { ct_rsub_scalar(a.handle, scalar(s), $0) } }
    public static func * (s: Double, a: Tensor) throws -> Tensor { try a * s }
    public static func / (s: Double, a: Tensor) throws -> Tensor { try result { ct_rdiv_scalar(a.handle, scalar(s), $0) } }

    // Integer scalars keep integer tensors integer, as Python ints do.
    public static func + (a: Tensor, s: Int) throws -> Tensor { try result { ct_add_scalar(a.handle, scalar(s), $0) } }
    public static func - (a: Tensor, s: Int) throws -> Tensor { try result { ct_sub_scalar(a.handle, scalar(s), $0) } }
    public static func * (a: Tensor, s: Int) throws -> Tensor { try result { ct_mul_scalar(a.handle, scalar(s), $0) } }
    public static func / (a: Tensor, s: Int) throws -> Tensor { try result { ct_div_scalar(a.handle, scalar(s), $0) } }
    public static func + (s: Int, a: Tensor) throws -> Tensor { try a + s }
    public static func - (s: Int, a: Tensor) throws -> Tensor { try result { ct_rsub_scalar(a.handle, scalar(s), $0) } }
    public static func * (s: Int, a: Tensor) throws -> Tensor { try a * s }
}

// MARK: in-place (for optimizers and initializers; run them under `withNoGrad` on parameters)
extension Tensor {
    /// self += alpha * other
    public func addInPlace(_ other: Tensor, alpha: Double = 1) throws { try check(ct_add_(handle, other.handle, scalar(alpha))) }
    public func addInPlace(_ s: Double) throws { try check(ct_add_scalar_(handle, scalar(s))) }
    public func mulInPlace(_ other: Tensor) throws { try check(ct_mul_(handle, other.handle)) }
    public func mulInPlace(_ s: Double) throws { try check(ct_mul_scalar_(handle, scalar(s))) }
    public func divInPlace(_ other: Tensor) throws { try check(ct_div_(handle, other.handle)) }
    public func divInPlace(_ s: Double) throws { try check(ct_div_scalar_(handle, scalar(s))) }
    /// self += value * a * b
    public func addcmulInPlace(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
        try check(ct_addcmul_(handle, a.handle, b.handle, scalar(value)))
    }
    /// self += value * a / b
    public func addcdivInPlace(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
        try check(ct_addcdiv_(handle, a.handle, b.handle, scalar(value)))
    }
    /// self += weight * (end - self)
    public func lerpInPlace(_ end: Tensor, weight: Double) throws { try check(ct_lerp_(handle, end.handle, scalar(weight))) }
    public func sqrtInPlace() throws { try check(ct_sqrt_(handle)) }
    public func clampInPlace(min: Double? = nil, max: Double? = nil) throws {
        try check(ct_clamp_(handle, min ?? 0, min != nil, max ?? 0, max != nil))
    }
    public func copyFrom(_ src: Tensor) throws { try check(ct_copy_(handle, src.handle)) }
    public func zeroInPlace() throws { try check(ct_zero_(handle)) }
    public func fillInPlace(_ v: Double) throws { try check(ct_fill_(handle, scalar(v))) }
    public func uniformInPlace(_ from: Double, _ to: Double, generator: Generator? = nil) throws {
        try check(ct_uniform_(handle, from, to, generator?.handle))
    }
    public func normalInPlace(mean: Double = 0, std: Double = 1, generator: Generator? = nil) throws {
        try check(ct_normal_(handle, mean, std, generator?.handle))
    }
    public func maskedFillInPlace(_ mask: Tensor, _ value: Double) throws {
        try check(ct_masked_fill_(handle, mask.handle, scalar(value)))
    }
}
