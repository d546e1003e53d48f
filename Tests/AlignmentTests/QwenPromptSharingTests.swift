import Foundation
import Testing
import Torch
@testable import Alignment
@testable import Models

/// Prompt sharing on Qwen2-VL / Qwen2.5-VL: the responses continue the shared prompt's M-RoPE positions (the
/// prompt's images compress them: a 3 x 2 merged image takes 3 positions, not 6), so scoring completions on one
/// prompt pass equals scoring the full sequences, whose positions and logits match transformers
/// (Qwen2VLParityTests). One prompt holds two images of different sizes; prompts are left-padded.
@Suite struct QwenPromptSharingTests {
    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func sharedPromptEqualsSeparateSequences(_ kind: String) throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ModelsTests/Fixtures/qwen_vl/\(kind)").standardized.path
        let model = try VLMRegistry.load(folder)
        let e = try SafeTensorsFile(path: "\(folder)/expected.safetensors")
        let inputs = try ImageInputs(patchRows: e.tensor("pixel_values"), imageGridTHW: e.tensor("image_grid_thw"))
        let grids = try #require(inputs.grids)
        let ids = try e.tensor("input_ids").toArray(Int64.self).map(Int.init)
        let mask = try e.tensor("attention_mask").toArray(Int64.self).map(Int.init)
        let width = ids.count / 2
        let prompts = (0..<2).map { r in (0..<width).filter { mask[r * width + $0] == 1 }.map { ids[r * width + $0] } }
        let chosen = [[11, 12, 13, 14, 15], [21, 22, 23]], rejected = [[31, 32], [41, 42, 43, 44, 45, 46]]

        try withNoGrad {
            let features = try model.imageFeatures(inputs)
            let rows = zip(prompts, chosen).map { SequenceLogProbs.Row(prompt: $0, completion: $1) }
                + zip(prompts, rejected).map { SequenceLogProbs.Row(prompt: $0, completion: $1) }
            let separate = try SequenceLogProbs.compute(model, rows: rows, imageFeatures: Tensor.cat([features, features], dim: 0),
                                                        imageGrids: grids + grids)
            let shared = try Tensor.cat(model.completionLogProbs(prompts: prompts, completions: [chosen, rejected],
                                                                 imageFeatures: features, imageGrids: grids), dim: 0)
            let difference = try (shared - separate).abs().max().item() as Double
            print("\(kind) prompt sharing: log-probs \(try shared.toArray(Float.self)) differ by \(difference)")
            #expect(difference < 1e-4)
            // Without the grids the image runs cannot be placed: an error, never 1-D positions by mistake.
            #expect(throws: ModelError.self) {
                _ = try model.completionLogProbs(prompts: prompts, completions: [chosen], imageFeatures: features)
            }
        }
    }
}
