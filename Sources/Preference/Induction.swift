import Backends
import Foundation

/// The hallucination-prone VLM filling a masked answer while it looks at another image.
public struct Inducer: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Each mask in turn: the model continues the answer written so far (an assistant prefill) and its words
        /// up to the next literal piece fill the mask. Works with any model, however weak, and with servers that
        /// accept `continue_final_message` (vLLM, SGLang, `realign serve`).
        case `continue`
        /// One request asks for the whole answer with the masks filled; the fills are read back by aligning the
        /// reply with the masked answer. For APIs without prefill (OpenAI's own).
        case instruct
    }

    public let backend: any ChatBackend
    public let mode: Mode
    /// Tokens one mask may take in `continue` mode.
    public var tokensPerMask = 8

    public init(backend: any ChatBackend, mode: Mode = .continue) {
        self.backend = backend
        self.mode = mode
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    /// The masked answer with its masks filled, as the model sees `image` (a retrieved one).
    public func fill(prompt: String, masked: String, image: String) async throws -> String {
        let template = MaskedText(masked)
        switch mode {
        case .continue:
            var text = template.pieces[0]
            for i in 1..<template.pieces.count {
                let next = template.pieces[i]
                // Stop at the next literal word, so a fill does not run over what follows the mask.
                let nextWord = next.split(whereSeparator: { $0.isWhitespace }).first.map(String.init)
                var stops = ["\n"]
                // After whitespace the next word starts a word: stop at " word", so that "on" does not end "hexagon".
                if let nextWord, !nextWord.isEmpty { stops.append(next.first?.isWhitespace == true ? " " + nextWord : nextWord) }
                let reply = try await backend.complete(ChatRequest(user: prompt, image: image, assistantPrefix: text,
                                                                  maxTokens: tokensPerMask, temperature: 0, stop: stops))
                var fill = Self.cleanFill(reply.text)
                // Masks only whitespace apart (a rule masker's "[MASK] [MASK] [MASK]" for "large red circle") each
                // take one word: with no literal word to stop at, a fill would run over the masks after it.
                if nextWord == nil && i < template.pieces.count - 1 {
                    fill = fill.split(whereSeparator: { $0.isWhitespace }).first.map(String.init) ?? ""
                }
                text += fill + next
            }
            return text
        case .instruct:
            let request = ChatRequest(
                system: "Fill each \(maskToken) in the answer with what you see in the image. Keep all other text exactly as it is. Reply with the completed answer only.",
                user: "Question: \(prompt)\nAnswer with masks: \(masked)\n\nCompleted answer:", image: image,
                maxTokens: max(64, masked.count), temperature: 0)
            let reply = try await backend.complete(request).text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let fills = template.fills(matching: reply) else {
                throw Failure(message: "the completion does not keep the text outside the masks")
            }
            return template.filled(fills.map { Self.cleanFill($0) })
        }
    }

    /// A fill as a span: its first line, trimmed (the masked answer keeps the spaces around each mask).
    static func cleanFill(_ raw: String) -> String {
        var fill = raw.replacingOccurrences(of: maskToken, with: "")
        if let end = fill.firstIndex(where: \.isNewline) { fill = String(fill[..<end]) }
        return fill.trimmingCharacters(in: .whitespaces)
    }
}
