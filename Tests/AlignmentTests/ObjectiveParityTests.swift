import Foundation
import Testing
import Torch
@testable import Alignment
@testable import Models

func alignmentFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

func tinyLlavaFolder() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ModelsTests/Fixtures/tiny-llava").path
}

func maxAbs(_ a: Tensor, _ b: Tensor) throws -> Double {
    try (a.to(dtype: .float64) - b.to(dtype: .float64)).abs().max().item()
}

/// Step 0 of each objective against transformers + peft with the objective in plain torch
/// (tools/reference/make_alignment_fixtures.py): log-probs, loss terms, LoRA gradients, one AdamW step.
@Suite(.serialized) struct ObjectiveParityTests {
    let f = try! SafeTensorsFile(path: alignmentFixture("objectives.safetensors"))

    @Test(arguments: [Objective.dpo, .rdpo, .mdpo, .sft])
    func stepZeroMatchesReference(_ objective: Objective) throws {
        let model = try ModelLoader.llava(tinyLlavaFolder())
        try model.loadAdapter(from: alignmentFixture("adapter_init"))
        try model.freeze()
        try model.unfreeze { $0.contains(".lora_") }
        model.train()
        let name = objective.rawValue
        var chosen: [SequenceLogProbs.Row] = [], rejected: [SequenceLogProbs.Row] = []
        for i in 0..<2 {
            let prompt = try f.tensor("pair\(i).prompt").toArray(Int64.self).map(Int.init)
            chosen.append(.init(prompt: prompt, completion: try f.tensor("pair\(i).chosen").toArray(Int64.self).map(Int.init)))
            rejected.append(.init(prompt: prompt, completion: try f.tensor("pair\(i).rejected").toArray(Int64.self).map(Int.init)))
        }
        let images = try withNoGrad { try model.imageFeatures(f.tensor("pixels").to(dtype: .float32)) }
        var lp = PairLogProbs(policyChosen: try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: images))
        lp.chosenLengths = try Tensor(chosen.map { $0.completion.count })
        lp.rejectedLengths = try Tensor(rejected.map { $0.completion.count })
        if objective != .sft {
            lp.policyRejected = try SequenceLogProbs.compute(model, rows: rejected, imageFeatures: images)
            try model.withLoRADisabled {
                try withNoGrad {
                    lp.referenceChosen = try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: images)
                    lp.referenceRejected = try SequenceLogProbs.compute(model, rows: rejected, imageFeatures: images)
                }
            }
            #expect(try maxAbs(lp.policyRejected!, f.tensor("\(name).logps.policy_rejected")) < 1e-4)
            #expect(try maxAbs(lp.referenceChosen!, f.tensor("\(name).logps.reference_chosen")) < 1e-4)
            #expect(try maxAbs(lp.referenceRejected!, f.tensor("\(name).logps.reference_rejected")) < 1e-4)
        }
        if objective == .rdpo || objective == .mdpo {
            let pixels = try f.tensor(objective == .rdpo ? "retrieved_pixels" : "corrupted_pixels").to(dtype: .float32)
            let other = try withNoGrad { try model.imageFeatures(pixels) }
            lp.policyChosenOtherImage = try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: other)
            try model.withLoRADisabled {
                lp.referenceChosenOtherImage = try withNoGrad { try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: other) }
            }
            #expect(try maxAbs(lp.policyChosenOtherImage!, f.tensor("\(name).logps.policy_other")) < 1e-4)
            #expect(try maxAbs(lp.referenceChosenOtherImage!, f.tensor("\(name).logps.reference_other")) < 1e-4)
        }
        #expect(try maxAbs(lp.policyChosen, f.tensor("\(name).logps.policy_chosen")) < 1e-4)

        let out = try Objectives.loss(objective, lp, beta: 0.1)
        for (term, value) in out.terms {
            let diff = try maxAbs(value, f.tensor("\(name).term.\(term)"))
            #expect(diff < 1e-5, "\(name) term \(term) differs by \(diff)")
        }
        #expect(Set(out.terms.map(\.0)) == Set(f.names.filter { $0.hasPrefix("\(name).term.") }.map { String($0.dropFirst("\(name).term.".count)) }))

        try out.loss.backward()
        let params = Dictionary(uniqueKeysWithValues: model.trainableParameters())
        let gradKeys = f.names.filter { $0.hasPrefix("\(name).grad.") }
        #expect(gradKeys.count == params.count && params.count == 2 * 7 * 2)
        var worstGradient = 0.0
        for key in gradKeys {
            let peftName = String(key.dropFirst("\(name).grad.".count))
            let ours = model.sanitize(String(peftName.dropFirst("base_model.model.".count)))!
            let want = try f.tensor(key)
            let got = try params[ours]!.grad!
            let relative = try (got - want).norm().item() / max(try want.norm().item(), 1e-12)
            worstGradient = max(worstGradient, relative)
        }
        #expect(worstGradient < 1e-5, "\(name): LoRA gradients differ by \(worstGradient) relative")

        // One AdamW step. Entries whose gradient is tiny move by about lr whichever their sign, so they are
        // compared loosely (a sign flip there is float noise, not a different update).
        let optimizer = AdamW(Array(params.values), lr: 1e-3, weightDecay: 0)
        try optimizer.step()
        var worst = 0.0
        for key in gradKeys {
            let peftName = String(key.dropFirst("\(name).grad.".count))
            let ours = model.sanitize(String(peftName.dropFirst("base_model.model.".count)))!
            let want = try f.tensor("\(name).after.\(peftName)")
            let grad = try f.tensor(key)
            let significant = try grad.abs().gt(1e-6 * max(try grad.abs().max().item(), 1e-30))
            let diff = try (params[ours]!.detach() - want).abs()
            worst = max(worst, try diff.maskedSelect(significant).max().item())
            #expect(try diff.max().item() <= 2.1e-3, "\(ours): an update of the wrong size")
        }
        #expect(worst < 1e-5, "\(name): adapter after one AdamW step differs by \(worst)")
        let policyDiff = try maxAbs(lp.policyChosen, f.tensor("\(name).logps.policy_chosen"))
        print("parity \(name): policy logps \(policyDiff), LoRA gradients \(worstGradient) relative, after AdamW \(worst)")
    }
}
