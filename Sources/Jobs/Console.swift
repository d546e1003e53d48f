import Foundation

/// One line on stderr, prefixed with the program's name: what every job says while it runs.
public func log(_ message: String) {
    FileHandle.standardError.write(Data("realign: \(message)\n".utf8))
}

/// A `[####....] done/total` bar on stderr, redrawn in place; a new line when done.
public func progressBar(_ label: String) -> (Int, Int) -> Void {
    { done, total in
        let bar = String(repeating: "#", count: total == 0 ? 30 : done * 30 / total).padding(toLength: 30, withPad: ".", startingAt: 0)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)".utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Runs async work from synchronous code: the calling thread waits while the task runs on the cooperative pool.
public func blockingRun(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable { var error: Error? }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { try await body() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let error = outcome.error { throw error }
}

/// A job's refusal of its configuration (a bad value, a missing file), said before anything runs.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
