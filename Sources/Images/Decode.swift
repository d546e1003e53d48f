import CImageIO
import Foundation

/// The container formats ReAlign reads, recognised by their first bytes (never by the file name).
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg
    case png

    /// The format of an encoded image, from its magic bytes.
    public static func sniff<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        var it = bytes.makeIterator()
        var head: [UInt8] = []
        while head.count < 8, let b = it.next() { head.append(b) }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        if head.count >= 8, head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return nil
    }

    /// A name for formats we recognise but do not read, for the error message.
    static func unsupportedName(_ bytes: [UInt8]) -> String? {
        func starts(_ s: String) -> Bool { bytes.starts(with: Array(s.utf8)) }
        if starts("GIF87a") || starts("GIF89a") { return "GIF" }
        if starts("BM") && bytes.count >= 14 { return "BMP" }
        if starts("RIFF") && bytes.count >= 12 && Array(bytes[8..<12]) == Array("WEBP".utf8) { return "WebP" }
        if starts("II*\0") || starts("MM\0*") { return "TIFF" }
        if bytes.count >= 12 && Array(bytes[4..<8]) == Array("ftyp".utf8) { return "HEIF/AVIF" }
        return nil
    }
}

/// What becomes of transparency when an image is reduced to RGB.
public enum AlphaHandling: Sendable, Equatable {
    /// What `transformers.image_utils.load_image` followed by an image processor's `convert_to_rgb` does
    /// (transformers 5.x with Pillow): `load_image` calls `convert("RGB")`, which drops alpha channels (RGBA, LA and
    /// palettes with an alpha table), but a single transparent colour (a PNG colour key, or a palette whose tRNS
    /// marks exactly one entry transparent) survives in Pillow's `info["transparency"]`, and the processor then
    /// paints every pixel of that colour white. Pillow's quirks are kept: keys are compared after reduction to
    /// 8 bits with Pillow's masking (16-bit keys keep their low byte; a 16-bit gray key `k` matches RGB `(k & 255, 0,
    /// 0)`; 2- and 4-bit gray keys are compared unscaled). This is the default: it is the reference pipeline.
    case transformers
    /// What an image processor does with an image opened by `PIL.Image.open` and passed in directly: every
    /// kind of transparency becomes an alpha channel (tRNS keys compared at the file's bit depth, as the PNG
    /// specification says) and the image is composited onto white with Pillow's integer `alpha_composite`.
    case compositeOnWhite
    /// Plain `convert("RGB")` as transformers 4.x and the original LLaVA code do: alpha and transparency keys
    /// are ignored.
    case discard
}

/// What becomes of 16-bit grayscale PNGs (the only 16-bit layout Pillow keeps at full depth, as mode "I;16").
public enum Gray16Handling: Sendable, Equatable {
    /// Keep the high byte (v >> 8): the same reduction Pillow and libpng apply to 16-bit RGB, RGBA and gray+alpha
    /// PNGs. The default.
    case scale
    /// Pillow's `convert("RGB")` of an "I;16" image, which clips (values above 255 become 255, so almost every
    /// real 16-bit photo turns white). A Pillow bug kept only for bit-exact parity with Python.
    case clipLikePillow
}

/// Options for reading images.
public struct ImageLoadOptions: Sendable, Equatable {
    public var alpha: AlphaHandling
    public var gray16: Gray16Handling
    /// Turn JPEG (EXIF/XMP) and PNG (eXIf) orientations upright, as `PIL.ImageOps.exif_transpose` does.
    public var appliesOrientation: Bool
    /// Larger images are refused before any pixel memory is allocated. The default is Pillow's
    /// decompression-bomb error threshold (2 x `Image.MAX_IMAGE_PIXELS`).
    public var maxPixels: Int

    public init(alpha: AlphaHandling = .transformers, gray16: Gray16Handling = .scale, appliesOrientation: Bool = true,
                maxPixels: Int = 178_956_970) {
        self.alpha = alpha
        self.gray16 = gray16
        self.appliesOrientation = appliesOrientation
        self.maxPixels = maxPixels
    }
}

/// Facts about a decoded file, for diagnostics and tests.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    /// Stored size, before orientation.
    public var storedWidth: Int
    public var storedHeight: Int
    public var bitDepth: Int
    /// "gray", "gray+alpha", "rgb", "rgba", "palette" (PNG), "cmyk" (JPEG).
    public var colorModel: String
    public var progressiveOrInterlaced: Bool
    public var orientation: ImageOrientation
}

extension RGBImage {
    /// Reads a JPEG or PNG file.
    public init(contentsOf url: URL, options: ImageLoadOptions = ImageLoadOptions()) throws {
        try self.init(contentsOfFile: url.path, options: options)
    }

    /// Reads a JPEG or PNG file.
    public init(contentsOfFile path: String, options: ImageLoadOptions = ImageLoadOptions()) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file"
            throw ImageError(path, reason)
        }
        self = try RGBImage.decode(Array(data), name: path, options: options).image
    }

    /// Decodes a JPEG or PNG held in memory; `name` is what error messages call it.
    public init(data: Data, name: String = "<memory>", options: ImageLoadOptions = ImageLoadOptions()) throws {
        self = try RGBImage.decode(Array(data), name: name, options: options).image
    }

    /// Decodes a JPEG or PNG held in memory; `name` is what error messages call it.
    public init(bytes: [UInt8], name: String = "<memory>", options: ImageLoadOptions = ImageLoadOptions()) throws {
        self = try RGBImage.decode(bytes, name: name, options: options).image
    }

    /// Decodes a JPEG or PNG held in memory and reports what the file contained.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>",
                              options: ImageLoadOptions = ImageLoadOptions()) throws -> (image: RGBImage, info: ImageInfo) {
        guard let format = ImageFormat.sniff(bytes) else {
            if bytes.isEmpty { throw ImageError(name, "empty file, not a JPEG or PNG image") }
            if let other = ImageFormat.unsupportedName(bytes) {
                throw ImageError(name, "\(other) images are not supported (only JPEG and PNG)")
            }
            throw ImageError(name, "not a JPEG or PNG image")
        }
        let maxPixels = UInt64(max(options.maxPixels, 0))
        var raw = imageio_image()
        var err = [CChar](repeating: 0, count: 512)
        let status: Int32 = bytes.withUnsafeBufferPointer { p in
            err.withUnsafeMutableBufferPointer { e in
                switch format {
                case .jpeg:
                    return imageio_decode_jpeg(p.baseAddress, p.count, maxPixels, 0, &raw, e.baseAddress, e.count)
                case .png:
                    let flags: Int32 = options.alpha == .compositeOnWhite ? Int32(IMAGEIO_PNG_EXPAND_TRNS) : 0
                    return imageio_decode_png(p.baseAddress, p.count, maxPixels, flags, &raw, e.baseAddress, e.count)
                }
            }
        }
        defer { imageio_image_free(&raw) }
        guard status == 0 else {
            throw ImageError(name, err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) },
                             kind: status == IMAGEIO_TOO_LARGE ? .tooLarge : .invalid)
        }
        var image = RawImage(raw).toRGB(options: options)
        let exif = raw.exif.map { Array(UnsafeBufferPointer(start: $0, count: raw.exif_len)) }
        let xmp = raw.xmp.map { Array(UnsafeBufferPointer(start: $0, count: raw.xmp_len)) }
        let orientation = ImageMetadata.orientation(exif: exif, xmp: xmp)
        if options.appliesOrientation { image = image.applying(orientation) }
        let model: String
        switch (format, Int(raw.color_type)) {
        case (.jpeg, 1): model = "gray"
        case (.jpeg, 4): model = "cmyk"
        case (.jpeg, _): model = "rgb"
        case (.png, 0): model = "gray"
        case (.png, 2): model = "rgb"
        case (.png, 3): model = "palette"
        case (.png, 4): model = "gray+alpha"
        default: model = "rgba"
        }
        let info = ImageInfo(format: format, storedWidth: Int(raw.width), storedHeight: Int(raw.height),
                             bitDepth: Int(raw.bit_depth), colorModel: model,
                             progressiveOrInterlaced: raw.progressive != 0, orientation: orientation)
        return (image, info)
    }
}

/// A decoded image as the C layer hands it over, viewed without copying.
private struct RawImage {
    let c: imageio_image
    init(_ c: imageio_image) { self.c = c }

    var width: Int { Int(c.width) }
    var height: Int { Int(c.height) }
    var count: Int { width * height }

    func toRGB(options: ImageLoadOptions) -> RGBImage {
        var out = [UInt8](repeating: 0, count: count * 3)
        guard count > 0, let src = c.pixels else { return RGBImage(width: width, height: height, pixels: out) }
        let composite = options.alpha == .compositeOnWhite
        out.withUnsafeMutableBufferPointer { dstBuffer in
            let dst = dstBuffer.baseAddress!
            switch Int(c.layout) {
            case IMAGEIO_GRAY8:
                for i in 0..<count {
                    let v = src[i]
                    dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v
                }
            case IMAGEIO_GRAY16:
                src.withMemoryRebound(to: UInt16.self, capacity: count) { s in
                    for i in 0..<count {
                        let wide = s[i]
                        let v: UInt8 = options.gray16 == .scale ? UInt8(wide >> 8) : UInt8(min(wide, 255))
                        dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v
                    }
                }
            case IMAGEIO_GRAY_ALPHA8:
                for i in 0..<count {
                    var v = src[2 * i]
                    if composite { v = overWhite(v, alpha: src[2 * i + 1]) }
                    dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v
                }
            case IMAGEIO_RGBA8:
                for i in 0..<count {
                    let a = src[4 * i + 3]
                    for k in 0..<3 {
                        let v = src[4 * i + k]
                        dst[3 * i + k] = composite ? overWhite(v, alpha: a) : v
                    }
                }
            default:  // RGB8
                dst.update(from: src, count: count * 3)
            }
        }
        if options.alpha == .transformers, let key = pillowTransparentColor() {
            out.withUnsafeMutableBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: 3) where p[i] == key.r && p[i + 1] == key.g && p[i + 2] == key.b {
                    p[i] = 255; p[i + 1] = 255; p[i + 2] = 255
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The colour Pillow still calls transparent after `load_image`'s `convert("RGB")`, as the processor's
    /// `convert_to_rgb` will match it: Pillow's `convert_transparent` masks each key component to its low byte,
    /// and a bare integer key `k` (modes "1" and "I;16") means RGB `(k, 0, 0)`.
    func pillowTransparentColor() -> RGB? {
        switch c.trns_kind {
        case 1:
            let key = Int(c.trns_key.0)
            switch c.bit_depth {
            case 1: return RGB(key != 0 ? 255 : 0, 0, 0)           // mode "1": transparency 0 or 255, left as an int
            case 16: return RGB(UInt8(key & 0xFF), 0, 0)            // mode "I;16": left as an int
            default:
                let v = UInt8(min(key, 255))                         // mode "L": re-read through a 1x1 L image (clamps)
                return RGB(v, v, v)
            }
        case 2:
            return RGB(UInt8(c.trns_key.0 & 0xFF), UInt8(c.trns_key.1 & 0xFF), UInt8(c.trns_key.2 & 0xFF))
        case 3:
            // Pillow keeps a single index only when tRNS matches ^\xff*\x00\xff*$ (Python's `$` also matches
            // before one final newline byte); any other table is a byte string, which convert("RGB") drops.
            guard let table = c.trns_table, c.trns_table_len > 0 else { return nil }
            var bytes = Array(UnsafeBufferPointer(start: table, count: c.trns_table_len))
            if bytes.count >= 2, bytes.last == 0x0A { bytes.removeLast() }
            guard bytes.allSatisfy({ $0 == 0xFF || $0 == 0 }), bytes.filter({ $0 == 0 }).count == 1,
                  let index = bytes.firstIndex(of: 0) else { return nil }
            guard let palette = c.palette, index < Int(c.palette_len) else { return RGB(0, 0, 0) }
            return RGB(palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        default:
            return nil
        }
    }
}

/// One channel of Pillow's `alpha_composite(white, image)`: with an opaque white backdrop its fixed-point formula
/// (7 extra bits, rounded divisions by 255) reduces to this.
@inline(__always)
private func overWhite(_ v: UInt8, alpha a: UInt8) -> UInt8 {
    if a == 0 { return 255 }
    let sa = UInt32(a)
    let coef1 = sa << 7                  // sa * 255 * 255 * 128 / (255 * 255)
    let coef2 = (255 << 7) - coef1
    let t = UInt32(v) * coef1 + 255 * coef2 + (0x80 << 7)
    return UInt8((((t >> 8) + t) >> 8) >> 7)
}

// MARK: - Encoding

extension RGBImage {
    /// The image as a PNG file (8-bit RGB).
    public func pngData(compressionLevel: Int = 6) throws -> Data {
        try encodePNG(pixels: pixels, width: width, height: height, channels: 3, level: compressionLevel)
    }

    /// Writes the image as a PNG file (atomically: a temporary file, then a rename).
    public func writePNG(to url: URL, compressionLevel: Int = 6) throws {
        let data = try pngData(compressionLevel: compressionLevel)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ImageError(url.path, "cannot write the file (\(error.localizedDescription))")
        }
    }
}

/// Encodes 8-bit pixels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA channels) as PNG.
public func encodePNG(pixels: [UInt8], width: Int, height: Int, channels: Int, level: Int = 6) throws -> Data {
    guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
        throw ImageError("<png encoder>", "cannot encode a \(width)x\(height) image")
    }
    guard (1...4).contains(channels), pixels.count == width * height * channels else {
        throw ImageError("<png encoder>", "\(pixels.count) bytes do not make a \(width)x\(height) image with \(channels) channels")
    }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var length = 0
    var err = [CChar](repeating: 0, count: 512)
    let status = pixels.withUnsafeBufferPointer { p in
        err.withUnsafeMutableBufferPointer { e in
            imageio_encode_png(p.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(level),
                               &out, &length, e.baseAddress, e.count)
        }
    }
    guard status == 0, let out else {
        throw ImageError("<png encoder>", err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }
    defer { imageio_free(out) }
    return Data(bytes: out, count: length)
}
