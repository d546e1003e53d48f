import ArgumentParser
import Bench

/// A 7B-class model on this machine, beside transformers + peft on the same work: loading, generation, one rdpo step.
struct BenchScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Load, generate and take one LoRA rdpo step on a 7B-shaped LLaVA in bf16, vs transformers + peft.",
        discussion: """
            MODEL: a folder from `python tools/reference/make_scale_model.py DIR` (shaped as llava-1.5-7b-hf, random \
            bf16 weights, sharded as the Hub ships it, ~14 GB); DATA: the scale-data folder it writes beside it (two \
            images and one pair). Each phase runs in a process of its own, ReAlign's then the reference's, and reports \
            that process's own peak resident memory: (1) load in bf16, the seconds to the first greedy token, 8 greedy \
            tokens for each image; (2) one rdpo step: LoRA r 128 / alpha 256 on every linear of the language model, one \
            pair, bf16 weights, factors and AdamW states, gradient checkpointing, the reference log-probs included.
            """)

    @Option(help: "The 7B-shaped model folder.") var model: String
    @Option(help: "The folder with 0.png, 1.png and pair.jsonl (default: scale-data beside the model folder).") var data: String?
    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?
    @Option(help: "Python interpreter with torch, transformers and peft.") var python = "python3"
    @Option(help: "The reference script.") var script = "tools/reference/bench_scale.py"
    @Option(help: "Run one phase in this process and print its JSON line: generate or step (used by the bench itself).") var phase: String?

    func run() throws {
        var c = ScaleBenchConfig(model: model)
        c.data = data
        if let threadOption { c.threads = threadOption }
        c.python = python
        c.script = script
        if let phase {
            guard let p = ScaleBenchConfig.Phase(rawValue: phase) else { throw ValidationError("--phase must be generate or step") }
            c.phase = p
        }
        try benchmark { try ScaleBench.run(c) }
    }
}
