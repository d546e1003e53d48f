import Common
import Foundation
import Images
import JSON
import Models
import Tokenizers
import Torch

/// Settings of a preference-training run; defaults follow the Re-Align paper's table.
public struct TrainingOptions: Sendable {
    /// Weighted objectives (e.g. rdpo + 0.1 sft).
    public var objectives: [(Objective, Double)] = [(.rdpo, 1)]
    public var steps: Int? = nil
    public var epochs: Double = 1
    public var batchSize = 1
    public var gradientAccumulation = 8
    public var learningRate = 1e-5
    /// nil: the projector stays frozen.
    public var projectorLearningRate: Double? = 2e-5
    public var weightDecay = 0.0
    public var warmupRatio = 0.03
    public var schedule: LRSchedule.Kind = .cosine
    public var beta = 0.1
    public var labelSmoothing = 0.0
    /// mDPO's anchor margin: -log σ(β·(chosen reward) − δ).
    public var mdpoDelta = 0.0
    public var lora = LoRAConfig(r: 128, alpha: 256, dropout: 0.05)
    public var loraTargets: LoRATargets = .allLinear
    /// 0 disables clipping.
    public var maxGradNorm = 1.0
    public var seed: UInt64 = 42
    public var checkpointEvery = 50
    public var adapterInit: String? = nil
    /// Full fine-tuning of the language model instead of LoRA (the reference comes from the cache).
    public var full = false
    /// Also train the vision tower (frozen by default), with the main learning rate unless `visionLearningRate`.
    public var trainVision = false
    /// The vision tower's own learning rate when it is trained (nil: the main one).
    public var visionLearningRate: Double? = nil
    public var imageRoot: String? = nil
    public var dtype: DType = .float32

    public init() {}

    /// The objectives as a mix validated against what each needs and the settings given.
    public func mix() throws -> ObjectiveMix {
        var settings = Set<ObjectiveNeeds.Parameter>()
        if labelSmoothing != 0 { settings.insert(.labelSmoothing) }
        if mdpoDelta != 0 { settings.insert(.mdpoDelta) }
        return try ObjectiveMix(objectives, settings: settings)
    }

    var needsRejected: Bool { objectives.contains { $0.0.needs.rejected } }
    var otherImage: ObjectiveNeeds.OtherImage? { objectives.lazy.compactMap { $0.0.needs.otherImage }.first }
}

/// What happened at one optimizer step (one line of metrics.jsonl).
public struct StepReport: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var values: [(String, Double)]
    public var pairsPerSecond: Double
    public var secondsLeft: Double
}

/// LoRA preference training with AdamW, warmup schedule, gradient accumulation and clipping, reference log-probs
/// computed once (adapters off) and cached, atomic checkpoints and exact resume.
public final class PreferenceTrainer {
    public let options: TrainingOptions
    public let out: String
    let vlm: VisionLanguageModel
    /// The plan: the records whose images decoded when the data loaded (a resumed run keeps the plan it started with).
    private(set) var records: [PreferenceRecord]
    /// Records of the plan whose image became unreadable since (deleted, truncated): skipped as they come.
    private(set) var lost = Set<String>()
    /// The records reported when the data loaded (bad lines, missing fields, images that do not decode).
    public let problems: [RecordProblem]
    let modelFolder: String
    let dataFile: String
    /// Where warnings during the run go (a record skipped because its image broke); the CLI logs them.
    public var warn: (String) -> Void = { _ in }
    /// How many records were skipped during the run, and why (one line each).
    public private(set) var skippedDuringRun: [String] = []

    public init(modelFolder: String, data: String, out: String, options: TrainingOptions,
                progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        _ = try options.mix()  // an invalid mix is an error before anything loads
        self.options = options
        self.out = out
        self.modelFolder = modelFolder
        self.dataFile = data
        vlm = try VisionLanguageModel(folder: modelFolder, dtype: options.dtype)
        let loaded = try PreferenceData.load(data, imageRoot: options.imageRoot, requireRejected: options.needsRejected)
        var problems = loaded.problems
        var candidates: [PreferenceRecord] = []
        for r in loaded.records {
            if options.otherImage == .retrieved && r.retrievedImage == nil {
                problems.append(RecordProblem(file: data, line: r.line, reason: "no 'retrieved_image' (rdpo needs it)"))
            } else if r.image == nil {
                problems.append(RecordProblem(file: data, line: r.line, reason: "no image"))
            } else {
                candidates.append(r)
            }
        }
        // Every image decodes once now, so that a bad file costs its record, not the run.
        let usesRetrieved = options.otherImage == .retrieved
        let paths = candidates.flatMap { r in [r.image!] + (usesRetrieved ? [r.retrievedImage!] : []) }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let check = ImageCheck.check(paths, cache: (out as NSString).appendingPathComponent("image_check.tsv"), progress: progress)
        var usable: [PreferenceRecord] = []
        for r in candidates {
            if let reason = check.reason(for: r.image!) {
                problems.append(RecordProblem(file: data, line: r.line, reason: "image: \(reason)"))
            } else if usesRetrieved, let reason = check.reason(for: r.retrievedImage!) {
                problems.append(RecordProblem(file: data, line: r.line, reason: "retrieved image: \(reason)"))
            } else {
                usable.append(r)
            }
        }
        self.problems = problems
        self.candidates = candidates
        self.usable = usable
        records = usable
        guard !records.isEmpty else { throw PreferenceDataError("\(data): no usable records (\(problems.count) reported)") }
    }
    /// Records with their fields in place (before the image check), and those whose images decoded.
    private let candidates: [PreferenceRecord]
    private let usable: [PreferenceRecord]
    public var allProblems: [RecordProblem] { problems }
    /// Records the run trains on (the plan).
    public var totalRecords: Int { records.count }

    /// "skipped 3 of 20 records: 2 with an image that does not decode, 1 malformed or incomplete"; nil when none.
    public static func summary(_ problems: [RecordProblem], kept: Int) -> String? {
        guard !problems.isEmpty else { return nil }
        let images = problems.filter { $0.reason.hasPrefix("image: ") || $0.reason.hasPrefix("retrieved image: ") }.count
        var parts: [String] = []
        if images > 0 { parts.append("\(images) with an image that does not decode") }
        if problems.count > images { parts.append("\(problems.count - images) malformed or incomplete") }
        return "skipped \(problems.count) of \(problems.count + kept) records: \(parts.joined(separator: ", ")); training on \(kept)"
    }

    /// plan.json: the ids of the plan a run started with and the fingerprint of the records it was drawn from.
    var planPath: String { (out as NSString).appendingPathComponent("plan.json") }

    func sourceFingerprint() -> String {
        var h = FNV1a64()
        for r in candidates { h.add(field: "\(r.id)|\(r.prompt)|\(r.chosen)|\(r.rejected ?? "")|\(r.image ?? "")|\(r.retrievedImage ?? "")") }
        return h.hex
    }

    /// A resumed run takes the plan it started with (an image that broke since skips its record as it comes, the
    /// order of the others is unchanged); a new run plans over the records that decode now and writes the plan.
    func settlePlan(resume: Bool) throws {
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
        let plan: JSONValue = .object([("source", .string(source)), ("ids", .array(records.map { .string($0.id) }))])
        try (plan.serialized() + "\n").write(toFile: planPath, atomically: true, encoding: .utf8)
    }

    func note(_ message: String) {
        skippedDuringRun.append(message)
        warn(message)
    }

    // MARK: plan

    var microBatchesPerEpoch: Int { (records.count + options.batchSize - 1) / options.batchSize }
    var stepsPerEpoch: Int { (microBatchesPerEpoch + options.gradientAccumulation - 1) / options.gradientAccumulation }
    public var totalSteps: Int { options.steps ?? max(1, Int((Double(stepsPerEpoch) * options.epochs).rounded(.up))) }

    /// The record order of one epoch (seeded shuffle), and the micro-batches of optimizer step `step`.
    func microBatches(ofStep step: Int) -> [[PreferenceRecord]] {
        var batches: [[PreferenceRecord]] = []
        let perStep = options.gradientAccumulation
        // Steps cycle through epochs; the last accumulation of an epoch may be partial.
        let epoch = step / stepsPerEpoch
        let within = step % stepsPerEpoch
        var order = Array(records.indices)
        var rng = SplitMix64(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9)
        order.shuffle(using: &rng)
        for m in (within * perStep)..<min((within + 1) * perStep, microBatchesPerEpoch) {
            let start = m * options.batchSize
            batches.append(order[start..<min(start + options.batchSize, order.count)].map { records[$0] })
        }
        return batches
    }

    // MARK: inputs

    struct Encoded {
        /// The chat-formatted prompt with one image placeholder (expanded per image by `prompts(_:for:)`).
        var prompt: [Int]
        var chosen: [Int]
        var rejected: [Int]
    }

    func encode(_ r: PreferenceRecord) throws -> Encoded {
        let tok = vlm.tokenizer
        let prompt = try tok.encode(vlm.chatFormat.prompt(r.prompt))
        guard let eos = tok.eosID else { throw ModelError("\(modelFolder): the tokenizer has no EOS token") }
        let chosen = try tok.encode(r.chosen, addSpecialTokens: false) + [eos]
        let rejected = try r.rejected.map { try tok.encode($0, addSpecialTokens: false) + [eos] } ?? []
        return Encoded(prompt: prompt, chosen: chosen, rejected: rejected)
    }

    /// A micro-batch with its images decoded: records whose image became unreadable since the check are left
    /// out (with a warning, and for the rest of the run).
    struct Loaded {
        var records: [PreferenceRecord] = []
        var images: [RGBImage] = []
        var others: [RGBImage] = []
    }

    func load(_ batch: [PreferenceRecord]) throws -> Loaded {
        var loaded = Loaded()
        for r in batch where !lost.contains(r.id) {
            do {
                let image = try RGBImage(contentsOfFile: r.image!)
                let other = options.otherImage == .retrieved ? try RGBImage(contentsOfFile: r.retrievedImage!) : nil
                loaded.records.append(r)
                loaded.images.append(image)
                if let other { loaded.others.append(other) }
            } catch {
                lost.insert(r.id)
                note("\(dataFile):\(r.line): skipped during the run: \(error)")
                guard records.count > lost.count else { throw PreferenceDataError("\(dataFile): no usable record is left (the last ones became unreadable during the run)") }
            }
        }
        return loaded
    }

    /// mDPO's corrupted image: a random resized crop keeping 1-20 % of the area, seeded per record so that the
    /// reference cache and resumed runs see the same crop.
    func corruptedPixels(_ loaded: Loaded) throws -> ImageInputs {
        let crops = zip(loaded.records, loaded.images).map { r, image -> RGBImage in
            let seed = options.seed ^ UInt64(truncatingIfNeeded: r.id.hashValueStable)
            return RandomResizedCrop.mdpo.apply(to: image, seed: seed).image
        }
        return try vlm.pixels(crops)
    }

    // MARK: reference log-probs (adapters off, before any update), cached on disk

    struct Reference { var chosen: Double; var rejected: Double; var other: Double }

    func fingerprint() -> String {
        var h = FNV1a64()
        h.add(field: modelFolder)
        if let a = options.adapterInit { h.add(field: a) }
        for r in records { h.add(field: "\(r.id)|\(r.prompt)|\(r.chosen)|\(r.rejected ?? "")|\(r.image ?? "")|\(r.retrievedImage ?? "")") }
        h.add(field: "\(options.otherImage?.rawValue ?? "-")|\(options.seed)|\(options.dtype)|\(options.full)")
        return h.hex
    }

    func referenceLogProbs() throws -> [String: Reference] {
        let cachePath = (out as NSString).appendingPathComponent("reference_logps.json")
        let key = fingerprint()
        if let cached = try? JSONValue.parse(contentsOf: cachePath), cached["fingerprint"]?.stringValue == key,
           let entries = cached["logps"]?.dictionaryValue {
            var result: [String: Reference] = [:]
            for (id, v) in entries {
                guard let a = v.arrayValue, a.count == 3, let c = a[0].doubleValue, let r = a[1].doubleValue, let o = a[2].doubleValue else { continue }
                result[id] = Reference(chosen: c, rejected: r, other: o)
            }
            if records.allSatisfy({ lost.contains($0.id) || result[$0.id] != nil }) { return result }
        }
        var result: [String: Reference] = [:]
        try vlm.model.withLoRADisabled {
            try withNoGrad {
                for start in stride(from: 0, to: records.count, by: max(1, options.batchSize * 2)) {
                    let batch = try load(Array(records[start..<min(start + max(1, options.batchSize * 2), records.count)]))
                    if batch.records.isEmpty { continue }
                    let lp = try logProbs(batch, needRejected: options.needsRejected)
                    for (i, r) in batch.records.enumerated() {
                        result[r.id] = Reference(chosen: try lp.chosen.select(0, i).item(),
                                                 rejected: try lp.rejected?.select(0, i).item() ?? 0,
                                                 other: try lp.other?.select(0, i).item() ?? 0)
                    }
                }
            }
        }
        let body = result.keys.sorted().map { "\(JSONValue.quoted($0)): [\(result[$0]!.chosen), \(result[$0]!.rejected), \(result[$0]!.other)]" }
        try "{\"fingerprint\": \"\(key)\", \"logps\": {\(body.joined(separator: ", "))}}\n".write(toFile: cachePath, atomically: true, encoding: .utf8)
        return result
    }

    /// Policy (or, under withLoRADisabled, reference) log-probs of a micro-batch: chosen and rejected under the
    /// record's image, chosen under the other image (rDPO: retrieved; mDPO: corrupted).
    func logProbs(_ batch: Loaded, needRejected: Bool) throws -> (chosen: Tensor, rejected: Tensor?, other: Tensor?, chosenLengths: [Int], rejectedLengths: [Int]) {
        let encoded = try batch.records.map(encode)
        let inputs = try vlm.pixels(batch.images)
        // Each prompt (its image tokens and the question) runs once for both responses.
        let groups = needRejected ? [encoded.map(\.chosen), encoded.map(\.rejected)] : [encoded.map(\.chosen)]
        let scored = try vlm.model.completionLogProbs(prompts: prompts(encoded, for: inputs), completions: groups,
                                                      imageFeatures: vlm.model.imageFeatures(inputs))
        let chosen = scored[0]
        let rejected: Tensor? = needRejected ? scored[1] : nil
        var other: Tensor? = nil
        if let kind = options.otherImage {
            let otherInputs = kind == .retrieved ? try vlm.pixels(batch.others) : try corruptedPixels(batch)
            // The other image may take another number of image tokens (tiles, aspect ratio): its own prompts.
            other = try vlm.model.completionLogProbs(prompts: prompts(encoded, for: otherInputs), completions: [encoded.map(\.chosen)],
                                                     imageFeatures: vlm.model.imageFeatures(otherInputs))[0]
        }
        return (chosen, rejected, other, encoded.map(\.chosen.count), encoded.map(\.rejected.count))
    }

    /// Each record's prompt with its image placeholder expanded to the token count of its image in `inputs`.
    func prompts(_ encoded: [Encoded], for inputs: ImageInputs) throws -> [[Int]] {
        try zip(encoded, inputs.tokenCounts).map { try vlm.model.expandImageTokens($0.prompt, counts: [$1]) }
    }

    // MARK: training

    struct Checkpoint {
        static func latest(in folder: String) -> (step: Int, path: String)? {
            let dir = (folder as NSString).appendingPathComponent("checkpoints")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.compactMap { n -> (Int, String)? in
                guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)),
                      FileManager.default.fileExists(atPath: "\(dir)/\(n)/trainer_state.json") else { return nil }
                return (s, "\(dir)/\(n)")
            }.max { $0.0 < $1.0 }
        }
    }

    /// Trains to the end (or resumes from the latest checkpoint). `report` sees every optimizer step.
    public func run(resume: Bool, report: ((StepReport) throws -> Void)? = nil) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try settlePlan(resume: resume && Checkpoint.latest(in: out) != nil)
        try Torch.manualSeed(options.seed)
        let model = vlm.model
        if options.full {
            try model.freeze()
            try model.unfreeze { model.part($0) == .language }
        } else if let adapter = options.adapterInit {
            try model.loadAdapter(from: adapter)
            try model.freeze()
            try model.unfreeze { $0.contains(".lora_") }
        } else {
            try model.applyLoRA(options.lora, targets: options.loraTargets, generator: Generator(seed: options.seed))
        }
        if options.projectorLearningRate != nil { try model.unfreeze { model.part($0) == .projector } }
        if options.trainVision { try model.unfreeze { model.part($0) == .vision && !$0.contains(".lora_") } }
        // As TRL does for preference objectives: no dropout (LoRA dropout included).
        if options.objectives.allSatisfy({ $0.0 != .sft }) {
            for (_, linear) in model.loraLinears() { linear.loraDropout = 0 }
        }
        model.train()
        let reference = options.needsRejected ? try referenceLogProbs() : [:]

        let trainable = model.trainableParameters()
        let ownVisionLR = options.trainVision ? options.visionLearningRate : nil
        func isVision(_ name: String) -> Bool { ownVisionLR != nil && model.part(name) == .vision && !name.contains(".lora_") }
        let mainParams = trainable.filter { model.part($0.0) != .projector && !isVision($0.0) }.map(\.1)
        let projectorParams = trainable.filter { model.part($0.0) == .projector }.map(\.1)
        var groups = [AdamW.Group(name: options.full ? "model" : "lora", parameters: mainParams, lr: options.learningRate, weightDecay: options.weightDecay)]
        if let lr = options.projectorLearningRate, !projectorParams.isEmpty {
            groups.append(AdamW.Group(name: "projector", parameters: projectorParams, lr: lr, weightDecay: options.weightDecay))
        }
        if let lr = ownVisionLR {
            groups.append(AdamW.Group(name: "vision", parameters: trainable.filter { isVision($0.0) }.map(\.1), lr: lr, weightDecay: options.weightDecay))
        }
        let optimizer = AdamW(groups: groups)
        let baseLRs = groups.map(\.lr)
        let schedule = LRSchedule(options.schedule, warmupRatio: options.warmupRatio, totalSteps: totalSteps)

        var startStep = 0
        let metricsPath = (out as NSString).appendingPathComponent("metrics.jsonl")
        if resume, let latest = Checkpoint.latest(in: out) {
            startStep = try restore(from: latest.path, optimizer: optimizer)
            try truncateMetrics(metricsPath, to: startStep)
        } else {
            try? FileManager.default.removeItem(atPath: metricsPath)
        }
        let started = Date()
        var pairsDone = 0
        for step in startStep..<totalSteps {
            schedule.apply(to: optimizer, baseLRs: baseLRs, step: step)
            let micro = microBatches(ofStep: step)
            // Metrics stay tensors on the device until the step ends: one read-back per step.
            var sums: [String: Tensor] = [:]
            func add(_ key: String, _ value: Tensor) throws { sums[key] = try sums[key].map { try $0 + value } ?? value }
            for records in micro {
                // A micro-batch whose every image broke adds nothing; the step's mean still divides by all of them.
                let batch = try load(records)
                if batch.records.isEmpty { continue }
                let lp = try logProbs(batch, needRejected: options.needsRejected)
                var pair = PairLogProbs(policyChosen: lp.chosen)
                pair.policyRejected = lp.rejected
                pair.policyChosenOtherImage = lp.other
                pair.chosenLengths = try Tensor(lp.chosenLengths).to(device: model.device)
                pair.rejectedLengths = try Tensor(lp.rejectedLengths).to(device: model.device)
                if options.needsRejected {
                    pair.referenceChosen = try Tensor(batch.records.map { reference[$0.id]!.chosen }).to(device: model.device)
                    pair.referenceRejected = try Tensor(batch.records.map { reference[$0.id]!.rejected }).to(device: model.device)
                    pair.referenceChosenOtherImage = try Tensor(batch.records.map { reference[$0.id]!.other }).to(device: model.device)
                }
                var total: Tensor? = nil
                var metrics: [String: Tensor] = [:]
                for (objective, weight) in options.objectives {
                    let result = try Objectives.loss(objective, pair, beta: options.beta, labelSmoothing: options.labelSmoothing,
                                                     mdpoDelta: options.mdpoDelta)
                    let weighted = try result.loss * weight
                    total = try total.map { try $0 + weighted } ?? weighted
                    for (name, t) in result.terms { try add("loss/\(name)", t.detach() * weight) }
                    // Objectives of a mix report the same log-probs and rewards: count each once.
                    metrics.merge(result.metrics) { first, _ in first }
                }
                for (k, v) in metrics { try add(k, v) }
                let loss = total!
                try add("loss", loss.detach())
                try (loss / Double(micro.count)).backward()
                pairsDone += batch.records.count
            }
            let parameters = optimizer.groups.flatMap(\.parameters)
            let gradNorm = try clipGradNormTensor(parameters, maxNorm: options.maxGradNorm > 0 ? options.maxGradNorm : .infinity)
            let keys = sums.keys.sorted()
            let read = try Tensor.stack(keys.map { try sums[$0]!.to(dtype: .float64).reshape([]) } + [gradNorm.to(dtype: .float64).reshape([])])
                .to(device: .cpu).toArray(Double.self)
            let lossValue = (sums["loss"] != nil ? read[keys.firstIndex(of: "loss")!] : 0) / Double(micro.count)
            guard lossValue.isFinite, read.last!.isFinite else {
                throw ModelError("loss became \(lossValue) (gradient norm \(read.last!)) at step \(step + 1); stopping (the last good checkpoint is kept)")
            }
            try optimizer.step()
            try optimizer.zeroGrad()
            var values = zip(keys, read).map { ($0, $1 / Double(micro.count)) }
            values.append(("lr", optimizer.groups[0].lr))
            values.append(("grad_norm", read.last!))
            try appendMetrics(metricsPath, step: step + 1, values: values)
            let elapsed = Date().timeIntervalSince(started)
            let rate = Double(pairsDone) / max(elapsed, 1e-9)
            let left = Double(totalSteps - step - 1) * elapsed / Double(step - startStep + 1)
            if (step + 1) % options.checkpointEvery == 0 || step + 1 == totalSteps {
                try saveCheckpoint(step: step + 1, optimizer: optimizer)
            }
            try report?(StepReport(step: step + 1, totalSteps: totalSteps, values: values, pairsPerSecond: rate, secondsLeft: left))
        }
        if options.full {
            try model.exportModel(to: (out as NSString).appendingPathComponent("model"), baseFolder: modelFolder)
        } else {
            try model.saveAdapter(to: (out as NSString).appendingPathComponent("adapter"), baseModel: modelFolder,
                                  includeProjector: options.projectorLearningRate != nil)
        }
        try Charts.write(metrics: metricsPath, to: (out as NSString).appendingPathComponent("charts"))
    }

    // MARK: checkpoints

    func saveCheckpoint(step: Int, optimizer: AdamW) throws {
        let dir = (out as NSString).appendingPathComponent("checkpoints")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let final = "\(dir)/step-\(step)"
        let temporary = "\(dir)/.step-\(step).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        // The trainable tensors by our names (adapter factors, or whole layers with --full), which resume restores.
        var trainable: [String: Tensor] = [:]
        for (name, p) in vlm.model.trainableParameters() { trainable[name] = try p.detach().contiguous() }
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        try SafeTensors.write(trainable, to: temporary + "/trainable.safetensors")
        if !options.full {
            try vlm.model.saveAdapter(to: temporary + "/adapter", baseModel: modelFolder, includeProjector: options.projectorLearningRate != nil)
        }
        let (tensors, steps) = try optimizer.stateTensors()
        var optimizerTensors = tensors
        optimizerTensors["rng_state"] = try Torch.rngState()
        try SafeTensors.write(optimizerTensors, to: temporary + "/optimizer.safetensors")
        let stepsJSON = steps.keys.sorted().map { "\(JSONValue.quoted($0)): \(steps[$0]!)" }.joined(separator: ", ")
        try "{\"step\": \(step), \"fingerprint\": \"\(fingerprint())\", \"optimizer_steps\": {\(stepsJSON)}}\n"
            .write(toFile: temporary + "/trainer_state.json", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: final)
        try FileManager.default.moveItem(atPath: temporary, toPath: final)
    }

    func restore(from path: String, optimizer: AdamW) throws -> Int {
        let state = try JSONValue.parse(contentsOf: path + "/trainer_state.json")
        guard let step = state["step"]?.intValue else { throw ModelError("\(path)/trainer_state.json: no step") }
        guard state["fingerprint"]?.stringValue == fingerprint() else {
            throw ModelError("\(path): the checkpoint was made with other data, model or settings; start without --resume or use a new --out")
        }
        let saved = try SafeTensorsFile(path: path + "/trainable.safetensors")
        let params = Dictionary(vlm.model.trainableParameters(), uniquingKeysWith: { a, _ in a })
        guard Set(saved.names) == Set(params.keys) else {
            throw ModelError("\(path): the checkpoint's trainable tensors do not match this run's (other --full/--lora settings?)")
        }
        try withNoGrad {
            for name in saved.names { try params[name]!.copyFrom(saved.tensor(name)) }
        }
        let tensors = try SafeTensorsFile(path: path + "/optimizer.safetensors").loadAll()
        var steps: [String: Int] = [:]
        for (k, v) in state["optimizer_steps"]?.objectValue ?? [] { steps[k] = v.intValue }
        try optimizer.loadState(tensors: tensors.filter { $0.key != "rng_state" }, steps: steps)
        if let rng = tensors["rng_state"] { try Torch.setRngState(rng) }
        return step
    }

    func appendMetrics(_ path: String, step: Int, values: [(String, Double)]) throws {
        let fields = ["\"step\": \(step)"] + values.map { "\(JSONValue.quoted($0.0)): \($0.1.isFinite ? String($0.1) : "null")" }
        let line = "{" + fields.joined(separator: ", ") + "}\n"
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
        try handle.synchronize()
    }

    /// Keeps the metrics of steps up to `step` (a resumed run rewrites what came after its checkpoint).
    func truncateMetrics(_ path: String, to step: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let kept = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
            guard let v = try? JSONValue.parse(Array(line.utf8)), let s = v["step"]?.intValue else { return false }
            return s <= step
        }
        try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(toFile: path, atomically: true, encoding: .utf8)
    }
}

extension String {
    var hashValueStable: UInt64 {
        var h = FNV1a64()
        h.add(field: self)
        return h.value
    }
}
