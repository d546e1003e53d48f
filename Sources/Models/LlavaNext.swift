import Foundation
import Images
import JSON
import Tokenizers
import Torch

/// LlavaNextForConditionalGeneration (LLaVA-1.6): LLaVA's tower, projector and decoder (LLaMA/Vicuna or Mistral)
/// with "anyres" images: each image becomes a squashed base tile plus the tiles of its best pinpoint resolution;
/// the tiles' features are re-gridded, the padding is cut back to the image's aspect ratio and every feature row
/// ends with `image_newline`.
public final class LlavaNextForConditionalGeneration: LlavaForConditionalGeneration, @unchecked Sendable {
    let image_newline: Tensor

    public override init(_ c: LlavaConfig) throws {
        image_newline = try Tensor.zeros([c.text.hiddenSize])
        try super.init(c)
    }

    static let nextRegistryEntry = VLMRegistry.Entry(
        modelType: "llava_next",
        load: { folder, config, dtype, device in
            let c = try LlavaConfig(config, modelType: "llava_next")
            let model = try ParameterInitialisation.skipped { try LlavaNextForConditionalGeneration(c) }
            try ModelLoader.load(model, from: folder, dtype: dtype, device: device) { model.sanitize($0) }
            return model
        },
        processor: { folder in try AnyResImageInputs(folder: folder) },
        chatFormat: { ChatFormat.detect(config: $0) })

    /// Packed features [Σ tokens, hidden]: per image the base tile's features, then the unpadded tile grid row by
    /// row, each row closed by `image_newline`.
    public override func imageFeatures(_ images: ImageInputs) throws -> Tensor {
        let tiles = images.tiles.isEmpty ? Array(repeating: 1, count: images.count) : images.tiles
        guard images.originalSizes.count == tiles.count, tiles.reduce(0, +) == images.pixels.size(0) else {
            throw ModelError("LLaVA-NeXT images need their tile counts and original sizes (\(tiles.count) images, \(images.pixels.size(0)) tiles, \(images.originalSizes.count) sizes)")
        }
        let all = try imageFeatures(images.pixels)  // [tiles, side * side, hidden]
        let side = config.vision.patchesPerSide, hidden = all.size(-1)
        guard all.size(1) == side * side else {
            throw ModelError("LLaVA-NeXT packs the tower's patch grid: vision_feature_select_strategy must be default (no CLS)")
        }
        let newline = try image_newline.to(dtype: all.dtype)
        var packed: [Tensor] = []
        var start = 0
        for (i, count) in tiles.enumerated() {
            let features = try all.narrow(0, start: start, length: count)
            start += count
            let base = try features.select(0, 0)
            guard count > 1 else {
                packed += [base, try newline.unsqueeze(0)]
                continue
            }
            let grid = AnyRes.gridShape(image: images.originalSizes[i], pinpoints: config.gridPinpoints, tile: config.vision.imageSize)
            guard grid.rows * grid.columns == count - 1 else {
                throw ModelError("image \(i): \(count - 1) tiles, but its size \(images.originalSizes[i]) selects a \(grid.rows)x\(grid.columns) grid")
            }
            // [rows, cols, side, side, D] -> [D, rows * side, cols * side]
            var map = try features.narrow(0, start: 1, length: count - 1).view(grid.rows, grid.columns, side, side, hidden)
                .permute(4, 0, 2, 1, 3).contiguous().view(hidden, grid.rows * side, grid.columns * side)
            let kept = AnyRes.unpadded(height: grid.rows * side, width: grid.columns * side, original: images.originalSizes[i])
            map = try map.narrow(1, start: kept.top, length: kept.height).narrow(2, start: kept.left, length: kept.width)
            packed.append(base)
            // An image far wider or taller than its grid can keep no feature row at all (nor a newline).
            guard kept.height > 0 else { continue }
            let rows = try Tensor.cat([map, newline.view(hidden, 1, 1).expand([hidden, kept.height, 1])], dim: 2)
            packed.append(try rows.contiguous().view(hidden, kept.height * (kept.width + 1)).transpose(0, 1))
        }
        return try Tensor.cat(packed, dim: 0)
    }

    /// The base tile's pooled CLIP output (the whole image, squashed), L2-normalised.
    public override func pooledImageEmbedding(_ images: ImageInputs) throws -> Tensor {
        var index: [Int] = []
        var start = 0
        for count in (images.tiles.isEmpty ? Array(repeating: 1, count: images.count) : images.tiles) {
            index.append(start)
            start += count
        }
        let base = try images.pixels.indexSelect(0, Tensor(index))
        return try super.pooledImageEmbedding(ImageInputs(pixels: base, tokenCounts: images.tokenCounts))
    }

    public override func sanitize(_ key: String) -> String? {
        key == "model.image_newline" ? "image_newline" : super.sanitize(key)
    }

    public override func transformersName(_ ours: String) -> String {
        ours == "image_newline" ? "model.image_newline" : super.transformersName(ours)
    }

    public override func part(_ ours: String) -> VLMPart {
        ours == "image_newline" ? .projector : super.part(ours)
    }
}

/// The anyres geometry, as transformers' `select_best_resolution`, `get_patch_output_size` and `unpad_image`
/// compute it.
enum AnyRes {
    /// The pinpoint that keeps most of the image's resolution, then wastes least; the first on a tie.
    static func bestResolution(image: PixelSize, pinpoints: [PixelSize]) -> PixelSize {
        var best = pinpoints[0]
        var bestEffective = 0, bestWaste = Int.max
        for p in pinpoints {
            let scale = min(Double(p.width) / Double(image.width), Double(p.height) / Double(image.height))
            let w = Int(Double(image.width) * scale), h = Int(Double(image.height) * scale)
            let effective = min(w * h, image.width * image.height)
            let waste = p.width * p.height - effective
            if effective > bestEffective || (effective == bestEffective && waste < bestWaste) {
                best = p
                bestEffective = effective
                bestWaste = waste
            }
        }
        return best
    }

    /// The size an image is resized to inside `target`, keeping its aspect ratio.
    static func fittedSize(image: PixelSize, target: PixelSize) -> PixelSize {
        let scaleW = Double(target.width) / Double(image.width), scaleH = Double(target.height) / Double(image.height)
        if scaleW < scaleH {
            return PixelSize(height: min(Int((Double(image.height) * scaleW).rounded(.up)), target.height), width: target.width)
        }
        return PixelSize(height: target.height, width: min(Int((Double(image.width) * scaleH).rounded(.up)), target.width))
    }

    static func gridShape(image: PixelSize, pinpoints: [PixelSize], tile: Int) -> (rows: Int, columns: Int) {
        let best = bestResolution(image: image, pinpoints: pinpoints)
        return (best.height / tile, best.width / tile)
    }

    /// Python's `round(x, 7)`, enough to snap float noise before `int()` truncates.
    static func round7(_ x: Double) -> Double { (x * 1e7).rounded(.toNearestOrEven) / 1e7 }

    /// The part of a height x width feature map that holds the image (not the padding around it).
    static func unpadded(height: Int, width: Int, original: PixelSize) -> (top: Int, left: Int, height: Int, width: Int) {
        let originalRatio = Double(original.width) / Double(original.height)
        let currentRatio = Double(width) / Double(height)
        if originalRatio > currentRatio {
            let newHeight = Int(round7(Double(original.height) * (Double(width) / Double(original.width))))
            let padding = (height - newHeight) / 2
            return (padding, 0, max(height - 2 * padding, 0), width)
        }
        let newWidth = Int(round7(Double(original.width) * (Double(height) / Double(original.height))))
        let padding = (width - newWidth) / 2
        return (0, padding, height, max(width - 2 * padding, 0))
    }
}

/// LLaVA-NeXT's image processor (transformers' PIL backend, `LlavaNextImageProcessorPil`): the base tile is the
/// image squashed to the tile size; the tiles come from the image resized into its best pinpoint, centred on
/// black, cut row-major; each goes through CLIP's resize, crop, rescale and normalisation.
struct AnyResImageInputs: VLMImageProcessor {
    let processor: ImageProcessor
    let pinpoints: [PixelSize]
    let tile: Int
    let patchesPerSide: Int

    init(folder: String) throws {
        var settings = try ImageProcessorConfig(modelFolder: URL(fileURLWithPath: folder))
        settings.doPad = false  // LLaVA-NeXT's do_pad pads the batch of tiles, not the image to a square
        processor = ImageProcessor(config: settings)
        let config = try LlavaConfig(ConfigReader.load((folder as NSString).appendingPathComponent("config.json")), modelType: "llava_next")
        pinpoints = config.gridPinpoints
        switch settings.size {
        case .exact(let s): tile = s.height
        case .shortestEdge(let edge, _): tile = edge
        }
        patchesPerSide = config.vision.patchesPerSide
        guard settings.cropSize.height == config.vision.imageSize, tile == config.vision.imageSize else {
            throw ModelError("\(folder): the image processor's tile (\(tile), crop \(settings.cropSize)) is not the vision tower's image_size \(config.vision.imageSize)")
        }
    }

    /// The tiles of one image, base first.
    func tiles(_ image: RGBImage) -> [RGBImage] {
        let size = PixelSize(height: image.height, width: image.width)
        let best = AnyRes.bestResolution(image: size, pinpoints: pinpoints)
        let fitted = AnyRes.fittedSize(image: size, target: best)
        let resized = image.resized(width: fitted.width, height: fitted.height, filter: processor.config.resample)
        let left = (best.width - fitted.width) / 2, top = (best.height - fitted.height) / 2
        let padded = resized.cropped(to: PixelRect(x: -left, y: -top, width: best.width, height: best.height))
        var out = [image.resized(width: tile, height: tile, filter: processor.config.resample)]
        for row in 0..<(best.height / tile) {
            for column in 0..<(best.width / tile) {
                out.append(padded.cropped(to: PixelRect(x: column * tile, y: row * tile, width: tile, height: tile)))
            }
        }
        return out
    }

    func preprocess(_ images: [RGBImage]) throws -> ImageInputs {
        let perImage = images.map(tiles)
        let all = perImage.flatMap { $0 }
        let p = try processor.preprocess(all)
        return ImageInputs(pixels: try Tensor(p.values, shape: p.shape), tokenCounts: images.map { tokenCount(width: $0.width, height: $0.height) },
                           tiles: perImage.map(\.count), originalSizes: images.map { PixelSize(height: $0.height, width: $0.width) })
    }

    /// The base tile's features, then the unpadded grid's rows each with a newline (LlavaNextProcessor's count).
    func tokenCount(width: Int, height: Int) -> Int {
        let original = PixelSize(height: height, width: width)
        let best = AnyRes.bestResolution(image: original, pinpoints: pinpoints)
        let h = patchesPerSide * (best.height / tile), w = patchesPerSide * (best.width / tile)
        let kept = AnyRes.unpadded(height: h, width: w, original: original)
        return patchesPerSide * patchesPerSide + kept.height * (kept.width + 1)
    }
}
