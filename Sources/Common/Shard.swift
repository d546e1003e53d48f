import Foundation
import JSON

/// Records split over processes: shard I of N takes the records at input positions I, I+N, I+2N, ... and writes
/// them to its own resumable file beside the output (`<stem>.shard-I-of-N.<ext>`); a merge then writes the one
/// output in input order, from each record's line as its shard wrote it.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else { throw ShardError("shard \(index)/\(count): the shard must be I/N with 0 <= I < N") }
        self.index = index
        self.count = count
    }

    /// "I/N".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError("--shard \(text): expected I/N, e.g. 0/4 (shard I of N, from 0)")
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// This shard's items of a list in input order.
    public func take<T>(_ items: [T]) -> [T] {
        stride(from: index, to: items.count, by: count).map { items[$0] }
    }

    /// `<OUT stem>.shard-I-of-N.<ext>` beside OUT.
    public static func outputPath(for out: String, index: Int, count: Int) -> String {
        let url = URL(fileURLWithPath: out)
        let ext = url.pathExtension.isEmpty ? "jsonl" : url.pathExtension
        return url.deletingPathExtension().path + ".shard-\(index)-of-\(count).\(ext)"
    }

    public func outputPath(for out: String) -> String { Self.outputPath(for: out, index: index, count: count) }

    /// The complete lines of JSONL files by each record's key (a torn last line is left out: its record is not
    /// done; a later file's line wins over an earlier one's).
    public static func lines(of paths: [String], key: (JSONValue) -> String?) -> [[UInt8]: [UInt8]] {
        var table: [[UInt8]: [UInt8]] = [:]
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](data)
            var start = 0
            for (i, b) in bytes.enumerated() where b == 10 {
                let line = Array(bytes[start..<i])
                start = i + 1
                guard let json = try? JSONValue.parse(line), let k = key(json) else { continue }
                table[Array(k.utf8)] = line
            }
        }
        return table
    }

    /// "cannot merge, unfinished shards (shard 1/4: 3 record(s), ...)": `missing` counts records by shard.
    public static func unfinished(_ out: String, _ missing: [Int: Int], count: Int) -> ShardError {
        let list = missing.keys.sorted().map { "shard \($0)/\(count): \(missing[$0]!) record(s)" }.joined(separator: ", ")
        return ShardError("\(out): cannot merge, unfinished shards (\(list)); run them again, they resume")
    }
}

public struct ShardError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
