import Alignment
import ArgumentParser
import Foundation
import Jobs
import Preference
import Retrieval

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
    @Option(help: "The hallucination-prone VLM (a Hugging Face folder: LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL): the inducer by default and the knowledge base's embedder.") var model: String
    @Option(help: "The sentence-transformers folder for the similarity filter (all-MiniLM-L6-v2).") var sentenceModel: String?
    @Option(help: "realign or vapr.") var recipe = "realign"
    @Option(help: "A knowledge base folder from `realign index build` (default: built into <OUT>.index/).") var index: String?
    @Option(help: "Index kind when the knowledge base is built here: flat, hnsw, ivf, ivfpq.") var indexKind = "flat"
    @Option(help: "Chosen answers: given (from the input) or a BACKEND that answers the prompt.") var chosen = "given"
    @Option(help: "Masker: rules (built-in lexicons) or a BACKEND.") var masker = "rules"
    @Option(help: "A word list (one word or phrase per line) added to the rule masker's lexicons.") var maskWords: String?
    @Option(help: "Rule masker, strategic: at most this many spans per answer, drawn per answer with --seed (default: every span).") var maskSpans: Int?
    @Option(help: "Rule masker: the kinds of span it may hide, comma-separated: objects, attributes, relations (default: all three).") var maskKinds: String?
    @Option(help: "Keep one sample per image, of a kind drawn with these weights among the kinds it has (the input's \"category\" field; none counts as caption), e.g. \"caption=0.5,existence=0.2,count=0.1,colour=0.1,size=0.05,position=0.05\".") var kindMix: String?
    @Option(help: "Seed of the strategic mask and the kind mix.") var seed: UInt64 = 0
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

    /// The job's configuration from the options.
    func configuration() throws -> BuildPairsConfig {
        guard let method = BuildPairsConfig.Method(rawValue: recipe) else { throw ValidationError("--recipe must be realign or vapr") }
        guard let mode = Inducer.Mode(rawValue: induceMode) else { throw ValidationError("--induce-mode must be continue or instruct") }
        guard let kind = VectorIndex.Kind(rawValue: indexKind) else { throw ValidationError("--index-kind must be flat, hnsw, ivf or ivfpq") }
        var c = BuildPairsConfig(input: input, out: out, model: model)
        c.method = method
        c.inputFormat = format
        c.dataset = dataset
        c.sentenceModel = sentenceModel
        c.index = index
        c.indexKind = kind
        c.chosen = chosen
        c.masker = masker
        c.maskWords = maskWords
        c.maskSpans = maskSpans
        c.maskKinds = try maskKinds.map { text in
            try text.split(separator: ",").map { part in
                guard let k = RuleMasker.Kind(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--mask-kinds: '\(part)' is not objects, attributes or relations")
                }
                return k
            }
        }
        c.seed = seed
        do { c.kindMix = try kindMix.map { try KindMix(parsing: $0, seed: seed) } } catch { throw ValidationError("--kind-mix: \(error)") }
        c.inducer = inducer
        c.induceMode = mode
        c.k = k
        c.tau = tau
        c.concurrency = concurrency
        c.apiKeyEnv = apiKeyEnv
        c.timeout = timeout
        c.retries = retries
        c.editor = editor
        c.editorLexicon = editorLexicon
        c.classifier = classifier
        c.maxReuse = maxReuse
        c.maxLengthGap = maxLengthGap
        c.maxEditDistance = maxEditDistance
        c.bf16Weights = precision.bf16Weights
        c.launch.nprocPerNode = nprocPerNode
        c.launch.shard = shard
        c.launch.mergeShards = mergeShards
        c.launch.timeout = distTimeout
        return c
    }

    func run() throws {
        let job = BuildPairsJob(try configuration())
        do {
            try blockingRun { try await job.run() }
        } catch {
            throw CleanExit.message(error)
        }
    }
}
