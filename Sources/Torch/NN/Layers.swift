import Foundation

/// Parameters start as leaf tensors that require gradients, initialised as PyTorch initialises them.
func parameter(_ t: Tensor) throws -> Tensor { try t.requiresGrad(true) }

/// Random initialisation of layer parameters, and a scope that skips it.
public enum ParameterInitialisation {
    @TaskLocal public static var isSkipped = false

    /// Builds `body`'s layers with uninitialised parameters, for a model whose every parameter a strict checkpoint
    /// load overwrites next: drawing random numbers for each first is wasted work (billions of draws for a 7B
    /// model); transformers skips them when loading too.
    public static func skipped<T>(_ body: () throws -> T) rethrows -> T {
        try $isSkipped.withValue(true, operation: body)
    }
}

/// y = x Wᵀ + b, W [out, in]; with a LoRA adapter attached, plus scaling · B(A(dropout(x))) while enabled.
open class Linear: Module, @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    /// LoRA factors, named as PEFT saves them (`<module>.lora_A.weight` [r, in], `<module>.lora_B.weight` [out, r]).
    public internal(set) var lora_A: Linear?
    public internal(set) var lora_B: Linear?
    public internal(set) var loraScaling: Double = 1
    public var loraDropout: Double = 0
    /// Switching adapters off gives the base model (DPO's reference) without a second copy of the weights.
    public var loraEnabled = true

    /// PyTorch's default initialisation: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, dtype: DType = .float32, generator: Generator? = nil) throws {
        let bound = 1 / Foundation.sqrt(Double(inFeatures))
        let w = try Tensor.empty([outFeatures, inFeatures], dtype: dtype)
        if !ParameterInitialisation.isSkipped { try w.uniformInPlace(-bound, bound, generator: generator) }
        weight = try parameter(w)
        if bias {
            let b = try Tensor.empty([outFeatures], dtype: dtype)
            if !ParameterInitialisation.isSkipped { try b.uniformInPlace(-bound, bound, generator: generator) }
            self.bias = try parameter(b)
        } else {
            self.bias = nil
        }
        super.init()
    }

    public var inFeatures: Int { weight.size(1) }
    public var outFeatures: Int { weight.size(0) }

    open func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try x.linear(weight, bias)
        guard loraEnabled, let a = lora_A, let b = lora_B else { return y }
        let dropped = try F.dropout(x, p: loraDropout, training: training)
        return try y + b(a(dropped)) * loraScaling
    }
}

/// Rows of a [count, dim] table looked up by integer ids.
public final class Embedding: Module, @unchecked Sendable {
    public let weight: Tensor
    public let paddingIndex: Int?

    /// N(0, 1) initialisation, with the padding row zeroed, as torch.nn.Embedding.
    public init(_ count: Int, _ dim: Int, paddingIndex: Int? = nil, dtype: DType = .float32, generator: Generator? = nil) throws {
        let w = try Tensor.empty([count, dim], dtype: dtype)
        if !ParameterInitialisation.isSkipped {
            try w.normalInPlace(generator: generator)
            if let p = paddingIndex { try w.select(0, p).zeroInPlace() }
        }
        weight = try parameter(w)
        self.paddingIndex = paddingIndex
        super.init()
    }

    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        try F.embedding(ids, weight: weight, paddingIndex: paddingIndex)
    }
}

/// Normalises the last dimension to zero mean and unit variance, then scales and shifts.
public final class LayerNorm: Module, @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let eps: Double

    public init(_ dim: Int, eps: Double = 1e-5, bias: Bool = true, dtype: DType = .float32) throws {
        weight = try parameter(Tensor.ones([dim], dtype: dtype))
        self.bias = bias ? try parameter(Tensor.zeros([dim], dtype: dtype)) : nil
        self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.layerNorm(x, shape: [weight.size(0)], weight: weight, bias: bias, eps: eps)
    }
}

/// Root-mean-square normalisation (LLaMA): computed in float32, scaled by `weight`.
public final class RMSNorm: Module, @unchecked Sendable {
    public let weight: Tensor
    public let eps: Double

    public init(_ dim: Int, eps: Double = 1e-6, dtype: DType = .float32) throws {
        weight = try parameter(Tensor.ones([dim], dtype: dtype))
        self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.rmsNorm(x, weight: weight, eps: eps) }
}

/// 2-D convolution over [N, C, H, W].
public final class Conv2d: Module, @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                dtype: DType = .float32, generator: Generator? = nil) throws {
        let fanIn = inChannels / groups * kernelSize.0 * kernelSize.1
        let bound = 1 / Foundation.sqrt(Double(fanIn))
        let w = try Tensor.empty([outChannels, inChannels / groups, kernelSize.0, kernelSize.1], dtype: dtype)
        if !ParameterInitialisation.isSkipped { try w.uniformInPlace(-bound, bound, generator: generator) }
        weight = try parameter(w)
        if bias {
            let b = try Tensor.empty([outChannels], dtype: dtype)
            if !ParameterInitialisation.isSkipped { try b.uniformInPlace(-bound, bound, generator: generator) }
            self.bias = try parameter(b)
        } else {
            self.bias = nil
        }
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// Zeroes elements with probability p in train mode; identity in eval mode.
public final class Dropout: Module, @unchecked Sendable {
    public let p: Double
    public init(_ p: Double) {
        self.p = p
        super.init()
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.dropout(x, p: p, training: training) }
}
