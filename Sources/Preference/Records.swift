import Alignment
import Common
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

    public init(id: String, image: String, prompt: String, chosen: String?, line: Int) {
        self.id = id
        self.image = image
        self.prompt = prompt
        self.chosen = chosen
        self.line = line
    }
}

/// The end of one record: a pair for the output, or an id with a reason for the side file.
public enum RecordOutcome: Sendable, Equatable {
    case kept(PreferenceRecord)
    /// `kind`: "unpaired" (worked, but no pair came of it) or "failed" (an error: image, backend, mask, input).
    case skipped(id: String, kind: String, reason: String)

    public var id: String? {
        switch self {
        case .kept(let record): return record.id
        case .skipped(let id, _, _): return id
        }
    }
}

public enum SampleReader {
    /// Reads the input JSONL. Lines that cannot be used come back as failures (id `line-N` when the line has
    /// none), so they reach the side file and the rest goes on.
    public static func read(_ path: String) throws -> (samples: [SampleInput], problems: [RecordOutcome]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw PipelineError("\(path): cannot read the input file") }
        let lines = JSONLines(data: data, path: path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        var samples: [SampleInput] = []
        var problems = lines.issues.map { ($0.line, RecordOutcome.skipped(id: "line-\($0.line)", kind: "failed", reason: $0.description)) }
        var seen = Set<String>()
        for (number, json) in lines.records {
            func problem(_ id: String?, _ reason: String) {
                problems.append((number, .skipped(id: id ?? "line-\(number)", kind: "failed", reason: "\(path):\(number): \(reason)")))
            }
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
        // In file order, as the output's order follows the input's.
        return (samples, problems.sorted { $0.0 < $1.0 }.map(\.1))
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
    private let out: JSONLAppender
    private let side: JSONLAppender

    /// `<OUT stem>.skipped.jsonl` beside OUT.
    public static func skippedPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        return url.deletingLastPathComponent().appendingPathComponent("\(stem).skipped.jsonl").path
    }

    public init(path: String) throws {
        self.path = path
        skippedPath = Self.skippedPath(for: path)
        out = try JSONLAppender(path: path)
        side = try JSONLAppender(path: skippedPath)
        for line in out.existing + side.existing { if let id = line?["id"]?.stringValue { done.insert(id) } }
    }

    public func write(_ outcome: RecordOutcome) throws {
        switch outcome {
        case .kept(let record):
            try out.append(record.json)
        case .skipped(let id, let kind, let reason):
            try side.append(.object([("id", .string(id)), ("kind", .string(kind)), ("reason", .string(reason))]))
        }
        if let id = outcome.id { done.insert(id) }
    }
}
