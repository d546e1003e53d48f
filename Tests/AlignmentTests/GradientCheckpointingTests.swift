import Foundation
import TestSupport
import Testing
import Torch
@testable import Alignment
@testable import Models

/// Gradient checkpointing recomputes each decoder layer in backward: the loss, the LoRA gradients and the trained
/// adapter are those of a run that keeps the activations, on LLaVA and Qwen2-VL, with LoRA dropout drawing masks
/// (replayed in the recomputation).
@Suite(.serialized) struct GradientCheckpointingTests {
    /// One rdpo + sft loss on two pairs (full sequences for the policy's chosen side, a shared prompt for the rest),
    /// its LoRA gradients, and how many layer runs the checkpoints made.
    func lossAndGradients(_ kind: String, checkpointed: Bool) throws -> (loss: Double, grads: [String: Tensor], runs: Int, layers: Int) {
        let model: any VLMModel
        let images: Tensor, otherImages: Tensor
        var grids: [[Int]]? = nil, otherGrids: [[Int]]? = nil
        var prompts: [[Int]] = [], otherPrompts: [[Int]] = []
        var chosen: [[Int]] = [], rejected: [[Int]] = []
        let f = try SafeTensorsFile(path: alignmentFixture(kind == "llava" ? "objectives.safetensors" : "objectives_\(kind).safetensors"))
        if kind == "llava" {
            let llava = try ModelLoader.llava(tinyLlavaFolder())
            model = llava
            images = try withNoGrad { try llava.imageFeatures(clipInputs(f.tensor("pixels").to(dtype: .float32), llava)) }
            otherImages = try withNoGrad { try llava.imageFeatures(clipInputs(f.tensor("retrieved_pixels").to(dtype: .float32), llava)) }
        } else {
            let folder = modelsFixture("qwen_vl/\(kind)")
            model = try VLMRegistry.load(folder)
            let e = try SafeTensorsFile(path: "\(folder)/expected.safetensors")
            let inputs = { (which: [Int]) in try ImageInputs(patchRows: e.tensor("pixel_values"), imageGridTHW: e.tensor("image_grid_thw"), images: which) }
            (grids, otherGrids) = (try inputs([0, 1]).grids, try inputs([2, 0]).grids)
            images = try withNoGrad { try model.imageFeatures(inputs([0, 1])) }
            otherImages = try withNoGrad { try model.imageFeatures(inputs([2, 0])) }
        }
        for i in 0..<2 {
            let ids = { (key: String) in try f.tensor(key).toArray(Int64.self).map(Int.init) }
            prompts.append(try ids("pair\(i).prompt"))
            otherPrompts.append(f.names.contains("pair\(i).prompt_other") ? try ids("pair\(i).prompt_other") : prompts[i])
            chosen.append(try ids("pair\(i).chosen"))
            rejected.append(try ids("pair\(i).rejected"))
        }
        try model.applyLoRA(LoRAConfig(r: 4, alpha: 8, dropout: 0.2), targets: .allLinear, generator: Generator(seed: 5))
        // B starts at zero: give it values, so that the adapters change the forward and get gradients through A too.
        for (name, p) in model.trainableParameters() where name.contains("lora_B") {
            try withNoGrad { try p.copyFrom(Tensor.randn(p.shape, generator: Generator(seed: 6)) * 0.05) }
        }
        model.train()
        #expect(model.setGradientCheckpointing(checkpointed) == 1)
        try Torch.manualSeed(21)
        let before = checkpointRegionRuns.load(ordering: .relaxed)
        let policyChosen = try SequenceLogProbs.compute(model, rows: zip(prompts, chosen).map { .init(prompt: $0, completion: $1) },
                                                        imageFeatures: images, imageGrids: grids)
        let shared = try model.completionLogProbs(prompts: prompts, completions: [rejected], imageFeatures: images, imageGrids: grids)
        let other = try model.completionLogProbs(prompts: otherPrompts, completions: [chosen], imageFeatures: otherImages, imageGrids: otherGrids)
        let (referenceChosen, referenceRejected, referenceOther) = try model.withLoRADisabled {
            try withNoGrad {
                (try SequenceLogProbs.compute(model, rows: zip(prompts, chosen).map { .init(prompt: $0, completion: $1) }, imageFeatures: images, imageGrids: grids),
                 try model.completionLogProbs(prompts: prompts, completions: [rejected], imageFeatures: images, imageGrids: grids)[0],
                 try model.completionLogProbs(prompts: otherPrompts, completions: [chosen], imageFeatures: otherImages, imageGrids: otherGrids)[0])
            }
        }
        var lp = PairLogProbs(policyChosen: policyChosen)
        lp.policyRejected = shared[0]
        lp.policyChosenOtherImage = other[0]
        lp.referenceChosen = referenceChosen
        lp.referenceRejected = referenceRejected
        lp.referenceChosenOtherImage = referenceOther
        lp.chosenLengths = try Tensor(chosen.map(\.count))
        lp.rejectedLengths = try Tensor(rejected.map(\.count))
        let loss = try Objectives.loss(.rdpo, lp, beta: 0.1).loss + Objectives.loss(.sft, lp, beta: 0.1).loss * 0.1
        try loss.backward()
        let grads = Dictionary(uniqueKeysWithValues: try model.trainableParameters().map { ($0.0, try $0.1.grad!) })
        let layers = model.namedModules().filter { $0.1 is LlamaDecoderLayer }.count
        return (try loss.item(), grads, checkpointRegionRuns.load(ordering: .relaxed) - before, layers)
    }

    @Test(arguments: ["llava", "qwen2_vl"]) func sameLossAndGradients(_ kind: String) throws {
        let plain = try lossAndGradients(kind, checkpointed: false)
        let kept = try lossAndGradients(kind, checkpointed: true)
        // Three policy passes (the full sequences; prompt then completions twice), each layer once forward and once
        // again in backward; none under no_grad (the reference passes).
        #expect(plain.runs == 0)
        #expect(kept.runs == 2 * plain.layers * 5, "\(kept.runs) layer runs")
        #expect(kept.loss == plain.loss, "loss \(kept.loss) vs \(plain.loss)")
        var worst = 0.0
        for (name, g) in plain.grads {
            let relative = try (kept.grads[name]! - g).abs().max().item() / max(try g.abs().max().item(), 1e-30)
            worst = max(worst, relative)
        }
        #expect(plain.grads.count == kept.grads.count && !plain.grads.isEmpty)
        #expect(worst <= 1e-6, "\(kind): LoRA gradients differ by \(worst) relative")
        print("\(kind) gradient checkpointing: loss \(kept.loss) (\(kept.runs) layer runs), gradients within \(worst) relative")
    }

    /// Two optimizer steps of rdpo + 0.1 sft (sft keeps LoRA dropout on) give the same adapter with and without.
    @Test(arguments: ["llava", "qwen2_vl"]) func sameAdapter(_ kind: String) throws {
        func train(checkpointed: Bool) throws -> [String: Tensor] {
            var o = smallOptions(.rdpo)
            o.objectives = [(.rdpo, 1), (.sft, 0.1)]
            o.steps = 2
            o.gradientCheckpointing = checkpointed
            let out = temporaryFolder()
            let folder = kind == "llava" ? tinyLlavaFolder() : modelsFixture("qwen_vl/\(kind)")
            try PreferenceTrainer(modelFolder: folder, data: prefsFile(), out: out, options: o).run(resume: false)
            return try adapterTensors(out + "/adapter")
        }
        let plain = try train(checkpointed: false), kept = try train(checkpointed: true)
        var worst = 0.0
        for (name, t) in plain { worst = max(worst, try (kept[name]! - t).abs().max().item()) }
        #expect(!plain.isEmpty && plain.count == kept.count)
        #expect(worst <= 1e-6, "\(kind): adapters differ by \(worst)")
    }

    /// Full fine-tuning (what `world pretrain` runs): every decoder weight is one of the checkpointed regions'
    /// parameters; two steps give the same model.
    @Test func sameModelWhenFullyFineTuned() throws {
        func train(checkpointed: Bool) throws -> [String: Tensor] {
            var o = smallOptions(.sft)
            o.full = true
            o.steps = 2
            o.learningRate = 1e-4
            o.gradientCheckpointing = checkpointed
            let out = temporaryFolder()
            try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o).run(resume: false)
            return try ModelLoader.llava(out + "/model").stateDict()
        }
        let plain = try train(checkpointed: false), kept = try train(checkpointed: true)
        let base = try ModelLoader.llava(tinyLlavaFolder()).stateDict()
        var worst = 0.0, moved = 0.0
        for (name, t) in plain {
            worst = max(worst, try (kept[name]! - t).abs().max().item())
            moved = max(moved, try (t - base[name]!).abs().max().item())
        }
        #expect(moved > 1e-5, "training changed nothing")
        #expect(worst <= 1e-6, "full fine-tuning: models differ by \(worst)")
    }
}
