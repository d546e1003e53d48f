import Backends
import Foundation
import Jobs
import Models
import Preference
import Retrieval

/// Preference pairs per hour with a local model, and where the time goes.
public struct PrefsBenchConfig: Sendable {
    /// The VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL): policy, inducer and embedder.
    public var model: String
    /// The sentence-transformers folder (all-MiniLM-L6-v2).
    public var sentenceModel: String
    /// Input JSONL {"id","image","prompt","chosen"}.
    public var input: String
    /// Passes over the input (ids suffixed).
    public var repeats = 3
    /// Records in flight.
    public var concurrency = 1

    public init(model: String, sentenceModel: String, input: String) {
        self.model = model
        self.sentenceModel = sentenceModel
        self.input = input
    }
}

public enum PrefsBench {
    /// Builds the knowledge base, then runs the Re-Align pipeline (greedy, rule masker, k 5, tau 0.95) over the
    /// input into a temporary folder twice, without and with reuse of the prompt's KV cache and stored vectors;
    /// prints pairs/hour and the seconds per stage of each, and whether both wrote the same pairs.
    public static func run(_ config: PrefsBenchConfig) throws {
        printMachine()
        try blockingRun { try await measure(config) }
    }

    static func measure(_ c: PrefsBenchConfig) async throws {
        let worker = TorchWorker()
        let vlm = try VisionLanguageModel(folder: c.model)
        let encoder = try SentenceEncoder(folder: c.sentenceModel)
        let base = try SampleReader.read(c.input).samples
        let passes = max(1, c.repeats)
        var samples: [SampleInput] = []
        for r in 0..<passes { samples += base.map { var s = $0; s.id += "-\(r)"; return s } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-prefs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let t0 = Date()
        let kb = try KnowledgeBase.build(folder: folder + "/index", model: vlm, images: base.map(\.image), kind: .flat)
        let indexSeconds = Date().timeIntervalSince(t0)
        print("model \(c.model): \(samples.count) records (\(base.count) x \(passes)), \(kb.entries.count) images in the knowledge base")
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
            let result = try await RecordRunner(concurrency: c.concurrency).run(samples, output: output) { await p.process($0) }
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
