import CTorch
import Synchronization

/// Autograd: gradients recorded by libtorch's own engine.
extension Tensor {
    public var requiresGrad: Bool { ct_requires_grad(handle) }
    public var isLeaf: Bool { ct_is_leaf(handle) }

    /// Marks a leaf tensor as a parameter whose gradient is accumulated by `backward`.
    @discardableResult
    public func requiresGrad(_ on: Bool) throws -> Tensor {
        try check(ct_set_requires_grad(handle, on))
        return self
    }

    /// Backpropagates from this tensor (a scalar, or with an explicit `gradient` of the same shape).
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try check(ct_backward(handle, gradient?.handle, retainGraph))
    }

    /// The accumulated gradient, nil when none was computed yet.
    public var grad: Tensor? {
        get throws {
            var out: ct_tensor? = nil
            try check(ct_grad(handle, &out))
            return out.map { Tensor(handle: $0) }
        }
    }
    public func setGrad(_ g: Tensor?) throws { try check(ct_set_grad(handle, g?.handle)) }
    /// Drops the gradient (as `zero_grad(set_to_none=True)`).
    public func zeroGrad() throws { try check(ct_zero_grad(handle)) }
    /// A tensor sharing data with this one, cut from the graph.
    public func detach() throws -> Tensor { try result { ct_detach(handle, $0) } }
}

/// Runs `body` with gradient recording off on this thread (torch.no_grad), restoring the previous mode.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = ct_is_grad_enabled()
    ct_set_grad_enabled(false)
    defer { ct_set_grad_enabled(previous) }
    return try body()
}

/// Runs `body` with gradient recording on (torch.enable_grad).
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = ct_is_grad_enabled()
    ct_set_grad_enabled(true)
    defer { ct_set_grad_enabled(previous) }
    return try body()
}

public var isGradEnabled: Bool { ct_is_grad_enabled() }

/// Finite-difference check of a function's gradient, for tests of composite ops.
public enum GradCheck {
    public struct Failure: Error, CustomStringConvertible {
        public let input: Int, element: Int, analytic: Double, numeric: Double
        public var description: String {
            "gradient mismatch at input \(input), element \(element): analytic \(analytic), numeric \(numeric)"
        }
    }

    /// Compares d(sum(f(inputs) * w))/d(input) from autograd with central differences, in float64.
    /// `inputs` are converted to float64 leaf tensors; `w` is a fixed random weighting of the output.
    /// Returns the largest absolute difference; throws `Failure` when it exceeds atol + rtol * |numeric|.
    @discardableResult
    public static func check(_ inputs: [Tensor], eps: Double = 1e-6, atol: Double = 1e-5, rtol: Double = 1e-3,
                             seed: UInt64 = 0, _ f: ([Tensor]) throws -> Tensor) throws -> Double {
        let xs = try inputs.map { try $0.to(dtype: .float64).detach().clone().requiresGrad(true) }
        let probe = try f(xs)
        let w = try Tensor.randn(probe.shape, generator: Generator(seed: seed), dtype: .float64)
        try (probe * w).sum().backward()
        var worst = 0.0
        for (i, x) in xs.enumerated() {
            let analytic = try (x.grad ?? Tensor.zeros(like: x)).flatten().toArray(Double.self)
            var values = try x.detach().flatten().toArray(Double.self)
            for j in 0..<values.count {
                let original = values[j]
                func evaluate(_ v: Double) throws -> Double {
                    values[j] = v
                    let perturbed = try Tensor(values, shape: x.shape)
                    var args = try xs.map { try $0.detach() }
                    args[i] = perturbed
                    return try withNoGrad { try (f(args) * w).sum().item() }
                }
                let numeric = (try evaluate(original + eps) - evaluate(original - eps)) / (2 * eps)
                values[j] = original
                let diff = Swift.abs(numeric - analytic[j])
                worst = Swift.max(worst, diff)
                if diff > atol + rtol * Swift.abs(numeric) {
                    throw Failure(input: i, element: j, analytic: analytic[j], numeric: numeric)
                }
            }
        }
        return worst
    }
}

/// Gradient checkpointing (torch.utils.checkpoint): `body(inputs)` keeps none of its activations for backward, which
/// runs it again on the same inputs (the random-number state of the first run replayed, so dropout draws the same
/// masks) and differentiates that run. `parameters`: the trainable tensors `body` reads besides `inputs`; their
/// gradients reach them through the checkpoint. `body` must compute the same thing when run again, on any thread.
/// Without gradients to record, `body` just runs once.
public func checkpoint(_ inputs: [Tensor], parameters: [Tensor], _ body: @escaping ([Tensor]) throws -> [Tensor]) throws -> [Tensor] {
    let context = Unmanaged.passRetained(CheckpointRegion(body)).toOpaque()
    let capacity = 64
    var outputs = [ct_tensor?](repeating: nil, count: capacity)
    var count: Int32 = 0
    let status = inputs.map { Optional($0.handle) }.withUnsafeBufferPointer { xs in
        parameters.map { Optional($0.handle) }.withUnsafeBufferPointer { ps in
            ct_checkpoint(checkpointRegionCallback, context, { Unmanaged<CheckpointRegion>.fromOpaque($0!).release() },
                          xs.baseAddress, Int32(xs.count), ps.baseAddress, Int32(ps.count), &outputs, Int32(capacity), &count)
        }
    }
    try check(status)
    return (0..<Int(count)).map { Tensor(handle: outputs[$0]!) }
}

/// How many times checkpointed regions have run, first runs and recomputations together (tests read it).
public let checkpointRegionRuns = Atomic<Int>(0)

private final class CheckpointRegion {
    let body: ([Tensor]) throws -> [Tensor]
    init(_ body: @escaping ([Tensor]) throws -> [Tensor]) { self.body = body }
}

private let checkpointRegionCallback: ct_region_fn = { context, inputs, n, outputs, capacity, count in
    let region = Unmanaged<CheckpointRegion>.fromOpaque(context!).takeUnretainedValue()
    checkpointRegionRuns.add(1, ordering: .relaxed)
    do {
        let xs = try (0..<Int(n)).map { i in try result { ct_shallow_clone(inputs![i], $0) } }
        let ys = try region.body(xs)
        guard ys.count <= Int(capacity) else { throw TorchError("a checkpointed region returned \(ys.count) outputs (at most \(capacity))") }
        for (i, y) in ys.enumerated() { try check(ct_shallow_clone(y.handle, &outputs![i])) }
        count!.pointee = Int32(ys.count)
        return 0
    } catch {
        ct_set_error("\(error)")
        return 1
    }
}
