import Foundation
import Testing

@testable import Images

@Suite("Random resized crop")
struct RandomResizedCropTests {
    @Test("the generator reproduces torch.manual_seed + uniform_ / randint")
    func generator() {
        for d in Fixtures.manifest.uniform {
            var rng = TorchMersenneTwister(seed: d.seed)
            let draws = (0..<d.draws.count).map { _ in rng.uniform(from: d.from, to: d.to) }
            #expect(draws == d.draws, "seed \(d.seed)")
            let ints = (0..<d.randint1000.count).map { _ in rng.randomInt(below: 1000) }
            #expect(ints == d.randint1000, "seed \(d.seed)")
            let big = (0..<d.randint_big.count).map { _ in rng.randomInt(below: (1 << 30) + 3) }
            #expect(big == d.randint_big, "seed \(d.seed)")
        }
    }

    @Test("boxes equal torchvision's get_params after torch.manual_seed")
    func boxesMatchTorch() {
        var compared = 0
        for c in Fixtures.manifest.crops {
            var rng = TorchMersenneTwister(seed: c.seed)
            let box = RandomResizedCrop.mdpo.box(width: c.width, height: c.height, using: &rng)
            #expect([box.x, box.y, box.width, box.height] == c.box, "seed \(c.seed), \(c.width)x\(c.height)")
            compared += 1
        }
        #expect(compared >= 300)
    }

    @Test("the cropped image equals PIL crop + bilinear resize")
    func croppedImage() throws {
        for c in Fixtures.manifest.crops {
            guard let file = c.image, let offset = c.offset, let count = c.count else { continue }
            let image = try RGBImage(contentsOf: Fixtures.url(file))
            let (box, out) = RandomResizedCrop.mdpo.apply(to: image, seed: c.seed)
            #expect([box.x, box.y, box.width, box.height] == c.box)
            #expect(out.width == image.width && out.height == image.height)
            #expect(maxAbsDifference(out.pixels, Fixtures.u8(offset, count)) == 0, "seed \(c.seed)")
        }
    }

    @Test("deterministic per seed; area and aspect ratio within bounds")
    func bounds() {
        let crop = RandomResizedCrop.mdpo
        for (w, h) in [(1000, 1000), (640, 480), (336, 336), (1000, 300)] {
            var distinct = Set<PixelRect>()
            for seed in UInt64(0)..<300 {
                var a = TorchMersenneTwister(seed: seed), b = TorchMersenneTwister(seed: seed)
                let box = crop.box(width: w, height: h, using: &a)
                #expect(box == crop.box(width: w, height: h, using: &b))
                distinct.insert(box)
                #expect(box.x >= 0 && box.y >= 0 && box.x + box.width <= w && box.y + box.height <= h)
                // Sides are rounded to whole pixels, so the area may stray from the drawn target by the rounding
                // of each side (at most half a pixel).
                let area = Double(w * h)
                let lowest = (Double(box.width) - 0.5) * (Double(box.height) - 0.5) / area
                let highest = (Double(box.width) + 0.5) * (Double(box.height) + 0.5) / area
                #expect(lowest <= 0.2 && highest >= 0.01, "seed \(seed) \(w)x\(h): \(box)")
                let fraction = Double(box.width * box.height) / area
                #expect(fraction >= 0.01 * 0.97 && fraction <= 0.2 * 1.03, "seed \(seed) \(w)x\(h): area \(fraction)")
                let ratio = Double(box.width) / Double(box.height)
                let slack = 0.5 / Double(min(box.width, box.height))  // rounding of either side
                #expect(ratio >= 0.75 * (1 - 2 * slack) && ratio <= 4.0 / 3.0 * (1 + 2 * slack), "seed \(seed): ratio \(ratio)")
            }
            #expect(distinct.count > 250, "seeds should give different crops")
        }
        // On a large image the rounding is negligible: the exact bounds hold.
        for seed in UInt64(0)..<200 {
            var rng = TorchMersenneTwister(seed: seed)
            let box = crop.box(width: 4000, height: 4000, using: &rng)
            let fraction = Double(box.width * box.height) / 16_000_000
            #expect(fraction >= 0.0099 && fraction <= 0.2005, "seed \(seed): \(fraction)")
        }
        // Too small for any attempt to fit: torchvision's central fallback (here the whole image).
        var rng = TorchMersenneTwister(seed: 1)
        #expect(crop.box(width: 1, height: 1, using: &rng) == PixelRect(x: 0, y: 0, width: 1, height: 1))
        var rng2 = TorchMersenneTwister(seed: 1)
        #expect(crop.box(width: 3, height: 200, using: &rng2).height <= 200)
    }
}

@Suite("Processor configs")
struct ConfigTests {
    func temporaryFolder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("realign-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("missing keys take CLIPImageProcessor's defaults; old int sizes are understood")
    func defaults() throws {
        #expect(try ImageProcessorConfig(json: Data("{}".utf8)) == .clip)
        let old = try ImageProcessorConfig(json: Data(#"{"size": 336, "crop_size": 336, "image_mean": 0.5, "image_std": [0.5, 0.5, 0.5]}"#.utf8))
        #expect(old.size == .shortestEdge(336))
        #expect(old.cropSize == PixelSize(height: 336, width: 336))
        #expect(old.imageMean == [0.5])
        let pair = try ImageProcessorConfig(json: Data(#"{"size": [30, 40], "crop_size": [10, 20]}"#.utf8))
        #expect(pair.size == .exact(PixelSize(height: 30, width: 40)) && pair.cropSize == PixelSize(height: 10, width: 20))
        #expect(ImageProcessorConfig.llava15Pad.padColor == RGB(122, 116, 104))
    }

    @Test("bad files and wrong-typed keys name the file and the key")
    func badConfigs() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("preprocessor_config.json")
        let cases: [(String, String)] = [
            (#"{"size": "big"}"#, #"key "size": expected an integer or an object, got a string ("big")"#),
            (#"{"size": {"longest_edge": 5}}"#, #"key "size": expected {"shortest_edge": N} or {"height": H, "width": W}, got keys ["longest_edge"]"#),
            (#"{"size": {"shortest_edge": -4}}"#, #"key "size.shortest_edge": expected a positive integer, got -4"#),
            (#"{"crop_size": {"height": 3}}"#, #"key "crop_size": expected {"height": H, "width": W}"#),
            (#"{"crop_size": {"height": 3, "width": 2.5}}"#, #"key "crop_size.width": expected an integer, got a number"#),
            (#"{"do_resize": "yes"}"#, #"key "do_resize": expected true or false, got a string ("yes")"#),
            (#"{"do_pad": 1}"#, #"key "do_pad": expected true or false, got a number"#),
            (#"{"image_mean": [0.5, 0.5]}"#, #"key "image_mean": expected 3 values (one per RGB channel), got 2"#),
            (#"{"image_std": [0.5, "a", 0.5]}"#, #"key "image_std": expected numbers, found a string ("a")"#),
            (#"{"image_std": [0.5, 0, 0.5]}"#, #"key "image_std": a standard deviation of 0 would divide by zero"#),
            (#"{"rescale_factor": null, "resample": 0}"#, #"key "resample": nearest-neighbour resampling (0) is not supported"#),
            (#"{"resample": 9}"#, #"key "resample": unknown resampling filter 9 (expected 1...7)"#),
            (#"{"rescale_factor": [1]}"#, #"key "rescale_factor": expected a number, got a list"#),
            (#"[1, 2]"#, "expected a JSON object at the top level, got a list"),
        ]
        for (text, message) in cases {
            try Data(text.utf8).write(to: file)
            let error = #expect(throws: ImageError.self) { try ImageProcessorConfig(contentsOf: file) }
            #expect(error?.description == "\(file.path): \(message)", "for \(text)")
            // The same through the folder.
            let viaFolder = #expect(throws: ImageError.self) { try ImageProcessorConfig(modelFolder: dir) }
            #expect(viaFolder?.source == file.path)
        }
        try Data("{ not json".utf8).write(to: file)
        let invalid = #expect(throws: ImageError.self) { try ImageProcessorConfig(contentsOf: file) }
        #expect(invalid?.description.hasPrefix("\(file.path): not valid JSON") == true)

        // processor_config.json with the nested entry: errors carry the nested key path.
        let nested = dir.appendingPathComponent("processor_config.json")
        try Data(#"{"image_processor": {"crop_size": true}}"#.utf8).write(to: nested)
        let inner = #expect(throws: ImageError.self) { try ImageProcessorConfig(modelFolder: dir) }
        #expect(inner?.description == "\(nested.path): key \"image_processor.crop_size\": expected an integer or an object, got a boolean")
        try Data(#"{"image_processor": 5}"#.utf8).write(to: nested)
        let notObject = #expect(throws: ImageError.self) { try ImageProcessorConfig(modelFolder: dir) }
        #expect(notObject?.description == "\(nested.path): key \"image_processor\": expected an object, got a number")
        // Without the nested entry, processor_config.json is not the image processor's: the other file is used.
        try Data(#"{"processor_class": "LlavaProcessor"}"#.utf8).write(to: nested)
        try Data(#"{"size": {"shortest_edge": 64}}"#.utf8).write(to: file)
        #expect(try ImageProcessorConfig(modelFolder: dir).size == .shortestEdge(64))

        let emptyDir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: emptyDir) }
        let none = #expect(throws: ImageError.self) { try ImageProcessorConfig(modelFolder: emptyDir) }
        #expect(none?.source == emptyDir.path)
    }

    @Test("output sizes follow transformers' rules")
    func sizes() {
        let p = ImageProcessor(config: .clip)
        #expect(p.resizedSize(height: 300, width: 1000) == PixelSize(height: 224, width: 746))
        #expect(p.resizedSize(height: 1000, width: 300) == PixelSize(height: 746, width: 224))
        #expect(p.resizedSize(height: 1, width: 1) == PixelSize(height: 224, width: 224))
        var c = ImageProcessorConfig.clip
        c.size = .shortestEdge(48, longestEdge: 60)
        let q = ImageProcessor(config: c)
        #expect(q.resizedSize(height: 100, width: 200) == PixelSize(height: 30, width: 60))
        // center crop pads a small image with zeros, centred with transformers' offsets.
        let tiny = RGBImage(width: 3, height: 2, fill: RGB(9, 9, 9))
        let cropped = ImageProcessor.centerCrop(tiny, to: PixelSize(height: 5, width: 6))
        #expect(cropped.width == 6 && cropped.height == 5)
        #expect(cropped[2, 2] == RGB(9, 9, 9) && cropped[1, 2] == RGB(0, 0, 0) && cropped[4, 3] == RGB(9, 9, 9) && cropped[2, 1] == RGB(0, 0, 0))
    }

    @Test("batches stack into [N, 3, H, W]")
    func batch() throws {
        var c = ImageProcessorConfig.clip
        c.size = .shortestEdge(16)
        c.cropSize = PixelSize(height: 16, width: 16)
        let p = ImageProcessor(config: c)
        let a = RGBImage(width: 20, height: 30, fill: RGB(200, 10, 0)), b = RGBImage(width: 50, height: 17, fill: RGB(0, 0, 0))
        let out = try p.preprocess([a, b])
        #expect(out.shape == [2, 3, 16, 16])
        #expect(Array(out.values[0..<768]) == p.preprocess(a).values)
        #expect(Array(out.values[768...]) == p.preprocess(b).values)
    }
}
