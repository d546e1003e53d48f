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
    /// The sample's kind, when its file says (`"category"`: caption, existence, count, ...).
    public var category: String?

    public init(id: String, image: String, prompt: String, chosen: String?, line: Int, category: String? = nil) {
        self.id = id
        self.image = image
        self.prompt = prompt
        self.chosen = chosen
        self.line = line
        self.category = category
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
            samples.append(SampleInput(id: id, image: absolute.standardizedFileURL.path, prompt: prompt, chosen: chosen, line: number,
                                       category: json["category"]?.stringValue))
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

/// A mix of sample kinds (Re-Align's samples mix descriptions with question answering): for each image, one of its
/// samples is kept, of a kind drawn with these weights among the kinds it has (seeded, so the same input and seed
/// give the same samples). Samples of kinds without a weight are dropped; samples without a kind count as "caption".
public struct KindMix: Sendable, Equatable {
    public var weights: [(kind: String, weight: Double)]
    public var seed: UInt64

    public init(weights: [(kind: String, weight: Double)], seed: UInt64) {
        self.weights = weights
        self.seed = seed
    }

    public static func == (a: KindMix, b: KindMix) -> Bool {
        a.seed == b.seed && a.weights.map(\.kind) == b.weights.map(\.kind) && a.weights.map(\.weight) == b.weights.map(\.weight)
    }

    /// "caption=0.5,existence=0.2,count=0.1".
    public init(parsing text: String, seed: UInt64) throws {
        weights = try text.split(separator: ",").map { part in
            let kv = part.split(separator: "=").map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty, let w = Double(kv[1]), w >= 0, w.isFinite else {
                throw PipelineError("kind mix: '\(part)' is not KIND=WEIGHT (a weight of 0 or more)")
            }
            return (kv[0], w)
        }
        guard weights.contains(where: { $0.weight > 0 }) else { throw PipelineError("kind mix: every weight is 0") }
        self.seed = seed
    }

    public var description: String { weights.map { "\($0.kind)=\($0.weight)" }.joined(separator: ",") }

    /// One sample per image, in the order of the images' first samples.
    public func pick(_ samples: [SampleInput]) -> [SampleInput] {
        var order: [String] = [], byImage: [String: [SampleInput]] = [:]
        for s in samples {
            if byImage[s.image] == nil { order.append(s.image) }
            byImage[s.image, default: []].append(s)
        }
        return order.compactMap { image -> SampleInput? in
            let candidates = byImage[image]!
            // Seeded by the image's file name, not its folder: the same data elsewhere picks the same samples.
            var hash = FNV1a64()
            hash.add(field: (image as NSString).lastPathComponent)
            var rng = SplitMix64(seed: seed ^ hash.value)
            let available = weights.filter { w in w.weight > 0 && candidates.contains { Array(($0.category ?? "caption").utf8) == Array(w.kind.utf8) } }
            let total = available.reduce(0) { $0 + $1.weight }
            guard total > 0 else { return nil }
            var x = rng.unit() * total
            var kind = available.last!.kind
            for w in available {
                if x < w.weight { kind = w.kind; break }
                x -= w.weight
            }
            let ofKind = candidates.filter { Array(($0.category ?? "caption").utf8) == Array(kind.utf8) }
            return ofKind[Int(rng.next() % UInt64(ofKind.count))]
        }
    }
}
