import Foundation
import Images
import Torch

/// Qwen2-VL's image processor as transformers 5.23's PIL backend (`Qwen2VLImageProcessorPil`) runs it: each image
/// is resized (Pillow's bicubic) to `smartResize`'s size, a multiple of patch × merge on both sides, rescaled and
/// normalised, then cut into patch rows. Transformers picks its torchvision class instead when torchvision is
/// installed; that resize differs from Pillow's in the last bits, so the PIL class is the one this matches.
///
/// `pixels` is [Σ patches, 3 · temporal · patch²]: each image's patches in block-major order (every merge × merge
/// block contiguous, blocks in raster order, as the vision rotary and the patch merger take them), each row laid out
/// as (channel, temporal, y, x) with the still image copied into every temporal slot. `grids` holds each image's
/// `image_grid_thw` [1, gh, gw]; an image stands for gh · gw / merge² `<|image_pad|>` tokens.
struct Qwen2VLImageProcessor: VLMImageProcessor {
    /// Rescale and normalisation (resizing is done here, to smart_resize's size).
    let processor: ImageProcessor
    let doResize: Bool
    let patchSize: Int
    let mergeSize: Int
    let temporalPatchSize: Int
    let minPixels: Int
    let maxPixels: Int

    /// transformers' class defaults, used when the config has no "size" at all.
    static let defaultMinPixels = 56 * 56
    static let defaultMaxPixels = 28 * 28 * 1280

    var factor: Int { patchSize * mergeSize }
    var rowLength: Int { 3 * temporalPatchSize * patchSize * patchSize }

    init(patchSize: Int = 14, mergeSize: Int = 2, temporalPatchSize: Int = 2, minPixels: Int = defaultMinPixels,
         maxPixels: Int = defaultMaxPixels, settings: ImageProcessorConfig = .clip) {
        var settings = settings
        doResize = settings.doResize
        // Only rescale and normalise are left to ImageProcessor: Qwen2-VL neither pads nor crops.
        settings.doResize = false
        settings.doCenterCrop = false
        settings.doPad = false
        processor = ImageProcessor(config: settings)
        self.patchSize = patchSize
        self.mergeSize = mergeSize
        self.temporalPatchSize = temporalPatchSize
        self.minPixels = minPixels
        self.maxPixels = maxPixels
    }

    /// Reads a model folder's processor settings: mean, std, rescale and resample through the project's
    /// `ImageProcessorConfig`, the Qwen keys from the same file. The pixel bounds are `min_pixels` / `max_pixels`
    /// when given (they override "size", as transformers' constructor does), else v5's `size.shortest_edge` /
    /// `size.longest_edge` (pixel counts, not edges); with no "size" at all, transformers' defaults.
    init(folder: String) throws {
        let settings = try ImageProcessorConfig(modelFolder: URL(fileURLWithPath: folder))
        let c = try Self.settingsReader(folder: folder)
        func positive(_ key: String, _ value: Int) throws -> Int {
            guard value > 0 else { throw ModelError("\(c.file): \(c.prefix)\(key) must be positive, got \(value)") }
            return value
        }
        let size = try c.object("size")
        func bound(_ key: String, _ sizeKey: String, _ defaultValue: Int) throws -> Int {
            if c.has(key) { return try positive(key, c.int(key)) }
            guard let size else { return defaultValue }
            guard size.has(sizeKey) else {
                throw ModelError("\(c.file): \(c.prefix)size.\(sizeKey) is missing (and there is no \(key)); Qwen2-VL needs both pixel bounds")
            }
            return try positive("size.\(sizeKey)", size.int(sizeKey))
        }
        self.init(patchSize: try positive("patch_size", c.int("patch_size", 14)),
                  mergeSize: try positive("merge_size", c.int("merge_size", 2)),
                  temporalPatchSize: try positive("temporal_patch_size", c.int("temporal_patch_size", 2)),
                  minPixels: try bound("min_pixels", "shortest_edge", Self.defaultMinPixels),
                  maxPixels: try bound("max_pixels", "longest_edge", Self.defaultMaxPixels),
                  settings: settings)
    }

    /// The object the image settings live in, found as `ImageProcessorConfig` finds it: `processor_config.json`'s
    /// "image_processor" entry, else `preprocessor_config.json`.
    static func settingsReader(folder: String) throws -> ConfigReader {
        let processorFile = (folder as NSString).appendingPathComponent("processor_config.json")
        if FileManager.default.fileExists(atPath: processorFile), let nested = try ConfigReader.load(processorFile).object("image_processor") {
            return nested
        }
        return try ConfigReader.load((folder as NSString).appendingPathComponent("preprocessor_config.json"))
    }

    /// transformers' `smart_resize`: both sides rounded to multiples of `factor` (Python's round, half to even),
    /// then scaled by one common factor into [minPixels, maxPixels]. As in transformers, the bounds are checked once:
    /// the floor of one `factor` per side (max branch) or the upscale (min branch) may leave the area outside them.
    static func smartResize(height: Int, width: Int, factor: Int, minPixels: Int, maxPixels: Int) throws
        -> (height: Int, width: Int) {
        guard height > 0, width > 0 else { throw ModelError("Qwen2-VL cannot resize an empty \(height)x\(width) (h x w) image") }
        guard factor > 0 else { throw ModelError("Qwen2-VL's resize factor (patch_size x merge_size) must be positive, got \(factor)") }
        let ratio = Double(max(height, width)) / Double(min(height, width))
        guard ratio <= 200 else {
            throw ModelError("a \(height)x\(width) (h x w) image has aspect ratio \(ratio); Qwen2-VL's smart_resize accepts at most 200")
        }
        let (h, w, f) = (Double(height), Double(width), Double(factor))
        var outH = Int((h / f).rounded(.toNearestOrEven)) * factor
        var outW = Int((w / f).rounded(.toNearestOrEven)) * factor
        if outH * outW > maxPixels {
            let beta = (Double(height * width) / Double(maxPixels)).squareRoot()
            outH = max(factor, Int((h / beta / f).rounded(.down)) * factor)
            outW = max(factor, Int((w / beta / f).rounded(.down)) * factor)
        } else if outH * outW < minPixels {
            let beta = (Double(minPixels) / Double(height * width)).squareRoot()
            outH = Int((h * beta / f).rounded(.up)) * factor
            outW = Int((w * beta / f).rounded(.up)) * factor
        }
        return (outH, outW)
    }

    /// The size an image is processed at.
    func processedSize(width: Int, height: Int) throws -> (height: Int, width: Int) {
        if doResize {
            return try Self.smartResize(height: height, width: width, factor: factor, minPixels: minPixels, maxPixels: maxPixels)
        }
        guard height > 0, width > 0, height % factor == 0, width % factor == 0 else {
            throw ModelError("with do_resize false, a \(height)x\(width) (h x w) image must be a multiple of \(factor) on both sides")
        }
        return (height, width)
    }

    /// One image's patch rows and its grid [1, gh, gw].
    func patches(_ image: RGBImage) throws -> (rows: [Float], grid: [Int]) {
        let size = try processedSize(width: image.width, height: image.height)
        let resized = size.height == image.height && size.width == image.width
            ? image : image.resized(width: size.width, height: size.height, filter: processor.config.resample)
        let chw = processor.preprocess(resized).values
        let (gh, gw, p, m, t) = (size.height / patchSize, size.width / patchSize, patchSize, mergeSize, temporalPatchSize)
        let plane = size.height * size.width
        var rows = [Float]()
        rows.reserveCapacity(gh * gw * rowLength)
        for bh in 0..<(gh / m) {
            for bw in 0..<(gw / m) {
                for mh in 0..<m {
                    for mw in 0..<m {
                        let top = (bh * m + mh) * p, left = (bw * m + mw) * p
                        for c in 0..<3 {
                            for _ in 0..<t {
                                for y in 0..<p {
                                    let start = c * plane + (top + y) * size.width + left
                                    rows += chw[start..<(start + p)]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (rows, [1, gh, gw])
    }

    func preprocess(_ images: [RGBImage]) throws -> ImageInputs {
        var values = [Float](), grids = [[Int]]()
        for image in images {
            let (rows, grid) = try patches(image)
            values += rows
            grids.append(grid)
        }
        let pixels = try Tensor(values, shape: [values.count / rowLength, rowLength])
        return ImageInputs(pixels: pixels, tokenCounts: grids.map { $0[1] * $0[2] / (mergeSize * mergeSize) },
                           originalSizes: images.map { PixelSize(height: $0.height, width: $0.width) }, grids: grids)
    }

    /// gh · gw / merge² (Qwen2VLProcessor's count); 0 for a size smart_resize refuses (`preprocess` says why).
    func tokenCount(width: Int, height: Int) -> Int {
        guard let size = try? processedSize(width: width, height: height) else { return 0 }
        return (size.height / patchSize) * (size.width / patchSize) / (mergeSize * mergeSize)
    }
}

extension ImageInputs {
    /// Qwen2-VL inputs from patch rows [Σ patches, values] and their `image_grid_thw` [N, 3] as transformers'
    /// processor returns them, keeping the images at `indices` (nil: all), in that order; each stands for
    /// t · gh · gw / merge² image tokens.
    public init(patchRows: Tensor, imageGridTHW: Tensor, merge: Int = 2, images indices: [Int]? = nil) throws {
        guard imageGridTHW.rank == 2, imageGridTHW.size(1) == 3 else { throw ModelError("image_grid_thw \(imageGridTHW.shape) is not [N, 3]") }
        let grids = try intRows(imageGridTHW)
        let patches = grids.map { $0[0] * $0[1] * $0[2] }
        guard patchRows.rank == 2, patchRows.size(0) == patches.reduce(0, +) else {
            throw ModelError("\(patchRows.shape) patch rows do not match the grids \(grids)")
        }
        let chosen = indices ?? Array(grids.indices)
        guard chosen.allSatisfy(grids.indices.contains) else { throw ModelError("image indices \(chosen) outside the \(grids.count) images") }
        let pieces = try chosen.map { i in try patchRows.narrow(0, start: patches[..<i].reduce(0, +), length: patches[i]) }
        self.init(pixels: pieces.count == 1 ? pieces[0] : try Tensor.cat(pieces), tokenCounts: chosen.map { patches[$0] / (merge * merge) },
                  grids: chosen.map { grids[$0] })
    }
}
