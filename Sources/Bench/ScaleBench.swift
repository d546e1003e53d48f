import Alignment
import Foundation
import Images
import JSON
import Jobs
import Models
import Torch

/// A 7B-class model on this machine, beside transformers + peft on the same work: loading, generation, one rdpo step.
public struct ScaleBenchConfig: Sendable {
    /// One phase, run in a process of its own so that its peak resident memory is its own.
    public enum Phase: String, CaseIterable, Sendable {
        /// Load in bf16, the seconds to the first greedy token, 8 greedy tokens for each image.
        case generate
        /// One LoRA rdpo step on the pair.
        case step
    }

    /// The 7B-shaped model folder.
    public var model: String
    /// The folder with 0.png, 1.png and pair.jsonl (nil: scale-data beside the model folder).
    public var data: String?
    /// Intra-op threads for both sides.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Python interpreter with torch, transformers and peft.
    public var python = "python3"
    /// The reference script.
    public var script = "tools/reference/bench_scale.py"
    /// Run this one phase here and print its JSON line (what the comparison's child processes do); nil: compare.
    public var phase: Phase?

    public init(model: String) {
        self.model = model
    }

    public var dataFolder: String {
        data ?? ((URL(fileURLWithPath: model).standardizedFileURL.deletingLastPathComponent().path as NSString).appendingPathComponent("scale-data"))
    }
}

public enum ScaleBench {
    public static func run(_ config: ScaleBenchConfig) throws {
        switch config.phase {
        case .generate: try generatePhase(config)
        case .step: try stepPhase(config)
        case nil: try compare(config)
        }
    }

    /// Runs each phase as a child process (ours, then the reference's) and prints them side by side.
    static func compare(_ config: ScaleBenchConfig) throws {
        let model = config.model, dataFolder = config.dataFolder, threads = config.threads, python = config.python, script = config.script
        printMachine()
        let images = ["0.png", "1.png"].map { (dataFolder as NSString).appendingPathComponent($0) }
        let pairs = (dataFolder as NSString).appendingPathComponent("pair.jsonl")
        for file in images + [pairs] where !FileManager.default.fileExists(atPath: file) {
            throw JobError("\(file) is missing: tools/reference/make_scale_model.py writes it beside the model folder (or give --data)")
        }
        let checkpoint = try Checkpoint(path: model)
        let weights = checkpoint.names.reduce(0) { $0 + (checkpoint.info($1)?.byteCount ?? 0) }
        print("threads: \(threads), \(model): \(String(format: "%.1f", Double(weights) / 1e9)) GB of weights")
        // Our phases run in this executable (the realign CLI) as `bench scale --phase`.
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        func ours(_ phase: ScaleBenchConfig.Phase) -> JSONValue? {
            let out = referenceOutput([me, "bench", "scale", "--model", model, "--data", dataFolder, "--threads", String(threads), "--phase", phase.rawValue])
            return out.flatMap { $0.split(separator: "\n").last }.flatMap { try? JSONValue.parse(Array($0.utf8)) }
        }
        let gib = { (v: JSONValue?) in v?.doubleValue.map { String(format: "%.2f GiB", $0 / 1_073_741_824) } ?? "-" }
        let sec = { (v: JSONValue?) in v?.doubleValue.map { String(format: "%.1f s", $0) } ?? "-" }

        let a = ours(.generate)
        let b = referenceJSON([python, script, "generate", model, String(threads)] + images)
        print("load (bf16) + generate, 8 greedy tokens per image")
        print("  ReAlign    load \(sec(a?["load_seconds"])), peak after load \(gib(a?["load_peak"])), first token at \(sec(a?["first_token_seconds"])), peak \(gib(a?["peak"]))")
        print("  reference  load \(sec(b?["load_seconds"])), peak after load \(gib(b?["load_peak"])), first token at \(sec(b?["first_token_seconds"])), peak \(gib(b?["peak"]))")
        if let a, let b {
            let same = a["prompt"] == b["prompt"]
            let tokens = { (v: JSONValue) in (v["tokens"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.intValue) } }
            for (i, (x, y)) in zip(tokens(a), tokens(b)).enumerated() {
                print("  image \(i): ReAlign \(x), reference \(y): \(x == y ? "equal" : "differ")\(same ? "" : " (the prompts differ)")")
            }
        }
        let c = ours(.step)
        let d = referenceJSON([python, script, "step", model, String(threads), pairs])
        print("one rdpo step (LoRA r 128 on every language-model linear, bf16, gradient checkpointing, one pair)")
        print("  ReAlign    \(sec(c?["step_seconds"])), loss \(c?["loss"]?.doubleValue.map { String(format: "%.4f", $0) } ?? "-"), peak \(gib(c?["peak"]))")
        print("  reference  \(sec(d?["step_seconds"])), loss \(d?["loss"]?.doubleValue.map { String(format: "%.4f", $0) } ?? "-"), peak \(gib(d?["peak"]))\(d == nil ? " (failed or did not fit)" : "")")
    }

    /// Prints {"load_seconds","load_peak","first_token_seconds","prompt","tokens","peak"} as one JSON line.
    static func generatePhase(_ c: ScaleBenchConfig) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        try Torch.setThreads(c.threads)
        let vlm = try VisionLanguageModel(folder: c.model, dtype: .bfloat16)
        let loadSeconds = elapsed(), loadPeak = peakResidentBytes()
        let generator = TextGenerator(model: vlm.model, tokenizer: vlm.tokenizer)
        var tokens: [JSONValue] = []
        var first: Double?
        var prompt: [Int] = []
        for name in ["0.png", "1.png"] {
            let image = try RGBImage(contentsOfFile: (c.dataFolder as NSString).appendingPathComponent(name))
            let inputs = try vlm.pixels([image])
            prompt = try vlm.promptIDs("What is shown in this image? Describe it in detail.", imageTokenCounts: inputs.tokenCounts)
            if first == nil {
                _ = try generator.generate(prompts: [prompt], images: inputs, options: GenerationOptions(maxNewTokens: 1))
                first = elapsed()
            }
            let out = try generator.generate(prompts: [prompt], images: inputs, options: GenerationOptions(maxNewTokens: 8))
            tokens.append(.array(out[0].tokens.map { .int($0) }))
        }
        print(JSONValue.object([
            ("load_seconds", .double(loadSeconds)), ("load_peak", .int(loadPeak)), ("first_token_seconds", .double(first ?? 0)),
            ("prompt", .array(prompt.map { .int($0) })), ("tokens", .array(tokens)), ("peak", .int(peakResidentBytes())),
        ]).serialized())
    }

    /// Prints {"step_seconds","loss","peak"} as one JSON line.
    static func stepPhase(_ c: ScaleBenchConfig) throws {
        try Torch.setThreads(c.threads)
        var o = TrainingOptions()
        o.objectives = [(.rdpo, 1)]
        o.steps = 1
        o.batchSize = 1
        o.gradientAccumulation = 1
        o.projectorLearningRate = nil
        o.warmupRatio = 0
        o.lora = LoRAConfig(r: 128, alpha: 256, dropout: 0)
        o.checkpointEvery = 1000
        o.dtype = .bfloat16
        o.gradientCheckpointing = true
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-scale-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let trainer = try PreferenceTrainer(modelFolder: c.model, data: (c.dataFolder as NSString).appendingPathComponent("pair.jsonl"), out: out, options: o)
        let start = DispatchTime.now().uptimeNanoseconds
        var loss = Double.nan
        var seconds = 0.0
        try trainer.run(resume: false) { r in
            seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            loss = r.values.first { $0.0 == "loss" }?.1 ?? .nan
        }
        print(JSONValue.object([("step_seconds", .double(seconds)), ("loss", .double(loss)), ("peak", .int(peakResidentBytes()))]).serialized())
    }
}
