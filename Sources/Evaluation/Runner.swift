import Foundation
import Images
import JSON
import Models

/// Answers a benchmark's questions with a local model, greedy and batched, appending each answer to a JSONL as
/// it is made; a restart skips the questions already answered. Unreadable images are reported and left
/// unanswered (the score then counts them as missing).
public struct AnswerRunner {
    public var model: VisionLanguageModel
    public var imageRoot: String
    public var batchSize = 8
    public var options = GenerationOptions(maxNewTokens: 64)
    /// Appended to every question (e.g. lmms-eval's "\nAnswer the question using a single word or phrase.").
    public var promptSuffix = ""
    /// Asked instead of each record's question (CHAIR: "Please describe this image in detail.").
    public var prompt: String?

    public init(model: VisionLanguageModel, imageRoot: String) {
        self.model = model
        self.imageRoot = imageRoot
    }

    public struct Summary: Sendable {
        public var answered = 0, resumed = 0
        public var issues: [EvalIssue] = []
    }

    /// The answer key of a question: its question_id (or id, image_id), else its position (1-based).
    static func key(_ q: Question, position: Int) -> String { q.id ?? String(position) }

    public func run(questionsFile: String, answersFile: String, idKeys: [String] = ["question_id", "id", "image_id"],
                    progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let qf = try JSONLines(path: questionsFile)
        var summary = try run(questions: qf.records.map { Question(line: $0.line, record: $0.value, idKeys: idKeys) },
                              questionsFile: questionsFile, answersFile: answersFile, progress: progress)
        summary.issues = qf.issues + summary.issues
        return summary
    }

    public func run(questions: [Question], questionsFile: String, answersFile: String, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        var summary = Summary()
        var done = Set<String>()
        if FileManager.default.fileExists(atPath: answersFile) {
            // A line cut by a kill is dropped (truncated away) so the file stays valid JSONL.
            try dropPartialLastLine(answersFile)
            for (_, record) in try JSONLines(path: answersFile).records { if let id = record.text(["question_id"]) { done.insert(id) } }
        } else {
            FileManager.default.createFile(atPath: answersFile, contents: nil)
        }
        let todo = questions.enumerated().filter { !done.contains(Self.key($0.element, position: $0.offset + 1)) }
        summary.resumed = questions.count - todo.count
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: answersFile))
        defer { try? handle.close() }
        try handle.seekToEnd()
        var finished = summary.resumed
        progress?(finished, questions.count)
        for start in stride(from: 0, to: todo.count, by: max(1, batchSize)) {
            let batch = todo[start..<min(start + max(1, batchSize), todo.count)]
            var texts: [String] = [], images: [RGBImage] = [], keys: [String] = []
            for (position, q) in batch {
                guard let name = q.image else {
                    summary.issues.append(EvalIssue(file: questionsFile, line: q.line, message: "no image field, not answered"))
                    continue
                }
                let path = name.hasPrefix("/") ? name : (imageRoot as NSString).appendingPathComponent(name)
                do {
                    images.append(try RGBImage(data: Data(contentsOf: URL(fileURLWithPath: path)), name: path))
                    texts.append((prompt ?? q.text) + promptSuffix)
                    keys.append(Self.key(q, position: position + 1))
                } catch {
                    summary.issues.append(EvalIssue(file: questionsFile, line: q.line, message: "\(path): \(error), not answered"))
                }
            }
            let answers = try model.answers(texts, images: images, options: options)
            var lines = ""
            for (key, answer) in zip(keys, answers) {
                let id: JSONValue = Int(key).map { .int($0) } ?? .string(key)
                lines += JSONValue.object([("question_id", id), ("text", .string(answer))]).serialized() + "\n"
            }
            try handle.write(contentsOf: Data(lines.utf8))
            try handle.synchronize()
            summary.answered += answers.count
            finished += batch.count
            progress?(finished, questions.count)
        }
        return summary
    }

    func dropPartialLastLine(_ path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let last = data.last, last != UInt8(ascii: "\n") else { return }
        let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(keep))
        try handle.close()
    }
}
