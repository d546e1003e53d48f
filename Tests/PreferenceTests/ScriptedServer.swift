import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers each request as a script says — including wrongly on purpose
/// (429s, 500s, garbage, slow replies, dropped connections) — so the client's retry and failure paths run over a
/// real socket. It stops with the test (bounded: it serves only what the test sends).
final class ScriptedServer: @unchecked Sendable {
    struct Reply {
        var status = 200
        var body = ""
        var headers: [String: String] = [:]
        /// Seconds to wait before answering.
        var delay: Double = 0
        /// Close the connection without a reply.
        var drop = false
    }

    struct Received {
        var path: String
        var headers: [String: String]
        var body: String
    }

    let port: Int
    private let socketFD: Int32
    private let lock = NSLock()
    private var log: [Received] = []
    private var inFlight = 0
    private(set) var maxInFlight = 0
    private let script: @Sendable (Int, Received) -> Reply

    /// `script(n, request)` answers the n-th request (from 0).
    init(script: @escaping @Sendable (Int, Received) -> Reply) throws {
        self.script = script
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socketFD = socketFD
        var yes: Int32 = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(socketFD, 64) == 0 else { throw NSError(domain: "ScriptedServer", code: Int(errno)) }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) } }
        port = Int(UInt16(bigEndian: actual.sin_port))
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    func stop() { shutdown(socketFD, Int32(SHUT_RDWR)); close(socketFD) }

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    var requests: [Received] { lock.withLock { log } }

    private func acceptLoop() {
        while true {
            let client = accept(socketFD, nil, nil)
            if client < 0 { return }
            Thread { self.serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            data += buffer[0..<n]
            if headerEnd == nil, let end = Self.find([13, 10, 13, 10], in: data) {
                headerEnd = end + 4
                let head = String(decoding: data[0..<end], as: UTF8.self)
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let h = headerEnd, data.count >= h + contentLength { break }
        }
        let head = String(decoding: data[0..<(headerEnd! - 4)], as: UTF8.self).split(separator: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let path = head.first.map { String($0.split(separator: " ").dropFirst().first ?? "") } ?? ""
        let received = Received(path: path, headers: headers, body: String(decoding: data[headerEnd!...], as: UTF8.self))
        let index: Int = lock.withLock {
            log.append(received)
            inFlight += 1
            maxInFlight = max(maxInFlight, inFlight)
            return log.count - 1
        }
        defer { lock.withLock { inFlight -= 1 } }
        let reply = script(index, received)
        if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
        if reply.drop { return }
        let body = Array(reply.body.utf8)
        var text = "HTTP/1.1 \(reply.status) X\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (k, v) in reply.headers { text += "\(k): \(v)\r\n" }
        let bytes = Array((text + "\r\n").utf8) + body
        _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    /// An OpenAI chat-completion body answering `text`.
    static func completion(_ text: String, prompt: Int = 7, completion: Int = 3) -> String {
        "{\"id\": \"x\", \"object\": \"chat.completion\", \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \(jsonQuoted(text))}, \"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": \(prompt), \"completion_tokens\": \(completion)}}"
    }

    static func jsonQuoted(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
        let text = String(decoding: data, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }
}
