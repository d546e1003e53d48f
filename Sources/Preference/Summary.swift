import Backends
import Foundation
import JSON

/// What a preference-data run produced, read back from its output and side files (so it covers resumed runs).
public struct PreferenceSummary: Sendable {
    public var pairs = 0, unpaired = 0, failed = 0
    /// Kept pairs per similarity bin [0, 0.1), ..., [0.9, 1.0] (negative cosines count in the first).
    public var similarityHistogram = [Int](repeating: 0, count: 10)
    public var meanRank: Double?
    public var meanSimilarity: Double?
    /// VaPR: per category, and mean token-length gap / Levenshtein distance.
    public var categories: [String: Int] = [:]
    public var meanLengthGap: Double?
    public var meanLevenshtein: Double?
    /// Re-Align: the mean share of the chosen answer's characters the masks hide.
    public var meanMaskedFraction: Double?
    /// Reasons of skipped records, grouped by their first words.
    public var reasons: [String: Int] = [:]

    public init(output: String) {
        var ranks: [Int] = [], sims: [Double] = [], gaps: [Int] = [], distances: [Int] = [], hidden: [Double] = []
        for json in Self.lines(output) {
            pairs += 1
            if let s = json["similarity"]?.doubleValue {
                sims.append(s)
                similarityHistogram[min(9, max(0, Int(s * 10)))] += 1
            }
            if let r = json["retrieval_rank"]?.intValue { ranks.append(r) }
            if let c = json["category"]?.stringValue { categories[c, default: 0] += 1 }
            if let g = json["length_gap"]?.intValue { gaps.append(g) }
            if let d = json["levenshtein"]?.intValue { distances.append(d) }
            if let masked = json["masked"]?.stringValue, let chosen = json["chosen"]?.stringValue, !chosen.isEmpty {
                let kept = masked.unicodeScalars.count - MaskedText(masked).maskCount * maskToken.unicodeScalars.count
                hidden.append(Double(chosen.unicodeScalars.count - kept) / Double(chosen.unicodeScalars.count))
            }
        }
        for json in Self.lines(ResumableOutput.skippedPath(for: output)) {
            if json["kind"]?.stringValue == "unpaired" { unpaired += 1 } else { failed += 1 }
            let reason = json["reason"]?.stringValue ?? ""
            reasons[Self.reasonGroup(reason), default: 0] += 1
        }
        func mean(_ v: [Int]) -> Double? { v.isEmpty ? nil : Double(v.reduce(0, +)) / Double(v.count) }
        meanRank = mean(ranks)
        meanSimilarity = sims.isEmpty ? nil : sims.reduce(0, +) / Double(sims.count)
        meanLengthGap = mean(gaps)
        meanLevenshtein = mean(distances)
        meanMaskedFraction = hidden.isEmpty ? nil : hidden.reduce(0, +) / Double(hidden.count)
    }

    static func lines(_ path: String) -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONValue.parse(Array($0)) }
    }

    /// "no completion below tau ..." and "induction (rank 2): ..." group by the text before any detail.
    static func reasonGroup(_ reason: String) -> String {
        var r = reason
        if let colon = r.range(of: ": ") , r.hasPrefix("/") { r = String(r[colon.upperBound...]) }
        for stop in [" (", ":", " over "] { if let range = r.range(of: stop) { r = String(r[..<range.lowerBound]) } }
        return r
    }

    /// A few lines for the terminal.
    public func text(stageSeconds: [String: Double], usage: [(String, TokenUsage)], elapsed: Double) -> String {
        var lines = ["pairs \(pairs), unpaired \(unpaired), failed \(failed)"]
        if let meanSimilarity, let meanRank {
            lines.append(String(format: "similarity mean %.3f; retrieval rank used, mean %.2f", meanSimilarity, meanRank))
            if let f = meanMaskedFraction { lines.append(String(format: "masks hide %.0f%% of the chosen answer on average", 100 * f)) }
            let peak = max(1, similarityHistogram.max() ?? 1)
            for (i, n) in similarityHistogram.enumerated() where n > 0 {
                lines.append(String(format: "  %.1f-%.1f %@ %d", Double(i) / 10, Double(i + 1) / 10, String(repeating: "#", count: max(1, n * 30 / peak)), n))
            }
        }
        if !categories.isEmpty {
            lines.append("categories: " + categories.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if let g = meanLengthGap, let d = meanLevenshtein { lines.append(String(format: "mean token-length gap %.2f, mean Levenshtein %.1f", g, d)) }
        }
        for (reason, n) in reasons.sorted(by: { $0.value > $1.value }).prefix(6) { lines.append("  skipped \(n): \(reason)") }
        let total = stageSeconds.values.reduce(0, +)
        if total > 0 {
            lines.append("stage time: " + StageClock.stages.compactMap { s in stageSeconds[s].map { String(format: "%@ %.0f%%", s, 100 * $0 / total) } }.joined(separator: ", "))
        }
        for (role, u) in usage where u.requests > 0 {
            lines.append("\(role): \(u.requests) requests, \(u.promptTokens) prompt + \(u.completionTokens) completion tokens")
        }
        if elapsed > 0, pairs > 0 { lines.append(String(format: "elapsed %@", formatDuration(elapsed))) }
        return lines.joined(separator: "\n")
    }

    public func json(stageSeconds: [String: Double], usage: [(String, TokenUsage)], elapsed: Double) -> JSONValue {
        func optional(_ d: Double?) -> JSONValue { d.map { .double($0) } ?? .null }
        return .object([
            ("pairs", .int(pairs)), ("unpaired", .int(unpaired)), ("failed", .int(failed)),
            ("similarity_histogram", .array(similarityHistogram.map { .int($0) })),
            ("mean_similarity", optional(meanSimilarity)), ("mean_retrieval_rank", optional(meanRank)),
            ("categories", .object(categories.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("mean_length_gap", optional(meanLengthGap)), ("mean_levenshtein", optional(meanLevenshtein)),
            ("mean_masked_fraction", optional(meanMaskedFraction)),
            ("skipped_reasons", .object(reasons.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("stage_seconds", .object(StageClock.stages.compactMap { s in stageSeconds[s].map { (s, .double($0)) } })),
            ("usage", .object(usage.map { ($0.0, .object([("requests", .int($0.1.requests)), ("prompt_tokens", .int($0.1.promptTokens)),
                                                          ("completion_tokens", .int($0.1.completionTokens))])) })),
            ("elapsed_seconds", .double(elapsed)),
        ])
    }
}

/// What a preference-data job has cost over all its runs: a killed and resumed job reports the requests, tokens
/// and seconds of every run, not only the last one's. Kept beside the output (`<stem>.ledger.json`) and
/// rewritten after every record, so a kill loses at most the requests of the records in flight.
public final class PreferenceLedger: @unchecked Sendable {
    public let path: String
    /// The finished (or killed) runs before this one.
    private let earlier: (runs: Int, elapsed: Double, stages: [String: Double], usage: [(String, (Int, Int, Int))])
    private let lock = NSLock()

    public init(output: String) {
        path = URL(fileURLWithPath: output).deletingPathExtension().path + ".ledger.json"
        var runs = 0, elapsed = 0.0, stages: [String: Double] = [:], usage: [(String, (Int, Int, Int))] = []
        if let json = try? JSONValue.parse(contentsOf: path) {
            runs = json["runs"]?.intValue ?? 0
            elapsed = json["elapsed_seconds"]?.doubleValue ?? 0
            for (k, v) in json["stage_seconds"]?.objectValue ?? [] { stages[k] = v.doubleValue ?? 0 }
            for (k, v) in json["usage"]?.objectValue ?? [] {
                usage.append((k, (v["requests"]?.intValue ?? 0, v["prompt_tokens"]?.intValue ?? 0, v["completion_tokens"]?.intValue ?? 0)))
            }
        }
        earlier = (runs, elapsed, stages, usage)
    }

    /// Runs before this one.
    public var earlierRuns: Int { earlier.runs }

    /// The whole job so far: the earlier runs plus this one's `usage`, `stageSeconds` and `elapsed`.
    public func totals(usage: [(String, TokenUsage)], stageSeconds: [String: Double], elapsed: Double)
        -> (usage: [(String, TokenUsage)], stageSeconds: [String: Double], elapsed: Double) {
        var names = earlier.usage.map(\.0)
        for (name, _) in usage where !names.contains(where: { Array($0.utf8) == Array(name.utf8) }) { names.append(name) }
        let summed = names.map { name -> (String, TokenUsage) in
            let before = earlier.usage.first { Array($0.0.utf8) == Array(name.utf8) }?.1 ?? (0, 0, 0)
            let now = usage.first { Array($0.0.utf8) == Array(name.utf8) }?.1
            return (name, TokenUsage(requests: before.0 + (now?.requests ?? 0), promptTokens: before.1 + (now?.promptTokens ?? 0),
                                     completionTokens: before.2 + (now?.completionTokens ?? 0)))
        }
        return (summed, earlier.stages.merging(stageSeconds, uniquingKeysWith: +), earlier.elapsed + elapsed)
    }

    /// Writes the whole job so far (atomically: a kill leaves the previous version).
    public func save(usage: [(String, TokenUsage)], stageSeconds: [String: Double], elapsed: Double) throws {
        let t = totals(usage: usage, stageSeconds: stageSeconds, elapsed: elapsed)
        let json: JSONValue = .object([
            ("runs", .int(earlier.runs + 1)), ("elapsed_seconds", .double(t.elapsed)),
            ("stage_seconds", .object(t.stageSeconds.keys.sorted().map { ($0, .double(t.stageSeconds[$0]!)) })),
            ("usage", .object(t.usage.map { ($0.0, .object([("requests", .int($0.1.requests)), ("prompt_tokens", .int($0.1.promptTokens)),
                                                            ("completion_tokens", .int($0.1.completionTokens))])) })),
        ])
        try lock.withLock { try (json.serialized(pretty: true) + "\n").write(toFile: path, atomically: true, encoding: .utf8) }
    }
}
