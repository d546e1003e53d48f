import Backends
import ArgumentParser
import Foundation
import Jobs
import Models
import Preference
import Retrieval

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
        printMachine()
        try blockingRun { try await self.measure() }
    }

    func measure() async throws {
        let worker = TorchWorker()
        let vlm = try VisionLanguageModel(folder: model)
        let encoder = try SentenceEncoder(folder: sentenceModel)
        let base = try SampleReader.read(input).samples
        var samples: [SampleInput] = []
        for r in 0..<max(1, `repeat`) { samples += base.map { var s = $0; s.id += "-\(r)"; return s } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-prefs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let t0 = Date()
        let kb = try KnowledgeBase.build(folder: folder + "/index", model: vlm, images: base.map(\.image), kind: .flat)
        let indexSeconds = Date().timeIntervalSince(t0)
        print("model \(model): \(samples.count) records (\(base.count) x \(max(1, `repeat`))), \(kb.entries.count) images in the knowledge base")
        print(String(format: "knowledge base build: %.2f s (%.1f images/s)", indexSeconds, Double(kb.entries.count) / max(indexSeconds, 1e-9)))
        // Before: every mask's completion runs its whole prompt and every query image is embedded again; after:
        // the prompt's KV cache is extended mask by mask and the base's own vectors are looked up.
        var rates: [Double] = []
        var files: [Data] = []
        for reuse in [false, true] {
            vlm.reusesPromptCache = reuse
            kb.reusesStoredVectors = reuse
            var pipeline = ReAlignPipeline(chosen: .given, masker: RuleMasker(), retriever: KnowledgeBaseRetriever(base: kb, model: vlm, worker: worker),
                                           inducer: Inducer(backend: LocalBackend(model: vlm, worker: worker)),
                                           similarity: SentenceSimilarity(encoder: encoder, worker: worker))
            pipeline.k = 5
            let p = pipeline
            let path = folder + "/prefs-\(reuse).jsonl"
            let output = try ResumableOutput(path: path)
            let t1 = Date()
            let result = try await RecordRunner(concurrency: concurrency).run(samples, output: output) { await p.process($0) }
            let seconds = Date().timeIntervalSince(t1)
            let stages = pipeline.clock.totals
            let total = stages.values.reduce(0, +)
            rates.append(Double(result.kept) / seconds * 3600)
            files.append(FileManager.default.contents(atPath: path) ?? Data())
            print(reuse ? "\nwith the prompt's KV cache kept across masks and stored vectors looked up:" : "\nwithout reuse (every mask runs the whole prompt, queries embedded again):")
            print(String(format: "pairs kept %d, unpaired %d, failed %d in %.2f s: %.0f pairs/hour, %.0f records/hour",
                         result.kept, result.unpaired, result.failed, seconds, rates.last!, Double(samples.count) / seconds * 3600))
            print("| stage | seconds | share |")
            print("|---|---:|---:|")
            for s in StageClock.stages { if let v = stages[s] { print(String(format: "| %@ | %.2f | %.1f %% |", s, v, 100 * v / max(total, 1e-9))) } }
        }
        print(String(format: "\nspeed-up: %.2fx pairs/hour; pairs %@", rates[1] / max(rates[0], 1e-9), files[0] == files[1] ? "identical" : "DIFFER (see the two files)"))
    }
}
