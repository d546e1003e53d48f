import Foundation
import Testing
import Torch
@testable import Models

/// LoRA on Qwen2-VL / Qwen2.5-VL both ways with peft 0.21 (`tools/reference/make_qwen_vl_adapter_fixtures.py`):
/// a peft-written adapter (the merger in modules_to_save) loads here, and ours, with peft's names for these
/// models, loads in peft; merged and exported, the folder loads as a plain model again.
@Suite(.serialized) struct QwenLoRATests {
    /// Logits of the fixture's left-padded batch (two prompts, three images), at every position.
    func logits(_ model: any VLMModel, _ folder: String) throws -> Tensor {
        let e = try SafeTensorsFile(path: "\(folder)/expected.safetensors")
        let images = try ImageInputs(patchRows: e.tensor("pixel_values"), imageGridTHW: e.tensor("image_grid_thw"))
        return try withNoGrad {
            let hidden = try model.hiddenStates(inputIDs: e.tensor("input_ids"), imageFeatures: model.imageFeatures(images),
                                                attentionMask: e.tensor("attention_mask"), imageGrids: images.grids)
            return try model.logits(hidden)
        }
    }

    /// The largest difference at the batch's real (unpadded) positions.
    func difference(_ a: Tensor, _ b: Tensor, _ folder: String) throws -> Double {
        let mask = try SafeTensorsFile(path: "\(folder)/expected.safetensors").tensor("attention_mask").to(dtype: .bool)
        let select = try mask.unsqueeze(-1).expand(as: a)
        return try maxAbsDifference(a.maskedSelect(select), b.maskedSelect(select))
    }

    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func peftAdapterLoadsAndMerges(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let expected = try SafeTensorsFile(path: "\(folder)/lora/expected.safetensors")
        let model = try VLMRegistry.load(folder)
        let base = try logits(model, folder)
        try model.loadAdapter(from: "\(folder)/lora/peft_adapter")
        #expect(model.loraLinears().count == 6)
        let adapted = try logits(model, folder)
        #expect(try difference(adapted, base, folder) > 1e-2)
        let diff = try difference(adapted, expected.tensor("peft_logits"), folder)
        print("\(kind) peft adapter: logits differ by \(diff)")
        #expect(diff < 1e-4)
        try model.mergeAdapters()
        #expect(try difference(logits(model, folder), expected.tensor("peft_logits"), folder) < 1e-4)
    }

    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func ourAdapterLoadsInPeft(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let model = try VLMRegistry.load(folder)
        _ = try model.applyLoRA(LoRAConfig(r: 4, alpha: 8, dropout: 0), targets: LoRATargets(parsing: "k_proj,o_proj,up_proj"),
                                generator: Generator(seed: 8))
        try randomiseLoRAFactorsB(model.loraLinears(), seed: 9)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adapter-\(kind)-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: dir + "-merged") }
        try model.saveAdapter(to: dir, baseModel: kind)
        if ProcessInfo.processInfo.environment["REALIGN_WRITE_FIXTURES"] != nil {
            let target = "\(folder)/lora/ours_adapter"
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: dir, toPath: target)
        }
        let written = try SafeTensorsFile(path: dir + "/adapter_model.safetensors")
        // Names as peft writes them for these models; up_proj also matches Qwen2.5-VL's vision MLPs, as in peft's
        // suffix match.
        let prefixes = ["base_model.model.model.language_model.layers.", "base_model.model.model.visual.blocks."]
        #expect(written.names.allSatisfy { n in prefixes.contains { n.hasPrefix($0) } }, "\(written.names)")
        #expect(written.names.contains { $0.hasPrefix(prefixes[1]) } == (kind == "qwen2_5_vl"))
        let committed = try SafeTensorsFile(path: "\(folder)/lora/ours_adapter/adapter_model.safetensors")
        #expect(committed.names == written.names)
        for name in written.names { #expect(try committed.tensor(name).equal(written.tensor(name)), "\(name)") }
        let expected = try SafeTensorsFile(path: "\(folder)/lora/expected.safetensors")
        let adapted = try logits(model, folder)
        #expect(try difference(adapted, expected.tensor("ours_peft_logits"), folder) < 1e-4)
        try model.mergeAdapters()
        try model.exportModel(to: dir + "-merged", baseFolder: folder)
        let plain = try VLMRegistry.load(dir + "-merged")
        #expect(try difference(logits(plain, folder), expected.tensor("ours_merged_logits"), folder) < 1e-4)
    }
}
