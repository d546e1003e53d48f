import Common
import Foundation
import JSON

extension Shard {
    /// Writes OUT and its side file from the `count` shards' files of build-prefs: each record's line as its shard
    /// wrote it, in the order of `ids` (what one process writes: the bad input lines' ids, which shard 0 takes,
    /// then every sample's). A record no shard has finished is an error naming its shard; nothing is written then.
    public static func mergePairs(into out: String, count: Int, ids: [String], problemCount: Int) throws {
        guard count >= 1 else { throw ShardError("--merge-shards \(count): the number of shards must be at least 1") }
        let shards = (0..<count).map { outputPath(for: out, index: $0, count: count) }
        let kept = lines(of: shards) { $0["id"]?.stringValue }
        let skipped = lines(of: shards.map(ResumableOutput.skippedPath(for:))) { $0["id"]?.stringValue }
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
        guard missing.isEmpty else { throw unfinished(out, missing, count: count) }
        try Data(keptOut).write(to: URL(fileURLWithPath: out), options: .atomic)
        try Data(skippedOut).write(to: URL(fileURLWithPath: ResumableOutput.skippedPath(for: out)), options: .atomic)
    }
}
