import Foundation

/// One chat turn for a model backend: optional system text, the user's text with at most one image, and
/// optionally the start of the assistant's answer that the model must continue (prefill).
public struct ChatRequest: Sendable, Equatable {
    public var system: String?
    public var user: String
    /// An image file (JPEG or PNG) shown with the user's text.
    public var image: String?
    /// When set, the reply continues this assistant text instead of starting a new answer.
    public var assistantPrefix: String?
    public var maxTokens: Int
    public var temperature: Double
    public var stop: [String]

    public init(system: String? = nil, user: String, image: String? = nil, assistantPrefix: String? = nil,
                maxTokens: Int = 256, temperature: Double = 0, stop: [String] = []) {
        self.system = system
        self.user = user
        self.image = image
        self.assistantPrefix = assistantPrefix
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.stop = stop
    }
}

public struct ChatReply: Sendable, Equatable {
    public var text: String
    public var promptTokens: Int
    public var completionTokens: Int

    public init(text: String, promptTokens: Int = 0, completionTokens: Int = 0) {
        self.text = text
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

/// Text (or image + text) in, text out: a local Swift model or an OpenAI-compatible endpoint.
public protocol ChatBackend: Sendable {
    /// A short name for logs and summaries (never contains a secret).
    var name: String { get }
    /// Token usage so far.
    var usage: TokenUsage { get }
    func complete(_ request: ChatRequest) async throws -> ChatReply
}

/// Token counts, safe to update from concurrent requests.
public final class TokenUsage: @unchecked Sendable {
    private let lock = NSLock()
    private var counts = (requests: 0, prompt: 0, completion: 0)

    public init() {}

    public init(requests: Int, promptTokens: Int, completionTokens: Int) {
        counts = (requests, promptTokens, completionTokens)
    }

    public func add(_ reply: ChatReply) {
        lock.withLock {
            counts.requests += 1
            counts.prompt += reply.promptTokens
            counts.completion += reply.completionTokens
        }
    }

    public var requests: Int { lock.withLock { counts.requests } }
    public var promptTokens: Int { lock.withLock { counts.prompt } }
    public var completionTokens: Int { lock.withLock { counts.completion } }
}

/// A failure of a backend, with a message that never carries the API key.
public struct BackendError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Whether trying again may help (rate limits, server errors, timeouts, unreadable replies).
    public let transient: Bool
    /// Seconds a 429/503 reply asked the client to wait.
    public var retryAfter: Double?
    public init(_ message: String, transient: Bool = false) {
        self.message = message
        self.transient = transient
    }
    public var description: String { message }
}

/// Where a backend lives, as written on the command line: `local:DIR` or `openai:BASE_URL[#model]`.
public enum BackendSpec: Equatable, Sendable, CustomStringConvertible {
    case local(folder: String)
    case openai(baseURL: URL, model: String?)

    public init(parsing text: String) throws {
        if text.hasPrefix("local:") {
            let folder = String(text.dropFirst(6))
            guard !folder.isEmpty else { throw BackendError("'\(text)': local: needs a model folder, e.g. local:models/llava") }
            self = .local(folder: folder)
        } else if text.hasPrefix("openai:") {
            var rest = String(text.dropFirst(7))
            var model: String?
            if let hash = rest.lastIndex(of: "#") {
                model = String(rest[rest.index(after: hash)...])
                rest = String(rest[..<hash])
                if model?.isEmpty == true { model = nil }
            }
            guard let url = URL(string: rest), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw BackendError("'\(text)': openai: needs an http(s) base URL, e.g. openai:https://api.openai.com/v1#gpt-4o-mini")
            }
            self = .openai(baseURL: url, model: model)
        } else {
            throw BackendError("'\(text)': a backend is local:DIR or openai:BASE_URL[#model]")
        }
    }

    public var description: String {
        switch self {
        case .local(let folder): return "local:\(folder)"
        case .openai(let url, let model): return "openai:\(url.absoluteString)" + (model.map { "#\($0)" } ?? "")
        }
    }
}
