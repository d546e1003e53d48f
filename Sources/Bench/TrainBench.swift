import Alignment
import Foundation
import Jobs
import Torch

/// Preference-training throughput and peak memory vs transformers + peft on the same batch.
public struct TrainBenchConfig: Sendable {
    /// The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).
    public var model: String
    /// The bench pairs.jsonl.
    public var data: String
    /// dpo or rdpo.
    public var objective = Objective.rdpo
    /// Intra-op threads for both sides.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Python interpreter with torch, transformers and peft.
    public var python = "python3"
    /// The reference script.
    public var script = "tools/reference/bench_train.py"
    /// Also time this many data-parallel ranks of one thread each (batch 2 / ranks per rank, the same global batch)
    /// against one process of `threads` threads; they rerun this command line without `--ranks`.
    public var ranks = 1
    /// For both sides (CUDA must be available: the caller checks); under ranks, cuda:0 means each rank's own local GPU.
    public var device = Device.cpu
    /// Compute dtype for both sides: float32 or bfloat16.
    public var dtype = DType.float32
    /// Gradient checkpointing on both sides (the reference: transformers' gradient_checkpointing_enable, non-reentrant).
    public var gradientCheckpointing = false

    public init(model: String, data: String) {
        self.model = model
        self.data = data
    }
}

public enum TrainBench {
    /// Prints seconds per optimizer step (steps 2-4 of 4, batch 2), pairs/s and peak resident memory of ReAlign,
    /// of `ranks` local ranks, and of the reference. In a rank (under a launcher) it prints only its timing line.
    public static func run(_ config: TrainBenchConfig) throws {
        let c = config, threads = c.threads, python = c.python, script = c.script
        printMachine()
        guard c.objective == .dpo || c.objective == .rdpo else { throw JobError("--objective must be dpo or rdpo") }
        guard c.dtype == .float32 || c.dtype == .bfloat16 else { throw JobError("--dtype must be f32 or bf16") }
        guard c.ranks <= 1 || 2 % c.ranks == 0 else { throw JobError("--ranks must divide the bench's batch of 2") }
        // The reference script's names for them.
        let objective = c.objective.rawValue, dtype = c.dtype == .bfloat16 ? "bf16" : "f32"
        var onDevice = c.device
        Launcher.bindToLauncher()
        let environment = try DistributedEnvironment.current()
        if let environment, 2 % environment.worldSize != 0 { throw JobError("bench train: the ranks must divide its batch of 2") }
        if let environment, onDevice == .cuda(0) { onDevice = .cuda(environment.localRank) }
        let group = try environment.map { try ProcessGroup(environment: $0, backend: onDevice == .cpu ? "gloo" : "nccl") }
        try Torch.setThreads(environment == nil ? threads : 1)
        var options = TrainingOptions()
        options.objectives = [(c.objective, 1)]
        options.steps = 4
        options.batchSize = 2 / (environment?.worldSize ?? 1)
        options.gradientAccumulation = 1
        options.projectorLearningRate = nil
        options.warmupRatio = 0
        options.lora = LoRAConfig(r: 128, alpha: 256, dropout: 0)
        options.checkpointEvery = 1000
        options.device = onDevice
        options.dtype = c.dtype
        options.gradientCheckpointing = c.gradientCheckpointing
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-train-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let trainer = try PreferenceTrainer(modelFolder: c.model, data: c.data, out: out + (environment == nil ? "" : "-ranks"), options: options, group: group)
        var stamps: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        try trainer.run(resume: false) { _ in stamps.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        // Steps 2-4 (the first one includes warm-up and, before it, the reference pass).
        if environment != nil {  // a rank of --ranks: rank 0 reports to the bench that started it
            if stamps.count == 4 { print("seconds_per_step \((stamps[3] - stamps[0]) / 3)") }
            if let b = trainer.lastStepBuckets, group?.rank == 0 { print("buckets \(b.count) \(b.startedInBackward)") }
            return
        }
        let perStep = (stamps[3] - stamps[0]) / 3
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Double(usage.ru_maxrss) * 1024
        print("threads: \(threads), objective: \(objective), batch 2, \(onDevice), \(dtype)\(c.gradientCheckpointing ? ", gradient checkpointing" : "")")
        print(String(format: "  ReAlign      %.2f s/step  %.2f pairs/s  peak RSS %.2f GiB  (first step incl. reference pass: %.2f s)",
                     perStep, 2 / perStep, peak / 1_073_741_824, stamps[0]))
        let ranks = c.ranks
        if ranks > 1 {
            let pipe = Pipe()
            try Launcher.run(ranks: ranks, arguments: Launcher.without("--ranks", CommandLine.arguments), threadsPerRank: 1, rank0Output: pipe)
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("seconds_per_step ") }), let seconds = Double(line.split(separator: " ")[1]) {
                print(String(format: "  ReAlign, %d ranks x 1 thread (batch %d each): %.2f s/step, %.2fx one process of %d threads",
                             ranks, 2 / ranks, seconds, perStep / seconds, threads))
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("buckets ") }) {
                    let n = line.split(separator: " ")
                    print("    gradient all-reduce: \(n[1]) buckets, \(n[2]) started while backward ran")
                }
            } else {
                print("  ReAlign, \(ranks) ranks: no timing came back")
            }
        }
        guard let json = referenceJSON([python, script, "time", c.model, c.data, objective, String(threads), c.device.description, dtype] + (c.gradientCheckpointing ? ["checkpointing"] : [])),
              let seconds = json["seconds_per_step"]?.doubleValue, let rss = json["peak_rss_bytes"]?.doubleValue else {
            print("  reference    not available (\(python) \(script) failed)")
            return
        }
        print(String(format: "  reference    %.2f s/step  %.2f pairs/s  peak RSS %.2f GiB", seconds, 2 / seconds, rss / 1_073_741_824))
        print(String(format: "  speed-up %.2fx, memory %.2fx of the reference", seconds / perStep, peak / rss))
    }
}
