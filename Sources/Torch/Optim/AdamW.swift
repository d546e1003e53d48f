import Foundation

/// AdamW with decoupled weight decay, as torch.optim.AdamW computes it (single-tensor path, amsgrad off).
public final class AdamW: @unchecked Sendable {
    /// Parameters sharing one learning rate and weight decay.
    public struct Group {
        public var name: String
        public var parameters: [Tensor]
        public var lr: Double
        public var weightDecay: Double
        public init(name: String = "default", parameters: [Tensor], lr: Double, weightDecay: Double = 0.01) {
            self.name = name
            self.parameters = parameters
            self.lr = lr
            self.weightDecay = weightDecay
        }
    }

    /// Per-parameter moments and step count.
    public final class State {
        public var step: Int = 0
        public let expAvg: Tensor
        public let expAvgSq: Tensor
        init(like p: Tensor) throws {
            expAvg = try Tensor.zeros(like: p)
            expAvgSq = try Tensor.zeros(like: p)
        }
    }

    public var groups: [Group]
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    private var states: [ObjectIdentifier: State] = [:]

    public init(groups: [Group], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }

    public convenience init(_ parameters: [Tensor], lr: Double = 1e-3, weightDecay: Double = 0.01,
                            beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.init(groups: [Group(parameters: parameters, lr: lr, weightDecay: weightDecay)], beta1: beta1, beta2: beta2, eps: eps)
    }

    public func state(of p: Tensor) -> State? { states[ObjectIdentifier(p)] }

    /// One update of every parameter that has a gradient.
    public func step() throws {
        try withNoGrad {
            for group in groups {
                for p in group.parameters {
                    guard let grad = try p.grad else { continue }
                    let key = ObjectIdentifier(p)
                    let s: State
                    if let existing = states[key] {
                        s = existing
                    } else {
                        s = try State(like: p)
                        states[key] = s
                    }
                    s.step += 1
                    // Decoupled weight decay, then the moment updates, in torch's order and precision
                    // (scalars are Python floats there: doubles here).
                    if group.weightDecay != 0 { try p.mulInPlace(1 - group.lr * group.weightDecay) }
                    try s.expAvg.lerpInPlace(grad, weight: 1 - beta1)
                    try s.expAvgSq.mulInPlace(beta2)
                    try s.expAvgSq.addcmulInPlace(grad, grad, value: 1 - beta2)
                    let step = Double(s.step)
                    let biasCorrection1 = 1 - Foundation.pow(beta1, step)
                    let biasCorrection2 = 1 - Foundation.pow(beta2, step)
                    let stepSize = group.lr / biasCorrection1
                    let denom = try s.expAvgSq.sqrt() / Foundation.sqrt(biasCorrection2)
                    try denom.addInPlace(eps)
                    try p.addcdivInPlace(s.expAvg, denom, value: -stepSize)
                }
            }
        }
    }

    /// Clears the gradients of every parameter (set to none).
    public func zeroGrad() throws {
        for g in groups { for p in g.parameters { try p.zeroGrad() } }
    }

    /// The optimizer's state as named tensors plus step counts, for checkpoints. Parameters are named by
    /// their position (`group.index`), which is stable as long as groups are built the same way.
    public func stateTensors() throws -> (tensors: [String: Tensor], steps: [String: Int]) {
        var tensors: [String: Tensor] = [:]
        var steps: [String: Int] = [:]
        for (gi, g) in groups.enumerated() {
            for (pi, p) in g.parameters.enumerated() {
                guard let s = states[ObjectIdentifier(p)] else { continue }
                let key = "\(gi).\(pi)"
                tensors["\(key).exp_avg"] = s.expAvg
                tensors["\(key).exp_avg_sq"] = s.expAvgSq
                steps[key] = s.step
            }
        }
        return (tensors, steps)
    }

    /// Restores what `stateTensors` saved.
    public func loadState(tensors: [String: Tensor], steps: [String: Int]) throws {
        states = [:]
        for (gi, g) in groups.enumerated() {
            for (pi, p) in g.parameters.enumerated() {
                let key = "\(gi).\(pi)"
                guard let step = steps[key] else { continue }
                guard let m = tensors["\(key).exp_avg"], let v = tensors["\(key).exp_avg_sq"] else {
                    throw TorchError("optimizer state for parameter \(key) is incomplete")
                }
                guard m.shape == p.shape, v.shape == p.shape else {
                    throw TorchError("optimizer state for parameter \(key) has shape \(m.shape), parameter has \(p.shape)")
                }
                let s = try State(like: p)
                try withNoGrad {
                    try s.expAvg.copyFrom(m)
                    try s.expAvgSq.copyFrom(v)
                }
                s.step = step
                states[ObjectIdentifier(p)] = s
            }
        }
    }
}

/// Scales gradients so that their global 2-norm is at most `maxNorm`, as torch.nn.utils.clip_grad_norm_ does.
/// Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double) throws -> Double {
    try clipGradNormTensor(parameters, maxNorm: maxNorm).item()
}

/// `clipGradNorm` without reading the norm back: a scalar tensor on the gradients' device (no host sync).
public func clipGradNormTensor(_ parameters: [Tensor], maxNorm: Double) throws -> Tensor {
    try withNoGrad {
        let grads = try parameters.compactMap { try $0.grad }
        if grads.isEmpty { return try Tensor.zeros([]) }
        let norms = try grads.map { try $0.norm(2) }
        let total = try Tensor.stack(norms).norm(2)
        let coefficient = try (maxNorm / (total + 1e-6)).clamp(max: 1.0)
        for g in grads { try g.mulInPlace(coefficient.to(dtype: g.dtype)) }
        return total
    }
}
