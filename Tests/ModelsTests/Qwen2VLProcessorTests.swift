import Foundation
import Images
import JSON
import Testing
import Torch
@testable import Models

/// Qwen2-VL's image processor against transformers 5.23's `Qwen2VLImageProcessorPil` and its `smart_resize`
/// (tools/reference/make_qwen2_vl_processor_fixtures.py).
@Suite struct Qwen2VLProcessorTests {
    static let folder = modelFixture("qwen2_vl_processor")

    static func expected() throws -> JSONValue { try JSONValue.parse(contentsOf: "\(folder)/expected.json") }

    static func ints(_ v: JSONValue?) -> [Int] { v?.arrayValue?.compactMap(\.intValue) ?? [] }

    @Test func imagesMatchTransformers() throws {
        let processor = try Qwen2VLImageProcessor(folder: Self.folder)
        #expect(processor.minPixels == 56 * 56 && processor.maxPixels == 28 * 28 * 8)
        let tensors = try SafeTensorsFile(path: "\(Self.folder)/expected.safetensors")
        let cases = try #require(Self.expected()["images"]?.arrayValue)
        #expect(cases.count == 8)
        var images: [RGBImage] = [], rows: [Tensor] = [], largest = 0.0
        for (i, c) in cases.enumerated() {
            let file = try #require(c["file"]?.stringValue)
            let image = try RGBImage(contentsOfFile: "\(Self.folder)/\(file)")
            let inputs = try processor.preprocess([image])
            let want = try tensors.tensor("pixel_values\(i)")
            #expect(inputs.pixels.shape == want.shape, "\(file): \(inputs.pixels.shape) vs \(want.shape)")
            if inputs.pixels.shape == want.shape {
                let diff = try maxAbsDifference(inputs.pixels, want)
                largest = max(largest, diff)
                #expect(diff < 1e-5, "\(file): pixel values differ by \(diff)")
            }
            let grid = try tensors.tensor("image_grid_thw\(i)").toArray(Int64.self).map(Int.init)
            #expect(grid == Self.ints(c["grid_thw"]))
            #expect(inputs.grids == [grid], "\(file)")
            let resized = Self.ints(c["resized"])
            let size = try processor.processedSize(width: image.width, height: image.height)
            #expect([size.height, size.width] == resized, "\(file)")
            let tokens = try #require(c["tokens"]?.intValue)
            #expect(inputs.tokenCounts == [tokens], "\(file): \(inputs.tokenCounts) image tokens, transformers \(tokens)")
            #expect(processor.tokenCount(width: image.width, height: image.height) == tokens)
            #expect(inputs.originalSizes == [PixelSize(height: image.height, width: image.width)])
            images.append(image)
            rows.append(want)
        }
        print("Qwen2-VL processor: largest pixel difference from transformers \(largest)")
        // A batch is the images' rows one after another.
        let batch = try processor.preprocess(images)
        #expect(try maxAbsDifference(batch.pixels, Tensor.cat(rows, dim: 0)) < 1e-5)
        #expect(batch.grids?.count == images.count && batch.tokenCounts.count == images.count)
    }

    @Test func smartResizeMatchesTransformers() throws {
        let cases = try #require(Self.expected()["smart_resize"]?.arrayValue)
        #expect(cases.count >= 30)
        var errors = 0
        for c in cases {
            let size = Self.ints(c["size"])
            let (factor, lo, hi) = (c["factor"]!.intValue!, c["min_pixels"]!.intValue!, c["max_pixels"]!.intValue!)
            let call = { try Qwen2VLImageProcessor.smartResize(height: size[0], width: size[1], factor: factor, minPixels: lo, maxPixels: hi) }
            if c["resized"]?.stringValue == "error" {
                errors += 1
                #expect(performing: { _ = try call() }, throws: { "\($0)".contains("\(size[0])x\(size[1])") && "\($0)".contains("200") })
            } else {
                let got = try call()
                #expect([got.height, got.width] == Self.ints(c["resized"]), "smart_resize(\(size), \(factor), \(lo), \(hi))")
            }
        }
        #expect(errors == 3)
        // Python's round: 70 / 28 = 2.5 goes to 2, 42 / 28 = 1.5 to 2.
        #expect(try Qwen2VLImageProcessor.smartResize(height: 70, width: 42, factor: 28, minPixels: 0, maxPixels: 1 << 30) == (56, 56))
    }

    /// A folder with only `preprocessor_config.json`, holding `config` (pretty-printed fixture text edited).
    static func folder(withConfig edit: (String) -> String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qwen2-vl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let original = try String(contentsOfFile: "\(folder)/preprocessor_config.json", encoding: .utf8)
        try edit(original).write(toFile: "\(dir)/preprocessor_config.json", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func missingAndOverridingKeys() throws {
        // size without longest_edge and no max_pixels: transformers fails at the first image; here loading fails.
        let broken = try Self.folder { $0.replacingOccurrences(of: "\"longest_edge\": 6272,", with: "") }
        #expect(performing: { _ = try Qwen2VLImageProcessor(folder: broken) }, throws: { error in
            "\(error)".contains("\(broken)/preprocessor_config.json") && "\(error)".contains("size.longest_edge is missing")
        })
        // min_pixels / max_pixels (transformers 4's keys) override "size", as transformers' constructor does.
        let legacy = try Self.folder {
            $0.replacingOccurrences(of: "\"merge_size\": 2,", with: "\"merge_size\": 2, \"min_pixels\": 1000, \"max_pixels\": 20000,")
        }
        let p = try Qwen2VLImageProcessor(folder: legacy)
        #expect(p.minPixels == 1000 && p.maxPixels == 20000)
        // No "size" at all: transformers' defaults (56², 28² · 1280).
        let bare = try Self.folder { _ in "{\"patch_size\": 14}" }
        let d = try Qwen2VLImageProcessor(folder: bare)
        #expect(d.minPixels == 3136 && d.maxPixels == 1_003_520 && d.mergeSize == 2 && d.temporalPatchSize == 2)
        #expect(d.tokenCount(width: 300, height: 200) == 7 * 11)  // transformers: grid [1, 14, 22]
        let wrong = try Self.folder { $0.replacingOccurrences(of: "\"patch_size\": 14", with: "\"patch_size\": \"14\"") }
        #expect(performing: { _ = try Qwen2VLImageProcessor(folder: wrong) }, throws: { "\($0)".contains("patch_size is not an integer") })
        // An image smart_resize refuses: preprocess names its size, the count is 0.
        #expect(d.tokenCount(width: 201, height: 1) == 0)
        #expect(performing: { _ = try d.preprocess([RGBImage(width: 201, height: 1, pixels: [UInt8](repeating: 0, count: 603))]) },
                throws: { "\($0)".contains("1x201") })
    }
}
