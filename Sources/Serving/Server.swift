import Foundation
import Hummingbird
import Images
import JSON
import Models
import Backends

/// A local VLM behind the OpenAI chat-completions API (`POST /v1/chat/completions`, `GET /v1/models`), so any
/// OpenAI-compatible client — ours included — can use it. One conversation turn per request: an optional system
/// message, one user message (text, and at most one image as a base64 data URL), and optionally a final
/// assistant message to continue (`continue_final_message`, as vLLM accepts it). Generation runs one request at
/// a time on the torch worker; requests wait their turn.
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
    }

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
                let model = self.model
                let result = try await worker.run {
                    try model.complete(user: turn.system.map { "\($0)\n\n\(turn.user)" } ?? turn.user, image: turn.image,
                                       assistantPrefix: turn.assistantPrefix, options: turn.options)
                }
                let finish = result.sequence.reason == .length ? "length" : "stop"
                let completion = result.sequence.tokens.count
                return json(.ok, .object([
                    ("id", .string("chatcmpl-\(UUID().uuidString.lowercased())")), ("object", .string("chat.completion")),
                    ("created", .int(Int(Date().timeIntervalSince1970))), ("model", .string(modelName)),
                    ("choices", .array([.object([
                        ("index", .int(0)),
                        ("message", .object([("role", .string("assistant")), ("content", .string(result.text))])),
                        ("finish_reason", .string(finish)),
                    ])])),
                    ("usage", .object([("prompt_tokens", .int(result.promptTokens)), ("completion_tokens", .int(completion)),
                                       ("total_tokens", .int(result.promptTokens + completion))])),
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
        if body["stream"]?.boolValue == true { throw bad("'stream': true is not supported; ask without streaming") }
        if let n = body["n"]?.intValue, n != 1 { throw bad("'n' must be 1") }
        guard let messages = body["messages"]?.arrayValue, !messages.isEmpty else { throw bad("'messages' must be a non-empty array") }
        var turn = Turn(system: nil, user: "", image: nil, assistantPrefix: nil, options: GenerationOptions())
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
