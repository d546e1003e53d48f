import Foundation
import Testing

@testable import Images

/// Parity with Pillow 13 + transformers 5.23 (the slow, PIL-backed CLIPImageProcessor / LlavaImageProcessor).
@Suite("Parity with Pillow and transformers")
struct ParityTests {
    static let manifest = Fixtures.manifest

    func processor(for c: Fixtures.Case) throws -> ImageProcessor {
        if let text = c.config {
            return ImageProcessor(config: try ImageProcessorConfig(json: Data(text.utf8), source: c.name))
        }
        let folder = try #require(c.config_file)
        return try ImageProcessor(modelFolder: Fixtures.url(folder))
    }

    /// Runs every case of a group; returns the worst difference per case.
    func run(group: String) throws -> [(String, Double)] {
        let cases = Self.manifest.cases.filter { $0.group == group }
        #expect(!cases.isEmpty, "no fixtures for group \(group)")
        var results: [(String, Double)] = []
        for c in cases {
            let image = try RGBImage(contentsOf: Fixtures.url(c.image), options: c.load.options)
            let out = try processor(for: c).preprocess(image)
            #expect(out.shape == c.shape, "\(c.name): shape \(out.shape), expected \(c.shape)")
            guard out.shape == c.shape else { continue }
            let diff = maxAbsDifference(out.values, Fixtures.floats(c.offset, c.count))
            #expect(diff <= c.tolerance, "\(c.name): max abs difference \(diff) > \(c.tolerance)")
            results.append((c.name, diff))
        }
        let worst = results.map(\.1).max() ?? 0
        print("parity \(group): \(results.count) cases, max abs difference \(worst)")
        return results
    }

    @Test("CLIP preprocessing of every fixture image (shortest edge 48, crop 40)")
    func clip() throws {
        let results = try run(group: "clip")
        #expect(results.count >= 20)
        for (name, diff) in results where diff > 1e-5 { print("  \(name): \(diff)") }
    }

    @Test("a 224x224 image at 224/224 needs no resize and matches to 1e-5")
    func clip224() throws {
        let results = try run(group: "clip224")
        #expect(results.count == 1)
        #expect(results.allSatisfy { $0.1 <= 1e-5 })
    }

    @Test("LLaVA-1.5 pad mode (LlavaImageProcessor, do_pad=True)")
    func pad() throws {
        #expect(try run(group: "pad").count >= 5)
    }

    @Test("transparency composited onto white (processor given the opened image)")
    func composite() throws {
        #expect(try run(group: "composite").count >= 5)
    }

    @Test("16-bit grayscale reduced to its high byte")
    func gray16Scaled() throws {
        #expect(try run(group: "gray16-scale").count == 1)
    }

    @Test("configs read from preprocessor_config.json and processor_config.json folders")
    func configFolders() throws {
        #expect(try run(group: "config").count == 4)
        let legacy = try ImageProcessorConfig(modelFolder: Fixtures.url("configs/llava-hf-layout"))
        #expect(legacy.size == .shortestEdge(56))
        #expect(legacy.cropSize == PixelSize(height: 44, width: 36))
        #expect(legacy.imageMean == [0.5, 0.5, 0.5])
        let nested = try ImageProcessorConfig(modelFolder: Fixtures.url("configs/transformers5-layout"))
        #expect(nested.size == .exact(PixelSize(height: 40, width: 52)))
        #expect(nested.doPad && !nested.doCenterCrop)
        #expect(nested.resample == .bilinear)
        #expect(nested.processorType == "LlavaImageProcessor")
        #expect(nested.padColor == RGB(122, 116, 104))
    }

    @Test("decoded pixels equal load_image's")
    func decodedPixels() throws {
        var worstPNG = 0, worstJPEG = 0, compared = 0
        for entry in Self.manifest.images {
            guard let slice = entry.rgb else { continue }
            // load_image is convert("RGB") alone: colour keys are still pixels (the processor whitens them later).
            let options = ImageLoadOptions(alpha: .discard, gray16: .clipLikePillow)
            let image = try RGBImage(contentsOf: Fixtures.url(entry.file), options: options)
            #expect(image.width == entry.width && image.height == entry.height, "\(entry.file): size")
            guard image.width == entry.width && image.height == entry.height else { continue }
            let diff = maxAbsDifference(image.pixels, Fixtures.u8(slice.offset, slice.count))
            if entry.file.hasSuffix(".png") {
                #expect(diff == 0, "\(entry.file): PNG pixels differ by up to \(diff)")
                worstPNG = max(worstPNG, diff)
            } else {
                // Same IDCT (libjpeg-turbo's accurate integer one) on both sides; allow for library versions.
                #expect(diff <= 1, "\(entry.file): JPEG pixels differ by up to \(diff)")
                worstJPEG = max(worstJPEG, diff)
            }
            compared += 1
        }
        print("decoded pixels: \(compared) images, max difference PNG \(worstPNG), JPEG \(worstJPEG)")
        #expect(compared >= 30)
    }

    @Test("Pillow Image.resize, bit for bit, for every convolution filter")
    func resize() throws {
        var worst = 0
        for c in Self.manifest.resize {
            let image = try RGBImage(contentsOf: Fixtures.url(c.image))
            let filter = try #require(ResampleFilter(rawValue: c.filter))
            let out = image.resized(width: c.width, height: c.height, filter: filter)
            let diff = maxAbsDifference(out.pixels, Fixtures.u8(c.offset, c.count))
            #expect(diff == 0, "\(c.image) -> \(c.width)x\(c.height) filter \(c.filter): differs by \(diff)")
            worst = max(worst, diff)
        }
        print("resize: \(Self.manifest.resize.count) cases, max difference \(worst)")
    }
}
