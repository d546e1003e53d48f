import Foundation
import JSON
import Models
import Tokenizers

/// OpenAI's `logprobs` objects: `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`.
enum LogprobJSON {
    static func entry(_ id: Int, _ logprob: Double, tokenizer: Tokenizer) -> [(String, JSONValue)] {
        let text = tokenizer.decode([id], skipSpecialTokens: false)
        // A token that is part of a multi-byte character decodes to U+FFFD: its own bytes are not known here.
        let bytes: JSONValue = text.unicodeScalars.contains("\u{FFFD}") ? .null : .array(text.utf8.map { .int(Int($0)) })
        return [("token", .string(text)), ("logprob", .double(logprob)), ("bytes", bytes)]
    }

    static func content(_ logprobs: [TokenLogprob], tokenizer: Tokenizer) -> JSONValue {
        .object([("content", .array(logprobs.map { lp in
            .object(entry(lp.id, lp.logprob, tokenizer: tokenizer)
                + [("top_logprobs", .array(lp.top.map { .object(entry($0.id, $0.logprob, tokenizer: tokenizer)) }))])
        })), ("refusal", .null)])
    }
}

/// Turns a completion's tokens into the text deltas of a stream: text is sent once it is final — not while the
/// last token ends inside a multi-byte character, and not the last characters that could still begin a stop
/// string — with the log-probabilities of the tokens that made it. `finish` sends the rest, cut as the whole
/// answer is.
final class DeltaStreamer: @unchecked Sendable {
    let model: VisionLanguageModel
    let prefix: [Int]
    let holdBack: Int
    let stopStrings: [[Unicode.Scalar]]
    let send: (String, [TokenLogprob]) -> Void
    private var tokens: [Int] = []
    private var pending: [TokenLogprob] = []
    private var sent: [Unicode.Scalar] = []

    init(model: VisionLanguageModel, prefix: [Int], stopStrings: [String], send: @escaping (String, [TokenLogprob]) -> Void) {
        self.model = model
        self.prefix = prefix
        self.stopStrings = stopStrings.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
        self.holdBack = max(0, (self.stopStrings.map(\.count).max() ?? 0) - 1)
        self.send = send
    }

    func add(_ token: Int, _ logprob: TokenLogprob?) {
        tokens.append(token)
        if let logprob { pending.append(logprob) }
        let text = Array(model.continuationText(prefix: prefix, tokens: tokens).unicodeScalars)
        guard text.last != "\u{FFFD}" else { return }
        // A completed stop string ends the answer before it; a partial one at the end may still complete.
        let stop = stopStrings.compactMap { Self.firstIndex(of: $0, in: text) }.min()
        emit(upTo: stop.map { Array(text[..<$0]) } ?? Array(text.dropLast(holdBack)))
    }

    static func firstIndex(of needle: [Unicode.Scalar], in text: [Unicode.Scalar]) -> Int? {
        guard text.count >= needle.count else { return nil }
        return (0...(text.count - needle.count)).first { text[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// Sends what the final answer adds to what was sent, with the remaining log-probabilities.
    func finish(_ answer: String) {
        emit(upTo: Array(answer.unicodeScalars), force: true)
    }

    private func emit(upTo text: [Unicode.Scalar], force: Bool = false) {
        guard text.count >= sent.count, Array(text.prefix(sent.count)) == sent else {
            if force && !pending.isEmpty { send("", pending); pending = [] }
            return
        }
        let delta = text.dropFirst(sent.count)
        guard !delta.isEmpty || (force && !pending.isEmpty) else { return }
        sent = text
        send(String(String.UnicodeScalarView(delta)), pending)
        pending = []
    }
}
