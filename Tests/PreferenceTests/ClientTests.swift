import Foundation
import TestSupport
import JSON
import Testing
@testable import Backends
@testable import Preference

/// The OpenAI-compatible client against a loopback server that misbehaves on purpose.
@Suite(.serialized) struct ClientTests {
    static let secret = "sk-test-SECRET-4f1c9e"

    func client(_ server: ScriptedServer, retries: Int = 3, timeout: Double = 5, concurrency: Int = 4, key: Bool = true) throws -> OpenAIClient {
        setenv("REALIGN_TEST_KEY", Self.secret, 1)
        var options = OpenAIClient.Options()
        options.maxRetries = retries
        options.baseDelay = 0.01
        options.maxDelay = 0.05
        options.timeout = timeout
        options.concurrency = concurrency
        return try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: key ? "REALIGN_TEST_KEY" : nil, options: options)
    }

    @Test func requestCarriesImageKeyAndPrefill() async throws {
        let server = try ScriptedServer { _, _ in .init(body: ScriptedServer.completion("a cat", prompt: 11, completion: 2)) }
        let c = try client(server)
        let image = repoPath("PreferenceTests/Fixtures/shapes/images/00-red-circle.png")
        let reply = try await c.complete(ChatRequest(system: "sys", user: "What is it?", image: image, assistantPrefix: "It is", maxTokens: 9, stop: ["."]))
        #expect(reply == ChatReply(text: "a cat", promptTokens: 11, completionTokens: 2))
        #expect(c.usage.requests == 1 && c.usage.promptTokens == 11 && c.usage.completionTokens == 2)
        let sent = try #require(server.requests.first)
        #expect(sent.path == "/v1/chat/completions")
        #expect(sent.headers["authorization"] == "Bearer \(Self.secret)")
        let body = try JSONValue.parse(Array(sent.body.utf8))
        #expect(body["model"]?.stringValue == "m" && body["max_tokens"]?.intValue == 9 && body["continue_final_message"]?.boolValue == true)
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant"])
        let url = try #require(messages[1]["content"]?.arrayValue?.first?["image_url"]?["url"]?.stringValue)
        #expect(url.hasPrefix("data:image/png;base64,"))
        #expect(Data(base64Encoded: String(url.dropFirst("data:image/png;base64,".count))) == FileManager.default.contents(atPath: image))
    }

    @Test func retriesRateLimitsThenSucceeds() async throws {
        let server = try ScriptedServer { n, _ in
            n < 2 ? .init(status: 429, body: "{\"error\": {\"message\": \"slow down\"}}", headers: ["Retry-After": "0"]) : .init(body: ScriptedServer.completion("ok"))
        }
        let c = try client(server)
        let reply = try await c.complete(ChatRequest(user: "hi"))
        #expect(reply.text == "ok")
        #expect(server.requests.count == 3)
    }

    @Test func serverErrorsBecomeAFailureAfterRetries() async throws {
        // The server even echoes the key back: it must not reach the error text.
        let server = try ScriptedServer { _, r in .init(status: 500, body: "{\"error\": {\"message\": \"boom, your key \(r.headers["authorization"] ?? "")\"}}") }
        let c = try client(server, retries: 2)
        await #expect(throws: BackendError.self) { try await c.complete(ChatRequest(user: "hi")) }
        do { _ = try await c.complete(ChatRequest(user: "hi")) } catch let e as BackendError {
            #expect(e.message.contains("HTTP 500") && e.message.contains("after 3 attempts"))
            #expect(!e.message.contains(Self.secret), "\(e.message)")
            #expect(e.transient)
        }
        #expect(server.requests.count == 6)
    }

    @Test func garbageAndDroppedRepliesAreRetriedThenReported() async throws {
        let server = try ScriptedServer { n, _ in
            switch n % 3 {
            case 0: return .init(status: 200, body: "<html>not json</html>")
            case 1: return .init(drop: true)
            default: return .init(status: 200, body: "{\"choices\": []}")
            }
        }
        let c = try client(server, retries: 2)
        do {
            _ = try await c.complete(ChatRequest(user: "hi"))
            Issue.record("garbage was accepted")
        } catch let e as BackendError {
            #expect(e.message.contains("no choices[0].message.content"), "\(e.message)")
        }
        #expect(server.requests.count == 3)
    }

    @Test func slowServerTimesOut() async throws {
        let server = try ScriptedServer { _, _ in .init(body: ScriptedServer.completion("late"), delay: 3) }
        let c = try client(server, retries: 1, timeout: 0.4)
        let start = Date()
        do {
            _ = try await c.complete(ChatRequest(user: "hi"))
            Issue.record("a slow reply was waited for")
        } catch let e as BackendError {
            #expect(e.transient)
        }
        #expect(Date().timeIntervalSince(start) < 2.5)
    }

    @Test func clientErrorsAreNotRetried() async throws {
        let server = try ScriptedServer { _, _ in .init(status: 400, body: "{\"error\": {\"message\": \"bad field\"}}") }
        let c = try client(server)
        do {
            _ = try await c.complete(ChatRequest(user: "hi"))
            Issue.record("a 400 was accepted")
        } catch let e as BackendError {
            #expect(!e.transient && e.message.contains("HTTP 400: bad field"))
        }
        #expect(server.requests.count == 1)
    }

    @Test func concurrencyIsBounded() async throws {
        let server = try ScriptedServer { _, _ in .init(body: ScriptedServer.completion("ok"), delay: 0.15) }
        let c = try client(server, concurrency: 2)
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await c.complete(ChatRequest(user: "hi")).text } }
            for try await text in group { #expect(text == "ok") }
        }
        #expect(server.requests.count == 8)
        #expect(server.maxInFlight <= 2 && server.maxInFlight >= 1)
    }

    @Test func missingKeyVariableIsAClearError() throws {
        unsetenv("REALIGN_TEST_MISSING")
        #expect(throws: BackendError.self) {
            try OpenAIClient(baseURL: URL(string: "http://127.0.0.1:1/v1")!, model: nil, apiKeyVariable: "REALIGN_TEST_MISSING")
        }
    }

    @Test func backendSpecs() throws {
        #expect(try BackendSpec(parsing: "local:models/x") == .local(folder: "models/x"))
        #expect(try BackendSpec(parsing: "openai:https://api.example.com/v1#gpt-4o-mini") == .openai(baseURL: URL(string: "https://api.example.com/v1")!, model: "gpt-4o-mini"))
        #expect(try BackendSpec(parsing: "openai:http://127.0.0.1:8000/v1") == .openai(baseURL: URL(string: "http://127.0.0.1:8000/v1")!, model: nil))
        #expect(throws: BackendError.self) { try BackendSpec(parsing: "openai:ftp://x") }
        #expect(throws: BackendError.self) { try BackendSpec(parsing: "gpt4") }
    }
}

