import Foundation
import Testing

@testable import Images

/// Mutated JPEG and PNG files: each must either decode to a well-formed image or throw an ImageError naming the
/// file. A crash, a hang or another error type fails the run.
@Suite("Fuzzing the decoders")
struct FuzzTests {
    static let seeds = [
        "images/rgb_97x131_444.jpg", "images/progressive_203x151.jpg", "images/gray_progressive_33x47.jpg",
        "images/cmyk_64x48.jpg", "images/exif_orientation_6.jpg", "images/rgb_17x9.png", "images/palette_key_50x40.png",
        "images/interlaced_37x29.png", "images/gray16_70x50.png", "images/rgba16_30x20.png", "images/la_45x30.png",
    ]

    enum Mutation: CaseIterable {
        case truncate, flipBytes, corruptHeader, randomizeRun, duplicateRange, deleteRange, pngHeaderWithValidCRC, jpegSizeField
    }

    /// Offsets of a JPEG's SOF size fields, or nil.
    static func sofOffset(_ b: [UInt8]) -> Int? {
        var i = 2
        while i + 9 < b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC { return i + 5 }
            i += 2 + length
        }
        return nil
    }

    static func mutate(_ original: [UInt8], _ kind: Mutation, _ rng: inout SplitMix64) -> [UInt8] {
        var b = original
        let n = b.count
        switch kind {
        case .truncate:
            return Array(b.prefix(Int.random(in: 0..<n, using: &rng)))
        case .flipBytes:
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                b[Int.random(in: 0..<n, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            }
        case .corruptHeader:
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                b[Int.random(in: 0..<min(n, 96), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case .randomizeRun:
            let start = Int.random(in: 0..<n, using: &rng)
            for i in start..<min(n, start + Int.random(in: 1...64, using: &rng)) { b[i] = UInt8.random(in: 0...255, using: &rng) }
        case .duplicateRange:
            let start = Int.random(in: 0..<n, using: &rng)
            let end = min(n, start + Int.random(in: 1...200, using: &rng))
            b.insert(contentsOf: original[start..<end], at: Int.random(in: 0...n, using: &rng))
        case .deleteRange:
            let start = Int.random(in: 0..<n, using: &rng)
            b.removeSubrange(start..<min(n, start + Int.random(in: 1...200, using: &rng)))
        case .pngHeaderWithValidCRC:
            // IHDR fields changed (size, depth, colour type, interlace) with a matching CRC, so libpng acts on them.
            guard n > 33, b[12..<16].elementsEqual(Array("IHDR".utf8)) else { return mutate(original, .corruptHeader, &rng) }
            let field = Int.random(in: 16..<29, using: &rng)
            b[field] = [0, 1, 2, 3, 4, 6, 8, 16, 0x7F, 0xFF, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            b.replaceSubrange(29..<33, with: bigEndian32(crc32(b[12..<29])))
        case .jpegSizeField:
            guard let sof = sofOffset(b) else { return mutate(original, .corruptHeader, &rng) }
            // height (2 bytes), width (2 bytes), component count
            let field = sof + Int.random(in: 0..<5, using: &rng)
            b[field] = [0, 1, 3, 0x7F, 0xFF, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
        }
        return b
    }

    @Test("600 mutated files: a valid image or an error naming the file")
    func mutatedFiles() throws {
        var rng = SplitMix64(seed: 0x5EED)
        var decoded = 0, rejected = 0
        var messages: [String: Int] = [:]
        let originals = try Self.seeds.map { ($0, try Fixtures.bytes($0)) }
        for i in 0..<600 {
            let (file, original) = originals[i % originals.count]
            let kind = Mutation.allCases[(i / originals.count) % Mutation.allCases.count]
            let mutated = Self.mutate(original, kind, &rng)
            let name = "fuzz-\(i)-\((file as NSString).lastPathComponent)"
            do {
                let image = try RGBImage(bytes: mutated, name: name)
                #expect(image.width > 0 && image.height > 0 && image.pixels.count == image.width * image.height * 3)
                decoded += 1
            } catch let error as ImageError {
                #expect(error.source == name)
                #expect(error.description.hasPrefix("\(name): ") && !error.message.isEmpty)
                let key = String(error.message.prefix(40))
                messages[key, default: 0] += 1
                rejected += 1
            }
        }
        print("fuzz: \(decoded) decoded, \(rejected) rejected; messages: \(messages.sorted { $0.value > $1.value }.prefix(12))")
        #expect(decoded + rejected == 600)
        #expect(rejected > 100)
    }

    @Test("random bytes and empty-ish inputs")
    func garbage() {
        var rng = SplitMix64(seed: 99)
        for i in 0..<200 {
            var bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Half of them start with a real signature, so the decoders see them.
            if i % 2 == 0 { bytes = (i % 4 == 0 ? [0xFF, 0xD8, 0xFF] : [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes }
            do {
                _ = try RGBImage(bytes: bytes, name: "garbage-\(i)")
            } catch let error as ImageError {
                #expect(error.source == "garbage-\(i)")
            } catch {
                Issue.record("unexpected error type \(error)")
            }
        }
    }
}
