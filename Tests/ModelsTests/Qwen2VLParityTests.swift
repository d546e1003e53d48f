import Foundation
import JSON
import Testing
import Tokenizers
import Torch
@testable import Models

/// Qwen2-VL's and Qwen2.5-VL's vision towers, M-RoPE positions and logits against transformers 5.23 on tiny random
/// models (`tools/reference/make_qwen_vl_fixtures.py`): three images of different sizes in one call, two prompts
/// (one with two images) left-padded in one batch. Qwen2.5-VL's windows (2 x 2 merged tokens) cut every image
/// into several, one cut short at the edge, and its block 1 attends over whole images.
@Suite struct Qwen2VLParityTests {
    func expected(_ folder: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: "\(folder)/expected.safetensors") }

    func grids(_ e: SafeTensorsFile) throws -> [[Int]] { try intRows(e.tensor("image_grid_thw")) }

    func rows(_ t: Tensor) throws -> [[Int]] { try intRows(t) }

    /// The fixture's images at `indices` (0: prompt 0's; 1, 2: prompt 1's), as transformers' processor prepared them.
    func images(_ e: SafeTensorsFile, _ indices: [Int]) throws -> ImageInputs {
        try ImageInputs(patchRows: e.tensor("pixel_values"), imageGridTHW: e.tensor("image_grid_thw"), images: indices)
    }

    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func visionFeaturesMatchTransformers(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let config = try ConfigReader.load("\(folder)/config.json")
        let vision = try #require(try config.object("vision_config"))
        let tower = try Qwen2VisionTransformer(Qwen2VLVisionConfig(vision, qwen25: kind == "qwen2_5_vl"))
        try ModelLoader.load(tower, from: folder, dtype: .float32, device: .cpu) { key in
            for prefix in ["model.visual.", "visual."] where key.hasPrefix(prefix) { return String(key.dropFirst(prefix.count)) }
            return nil
        }
        let e = try expected(folder)
        let features = try withNoGrad { try tower(e.tensor("pixel_values"), grids: grids(e)) }
        let reference = try e.tensor("image_features")
        #expect(features.shape == reference.shape)
        let difference = try maxAbsDifference(features, reference)
        print("\(kind) vision features: largest difference from transformers \(difference)")
        #expect(difference < 1e-5)
        // Each image attends only to itself: the first image alone gives its own rows unchanged.
        let g = try grids(e)
        let first = try withNoGrad { try tower(e.tensor("pixel_values").narrow(0, start: 0, length: g[0][1] * g[0][2]), grids: [g[0]]) }
        #expect(try maxAbsDifference(first, reference.narrow(0, start: 0, length: first.size(0))) < 1e-5)
        // A wrong row count is an error naming the grids, not a crash.
        #expect(throws: ModelError.self) { try tower(e.tensor("pixel_values").narrow(0, start: 0, length: 5), grids: g) }
    }

    @Test func positionsAndDeltasMatchGetRopeIndex() throws {
        let e = try expected(modelFixture("qwen_vl/qwen2_vl"))
        let ids = try rows(e.tensor("input_ids")), mask = try rows(e.tensor("attention_mask"))
        let (positions, deltas) = try MRoPE.positions(ids: ids, mask: mask, grids: grids(e), imageTokenID: 500, merge: 2)
        let reference = try e.tensor("position_ids")  // [3, B, L]
        for axis in 0..<3 {
            #expect(positions[axis] == (try rows(reference.select(0, axis))), "axis \(axis)")
        }
        #expect(deltas == (try e.tensor("rope_deltas").toArray(Int64.self).map(Int.init)))
        // The spec's tiny check: a 3 x 5 merged image after 17 text tokens.
        let text = Array(repeating: 7, count: 17)
        let (p, d) = try MRoPE.positions(ids: [text + Array(repeating: 500, count: 15) + [7]], mask: nil,
                                         grids: [[1, 6, 10]], imageTokenID: 500, merge: 2)
        #expect(p[1][0][17..<32].min() == 17 && p[1][0][17..<32].max() == 19)
        #expect(p[2][0][17..<32].max() == 21 && p[0][0][32] == 22 && d == [-10])
        // Runs and grids that disagree are errors.
        #expect(throws: ModelError.self) {
            try MRoPE.positions(ids: [text + [500, 500]], mask: nil, grids: [[1, 6, 10]], imageTokenID: 500, merge: 2)
        }
    }

    @Test func windowsFollowTheSpec() {
        // backbones-spec.md's check: a 3 x 5 merged grid with windows of 2 x 2.
        let w = Qwen2VisionTransformer.windows(grids: [[1, 6, 10]], merge: 2, side: 2)
        #expect(w.order == [0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14])
        #expect(w.spans.map(\.upperBound) == [16, 32, 40, 48, 56, 60])
    }

    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func logitsMatchTransformersAloneAndLeftPadded(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let model = try VLMRegistry.load(folder)
        let e = try expected(folder)
        let ids = try rows(e.tensor("input_ids")), mask = try rows(e.tensor("attention_mask"))
        // Through the protocol as every consumer goes: image features, then the model's own positions from the
        // tokens and the images' grids.
        func logits(_ input: Tensor, _ padding: Tensor?, _ images: ImageInputs) throws -> Tensor {
            try withNoGrad {
                try model.logits(model.hiddenStates(inputIDs: input, imageFeatures: model.imageFeatures(images),
                                                    attentionMask: padding, imageGrids: images.grids))
            }
        }
        var worst = 0.0
        // Each prompt alone: prompt 0 with image 0, prompt 1 with images 1 and 2.
        for (row, indices) in [(0, [0]), (1, [1, 2])] {
            let real = zip(ids[row], mask[row]).filter { $0.1 == 1 }.map { Int64($0.0) }
            let alone = try logits(Tensor(real, shape: [1, real.count]), nil, images(e, indices)).squeeze(0)
            worst = max(worst, try maxAbsDifference(alone, e.tensor("logits_\(row)")))
        }
        // Both in one left-padded batch, every image in one vision call: compared at the real positions.
        let batch = try logits(e.tensor("input_ids"), e.tensor("attention_mask"), images(e, [0, 1, 2]))
        let reference = try e.tensor("logits")
        for row in 0..<2 {
            let real = mask[row].reduce(0, +), start = mask[row].count - real
            worst = max(worst, try maxAbsDifference(batch.select(0, row).narrow(0, start: start, length: real),
                                                    reference.select(0, row).narrow(0, start: start, length: real)))
        }
        print("\(kind) logits: largest difference from transformers \(worst)")
        #expect(worst < 1e-4)
    }

    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func greedyGenerationMatchesAloneAndLeftPadded(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let model = try VLMRegistry.load(folder)
        let e = try expected(folder)
        let ids = try rows(e.tensor("input_ids")), mask = try rows(e.tensor("attention_mask"))
        let prompts = (0..<2).map { r in zip(ids[r], mask[r]).filter { $0.1 == 1 }.map(\.0) }
        let generator = TextGenerator(model: model, tokenizer: nil)
        let options = GenerationOptions(maxNewTokens: 8)
        // M-RoPE from the prompt's tokens and grids, then rope deltas carried through the cache's decode steps.
        for (row, indices) in [(0, [0]), (1, [1, 2])] {
            let alone = try generator.generate(prompts: [prompts[row]], images: images(e, indices), options: options)
            #expect(alone[0].tokens == (try e.tensor("generated_\(row)").toArray(Int64.self).map(Int.init)), "prompt \(row) alone")
        }
        let batch = try generator.generate(prompts: prompts, images: images(e, [0, 1, 2]), options: options)
        let reference = try rows(e.tensor("generated_batch"))
        #expect(batch.map(\.tokens) == reference)
    }

    /// For one image and a user prompt, the `qwen2-vl` format renders what the folder's chat template renders
    /// (transformers' apply_chat_template with add_generation_prompt: the default system turn included), byte for
    /// byte, and the prompt's ids are the tokenizer's for that text with the image tokens expanded.
    @Test(arguments: ["qwen2_vl", "qwen2_5_vl"]) func chatFormatIsTheFolderTemplate(_ kind: String) throws {
        let folder = modelFixture("qwen_vl/\(kind)")
        let vlm = try VisionLanguageModel(folder: folder)
        #expect(vlm.chatFormat == .qwen2VL)
        let cases = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/expected_chat.json"))))
        let prompts = cases["prompts"]?.arrayValue ?? [], rendered = cases["rendered"]?.arrayValue ?? []
        #expect(prompts.count == 3 && rendered.count == 3)
        for (p, r) in zip(prompts, rendered) {
            let prompt = try #require(p.stringValue), want = try #require(r.stringValue)
            #expect(Array(vlm.chatFormat.prompt(prompt).utf8) == Array(want.utf8), "\(kind): \(prompt)")
            let ids = try vlm.promptIDs(prompt, imageTokenCounts: [6])
            #expect(try ids == vlm.model.expandImageTokens(vlm.tokenizer.encode(want), counts: [6]))
            #expect(ids.filter { $0 == 500 }.count == 6)
        }
    }
}
