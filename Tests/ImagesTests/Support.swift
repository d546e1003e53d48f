import Foundation
import Images

/// The fixtures written by tools/reference/make_image_fixtures.py (read by path: the test target excludes them).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func bytes(_ relative: String) throws -> [UInt8] { Array(try Data(contentsOf: url(relative))) }

    struct Slice: Decodable {
        let offset: Int
        let count: Int
    }

    struct ImageEntry: Decodable {
        let file: String
        let notes: String
        let width: Int
        let height: Int
        let mode: String
        let rgb: Slice?
    }

    struct Load: Decodable {
        let alpha: String
        let gray16: String

        var options: ImageLoadOptions {
            let a: AlphaHandling = alpha == "compositeOnWhite" ? .compositeOnWhite : alpha == "discard" ? .discard : .transformers
            let g: Gray16Handling = gray16 == "scale" ? .scale : .clipLikePillow
            return ImageLoadOptions(alpha: a, gray16: g)
        }
    }

    struct Case: Decodable {
        let name: String
        let group: String
        let image: String
        let load: Load
        let shape: [Int]
        let tolerance: Double
        let offset: Int
        let count: Int
        let config: String?
        let config_file: String?
    }

    struct ResizeCase: Decodable {
        let image: String
        let width: Int
        let height: Int
        let filter: Int
        let offset: Int
        let count: Int
    }

    struct Crop: Decodable {
        let seed: UInt64
        let width: Int
        let height: Int
        let box: [Int]
        let image: String?
        let offset: Int?
        let count: Int?
    }

    struct Draws: Decodable {
        let seed: UInt64
        let from: Double
        let to: Double
        let draws: [Double]
        let randint1000: [Int]
        let randint_big: [Int]
    }

    struct Manifest: Decodable {
        let pillow: String
        let transformers: String
        let images: [ImageEntry]
        let cases: [Case]
        let resize: [ResizeCase]
        let crops: [Crop]
        let uniform: [Draws]
    }

    /// Loaded once; the expected values are small enough to keep in memory.
    static let manifest: Manifest = {
        let data = try! Data(contentsOf: url("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data)
    }()

    static let floats: [Float] = {
        let data = try! Data(contentsOf: url("expected.f32"))
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }()

    static let u8: [UInt8] = Array(try! Data(contentsOf: url("expected.u8")))

    static func floats(_ offset: Int, _ count: Int) -> ArraySlice<Float> { floats[offset..<(offset + count)] }
    static func u8(_ offset: Int, _ count: Int) -> ArraySlice<UInt8> { u8[offset..<(offset + count)] }
}

/// Largest absolute difference between two equally long sequences.
func maxAbsDifference<A: Collection, B: Collection>(_ a: A, _ b: B) -> Double
where A.Element: BinaryFloatingPoint, B.Element: BinaryFloatingPoint {
    precondition(a.count == b.count)
    var worst = 0.0
    for (x, y) in zip(a, b) { worst = max(worst, abs(Double(x) - Double(y))) }
    return worst
}

func maxAbsDifference<A: Collection, B: Collection>(_ a: A, _ b: B) -> Int
where A.Element == UInt8, B.Element == UInt8 {
    precondition(a.count == b.count)
    var worst = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(Int(x) - Int(y))) }
    return worst
}

/// A small deterministic generator for the fuzz tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// CRC-32 as PNG uses it, to build valid chunks around corrupted contents.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

func bigEndian32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// A JPEG with an extra APP1 segment right after SOI.
func jpegWithAPP1(_ jpeg: [UInt8], payload: [UInt8]) -> [UInt8] {
    let length = payload.count + 2
    return [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload + jpeg.dropFirst(2)
}
