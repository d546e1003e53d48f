import Foundation
import Images
import JSON
import Testing
import Tokenizers
import Torch
@testable import Models

/// LLaVA-NeXT (anyres) against transformers 5.23 (tools/reference/make_llava_next_fixtures.py): the PIL image
/// processor on images of many aspect ratios, and two tiny random models (a Vicuna/LLaMA and a Mistral decoder).
@Suite struct LlavaNextParityTests {
    static let models = ["tiny-llava-next", "tiny-llava-next-mistral"]

    @Test func imageProcessorMatchesTransformers() throws {
        let processor = try AnyResImageInputs(folder: modelFixture("tiny-llava-next"))
        let folder = modelFixture("llava-next-images")
        let expected = try SafeTensorsFile(path: "\(folder)/expected.safetensors")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") }
        #expect(files.count == 8)
        for file in files {
            // image{i}_{h}x{w}.png
            let i = Int(file.dropFirst("image".count).prefix(while: \.isNumber))!
            let image = try RGBImage(contentsOfFile: "\(folder)/\(file)")
            let inputs = try processor.preprocess([image])
            let want = try expected.tensor("pixel_values\(i)")
            #expect(inputs.pixels.shape == want.shape, "\(file): tiles \(inputs.pixels.shape) vs \(want.shape)")
            if inputs.pixels.shape == want.shape {
                let diff = try maxAbsDifference(inputs.pixels, want)
                #expect(diff < 1e-5, "\(file): pixel values differ by \(diff)")
            }
            let size = try expected.tensor("image_size\(i)").toArray(Int64.self).map(Int.init)
            #expect(inputs.originalSizes == [PixelSize(height: size[0], width: size[1])], "\(file)")
            let tokens = try expected.tensor("tokens\(i)").itemInt()
            #expect(inputs.tokenCounts == [tokens], "\(file): \(inputs.tokenCounts) image tokens, transformers \(tokens)")
            #expect(processor.tokenCount(width: image.width, height: image.height) == tokens)
        }
    }

    /// The fixture batch as the model takes it: the padded tile batch cut back to each image's tiles.
    static func inputs(_ expected: SafeTensorsFile, _ model: LlavaNextForConditionalGeneration, rows: [Int]) throws -> ImageInputs {
        let pixels = try expected.tensor("pixel_values"), sizes = try expected.tensor("image_sizes")
        var tiles: [Tensor] = [], counts: [Int] = [], tokenCounts: [Int] = [], originals: [PixelSize] = []
        let processor = try AnyResImageInputs(folder: modelFixture("tiny-llava-next"))
        for row in rows {
            let s = try sizes.select(0, row).toArray(Int64.self).map(Int.init)
            let size = PixelSize(height: s[0], width: s[1])
            let grid = AnyRes.gridShape(image: size, pinpoints: model.config.gridPinpoints, tile: model.config.vision.imageSize)
            let count = grid.rows * grid.columns + 1
            tiles.append(try pixels.select(0, row).narrow(0, start: 0, length: count))
            counts.append(count)
            originals.append(size)
            tokenCounts.append(processor.tokenCount(width: size.width, height: size.height))
        }
        return ImageInputs(pixels: try Tensor.cat(tiles, dim: 0), tokenCounts: tokenCounts, tiles: counts, originalSizes: originals)
    }

    static func load(_ name: String) throws -> LlavaNextForConditionalGeneration {
        let model = try VLMRegistry.load(name.hasPrefix("/") ? name : modelFixture(name))
        return try #require(model as? LlavaNextForConditionalGeneration)
    }

    @Test(arguments: models)
    func featuresAndLogitsMatchTransformers(_ name: String) throws {
        let model = try Self.load(name)
        let expected = try SafeTensorsFile(path: modelFixture("\(name)/expected.safetensors"))
        let ids = try expected.tensor("input_ids"), mask = try expected.tensor("attention_mask")
        try withNoGrad {
            let images = try Self.inputs(expected, model, rows: [0, 1])
            let features = try model.imageFeatures(images)
            var start = 0
            for (i, count) in images.tokenCounts.enumerated() {
                let want = try expected.tensor("image_features\(i)")
                #expect(want.size(0) == count, "\(name): image \(i) has \(want.size(0)) features, we count \(count) tokens")
                let diff = try maxAbsDifference(features.narrow(0, start: start, length: count), want)
                #expect(diff < 1e-5, "\(name): image \(i) features differ by \(diff)")
                start += count
            }
            #expect(start == features.size(0))
            let hidden = try model.hiddenStates(inputIDs: ids, imageFeatures: features, attentionMask: mask)
            let positions = try expected.tensor("text_positions").to(dtype: .bool)
            let logits = try model.logits(hidden.maskedSelect(positions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1)))
            let want = try expected.tensor("logits")
            #expect(logits.shape == want.shape)
            let diff = try maxAbsDifference(logits, want)
            #expect(diff < 1e-4, "\(name): logits differ by \(diff)")
        }
    }

    @Test(arguments: models)
    func greedyGenerationMatchesTransformers(_ name: String) throws {
        let model = try Self.load(name)
        let expected = try SafeTensorsFile(path: modelFixture("\(name)/expected.safetensors"))
        let prompts = try (0..<2).map { try expected.tensor("prompt\($0)").toArray(Int64.self).map(Int.init) }
        let generator = TextGenerator(model: model, tokenizer: nil)
        let options = GenerationOptions(maxNewTokens: 32)
        for row in 0..<2 {
            let out = try generator.generate(prompts: [prompts[row]], images: Self.inputs(expected, model, rows: [row]), options: options)
            let want = try expected.tensor("generated\(row)").toArray(Int64.self).map(Int.init)
            #expect(out[0].tokens == want, "\(name) row \(row)")
        }
        // Differently tiled images in one left-padded batch.
        let batch = try generator.generate(prompts: prompts, images: Self.inputs(expected, model, rows: [0, 1]), options: options)
        let want = try expected.tensor("generated_batch")
        for row in 0..<2 {
            #expect(batch[row].tokens == (try want.select(0, row).toArray(Int64.self).map(Int.init)), "\(name) batch row \(row)")
        }
    }

    /// For one image and a user prompt, the format chosen from config.json renders what the folder's own chat
    /// template renders (transformers' apply_chat_template with add_generation_prompt), byte for byte.
    @Test(arguments: zip(models, [ChatFormat.llavaVicuna, .llavaMistral]))
    func chatFormatIsTheFolderTemplate(_ name: String, _ format: ChatFormat) throws {
        let vlm = try VisionLanguageModel(folder: modelFixture(name))
        #expect(vlm.chatFormat == format)
        let cases = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: modelFixture("\(name)/chat.json")))))
        #expect(cases.arrayValue?.count == 3)
        for c in cases.arrayValue ?? [] {
            let prompt = try #require(c["prompt"]?.stringValue), want = try #require(c["text"]?.stringValue)
            #expect(Array(vlm.chatFormat.prompt(prompt).utf8) == Array(want.utf8), "\(name): \(prompt)")
            let count = 7
            let ids = try vlm.promptIDs(prompt, imageTokenCounts: [count])
            #expect(try ids == vlm.model.expandImageTokens(vlm.tokenizer.encode(want), counts: [count]))
        }
    }

    @Test func anyResGeometryEdgeCases() throws {
        let pinpoints = [PixelSize(height: 28, width: 56), PixelSize(height: 56, width: 28), PixelSize(height: 56, width: 56)]
        // An image that exactly fits a pinpoint keeps it and is not resized.
        #expect(AnyRes.bestResolution(image: PixelSize(height: 56, width: 28), pinpoints: pinpoints) == PixelSize(height: 56, width: 28))
        #expect(AnyRes.fittedSize(image: PixelSize(height: 56, width: 28), target: PixelSize(height: 56, width: 28)) == PixelSize(height: 56, width: 28))
        // A square image: every pinpoint keeps 28x28 of it at most except 56x56, which keeps all of it.
        #expect(AnyRes.bestResolution(image: PixelSize(height: 40, width: 40), pinpoints: pinpoints) == PixelSize(height: 56, width: 56))
        // Unpadding a wide image's map keeps its middle rows only.
        let kept = AnyRes.unpadded(height: 4, width: 4, original: PixelSize(height: 10, width: 40))
        #expect(kept.left == 0 && kept.width == 4 && kept.height == 2 && kept.top == 1)
    }

    /// A folder whose config lacks the pinpoints is a clear error naming the key.
    @Test func missingPinpointsIsAnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("next-no-pinpoints-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = modelFixture("tiny-llava-next")
        for file in try FileManager.default.contentsOfDirectory(atPath: source) where file != "config.json" {
            try FileManager.default.copyItem(atPath: "\(source)/\(file)", toPath: dir.appendingPathComponent(file).path)
        }
        var config = try String(contentsOfFile: "\(source)/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"image_grid_pinpoints\"", with: "\"unused_pinpoints\"")
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        do {
            _ = try VLMRegistry.load(dir.path)
            Issue.record("loaded without image_grid_pinpoints")
        } catch {
            #expect("\(error)".contains("image_grid_pinpoints"), "\(error)")
        }
    }
}
