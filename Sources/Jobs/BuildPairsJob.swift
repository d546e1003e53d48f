import Alignment
import Backends
import Common
import Foundation
import JSON
import Models
import Preference
import Retrieval
import Torch

/// What `BuildPairsJob` builds and how: Re-Align (mask -> retrieve -> induce -> filter) or VaPR (edited hard
/// negatives). Backends are named `local:DIR` or `openai:BASE_URL[#model]`.
public struct BuildPairsConfig: Sendable {
    public enum Method: String, Sendable, CaseIterable { case realign, vapr }

    public var method: Method = .realign
    /// Samples JSONL ({"id","image","prompt"[,"chosen"]}), or another tool's preference file (`inputFormat`).
    public var input: String
    /// `samples`, or a `PreferenceFormat` name: the chosen answers of another tool's pairs are kept.
    public var inputFormat = "samples"
    /// With a dataset_info.json input: the entry to read.
    public var dataset: String?
    /// Output JSONL (appended; a re-run resumes).
    public var out: String
    /// The hallucination-prone VLM: the inducer by default and the knowledge base's embedder.
    public var model: String
    /// The sentence-transformers folder of the similarity filter (Re-Align).
    public var sentenceModel: String?
    /// A knowledge base built before (default: built into <out>.index/).
    public var index: String?
    public var indexKind: VectorIndex.Kind = .flat
    public var chosen = "given"
    public var masker = "rules"
    public var maskWords: String?
    /// The rule masker, strategically: at most this many spans per answer (nil: every span)...
    public var maskSpans: Int?
    /// ... of these kinds (nil: objects, attributes and relations).
    public var maskKinds: [RuleMasker.Kind]?
    /// One sample per image, of a kind drawn with these weights (nil: every sample).
    public var kindMix: KindMix?
    /// Seeds the strategic mask.
    public var seed: UInt64 = 0
    public var inducer = "local"
    public var induceMode: Inducer.Mode = .continue
    public var k = 5
    public var tau = 0.95
    public var concurrency = 4
    public var apiKeyEnv: String?
    public var timeout = 120.0
    public var retries = 4
    public var editor: String?
    public var editorLexicon: String?
    public var classifier = "rules"
    public var maxReuse = 3
    public var maxLengthGap: Int?
    public var maxEditDistance: Int?
    public var bf16Weights = false
    public var launch = LaunchOptions()
    /// Draw progress bars and summaries on stderr.
    public var verbose = true

    public init(input: String, out: String, model: String) {
        self.input = input
        self.out = out
        self.model = model
    }

    /// Refuses what cannot run, before anything is loaded.
    public func validate() throws {
        guard k >= 1 else { throw JobError("k must be at least 1") }
        guard concurrency >= 1 else { throw JobError("concurrency must be at least 1") }
        if let maskSpans, maskSpans < 1 { throw JobError("mask spans must be at least 1") }
        if maskSpans != nil || maskKinds != nil, masker != "rules" { throw JobError("mask spans and kinds set the rule masker (masker rules)") }
        if method == .realign && sentenceModel == nil { throw JobError("re-align pairs need the sentence model (all-MiniLM-L6-v2 folder) of the similarity filter") }
        if method == .vapr && editor == nil { throw JobError("vapr pairs need an editor: rules or a backend") }
        if method == .vapr && launch.shard != nil { throw JobError("vapr cannot be sharded: its penalty list follows the whole input in order (run it in one process)") }
        if inputFormat != "samples" && PreferenceFormat(rawValue: inputFormat) == nil {
            throw JobError("input format must be samples or one of \(PreferenceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if inputFormat == "samples" && dataset != nil { throw JobError("a dataset entry is read from a dataset_info.json: give the input format llamafactory (or auto)") }
    }
}

/// The outcome of one run of the job (the whole job's figures are in the summary file).
public struct BuildPairsResult: Sendable {
    public var kept = 0, unpaired = 0, failed = 0
    public var summaryPath: String?
    /// The whole job's summary (every run of it), when this process wrote it.
    public var summary: JSONValue?
}

/// Builds preference pairs into `config.out`, one record at a time: a re-run continues where a killed one ended,
/// and the summary (`<stem>.summary.json`) reports the whole job, every run's requests and tokens included.
public struct BuildPairsJob: Sendable {
    public var config: BuildPairsConfig

    public init(_ config: BuildPairsConfig) { self.config = config }

    /// Runs this process's part (see `LaunchOptions`); nil when another process merges and reports.
    @discardableResult
    public func run() async throws -> BuildPairsResult? {
        try config.validate()
        let c = config
        let started = Date()
        let (allSamples, allProblems) = try readSamples()
        let order = allProblems.compactMap(\.id) + allSamples.map(\.id)
        let role = try c.launch.role()
        switch role {
        case .launched: return nil
        case .merge(let n):
            try Shard.mergePairs(into: c.out, count: n, ids: order, problemCount: allProblems.count)
            if c.verbose { log("merged \(n) shards into \(c.out) and \(ResumableOutput.skippedPath(for: c.out))") }
            return nil
        default: break
        }
        if role.part != nil && c.method == .vapr {
            throw JobError("vapr cannot be sharded: its penalty list follows the whole input in order (run it in one process)")
        }
        let group = role.group, part = role.part
        let talks = role.talks && c.verbose
        let samples = part?.take(allSamples) ?? allSamples
        let problems = (part?.index ?? 0) == 0 ? allProblems : []
        let outPath = part.map { $0.outputPath(for: c.out) } ?? c.out
        let worker = TorchWorker()
        if talks { log("loading \(c.model)") }
        let vlm = try VisionLanguageModel(folder: c.model, bf16LinearWeights: c.bf16Weights)
        let factory = BackendFactory(vlm: vlm, worker: worker, apiKeyEnv: c.apiKeyEnv, timeout: c.timeout, retries: c.retries, concurrency: c.concurrency)
        if c.verbose { for p in problems { if case .skipped(_, _, let reason) = p { log("input: \(reason)") } } }
        if let part, c.verbose { log("shard \(part): \(samples.count) of \(allSamples.count) samples into \(outPath)") }
        let output = try ResumableOutput(path: outPath)
        if !output.done.isEmpty && c.verbose { log("resuming: \(output.done.count) records already in \(outPath) and \(output.skippedPath)") }
        let ledger = PreferenceLedger(output: outPath)
        let runner = RecordRunner(concurrency: c.concurrency)
        let label = part.map { "\(c.method.rawValue) \($0)" } ?? c.method.rawValue
        // Stages are timed by the Re-Align pipeline; VaPR leaves the clock empty.
        var clock = StageClock()
        let result: RecordRunner.Progress

        if c.method == .realign {
            let encoder = try SentenceEncoder(folder: c.sentenceModel!)
            // Every shard retrieves from the same knowledge base, over every input image: under torchrun rank 0
            // builds it and the others open it; a lone shard builds its own copy.
            if let group, group.rank != 0 { try group.barrier() }
            let base = try knowledgeBase(vlm: vlm, samples: allSamples, folder: (group == nil ? outPath : c.out) + ".index",
                                         built: (group?.rank ?? 0) != 0, verbose: talks)
            if let group, group.rank == 0 { try group.barrier() }
            let chosenSource: ReAlignPipeline.ChosenSource = c.chosen == "given" ? .given : .backend(try factory.backend(c.chosen))
            let theMasker: any Masker
            if c.masker == "rules" {
                var rules = try c.maskWords.map { try RuleMasker(wordList: $0) } ?? RuleMasker()
                rules.spans = c.maskSpans
                if let kinds = c.maskKinds { rules.kinds = Set(kinds) }
                rules.seed = c.seed
                theMasker = rules
            } else {
                theMasker = BackendMasker(backend: try factory.backend(c.masker))
            }
            let inducerBackend = try factory.backend(c.inducer == "local" ? "local:\(c.model)" : c.inducer)
            var pipeline = ReAlignPipeline(chosen: chosenSource, masker: theMasker,
                                           retriever: KnowledgeBaseRetriever(base: base, model: vlm, worker: worker),
                                           inducer: Inducer(backend: inducerBackend, mode: c.induceMode),
                                           similarity: SentenceSimilarity(encoder: encoder, worker: worker))
            pipeline.k = c.k
            pipeline.tau = c.tau
            clock = pipeline.clock
            if talks, let mix = c.kindMix { log("kind mix \(mix.description): \(Self.kindCounts(allSamples))") }
            if talks { log("re-align: \(samples.count) samples; chosen \(c.chosen), masker \(theMasker.name), inducer \(inducerBackend.name) (\(c.induceMode.rawValue)), k \(c.k), tau \(c.tau)") }
            let p = pipeline
            result = try await runner.run(samples, problems: problems, output: output,
                                          progress: progress(label, talks: talks, ledger: ledger, factory: factory, clock: clock, started: started)) { await p.process($0) }
        } else {
            let theEditor: VaPREditor.Editor
            let editorName: String
            if c.editor == "rules" {
                theEditor = .rules(try c.editorLexicon.map { try RuleEditor(lexiconFile: $0) } ?? .english)
                editorName = "rules" + (c.editorLexicon.map { " (\($0))" } ?? " (English word classes)")
            } else {
                let backend = try factory.backend(c.editor!)
                theEditor = .backend(backend)
                editorName = backend.name
            }
            let theClassifier: VaPREditor.Classifier = c.classifier == "rules" ? .rules : .backend(try factory.backend(c.classifier))
            let tokenizer = vlm.tokenizer
            var vapr = VaPREditor(classifier: theClassifier, editor: theEditor) { (try? tokenizer.encode($0, addSpecialTokens: false).count) ?? 0 }
            vapr.maxReuse = c.maxReuse
            vapr.maxLengthGap = c.maxLengthGap
            vapr.maxEditDistance = c.maxEditDistance
            vapr.penalties.load(from: c.out)
            if talks { log("vapr: \(samples.count) samples; editor \(editorName), classifier \(c.classifier)") }
            let v = vapr
            result = try await runner.run(samples, problems: problems, output: output,
                                          progress: progress(label, talks: talks, ledger: ledger, factory: factory, clock: clock, started: started),
                                          commit: { await v.commit($0, $1) }) { await v.propose($0) }
        }
        if talks { FileHandle.standardError.write(Data("\n".utf8)) }
        let elapsed = Date().timeIntervalSince(started)
        try ledger.save(usage: factory.usages(), stageSeconds: clock.totals, elapsed: elapsed)
        var outcome = BuildPairsResult(kept: result.kept, unpaired: result.unpaired, failed: result.failed)
        if let group {
            try group.barrier()  // every shard is written
            guard group.rank == 0 else { return nil }
            try Shard.mergePairs(into: c.out, count: group.worldSize, ids: order, problemCount: allProblems.count)
            if talks { log("merged \(group.worldSize) shards into \(c.out)") }
        } else if let part {
            if c.verbose {
                log("shard \(part) done: kept \(result.kept), unpaired \(result.unpaired), failed \(result.failed); when every shard is done, merge them (realign build-prefs ... --merge-shards \(part.count))")
            }
            return outcome
        }
        let whole = ledger.totals(usage: factory.usages(), stageSeconds: clock.totals, elapsed: elapsed)
        let summary = PreferenceSummary(output: c.out)
        let runs = ledger.earlierRuns + 1
        if talks {
            log("\(group == nil ? "this run" : "rank 0's shard"): kept \(result.kept), unpaired \(result.unpaired), failed \(result.failed)"
                + (runs > 1 ? "; the whole job over \(runs) runs:" : "") + "\n"
                + summary.text(stageSeconds: whole.stageSeconds, usage: whole.usage, elapsed: whole.elapsed))
        }
        let summaryPath = URL(fileURLWithPath: c.out).deletingPathExtension().path + ".summary.json"
        let json = summary.json(stageSeconds: whole.stageSeconds, usage: whole.usage, elapsed: whole.elapsed)
        try (json.serialized(pretty: true) + "\n").write(toFile: summaryPath, atomically: true, encoding: .utf8)
        if talks { log("wrote \(c.out); skipped records in \(ResumableOutput.skippedPath(for: c.out)); summary in \(summaryPath)") }
        outcome.summaryPath = summaryPath
        outcome.summary = json
        return outcome
    }

    /// "caption 300, existence 120, ...": the samples per kind.
    static func kindCounts(_ samples: [SampleInput]) -> String {
        var counts: [String: Int] = [:]
        for s in samples { counts[s.category ?? "caption", default: 0] += 1 }
        return counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ")
    }

    /// The progress callback: the bar (when this process talks) and the ledger, rewritten after every record.
    func progress(_ label: String, talks: Bool, ledger: PreferenceLedger, factory: BackendFactory, clock: StageClock,
                  started: Date) -> @Sendable (RecordRunner.Progress) -> Void {
        { p in
            try? ledger.save(usage: factory.usages(), stageSeconds: clock.totals, elapsed: Date().timeIntervalSince(started))
            guard talks else { return }
            FileHandle.standardError.write(Data(("\r" + progressLine(label, p)).utf8))
        }
    }

    /// The input's samples: our own form, or the prompts, images and chosen answers of another tool's preference
    /// records (a record without an image is reported, as a sample without one is).
    public func readSamples() throws -> (samples: [SampleInput], problems: [RecordOutcome]) {
        let (samples, problems) = try readAllSamples()
        return (config.kindMix.map { $0.pick(samples) } ?? samples, problems)
    }

    func readAllSamples() throws -> (samples: [SampleInput], problems: [RecordOutcome]) {
        if config.inputFormat == "samples" { return try SampleReader.read(config.input) }
        let source = try PreferenceSource(path: config.input, format: config.inputFormat, dataset: config.dataset)
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

    /// The given knowledge base (checked against the model), or one built from the input's images into `folder`.
    /// `built`: another rank has just built `folder`; open it (building again would rewrite its index file while
    /// the other ranks read it).
    func knowledgeBase(vlm: VisionLanguageModel, samples: [SampleInput], folder: String, built: Bool, verbose: Bool) throws -> KnowledgeBase {
        if let index = config.index ?? (built ? folder : nil) {
            let base = try KnowledgeBase(opening: index)
            guard try KnowledgeBase.fingerprint(of: vlm.model, folder: vlm.folder) == base.fingerprint else {
                throw IndexError("\(index): built by another model (\(base.modelPath)); use --model \(base.modelPath) or build a new index")
            }
            return base
        }
        var images: [String] = []
        var seen = Set<String>()
        for s in samples where seen.insert(s.image).inserted { images.append(s.image) }
        return try KnowledgeBaseJob.build(folder: folder, model: vlm, images: images, kind: config.indexKind, verbose: verbose)
    }
}
