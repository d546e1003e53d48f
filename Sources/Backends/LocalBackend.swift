import Foundation
import Images
import Models

/// Runs tensor work one job at a time on its own thread. libtorch already spreads one job over every core, and
/// a single queue keeps local results independent of how many records are in flight.
public final class TorchWorker: @unchecked Sendable {
    private let queue = DispatchQueue(label: "realign.torch")

    public init() {}

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A backend over our own Swift VLM (greedy by default, as the papers use it).
public final class LocalBackend: ChatBackend, @unchecked Sendable {
    public let model: VisionLanguageModel
    public let worker: TorchWorker
    public let usage = TokenUsage()
    public var name: String { "local:\(model.folder)" }

    public init(model: VisionLanguageModel, worker: TorchWorker) {
        self.model = model
        self.worker = worker
    }

    public func complete(_ request: ChatRequest) async throws -> ChatReply {
        let image = try request.image.map { path -> RGBImage in
            do { return try RGBImage(data: try Data(contentsOf: URL(fileURLWithPath: path)), name: path) }
            catch let e as ImageError { throw BackendError(e.message) }
            catch { throw BackendError("\(path): cannot read the image (\(error.localizedDescription))") }
        }
        // The chat formats have no system turn of their own: the system text leads the user's.
        let user = request.system.map { "\($0)\n\n\(request.user)" } ?? request.user
        let options = GenerationOptions(maxNewTokens: request.maxTokens, temperature: request.temperature, stopStrings: request.stop)
        let model = self.model
        let result = try await worker.run {
            try model.complete(user: user, image: image, assistantPrefix: request.assistantPrefix, options: options)
        }
        let reply = ChatReply(text: result.text, promptTokens: result.promptTokens, completionTokens: result.sequence.tokens.count)
        usage.add(reply)
        return reply
    }
}
