import CImageIO

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage needs a non-negative size")
        precondition(pixels.count == width * height * 3, "RGBImage needs width * height * 3 bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    public init(width: Int, height: Int, fill: RGB = RGB(0, 0, 0)) {
        precondition(width >= 0 && height >= 0, "RGBImage needs a non-negative size")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        if fill != RGB(0, 0, 0) {
            pixels.withUnsafeMutableBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: 3) {
                    p[i] = fill.r
                    p[i + 1] = fill.g
                    p[i + 2] = fill.b
                }
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The pixel at column x, row y.
    public subscript(x: Int, y: Int) -> RGB {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) is outside \(width)x\(height)")
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// One 8-bit RGB colour.
public struct RGB: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }
    public var description: String { "(\(r), \(g), \(b))" }
}

/// A rectangle in pixel coordinates: `x`, `y` are the left and top edges.
public struct PixelRect: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
    public var description: String { "\(width)x\(height) at (\(x), \(y))" }
}

/// An image-related failure: `source` names the file (or the in-memory buffer) and `message` the problem.
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Missing, unreadable, not an image, or broken.
        case invalid
        /// The header names more pixels than the limit; refused before any pixel memory was allocated.
        case tooLarge
    }
    public let source: String
    public let message: String
    public let kind: Kind
    public init(_ source: String, _ message: String, kind: Kind = .invalid) {
        self.source = source
        self.message = message
        self.kind = kind
    }
    public var description: String { "\(source): \(message)" }
}

/// Versions of the native image libraries.
public enum ImageLibraries {
    public static var jpegVersion: Int { Int(imageio_jpeg_version()) }
    public static var pngVersion: String { String(cString: imageio_png_version()) }
}

// MARK: - Geometry

extension RGBImage {
    /// The part of the image inside `rect`; parts of `rect` outside the image are filled with `fill`
    /// (as `PIL.Image.crop` fills with black).
    public func cropped(to rect: PixelRect, fill: RGB = RGB(0, 0, 0)) -> RGBImage {
        precondition(rect.width >= 0 && rect.height >= 0, "crop rectangle needs a non-negative size")
        var out = RGBImage(width: rect.width, height: rect.height, fill: fill)
        // The overlap of the rectangle and the image, in source coordinates.
        let x0 = max(rect.x, 0), x1 = min(rect.x + rect.width, width)
        let y0 = max(rect.y, 0), y1 = min(rect.y + rect.height, height)
        guard x0 < x1, y0 < y1 else { return out }
        let rowBytes = (x1 - x0) * 3
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in y0..<y1 {
                    let s = (y * width + x0) * 3
                    let d = ((y - rect.y) * rect.width + (x0 - rect.x)) * 3
                    dst.baseAddress!.advanced(by: d).update(from: src.baseAddress!.advanced(by: s), count: rowBytes)
                }
            }
        }
        return out
    }

    /// The image pasted into a `size` x `size` square of `fill`, centred with LLaVA's integer offsets
    /// (`(size - height) // 2` or `(size - width) // 2`). Square images come back unchanged.
    public func paddedToSquare(fill: RGB) -> RGBImage {
        if width == height { return self }
        let side = max(width, height)
        let rect = width > height
            ? PixelRect(x: 0, y: -((side - height) / 2), width: side, height: side)
            : PixelRect(x: -((side - width) / 2), y: 0, width: side, height: side)
        return cropped(to: rect, fill: fill)
    }

    /// The image turned upright for an EXIF orientation, as `PIL.ImageOps.exif_transpose` does.
    public func applying(_ orientation: ImageOrientation) -> RGBImage {
        if orientation == .up || width == 0 || height == 0 { return self }
        let w = width, h = height
        let swaps = orientation.swapsAxes
        let outW = swaps ? h : w, outH = swaps ? w : h
        // For each output pixel (x, y), the source pixel is (sx, sy) = (ax*x + bx*y + cx, ay*x + by*y + cy).
        let (ax, bx, cx, ay, by, cy): (Int, Int, Int, Int, Int, Int)
        switch orientation {
        case .up: (ax, bx, cx, ay, by, cy) = (1, 0, 0, 0, 1, 0)
        case .upMirrored: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, 1, 0)          // FLIP_LEFT_RIGHT
        case .down: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, -1, h - 1)           // ROTATE_180
        case .downMirrored: (ax, bx, cx, ay, by, cy) = (1, 0, 0, 0, -1, h - 1)        // FLIP_TOP_BOTTOM
        case .leftMirrored: (ax, bx, cx, ay, by, cy) = (0, 1, 0, 1, 0, 0)             // TRANSPOSE
        case .right: (ax, bx, cx, ay, by, cy) = (0, 1, 0, -1, 0, h - 1)               // ROTATE_270 (clockwise)
        case .rightMirrored: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, -1, 0, h - 1)  // TRANSVERSE
        case .left: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, 1, 0, 0)                // ROTATE_90 (counter-clockwise)
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var d = 0
                for y in 0..<outH {
                    var sx = bx * y + cx, sy = by * y + cy
                    for _ in 0..<outW {
                        let s = (sy * w + sx) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                        d += 3
                        sx += ax
                        sy += ay
                    }
                }
            }
        }
        return RGBImage(width: outW, height: outH, pixels: out)
    }
}
