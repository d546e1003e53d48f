import Foundation
import TestSupport
import JSON
@testable import TensorBoard
import Testing
@testable import Alignment

/// TensorBoard event files: the records PyTorch's SummaryWriter writes (tools/reference/make_tensorboard_fixtures.py),
/// byte for byte, and a training run's metrics in them, once per step across a resume.
@Suite(.serialized) struct TensorBoardTests {
    let fixture = alignmentFixture("tensorboard")

    /// The TFRecord records of a file: their payloads, framing checked by the caller's reader.
    func records(_ path: String) throws -> [[UInt8]] {
        let bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        var out: [[UInt8]] = [], offset = 0
        while offset + 12 <= bytes.count {
            let length = (0..<8).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
            out.append(Array(bytes[offset..<(offset + 16 + length)]))
            offset += 16 + length
        }
        #expect(offset == bytes.count)
        return out
    }

    @Test func scalarEventsEqualPyTorchsBytes() throws {
        let expected = try JSONValue.parse(contentsOf: fixture + "/scalars.json")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        let writer = try TensorBoardWriter(folder: folder, wallTime: try #require(expected["file_version_wall_time"]?.doubleValue))
        let scalars = try #require(expected["scalars"]?.arrayValue)
        for s in scalars {
            let value = s["value"]?.doubleValue ?? (s["value"]?.stringValue == "inf" ? .infinity : .nan)
            try writer.add(step: s["step"]!.intValue!, scalars: [(s["tag"]!.stringValue!, value)], wallTime: s["wall_time"]!.doubleValue!)
        }
        try writer.flush()
        let ours = try records(writer.path), theirs = try records(fixture + "/pytorch.tfevents")
        #expect(ours.count == theirs.count && ours.count == scalars.count + 1)
        // Every scalar record, length and CRCs included, is PyTorch's; the first names the file version (and its
        // writer: ours says realign, theirs tensorboard's event_file_writer).
        #expect(Array(ours.dropFirst()) == Array(theirs.dropFirst()))
        let (version, read) = try TensorBoardWriter.read(fixture + "/pytorch.tfevents")
        let ourVersion = try TensorBoardWriter.read(writer.path).fileVersion
        #expect(version == "brain.Event:2" && ourVersion == "brain.Event:2")
        #expect(read.map(\.tag) == scalars.map { $0["tag"]!.stringValue! })
        #expect(read.map(\.step) == scalars.map { $0["step"]!.intValue! })
        #expect(read.first?.value == Float(0.6931471805599453))
    }

    @Test func aCorruptRecordIsNamed() throws {
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: fixture + "/pytorch.tfevents")))
        bytes[bytes.count - 6] ^= 0xFF
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-bad-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(performing: { _ = try TensorBoardWriter.read(path) }, throws: { "\($0)".contains("bad data CRC") })
        // A length of 2^64 - 1 (its CRC made to match) is an error, not an overflow.
        var huge = Data(TensorBoardWriter.record([1, 2, 3]))
        let length = [UInt8](repeating: 0xFF, count: 8)
        huge.replaceSubrange(0..<8, with: length)
        huge.replaceSubrange(8..<12, with: withUnsafeBytes(of: TensorBoardWriter.maskedCRC32C(length).littleEndian) { Array($0) })
        try huge.write(to: URL(fileURLWithPath: path))
        #expect(performing: { _ = try TensorBoardWriter.read(path) }, throws: { "\($0)".contains("truncated record") })
    }

    /// --report-to tensorboard: every metrics.jsonl value is in the events, each step once, also after a resume.
    @Test func trainingRunsLogEveryStepOnce() throws {
        var o = smallOptions(.dpo)
        o.steps = 4
        o.tensorBoard = true
        let out = temporaryFolder()
        #expect(throws: Interrupted.self) {
            try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o).run(resume: false) { r in
                if r.step == 3 { throw Interrupted() }
            }
        }
        try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o).run(resume: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/runs").filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(files.count == 1)
        let (_, scalars) = try TensorBoardWriter.read(out + "/runs/" + files[0])
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        var expected: [(Int, String, Float)] = []
        for line in lines {
            let fields = try #require(try JSONValue.parse(Array(line.utf8)).objectValue)
            let step = try #require(fields.first { $0.0 == "step" }?.1.intValue)
            for (key, value) in fields where key != "step" { expected.append((step, key, Float(value.doubleValue!))) }
        }
        #expect(lines.count == 4 && expected.count > 20)
        #expect(scalars.map { "\($0.step) \($0.tag) \($0.value)" } == expected.map { "\($0.0) \($0.1) \($0.2)" })
    }
}
