import Foundation
import Testing
import Torch
@testable import Models

/// LoRA in PEFT's format against peft 0.21 (tools/reference/make_lora_fixtures.py).
@Suite(.serialized) struct LoRATests {
    let inputs = try! SafeTensorsFile(path: modelFixture("tiny-llava/expected.safetensors"))
    let expected = try! SafeTensorsFile(path: modelFixture("lora/expected.safetensors"))

    func textLogits(_ model: LlavaForConditionalGeneration) throws -> Tensor {
        try withNoGrad {
            let ids = try inputs.tensor("input_ids")
            let hidden = try model.hiddenStates(inputIDs: ids, imageFeatures: model.imageFeatures(inputs.tensor("pixel_values")),
                                                attentionMask: inputs.tensor("attention_mask"))
            let positions = try inputs.tensor("text_positions").to(dtype: .bool)
            return try model.logits(hidden.maskedSelect(positions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1)))
        }
    }

    /// A peft-written adapter (with the projector in modules_to_save) loads and gives peft's logits; switched off,
    /// the model is the base again; merged, the logits stay.
    @Test func peftAdapterLoads() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"))
        try model.loadAdapter(from: modelFixture("lora/peft_adapter"))
        #expect(model.loraLinears().count == 6)  // q_proj, v_proj, gate_proj x 2 layers
        let adapted = try textLogits(model)
        let diff = try maxAbsDifference(adapted, expected.tensor("peft_logits"))
        #expect(diff < 1e-4, "adapted logits differ from peft by \(diff)")
        // Disabled adapters: the projector replacement stays, so compare against a model with only that change.
        let withoutLoRA = try model.withLoRADisabled { try textLogits(model) }
        #expect(try maxAbsDifference(withoutLoRA, adapted) > 1e-3)
        try model.mergeAdapters()
        #expect(model.loraLinears().isEmpty)
        let merged = try maxAbsDifference(textLogits(model), expected.tensor("peft_logits"))
        #expect(merged < 1e-4, "merged logits differ by \(merged)")
    }

    /// Our adapter, saved in PEFT's format, loads in peft with the same logits as our merged model.
    @Test func ourAdapterLoadsInPeft() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"))
        let names = try model.applyLoRA(LoRAConfig(r: 4, alpha: 8, dropout: 0), targets: LoRATargets(parsing: "o_proj,gate_proj,down_proj"),
                                        generator: Generator(seed: 5))
        #expect(names.count == 6 && names.allSatisfy { $0.hasPrefix("language_model.model.layers.") })
        // Fresh adapters change nothing (B starts at zero); make them non-zero. Compared with the same frozen base:
        // PyTorch 2.13's and 2.15's libtorch (measured on an AMD EPYC with AVX-512) take other kernels for weights
        // that require grad, even under no_grad, 3.5e-6 away.
        let base = try model.withLoRADisabled { try textLogits(model) }
        #expect(try maxAbsDifference(textLogits(model), base) == 0)
        try randomiseLoRAFactorsB(model.loraLinears(), seed: 6)
        // Only the adapters train.
        #expect(model.trainableParameters().allSatisfy { $0.0.contains(".lora_") })
        #expect(model.trainableParameters().count == 12)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adapter-\(UUID().uuidString)").path
        try model.saveAdapter(to: dir, baseModel: "tiny-llava")
        if ProcessInfo.processInfo.environment["REALIGN_WRITE_FIXTURES"] != nil {
            let target = modelFixture("lora/ours_adapter")
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: dir, toPath: target)
        }
        // The committed copy (which peft read) is what this code writes.
        let committed = try SafeTensorsFile(path: modelFixture("lora/ours_adapter/adapter_model.safetensors"))
        let written = try SafeTensorsFile(path: dir + "/adapter_model.safetensors")
        #expect(committed.names == written.names)
        for name in written.names { #expect(try committed.tensor(name).equal(written.tensor(name)), "\(name)") }
        let adapted = try textLogits(model)
        #expect(try maxAbsDifference(adapted, expected.tensor("ours_peft_logits")) < 1e-4)
        // Reloading our own adapter gives the same model.
        let reloaded = try ModelLoader.llava(modelFixture("tiny-llava"))
        try reloaded.loadAdapter(from: dir)
        try reloaded.freeze()  // frozen as `model`'s base is, so the same kernels run
        #expect(try maxAbsDifference(textLogits(reloaded), adapted) < 1e-6)
        // Merge and export a Hugging Face folder; it loads as a plain model with the same logits as peft's merge.
        try model.mergeAdapters()
        let exported = dir + "-merged"
        try model.exportModel(to: exported, baseFolder: modelFixture("tiny-llava"))
        let plain = try ModelLoader.llava(exported)
        #expect(try maxAbsDifference(textLogits(plain), expected.tensor("ours_merged_logits")) < 1e-4)
    }

    @Test func targetSelection() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"))
        #expect(model.loraCandidates(.allLinear).count == 2 * 7)
        #expect(model.loraCandidates(try LoRATargets(parsing: "q_proj")).count == 2 + 3)  // text and vision q_proj
        #expect(model.loraCandidates(try LoRATargets(parsing: #"model\.language_model\.layers\.1\..*"#)).count == 7)
        #expect(model.loraCandidates(try LoRATargets(parsing: "lm_head")).count == 1)
        #expect(throws: TorchError.self) { try LoRATargets(parsing: "(unclosed") }
        #expect(throws: ModelError.self) { try model.applyLoRA(LoRAConfig(r: 2, alpha: 4), targets: LoRATargets(parsing: "nothing_like_this")) }
        let regex = adapterTargetRegex(["model.language_model.layers.0.self_attn.q_proj", "model.language_model.layers.1.self_attn.q_proj"])
        #expect(LoRATargets.regex(regex).matches("model.language_model.layers.7.self_attn.q_proj"))
        #expect(!LoRATargets.regex(regex).matches("model.language_model.layers.0.self_attn.k_proj"))
    }
}

/// LoRA on LLaVA-NeXT in PEFT's format against peft 0.21 (tools/reference/make_llava_next_adapter_fixtures.py).
@Suite(.serialized) struct LlavaNextLoRATests {
    let folder = modelFixture("tiny-llava-next-mistral")
    let inputs = try! SafeTensorsFile(path: modelFixture("tiny-llava-next-mistral/expected.safetensors"))
    let expected = try! SafeTensorsFile(path: modelFixture("lora-next/expected.safetensors"))

    func textLogits(_ model: LlavaNextForConditionalGeneration) throws -> Tensor {
        try withNoGrad {
            let images = try LlavaNextParityTests.inputs(inputs, model, rows: [0, 1])
            let hidden = try model.hiddenStates(inputIDs: inputs.tensor("input_ids"), imageFeatures: model.imageFeatures(images),
                                                attentionMask: inputs.tensor("attention_mask"))
            let positions = try inputs.tensor("text_positions").to(dtype: .bool)
            return try model.logits(hidden.maskedSelect(positions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1)))
        }
    }

    @Test func peftAdapterLoadsAndMerges() throws {
        let model = try LlavaNextParityTests.load("tiny-llava-next-mistral")
        let base = try textLogits(model)
        try model.loadAdapter(from: modelFixture("lora-next/peft_adapter"))
        #expect(model.loraLinears().count == 6)
        let adapted = try textLogits(model)
        #expect(try maxAbsDifference(adapted, base) > 1e-2)
        let diff = try maxAbsDifference(adapted, expected.tensor("peft_logits"))
        #expect(diff < 1e-4, "adapted logits differ from peft by \(diff)")
        try model.mergeAdapters()
        let merged = try maxAbsDifference(textLogits(model), expected.tensor("peft_logits"))
        #expect(merged < 1e-4, "merged logits differ by \(merged)")
    }

    /// Ours, written with PEFT's names for this model, loads in peft; merged and exported, the folder loads as a
    /// plain LLaVA-NeXT again (image_newline included).
    @Test func ourAdapterLoadsInPeft() throws {
        let model = try LlavaNextParityTests.load("tiny-llava-next-mistral")
        _ = try model.applyLoRA(LoRAConfig(r: 4, alpha: 8, dropout: 0), targets: LoRATargets(parsing: "k_proj,o_proj,up_proj"),
                                generator: Generator(seed: 8))
        try randomiseLoRAFactorsB(model.loraLinears(), seed: 9)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adapter-next-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: dir + "-merged") }
        try model.saveAdapter(to: dir, baseModel: "tiny-llava-next-mistral")
        if ProcessInfo.processInfo.environment["REALIGN_WRITE_FIXTURES"] != nil {
            let target = modelFixture("lora-next/ours_adapter")
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: dir, toPath: target)
        }
        let written = try SafeTensorsFile(path: dir + "/adapter_model.safetensors")
        // Names as peft writes them for this model; k_proj matches the CLIP tower's too, as in peft's suffix match.
        let prefixes = ["base_model.model.model.language_model.layers.", "base_model.model.model.vision_tower.encoder.layers."]
        #expect(written.names.allSatisfy { n in prefixes.contains { n.hasPrefix($0) } }, "\(written.names)")
        #expect(written.names.contains { $0.hasPrefix(prefixes[1]) })
        let committed = try SafeTensorsFile(path: modelFixture("lora-next/ours_adapter/adapter_model.safetensors"))
        #expect(committed.names == written.names)
        for name in written.names { #expect(try committed.tensor(name).equal(written.tensor(name)), "\(name)") }
        let adapted = try textLogits(model)
        #expect(try maxAbsDifference(adapted, expected.tensor("ours_peft_logits")) < 1e-4)
        try model.mergeAdapters()
        try model.exportModel(to: dir + "-merged", baseFolder: folder)
        let plain = try LlavaNextParityTests.load(dir + "-merged")
        #expect(try maxAbsDifference(textLogits(plain), expected.tensor("ours_merged_logits")) < 1e-4)
        #expect(FileManager.default.fileExists(atPath: dir + "-merged/chat_template.jinja"))
    }
}

/// Seeded random B factors (std 0.3), so that fresh adapters, whose B starts at zero, change the outputs.
func randomiseLoRAFactorsB(_ linears: [(String, Linear)], seed: UInt64) throws {
    let g = try Generator(seed: seed)
    try withNoGrad {
        for (_, linear) in linears {
            try linear.lora_B!.weight.copyFrom(Tensor.randn(linear.lora_B!.weight.shape, generator: g) * 0.3)
        }
    }
}
