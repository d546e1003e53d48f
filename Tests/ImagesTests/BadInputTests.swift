import Foundation
import Testing

@testable import Images

/// Decompression bombs and lying headers are refused from the header, before pixel memory exists, through every
/// entry point; the pre-flight check agrees with the decoder on every fuzzed file.
@Suite("Bad images", .serialized)
struct BadInputTests {
    static let bomb = "bad/bomb_16000x16000.png"

    /// This process's peak resident size since the last reset (VmHWM), in bytes.
    static func peakResident() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return -1 }
        return kb * 1024
    }

    /// Resets VmHWM to the current resident size (Linux: "5" into /proc/self/clear_refs).
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    static func resident() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = Int(statm.split(separator: " ")[1]) else { return -1 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test func aBombIsRefusedFromItsHeaderThroughEveryEntryPoint() throws {
        let bytes = try Fixtures.bytes(Self.bomb)
        let path = Fixtures.url(Self.bomb).path
        #expect(Self.resetPeak(), "cannot reset this process's peak resident size")
        let before = Self.resident()
        var errors: [ImageError] = []
        for attempt in 0..<4 {
            do {
                switch attempt {
                case 0: _ = try RGBImage(bytes: bytes, name: "bomb")
                case 1: _ = try RGBImage(data: Data(bytes), name: "bomb")
                case 2: _ = try RGBImage(contentsOfFile: path)
                default: _ = try RGBImage.decode(bytes, name: "bomb")
                }
                Issue.record("entry point \(attempt) decoded a 16000 x 16000 bomb")
            } catch let e as ImageError {
                errors.append(e)
            }
        }
        let grown = Self.peakResident() - before
        #expect(errors.count == 4)
        #expect(errors.allSatisfy { $0.kind == .tooLarge && $0.message == "image is 16000x16000 pixels, more than the limit of 178956970" })
        // Decoded to RGB it would take 768 MB; refused from the header, the peak grows by little more than the file.
        #expect(grown < 16 << 20, "peak resident size grew by \(grown) bytes")
        let check = ImageCheck.check([path])
        #expect(check.reason(for: path)?.contains("16000x16000") == true)
        // Under a limit it fits, the same file decodes (a real stream of 16000 x 16000 pixels, not a lying header).
        let small = ImageLoadOptions(maxPixels: 100)
        let e = try #require(throws: ImageError.self) { try RGBImage(bytes: try Fixtures.bytes("images/rgb_17x9.png"), name: "x", options: small) }
        #expect(e.kind == .tooLarge)
    }

    @Test func aJPEGWhoseHeaderClaimsTooManyPixelsIsRefusedAsTooLarge() throws {
        var bytes = try Fixtures.bytes("images/rgb_97x131_444.jpg")
        let sof = try #require(FuzzTests.sofOffset(bytes))
        bytes.replaceSubrange(sof..<(sof + 4), with: [0xEA, 0x60, 0xEA, 0x60])  // 60000 x 60000
        let e = try #require(throws: ImageError.self) { try RGBImage(bytes: bytes, name: "liar.jpg") }
        #expect(e.kind == .tooLarge && e.message.contains("60000x60000"))
        // Broken files are invalid, not too large.
        let broken = try #require(throws: ImageError.self) { try RGBImage(bytes: Array(bytes.prefix(30)), name: "cut.jpg") }
        #expect(broken.kind == .invalid)
    }

    /// Mutated files on disk: the pre-flight check says "usable" exactly when the decoder reads the file, and
    /// reports the decoder's own message otherwise; the cache gives the same verdicts without decoding again.
    @Test func theCheckAgreesWithTheDecoderOnFuzzedFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("image-check-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = SplitMix64(seed: 0xBAD)
        var paths: [String] = []
        for i in 0..<160 {
            let seed = FuzzTests.seeds[i % FuzzTests.seeds.count]
            let kind = FuzzTests.Mutation.allCases[(i / FuzzTests.seeds.count) % FuzzTests.Mutation.allCases.count]
            let path = "\(folder)/\(i)-\((seed as NSString).lastPathComponent)"
            try Data(FuzzTests.mutate(try Fixtures.bytes(seed), kind, &rng)).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        paths.append("\(folder)/absent.png")
        let cache = folder + "/verdicts.tsv"
        let check = ImageCheck.check(paths, cache: cache)
        var bad = 0
        for path in paths {
            do {
                _ = try RGBImage(contentsOfFile: path)
                #expect(check.reason(for: path) == nil, "\(path) decodes but the check refused it")
            } catch {
                bad += 1
                #expect(check.reason(for: path) == "\(error)")
            }
        }
        #expect(bad == check.failureCount && bad > 20)
        // Cached: an unreadable cache entry for a changed file is re-checked, the rest are taken as they were.
        try Data(try Fixtures.bytes("images/rgb_17x9.png")).write(to: URL(fileURLWithPath: paths[0]))
        let again = ImageCheck.check(paths, cache: cache)
        #expect(again.reason(for: paths[0]) == nil)
        for path in paths.dropFirst() { #expect(again.reason(for: path) == check.reason(for: path)) }
    }
}
