import Alignment
import Foundation
import Models
import Torch

/// One training run: which model, which pairs, where, and how (`TrainingOptions`: the objective mix and every
/// hyperparameter, with the Re-Align paper's defaults).
public struct TrainConfig: Sendable {
    public var model: String
    /// Preference data in any readable form, or a LLaMA-Factory dataset_info.json (with `dataset`).
    public var data: String
    /// `auto` or a `PreferenceFormat` name.
    public var format = "auto"
    public var dataset: String?
    public var out: String
    public var options = TrainingOptions()
    /// Continue from the latest checkpoint in `out`.
    public var resume = false
    /// Local data-parallel ranks this process starts (without torchrun).
    public var nprocPerNode: Int?
    /// Seconds a rank waits for the others in a rendezvous or collective.
    public var distTimeout = 300.0
    /// gloo, nccl, or auto (nccl on CUDA, gloo on CPU).
    public var distBackend = "auto"
    /// Draw the progress bar and log on stderr.
    public var verbose = true

    public init(model: String, data: String, out: String) {
        self.model = model
        self.data = data
        self.out = out
    }

    public func validate() throws {
        let o = options
        guard o.batchSize > 0, o.gradientAccumulation > 0, o.checkpointEvery > 0 else {
            throw JobError("batch size, gradient accumulation and save steps must be positive")
        }
        if o.full && o.adapterInit != nil { throw JobError("full fine-tuning and an initial adapter exclude each other") }
        guard o.dtype.isFloatingPoint else { throw JobError("the compute dtype must be f32 or bf16") }
        if o.device != .cpu && !Torch.cudaAvailable {
            throw JobError("device \(o.device): this libtorch (\(Torch.version), \(Torch.libraryPath)) sees no CUDA device; build the shim against a CUDA libtorch and run with LD_LIBRARY_PATH set to its folder (docs/libtorch.md)")
        }
        guard ["auto", "gloo", "nccl"].contains(distBackend) else { throw JobError("the process-group backend must be gloo, nccl or auto") }
    }
}

/// What a finished training run left.
public struct TrainResult: Sendable {
    public var steps: Int
    public var records: Int
    /// The adapter folder (LoRA) or the model folder (full fine-tuning).
    public var output: String
}

public enum TrainJob {
    /// Trains (data-parallel when launched so); resumable with `config.resume`. Nil in a rank that is not rank 0
    /// and in a launcher whose ranks did the work.
    @discardableResult
    public static func run(_ config: TrainConfig) throws -> TrainResult? {
        try config.validate()
        var o = config.options
        let source = try PreferenceSource(path: config.data, format: config.format, dataset: config.dataset)
        o.dataFormat = source.format
        o.datasetInfo = source.datasetInfo
        Launcher.bindToLauncher()
        let environment = try DistributedEnvironment.current()
        if let n = config.nprocPerNode {
            guard n >= 1 else { throw JobError("--nproc-per-node must be positive") }
            guard environment == nil else { throw JobError("--nproc-per-node starts ranks itself: leave it out under torchrun or Slurm") }
            if n > 1 {
                try Launcher.run(ranks: n)
                return nil
            }
        }
        // Only rank 0 talks: the others would repeat every line.
        let talks = (environment?.rank ?? 0) == 0 && config.verbose
        if let environment, o.device == .cuda(0) { o.device = .cuda(environment.localRank) }
        let backend = config.distBackend == "auto" ? (o.device == .cpu ? "gloo" : "nccl") : config.distBackend
        let group = try environment.map { try ProcessGroup(environment: $0, backend: backend, timeout: config.distTimeout) }
        if let environment, talks { log("rank 0 of \(environment.worldSize): data-parallel over \(backend), \(Torch.threads) thread(s) per rank") }
        let trainer = try PreferenceTrainer(modelFolder: config.model, data: source.path, out: config.out, options: o, group: group, progress: { done, total in
            guard total >= 500, talks else { return }
            FileHandle.standardError.write(Data("\rrealign: checking images \(done)/\(total)\(done == total ? "\n" : "")".utf8))
        })
        if talks {
            for p in trainer.allProblems { log("skipped \(p)") }
            if let summary = PreferenceTrainer.summary(trainer.allProblems, kept: trainer.totalRecords) { log(summary) }
            log("training \(ObjectiveMix.text(o.objectives)) for \(trainer.totalSteps) steps")
        }
        trainer.warn = { message in if talks { log("warning: \(message)") } }
        do {
            try trainer.run(resume: config.resume) { r in
                guard talks else { return }
                let loss = r.values.first { $0.0 == "loss" }?.1 ?? .nan
                let eta = r.secondsLeft.isFinite ? String(format: "%dm%02ds", Int(r.secondsLeft) / 60, Int(r.secondsLeft) % 60) : "?"
                let bar = String(repeating: "#", count: r.step * 30 / max(1, r.totalSteps)).padding(toLength: 30, withPad: ".", startingAt: 0)
                FileHandle.standardError.write(Data(String(format: "\r[%@] step %d/%d loss %.4f  %.2f pairs/s  ETA %@ ", bar, r.step, r.totalSteps, loss, r.pairsPerSecond, eta).utf8))
            }
        } catch {
            if talks { FileHandle.standardError.write(Data("\n".utf8)) }
            throw error
        }
        guard (environment?.rank ?? 0) == 0 else { return nil }
        let output = (config.out as NSString).appendingPathComponent(o.full ? "model" : "adapter")
        if talks {
            FileHandle.standardError.write(Data("\n".utf8))
            if !trainer.skippedDuringRun.isEmpty {
                log("\(trainer.skippedDuringRun.count) record(s) skipped during the run because their image became unreadable (warnings above)")
            }
            log(o.full ? "model written to \(output)" : "adapter written to \(output)")
        }
        return TrainResult(steps: trainer.totalSteps, records: trainer.totalRecords, output: output)
    }
}
