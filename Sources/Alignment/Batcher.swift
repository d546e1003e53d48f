import Common
import Foundation
import Images
import JSON
import Models
import Torch

/// The training data as the loop sees it: the plan (which records, in which seeded order, step by step), each
/// record's tokens and each micro-batch's pixels. Records whose image breaks during the run are skipped as they
/// come, with a note, for the rest of the run.
final class Batcher {
    let options: TrainingOptions
    let vlm: VisionLanguageModel
    let dataFile: String
    /// Records with their fields in place (before the image check), and those whose images decoded.
    let candidates: [PreferenceRecord]
    let usable: [PreferenceRecord]
    /// The plan: the records whose images decoded when the data loaded (a resumed run keeps the plan it started with).
    private(set) var records: [PreferenceRecord]
    /// Records of the plan whose image became unreadable since (deleted, truncated).
    private(set) var lost = Set<String>()
    /// Where a record skipped during the run is reported.
    var note: (String) -> Void = { _ in }
    /// This process's place among data-parallel ranks (rank 0 of 1 alone).
    var rank = 0
    var worldSize = 1

    init(options: TrainingOptions, vlm: VisionLanguageModel, dataFile: String, candidates: [PreferenceRecord], usable: [PreferenceRecord]) {
        self.options = options
        self.vlm = vlm
        self.dataFile = dataFile
        self.candidates = candidates
        self.usable = usable
        records = usable
    }

    // MARK: plan

    func sourceFingerprint() -> String {
        var h = FNV1a64()
        for r in candidates { h.add(field: r.fingerprintText) }
        return h.hex
    }

    /// plan.json holds the ids of the plan a run started with and the fingerprint of the records it was drawn
    /// from. A resumed run takes that plan (an image that broke since skips its record as it comes, the order of
    /// the others is unchanged); a new run plans over the records that decode now and writes the plan.
    func settlePlan(at planPath: String, resume: Bool, write: Bool = true) throws {
        let source = sourceFingerprint()
        if resume, let stored = try? JSONValue.parse(contentsOf: planPath), stored["source"]?.stringValue == source,
           let ids = stored["ids"]?.arrayValue?.compactMap(\.stringValue) {
            var byID: [[UInt8]: PreferenceRecord] = [:]
            for r in candidates { byID[Array(r.id.utf8)] = r }
            let fine = Set(usable.map { Array($0.id.utf8) })
            records = ids.compactMap { byID[Array($0.utf8)] }
            lost = Set(records.filter { !fine.contains(Array($0.id.utf8)) }.map(\.id))
            for r in records where lost.contains(r.id) { note("\(dataFile):\(r.line): its image no longer decodes; the record is skipped") }
            guard records.count > lost.count else { throw PreferenceDataError("\(dataFile): no usable record is left") }
            return
        }
        records = usable
        lost = []
        guard write else { return }  // another rank writes the same plan
        let plan: JSONValue = .object([("source", .string(source)), ("ids", .array(records.map { .string($0.id) }))])
        try (plan.serialized() + "\n").write(toFile: planPath, atomically: true, encoding: .utf8)
    }

    var microBatchesPerEpoch: Int { (records.count + options.batchSize - 1) / options.batchSize }
    /// Micro-batches per optimizer step over all ranks: the global batch is batch size x accumulation x ranks.
    var microBatchesPerStep: Int { options.gradientAccumulation * worldSize }
    var stepsPerEpoch: Int { (microBatchesPerEpoch + microBatchesPerStep - 1) / microBatchesPerStep }
    var totalSteps: Int { options.steps ?? max(1, Int((Double(stepsPerEpoch) * options.epochs).rounded(.up))) }

    /// The micro-batches of optimizer step `step` over all ranks: steps cycle through epochs, each epoch a seeded
    /// shuffle; the last accumulation of an epoch may be partial.
    func globalMicroBatches(ofStep step: Int) -> [[PreferenceRecord]] {
        let perStep = microBatchesPerStep
        let (epoch, within) = (step / stepsPerEpoch, step % stepsPerEpoch)
        let batches = epochMicroBatches(epoch)
        return Array(batches[(within * perStep)..<min((within + 1) * perStep, batches.count)])
    }

    /// Epoch `epoch`'s records in their seeded shuffle, cut into micro-batches (as one process trains them).
    func epochMicroBatches(_ epoch: Int) -> [[PreferenceRecord]] {
        var order = Array(records.indices)
        var rng = SplitMix64(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9)
        order.shuffle(using: &rng)
        return stride(from: 0, to: order.count, by: options.batchSize).map { start in
            order[start..<min(start + options.batchSize, order.count)].map { records[$0] }
        }
    }

    /// This rank's micro-batches of step `step`, and how many the whole step has (each micro-batch's loss is
    /// divided by that count and the gradients summed over the ranks, so a step means what it means in one
    /// process). The step's records are dealt to the ranks in turn, as PyTorch's DistributedSampler deals an
    /// epoch (without its padding: a short last step gives some ranks fewer records), then cut into micro-batches.
    func microBatches(ofStep step: Int) -> (mine: [[PreferenceRecord]], total: Int) {
        let global = globalMicroBatches(ofStep: step)
        guard worldSize > 1 else { return (global, global.count) }
        let all = global.flatMap { $0 }
        let share = stride(from: rank, to: all.count, by: worldSize).map { all[$0] }
        let mine = stride(from: 0, to: share.count, by: options.batchSize).map { Array(share[$0..<min($0 + options.batchSize, share.count)]) }
        return (mine, global.count)
    }

    // MARK: tokens and pixels

    struct Encoded {
        /// The chat-formatted prompt with one image placeholder (expanded per image by `Batch.prompts(for:)`).
        var prompt: [Int]
        var chosen: [Int]
        var rejected: [Int]
    }

    func encode(_ r: PreferenceRecord) throws -> Encoded {
        let tok = vlm.tokenizer
        let prompt = try tok.encode(vlm.chatFormat.prompt(r.prompt))
        guard let eos = tok.eosID else { throw ModelError("\(vlm.folder): the tokenizer has no EOS token") }
        let chosen = try tok.encode(r.chosen, addSpecialTokens: false) + [eos]
        let rejected = try r.rejected.map { try tok.encode($0, addSpecialTokens: false) + [eos] } ?? []
        return Encoded(prompt: prompt, chosen: chosen, rejected: rejected)
    }

    /// A micro-batch ready for the model: its records (those whose images still decode), their tokens, the
    /// pixels of their images and of the other image their objective scores (retrieved or corrupted).
    struct Batch {
        var records: [PreferenceRecord] = []
        var encoded: [Encoded] = []
        var inputs: ImageInputs?
        var otherInputs: ImageInputs?
    }

    func load(_ batch: [PreferenceRecord]) throws -> Batch {
        var loaded = Batch()
        var images: [RGBImage] = [], others: [RGBImage] = []
        for r in batch where !lost.contains(r.id) {
            do {
                let image = try RGBImage(contentsOfFile: r.image!)
                let other = options.otherImage == .retrieved ? try RGBImage(contentsOfFile: r.retrievedImage!) : nil
                loaded.records.append(r)
                images.append(image)
                if let other { others.append(other) }
            } catch {
                lost.insert(r.id)
                note("\(dataFile):\(r.line): skipped during the run: \(error)")
                guard records.count > lost.count else { throw PreferenceDataError("\(dataFile): no usable record is left (the last ones became unreadable during the run)") }
            }
        }
        guard !loaded.records.isEmpty else { return loaded }
        loaded.encoded = try loaded.records.map(encode)
        loaded.inputs = try vlm.pixels(images)
        switch options.otherImage {
        case .retrieved: loaded.otherInputs = try vlm.pixels(others)
        case .corrupted: loaded.otherInputs = try vlm.pixels(corrupted(images, of: loaded.records))
        case nil: break
        }
        return loaded
    }

    /// mDPO's corrupted image: a random resized crop keeping 1-20 % of the area, seeded per record so that the
    /// reference cache and resumed runs see the same crop.
    func corrupted(_ images: [RGBImage], of records: [PreferenceRecord]) -> [RGBImage] {
        zip(records, images).map { r, image in
            let seed = options.seed ^ UInt64(truncatingIfNeeded: r.id.hashValueStable)
            return RandomResizedCrop.mdpo.apply(to: image, seed: seed).image
        }
    }
}

extension PreferenceRecord {
    /// What a record contributes to a fingerprint (the plan's source, the reference cache's key).
    var fingerprintText: String { "\(id)|\(prompt)|\(chosen)|\(rejected ?? "")|\(image ?? "")|\(retrievedImage ?? "")" }
}

extension String {
    var hashValueStable: UInt64 {
        var h = FNV1a64()
        h.add(field: self)
        return h.value
    }
}
