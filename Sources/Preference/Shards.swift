import Foundation
import JSON

/// Records split over processes. Shard I of N takes the records at input positions I, I+N, I+2N, ... (bad input
/// lines go to shard 0), writes them to its own resumable output beside OUT, and the merge writes OUT and its
/// side file with every record in input order: the bytes one process writes with a deterministic backend.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else { throw PipelineError("shard \(index)/\(count): the shard must be I/N with 0 <= I < N") }
        self.index = index
        self.count = count
    }

    /// "I/N".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw PipelineError("--shard \(text): expected I/N, e.g. 0/4 (shard I of N, from 0)")
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

    /// Writes OUT and its side file from the `count` shards' files: each record's line as its shard wrote it, in
    /// the order of `ids` (what one process writes: the bad input lines' ids, then every sample's). A record no
    /// shard has finished is an error naming its shard; nothing is written then.
    public static func merge(into out: String, count: Int, ids: [String], problemCount: Int) throws {
        var kept: [[UInt8]: [UInt8]] = [:], skipped: [[UInt8]: [UInt8]] = [:]
        for i in 0..<count {
            let path = outputPath(for: out, index: i, count: count)
            try lines(of: path, into: &kept)
            try lines(of: ResumableOutput.skippedPath(for: path), into: &skipped)
        }
        var keptOut: [UInt8] = [], skippedOut: [UInt8] = []
        var missing: [Int: Int] = [:]
        for (position, id) in ids.enumerated() {
            let key = Array(id.utf8)
            if let line = kept[key] {
                keptOut += line + [10]
            } else if let line = skipped[key] {
                skippedOut += line + [10]
            } else {
                missing[position < problemCount ? 0 : (position - problemCount) % count, default: 0] += 1
            }
        }
        guard missing.isEmpty else {
            let list = missing.keys.sorted().map { "shard \($0)/\(count): \(missing[$0]!) record(s)" }.joined(separator: ", ")
            throw PipelineError("\(out): cannot merge, unfinished shards (\(list)); run them again, they resume")
        }
        try Data(keptOut).write(to: URL(fileURLWithPath: out), options: .atomic)
        try Data(skippedOut).write(to: URL(fileURLWithPath: ResumableOutput.skippedPath(for: out)), options: .atomic)
    }

    /// The complete lines of a JSONL file by their record's id (a torn last line is left out: its record is not done).
    static func lines(of path: String, into table: inout [[UInt8]: [UInt8]]) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let bytes = [UInt8](data)
        var start = 0
        for (i, b) in bytes.enumerated() where b == 10 {
            let line = Array(bytes[start..<i])
            start = i + 1
            guard let json = try? JSONValue.parse(line), let id = json["id"]?.stringValue else { continue }
            table[Array(id.utf8)] = line
        }
    }
}
