import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSON

/// A client of any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, SGLang, Ollama, `realign serve`).
/// Images travel as base64 data URLs. Rate limits (429), server errors (5xx), timeouts, dropped connections and
/// unreadable replies are retried with exponential backoff and jitter; other 4xx answers fail at once. At most
/// `concurrency` requests are in flight. The API key is sent as a bearer token and scrubbed from every error.
public final class OpenAIClient: ChatBackend, @unchecked Sendable {
    public struct Options: Sendable {
        /// Seconds one attempt may take, from sending to the last byte of the reply.
        public var timeout: Double = 120
        /// Attempts after the first one, for transient failures.
        public var maxRetries: Int = 4
        /// The first backoff in seconds; each retry doubles it, up to `maxDelay`, times a random 0.5–1.
        public var baseDelay: Double = 1
        public var maxDelay: Double = 30
        /// Requests in flight at once.
        public var concurrency: Int = 4
        /// Ask the server to continue a final assistant message (`continue_final_message`, as vLLM and SGLang
        /// accept it) when a request has an assistant prefix.
        public var continueFinalMessage = true
        public init() {}
    }

    public let baseURL: URL
    public let model: String
    public let options: Options
    public let usage = TokenUsage()
    private let apiKey: String?
    private let session: URLSession
    private let gate: ConcurrencyGate
    /// Where retries are reported (never with the key).
    public var onRetry: (@Sendable (String) -> Void)?

    public var name: String { "openai:\(baseURL.absoluteString)#\(model)" }

    /// `apiKeyVariable` names the environment variable holding the key (nil: no key, for local servers).
    public init(baseURL: URL, model: String?, apiKeyVariable: String?, options: Options = Options()) throws {
        self.baseURL = baseURL
        self.model = model ?? "default"
        self.options = options
        if let variable = apiKeyVariable {
            guard let key = ProcessInfo.processInfo.environment[variable], !key.isEmpty else {
                throw BackendError("the environment variable \(variable) (named by --api-key-env) is not set")
            }
            apiKey = key
        } else {
            apiKey = nil
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = options.timeout
        configuration.timeoutIntervalForResource = options.timeout
        configuration.httpMaximumConnectionsPerHost = max(1, options.concurrency)
        session = URLSession(configuration: configuration)
        gate = ConcurrencyGate(limit: max(1, options.concurrency))
    }

    /// The request body for one chat turn.
    func body(_ request: ChatRequest) throws -> Data {
        var messages: [JSONValue] = []
        if let system = request.system { messages.append(.object([("role", .string("system")), ("content", .string(system))])) }
        var content: [JSONValue] = []
        if let image = request.image { content.append(.object([("type", .string("image_url")), ("image_url", .object([("url", .string(try Self.dataURL(image)))]))])) }
        content.append(.object([("type", .string("text")), ("text", .string(request.user))]))
        messages.append(.object([("role", .string("user")), ("content", .array(content))]))
        var fields: [(String, JSONValue)] = []
        if let prefix = request.assistantPrefix {
            messages.append(.object([("role", .string("assistant")), ("content", .string(prefix))]))
        }
        fields += [("model", .string(model)), ("messages", .array(messages)), ("max_tokens", .int(request.maxTokens)),
                   ("temperature", .double(request.temperature))]
        if !request.stop.isEmpty { fields.append(("stop", .array(request.stop.map { .string($0) }))) }
        if request.assistantPrefix != nil && options.continueFinalMessage {
            fields += [("continue_final_message", .bool(true)), ("add_generation_prompt", .bool(false))]
        }
        return Data(JSONValue.object(fields).serialized().utf8)
    }

    /// `data:image/png;base64,...` for a PNG or JPEG file.
    static func dataURL(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw BackendError("\(path): cannot read the image") }
        let bytes = [UInt8](data.prefix(8))
        let mime: String
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { mime = "image/png" }
        else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { mime = "image/jpeg" }
        else { throw BackendError("\(path): not a PNG or JPEG image") }
        return "data:\(mime);base64,\(data.base64EncodedString())"
    }

    public func complete(_ request: ChatRequest) async throws -> ChatReply {
        let body = try body(request)
        await gate.enter()
        defer { Task { await gate.leave() } }
        var attempt = 0
        while true {
            do {
                let reply = try await send(body)
                usage.add(reply)
                return reply
            } catch let error as BackendError where error.transient && attempt < options.maxRetries {
                var delay = min(options.maxDelay, options.baseDelay * pow(2, Double(attempt))) * Double.random(in: 0.5...1)
                if let retryAfter = error.retryAfter { delay = min(options.maxDelay, max(delay, retryAfter)) }
                attempt += 1
                onRetry?("\(name): \(error.message); retry \(attempt)/\(options.maxRetries) in \(String(format: "%.1f", delay)) s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            } catch let error as BackendError {
                let tries = attempt + 1
                throw BackendError(error.message + (error.transient ? " (after \(tries) attempt\(tries == 1 ? "" : "s"))" : ""), transient: error.transient)
            }
        }
    }

    /// One attempt: POST, then read the reply's text and usage.
    func send(_ body: Data) async throws -> ChatReply {
        var urlRequest = URLRequest(url: baseURL.appendingPathComponent("chat/completions"))
        urlRequest.httpMethod = "POST"
        urlRequest.httpBody = body
        urlRequest.timeoutInterval = options.timeout
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { urlRequest.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await fetch(urlRequest)
        guard let http = response as? HTTPURLResponse else { throw BackendError("\(name): no HTTP response", transient: true) }
        let status = http.statusCode
        guard status == 200 else {
            let detail = redact(Self.errorMessage(data))
            var error = BackendError("\(name): HTTP \(status)" + (detail.isEmpty ? "" : ": \(detail)"), transient: status == 429 || status == 408 || status >= 500)
            if let retry = (http.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init) { error.retryAfter = retry }
            throw error
        }
        let json: JSONValue
        do { json = try JSONValue.parse([UInt8](data)) } catch {
            throw BackendError("\(name): the reply is not JSON (\(data.count) bytes)", transient: true)
        }
        guard let message = json["choices"]?.arrayValue?.first?["message"], let text = message["content"]?.stringValue else {
            throw BackendError("\(name): the reply has no choices[0].message.content", transient: true)
        }
        return ChatReply(text: text, promptTokens: json["usage"]?["prompt_tokens"]?.intValue ?? 0,
                         completionTokens: json["usage"]?["completion_tokens"]?.intValue ?? 0)
    }

    /// The request, bounded by the timeout whether or not the transport enforces it.
    private func fetch(_ request: URLRequest) async throws -> (Data, URLResponse) {
        let session = self.session, timeout = options.timeout, name = self.name
        do {
            return try await withThrowingTaskGroup(of: (Data, URLResponse)?.self) { group in
                group.addTask { try await session.data(for: request) }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    throw BackendError("\(name): no reply within \(timeout) s", transient: true)
                }
                return result
            }
        } catch let e as BackendError {
            throw e
        } catch {
            throw BackendError("\(name): \(redact(error.localizedDescription))", transient: true)
        }
    }

    /// The server's own error text, from `{"error": {"message": ...}}` or the first bytes of the body.
    static func errorMessage(_ data: Data) -> String {
        if let json = try? JSONValue.parse([UInt8](data)) {
            if let m = json["error"]?["message"]?.stringValue { return String(m.prefix(300)) }
            if let m = json["error"]?.stringValue { return String(m.prefix(300)) }
        }
        let text = String(decoding: data.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.unicodeScalars.allSatisfy { $0.value >= 32 || $0 == "\n" } ? text : ""
    }

    func redact(_ text: String) -> String {
        guard let apiKey, !apiKey.isEmpty else { return text }
        return text.replacingOccurrences(of: apiKey, with: "***")
    }
}

/// A counting semaphore for async code.
actor ConcurrencyGate {
    private let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    func enter() async {
        if running < limit { running += 1; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
    }
}
