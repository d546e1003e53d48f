import Common
import Evaluation
import Foundation
import JSON
import Models

/// A local model answering a benchmark's questions: greedy, in batches, appended to an answers JSONL that a
/// re-run continues; spread over processes as `launch` says.
public struct AnswerConfig: Sendable {
    /// The questions JSONL.
    public var questions: String
    public var model: String
    public var adapter: String?
    /// Folder the questions' image paths are relative to (default: the questions file's folder).
    public var imageRoot: String?
    /// Where the answers go (default: <questions stem>.<model>[.<adapter>].answers.jsonl in the working folder).
    public var answersOut: String?
    public var batchSize = 8
    public var maxNewTokens = 64
    /// Text appended to every question.
    public var promptSuffix = ""
    /// One prompt for every record (captioning), instead of each record's question.
    public var prompt: String?
    /// The keys that name a question, in order of preference.
    public var idKeys = ["question_id", "id", "image_id"]
    public var launch = LaunchOptions()
    public var verbose = true

    public init(questions: String, model: String) {
        self.questions = questions
        self.model = model
    }

    /// The answers file this configuration writes.
    public var answersPath: String {
        if let answersOut { return answersOut }
        let stem = ((questions as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = [stem, (model as NSString).lastPathComponent] + (adapter.map { [($0 as NSString).lastPathComponent] } ?? [])
        return name.joined(separator: ".") + ".answers.jsonl"
    }
}

public enum AnswerJob {
    /// Answers the questions (this process's share) with `loaded` (that model and adapter) or the configured ones; returns the complete answers file, or nil when this process
    /// answered a shard that another one merges.
    @discardableResult
    public static func run(_ config: AnswerConfig, questionList: [Question]? = nil, loaded: VisionLanguageModel? = nil) throws -> String? {
        guard config.batchSize >= 1, config.maxNewTokens >= 1 else { throw JobError("answering: batch size and new tokens must be positive") }
        let role = try config.launch.role()
        if case .launched = role { return nil }  // the ranks answered, merged and scored
        let out = config.answersPath
        var list = questionList
        if list == nil {
            let file = try JSONLines(path: config.questions)
            if role.talks && config.verbose { for issue in file.issues.prefix(20) { log(issue.description) } }
            list = file.records.map { Question(line: $0.line, record: $0.value, idKeys: config.idKeys) }
        }
        if case .merge(let n) = role {
            try Shard.mergeAnswers(into: out, count: n, questions: list!)
            if config.verbose { log("merged \(n) shards' answers into \(out)") }
            return out
        }
        let part = role.part
        let vlm = try loaded ?? VisionLanguageModel(folder: config.model, adapter: config.adapter)
        var runner = AnswerRunner(model: vlm, imageRoot: config.imageRoot ?? (config.questions as NSString).deletingLastPathComponent)
        runner.batchSize = config.batchSize
        runner.options = GenerationOptions(maxNewTokens: config.maxNewTokens)
        runner.promptSuffix = config.promptSuffix
        runner.prompt = config.prompt
        runner.shard = part
        let written = part?.outputPath(for: out) ?? out
        let label = ((written as NSString).lastPathComponent as NSString).deletingPathExtension
        let progress = role.talks && config.verbose ? progressBar(part.map { "  \(label) (shard \($0))" } ?? "  \(label)") : nil
        let summary = try runner.run(questions: list!, questionsFile: config.questions, answersFile: written, progress: progress)
        if config.verbose {
            for issue in summary.issues.prefix(20) { log(issue.description) }
            log("\(summary.answered) answered now, \(summary.resumed) already in \(written)")
        }
        if let group = role.group {
            try group.barrier()  // every shard is answered
            guard group.rank == 0 else { return nil }
            try Shard.mergeAnswers(into: out, count: group.worldSize, questions: list!)
            if config.verbose { log("merged \(group.worldSize) shards' answers into \(out)") }
        } else if let part {
            if config.verbose { log("shard \(part) answered; when every shard is done, score with --merge-shards \(part.count) (same --model and questions)") }
            return nil
        }
        return out
    }
}
