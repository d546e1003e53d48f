import CISAL
import Foundation
import SwiftProtobuf

/// Scalars as TensorBoard event files: TFRecord records (length, masked CRC-32C of the length, an `Event`
/// protobuf, masked CRC-32C of it) in `events.out.tfevents.<time>.<host>`, the file `tensorboard --logdir`
/// reads. The first record names the file version, as TensorFlow's and PyTorch's writers do; each `add`
/// writes one event with every scalar of a step (PyTorch's `add_scalar` writes one per scalar; TensorBoard
/// reads both alike).
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle

    /// A new event file in `folder` (created if needed). `wallTime` is the first event's time (tests fix it).
    public init(folder: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        path = (folder as NSString).appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(host).realign")
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw TensorBoardError("\(path): cannot create the event file")
        }
        handle = h
        var version = Tensorboard_Event()
        version.wallTime = wallTime
        version.fileVersion = "brain.Event:2"
        version.sourceMetadata.writer = "realign"
        try write(version)
    }

    deinit { try? handle.close() }

    /// One step's scalars (in the given order).
    public func add(step: Int, scalars: [(String, Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        var event = Tensorboard_Event()
        event.wallTime = wallTime
        event.step = Int64(step)
        event.summary.value = scalars.map { tag, value in
            var v = Tensorboard_Summary.Value()
            v.tag = tag
            v.simpleValue = Float(value)
            return v
        }
        try write(event)
    }

    public func flush() throws { try handle.synchronize() }

    private func write(_ event: Tensorboard_Event) throws {
        let data: [UInt8] = try event.serializedBytes()
        try handle.write(contentsOf: Self.record(data))
    }

    /// A TFRecord: little-endian length, its masked CRC, the data, its masked CRC.
    static func record(_ data: [UInt8]) -> Data {
        var out = Data()
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        out.append(contentsOf: length)
        out.append(contentsOf: withUnsafeBytes(of: maskedCRC32C(length).littleEndian) { Array($0) })
        out.append(contentsOf: data)
        out.append(contentsOf: withUnsafeBytes(of: maskedCRC32C(data).littleEndian) { Array($0) })
        return out
    }

    /// CRC-32C, rotated and offset as TFRecord masks it (so a CRC of data holding CRCs stays well spread).
    static func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var copy = bytes
        return copy.withUnsafeMutableBufferPointer { crc32_iscsi($0.baseAddress, Int32($0.count), 0xFFFF_FFFF) } ^ 0xFFFF_FFFF
    }

    /// Reads back an event file's scalars (step, tag, value) and checks every record's CRCs.
    public static func read(_ path: String) throws -> (fileVersion: String?, scalars: [(step: Int, tag: String, value: Float, wallTime: Double)]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw TensorBoardError("\(path): cannot read") }
        let bytes = [UInt8](data)
        var offset = 0, version: String? = nil
        var scalars: [(step: Int, tag: String, value: Float, wallTime: Double)] = []
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw TensorBoardError("\(path): truncated record header at byte \(offset)") }
            let lengthBytes = Array(bytes[offset..<(offset + 8)])
            let wide = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * $1) }
            guard u32(offset + 8) == maskedCRC32C(lengthBytes) else { throw TensorBoardError("\(path): bad length CRC at byte \(offset)") }
            guard wide <= UInt64(bytes.count - offset - 12), offset + 12 + Int(wide) + 4 <= bytes.count else {
                throw TensorBoardError("\(path): truncated record at byte \(offset)")
            }
            let length = Int(wide)
            let body = Array(bytes[(offset + 12)..<(offset + 12 + length)])
            guard u32(offset + 12 + length) == maskedCRC32C(body) else { throw TensorBoardError("\(path): bad data CRC at byte \(offset)") }
            let event = try Tensorboard_Event(serializedBytes: body)
            if case .fileVersion(let v) = event.what { version = v }
            for v in event.summary.value { scalars.append((Int(event.step), v.tag, v.simpleValue, event.wallTime)) }
            offset += 12 + length + 4
        }
        return (version, scalars)
    }
}

public struct TensorBoardError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
