import Foundation
import Testing
@testable import Torch

@Suite struct TensorTests {
    @Test func arraysRoundTrip() throws {
        let t = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(t.shape == [2, 3] && t.dtype == .float32 && t.count == 6)
        #expect(try t.toArray(Float.self) == [1, 2, 3, 4, 5, 6])
        #expect(try Tensor([Int](arrayLiteral: 7, -8)).toArray(Int64.self) == [7, -8])
        #expect(try Tensor([true, false]).toArray(Bool.self) == [true, false])
        #expect(try Tensor([UInt8(255)]).itemInt() == 255)
        #expect(try Tensor.full([2, 2], 2.5).toArray(Float.self) == [2.5, 2.5, 2.5, 2.5])
        #expect(try Tensor.zeros([3], dtype: .int32).toArray(Int32.self) == [0, 0, 0])
        #expect(try Tensor.ones([2], dtype: .float64).toArray(Double.self) == [1, 1])
        #expect(try Tensor.scalarTensor(3).item() == 3)
        // A shape that does not match the data is an error, not a crash.
        #expect(throws: TorchError.self) { try Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
        // Reading with the wrong element type is a clear error.
        #expect(throws: TorchError.self) { try t.toArray(Double.self) }
    }

    @Test func seededGeneratorsRepeat() throws {
        let a = try Tensor.randn([4, 4], generator: Generator(seed: 9))
        let b = try Tensor.randn([4, 4], generator: Generator(seed: 9))
        let c = try Tensor.randn([4, 4], generator: Generator(seed: 10))
        #expect(try a.equal(b))
        #expect(try !a.equal(c))
        let g = try Generator(seed: 1)
        let state = try g.state()
        let first = try Tensor.rand([3], generator: g)
        try g.setState(state)
        #expect(try Tensor.rand([3], generator: g).equal(first))
        let ints = try Tensor.randint(3, 6, [1000], generator: g)
        #expect(try ints.min().itemInt() == 3 && ints.max().itemInt() == 5)
    }

    /// A libtorch error becomes a Swift error with libtorch's message (no C++ backtrace), and work goes on.
    @Test func libtorchErrorsBecomeSwiftErrors() throws {
        let a = try Tensor.ones([2, 3]), b = try Tensor.ones([4, 5])
        do {
            _ = try a.matmul(b)
            Issue.record("matmul of mismatched shapes succeeded")
        } catch let error as TorchError {
            #expect(error.message.contains("cannot be multiplied") || error.message.contains("size mismatch"), "\(error.message)")
            #expect(!error.message.contains("Exception raised from"), "backtrace leaked: \(error.message)")
            #expect(!error.message.contains("frame #"), "backtrace leaked: \(error.message)")
        }
        // Bad dtype: embedding ids must be integers.
        #expect(throws: TorchError.self) { try F.embedding(Tensor.ones([2]), weight: Tensor.ones([3, 2])) }
        #expect(throws: TorchError.self) { try a + b }
        #expect(throws: TorchError.self) { try a.reshape(7) }
        #expect(throws: TorchError.self) { try a.select(5, 0) }
        #expect(throws: TorchError.self) { try Tensor.stack([]) }
        #expect(throws: TorchError.self) { try a.to(device: .cuda(0)) }
        // The process goes on and computes correctly afterwards.
        #expect(try (a + a).sum().item() == 12)
    }

    /// 100k op calls keep resident memory flat: every handle is freed.
    @Test func noHandleLeaks() throws {
        let a = try Tensor.randn([16]), b = try Tensor.randn([16])
        func loop(_ n: Int) throws {
            for i in 0..<n {
                let c = try a + b
                let d = try c * 2.0
                _ = try d.sum()
                // Failing calls must not leak either (fewer of them: libtorch records a backtrace per error).
                if i % 100 == 0 { _ = try? a.matmul(Tensor.ones([3, 3])) }
            }
        }
        try loop(20_000)  // warm up allocator caches
        // Two measured rounds: 100k iterations x 4 tensors, so a leak of even one 64-byte tensor per call adds
        // > 25 MB to each, while a one-off growth (a thread's first malloc arena, another library's lazy start)
        // lands in one round at most.
        var growth: [Int] = []
        for _ in 0..<2 {
            let before = residentBytes()
            try loop(100_000)
            growth.append(residentBytes() - before)
        }
        #expect(growth.min()! < 4 << 20, "resident memory grew by \(growth) bytes in two rounds")
    }

    @Test func threadsDefaultToAllCoresAndCanBeSet() throws {
        if ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] == nil {
            #expect(Torch.threads == ProcessInfo.processInfo.activeProcessorCount)
        }
        let before = Torch.threads
        try Torch.setThreads(1)
        #expect(Torch.threads == 1)
        // Another thread sees the setting too (OpenMP keeps it per thread; the shim applies it).
        #expect(threadsOnANewThread() == 1)
        try Torch.setThreads(before)
        #expect(throws: TorchError.self) { try Torch.setThreads(0) }
    }

    @Test func autogradBasics() throws {
        let x = try Tensor([1, 2, 3] as [Double]).requiresGrad(true)
        #expect(x.requiresGrad && x.isLeaf)
        #expect(try x.grad == nil)
        let y = try (x * x).sum()
        try y.backward()
        #expect(try x.grad!.toArray(Double.self) == [2, 4, 6])
        // Gradients accumulate until cleared.
        try (x * 3.0).sum().backward()
        #expect(try x.grad!.toArray(Double.self) == [5, 7, 9])
        try x.zeroGrad()
        #expect(try x.grad == nil)
        // An explicit output gradient.
        try (x * 2.0).backward(Tensor([1, 0, -1] as [Double]))
        #expect(try x.grad!.toArray(Double.self) == [2, 0, -2])
        // No graph under withNoGrad; detach cuts the graph.
        let z = try withNoGrad { try x * 2.0 }
        #expect(!z.requiresGrad)
        #expect(isGradEnabled)
        #expect(try !x.detach().requiresGrad)
        // Results of ops on tensors that need no gradient (computed below the autograd layer) take part in
        // later graphs like any other tensor.
        let c = try Tensor([1, 2, 3] as [Double]) + Tensor([1, 1, 1] as [Double])
        #expect(!c.requiresGrad)
        let w = try Tensor([0.5, 0.5, 0.5] as [Double]).requiresGrad(true)
        try (c * w).sum().backward()
        #expect(try w.grad!.toArray(Double.self) == [2, 3, 4])
        // Under withNoGrad, even inputs that require grad give results without a graph.
        #expect(try !withNoGrad { try w * 2.0 + w }.requiresGrad)
        // backward on a non-scalar without a gradient is a libtorch error.
        #expect(throws: TorchError.self) { try (x * 2.0).backward() }
    }

    /// Finite differences agree with autograd on composite ops.
    @Test func gradientChecks() throws {
        let g = try Generator(seed: 11)
        try GradCheck.check([Tensor.randn([3, 4], generator: g)]) { try [$0[0].quickGelu()].first! }
        let mask = try Tensor([true, true, false, true], shape: [1, 1, 1, 4])
        try GradCheck.check([Tensor.randn([1, 2, 3, 4], generator: g), Tensor.randn([1, 2, 4, 4], generator: g), Tensor.randn([1, 2, 4, 2], generator: g)]) {
            try F.scaledDotProductAttention($0[0], $0[1], $0[2], mask: mask, manual: true)
        }
        let targets = try Tensor([2, -100, 0] as [Int64])
        try GradCheck.check([Tensor.randn([3, 4], generator: g)]) {
            try F.crossEntropy($0[0], targets, labelSmoothing: 0.1)
        }
        try GradCheck.check([Tensor.randn([2, 3, 4], generator: g), Tensor.randn([4], generator: g), Tensor.randn([4], generator: g)]) {
            try F.layerNorm($0[0], shape: [4], weight: $0[1], bias: $0[2])
        }
        try GradCheck.check([Tensor.randn([2, 6], generator: g)]) { try $0[0].logsumexp(1) - $0[0].logSigmoid().mean() }
        // The checker itself catches a wrong gradient: detach hides a term from autograd.
        #expect(throws: GradCheck.Failure.self) {
            try GradCheck.check([Tensor.randn([3], generator: g)]) { try $0[0] * $0[0].detach() }
        }
    }

    @Test func dropoutScalesAndDrops() throws {
        try Torch.manualSeed(0)
        let x = try Tensor.ones([100_000])
        let y = try F.dropout(x, p: 0.25, training: true)
        let zeros = try y.eq(0.0).to(dtype: .float64).mean().item()
        #expect(Swift.abs(zeros - 0.25) < 0.01)
        #expect(try y.max().item() == Double(Float(1 / 0.75)))
        #expect(try F.dropout(x, p: 0.25, training: false).equal(x))
    }

    @Test func inPlaceOps() throws {
        let t = try Tensor([1, 2, 3] as [Float])
        try t.addInPlace(Tensor([1, 1, 1] as [Float]), alpha: 2)
        #expect(try t.toArray(Float.self) == [3, 4, 5])
        try t.mulInPlace(2)
        try t.addcmulInPlace(Tensor([1, 1, 1] as [Float]), Tensor([1, 2, 3] as [Float]), value: 0.5)
        #expect(try t.toArray(Float.self) == [6.5, 9, 11.5])
        try t.lerpInPlace(Tensor.zeros([3]), weight: 0.5)
        try t.clampInPlace(max: 5)
        #expect(try t.toArray(Float.self) == [3.25, 4.5, 5])
        try t.fillInPlace(1)
        try t.addcdivInPlace(Tensor([2, 2, 2] as [Float]), Tensor([4, 4, 4] as [Float]))
        #expect(try t.toArray(Float.self) == [1.5, 1.5, 1.5])
        // In-place on a leaf that requires grad is refused by libtorch outside withNoGrad.
        let p = try Tensor.ones([2]).requiresGrad(true)
        #expect(throws: TorchError.self) { try p.mulInPlace(2) }
        try withNoGrad { try p.mulInPlace(2) }
        #expect(try p.detach().toArray(Float.self) == [2, 2])
    }
}
