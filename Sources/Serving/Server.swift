import Foundation
import Hummingbird
import Images
import JSON
import Models
import Backends

/// A local VLM behind the OpenAI chat-completions API (`POST /v1/chat/completions`, `GET /v1/models`), so any
/// OpenAI-compatible client — ours and the official `openai` ones included — can use it. One conversation turn
/// per request: an optional system message, one user message (text, and at most one image as a base64 data URL),
/// and optionally a final assistant message to continue (`continue_final_message`, as vLLM accepts it). Answers
/// stream as server-sent events when asked (`stream`, `stream_options.include_usage`) and carry `logprobs` /
/// `top_logprobs` when asked; a field this server does not honour (tools, JSON response formats, penalties,
/// logit bias, ...) is refused with a 400 naming it, never ignored. Generation runs one request at a time on the
/// torch worker; requests wait their turn.
public struct ChatServer: Sendable {
    public var model: VisionLanguageModel
    /// The id `/v1/models` lists; requests naming another model get a 404.
    public var modelName: String
    /// When set, requests must carry `Authorization: Bearer <key>`.
    public var apiKey: String?
    public var maxBodyBytes = 32 << 20
    public var maxTokensLimit = 4096
    /// Request images with more pixels are refused (413) from their header, before any pixel memory exists; this
    /// bounds the decoded bytes of one request (3 per pixel, plus the decoder's row buffer).
    public var maxImagePixels = 40_000_000
    /// Request images decoding at once; further requests wait their turn, so memory stays bounded under load.
    public var maxConcurrentDecodes = 2
    public let worker = TorchWorker()

    public init(model: VisionLanguageModel, modelName: String, apiKey: String?) {
        self.model = model
        self.modelName = modelName
        self.apiKey = apiKey
    }

    /// A client error answered with OpenAI's error body.
    struct APIError: Error {
        var status: HTTPResponse.Status
        var message: String
        var type = "invalid_request_error"
    }

    /// A parsed chat request.
    struct Turn {
        var system: String?
        var user: String
        var image: RGBImage?
        /// The request's encoded image, decoded once the request has a decoding slot.
        var imageData: Data?
        var imageName = ""
        var assistantPrefix: String?
        var options: GenerationOptions
        var stream = false
        /// `stream_options.include_usage`: a last chunk with the token counts.
        var includeUsage = false
    }

    /// The request fields this server reads; any other is refused, so nothing a client asks for is silently
    /// dropped. Some are accepted only at their neutral value (checked in `parse`).
    static let knownFields: Set<String> = [
        "model", "messages", "stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "seed", "stop", "logprobs", "top_logprobs", "response_format", "continue_final_message", "add_generation_prompt",
        "user", "metadata", "store", "service_tier", "frequency_penalty", "presence_penalty", "logit_bias", "tools",
        "tool_choice", "parallel_tool_calls", "modalities",
    ]

    public func run(host: String, port: Int, onListening: @escaping @Sendable (Int) -> Void) async throws {
        let router = Router()
        let gate = DecodeGate(limit: max(1, maxConcurrentDecodes))
        router.get("/v1/models") { request, _ -> Response in
            if let denied = authorize(request) { return denied }
            return json(.ok, .object([("object", .string("list")), ("data", .array([.object([
                ("id", .string(modelName)), ("object", .string("model")), ("created", .int(0)), ("owned_by", .string("realign")),
            ])]))]))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            if let denied = authorize(request) { return denied }
            do {
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: maxBodyBytes) } catch {
                    throw APIError(status: .contentTooLarge, message: "the request body is over \(maxBodyBytes) bytes")
                }
                let parsed: JSONValue
                do { parsed = try JSONValue.parse(Array(buffer.readableBytesView)) } catch {
                    throw APIError(status: .badRequest, message: "the body is not JSON: \(error)")
                }
                var parsedTurn = try parse(parsed)
                if let data = parsedTurn.imageData {
                    await gate.enter()
                    let decoded = Result { try decodeImage(data, name: parsedTurn.imageName) }
                    await gate.leave()
                    parsedTurn.image = try decoded.get()
                    parsedTurn.imageData = nil
                }
                let turn = parsedTurn
                if turn.stream { return try stream(turn) }
                let model = self.model
                let result = try await worker.run {
                    try model.complete(user: turn.system.map { "\($0)\n\n\(turn.user)" } ?? turn.user, image: turn.image,
                                       assistantPrefix: turn.assistantPrefix, options: turn.options)
                }
                let finish = result.sequence.reason == .length ? "length" : "stop"
                let logprobs = turn.options.logprobs == nil ? JSONValue.null : LogprobJSON.content(result.sequence.logprobs, tokenizer: model.tokenizer)
                return json(.ok, .object([
                    ("id", .string("chatcmpl-\(UUID().uuidString.lowercased())")), ("object", .string("chat.completion")),
                    ("created", .int(Int(Date().timeIntervalSince1970))), ("model", .string(modelName)),
                    ("choices", .array([.object([
                        ("index", .int(0)),
                        ("message", .object([("role", .string("assistant")), ("content", .string(result.text)), ("refusal", .null)])),
                        ("logprobs", logprobs),
                        ("finish_reason", .string(finish)),
                    ])])),
                    ("usage", usage(prompt: result.promptTokens, completion: result.sequence.tokens.count)),
                ]))
            } catch let e as APIError {
                return errorResponse(e)
            } catch {
                return errorResponse(APIError(status: .internalServerError, message: "generation failed: \(error)", type: "server_error"))
            }
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "realign"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    func usage(prompt: Int, completion: Int) -> JSONValue {
        .object([("prompt_tokens", .int(prompt)), ("completion_tokens", .int(completion)), ("total_tokens", .int(prompt + completion))])
    }

    /// The answer as server-sent events in OpenAI's chunk format: a first chunk with the role, content deltas
    /// (with their tokens' logprobs when asked), a chunk with the finish reason, the usage chunk when
    /// `stream_options.include_usage` asks for it, then `data: [DONE]`. An error during generation is sent as
    /// an `error` event before `[DONE]` (the status line has gone out by then).
    func stream(_ turn: Turn) throws -> Response {
        let model = self.model, modelName = self.modelName
        let id = "chatcmpl-\(UUID().uuidString.lowercased())", created = Int(Date().timeIntervalSince1970)
        let includeUsage = turn.includeUsage, wantsLogprobs = turn.options.logprobs != nil
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        func event(_ value: JSONValue) { continuation.yield(ByteBuffer(string: "data: \(value.serialized())\n\n")) }
        func chunk(_ delta: [(String, JSONValue)], logprobs: JSONValue = .null, finish: JSONValue = .null) -> JSONValue {
            var fields: [(String, JSONValue)] = [
                ("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .int(created)), ("model", .string(modelName)),
                ("choices", .array([.object([("index", .int(0)), ("delta", .object(delta)), ("logprobs", logprobs), ("finish_reason", finish)])])),
            ]
            if includeUsage { fields.append(("usage", .null)) }
            return .object(fields)
        }
        let prefix = try model.prefixTokens(turn.assistantPrefix)
        let streamer = DeltaStreamer(model: model, prefix: prefix, stopStrings: turn.options.stopStrings) { text, logprobs in
            event(chunk([("content", .string(text))], logprobs: wantsLogprobs ? LogprobJSON.content(logprobs, tokenizer: model.tokenizer) : .null))
        }
        event(chunk([("role", .string("assistant")), ("content", .string("")), ("refusal", .null)]))
        let worker = self.worker
        Task {
            do {
                let result = try await worker.run {
                    try model.complete(user: turn.system.map { "\($0)\n\n\(turn.user)" } ?? turn.user, image: turn.image,
                                       assistantPrefix: turn.assistantPrefix, options: turn.options, onToken: { streamer.add($0, $1) })
                }
                streamer.finish(result.text)
                event(chunk([], finish: .string(result.sequence.reason == .length ? "length" : "stop")))
                if includeUsage {
                    event(.object([("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .int(created)),
                                   ("model", .string(modelName)), ("choices", .array([])),
                                   ("usage", usage(prompt: result.promptTokens, completion: result.sequence.tokens.count))]))
                }
            } catch {
                event(.object([("error", .object([("message", .string("generation failed: \(error)")), ("type", .string("server_error")),
                                                   ("code", .int(500))]))]))
            }
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody(asyncSequence: events))
    }

    func authorize(_ request: Request) -> Response? {
        guard let apiKey else { return nil }
        if request.headers[.authorization] == "Bearer \(apiKey)" { return nil }
        return errorResponse(APIError(status: .unauthorized, message: "missing or wrong bearer key", type: "authentication_error"))
    }

    /// The one-turn conversation and its sampling options, or a 4xx naming what is wrong.
    func parse(_ body: JSONValue) throws -> Turn {
        func bad(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
        guard body.objectValue != nil else { throw bad("the body must be a JSON object") }
        if let name = body["model"]?.stringValue, name != modelName, name != "default" {
            throw APIError(status: .notFound, message: "model '\(name)' is not served here (this server has '\(modelName)')", type: "not_found_error")
        }
        let unknown = (body.objectValue ?? []).map(\.0).filter { !Self.knownFields.contains($0) }
        if !unknown.isEmpty {
            throw bad("\(unknown.map { "'\($0)'" }.joined(separator: ", ")) not supported by this server (it reads \(Self.knownFields.sorted().joined(separator: ", ")))")
        }
        try refuseUnsupported(body)
        if let n = body["n"]?.intValue, n != 1 { throw bad("'n' must be 1") }
        guard let messages = body["messages"]?.arrayValue, !messages.isEmpty else { throw bad("'messages' must be a non-empty array") }
        var turn = Turn(system: nil, user: "", image: nil, assistantPrefix: nil, options: GenerationOptions())
        if let stream = body["stream"], !stream.isNull {
            guard let on = stream.boolValue else { throw bad("'stream' must be true or false") }
            turn.stream = on
        }
        if let options = body["stream_options"], !options.isNull {
            guard turn.stream else { throw bad("'stream_options' is only allowed with 'stream': true") }
            guard let fields = options.objectValue, fields.allSatisfy({ ["include_usage", "include_obfuscation"].contains($0.0) }) else {
                throw bad("'stream_options' supports include_usage")
            }
            turn.includeUsage = options["include_usage"]?.boolValue ?? false
        }
        if let logprobs = body["logprobs"], !logprobs.isNull {
            guard let on = logprobs.boolValue else { throw bad("'logprobs' must be true or false") }
            if on { turn.options.logprobs = 0 }
        }
        if let top = body["top_logprobs"], !top.isNull {
            guard let k = top.intValue, (0...20).contains(k) else { throw bad("'top_logprobs' must be an integer in 0...20") }
            guard turn.options.logprobs != nil else { throw bad("'top_logprobs' needs 'logprobs': true") }
            turn.options.logprobs = k
        }
        var users = 0
        for (i, message) in messages.enumerated() {
            guard let role = message["role"]?.stringValue else { throw bad("messages[\(i)].role is missing") }
            let (text, images) = try content(message["content"], at: i)
            switch role {
            case "system", "developer":
                guard users == 0 else { throw bad("messages[\(i)]: a system message must come first") }
                turn.system = [turn.system, text].compactMap { $0 }.joined(separator: "\n")
            case "user":
                users += 1
                guard users == 1 else { throw bad("only one user turn per request is supported (messages[\(i)])") }
                guard images.count <= 1 else { throw bad("messages[\(i)]: at most one image per request") }
                turn.user = text
                if let data = images.first {
                    turn.imageData = data
                    turn.imageName = "messages[\(i)] image"
                }
            case "assistant":
                guard users == 1, i == messages.count - 1 else { throw bad("messages[\(i)]: an assistant message may only end the conversation, to be continued") }
                turn.assistantPrefix = text
            default:
                throw bad("messages[\(i)].role '\(role)' is not system, user or assistant")
            }
        }
        guard users == 1 else { throw bad("the conversation needs one user message") }
        if turn.assistantPrefix != nil, body["continue_final_message"]?.boolValue == false {
            throw bad("a final assistant message needs 'continue_final_message': true")
        }
        let maxTokens = body["max_completion_tokens"]?.intValue ?? body["max_tokens"]?.intValue ?? 256
        guard maxTokens >= 1, maxTokens <= maxTokensLimit else { throw bad("'max_tokens' must be 1...\(maxTokensLimit)") }
        turn.options.maxNewTokens = maxTokens
        if let t = body["temperature"], !t.isNull {
            guard let v = t.doubleValue, v >= 0, v <= 2 else { throw bad("'temperature' must be a number in 0...2") }
            turn.options.temperature = v
        }
        if let p = body["top_p"], !p.isNull {
            guard let v = p.doubleValue, v > 0, v <= 1 else { throw bad("'top_p' must be a number in (0, 1]") }
            turn.options.topP = v
        }
        if let seed = body["seed"]?.intValue { turn.options.seed = UInt64(bitPattern: Int64(seed)) }
        if let stop = body["stop"], !stop.isNull {
            if let s = stop.stringValue { turn.options.stopStrings = [s] }
            else if let list = stop.arrayValue, list.count <= 4, let strings = Optional(list.compactMap(\.stringValue)), strings.count == list.count {
                turn.options.stopStrings = strings
            } else { throw bad("'stop' must be a string or up to 4 strings") }
        }
        return turn
    }

    /// Fields this server knows but does not implement beyond their neutral value: anything else is a 400
    /// naming the field (a client asking for JSON output or tools must not get plain text as if it had them).
    func refuseUnsupported(_ body: JSONValue) throws {
        func bad(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
        if let format = body["response_format"], !format.isNull, format["type"]?.stringValue != "text" {
            throw bad("'response_format' \(format["type"]?.stringValue.map { "'\($0)'" } ?? "") is not supported: this server generates free text (omit it or use {\"type\": \"text\"})")
        }
        for key in ["frequency_penalty", "presence_penalty"] {
            if let v = body[key], !v.isNull, v.doubleValue != 0 { throw bad("'\(key)' is not supported (only 0)") }
        }
        if let bias = body["logit_bias"], !bias.isNull, bias.objectValue?.isEmpty != true { throw bad("'logit_bias' is not supported") }
        if let tools = body["tools"], !tools.isNull, tools.arrayValue?.isEmpty != true { throw bad("'tools' are not supported: this server does not call functions") }
        if let choice = body["tool_choice"], !choice.isNull, choice.stringValue != "none" { throw bad("'tool_choice' is not supported (only \"none\")") }
        if let modalities = body["modalities"], !modalities.isNull, modalities.arrayValue?.allSatisfy({ $0.stringValue == "text" }) != true {
            throw bad("'modalities': this server answers in text only")
        }
        if let add = body["add_generation_prompt"], !add.isNull, add.boolValue != (body["continue_final_message"]?.boolValue != true) {
            throw bad("'add_generation_prompt' must be the opposite of 'continue_final_message'")
        }
    }

    /// A request image, or 413 (over the pixel limit, refused from its header) / 400 (not a valid JPEG or PNG).
    func decodeImage(_ data: Data, name: String) throws -> RGBImage {
        do {
            return try RGBImage(data: data, name: name, options: ImageLoadOptions(maxPixels: maxImagePixels))
        } catch let e as ImageError {
            throw APIError(status: e.kind == .tooLarge ? .contentTooLarge : .badRequest, message: "\(name): \(e.message)")
        }
    }

    /// A message's text and its images (decoded data URLs).
    func content(_ value: JSONValue?, at i: Int) throws -> (String, [Data]) {
        func bad(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
        if let s = value?.stringValue { return (s, []) }
        guard let parts = value?.arrayValue else { throw bad("messages[\(i)].content must be a string or an array of parts") }
        var texts: [String] = []
        var images: [Data] = []
        for (j, part) in parts.enumerated() {
            switch part["type"]?.stringValue {
            case "text":
                guard let t = part["text"]?.stringValue else { throw bad("messages[\(i)].content[\(j)].text is missing") }
                texts.append(t)
            case "image_url":
                guard let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue else {
                    throw bad("messages[\(i)].content[\(j)].image_url.url is missing")
                }
                guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
                    throw bad("messages[\(i)].content[\(j)]: images must be base64 data URLs (this server fetches nothing)")
                }
                guard let data = Data(base64Encoded: String(url[url.index(after: comma)...])) else {
                    throw bad("messages[\(i)].content[\(j)]: the image's base64 does not decode")
                }
                images.append(data)
            default:
                throw bad("messages[\(i)].content[\(j)].type must be 'text' or 'image_url'")
            }
        }
        return (texts.joined(separator: "\n"), images)
    }

    func errorResponse(_ e: APIError) -> Response {
        json(e.status, .object([("error", .object([("message", .string(e.message)), ("type", .string(e.type)),
                                                   ("code", .int(Int(e.status.code)))]))]))
    }

    func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
    }
}

/// Admits a bounded number of image decodes at once; the others wait, in arrival order.
actor DecodeGate {
    let limit: Int
    var running = 0
    var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    func enter() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the slot to the next waiting request, or frees it.
    func leave() {
        if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
    }
}
