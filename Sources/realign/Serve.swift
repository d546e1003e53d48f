import ArgumentParser
import Foundation
import Jobs
import Models
import Serving

/// A local model behind the OpenAI chat-completions API.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a local VLM over the OpenAI-compatible API (/v1/chat/completions, /v1/models).",
        discussion: """
            Listens on loopback by default; --host 0.0.0.0 exposes it. With --api-key-env VAR, requests must send \
            'Authorization: Bearer <value of VAR>'. One user turn per request, with at most one image as a base64 \
            data URL; a final assistant message is continued when the request says "continue_final_message": true \
            (as vLLM accepts). Requests are answered one at a time. Port 0 picks a free port; the address is printed \
            on stderr as 'listening on http://HOST:PORT'.
            """)

    @Option(help: "The VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL).") var model: String
    @Option(help: "A PEFT LoRA adapter to apply.") var adapter: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8000
    @Option(help: "The model id clients name (default: the folder's name).") var modelName: String?
    @Option(help: "Environment variable holding the bearer key clients must send.") var apiKeyEnv: String?
    @Option(help: "Largest request body in MiB.") var maxBodyMib = 32
    @Option(help: "Largest request image in megapixels: larger ones are refused (413) from their header, before decoding.") var maxImageMpixels = 40.0
    @Option(help: "Request images decoded at once (others wait their turn).") var decodeSlots = 2
    @Option(help: "Chat format (default: from config.json).") var chatFormat: String?
    @OptionGroup var precision: WeightPrecision

    func run() throws {
        try blockingRun { try await self.runAsync() }
    }

    func runAsync() async throws {
        var key: String?
        if let apiKeyEnv {
            guard let value = ProcessInfo.processInfo.environment[apiKeyEnv], !value.isEmpty else {
                log("the environment variable \(apiKeyEnv) (named by --api-key-env) is not set")
                throw ExitCode.failure
            }
            key = value
        }
        let vlm: VisionLanguageModel
        do {
            vlm = try VisionLanguageModel(folder: model, adapter: adapter, bf16LinearWeights: precision.bf16Weights,
                                          chatFormat: try chatFormat.map(parseChatFormat))
        } catch {
            throw CleanExit.message(error)
        }
        var server = ChatServer(model: vlm, modelName: modelName ?? URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent, apiKey: key)
        server.maxBodyBytes = maxBodyMib << 20
        guard maxImageMpixels > 0, decodeSlots > 0 else { throw ValidationError("--max-image-mpixels and --decode-slots must be positive") }
        server.maxImagePixels = Int(maxImageMpixels * 1_000_000)
        server.maxConcurrentDecodes = decodeSlots
        let host = self.host
        let name = server.modelName
        try await server.run(host: host, port: port) { port in
            log("serving \(name) — listening on http://\(host):\(port)/v1")
        }
    }
}
