import Foundation
import Testing
@testable import Torch

@Suite struct OptimTests {
    let fixture = try! SafeTensorsFile(path: fixturePath("adamw.safetensors"))

    /// 20 steps of AdamW (two parameter groups, decoupled weight decay), cosine schedule with warmup and
    /// gradient clipping, against torch.optim.AdamW + transformers' scheduler.
    @Test func adamWCosineWarmupMatchesTorch() throws {
        let f = fixture
        let x = try f.tensor("X"), y = try f.tensor("Y")
        let w = try f.tensor("W.init").requiresGrad(true)
        let b = try f.tensor("b.init").requiresGrad(true)
        let w2 = try f.tensor("W2.init").requiresGrad(true)
        let steps = Int(f.metadata["steps"]!)!
        let schedule = LRSchedule(.cosine, warmupRatio: 0.1, totalSteps: steps)
        #expect(schedule.warmupSteps == Int(f.metadata["warmup"]!)!)
        let optimizer = AdamW(groups: [
            .init(name: "a", parameters: [w, b], lr: 1e-2, weightDecay: 0.1),
            .init(name: "b", parameters: [w2], lr: 5e-3, weightDecay: 0),
        ])
        let baseLRs = [1e-2, 5e-3]
        let lrs = try f.tensor("lrs").toArray(Double.self)
        let norms = try f.tensor("grad_norms").toArray(Double.self)
        let losses = try f.tensor("losses").toArray(Double.self)
        for step in 0..<steps {
            schedule.apply(to: optimizer, baseLRs: baseLRs, step: step)
            #expect(Swift.abs(optimizer.groups[0].lr - lrs[2 * step]) < 1e-15)
            #expect(Swift.abs(optimizer.groups[1].lr - lrs[2 * step + 1]) < 1e-15)
            let prediction = try (x.matmul(w.transpose(0, 1)) + b).tanh().matmul(w2.transpose(0, 1))
            let loss = try (prediction - y).square().mean()
            try loss.backward()
            let norm = try clipGradNorm([w, b, w2], maxNorm: 1.0)
            #expect(Swift.abs(norm - norms[step]) < 1e-5 * norms[step])
            #expect(Swift.abs(try loss.item() - losses[step]) <= 2e-6 * losses[step])
            try optimizer.step()
            try optimizer.zeroGrad()
            for (name, p) in [("W", w), ("b", b), ("W2", w2)] {
                let e = try excess(p, f.tensor("\(name).step\(step + 1)"), rtol: 0)
                #expect(e <= 1e-6, "\(name) after step \(step + 1): max difference \(e)")
            }
        }
    }

    @Test(arguments: LRSchedule.Kind.allCases)
    func schedulesMatchTransformers(_ kind: LRSchedule.Kind) throws {
        let want = try fixture.tensor("schedule.\(kind.rawValue)").toArray(Double.self)
        let schedule = LRSchedule(kind, warmupSteps: 3, totalSteps: 17)
        for (step, value) in want.enumerated() {
            #expect(Swift.abs(schedule.multiplier(at: step) - value) < 1e-12, "\(kind) step \(step)")
        }
    }

    /// Optimizer state saved and restored continues exactly like an uninterrupted run.
    @Test func optimizerStateRoundTrip() throws {
        func run(split: Bool) throws -> [Float] {
            try Torch.manualSeed(5)
            let p = try Tensor.randn([4, 3]).requiresGrad(true)
            var optimizer = AdamW([p], lr: 0.1, weightDecay: 0.05)
            for step in 0..<6 {
                if split && step == 3 {
                    let (tensors, steps) = try optimizer.stateTensors()
                    let copies = try tensors.mapValues { try $0.clone() }
                    optimizer = AdamW([p], lr: 0.1, weightDecay: 0.05)
                    try optimizer.loadState(tensors: copies, steps: steps)
                }
                try (p.square().sum() + p.sum()).backward()
                try optimizer.step()
                try optimizer.zeroGrad()
            }
            return try p.detach().flatten().toArray(Float.self)
        }
        #expect(try run(split: false) == run(split: true))
    }
}
