import ArgumentParser
import Backends
import Evaluation
import Common
import Foundation
import Jobs
import JSON

/// Hallucination benchmarks: build POPE, score answer files as the standard harnesses do, answer with a local
/// model (resumable), compare runs.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score hallucination benchmarks (POPE, HallusionBench, MME, CHAIR) from answer files or a local model.",
        discussion: """
            Each scorer reproduces the parsing and counting of the harness it names (see --parse). Answers match \
            questions by question_id when both files carry it, else by order; the report says which. Bad lines, \
            missing answers and unknown categories are reported by file and line and counted. With --model the \
            questions are answered greedily in batches and appended to an answers JSONL; re-running continues it.
            """,
        subcommands: [EvalPOPE.self, EvalHallusionBench.self, EvalMME.self, EvalCHAIR.self, EvalYesBias.self, EvalPOPEBuild.self, EvalCompare.self])
}

/// Where answers come from: a file, or a local model answering now.
struct AnswerSource: ParsableArguments {
    @Option(help: "An answers JSONL (question_id + text/answer/prediction).") var answers: String?
    @Option(help: "A VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL) to answer the questions with.") var model: String?
    @Option(help: "A PEFT LoRA adapter for --model.") var adapter: String?
    @Option(help: "Folder the questions' image paths are relative to (with --model; default: the questions file's folder).") var imageRoot: String?
    @Option(help: "Where --model's answers are appended (default: <questions>.<model>[.<adapter>].answers.jsonl here).") var answersOut: String?
    @Option(help: "Questions per generation batch.") var batchSize = 8
    @Option(help: "Most new tokens per answer.") var maxNewTokens = 64
    @Option(help: "Text appended to every question (e.g. \"\\nAnswer the question using a single word or phrase.\").") var promptSuffix = ""
    @Option(help: "With --model: answer only shard I of N (I/N: the questions at positions I, I+N, ...) into <answers>.shard-I-of-N.jsonl, and stop; score after --merge-shards N. Under torchrun or Slurm each rank is a shard and rank 0 merges and scores.") var shard: String?
    @Option(help: "With --model: merge the N shards' answers into the answers file (in question order), then score.") var mergeShards: Int?
    @Option(help: "With --model: start this many local ranks (without torchrun), each answering its shard; rank 0 merges and scores.") var nprocPerNode: Int?
    @Option(help: "Seconds a rank waits for the others (sharded answering).") var distTimeout = 3600.0

    /// The answers file: the given one, or the one the model has just (finished) writing; nil when this process
    /// answered a shard and another one merges and scores.
    func resolve(questions: String, idKeys: [String] = ["question_id", "id", "image_id"], prompt: String? = nil,
                 questionList: [Question]? = nil) throws -> String? {
        if let answers {
            guard model == nil else { throw EvalError("give --answers or --model, not both") }
            return answers
        }
        guard let model else { throw EvalError("give --answers FILE, or --model DIR (with --image-root DIR when the image paths are not relative to the questions file)") }
        var c = AnswerConfig(questions: questions, model: model)
        c.adapter = adapter
        c.imageRoot = imageRoot
        c.answersOut = answersOut
        c.batchSize = batchSize
        c.maxNewTokens = maxNewTokens
        c.promptSuffix = promptSuffix
        c.prompt = prompt
        c.idKeys = idKeys
        c.launch.nprocPerNode = nprocPerNode
        c.launch.shard = shard
        c.launch.mergeShards = mergeShards
        c.launch.timeout = distTimeout
        return try AnswerJob.run(c, questionList: questionList)
    }
}

/// How a report is shown: Markdown (default), JSON on stdout, and/or a JSON file.
struct ReportOutput: ParsableArguments {
    @Flag(help: "Print the metrics as JSON instead of Markdown tables.") var json = false
    @Option(help: "Also write the metrics JSON to this file.") var out: String?

    func emit(_ report: Report, issues: [EvalIssue]) throws {
        for issue in issues.prefix(20) { log(issue.description) }
        if issues.count > 20 { log("... \(issues.count - 20) more issues (all in the JSON report)") }
        if let out { try (report.json.serialized(pretty: true) + "\n").write(toFile: out, atomically: true, encoding: .utf8) }
        print(json ? report.json.serialized(pretty: true) : report.markdown, terminator: json ? "\n" : "")
    }
}

func runEval(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ValidationError { throw e } catch { throw CleanExit.message(error) }
}

struct EvalPOPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pope", abstract: "POPE: accuracy, precision, recall, F1, yes-ratio per split and overall, and the yes-bias table.",
        discussion: """
            --parse pope: the original evaluate.py (text before the first period, "No"/"not"/"no" among the words -> \
            no, else yes); lmms-eval: exact yes/no after lower/strip (its recall counts only exact "no" as false \
            negatives and its yes-ratio is the truth's); vlmevalkit: YOrN extraction (yes xor no, else unknown, \
            which counts as a "no" in F1).
            """)
    @Option(help: "POPE questions JSONL (question_id, image, text|question, label|answer, category).") var questions: String
    @OptionGroup var source: AnswerSource
    @Option(help: "pope, lmms-eval or vlmevalkit.") var parse = "pope"
    @OptionGroup var output: ReportOutput

    func run() throws {
        guard let rule = YesNoRule(rawValue: parse) else { throw ValidationError("--parse must be pope, lmms-eval or vlmevalkit") }
        try runEval {
            guard let answers = try source.resolve(questions: questions) else { return }
            let result = try POPEScorer(rule: rule).score(questionsFile: questions, answersFile: answers)
            try output.emit(result.report(rule: rule), issues: result.issues)
        }
    }
}

struct EvalYesBias: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yes-bias", abstract: "VaPR's yes-bias analysis of any yes/no set: truth vs. answer counts and the false-yes rate.")
    @Option(help: "Questions JSONL with yes/no labels.") var questions: String
    @OptionGroup var source: AnswerSource
    @Option(help: "pope, lmms-eval or vlmevalkit.") var parse = "vlmevalkit"
    @OptionGroup var output: ReportOutput

    func run() throws {
        guard let rule = YesNoRule(rawValue: parse) else { throw ValidationError("--parse must be pope, lmms-eval or vlmevalkit") }
        try runEval {
            guard let answers = try source.resolve(questions: questions) else { return }
            let result = try POPEScorer(rule: rule, knownCategories: nil).score(questionsFile: questions, answersFile: answers)
            try output.emit(result.yesBiasReport(rule: rule), issues: result.issues)
        }
    }
}

struct EvalHallusionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallusionbench", abstract: "HallusionBench: aAcc, fAcc, qAcc overall, Easy/Hard and per category (yes/no judged by VLMEvalKit's rule).",
        discussion: "Questions: the official HallusionBench.json rows as JSONL (category, subcategory, visual_input, set_id, figure_id, question_id, question, gt_answer, filename).")
    @Option(help: "HallusionBench questions JSONL.") var questions: String
    @OptionGroup var source: AnswerSource
    @OptionGroup var output: ReportOutput
    @Option(help: "Judge answers with an LLM as the official evaluation does (GPT-4): openai:BASE_URL[#model] or local:DIR.") var judge: String?
    @Option(help: "Environment variable holding the judge's API key.") var apiKeyEnv: String?
    @Option(help: "Judge requests in flight at once.") var concurrency = 8
    @Option(help: "Verdict cache (default: <answers>.judge.jsonl); a re-run asks only what is not in it.") var judgeCache: String?

    func run() throws {
        try runEval {
            guard let answers = try source.resolve(questions: questions, idKeys: ["id"]) else { return }
            guard let judge else {
                let result = try HallusionBenchScorer().score(questionsFile: questions, answersFile: answers)
                try output.emit(result.report(rule: "vlmevalkit-yorn"), issues: result.issues)
                return
            }
            let backend = try BackendFactory.standalone(judge, apiKeyEnv: apiKeyEnv, concurrency: concurrency)
            let cache = judgeCache ?? URL(fileURLWithPath: answers).deletingPathExtension().path + ".judge.jsonl"
            let answerJudge = try AnswerJudge(backend: backend, cachePath: cache)
            log("judging with \(backend.name) (verdicts cached in \(cache))")
            let box = ResultBox<HallusionBenchScorer.Result>()
            try blockingRun {
                box.value = try await HallusionBenchScorer().scoreJudged(questionsFile: questions, answersFile: answers, judge: answerJudge) { failures in
                    for f in failures.prefix(5) { log("judge: \(f)") }
                    if failures.count > 5 { log("judge: \(failures.count - 5) more failures (counted as unclear)") }
                }
            }
            let scored = box.value!
            try output.emit(scored.report(rule: "llm-judge \(backend.name)"), issues: scored.issues)
        }
    }
}

/// A value handed out of a blocking async run.
final class ResultBox<T>: @unchecked Sendable { var value: T? }

struct EvalMME: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mme", abstract: "MME: per-subtask acc, acc+, score (100·acc + 100·acc+), perception and cognition totals.",
        discussion: "--parse mme: the official calculation.py (acc+ over each subtask's consecutive question pairs); vlmevalkit: YOrN extraction, acc+ by image.")
    @Option(help: "MME questions JSONL (question_id, image, question, answer Yes/No, category = subtask).") var questions: String
    @OptionGroup var source: AnswerSource
    @Option(help: "mme or vlmevalkit.") var parse = "mme"
    @OptionGroup var output: ReportOutput

    func run() throws {
        guard let rule = MMEScorer.Rule(rawValue: parse) else { throw ValidationError("--parse must be mme or vlmevalkit") }
        try runEval {
            guard let answers = try source.resolve(questions: questions) else { return }
            let result = try MMEScorer(rule: rule).score(questionsFile: questions, answersFile: answers)
            try output.emit(result.report(rule: rule), issues: result.issues)
        }
    }
}

struct EvalCHAIR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chair", abstract: "CHAIR: CHAIRs, CHAIRi and recall of captions against COCO objects (synonyms, two-word objects, plurals) or --objects.",
        discussion: """
            --questions: a JSONL of {"image_id", "image", "objects": [...], "captions": [...]} or COCO instances_*.json \
            (with --coco-captions for the reference captions). Answers: {"image_id", "caption"}. With --model each \
            image is described with --prompt.
            """)
    @Option(help: "Annotations: JSONL with objects (and captions), or COCO instances JSON.") var questions: String
    @Option(help: "COCO captions_*.json (with a COCO instances file).") var cocoCaptions: String?
    @Option(help: "The captioning prompt for --model.") var prompt = "Please describe this image in detail."
    @Option(help: "Object vocabulary instead of COCO's: one object per line with its synonyms and plurals after it, separated by \", \" (as COCO's synonyms file; `realign world generate` writes objects.txt).") var objects: String?
    @OptionGroup var source: AnswerSource
    @OptionGroup var output: ReportOutput

    func run() throws {
        try runEval {
            var list: [Question]? = nil
            if questions.hasSuffix(".json") {
                let coco = try COCOAnnotations(instances: questions)
                list = coco.objects.enumerated().map { n, entry in
                    Question(line: n + 1, record: .object([("image_id", .string(entry.0)), ("image", .string(coco.fileNames[entry.0] ?? entry.0))]), idKeys: ["image_id"])
                }
            }
            guard let answers = try source.resolve(questions: questions, idKeys: ["image_id", "question_id"], prompt: prompt, questionList: list) else { return }
            let chair = try objects.map { path -> CHAIR in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw EvalError("\(path): cannot read") }
                return try CHAIR(objectList: text, source: path)
            } ?? CHAIR()
            let result = try chair.score(annotationsFile: questions, captionsFile: cocoCaptions, answersFile: answers)
            try output.emit(result.report(), issues: result.issues)
        }
    }
}

struct EvalPOPEBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pope-build", abstract: "Build POPE random/popular/adversarial question files from object annotations.",
        discussion: "Writes pope_random.jsonl, pope_popular.jsonl, pope_adversarial.jsonl and pope_all.jsonl (ids unique across splits).")
    @Option(help: "{\"image\", \"objects\": [...]} JSONL or COCO instances_*.json.") var annotations: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Images to sample (those with at least 3 objects).") var images = 500
    @Option(help: "Seed for the image sample and the random negatives.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Annotations (same formats) to count the adversarial split's co-occurrences over, e.g. the training set's; default: the sampled images, as POPE does.", valueName: "file"))
    var cooccurrence: String?

    func run() throws {
        try runEval {
            let (all, issues) = try POPEBuilder.annotations(annotations)
            for issue in issues { log(issue.description) }
            let prior = try cooccurrence.map { path -> [POPEBuilder.Image] in
                let (images, issues) = try POPEBuilder.annotations(path)
                for issue in issues { log(issue.description) }
                return images
            }
            let builder = POPEBuilder()
            let sampled = builder.sample(all, count: images, seed: seed)
            if sampled.count < images { log("only \(sampled.count) images have at least 3 objects; all are used") }
            let files = try builder.write(builder.build(sampled, seed: seed, cooccurrence: prior), to: out)
            log("\(sampled.count) images, \(sampled.count * 6) questions per split: \(files.joined(separator: ", "))")
        }
    }
}

struct EvalCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Two metric JSONs (from --out) side by side with the deltas (B - A).")
    @Argument(help: "The first report (e.g. the base model).") var a: String
    @Argument(help: "The second report (e.g. the aligned model).") var b: String
    @Option(help: "Column names, comma-separated.") var names = "A,B"

    func run() throws {
        try runEval {
            let parts = names.split(separator: ",").map(String.init)
            let left = try JSONValue.parse(contentsOf: a), right = try JSONValue.parse(contentsOf: b)
            print(Report.compare(left, right, names: (parts.first ?? "A", parts.count > 1 ? parts[1] : "B")), terminator: "")
        }
    }
}
