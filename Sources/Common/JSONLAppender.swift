import Foundation
import JSON

/// A JSONL file that grows a few records at a time and survives a kill. Opening it cuts a torn last line (a write
/// a kill interrupted) so the file holds whole lines only, and hands back those lines; every append is flushed to
/// disk before it returns, so what a resumed job reads is what the killed one finished.
public final class JSONLAppender: @unchecked Sendable {
    public let path: String
    /// The whole lines the file held when it was opened, parsed (nil for a line that is not JSON).
    public let existing: [JSONValue?]
    private let handle: FileHandle

    /// Opens (creating it and its folder when missing) and repairs `path`. `keep`, when given, rewrites the file
    /// with only the existing lines it accepts (a resumed trainer drops the metrics after its checkpoint).
    public init(path: String, keep: ((JSONValue?) -> Bool)? = nil) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let data = FileManager.default.contents(atPath: path) else { throw JSONLError("\(path): cannot read the file") }
        let end = data.last == UInt8(ascii: "\n") ? data.count : (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0)
        let lines = data.prefix(end).split(separator: UInt8(ascii: "\n"))
        var parsed = lines.map { try? JSONValue.parse(Array($0)) }
        if let keep {
            let kept = zip(lines, parsed).filter { keep($0.1) }
            parsed = kept.map(\.1)
            var body = Data()
            for (line, _) in kept { body.append(contentsOf: line); body.append(UInt8(ascii: "\n")) }
            try body.write(to: url, options: .atomic)
        } else if end < data.count {
            let repair = try FileHandle(forWritingTo: url)
            try repair.truncate(atOffset: UInt64(end))
            try repair.close()
        }
        existing = parsed
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Appends records, one line each, in one write, and flushes them to disk.
    public func append(_ records: [JSONValue]) throws {
        guard !records.isEmpty else { return }
        var text = ""
        for r in records { text += r.serialized() + "\n" }
        try handle.write(contentsOf: Data(text.utf8))
        try handle.synchronize()
    }

    public func append(_ record: JSONValue) throws { try append([record]) }
}

public struct JSONLError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
