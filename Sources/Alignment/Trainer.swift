import Common
import Foundation
import Images
import JSON
import Models
import TensorBoard
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
    /// beta and the other values objectives read (label smoothing, mDPO's delta, SimPO's gamma, ...).
    public var objectiveSettings = ObjectiveSettings()
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
    /// The form of the data (auto: told record by record) and, for a LLaMA-Factory dataset, its dataset_info entry.
    public var dataFormat: PreferenceFormat = .auto
    public var datasetInfo: DatasetInfoEntry? = nil
    public var dtype: DType = .float32
    /// Where the model runs when the trainer loads it from a folder.
    public var device: Device = .cpu
    /// Also write the metrics as TensorBoard event files in `<out>/runs` (`tensorboard --logdir <out>/runs`).
    public var tensorBoard = false
    /// Recompute each decoder layer's activations in backward instead of keeping them (less memory, one more
    /// forward per step); the loss and gradients are the same.
    public var gradientCheckpointing = false

    public init() {}

    /// The objectives as a mix validated against what each needs and the settings given.
    public func mix() throws -> ObjectiveMix {
        let mix = try ObjectiveMix(objectives, settings: objectiveSettings)
        if mix.needsKLCompletions && full {
            throw ModelError("kto scores every batch's KL completions under the reference model, which --full does not keep (train kto with LoRA)")
        }
        return mix
    }

    var needsRejected: Bool { objectives.contains { $0.0.needs.rejected } }
    /// Whether a reference pass runs (reference-free objectives alone skip it).
    var needsReference: Bool { objectives.contains { $0.0.needs.reference } }
    var needsKLCompletions: Bool { objectives.contains { $0.0.needs.klCompletions } }
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
/// computed once (adapters off) and cached, atomic checkpoints and exact resume. The parts: `Batcher` (plan,
/// tokens, pixels), `ReferenceCache`, `CheckpointStore`, `scoreBatch`; this type checks the data and runs the loop.
public final class PreferenceTrainer {
    public let options: TrainingOptions
    public let out: String
    let vlm: VisionLanguageModel
    let batcher: Batcher
    /// The records reported when the data loaded (bad lines, missing fields, images that do not decode).
    public let problems: [RecordProblem]
    let dataFile: String
    /// Where warnings during the run go (a record skipped because its image broke); the CLI logs them.
    public var warn: (String) -> Void = { _ in }
    /// How many records were skipped during the run, and why (one line each).
    public private(set) var skippedDuringRun: [String] = []
    /// The data-parallel ranks this process trains with (nil: alone). Rank 0 writes every file of the run.
    public let group: ProcessGroup?
    /// With a process group: how many gradient buckets the last step had, and how many of them started their
    /// all-reduce while its backward still ran.
    public private(set) var lastStepBuckets: (count: Int, startedInBackward: Int)?
    var isWriter: Bool { (group?.rank ?? 0) == 0 }

    /// Loads the model from `modelFolder` (with `options.dtype` on `options.device`).
    public convenience init(modelFolder: String, data: String, out: String, options: TrainingOptions, group: ProcessGroup? = nil,
                            progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        _ = try options.mix()  // an invalid mix is an error before anything loads
        let vlm = try VisionLanguageModel(folder: modelFolder, dtype: options.dtype, device: options.device)
        try self.init(model: vlm, data: data, out: out, options: options, group: group, progress: progress)
    }

    /// Trains `model` (its own device and dtype), which the run changes in place (adapters, trained weights).
    public init(model vlm: VisionLanguageModel, data: String, out: String, options: TrainingOptions, group: ProcessGroup? = nil,
                progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        _ = try options.mix()
        self.options = options
        self.out = out
        self.vlm = vlm
        self.dataFile = data
        self.group = group
        let loaded = try PreferenceData.load(data, imageRoot: options.imageRoot, requireRejected: options.needsRejected,
                                             format: options.dataFormat, datasetInfo: options.datasetInfo)
        var problems = loaded.problems
        var candidates: [PreferenceRecord] = []
        for r in loaded.records {
            if options.otherImage == .retrieved && r.retrievedImage == nil {
                problems.append(RecordProblem(file: data, line: r.line, message: "no 'retrieved_image' (rdpo needs it)"))
            } else if r.image == nil {
                problems.append(RecordProblem(file: data, line: r.line, message: "no image"))
            } else {
                candidates.append(r)
            }
        }
        // Every image decodes once now, so that a bad file costs its record, not the run.
        let usesRetrieved = options.otherImage == .retrieved
        let paths = candidates.flatMap { r in [r.image!] + (usesRetrieved ? [r.retrievedImage!] : []) }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // Rank 0 decodes first and keeps the verdicts; the other ranks then read them instead of decoding again.
        if let group, group.rank != 0 { try group.barrier() }
        let check = ImageCheck.check(paths, cache: (out as NSString).appendingPathComponent("image_check.tsv"),
                                     progress: (group?.rank ?? 0) == 0 ? progress : nil)
        if let group, group.rank == 0 { try group.barrier() }
        var usable: [PreferenceRecord] = []
        for r in candidates {
            if let reason = check.reason(for: r.image!) {
                problems.append(RecordProblem(file: data, line: r.line, message: "image: \(reason)"))
            } else if usesRetrieved, let reason = check.reason(for: r.retrievedImage!) {
                problems.append(RecordProblem(file: data, line: r.line, message: "retrieved image: \(reason)"))
            } else {
                usable.append(r)
            }
        }
        self.problems = problems
        guard !usable.isEmpty else { throw PreferenceDataError("\(data): no usable records (\(problems.count) reported)") }
        batcher = Batcher(options: options, vlm: vlm, dataFile: data, candidates: candidates, usable: usable)
        batcher.note = { [unowned self] in self.note($0) }
        batcher.rank = group?.rank ?? 0
        batcher.worldSize = group?.worldSize ?? 1
    }

    public var allProblems: [RecordProblem] { problems }
    /// Records the run trains on (the plan).
    public var totalRecords: Int { batcher.records.count }
    public var totalSteps: Int { batcher.totalSteps }
    var records: [PreferenceRecord] { batcher.records }

    /// "skipped 3 of 20 records: 2 with an image that does not decode, 1 malformed or incomplete"; nil when none.
    public static func summary(_ problems: [RecordProblem], kept: Int) -> String? {
        guard !problems.isEmpty else { return nil }
        let images = problems.filter { $0.message.hasPrefix("image: ") || $0.message.hasPrefix("retrieved image: ") }.count
        var parts: [String] = []
        if images > 0 { parts.append("\(images) with an image that does not decode") }
        if problems.count > images { parts.append("\(problems.count - images) malformed or incomplete") }
        return "skipped \(problems.count) of \(problems.count + kept) records: \(parts.joined(separator: ", ")); training on \(kept)"
    }

    func note(_ message: String) {
        skippedDuringRun.append(message)
        warn(message)
    }

    /// Ties the reference cache and checkpoints to the model, the plan and the settings that change log-probs.
    func fingerprint() -> String {
        var h = FNV1a64()
        h.add(field: vlm.folder)
        if let a = options.adapterInit { h.add(field: a) }
        for r in batcher.records { h.add(field: r.fingerprintText) }
        h.add(field: "\(options.otherImage?.rawValue ?? "-")|\(options.seed)|\(options.dtype)|\(options.full)")
        if let a = options.objectiveSettings.ldAlpha { h.add(field: "ld_alpha \(a)") }  // it changes the reference's summed log-probs
        return h.hex
    }

    // MARK: the run

    /// Trains to the end (or resumes from the latest checkpoint). `report` sees every optimizer step (on rank 0).
    /// With a process group every rank runs this; rank 0 alone writes the plan, metrics, checkpoints, the
    /// adapter and the charts.
    public func run(resume: Bool, report: ((StepReport) throws -> Void)? = nil) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if options.needsKLCompletions && options.batchSize < 2 && isWriter {
            warn("kto with --batch-size 1: the KL estimate can only pair each prompt with the other response of its own pair (as TRL's with one example per device); give --batch-size 2 or more for mismatched pairs")
        }
        let unplanned = CheckpointStore(out: out, fingerprint: "")
        try batcher.settlePlan(at: (out as NSString).appendingPathComponent("plan.json"), resume: resume && unplanned.latest() != nil,
                               write: isWriter)
        let store = CheckpointStore(out: out, fingerprint: fingerprint())
        // Training's blocks come in many sizes: kept freed ones seldom fit the next request and only raise the peak.
        let reuseLimit = Torch.setReuseLimit(0)
        defer { Torch.setReuseLimit(reuseLimit) }
        // In bf16 the shim's inference kernels round differently from the ops that record gradients, and the cached
        // reference log-probs (a no-grad pass) would differ from the policy's at step 0 (0.05 nats per answer on the
        // 62M bench LLaVA, 0.3 on a 7B): training keeps to libtorch's ops.
        let inferenceKernels = Torch.setInferenceKernels(options.dtype == .float32)
        defer { Torch.setInferenceKernels(inferenceKernels) }
        try Torch.manualSeed(options.seed)
        let model = vlm.model
        try prepare(model)
        if let group { try DataParallel.broadcastParameters(model.trainableParameters().map(\.1), group: group) }
        let reference = options.needsReference
            ? try ReferenceCache(path: (out as NSString).appendingPathComponent("reference_logps.json"), fingerprint: store.fingerprint)
                .entries(batcher: batcher, model: model, needRejected: true, ldAlpha: options.objectiveSettings.ldAlpha, group: group)
            : [:]
        let optimizer = makeOptimizer(model)
        // Gradients travel during the step's last backward (DDP's overlap), in buckets started in one order.
        let reducer = try group.map { try GradientReducer(optimizer.groups.flatMap(\.parameters), group: $0) }
        let baseLRs = optimizer.groups.map(\.lr)
        let totalSteps = batcher.totalSteps
        let schedule = LRSchedule(options.schedule, warmupRatio: options.warmupRatio, totalSteps: totalSteps)

        var startStep = 0
        if resume, let latest = store.latest() {
            startStep = try store.restore(from: latest.path, trainable: model.trainableParameters(), optimizer: optimizer)
        }
        let metrics = isWriter ? try store.metrics(startingAfter: startStep) : nil
        let board = isWriter && options.tensorBoard ? try tensorBoardLog(replaying: store.metricsPath) : nil
        let started = Date()
        var pairsDone = 0
        for step in startStep..<totalSteps {
            schedule.apply(to: optimizer, baseLRs: baseLRs, step: step)
            let (values, pairs) = try trainStep(step, model: model, optimizer: optimizer, reducer: reducer, reference: reference)
            pairsDone += pairs
            try metrics?.append(CheckpointStore.metricsLine(step: step + 1, values: values))
            try board?.add(step: step + 1, scalars: values)
            let elapsed = Date().timeIntervalSince(started)
            let rate = Double(pairsDone) / max(elapsed, 1e-9)
            let left = Double(totalSteps - step - 1) * elapsed / Double(step - startStep + 1)
            guard isWriter else { continue }
            if (step + 1) % options.checkpointEvery == 0 || step + 1 == totalSteps {
                try store.save(step: step + 1, trainable: model.trainableParameters(), optimizer: optimizer) { folder in
                    if !options.full {
                        try model.saveAdapter(to: folder + "/adapter", baseModel: vlm.folder, includeProjector: options.projectorLearningRate != nil)
                    }
                }
            }
            try report?(StepReport(step: step + 1, totalSteps: totalSteps, values: values, pairsPerSecond: rate, secondsLeft: left))
        }
        guard isWriter else { return }
        if options.full {
            try model.exportModel(to: (out as NSString).appendingPathComponent("model"), baseFolder: vlm.folder)
        } else {
            try model.saveAdapter(to: (out as NSString).appendingPathComponent("adapter"), baseModel: vlm.folder,
                                  includeProjector: options.projectorLearningRate != nil)
        }
        try Charts.write(metrics: store.metricsPath, to: (out as NSString).appendingPathComponent("charts"))
    }

    /// A fresh TensorBoard event file in `<out>/runs` holding the steps metrics.jsonl keeps (a resumed run's
    /// earlier steps, once each: the event files of the interrupted run are replaced, not appended to).
    func tensorBoardLog(replaying metricsPath: String) throws -> TensorBoardWriter {
        let folder = (out as NSString).appendingPathComponent("runs")
        for old in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where old.hasPrefix("events.out.tfevents.") && old.hasSuffix(".realign") {
            try FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(old))
        }
        let writer = try TensorBoardWriter(folder: folder)
        if let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let fields = (try? JSONValue.parse(Array(line.utf8)))?.objectValue, let step = fields.first(where: { $0.0 == "step" })?.1.intValue else { continue }
                try writer.add(step: step, scalars: fields.compactMap { key, value in key == "step" ? nil : value.doubleValue.map { (key, $0) } })
            }
        }
        return writer
    }

    /// What trains: LoRA factors (new, or from `adapterInit`) or the whole language model, plus the projector and
    /// the vision tower when asked.
    func prepare(_ model: any VLMModel) throws {
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
        if options.gradientCheckpointing && model.setGradientCheckpointing(true) == 0 {
            throw ModelError("this model's decoder does not support gradient checkpointing")
        }
        // As TRL does for preference objectives: no dropout (LoRA dropout included).
        if options.objectives.allSatisfy({ $0.0 != .sft }) {
            for (_, linear) in model.loraLinears() { linear.loraDropout = 0 }
        }
        model.train()
    }

    /// AdamW over the trainable tensors: one group for the LoRA factors (or the model with --full), one for the
    /// projector and one for the vision tower when they have their own learning rates.
    func makeOptimizer(_ model: any VLMModel) -> AdamW {
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
        return AdamW(groups: groups)
    }

    /// One optimizer step over its micro-batches; returns the step's metrics and how many pairs it trained on.
    func trainStep(_ step: Int, model: any VLMModel, optimizer: AdamW, reducer: GradientReducer?,
                   reference: [String: ReferenceCache.Entry]) throws -> (values: [(String, Double)], pairs: Int) {
        let device = model.device
        let (micro, stepMicroBatches) = batcher.microBatches(ofStep: step)
        // Metrics stay tensors on the device until the step ends: one read-back per step.
        var sums: [String: Tensor] = [:]
        func add(_ key: String, _ value: Tensor) throws { sums[key] = try sums[key].map { try $0 + value } ?? value }
        var pairs = 0
        for (index, records) in micro.enumerated() {
            // A micro-batch whose every image broke adds nothing; the step's mean still divides by all of them
            // (over every rank).
            let batch = try batcher.load(records)
            if batch.records.isEmpty { continue }
            let lp = try scoreBatch(batch, model: model, needRejected: options.needsRejected, ldAlpha: options.objectiveSettings.ldAlpha)
            var pair = PairLogProbs(policyChosen: lp.chosen)
            pair.policyRejected = lp.rejected
            pair.policyChosenOtherImage = lp.other
            pair.chosenLengths = try Tensor(lp.chosenLengths).to(device: device)
            pair.rejectedLengths = try Tensor(lp.rejectedLengths).to(device: device)
            if options.needsKLCompletions {
                (pair.policyKL, pair.referenceKL) = try scoreKLCompletions(batch, model: model)
            }
            if options.needsReference {
                let entries = batch.records.map { reference[$0.id]! }
                pair.referenceChosen = try Tensor(entries.map(\.chosen)).to(device: device)
                pair.referenceRejected = try Tensor(entries.map(\.rejected)).to(device: device)
                pair.referenceChosenOtherImage = try Tensor(entries.map(\.other)).to(device: device)
            }
            var total: Tensor? = nil
            var metrics: [String: Tensor] = [:]
            for (objective, weight) in options.objectives {
                let result = try Objectives.loss(objective, pair, settings: options.objectiveSettings)
                let weighted = try result.loss * weight
                total = try total.map { try $0 + weighted } ?? weighted
                for (name, t) in result.terms { try add("loss/\(name)", t.detach() * weight) }
                // Objectives of a mix report the same log-probs and rewards: count each once.
                metrics.merge(result.metrics) { first, _ in first }
            }
            for (k, v) in metrics { try add(k, v) }
            let loss = total!
            try add("loss", loss.detach())
            if index == micro.count - 1 { try reducer?.arm() }
            try (loss / Double(stepMicroBatches)).backward()
            pairs += batch.records.count
        }
        let parameters = optimizer.groups.flatMap(\.parameters)
        if let group, let reducer {
            lastStepBuckets = (reducer.bucketCount, try reducer.finish())
            (sums, pairs) = try DataParallel.sumMetrics(sums, pairs: pairs, group: group, device: device)
        }
        let gradNorm = try clipGradNormTensor(parameters, maxNorm: options.maxGradNorm > 0 ? options.maxGradNorm : .infinity)
        let keys = sums.keys.sorted()
        let read = try Tensor.stack(keys.map { try sums[$0]!.to(dtype: .float64).reshape([]) } + [gradNorm.to(dtype: .float64).reshape([])])
            .to(device: .cpu).toArray(Double.self)
        let lossValue = (sums["loss"] != nil ? read[keys.firstIndex(of: "loss")!] : 0) / Double(stepMicroBatches)
        guard lossValue.isFinite, read.last!.isFinite else {
            throw ModelError("loss became \(lossValue) (gradient norm \(read.last!)) at step \(step + 1); stopping (the last good checkpoint is kept)")
        }
        try optimizer.step()
        try optimizer.zeroGrad()
        var values = zip(keys, read).map { ($0, $1 / Double(stepMicroBatches)) }
        values.append(("lr", optimizer.groups[0].lr))
        values.append(("grad_norm", read.last!))
        return (values, pairs)
    }
}
