import Foundation

/// A height and a width in pixels.
public struct PixelSize: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
    public var description: String { "\(height)x\(width) (h x w)" }
}

/// The settings of transformers' `CLIPImageProcessor` (and `LlavaImageProcessor`, which adds `do_pad`), with
/// CLIPImageProcessor's defaults for anything a config file leaves out.
public struct ImageProcessorConfig: Sendable, Equatable {
    /// Transformers' "size" dictionary.
    public enum Size: Sendable, Equatable {
        /// {"shortest_edge": N}: the shorter side becomes N, the other `Int(N * long / short)` (truncated), as
        /// `get_resize_output_image_size(default_to_square=False)` computes it. With {"longest_edge": M} as well,
        /// transformers' `get_size_with_aspect_ratio` bounds the longer side.
        case shortestEdge(Int, longestEdge: Int? = nil)
        /// {"height": H, "width": W}: exactly that size.
        case exact(PixelSize)
    }

    public var doResize = true
    public var size: Size = .shortestEdge(224)
    public var resample: ResampleFilter = .bicubic
    public var doCenterCrop = true
    public var cropSize = PixelSize(height: 224, width: 224)
    public var doRescale = true
    public var rescaleFactor: Double = 1.0 / 255.0
    public var doNormalize = true
    /// OpenAI CLIP's mean and standard deviation, transformers' `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`.
    public var imageMean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Double] = [0.26862954, 0.26130258, 0.27577711]
    public var doConvertRGB = true
    /// LLaVA-1.5's "pad" aspect mode: paste the image centred on a square of the mean colour before resizing.
    public var doPad = false
    /// "image_processor_type" when the file names one.
    public var processorType: String? = nil

    public init() {}

    /// CLIPImageProcessor's defaults (224 / 224, bicubic, OpenAI CLIP normalisation).
    public static let clip = ImageProcessorConfig()

    /// LLaVA-1.5 as its paper runs it: 336-pixel CLIP preprocessing of the image padded to a square.
    public static var llava15Pad: ImageProcessorConfig {
        var c = ImageProcessorConfig()
        c.size = .shortestEdge(336)
        c.cropSize = PixelSize(height: 336, width: 336)
        c.doPad = true
        c.processorType = "LlavaImageProcessor"
        return c
    }

    /// The colour LLaVA pads with: `tuple(int(x * 255) for x in image_mean)`.
    public var padColor: RGB {
        func channel(_ i: Int) -> UInt8 {
            let m = imageMean.count == 1 ? imageMean[0] : imageMean[i]
            return UInt8(clamping: Int((m * 255).rounded(.towardZero)))
        }
        return RGB(channel(0), channel(1), channel(2))
    }
}

// MARK: - Loading

extension ImageProcessorConfig {
    /// Reads a model folder's image settings as transformers 5 does: `processor_config.json` when it nests them under
    /// "image_processor", otherwise `preprocessor_config.json`.
    public init(modelFolder: URL) throws {
        let processorFile = modelFolder.appendingPathComponent("processor_config.json")
        let preprocessorFile = modelFolder.appendingPathComponent("preprocessor_config.json")
        let fm = FileManager.default
        if fm.fileExists(atPath: processorFile.path) {
            let root = try ConfigJSON.parseFile(processorFile)
            if case .object(let top) = root, top["image_processor"] != nil {
                try self.init(root: root, source: processorFile.path)
                return
            }
        }
        guard fm.fileExists(atPath: preprocessorFile.path) else {
            throw ImageError(modelFolder.path, "no preprocessor_config.json, and no processor_config.json with an \"image_processor\" entry")
        }
        try self.init(contentsOf: preprocessorFile)
    }

    /// Reads one config file: a `preprocessor_config.json`, or a `processor_config.json` (settings nested under
    /// "image_processor").
    public init(contentsOf file: URL) throws {
        try self.init(root: try ConfigJSON.parseFile(file), source: file.path)
    }

    /// Parses config JSON held in memory; `source` names it in errors.
    public init(json: Data, source: String = "<config>") throws {
        try self.init(root: try ConfigJSON.parse(json, source: source), source: source)
    }

    /// A whole file's JSON: the settings themselves, or nested under "image_processor".
    init(root: ConfigJSON, source: String) throws {
        guard case .object(let fields) = root else {
            throw ImageError(source, "expected a JSON object at the top level, got \(root.kind)")
        }
        if let nested = fields["image_processor"] {
            guard case .object(let inner) = nested else {
                throw ImageError(source, "key \"image_processor\": expected an object, got \(nested.kind)")
            }
            try self.init(fields: inner, source: source, prefix: "image_processor.")
        } else {
            try self.init(fields: fields, source: source, prefix: "")
        }
    }

    init(fields: [String: ConfigJSON], source: String, prefix: String) throws {
        self.init()
        func fail(_ key: String, _ problem: String) -> ImageError {
            ImageError(source, "key \"\(prefix)\(key)\": \(problem)")
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = fields[key], v != .null else { return nil }
            guard case .bool(let b) = v else { throw fail(key, "expected true or false, got \(v.kind)") }
            return b
        }
        func number(_ key: String) throws -> Double? {
            guard let v = fields[key], v != .null else { return nil }
            guard let d = v.number else { throw fail(key, "expected a number, got \(v.kind)") }
            guard d.isFinite else { throw fail(key, "expected a finite number") }
            return d
        }
        func positive(_ v: ConfigJSON, _ key: String) throws -> Int {
            guard let i = v.integer else { throw fail(key, "expected an integer, got \(v.kind)") }
            guard i > 0 else { throw fail(key, "expected a positive integer, got \(i)") }
            return i
        }
        func channels(_ key: String) throws -> [Double]? {
            guard let v = fields[key], v != .null else { return nil }
            if let d = v.number {
                guard d.isFinite else { throw fail(key, "expected a finite number") }
                return [d]
            }
            guard case .array(let items) = v else { throw fail(key, "expected a number or a list of 3 numbers, got \(v.kind)") }
            guard items.count == 3 else { throw fail(key, "expected 3 values (one per RGB channel), got \(items.count)") }
            return try items.map { item in
                guard let d = item.number, d.isFinite else { throw fail(key, "expected numbers, found \(item.kind)") }
                return d
            }
        }

        if let v = try bool("do_resize") { doResize = v }
        if let v = try bool("do_center_crop") { doCenterCrop = v }
        if let v = try bool("do_rescale") { doRescale = v }
        if let v = try bool("do_normalize") { doNormalize = v }
        if let v = try bool("do_convert_rgb") { doConvertRGB = v }
        if let v = try bool("do_pad") { doPad = v }
        if let v = try number("rescale_factor") { rescaleFactor = v }
        if let v = try channels("image_mean") { imageMean = v }
        if let v = try channels("image_std") { imageStd = v }
        if imageStd.contains(0) { throw fail("image_std", "a standard deviation of 0 would divide by zero") }
        if let v = fields["resample"], v != .null {
            guard let i = v.integer else { throw fail("resample", "expected an integer (PIL resampling filter), got \(v.kind)") }
            guard let filter = ResampleFilter(rawValue: i) else {
                throw fail("resample", i == 0 ? "nearest-neighbour resampling (0) is not supported"
                                              : "unknown resampling filter \(i) (expected 1...7)")
            }
            resample = filter
        }
        if let v = fields["image_processor_type"], v != .null {
            guard case .string(let s) = v else { throw fail("image_processor_type", "expected a string, got \(v.kind)") }
            processorType = s
        }
        // "size": an int is the shortest edge (CLIP's default_to_square=False), a pair is (height, width).
        if let v = fields["size"], v != .null {
            switch v {
            case .number, .integer:
                size = .shortestEdge(try positive(v, "size"))
            case .array(let items):
                guard items.count == 2 else { throw fail("size", "expected [height, width], got \(items.count) values") }
                size = .exact(PixelSize(height: try positive(items[0], "size"), width: try positive(items[1], "size")))
            case .object(let d):
                if let s = d["shortest_edge"], s != .null {
                    let edge = try positive(s, "size.shortest_edge")
                    var longest: Int? = nil
                    if let l = d["longest_edge"], l != .null { longest = try positive(l, "size.longest_edge") }
                    size = .shortestEdge(edge, longestEdge: longest)
                } else if let h = d["height"], let w = d["width"], h != .null, w != .null {
                    size = .exact(PixelSize(height: try positive(h, "size.height"), width: try positive(w, "size.width")))
                } else {
                    let keys = d.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                    throw fail("size", "expected {\"shortest_edge\": N} or {\"height\": H, \"width\": W}, got keys [\(keys)]")
                }
            default:
                throw fail("size", "expected an integer or an object, got \(v.kind)")
            }
        }
        // "crop_size": an int is a square, a pair is (height, width).
        if let v = fields["crop_size"], v != .null {
            switch v {
            case .number, .integer:
                let n = try positive(v, "crop_size")
                cropSize = PixelSize(height: n, width: n)
            case .array(let items):
                guard items.count == 2 else { throw fail("crop_size", "expected [height, width], got \(items.count) values") }
                cropSize = PixelSize(height: try positive(items[0], "crop_size"), width: try positive(items[1], "crop_size"))
            case .object(let d):
                guard let h = d["height"], let w = d["width"] else {
                    throw fail("crop_size", "expected {\"height\": H, \"width\": W}")
                }
                cropSize = PixelSize(height: try positive(h, "crop_size.height"), width: try positive(w, "crop_size.width"))
            default:
                throw fail("crop_size", "expected an integer or an object, got \(v.kind)")
            }
        }
    }
}

/// Just enough JSON for config files, keeping booleans, integers and other numbers apart (JSONSerialization
/// on Linux would blur them).
enum ConfigJSON: Equatable, Decodable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([ConfigJSON])
    case object([String: ConfigJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigJSON].self)) }
    }

    var number: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case .integer(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string(let s): return "a string (\"\(s.prefix(40))\")"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    static func parseFile(_ url: URL) throws -> ConfigJSON {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError(url.path, FileManager.default.fileExists(atPath: url.path) ? "cannot read the file" : "no such file")
        }
        return try parse(data, source: url.path)
    }

    static func parse(_ data: Data, source: String) throws -> ConfigJSON {
        do {
            return try JSONDecoder().decode(ConfigJSON.self, from: data)
        } catch let error as DecodingError {
            var detail = "not valid JSON"
            if case .dataCorrupted(let context) = error, let underlying = context.underlyingError {
                detail += " (\((underlying as NSError).localizedDescription))"
            }
            throw ImageError(source, detail)
        } catch {
            throw ImageError(source, "not valid JSON")
        }
    }
}

// MARK: - Preprocessing

/// A float32 tensor in row-major order: `[3, H, W]` for one image, `[N, 3, H, W]` for a batch.
public struct PixelValues: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// transformers' slow (PIL-backend) `CLIPImageProcessor` / `LlavaImageProcessor`, step for step: optional pad to a
/// square of the mean colour, bicubic resize (Pillow's, bit for bit), center crop with zero padding, rescale in
/// float64 then float32, normalisation in float32.
public struct ImageProcessor: Sendable {
    public var config: ImageProcessorConfig

    public init(config: ImageProcessorConfig = .clip) {
        self.config = config
    }

    /// Reads a model folder's processor settings (see `ImageProcessorConfig.init(modelFolder:)`).
    public init(modelFolder: URL) throws {
        self.config = try ImageProcessorConfig(modelFolder: modelFolder)
    }

    /// The (height, width) an image of this size is resized to.
    public func resizedSize(height: Int, width: Int) -> PixelSize {
        switch config.size {
        case .exact(let s):
            return s
        case .shortestEdge(let edge, let longest?):
            return Self.sizeWithAspectRatio(height: height, width: width, size: edge, maxSize: longest)
        case .shortestEdge(let edge, nil):
            // get_resize_output_image_size(default_to_square=False): Python's int(size * long / short). The
            // product is exact and IEEE division is correctly rounded, as Python's int/int true division is.
            let (short, long) = width <= height ? (width, height) : (height, width)
            let newLong = Int((Double(edge * long) / Double(short)).rounded(.towardZero))
            return width <= height ? PixelSize(height: newLong, width: edge) : PixelSize(height: edge, width: newLong)
        }
    }

    /// transformers' `get_size_with_aspect_ratio` (shortest_edge together with longest_edge).
    static func sizeWithAspectRatio(height: Int, width: Int, size: Int, maxSize: Int) -> PixelSize {
        var size = size
        var rawSize: Double? = nil
        let minOriginal = Double(min(height, width)), maxOriginal = Double(max(height, width))
        if maxOriginal / minOriginal * Double(size) > Double(maxSize) {
            let raw = Double(maxSize) * minOriginal / maxOriginal
            rawSize = raw
            size = Int(raw.rounded(.toNearestOrEven))  // Python's round()
        }
        if (height <= width && height == size) || (width <= height && width == size) {
            return PixelSize(height: height, width: width)
        }
        if width < height {
            let oh = rawSize.map { Int(($0 * Double(height) / Double(width)).rounded(.towardZero)) }
                ?? Int((Double(size * height) / Double(width)).rounded(.towardZero))
            return PixelSize(height: oh, width: size)
        }
        let ow = rawSize.map { Int(($0 * Double(width) / Double(height)).rounded(.towardZero)) }
            ?? Int((Double(size * width) / Double(height)).rounded(.towardZero))
        return PixelSize(height: size, width: ow)
    }

    /// The 8-bit image after the geometric steps (pad, resize, crop), before rescaling and normalisation.
    public func geometry(_ image: RGBImage) -> RGBImage {
        var image = image
        if config.doPad { image = image.paddedToSquare(fill: config.padColor) }
        if config.doResize, image.width > 0, image.height > 0 {
            let target = resizedSize(height: image.height, width: image.width)
            if target.width > 0 && target.height > 0 {
                image = image.resized(width: target.width, height: target.height, filter: config.resample)
            }
        }
        if config.doCenterCrop { image = Self.centerCrop(image, to: config.cropSize) }
        return image
    }

    /// transformers' `center_crop`: integer offsets `(orig - crop) // 2`; an image smaller than the crop is first
    /// centred on zeros (padding `ceil((new - orig) / 2)` before it).
    public static func centerCrop(_ image: RGBImage, to size: PixelSize) -> RGBImage {
        let top = floorDiv(image.height - size.height, 2)
        let left = floorDiv(image.width - size.width, 2)
        if top >= 0 && left >= 0 && top + size.height <= image.height && left + size.width <= image.width {
            return image.cropped(to: PixelRect(x: left, y: top, width: size.width, height: size.height))
        }
        // The padded canvas is max(crop, orig) per axis, with the image placed at (leftPad, topPad); the crop window
        // moves with it and is clipped to the canvas.
        let newHeight = max(size.height, image.height), newWidth = max(size.width, image.width)
        let topPad = (newHeight - image.height + 1) / 2, leftPad = (newWidth - image.width + 1) / 2
        let t = top + topPad, l = left + leftPad
        let y0 = max(0, t), y1 = min(newHeight, t + size.height)
        let x0 = max(0, l), x1 = min(newWidth, l + size.width)
        return image.cropped(to: PixelRect(x: x0 - leftPad, y: y0 - topPad, width: max(x1 - x0, 0), height: max(y1 - y0, 0)))
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// One image to `[3, H, W]` float32 values.
    public func preprocess(_ image: RGBImage) -> PixelValues {
        let ready = geometry(image)
        var values = [Float](repeating: 0, count: ready.width * ready.height * 3)
        values.withUnsafeMutableBufferPointer { out in
            writeCHW(ready, into: out.baseAddress!)
        }
        return PixelValues(shape: [3, ready.height, ready.width], values: values)
    }

    /// Several images to `[N, 3, H, W]`; they must come out the same size (always true with center crop).
    public func preprocess(_ images: [RGBImage]) throws -> PixelValues {
        let ready = images.map(geometry)
        guard let first = ready.first else { return PixelValues(shape: [0, 3, 0, 0], values: []) }
        for (i, r) in ready.enumerated() where r.width != first.width || r.height != first.height {
            throw ImageError("<batch>", "image \(i) preprocesses to \(r.width)x\(r.height), image 0 to \(first.width)x\(first.height); enable center crop or use a fixed size")
        }
        let per = first.width * first.height * 3
        var values = [Float](repeating: 0, count: per * ready.count)
        values.withUnsafeMutableBufferPointer { out in
            for (i, r) in ready.enumerated() { writeCHW(r, into: out.baseAddress! + i * per) }
        }
        return PixelValues(shape: [ready.count, 3, first.height, first.width], values: values)
    }

    /// Rescale and normalise into planar (CHW) floats. transformers rescales as `uint8.astype(float64) * factor`
    /// cast to float32, then computes `(x - mean) / std` in float32 with float32 mean and std; the same
    /// operations in the same precisions give the same bits. Per channel, all 256 possible results are tabulated.
    func writeCHW(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        var table = [Float](repeating: 0, count: 256 * 3)
        for c in 0..<3 {
            let mean = Float(config.imageMean.count == 1 ? config.imageMean[0] : config.imageMean[c])
            let std = Float(config.imageStd.count == 1 ? config.imageStd[0] : config.imageStd[c])
            for v in 0..<256 {
                var x = config.doRescale ? Float(Double(v) * config.rescaleFactor) : Float(v)
                if config.doNormalize { x = (x - mean) / std }
                table[c * 256 + v] = x
            }
        }
        image.pixels.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { t in
                for c in 0..<3 {
                    let dst = out + c * plane
                    let lut = t.baseAddress! + c * 256
                    var s = c
                    for i in 0..<plane {
                        dst[i] = lut[Int(src[s])]
                        s += 3
                    }
                }
            }
        }
    }
}
