import ArgumentParser
import Bench

/// Preference pairs per hour with a local model, and where the time goes.
struct BenchPrefs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefs",
        abstract: "Re-Align preference pairs per hour with a local VLM: knowledge-base build, then mask -> retrieve -> induce -> filter.",
        discussion: "The input's samples are run --repeat times (ids suffixed) into a temporary folder, greedy, rule masker, k 5, tau 0.95; the time per stage is summed over records.")

    @Option(help: "The VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL): policy, inducer and embedder.") var model: String
    @Option(help: "The sentence-transformers folder (all-MiniLM-L6-v2).") var sentenceModel: String
    @Option(help: "Input JSONL {\"id\",\"image\",\"prompt\",\"chosen\"}.") var input: String
    @Option(help: "Passes over the input.") var `repeat` = 3
    @Option(help: "Records in flight.") var concurrency = 1

    func run() throws {
        var c = PrefsBenchConfig(model: model, sentenceModel: sentenceModel, input: input)
        c.repeats = `repeat`
        c.concurrency = concurrency
        try benchmark { try PrefsBench.run(c) }
    }
}
