import Foundation
import Testing

@testable import Images

@Suite("Decoding, encoding and orientation")
struct DecodingTests {
    @Test("formats are sniffed from magic bytes, not names")
    func sniffing() throws {
        let png = try Fixtures.bytes("images/rgb_17x9.png")
        let jpeg = try Fixtures.bytes("images/gray_90x70.jpg")
        #expect(ImageFormat.sniff(png) == .png)
        #expect(ImageFormat.sniff(jpeg) == .jpeg)
        // A PNG called .jpg loads as the PNG it is.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("realign-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let disguised = dir.appendingPathComponent("photo.jpg")
        try Data(png).write(to: disguised)
        let image = try RGBImage(contentsOf: disguised)
        #expect(image.width == 17 && image.height == 9)
        // Text is neither, and the message names the file.
        let text = dir.appendingPathComponent("x.jpg")
        try Data("hello, world".utf8).write(to: text)
        let error = #expect(throws: ImageError.self) { try RGBImage(contentsOf: text) }
        #expect(error?.description == "\(text.path): not a JPEG or PNG image")
        #expect(throws: ImageError(dir.appendingPathComponent("missing.png").path, "no such file")) {
            try RGBImage(contentsOf: dir.appendingPathComponent("missing.png"))
        }
        let gif = #expect(throws: ImageError.self) { try RGBImage(bytes: Array("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8), name: "a.gif") }
        #expect(gif?.description == "a.gif: GIF images are not supported (only JPEG and PNG)")
        let empty = #expect(throws: ImageError.self) { try RGBImage(bytes: [], name: "empty.png") }
        #expect(empty?.description.hasPrefix("empty.png: empty file") == true)
    }

    @Test("truncated files are errors, not grey padding")
    func truncation() throws {
        let jpeg = try Fixtures.bytes("images/rgb_97x131_444.jpg")
        let e1 = #expect(throws: ImageError.self) { try RGBImage(bytes: Array(jpeg.prefix(jpeg.count / 2)), name: "half.jpg") }
        #expect(e1?.description == "half.jpg: truncated JPEG (premature end of data)")
        let progressive = try Fixtures.bytes("images/progressive_203x151.jpg")
        let e2 = #expect(throws: ImageError.self) { try RGBImage(bytes: Array(progressive.prefix(3000)), name: "p.jpg") }
        #expect(e2?.message.hasPrefix("truncated JPEG") == true)
        let png = try Fixtures.bytes("images/rgb_130x41.png")
        let e3 = #expect(throws: ImageError.self) { try RGBImage(bytes: Array(png.prefix(png.count - 200)), name: "cut.png") }
        #expect(e3?.description == "cut.png: truncated PNG (unexpected end of data)")
        // A missing IEND after complete image data does not matter.
        let noEnd = Array(png.prefix(png.count - 12))
        #expect(try RGBImage(bytes: noEnd).width == 130)
    }

    @Test("the pixel limit refuses decompression bombs before allocating")
    func pixelLimit() throws {
        let png = try Fixtures.bytes("images/rgb_1000x300.jpg")
        let error = #expect(throws: ImageError.self) {
            try RGBImage(bytes: png, name: "big.jpg", options: ImageLoadOptions(maxPixels: 100_000))
        }
        #expect(error?.description == "big.jpg: image is 1000x300 pixels, more than the limit of 100000")
    }

    @Test("PNG encode and decode round trip is exact")
    func pngRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for (w, h) in [(1, 1), (37, 23), (256, 3), (3, 256)] {
            let pixels = (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let image = RGBImage(width: w, height: h, pixels: pixels)
            for level in [0, 6, 9] {
                let data = try image.pngData(compressionLevel: level)
                #expect(ImageFormat.sniff(Array(data)) == .png)
                #expect(try RGBImage(data: data) == image)
            }
        }
        // RGBA: alpha dropped, or composited onto white with Pillow's arithmetic.
        let rgba: [UInt8] = [10, 20, 30, 0, 10, 20, 30, 255, 200, 100, 50, 128, 0, 0, 0, 1]
        let data = try encodePNG(pixels: rgba, width: 4, height: 1, channels: 4)
        #expect(try RGBImage(data: data).pixels == [10, 20, 30, 10, 20, 30, 200, 100, 50, 0, 0, 0])
        let white = try RGBImage(data: data, options: ImageLoadOptions(alpha: .compositeOnWhite))
        #expect(white.pixels == [255, 255, 255, 10, 20, 30, 227, 177, 152, 254, 254, 254])
        // Writing to a file.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("realign-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: url) }
        let image = RGBImage(width: 5, height: 4, fill: RGB(1, 2, 3))
        try image.writePNG(to: url)
        #expect(try RGBImage(contentsOf: url) == image)
        #expect(throws: ImageError.self) { try encodePNG(pixels: [1, 2], width: 1, height: 1, channels: 3) }
    }

    @Test("all eight EXIF orientations, as PIL.ImageOps.exif_transpose")
    func exifOrientations() throws {
        let upright = try RGBImage(contentsOf: Fixtures.url("images/exif_orientation_1.jpg"))
        #expect(upright.width == 24 && upright.height == 16)
        for o in 1...8 {
            let file = "images/exif_orientation_\(o).jpg"
            let (image, info) = try RGBImage.decode(try Fixtures.bytes(file), name: file)
            #expect(info.orientation.rawValue == o)
            let expected = ImageOrientation(rawValue: o)!
            // Same stored pixels in every file, so each must be the upright one turned.
            #expect(image == upright.applying(expected), "orientation \(o)")
            #expect((image.width, image.height) == (o >= 5 ? (16, 24) : (24, 16)))
            let entry = try #require(Fixtures.manifest.images.first { $0.file == file })
            let slice = try #require(entry.rgb)
            #expect(maxAbsDifference(image.pixels, Fixtures.u8(slice.offset, slice.count)) <= 1, "orientation \(o) vs Pillow")
            // The red marker painted in the stored top-left corner ends up where exif_transpose puts it.
            let corner: (Int, Int)
            switch o {
            case 1, 5: corner = (0, 0)                                   // as stored; transposed
            case 2, 6: corner = (image.width - 1, 0)                     // mirrored; turned clockwise
            case 3, 7: corner = (image.width - 1, image.height - 1)      // turned 180°; transversed
            default: corner = (0, image.height - 1)                      // flipped; turned counter-clockwise
            }
            let p = image[corner.0, corner.1]
            #expect(p.r > 200 && p.g < 60 && p.b < 60, "orientation \(o): corner \(corner) is \(p)")
            // Orientation off: the stored pixels.
            let raw = try RGBImage(bytes: try Fixtures.bytes(file), options: ImageLoadOptions(appliesOrientation: false))
            #expect(raw.width == 24)
        }
        let xmp = try RGBImage.decode(try Fixtures.bytes("images/xmp_orientation_6.jpg"))
        #expect(xmp.info.orientation == .right && xmp.image.width == 20)
        let pngExif = try RGBImage.decode(try Fixtures.bytes("images/png_exif_orientation_8.png"))
        #expect(pngExif.info.orientation == .left && pngExif.image.width == 18)
    }

    @Test("orientation transforms compose like the dihedral group they are")
    func orientationAlgebra() {
        var rng = SplitMix64(seed: 3)
        let image = RGBImage(width: 5, height: 3, pixels: (0..<45).map { _ in UInt8.random(in: 0...255, using: &rng) })
        // 180° is two quarter turns; flips are involutions; transpose twice is identity.
        #expect(image.applying(.right).applying(.right) == image.applying(.down))
        #expect(image.applying(.left).applying(.right) == image)
        for o in [ImageOrientation.upMirrored, .downMirrored, .leftMirrored, .rightMirrored, .down] {
            #expect(image.applying(o).applying(o) == image, "\(o)")
        }
        #expect(image.applying(.upMirrored).applying(.downMirrored) == image.applying(.down))
    }

    @Test("malformed EXIF is ignored, never fatal")
    func malformedExif() throws {
        let jpeg = try Fixtures.bytes("images/rgb_97x131_444.jpg")
        let upright = try RGBImage(bytes: jpeg)
        func tiff(little: Bool, entries: [(tag: UInt16, type: UInt16, count: UInt32, value: UInt32)], declared: Int? = nil,
                  ifdOffset: UInt32 = 8) -> [UInt8] {
            func u16(_ v: UInt16) -> [UInt8] { little ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
            func u32(_ v: UInt32) -> [UInt8] { little ? u16(UInt16(v & 0xFFFF)) + u16(UInt16(v >> 16)) : u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) }
            var b: [UInt8] = little ? [0x49, 0x49, 0x2A, 0] : [0x4D, 0x4D, 0, 0x2A]
            b += u32(ifdOffset) + u16(UInt16(declared ?? entries.count))
            for e in entries {
                b += u16(e.tag) + u16(e.type) + u32(e.count)
                // SHORT values sit in the first two bytes of the value field.
                b += e.type == 3 ? u16(UInt16(e.value)) + [0, 0] : u32(e.value)
            }
            return b + u32(0)
        }
        let exif: [UInt8] = Array("Exif".utf8) + [0, 0]
        let cases: [(String, [UInt8], ImageOrientation)] = [
            ("big-endian orientation 6", exif + tiff(little: false, entries: [(0x0112, 3, 1, 6)]), .right),
            ("LONG orientation 3", exif + tiff(little: true, entries: [(0x0112, 4, 1, 3)]), .down),
            ("orientation 0", exif + tiff(little: true, entries: [(0x0112, 3, 1, 0)]), .up),
            ("orientation 9", exif + tiff(little: true, entries: [(0x0112, 3, 1, 9)]), .up),
            ("orientation as BYTE", exif + tiff(little: true, entries: [(0x0112, 1, 1, 6)]), .up),
            ("two values", exif + tiff(little: true, entries: [(0x0112, 3, 2, 6)]), .up),
            ("directory cut short", exif + tiff(little: true, entries: [(0x0112, 3, 1, 6)], declared: 40), .up),
            ("directory outside the block", exif + tiff(little: true, entries: [(0x0112, 3, 1, 6)], ifdOffset: 60000), .up),
            ("not TIFF", exif + Array("garbage garbage garbage".utf8), .up),
            ("empty payload", exif, .up),
            ("header only", exif + [0x49, 0x49, 0x2A, 0], .up),
            ("huge entry count", exif + [0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 0xFF, 0xFF], .up),
        ]
        for (what, payload, expected) in cases {
            let file = jpegWithAPP1(jpeg, payload: payload)
            let (image, info) = try RGBImage.decode(file, name: what)
            #expect(info.orientation == expected, "\(what)")
            #expect(image == upright.applying(expected), "\(what)")
        }
        // XMP fallback only when EXIF has no orientation tag at all.
        #expect(ImageMetadata.orientation(exif: nil, xmp: Array("<x tiff:Orientation>8</x>".utf8)) == .left)
        #expect(ImageMetadata.orientation(exif: nil, xmp: Array("tiff:Orientation=\"x\" tiff:Orientation=\"3\"".utf8)) == .down)
        #expect(ImageMetadata.orientation(exif: tiff(little: true, entries: [(0x0112, 3, 1, 9)]),
                                          xmp: Array("tiff:Orientation=\"6\"".utf8)) == .up)
        #expect(ImageMetadata.orientation(exif: tiff(little: true, entries: [(0x010F, 2, 1, 0)]),
                                          xmp: Array("tiff:Orientation=\"6\"".utf8)) == .right)
    }

    @Test("what each alpha policy makes of transparency")
    func alphaPolicies() throws {
        // Palette with one transparent entry: transformers whitens every pixel of that entry's colour.
        let key = try RGBImage(contentsOf: Fixtures.url("images/palette_key_50x40.png"))
        let plain = try RGBImage(contentsOf: Fixtures.url("images/palette_key_50x40.png"), options: ImageLoadOptions(alpha: .discard))
        #expect(key != plain)
        #expect(key[10, 10] == RGB(255, 255, 255))
        // 16-bit gray: the default keeps the high byte; Pillow's clip saturates nearly everything.
        let scaled = try RGBImage(contentsOf: Fixtures.url("images/gray16_70x50.png"))
        let clipped = try RGBImage(contentsOf: Fixtures.url("images/gray16_70x50.png"), options: ImageLoadOptions(gray16: .clipLikePillow))
        let whiteShare = Double(clipped.pixels.filter { $0 == 255 }.count) / Double(clipped.pixels.count)
        #expect(whiteShare > 0.9)
        #expect(Set(scaled.pixels).count > 100)
    }
}
