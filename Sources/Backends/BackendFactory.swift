import Foundation
import Models

/// Backends from their command-line names; `local:` folders load once and share the torch worker.
public final class BackendFactory: @unchecked Sendable {
    let vlm: VisionLanguageModel
    let worker: TorchWorker
    let apiKeyEnv: String?
    let timeout: Double, retries: Int, concurrency: Int
    /// Told each retried API request (the message never holds the key).
    public var onRetry: @Sendable (String) -> Void = { message in FileHandle.standardError.write(Data("\nrealign: \(message)\n".utf8)) }
    private var made: [String: any ChatBackend] = [:]
    private var order: [String] = []

    public init(vlm: VisionLanguageModel, worker: TorchWorker, apiKeyEnv: String?, timeout: Double, retries: Int, concurrency: Int) {
        self.vlm = vlm
        self.worker = worker
        self.apiKeyEnv = apiKeyEnv
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
    }

    public func backend(_ text: String) throws -> any ChatBackend {
        let spec = try BackendSpec(parsing: text)
        if let b = made[spec.description] { return b }
        let backend: any ChatBackend
        switch spec {
        case .local(let folder):
            let same = URL(fileURLWithPath: folder).standardizedFileURL.path == URL(fileURLWithPath: vlm.folder).standardizedFileURL.path
            // A second local model (say, a larger "advanced" VLM) shares the worker: one torch job at a time.
            backend = LocalBackend(model: same ? vlm : try VisionLanguageModel(folder: folder, bf16LinearWeights: vlm.model.hasBF16LinearWeights), worker: worker)
        case .openai(let url, let model):
            backend = try Self.client(url, model, apiKeyEnv: apiKeyEnv, timeout: timeout, retries: retries, concurrency: concurrency, onRetry: onRetry)
        }
        made[spec.description] = backend
        order.append(spec.description)
        return backend
    }

    public func usages() -> [(String, TokenUsage)] { order.compactMap { key in made[key].map { ($0.name, $0.usage) } } }
}

extension BackendFactory {
    /// A backend on its own (a judge): `local:DIR` loads the folder, `openai:` makes a client.
    public static func standalone(_ text: String, apiKeyEnv: String?, concurrency: Int, timeout: Double = 120, retries: Int = 4) throws -> any ChatBackend {
        switch try BackendSpec(parsing: text) {
        case .local(let folder):
            return LocalBackend(model: try VisionLanguageModel(folder: folder), worker: TorchWorker())
        case .openai(let url, let model):
            return try client(url, model, apiKeyEnv: apiKeyEnv, timeout: timeout, retries: retries, concurrency: concurrency,
                              onRetry: { FileHandle.standardError.write(Data("realign: \($0)\n".utf8)) })
        }
    }

    static func client(_ url: URL, _ model: String?, apiKeyEnv: String?, timeout: Double, retries: Int, concurrency: Int,
                       onRetry: @escaping @Sendable (String) -> Void) throws -> OpenAIClient {
        var options = OpenAIClient.Options()
        options.timeout = timeout
        options.maxRetries = retries
        options.concurrency = concurrency
        let client = try OpenAIClient(baseURL: url, model: model, apiKeyVariable: apiKeyEnv, options: options)
        client.onRetry = onRetry
        return client
    }
}
