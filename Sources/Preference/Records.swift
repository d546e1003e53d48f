import Foundation
import JSON

/// One input sample: `{"id", "image", "prompt"[, "chosen"]}`.
public struct SampleInput: Sendable, Equatable {
    public var id: String
    /// Absolute path (relative paths in the file are taken from the input file's folder).
    public var image: String
    public var prompt: String
    public var chosen: String?
    public var line: Int
}

/// The end of one record: a line for the output, or an id with a reason for the side file.
public enum RecordOutcome: Sendable, Equatable {
    case kept(JSONValue)
    /// `kind`: "unpaired" (worked, but no pair came of it) or "failed" (an error: image, backend, mask, input).
    case skipped(id: String, kind: String, reason: String)

    public var id: String? {
        switch self {
        case .kept(let json): return json["id"]?.stringValue
        case .skipped(let id, _, _): return id
        }
    }
}

public enum SampleReader {
    /// Reads the input JSONL. Lines that cannot be used come back as failures (id `line-N` when the line has
    /// none), so they reach the side file and the rest goes on.
    public static func read(_ path: String) throws -> (samples: [SampleInput], problems: [RecordOutcome]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw PipelineError("\(path): cannot read the input file") }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        var samples: [SampleInput] = []
        var problems: [RecordOutcome] = []
        var seen = Set<String>()
        for (index, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let bytes = Array(raw)
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            func problem(_ id: String?, _ reason: String) {
                problems.append(.skipped(id: id ?? "line-\(number)", kind: "failed", reason: "\(path):\(number): \(reason)"))
            }
            guard let json = try? JSONValue.parse(bytes), json.objectValue != nil else { problem(nil, "not a JSON object"); continue }
            let id = json["id"]?.stringValue ?? json["id"]?.intValue.map(String.init)
            guard let id, !id.isEmpty else { problem(nil, "missing 'id'"); continue }
            guard !seen.contains(id) else { problem(id + "#line-\(number)", "duplicate id '\(id)'"); continue }
            seen.insert(id)
            guard let image = json["image"]?.stringValue, !image.isEmpty else { problem(id, "missing 'image'"); continue }
            guard let prompt = json["prompt"]?.stringValue, !prompt.isEmpty else { problem(id, "missing 'prompt'"); continue }
            let chosen = json["chosen"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let absolute = image.hasPrefix("/") ? URL(fileURLWithPath: image) : base.appendingPathComponent(image)
            samples.append(SampleInput(id: id, image: absolute.standardizedFileURL.path, prompt: prompt, chosen: chosen, line: number))
        }
        return (samples, problems)
    }
}

public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The output JSONL and its side file of skipped ids, appended one record at a time. Opening them finds what a
/// previous run finished (a torn last line from a kill is cut off), so a re-run does only the rest.
public final class ResumableOutput: @unchecked Sendable {
    public let path: String
    public let skippedPath: String
    public private(set) var done: Set<String> = []
    private let out: FileHandle
    private let side: FileHandle

    /// `<OUT stem>.skipped.jsonl` beside OUT.
    public static func skippedPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        return url.deletingLastPathComponent().appendingPathComponent("\(stem).skipped.jsonl").path
    }

    public init(path: String) throws {
        self.path = path
        skippedPath = Self.skippedPath(for: path)
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        for file in [path, skippedPath] {
            if !FileManager.default.fileExists(atPath: file) { FileManager.default.createFile(atPath: file, contents: nil) }
            done.formUnion(try Self.repairAndReadIDs(file))
        }
        out = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        side = try FileHandle(forWritingTo: URL(fileURLWithPath: skippedPath))
        try out.seekToEnd()
        try side.seekToEnd()
    }

    deinit {
        try? out.close()
        try? side.close()
    }

    /// Ids of complete lines; a last line without its newline (a write cut by a kill) is removed.
    static func repairAndReadIDs(_ file: String) throws -> Set<String> {
        guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else { return [] }
        var complete = data
        if data.last != UInt8(ascii: "\n") {
            let end = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.truncate(atOffset: UInt64(end))
            try handle.close()
            complete = data.prefix(end)
        }
        var ids = Set<String>()
        for line in complete.split(separator: UInt8(ascii: "\n")) {
            if let id = (try? JSONValue.parse(Array(line)))?["id"]?.stringValue { ids.insert(id) }
        }
        return ids
    }

    public func write(_ outcome: RecordOutcome) throws {
        switch outcome {
        case .kept(let json):
            try out.write(contentsOf: Data((json.serialized() + "\n").utf8))
        case .skipped(let id, let kind, let reason):
            let json = JSONValue.object([("id", .string(id)), ("kind", .string(kind)), ("reason", .string(reason))])
            try side.write(contentsOf: Data((json.serialized() + "\n").utf8))
        }
        if let id = outcome.id { done.insert(id) }
    }
}
