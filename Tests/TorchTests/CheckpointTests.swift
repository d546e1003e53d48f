import Foundation
import Testing
@testable import Torch

/// Gradient checkpointing: a region's backward runs it again and differentiates that run.
@Suite(.serialized) struct CheckpointTests {
    // y = dropout(tanh(x W1ᵀ)) W2ᵀ, with x frozen (no gradient, as a frozen embedding under LoRA) or not.
    func region(_ w1: Tensor, _ w2: Tensor) -> ([Tensor]) throws -> [Tensor] {
        { xs in
            let h = try F.dropout(xs[0].linear(w1).tanh(), p: 0.3, training: true)
            return [try h.linear(w2), h]
        }
    }

    func parameters() throws -> (Tensor, Tensor) {
        let g = try Generator(seed: 3)
        return (try Tensor.randn([6, 4], generator: g).requiresGrad(true), try Tensor.randn([3, 6], generator: g).requiresGrad(true))
    }

    @Test(arguments: [false, true]) func sameValuesAndGradientsAsWithout(_ inputNeedsGrad: Bool) throws {
        func run(checkpointed: Bool) throws -> (loss: Double, grads: [Tensor], runs: Int) {
            let (w1, w2) = try parameters()
            let x = try Tensor.randn([5, 4], generator: Generator(seed: 4))
            if inputNeedsGrad { try x.requiresGrad(true) }
            try Torch.manualSeed(11)
            let before = checkpointRegionRuns.load(ordering: .relaxed)
            let body = region(w1, w2)
            let ys = checkpointed ? try checkpoint([x], parameters: [w1, w2], body) : try body([x])
            // Both outputs reach the loss; a draw after the region must not change what backward replays.
            let loss = try (ys[0] * ys[0]).sum() + ys[1].sum() * 0.5
            _ = try Tensor.rand([100])
            try loss.backward()
            var grads = [try w1.grad!, try w2.grad!]
            if inputNeedsGrad { grads.append(try x.grad!) }
            return (try loss.item(), grads, checkpointRegionRuns.load(ordering: .relaxed) - before)
        }
        let plain = try run(checkpointed: false), kept = try run(checkpointed: true)
        #expect(plain.runs == 0 && kept.runs == 2, "the region runs once forward and once in backward")
        #expect(kept.loss == plain.loss)
        for (a, b) in zip(kept.grads, plain.grads) {
            let relative = try (a - b).abs().max().item() / max(try b.abs().max().item(), 1e-30)
            #expect(relative <= 1e-6, "gradients differ by \(relative) relative")
        }
        #expect(kept.grads.count == (inputNeedsGrad ? 3 : 2))
    }

    @Test func withoutGradientsTheRegionRunsOnce() throws {
        let (w1, w2) = try parameters()
        let x = try Tensor.randn([5, 4])
        let before = checkpointRegionRuns.load(ordering: .relaxed)
        let ys = try withNoGrad { try checkpoint([x], parameters: [w1, w2], region(w1, w2)) }
        #expect(checkpointRegionRuns.load(ordering: .relaxed) - before == 1)
        #expect(!ys[0].requiresGrad && ys[0].shape == [5, 3])
    }

    /// A region that fails when backward runs it again: backward's error names it, nothing crashes.
    @Test func aFailureInTheRecomputationIsBackwardsError() throws {
        let (w1, w2) = try parameters()
        let x = try Tensor.randn([5, 4])
        var calls = 0
        let body = region(w1, w2)
        let ys = try checkpoint([x], parameters: [w1, w2]) { xs in
            calls += 1
            if calls == 2 { throw TorchError("the region cannot run again") }
            return try body(xs)
        }
        #expect {
            try ys[0].sum().backward()
        } throws: { error in
            "\(error)".contains("the region cannot run again")
        }
    }
}
