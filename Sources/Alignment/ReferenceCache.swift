import Common
import Foundation
import JSON
import Models
import Torch

/// The reference model's log-probs (adapters off, before any update), computed once per run and kept in
/// `reference_logps.json` under a fingerprint of the model, data and settings, so a resumed run reads them back.
struct ReferenceCache {
    struct Entry: Equatable { var chosen: Double; var rejected: Double; var other: Double }

    let path: String
    let fingerprint: String

    /// The cached entries when the fingerprint matches and every id in `needed` has one.
    func load(needed: [String]) -> [String: Entry]? {
        guard let cached = try? JSONValue.parse(contentsOf: path), cached["fingerprint"]?.stringValue == fingerprint,
              let entries = cached["logps"]?.objectValue else { return nil }
        var result: [String: Entry] = [:]
        for (id, v) in entries { result[id] = Self.entry(v) }
        return needed.allSatisfy { result[$0] != nil } ? result : nil
    }

    static func entry(_ v: JSONValue) -> Entry? {
        guard let a = v.arrayValue, a.count == 3, let c = a[0].doubleValue, let r = a[1].doubleValue, let o = a[2].doubleValue else { return nil }
        return Entry(chosen: c, rejected: r, other: o)
    }

    static func json(_ entries: [String: Entry]) -> JSONValue {
        .object(entries.keys.sorted().map { id -> (String, JSONValue) in
            let e = entries[id]!
            return (id, .array([.double(e.chosen), .double(e.rejected), .double(e.other)]))
        })
    }

    func save(_ entries: [String: Entry]) throws {
        let body: JSONValue = .object([("fingerprint", .string(fingerprint)), ("logps", Self.json(entries))])
        try (body.serialized() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The cached entries, or (on a miss) one no-grad pass over the plan with the adapters off, saved, in the first
    /// epoch's micro-batches: each record padded beside the records it trains with, so that in bf16 its reference
    /// log-probs round as its policy's do at step 0 (padding partners change the last bits there). With a process
    /// group the ranks take turns over the batches, gather every rank's entries and rank 0 saves them.
    func entries(batcher: Batcher, model: any VLMModel, needRejected: Bool, ldAlpha: Double? = nil,
                 group: ProcessGroup? = nil) throws -> [String: Entry] {
        let needed = batcher.records.map(\.id).filter { !batcher.lost.contains($0) }
        var cached = load(needed: needed)
        if let group {  // every rank must agree on a hit, or the ones that missed would wait for the others
            let hit = try Tensor([cached == nil ? 0.0 : 1.0])
            try group.allReduce([hit], .min)
            if try hit.item() == 0 { cached = nil }
        }
        if let cached { return cached }
        var result: [String: Entry] = [:]
        let (rank, ranks) = (group?.rank ?? 0, group?.worldSize ?? 1)
        try model.withLoRADisabled {
            try withNoGrad {
                for (b, records) in batcher.epochMicroBatches(0).enumerated() where b % ranks == rank {
                    let batch = try batcher.load(records)
                    if batch.records.isEmpty { continue }
                    let lp = try scoreBatch(batch, model: model, needRejected: needRejected, ldAlpha: ldAlpha)
                    // One read-back per batch.
                    let zeros = try Tensor.zeros(like: lp.chosen)
                    let columns = [lp.chosen, lp.rejected ?? zeros, lp.other ?? zeros]
                    let values = try Tensor.stack(columns.map { try $0.to(dtype: .float64) }).to(device: .cpu).toArray(Double.self)
                    let n = batch.records.count
                    for (i, r) in batch.records.enumerated() {
                        result[r.id] = Entry(chosen: values[i], rejected: values[n + i], other: values[2 * n + i])
                    }
                }
            }
        }
        if let group {
            for bytes in try group.allGather(bytes: Array(Self.json(result).serialized().utf8)) {
                for (id, v) in try JSONValue.parse(bytes).objectValue ?? [] { result[id] = Self.entry(v) }
            }
        }
        if rank == 0 { try save(result) }
        return result
    }
}
