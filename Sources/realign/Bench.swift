import Alignment
import ArgumentParser
import Bench
import Jobs
import Torch

/// Benchmarks, measured against the reference on the same machine in the same run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure ReAlign against its references on this machine.",
        subcommands: [BenchOps.self, BenchTokenizer.self, BenchModel.self, BenchTrain.self, BenchIndex.self, BenchEmbed.self, BenchPrefs.self, BenchScale.self])
}

/// Runs a benchmark; its refusals (JobError: a missing input, a value it cannot take) read as option errors, with
/// the usage, as when the checks lived here.
func benchmark(_ body: () throws -> Void) throws {
    do { try body() } catch let error as JobError { throw ValidationError(error.description) }
}

/// Per-op overhead and matmul throughput: Swift API vs the same loop in C++ vs PyTorch eager.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Per-op time of a small add (Swift vs C++ vs PyTorch) and fp32 matmul GFLOP/s (Swift vs PyTorch).",
        discussion: """
            The C++ loop runs inside the shim against the same libtorch. PyTorch is run through `--python` \
            (skipped when it cannot import torch). Each figure is the best of several rounds.
            """)

    @Option(help: "Iterations of the small add per round (many short interleaved rounds resist noise better).")
    var iterations = 20_000

    @Option(help: "Elements of each add operand.")
    var elements = 16

    @Option(help: "Matrix size n for the n x n x n matmul (0 skips it).")
    var matmul = 2048

    @Option(help: "Rounds; the best round counts.")
    var rounds = 60

    @Option(help: "Intra-op threads (default: all cores).")
    var threads: Int?

    @Option(help: "Python interpreter with torch, for the PyTorch figures.")
    var python = "python3"

    func run() throws {
        var c = OpsBenchConfig()
        c.iterations = iterations
        c.elements = elements
        c.matmul = matmul
        c.rounds = rounds
        c.threads = threads
        c.python = python
        try benchmark { try OpsBench.run(c) }
    }
}

/// Encoding throughput of a byte-level BPE tokenizer vs the `tokenizers` library, single thread both.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokens/s encoding a large English text: ReAlign vs the tokenizers library (single thread).",
        discussion: """
            Without --text, about 10 MB of English is assembled from the machine's documentation \
            (/usr/share/common-licenses, /usr/share/doc/*/copyright), repeated as needed. The library runs through \
            --python with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1.
            """)

    @Option(help: "A tokenizer.json file or folder (a byte-level BPE such as Qwen2's).")
    var tokenizer: String

    @Option(help: "The text to encode (default: ~10 MB assembled from local documentation).")
    var text: String?

    @Option(help: "Size of the assembled text in MB.")
    var megabytes = 10

    @Option(help: "Rounds; the best counts.")
    var rounds = 3

    @Option(help: "Python interpreter with the tokenizers package.")
    var python = "python3"

    func run() throws {
        var c = TokenizerBenchConfig(tokenizer: tokenizer)
        c.text = text
        c.megabytes = megabytes
        c.rounds = rounds
        c.python = python
        try benchmark { try TokenizerBench.run(c) }
    }
}

/// Model forward, generation and sentence-encoder throughput vs transformers / sentence-transformers.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "VLM forward and greedy generation vs transformers, MiniLM vs sentence-transformers (same threads).",
        discussion: """
            MODEL is a folder made by `python tools/reference/bench_models.py make DIR` (a random ~62M-parameter \
            LLaVA with bench_inputs.safetensors: 4 x 360 tokens with 256 image tokens each, and a 360-token \
            prompt) or `... make-next DIR` (the same sizes as LLaVA-NeXT: 2 x 1102 tokens, each with a 5-tile \
            image of 982 tokens). The forward computes logits at every position, as transformers' forward does.
            """)

    @Option(help: "The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).")
    var model: String

    @Option(help: "A sentence-transformers MiniLM folder (optional).")
    var minilm: String?

    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?

    @Option(help: "Python interpreter with torch and transformers.")
    var python = "python3"

    @Option(help: "The reference script.")
    var script = "tools/reference/bench_models.py"

    @Option(help: "The VLM's weight and compute dtype on both sides: f32 or bf16 (MiniLM stays f32).")
    var dtype = "f32"

    @Flag(help: "ReAlign keeps the language model's linear weights in bf16 under f32 compute (the reference stays in --dtype).")
    var bf16Weights = false

    @Flag(help: "Also time image features, prefill and one decode step, and print the weight bytes a decode step reads against this machine's memory streaming rate.")
    var detail = false

    func run() throws {
        guard let computeType = DType(name: dtype), [.float32, .bfloat16].contains(computeType) else {
            throw ValidationError("--dtype must be f32 or bf16")
        }
        var c = ModelBenchConfig(model: model)
        c.minilm = minilm
        if let threadOption { c.threads = threadOption }
        c.python = python
        c.script = script
        c.dtype = computeType
        c.bf16Weights = bf16Weights
        c.detail = detail
        try benchmark { try ModelBench.run(c) }
    }
}

/// Preference-training throughput and peak memory vs transformers + peft on the same batch.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Seconds per rdpo/dpo optimizer step (batch 2) vs transformers + peft, and peak resident memory.",
        discussion: """
            MODEL: a folder from `python tools/reference/bench_models.py make DIR`; DATA: pairs from \
            `python tools/reference/bench_train.py data DIR`. Both sides: LoRA r 128 / alpha 256 on every linear of \
            the language model, batch 2, no accumulation. ReAlign's reference log-probs come from its cache (one \
            no-grad pass before training, reported separately); the reference recomputes them every step, as TRL \
            does without precomputation.
            """)

    @Option(help: "The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).") var model: String
    @Option(help: "The bench pairs.jsonl.") var data: String
    @Option(help: "dpo or rdpo.") var objective = "rdpo"
    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?
    @Option(help: "Python interpreter with torch, transformers and peft.") var python = "python3"
    @Option(help: "The reference script.") var script = "tools/reference/bench_train.py"
    @Option(help: "Also time this many data-parallel ranks of one thread each (batch 2 / ranks per rank, the same global batch) against one process of --threads threads.") var ranks = 1
    @Option(help: "cpu, cuda or cuda:N, for both sides (the reference gets the same device).") var device = "cpu"
    @Option(help: "Compute dtype for both sides: f32 or bf16.") var dtype = "f32"
    @Flag(help: "Gradient checkpointing on both sides (the reference: transformers' gradient_checkpointing_enable, non-reentrant).") var gradientCheckpointing = false

    func run() throws {
        guard let o = Objective(rawValue: objective), o == .dpo || o == .rdpo else { throw ValidationError("--objective must be dpo or rdpo") }
        guard let computeType = DType(name: dtype), computeType == .float32 || computeType == .bfloat16 else {
            throw ValidationError("--dtype must be f32 or bf16")
        }
        guard let onDevice = Device(name: device) else { throw ValidationError("--device must be cpu, cuda or cuda:N") }
        if onDevice != .cpu && !Torch.cudaAvailable {
            throw ValidationError("--device \(device): this libtorch (\(Torch.version), \(Torch.libraryPath)) sees no CUDA device")
        }
        var c = TrainBenchConfig(model: model, data: data)
        c.objective = o
        if let threadOption { c.threads = threadOption }
        c.python = python
        c.script = script
        c.ranks = ranks
        c.device = onDevice
        c.dtype = computeType
        c.gradientCheckpointing = gradientCheckpointing
        try benchmark { try TrainBench.run(c) }
    }
}
