import Backends
import Common
import Foundation
import JSON

/// HallusionBench's official GPT judge: a chat model reads the question, the reference answer and the prediction
/// and says correct, incorrect or unclear (prompt as tianyi-lab/HallusionBench's evaluate_by_chatgpt). Verdicts
/// are cached in a JSONL file, appended one at a time, so an interrupted evaluation asks nothing twice.
public final class AnswerJudge: @unchecked Sendable {
    public let backend: any ChatBackend
    private let store: JSONLAppender?
    private let lock = NSLock()
    private var cache: [String: String] = [:]

    /// `cachePath`: the verdicts of earlier runs (a line torn by a kill is cut off and asked again).
    public init(backend: any ChatBackend, cachePath: String?) throws {
        self.backend = backend
        store = try cachePath.map { try JSONLAppender(path: $0) }
        for json in store?.existing ?? [] {
            if let key = json?["key"]?.stringValue, let v = json?["verdict"]?.stringValue { cache[key] = v }
        }
    }

    static func prompt(question: String, reference: String, prediction: String) -> String {
        "Imagine you are an intelligent teacher. Thoroughly read the question, reference answer and the prediction answer to ensure a clear understanding of the information provided. Assess the correctness of the predictions. If the prediction answer does not conflict with the reference answer, please generate \u{201C}correct\u{201D}. If the prediction answer conflict with the reference answer, please generate \u{201C}incorrect\u{201D}. If the prediction answer is unclear about the answer, please generate \"unclear\". \n\n Question:"
            + question + "\nReference answer: " + reference + "\nPrediction answer:" + prediction + "\nOutput:"
    }

    /// "incorrect" is looked for first, since it contains "correct" (as the official script does).
    static func parse(_ output: String) -> String {
        let o = output.lowercased()
        return o.contains("incorrect") ? "incorrect" : o.contains("correct") ? "correct" : "unclear"
    }

    static func key(_ question: String, _ reference: String, _ prediction: String) -> String {
        [question, reference, prediction].joined(separator: "\u{1F}")
    }

    static func meaning(_ verdict: String) -> Bool? { verdict == "correct" ? true : verdict == "incorrect" ? false : nil }

    /// A verdict already given (in this run or a cached one): true correct, false incorrect, nil unclear or not asked.
    public func known(question: String, reference: String, prediction: String) -> Bool? {
        lock.withLock { cache[Self.key(question, reference, prediction)] }.flatMap(Self.meaning)
    }

    /// true: correct, false: incorrect, nil: unclear.
    public func verdict(question: String, reference: String, prediction: String) async throws -> Bool? {
        let key = Self.key(question, reference, prediction)
        let cached = lock.withLock { cache[key] }
        let v: String
        if let cached {
            v = cached
        } else {
            let reply = try await backend.complete(ChatRequest(user: Self.prompt(question: question, reference: reference, prediction: prediction), maxTokens: 8))
            v = Self.parse(reply.text)
            try lock.withLock {
                cache[key] = v
                try store?.append(.object([("key", .string(key)), ("verdict", .string(v))]))
            }
        }
        return Self.meaning(v)
    }

    /// Asks for every item not yet judged (the backend bounds its own concurrency); returns the failures, whose
    /// items stay unjudged (unclear) and are asked again by a later run.
    public func judgeAll(_ items: [(question: String, reference: String, prediction: String)]) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            for item in items {
                group.addTask {
                    do { _ = try await self.verdict(question: item.question, reference: item.reference, prediction: item.prediction); return nil }
                    catch { return "\(error)" }
                }
            }
            var failures: [String] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
    }
}
