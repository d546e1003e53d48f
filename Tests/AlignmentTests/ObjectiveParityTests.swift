import Foundation
import Images
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

func modelsFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ModelsTests/Fixtures/\(name)").path
}

/// Pixels prepared by the CLIP processor, as LLaVA-1.5 images (a fixed image-token count each).
func clipInputs(_ pixels: Tensor, _ model: LlavaForConditionalGeneration) -> ImageInputs {
    ImageInputs(pixels: pixels, tokenCounts: Array(repeating: model.config.imageFeatureCount, count: pixels.size(0)))
}

func maxAbs(_ a: Tensor, _ b: Tensor) throws -> Double {
    try (a.to(dtype: .float64) - b.to(dtype: .float64)).abs().max().item()
}

/// Step 0 of each objective against transformers + peft with the objective in plain torch
/// (tools/reference/make_alignment_fixtures.py): log-probs, loss terms, LoRA gradients, one AdamW step.
@Suite(.serialized) struct ObjectiveParityTests {
    @Test(arguments: [Objective.dpo, .rdpo, .mdpo, .sft])
    func stepZeroMatchesReference(_ objective: Objective) throws {
        let f = try SafeTensorsFile(path: alignmentFixture("objectives.safetensors"))
        let model = try ModelLoader.llava(tinyLlavaFolder())
        let pixels = { (key: String) in clipInputs(try f.tensor(key).to(dtype: .float32), model) }
        let other = objective == .mdpo ? "corrupted_pixels" : "retrieved_pixels"
        try checkStepZero(objective, model: model, fixture: f, adapter: alignmentFixture("adapter_init"),
                          images: pixels("pixels"), otherImages: pixels(other))
    }

    /// LLaVA-NeXT (tools/reference/make_llava_next_adapter_fixtures.py): images of different tile grids, and
    /// retrieved images whose token counts differ from the originals' (the prompt is expanded per image).
    @Test(arguments: [Objective.dpo, .rdpo])
    func stepZeroMatchesReferenceOnLlavaNext(_ objective: Objective) throws {
        let f = try SafeTensorsFile(path: alignmentFixture("objectives_next.safetensors"))
        let folder = modelsFixture("tiny-llava-next-mistral")
        let model = try VLMRegistry.load(folder)
        let processor = try VLMRegistry.processor(folder: folder)
        let images = { (files: [String]) in
            try processor.preprocess(files.map { try RGBImage(contentsOfFile: modelsFixture("llava-next-images/\($0)")) })
        }
        try checkStepZero(objective, model: model, fixture: f, adapter: alignmentFixture("adapter_init_next"),
                          images: images(["image0_70x20.png", "image1_30x90.png"]),
                          otherImages: images(["image2_50x50.png", "image5_100x37.png"]))
    }

    /// Qwen2-VL / Qwen2.5-VL (tools/reference/make_qwen_vl_adapter_fixtures.py): M-RoPE over each prompt's image,
    /// the other image of another size and token count.
    @Test(arguments: [(Objective.dpo, "qwen2_vl"), (.rdpo, "qwen2_vl"), (.dpo, "qwen2_5_vl"), (.rdpo, "qwen2_5_vl")])
    func stepZeroMatchesReferenceOnQwen(_ objective: Objective, _ kind: String) throws {
        let f = try SafeTensorsFile(path: alignmentFixture("objectives_\(kind).safetensors"))
        let folder = modelsFixture("qwen_vl/\(kind)")
        let model = try VLMRegistry.load(folder)
        let e = try SafeTensorsFile(path: "\(folder)/expected.safetensors")
        let images = { (which: [Int]) in
            try ImageInputs(patchRows: e.tensor("pixel_values"), imageGridTHW: e.tensor("image_grid_thw"), images: which)
        }
        try checkStepZero(objective, model: model, fixture: f, adapter: alignmentFixture("adapter_init_\(kind)"),
                          images: images([0, 1]), otherImages: images([2, 0]))
    }

    func checkStepZero(_ objective: Objective, model: any VLMModel, fixture f: SafeTensorsFile, adapter: String,
                       images imageInputs: ImageInputs, otherImages: ImageInputs) throws {
        try model.loadAdapter(from: adapter)
        try model.freeze()
        try model.unfreeze { $0.contains(".lora_") }
        model.train()
        let name = objective.rawValue
        var chosen: [SequenceLogProbs.Row] = [], rejected: [SequenceLogProbs.Row] = [], chosenOther: [SequenceLogProbs.Row] = []
        for i in 0..<2 {
            let ids = { (key: String) in try f.tensor(key).toArray(Int64.self).map(Int.init) }
            let prompt = try ids("pair\(i).prompt")
            // The fixture's own expansion of each prompt for its image equals ours.
            #expect(prompt.filter { $0 == model.imageTokenID }.count == imageInputs.tokenCounts[i])
            chosen.append(.init(prompt: prompt, completion: try ids("pair\(i).chosen")))
            rejected.append(.init(prompt: prompt, completion: try ids("pair\(i).rejected")))
            let otherPrompt = f.names.contains("pair\(i).prompt_other") ? try ids("pair\(i).prompt_other") : prompt
            #expect(otherPrompt.filter { $0 == model.imageTokenID }.count == otherImages.tokenCounts[i])
            chosenOther.append(.init(prompt: otherPrompt, completion: try ids("pair\(i).chosen")))
        }
        let images = try withNoGrad { try model.imageFeatures(imageInputs) }
        var lp = PairLogProbs(policyChosen: try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: images, imageGrids: imageInputs.grids))
        lp.chosenLengths = try Tensor(chosen.map { $0.completion.count })
        lp.rejectedLengths = try Tensor(rejected.map { $0.completion.count })
        if objective != .sft {
            lp.policyRejected = try SequenceLogProbs.compute(model, rows: rejected, imageFeatures: images, imageGrids: imageInputs.grids)
            try model.withLoRADisabled {
                try withNoGrad {
                    lp.referenceChosen = try SequenceLogProbs.compute(model, rows: chosen, imageFeatures: images, imageGrids: imageInputs.grids)
                    lp.referenceRejected = try SequenceLogProbs.compute(model, rows: rejected, imageFeatures: images, imageGrids: imageInputs.grids)
                }
            }
            #expect(try maxAbs(lp.policyRejected!, f.tensor("\(name).logps.policy_rejected")) < 1e-4)
            #expect(try maxAbs(lp.referenceChosen!, f.tensor("\(name).logps.reference_chosen")) < 1e-4)
            #expect(try maxAbs(lp.referenceRejected!, f.tensor("\(name).logps.reference_rejected")) < 1e-4)
        }
        if objective == .rdpo || objective == .mdpo {
            let other = try withNoGrad { try model.imageFeatures(otherImages) }
            lp.policyChosenOtherImage = try SequenceLogProbs.compute(model, rows: chosenOther, imageFeatures: other, imageGrids: otherImages.grids)
            try model.withLoRADisabled {
                lp.referenceChosenOtherImage = try withNoGrad { try SequenceLogProbs.compute(model, rows: chosenOther, imageFeatures: other, imageGrids: otherImages.grids) }
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
        let layers = gradKeys.filter { $0.contains(".lora_A.") }.count / 7
        #expect(gradKeys.count == params.count && params.count == 2 * 7 * 2 && layers == 2)
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

        // One AdamW step. Its first update is about lr · g / |g|, so entries whose gradient is tiny (under 1e-5 of the
        // largest) move by about lr whichever their float noise: they are compared loosely (a sign flip there is
        // noise, not a different update; one Qwen2.5-VL entry at 3e-6 of the largest moved 1.2e-5 apart).
        let optimizer = AdamW(Array(params.values), lr: 1e-3, weightDecay: 0)
        try optimizer.step()
        var worst = 0.0
        for key in gradKeys {
            let peftName = String(key.dropFirst("\(name).grad.".count))
            let ours = model.sanitize(String(peftName.dropFirst("base_model.model.".count)))!
            let want = try f.tensor("\(name).after.\(peftName)")
            let grad = try f.tensor(key)
            let significant = try grad.abs().gt(1e-5 * max(try grad.abs().max().item(), 1e-30))
            let diff = try (params[ours]!.detach() - want).abs()
            worst = max(worst, try diff.maskedSelect(significant).max().item())
            #expect(try diff.max().item() <= 2.1e-3, "\(ours): an update of the wrong size")
        }
        #expect(worst < 1e-5, "\(name): adapter after one AdamW step differs by \(worst)")
        let policyDiff = try maxAbs(lp.policyChosen, f.tensor("\(name).logps.policy_chosen"))
        print("parity \(name): policy logps \(policyDiff), LoRA gradients \(worstGradient) relative, after AdamW \(worst)")
    }
}
