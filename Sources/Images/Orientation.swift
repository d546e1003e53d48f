/// The EXIF Orientation tag (0x0112): how the stored pixels must be turned to show the picture upright.
/// Raw values are the tag's; the names say where the picture's top ended up (as Apple's `CGImagePropertyOrientation`).
public enum ImageOrientation: Int, Sendable, CaseIterable, CustomStringConvertible {
    case up = 1             // as stored
    case upMirrored = 2     // mirrored left-right
    case down = 3           // rotated 180°
    case downMirrored = 4   // mirrored top-bottom
    case leftMirrored = 5   // transposed (mirrored along the main diagonal)
    case right = 6          // needs a 90° clockwise turn
    case rightMirrored = 7  // transversed (mirrored along the anti-diagonal)
    case left = 8           // needs a 90° counter-clockwise turn

    /// Whether turning the image upright swaps its width and height.
    public var swapsAxes: Bool { rawValue >= 5 }

    public var description: String { "orientation \(rawValue)" }
}

/// Reading the orientation out of image metadata, as Pillow's `Image.getexif()` does for `exif_transpose`.
///
/// Malformed metadata never fails a load: an EXIF block that is not TIFF, points outside itself or is cut short
/// counts as "no orientation", and so does a tag whose type or count Pillow would not turn into an integer.
public enum ImageMetadata {
    /// The orientation to apply: the EXIF tag when the EXIF block holds one (any value other than 2...8 means
    /// "leave as is", as in Pillow), otherwise the first `tiff:Orientation` of the XMP packet.
    public static func orientation(exif: [UInt8]?, xmp: [UInt8]?) -> ImageOrientation {
        if let exif {
            switch exifOrientationTag(exif) {
            case .present(let value): return value.flatMap(ImageOrientation.init(rawValue:)) ?? .up
            case .absent: break
            }
        }
        if let xmp, let value = xmpOrientation(xmp) { return ImageOrientation(rawValue: value) ?? .up }
        return .up
    }

    enum Tag: Equatable {
        case absent
        case present(Int?)  // nil: the tag exists but is not a single integer
    }

    /// The Orientation entry of IFD0 in a TIFF-structured EXIF block (the bytes after "Exif\0\0"; a leading
    /// "Exif\0\0" is skipped too, as Pillow does).
    static func exifOrientationTag(_ block: [UInt8]) -> Tag {
        block.withUnsafeBufferPointer { raw -> Tag in
            var b = raw[...]
            if b.count >= 6, b.prefix(6).elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) { b = b.dropFirst(6) }
            let base = b.startIndex
            guard b.count >= 8 else { return .absent }
            // Byte order, then the magic 42. Pillow also accepts the swapped magic seen in some files.
            let little: Bool
            switch (b[base], b[base + 1]) {
            case (0x49, 0x49): little = true
            case (0x4D, 0x4D): little = false
            default: return .absent
            }
            let magic = (b[base + 2], b[base + 3])
            guard magic == (0x2A, 0) || magic == (0, 0x2A) else { return .absent }
            func u16(_ at: Int) -> Int? {
                guard at >= 0, at + 2 <= b.count else { return nil }
                let p = base + at
                return little ? Int(b[p]) | Int(b[p + 1]) << 8 : Int(b[p]) << 8 | Int(b[p + 1])
            }
            func u32(_ at: Int) -> Int? {
                guard let lo = u16(little ? at : at + 2), let hi = u16(little ? at + 2 : at) else { return nil }
                return lo | hi << 16
            }
            guard let ifd = u32(4), let count = u16(ifd) else { return .absent }
            // The whole directory must be there: Pillow drops every tag of a directory it cannot read to the end.
            guard ifd + 2 + count * 12 <= b.count else { return .absent }
            var found: Tag = .absent
            for i in 0..<count {
                let entry = ifd + 2 + i * 12
                guard let tag = u16(entry), tag == 0x0112, let type = u16(entry + 2), let n = u32(entry + 4) else {
                    continue
                }
                // A single SHORT, LONG, SSHORT or SLONG is an integer to Pillow; anything else (BYTE gives bytes,
                // several values give a tuple) does not match an orientation.
                var value: Int? = nil
                if n == 1 {
                    switch type {
                    case 3: value = u16(entry + 8)
                    case 4: value = u32(entry + 8)
                    case 8: value = u16(entry + 8).map { Int(Int16(truncatingIfNeeded: $0)) }
                    case 9: value = u32(entry + 8).map { Int(Int32(truncatingIfNeeded: $0)) }
                    default: value = nil
                    }
                }
                found = .present(value)  // a repeated tag: the last one wins, as in a dict
            }
            return found
        }
    }

    /// The digit of the first `tiff:Orientation="N"` or `<tiff:Orientation>N` in an XMP packet.
    static func xmpOrientation(_ xmp: [UInt8]) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        guard xmp.count > key.count + 1 else { return nil }
        var i = 0
        while i + key.count + 1 < xmp.count {
            if xmp[i] == key[0], xmp[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count
                if xmp[j] == UInt8(ascii: "=") {
                    j += 1
                    guard j < xmp.count, xmp[j] == UInt8(ascii: "\"") else { i += 1; continue }
                } else if xmp[j] != UInt8(ascii: ">") {
                    i += 1
                    continue
                }
                j += 1
                if j < xmp.count, xmp[j] >= UInt8(ascii: "0"), xmp[j] <= UInt8(ascii: "9") {
                    return Int(xmp[j] - UInt8(ascii: "0"))
                }
            }
            i += 1
        }
        return nil
    }
}
