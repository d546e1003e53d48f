import Foundation
import JSON
import Testing
import Torch
@testable import Models

func modelFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

func maxAbsDifference(_ a: Tensor, _ b: Tensor) throws -> Double {
    try (a.to(dtype: .float64) - b.to(dtype: .float64)).abs().max().item()
}

/// A tiny random LlavaForConditionalGeneration against transformers 5 (tools/reference/make_model_fixtures.py).
@Suite struct LlavaParityTests {
    @Test(arguments: ["tiny-llava", "tiny-llava-gqa"])
    func logitsMatchTransformers(_ name: String) throws {
        let model = try ModelLoader.llava(modelFixture(name))
        let expected = try SafeTensorsFile(path: modelFixture("\(name)/expected.safetensors"))
        let ids = try expected.tensor("input_ids"), mask = try expected.tensor("attention_mask")
        let pixels = try expected.tensor("pixel_values")
        try withNoGrad {
            let features = try model.imageFeatures(pixels)
            #expect(features.shape == [2, 256, 64])
            let featureDiff = try maxAbsDifference(features.select(0, 0), expected.tensor("image_features"))
            #expect(featureDiff < 1e-5, "image features differ by \(featureDiff)")

            let hidden = try model.hiddenStates(inputIDs: ids, imageFeatures: features, attentionMask: mask)
            let positions = try expected.tensor("text_positions").to(dtype: .bool)
            let selected = try hidden.maskedSelect(positions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1))
            let logits = try model.logits(selected)
            let want = try expected.tensor("logits")
            #expect(logits.shape == want.shape)
            let diff = try maxAbsDifference(logits, want)
            #expect(diff < 1e-4, "\(name): logits differ by \(diff)")
        }
    }

    /// bf16 linear weights under fp32 compute against transformers with every language-model linear computing
    /// F.linear(bf16(x), bf16(W)) in fp32 (tools/reference/make_bf16_weight_fixtures.py).
    @Test func bf16LinearWeightsMatchTheirReference() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"), bf16LinearWeights: true)
        #expect(model.hasBF16LinearWeights && model.dtype == .float32)
        let inputs = try SafeTensorsFile(path: modelFixture("tiny-llava/expected.safetensors"))
        let expected = try SafeTensorsFile(path: modelFixture("tiny-llava/expected_bf16_weights.safetensors"))
        let ids = try inputs.tensor("input_ids"), mask = try inputs.tensor("attention_mask")
        let pixels = try inputs.tensor("pixel_values")
        try withNoGrad {
            let hidden = try model.hiddenStates(inputIDs: ids, imageFeatures: model.imageFeatures(pixels), attentionMask: mask)
            let positions = try inputs.tensor("text_positions").to(dtype: .bool)
            let logits = try model.logits(hidden.maskedSelect(positions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1)))
            #expect(logits.dtype == .float32)
            // Rounding activations to bf16 makes fp32-sized differences into bf16 steps now and then: the bound is
            // how far the reference itself moves under a 1e-6 relative perturbation (measured by the fixture script).
            let want = try expected.tensor("logits"), perturbed = try expected.tensor("logits_perturbed")
            func meanAbs(_ a: Tensor, _ b: Tensor) throws -> Double { try (a.to(dtype: .float64) - b.to(dtype: .float64)).abs().mean().item() }
            let (diff, spread) = (try maxAbsDifference(logits, want), try maxAbsDifference(want, perturbed))
            let (meanDiff, meanSpread) = (try meanAbs(logits, want), try meanAbs(want, perturbed))
            #expect(diff <= 2 * spread && meanDiff <= 2 * meanSpread,
                    "logits differ by \(diff) max, \(meanDiff) mean; the reference moves by \(spread), \(meanSpread)")
            // And the mode is really on: the fp32 model's logits are much farther away.
            let fromFP32 = try meanAbs(logits, inputs.tensor("logits"))
            #expect(fromFP32 > 2 * meanDiff, "mean distance to fp32 logits \(fromFP32), to the bf16-weight reference \(meanDiff)")
        }
        let generator = TextGenerator(model: model, tokenizer: nil)
        for row in 0..<2 {
            let count = try mask.select(0, row).sum().itemInt()
            let prompt = try ids.select(0, row).narrow(0, start: 0, length: count).toArray(Int64.self).map(Int.init)
            let out = try generator.generate(prompts: [prompt], images: clipImages(pixels.narrow(0, start: row, length: 1), model),
                                             options: GenerationOptions(maxNewTokens: 32))
            // Greedy paths part at the first rounding flip that changes an argmax; the start must agree.
            let want = try expected.tensor("generated\(row)").toArray(Int64.self).map(Int.init)
            #expect(Array(out[0].tokens.prefix(8)) == Array(want.prefix(8)), "row \(row): \(out[0].tokens) vs \(want)")
        }
        // Only an fp32 model can keep bf16 weights under fp32 compute.
        #expect(throws: ModelError.self) { try ModelLoader.llava(modelFixture("tiny-llava"), dtype: .bfloat16, bf16LinearWeights: true) }
    }

    /// The three llava-hf key layouts load into the same parameters.
    @Test func everyKeyLayoutLoads() throws {
        let reference = try ModelLoader.llava(modelFixture("tiny-llava")).stateDict()
        for layout in ["tiny-llava-legacy-keys", "tiny-llava-model-prefix"] {
            let other = try ModelLoader.llava(modelFixture(layout)).stateDict()
            #expect(Set(other.keys) == Set(reference.keys))
            for (k, v) in reference { #expect(try v.detach().equal(other[k]!.detach()), "\(layout): \(k)") }
        }
    }

    @Test func ropeFrequenciesMatchTransformers() throws {
        let expected = try SafeTensorsFile(path: modelFixture("rope.safetensors"))
        func config(_ json: String) throws -> LlamaConfig {
            try LlamaConfig(ConfigReader(try JSONValue.parse(Array(json.utf8)), file: "test"))
        }
        let base = #""hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 128"#
        let cases: [(String, String)] = [
            ("default", #"{\#(base), "rope_theta": 10000.0}"#),
            ("linear", #"{\#(base), "rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}}"#),
            ("dynamic", #"{\#(base), "rope_scaling": {"type": "dynamic", "factor": 2.0}, "rope_theta": 10000.0}"#),
            ("llama3", #"{\#(base), "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}"#),
        ]
        for (name, json) in cases {
            let inv = try RotaryEmbedding.frequencies(try config(json), sequenceLength: nil)
            let diff = try maxAbsDifference(inv, expected.tensor(name))
            #expect(diff < 1e-7, "\(name): inverse frequencies differ by \(diff)")
        }
        // Dynamic NTK beyond max_position_embeddings recomputes the frequencies for the longer sequence.
        let rotary = try RotaryEmbedding(try config(cases[2].1))
        let (cos, _) = try rotary(positions: Tensor.arange(0, 300).unsqueeze(0), dtype: .float32)
        let diff = try maxAbsDifference(cos.select(0, 0), expected.tensor("dynamic.cos300"))
        #expect(diff < 1e-5, "dynamic rope cos differs by \(diff)")
    }
}

/// Greedy generation with the KV cache against transformers' generate().
@Suite struct GenerationParityTests {
    @Test(arguments: ["tiny-llava", "tiny-llava-gqa"])
    func greedyMatchesTransformers(_ name: String) throws {
        let model = try ModelLoader.llava(modelFixture(name))
        let expected = try SafeTensorsFile(path: modelFixture("\(name)/expected.safetensors"))
        let ids = try expected.tensor("input_ids"), mask = try expected.tensor("attention_mask")
        let pixels = try expected.tensor("pixel_values")
        var prompts: [[Int]] = []
        for row in 0..<2 {
            let count = try mask.select(0, row).sum().itemInt()
            prompts.append(try ids.select(0, row).narrow(0, start: 0, length: count).toArray(Int64.self).map(Int.init))
        }
        let generator = TextGenerator(model: model, tokenizer: nil)
        let options = GenerationOptions(maxNewTokens: 32)
        // One sequence at a time.
        for row in 0..<2 {
            let out = try generator.generate(prompts: [prompts[row]], images: clipImages(pixels.narrow(0, start: row, length: 1), model), options: options)
            let want = try expected.tensor("generated\(row)").toArray(Int64.self).map(Int.init)
            #expect(out[0].tokens == want, "\(name) row \(row)")
            #expect(out[0].reason == .length && out[0].tokens.count == 32)
        }
        // Both as one left-padded batch.
        let batch = try generator.generate(prompts: prompts, images: clipImages(pixels, model), options: options)
        let want = try expected.tensor("generated_batch")
        for row in 0..<2 {
            #expect(batch[row].tokens == (try want.select(0, row).toArray(Int64.self).map(Int.init)), "\(name) batch row \(row)")
        }
    }

    @Test func stopTokensSamplingAndSeeds() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"))
        let expected = try SafeTensorsFile(path: modelFixture("tiny-llava/expected.safetensors"))
        let pixels = try expected.tensor("pixel_values").narrow(0, start: 0, length: 1)
        let prompt = [1, 923, 304] + model.expandImageTokens([1200]) + [354, 95]
        let generator = TextGenerator(model: model, tokenizer: nil)
        let greedy = try generator.generate(prompts: [prompt], images: clipImages(pixels, model), options: GenerationOptions(maxNewTokens: 8))[0]
        // Stopping on the third greedy token leaves the first two.
        let stop = GenerationOptions(maxNewTokens: 8, stopTokenIDs: [greedy.tokens[2]])
        let stopped = try generator.generate(prompts: [prompt], images: clipImages(pixels, model), options: stop)[0]
        #expect(stopped.reason == .stopToken)
        #expect(stopped.tokens == Array(greedy.tokens.prefix(while: { $0 != greedy.tokens[2] })))
        // Sampling repeats with a seed and differs across seeds.
        let sample = { (seed: UInt64) in
            try generator.generate(prompts: [prompt], images: clipImages(pixels, model), options: GenerationOptions(maxNewTokens: 16, temperature: 1.5, topP: 0.95, seed: seed))[0].tokens
        }
        #expect(try sample(1) == sample(1))
        #expect(try sample(1) != sample(2))
        // A prompt whose image tokens do not match the images is a clear error.
        #expect(throws: ModelError.self) { try generator.generate(prompts: [[1, 1200, 5]], images: clipImages(pixels, model), options: GenerationOptions(maxNewTokens: 2)) }
    }
}

/// Pixels prepared by the CLIP processor, as LLaVA-1.5 images (a fixed image-token count each).
func clipImages(_ pixels: Tensor, _ model: LlavaForConditionalGeneration) -> ImageInputs {
    ImageInputs(pixels: pixels, tokenCounts: Array(repeating: model.config.imageFeatureCount, count: pixels.size(0)))
}
