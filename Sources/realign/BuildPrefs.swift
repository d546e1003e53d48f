import Alignment
import Backends
import Common
import ArgumentParser
import Foundation
import JSON
import Models
import Preference
import Retrieval
import Torch

/// Builds preference pairs: Re-Align (mask -> retrieve -> induce -> filter) or VaPR (LLM-edited hard negatives).
struct BuildPrefs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-prefs",
        abstract: "Build preference pairs from {\"id\",\"image\",\"prompt\"[,\"chosen\"]} JSONL (Re-Align or VaPR).",
        discussion: """
            Re-Align (--recipe realign): the chosen answer (given, or from a backend) is masked where it speaks of \
            objects, attributes and relations; the knowledge base (the input's images embedded by --model's vision \
            tower, built into <OUT>.index/ unless --index is given) gives the k most similar other images; the \
            hallucination-prone VLM fills the masks looking at each in rank order until the sentence-embedding \
            cosine to the chosen answer drops below --tau. Output lines: {"id","image","retrieved_image","prompt",\
            "chosen","rejected","masked","similarity","retrieval_rank","retrieval_score"}, read directly by \
            `realign train --objective rdpo`.

            VaPR (--recipe vapr): each sample is classified into one of ten task categories (rules or a backend), \
            unsuitable ones (multiple choice) dropped, and --editor rewrites only the key spans of the chosen answer; \
            a penalty list stops one substitution from being reused more than --max-reuse times. Output lines add \
            "category", "substitutions", "length_gap" (tokens) and "levenshtein" (characters).

            BACKEND is local:DIR (a llava-hf folder run here) or openai:BASE_URL[#model] (any OpenAI-compatible \
            server: OpenAI, vLLM, SGLang, Ollama, `realign serve`); its key comes from the environment variable \
            named by --api-key-env and is never printed. The output is appended one record at a time: a re-run \
            continues where a stopped one ended. Records without a pair go, with their reason, to \
            <OUT stem>.skipped.jsonl; a summary goes to <OUT stem>.summary.json.
            """)

    @Option(help: "Input JSONL: {\"id\", \"image\", \"prompt\"[, \"chosen\"]}; image paths relative to the file's folder. With --format, a preference file of another tool (its chosen answers kept, its rejected ones ignored), or a LLaMA-Factory dataset_info.json with --dataset.") var input: String
    @Option(help: "The input's form: samples (the default above), or a preference form train reads: auto, \(PreferenceFormat.allCases.filter { $0 != .auto }.map(\.rawValue).joined(separator: ", ")).") var format = "samples"
    @Option(help: "With a dataset_info.json --input: the dataset entry to read.") var dataset: String?
    @Option(help: "Output JSONL (appended; a re-run resumes).") var out: String
    @Option(help: "The hallucination-prone llava-hf VLM: the inducer by default and the knowledge base's embedder.") var model: String
    @Option(help: "The sentence-transformers folder for the similarity filter (all-MiniLM-L6-v2).") var sentenceModel: String?
    @Option(help: "realign or vapr.") var recipe = "realign"
    @Option(help: "A knowledge base folder from `realign index build` (default: built into <OUT>.index/).") var index: String?
    @Option(help: "Index kind when the knowledge base is built here: flat, hnsw, ivf, ivfpq.") var indexKind = "flat"
    @Option(help: "Chosen answers: given (from the input) or a BACKEND that answers the prompt.") var chosen = "given"
    @Option(help: "Masker: rules (built-in lexicons) or a BACKEND.") var masker = "rules"
    @Option(help: "A word list (one word or phrase per line) added to the rule masker's lexicons.") var maskWords: String?
    @Option(help: "Inducer: local (--model) or a BACKEND.") var inducer = "local"
    @Option(help: "continue (fill each mask by continuing the answer; needs prefill, as vLLM/SGLang/realign serve have) or instruct (one request, fills read back).") var induceMode = "continue"
    @Option(help: "Retrieved images tried per sample.") var k = 5
    @Option(help: "A completion becomes the rejected answer when its cosine to the chosen one is below tau.") var tau = 0.95
    @Option(help: "Records processed at once (local models still run one request at a time).") var concurrency = 4
    @Option(help: "Environment variable holding the API key for openai: backends.") var apiKeyEnv: String?
    @Option(help: "Seconds one API request may take.") var timeout = 120.0
    @Option(help: "Retries of an API request after 429/5xx/timeouts.") var retries = 4
    @Option(help: "VaPR: the editor, rules (swaps the key word for another of its class, no network) or a BACKEND.") var editor: String?
    @Option(help: "VaPR with --editor rules: a lexicon JSON {\"classes\": {\"colour\": [...], \"count\": [...], \"object\": [...], \"size\": [...], \"background\": [...]}, \"opposites\": [[\"left of\", \"right of\"], ...]} (default: English word classes).") var editorLexicon: String?
    @Option(help: "VaPR: task classifier, rules or a BACKEND.") var classifier = "rules"
    @Option(help: "VaPR: uses of one substitution before it is refused.") var maxReuse = 3
    @Option(help: "VaPR: reject pairs whose token lengths differ by more.") var maxLengthGap: Int?
    @Option(help: "VaPR: reject pairs whose Levenshtein distance is larger.") var maxEditDistance: Int?
    @Option(help: "Build only shard I of N (I/N, from 0: the samples at input positions I, I+N, ...) into OUT.shard-I-of-N.jsonl; merge with --merge-shards N. Under torchrun or Slurm the rank is the shard and rank 0 merges.") var shard: String?
    @Option(help: "Merge OUT.shard-I-of-N.jsonl (I = 0..<N) into OUT in input order, then stop.") var mergeShards: Int?
    @Option(help: "Start this many local ranks (without torchrun), each building its shard; rank 0 merges.") var nprocPerNode: Int?
    @Option(help: "Seconds a rank waits for the others (under torchrun).") var distTimeout = 3600.0
    @OptionGroup var precision: WeightPrecision

    func run() throws {
        Launcher.bindToLauncher()
        if let n = nprocPerNode {
            guard n >= 1 else { throw ValidationError("--nproc-per-node must be positive") }
            guard try DistributedEnvironment.current() == nil, shard == nil else {
                throw ValidationError("--nproc-per-node starts ranks itself: leave out --shard, torchrun and Slurm")
            }
            if n > 1 {
                do { try Launcher.run(ranks: n) } catch { throw CleanExit.message(error) }
                return
            }
        }
        try blockingRun { try await self.runAsync() }
    }

    func runAsync() async throws {
        guard recipe == "realign" || recipe == "vapr" else { throw ValidationError("--recipe must be realign or vapr") }
        guard let mode = Inducer.Mode(rawValue: induceMode) else { throw ValidationError("--induce-mode must be continue or instruct") }
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard let kind = VectorIndex.Kind(rawValue: indexKind) else { throw ValidationError("--index-kind must be flat, hnsw, ivf or ivfpq") }
        do {
            try await build(mode: mode, kind: kind)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw CleanExit.message(error)
        }
    }

    func build(mode: Inducer.Mode, kind: VectorIndex.Kind) async throws {
        let started = Date()
        let (allSamples, allProblems) = try readSamples()
        let order = allProblems.compactMap(\.id) + allSamples.map(\.id)
        if let n = mergeShards {
            try Shard.mergePairs(into: out, count: n, ids: order, problemCount: allProblems.count)
            log("merged \(n) shards into \(out) and \(ResumableOutput.skippedPath(for: out))")
            return
        }
        let environment = try DistributedEnvironment.current()
        if environment != nil && shard != nil { throw ValidationError("--shard: under torchrun or Slurm each rank is its own shard; leave it out") }
        let group = try environment.map { try ProcessGroup(environment: $0, timeout: distTimeout) }
        let part = try environment.map { try Shard(index: $0.rank, count: $0.worldSize) } ?? shard.map { try Shard(parsing: $0) }
        if part != nil && recipe == "vapr" {
            throw ValidationError("--recipe vapr cannot be sharded: its penalty list follows the whole input in order (run it in one process)")
        }
        let talks = (group?.rank ?? 0) == 0
        let samples = part?.take(allSamples) ?? allSamples
        let problems = (part?.index ?? 0) == 0 ? allProblems : []
        let outPath = part.map { $0.outputPath(for: out) } ?? out
        let worker = TorchWorker()
        if talks { log("loading \(model)") }
        let vlm = try VisionLanguageModel(folder: model, bf16LinearWeights: precision.bf16Weights)
        let factory = BackendFactory(vlm: vlm, worker: worker, apiKeyEnv: apiKeyEnv, timeout: timeout, retries: retries, concurrency: concurrency)
        for p in problems { if case .skipped(_, _, let reason) = p { log("input: \(reason)") } }
        if let part { log("shard \(part): \(samples.count) of \(allSamples.count) samples into \(outPath)") }
        let output = try ResumableOutput(path: outPath)
        if !output.done.isEmpty { log("resuming: \(output.done.count) records already in \(out) and \(output.skippedPath)") }
        let runner = RecordRunner(concurrency: concurrency)
        let label = part.map { "\(recipe) \($0)" } ?? recipe
        let progress: @Sendable (RecordRunner.Progress) -> Void = { p in
            guard talks else { return }
            FileHandle.standardError.write(Data(("\r" + progressLine(label, p)).utf8))
        }
        // Stages are timed by the Re-Align pipeline; VaPR leaves the clock empty.
        var clock = StageClock()
        let result: RecordRunner.Progress

        if recipe == "realign" {
            guard let sentenceModel else { throw ValidationError("--sentence-model is required for --recipe realign (the all-MiniLM-L6-v2 folder)") }
            let encoder = try SentenceEncoder(folder: sentenceModel)
            // Every shard retrieves from the same knowledge base, over every input image: under torchrun rank 0
            // builds it and the others open it; a lone shard builds its own copy.
            if let group, group.rank != 0 { try group.barrier() }
            let base = try knowledgeBase(vlm: vlm, samples: allSamples, kind: kind, folder: (group == nil ? outPath : out) + ".index",
                                         built: (group?.rank ?? 0) != 0)
            if let group, group.rank == 0 { try group.barrier() }
            let chosenSource: ReAlignPipeline.ChosenSource = chosen == "given" ? .given : .backend(try factory.backend(chosen))
            let theMasker: any Masker
            if masker == "rules" {
                theMasker = try maskWords.map { try RuleMasker(wordList: $0) } ?? RuleMasker()
            } else {
                theMasker = BackendMasker(backend: try factory.backend(masker))
            }
            let inducerBackend = try factory.backend(inducer == "local" ? "local:\(model)" : inducer)
            var pipeline = ReAlignPipeline(chosen: chosenSource, masker: theMasker,
                                           retriever: KnowledgeBaseRetriever(base: base, model: vlm, worker: worker),
                                           inducer: Inducer(backend: inducerBackend, mode: mode),
                                           similarity: SentenceSimilarity(encoder: encoder, worker: worker))
            pipeline.k = k
            pipeline.tau = tau
            clock = pipeline.clock
            log("re-align: \(samples.count) samples; chosen \(chosen), masker \(theMasker.name), inducer \(inducerBackend.name) (\(mode.rawValue)), k \(k), tau \(tau)")
            let p = pipeline
            result = try await runner.run(samples, problems: problems, output: output, progress: progress) { await p.process($0) }
        } else {
            guard let editor else { throw ValidationError("--recipe vapr needs --editor rules or --editor BACKEND") }
            let theEditor: VaPREditor.Editor
            let editorName: String
            if editor == "rules" {
                theEditor = .rules(try editorLexicon.map { try RuleEditor(lexiconFile: $0) } ?? .english)
                editorName = "rules" + (editorLexicon.map { " (\($0))" } ?? " (English word classes)")
            } else {
                let backend = try factory.backend(editor)
                theEditor = .backend(backend)
                editorName = backend.name
            }
            let theClassifier: VaPREditor.Classifier = classifier == "rules" ? .rules : .backend(try factory.backend(classifier))
            let tokenizer = vlm.tokenizer
            var vapr = VaPREditor(classifier: theClassifier, editor: theEditor) { (try? tokenizer.encode($0, addSpecialTokens: false).count) ?? 0 }
            vapr.maxReuse = maxReuse
            vapr.maxLengthGap = maxLengthGap
            vapr.maxEditDistance = maxEditDistance
            vapr.penalties.load(from: out)
            log("vapr: \(samples.count) samples; editor \(editorName), classifier \(classifier)")
            let v = vapr
            result = try await runner.run(samples, problems: problems, output: output, progress: progress,
                                          commit: { await v.commit($0, $1) }) { await v.propose($0) }
        }
        if talks { FileHandle.standardError.write(Data("\n".utf8)) }
        if let group {
            try group.barrier()  // every shard is written
            guard group.rank == 0 else { return }
            try Shard.mergePairs(into: out, count: group.worldSize, ids: order, problemCount: allProblems.count)
            log("merged \(group.worldSize) shards into \(out)")
        } else if let part {
            log("shard \(part) done: kept \(result.kept), unpaired \(result.unpaired), failed \(result.failed); when every shard is done: realign build-prefs --input \(input) --out \(out) --merge-shards \(part.count) --model \(model)")
            return
        }
        let usage = factory.usages()
        let elapsed = Date().timeIntervalSince(started)
        let summary = PreferenceSummary(output: out)
        log("\(group == nil ? "this run" : "rank 0's shard"): kept \(result.kept), unpaired \(result.unpaired), failed \(result.failed)\n" + summary.text(stageSeconds: clock.totals, usage: usage, elapsed: elapsed))
        let summaryPath = URL(fileURLWithPath: out).deletingPathExtension().path + ".summary.json"
        try (summary.json(stageSeconds: clock.totals, usage: usage, elapsed: elapsed).serialized(pretty: true) + "\n")
            .write(toFile: summaryPath, atomically: true, encoding: .utf8)
        log("wrote \(out); skipped records in \(ResumableOutput.skippedPath(for: out)); summary in \(summaryPath)")
    }

    /// The input's samples: our own form, or the prompts, images and chosen answers of another tool's preference
    /// records (a record without an image is reported, as a sample without one is).
    func readSamples() throws -> (samples: [SampleInput], problems: [RecordOutcome]) {
        if format == "samples" {
            if dataset != nil { throw ValidationError("--dataset reads a dataset_info.json entry: give --format llamafactory (or auto)") }
            return try SampleReader.read(input)
        }
        let source = try PreferenceSource(path: input, format: format, dataset: dataset)
        let loaded = try PreferenceData.load(source.path, requireRejected: false, format: source.format, datasetInfo: source.datasetInfo)
        var problems = loaded.problems.map { RecordOutcome.skipped(id: "line-\($0.line)", kind: "failed", reason: "\($0)") }
        var samples: [SampleInput] = []
        for r in loaded.records {
            guard let image = r.image else {
                problems.append(.skipped(id: r.id, kind: "failed", reason: "\(source.path):\(r.line): missing 'image'"))
                continue
            }
            samples.append(SampleInput(id: r.id, image: image, prompt: r.prompt, chosen: r.chosen, line: r.line))
        }
        return (samples, problems)
    }

    /// The given knowledge base (checked against the model), or one built from the input's images into <OUT>.index/.
    /// `built`: another rank has just built `folder`; open it (building again would rewrite its index file while
    /// the other ranks read it).
    func knowledgeBase(vlm: VisionLanguageModel, samples: [SampleInput], kind: VectorIndex.Kind, folder: String,
                       built: Bool = false) throws -> KnowledgeBase {
        if let index = index ?? (built ? folder : nil) {
            let base = try KnowledgeBase(opening: index)
            guard try KnowledgeBase.fingerprint(of: vlm.model, folder: vlm.folder) == base.fingerprint else {
                throw IndexError("\(index): built by another model (\(base.modelPath)); use --model \(base.modelPath) or build a new index")
            }
            return base
        }
        var images: [String] = []
        var seen = Set<String>()
        for s in samples where seen.insert(s.image).inserted { images.append(s.image) }
        let base = try KnowledgeBase.build(folder: folder, model: vlm, images: images, kind: kind, progress: indexProgress("knowledge base"))
        for s in base.skipped { log("knowledge base: skipped \(s.path): \(s.reason)") }
        return base
    }
}

/// Backends from their command-line names; `local:` folders load once and share the torch worker.
final class BackendFactory: @unchecked Sendable {
    let vlm: VisionLanguageModel
    let worker: TorchWorker
    let apiKeyEnv: String?
    let timeout: Double, retries: Int, concurrency: Int
    private var made: [String: any ChatBackend] = [:]
    private var order: [String] = []

    init(vlm: VisionLanguageModel, worker: TorchWorker, apiKeyEnv: String?, timeout: Double, retries: Int, concurrency: Int) {
        self.vlm = vlm
        self.worker = worker
        self.apiKeyEnv = apiKeyEnv
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
    }

    func backend(_ text: String) throws -> any ChatBackend {
        let spec = try BackendSpec(parsing: text)
        if let b = made[spec.description] { return b }
        let backend: any ChatBackend
        switch spec {
        case .local(let folder):
            let same = URL(fileURLWithPath: folder).standardizedFileURL.path == URL(fileURLWithPath: vlm.folder).standardizedFileURL.path
            // A second local model (say, a larger "advanced" VLM) shares the worker: one torch job at a time.
            backend = LocalBackend(model: same ? vlm : try VisionLanguageModel(folder: folder, bf16LinearWeights: vlm.model.hasBF16LinearWeights), worker: worker)
        case .openai(let url, let model):
            var options = OpenAIClient.Options()
            options.timeout = timeout
            options.maxRetries = retries
            options.concurrency = concurrency
            let client = try OpenAIClient(baseURL: url, model: model, apiKeyVariable: apiKeyEnv, options: options)
            client.onRetry = { message in FileHandle.standardError.write(Data("\nrealign: \(message)\n".utf8)) }
            backend = client
        }
        made[spec.description] = backend
        order.append(spec.description)
        return backend
    }

    func usages() -> [(String, TokenUsage)] { order.compactMap { key in made[key].map { ($0.name, $0.usage) } } }
}
