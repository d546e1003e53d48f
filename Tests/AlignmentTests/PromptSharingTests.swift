import Foundation
import Testing
import Torch
@testable import Alignment
@testable import Models

/// Scoring completions on a shared prompt equals scoring full sequences, in value and in LoRA gradients.
@Suite(.serialized) struct PromptSharingTests {
    @Test func sharedPromptEqualsSeparateSequences() throws {
        let f = try SafeTensorsFile(path: alignmentFixture("objectives.safetensors"))
        let model = try ModelLoader.llava(tinyLlavaFolder())
        try model.loadAdapter(from: alignmentFixture("adapter_init"))
        try model.freeze()
        try model.unfreeze { $0.contains(".lora_") }
        var prompts: [[Int]] = [], chosen: [[Int]] = [], rejected: [[Int]] = []
        for i in 0..<2 {
            // Different prompt lengths, so left padding is exercised.
            var prompt = try f.tensor("pair\(i).prompt").toArray(Int64.self).map(Int.init)
            if i == 1 { prompt += [304, 592, 284] }
            prompts.append(prompt)
            chosen.append(try f.tensor("pair\(i).chosen").toArray(Int64.self).map(Int.init))
            rejected.append(try f.tensor("pair\(i).rejected").toArray(Int64.self).map(Int.init))
        }
        let images = try withNoGrad { try model.imageFeatures(f.tensor("pixels").to(dtype: .float32)) }
        let params = model.trainableParameters()

        let separate = try SequenceLogProbs.compute(model, rows: zip(prompts, chosen).map { .init(prompt: $0, completion: $1) } + zip(prompts, rejected).map { .init(prompt: $0, completion: $1) },
                                                    imageFeatures: Tensor.cat([images, images], dim: 0))
        try (separate * Tensor([1.0, -0.5, 0.25, 2.0] as [Float])).sum().backward()
        let gradsSeparate = try params.map { try $0.1.grad!.clone() }
        for (_, p) in params { try p.zeroGrad() }

        let shared = try model.completionLogProbs(prompts: prompts, completions: [chosen, rejected], imageFeatures: images)
        let joined = try Tensor.cat(shared, dim: 0)
        let diff = try (joined - separate.detach()).abs().max().item()
        #expect(diff < 1e-4, "log-probs differ by \(diff)")
        try (joined * Tensor([1.0, -0.5, 0.25, 2.0] as [Float])).sum().backward()
        var worst = 0.0
        for ((_, p), g) in zip(params, gradsSeparate) {
            worst = max(worst, try (p.grad! - g).norm().item() / max(try g.norm().item(), 1e-12))
        }
        #expect(worst < 1e-4, "LoRA gradients differ by \(worst) relative")
        print("prompt sharing: log-probs \(diff), gradients \(worst) relative")
    }
}
