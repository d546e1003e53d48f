import Common
import Foundation
import Images
import JSON
import Models

/// Answers a benchmark's questions with a local model, greedy and batched, appending each answer to a JSONL as
/// it is made; a restart skips the questions already in the file. An unreadable image is reported and written as
/// an error record (`"error"`, no text), which the scorers count as a missing answer; delete its line to retry.
public struct AnswerRunner {
    public var model: VisionLanguageModel
    public var imageRoot: String
    public var batchSize = 8
    public var options = GenerationOptions(maxNewTokens: 64)
    /// Appended to every question (e.g. lmms-eval's "\nAnswer the question using a single word or phrase.").
    public var promptSuffix = ""
    /// Asked instead of each record's question (CHAIR: "Please describe this image in detail.").
    public var prompt: String?
    /// Only this shard's questions (positions I, I+N, ... of the file) are asked; `Shard.mergeAnswers` joins the shards.
    public var shard: Shard?

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
        // Opening the answers cuts a line torn by a kill, so the file stays valid JSONL and that question is asked again.
        let answers = try JSONLAppender(path: answersFile)
        var done = Set<String>()
        for record in answers.existing { if let id = record?.text(["question_id"]) { done.insert(id) } }
        let mine = Array(questions.enumerated()).filter { shard == nil || $0.offset % shard!.count == shard!.index }
        let todo = mine.filter { !done.contains(Self.key($0.element, position: $0.offset + 1)) }
        summary.resumed = mine.count - todo.count
        var finished = summary.resumed
        progress?(finished, mine.count)
        for start in stride(from: 0, to: todo.count, by: max(1, batchSize)) {
            let batch = todo[start..<min(start + max(1, batchSize), todo.count)]
            // Questions with an image go through one batched generation; those without one (HallusionBench's
            // visual_input 0) are asked as text. An unreadable image gets an error record, so the answer file
            // keeps one line per question and order matching never shifts.
            var records: [(key: String, prompt: String, text: String?, error: String?)] = []
            var texts: [String] = [], images: [RGBImage] = [], slots: [Int] = []
            for (position, q) in batch {
                let key = Self.key(q, position: position + 1)
                let question = (prompt ?? q.text) + promptSuffix
                guard let name = q.image else {
                    records.append((key, question, try model.answer(question, image: nil, options: options).text ?? "", nil))
                    continue
                }
                let path = name.hasPrefix("/") ? name : (imageRoot as NSString).appendingPathComponent(name)
                do {
                    // Our own message for a missing file: Foundation's error text lists its user info in hash
                    // order, which differs from process to process, and the answers file must not.
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw EvalError(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
                    }
                    images.append(try RGBImage(data: data, name: path))
                    texts.append(question)
                    slots.append(records.count)
                    records.append((key, question, nil, nil))
                } catch {
                    summary.issues.append(EvalIssue(file: questionsFile, line: q.line, message: "\(path): \(error), not answered"))
                    records.append((key, question, nil, "\(error)"))
                }
            }
            for (slot, answer) in zip(slots, try model.answers(texts, images: images, options: options)) { records[slot].text = answer }
            var lines: [JSONValue] = []
            for r in records {
                let id: JSONValue = Int(r.key).map { .int($0) } ?? .string(r.key)
                // The exact user text asked (before the chat template), so anyone can re-ask or re-score.
                let fields: [(String, JSONValue)] = r.error.map { [("question_id", id), ("prompt", .string(r.prompt)), ("text", .null), ("error", .string($0))] }
                    ?? [("question_id", id), ("prompt", .string(r.prompt)), ("text", .string(r.text ?? ""))]
                lines.append(.object(fields))
            }
            try answers.append(lines)
            summary.answered += records.filter { $0.error == nil }.count
            finished += batch.count
            progress?(finished, mine.count)
        }
        return summary
    }
}

extension Shard {
    /// Writes the answers file `out` from the `count` shards' answer files, one line per question in the order of
    /// `questions` (the lines as the shards wrote them: the file one process writes). A question no shard has
    /// answered is an error naming its shard; nothing is written then.
    public static func mergeAnswers(into out: String, count: Int, questions: [Question]) throws {
        guard count >= 1 else { throw ShardError("--merge-shards \(count): the number of shards must be at least 1") }
        let answers = lines(of: (0..<count).map { outputPath(for: out, index: $0, count: count) }) { $0.text(["question_id"]) }
        var merged: [UInt8] = []
        var missing: [Int: Int] = [:]
        for (position, q) in questions.enumerated() {
            if let line = answers[Array(AnswerRunner.key(q, position: position + 1).utf8)] {
                merged += line + [10]
            } else {
                missing[position % count, default: 0] += 1
            }
        }
        guard missing.isEmpty else { throw unfinished(out, missing, count: count) }
        try Data(merged).write(to: URL(fileURLWithPath: out), options: .atomic)
    }
}
