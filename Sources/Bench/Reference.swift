import Foundation
import JSON
import Torch

/// The first line of every benchmark: the CPU and the level its kernels take, the libtorch, so figures name their machine.
func printMachine() {
    print("machine: \(Torch.cpuInfo); libtorch \(Torch.version)")
}

/// Runs the Python reference through /usr/bin/env (so `--python` may be a name on PATH and leading VAR=value
/// words set its environment); its stdout, or nil when it cannot start or fails.
func referenceOutput(_ arguments: [String]) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
}

/// The JSON object on the last line a reference script prints.
func referenceJSON(_ arguments: [String]) -> JSONValue? {
    guard let text = referenceOutput(arguments), let line = text.split(separator: "\n").last else { return nil }
    return try? JSONValue.parse(Array(line.utf8))
}

/// A reference script in `serve` mode: started once, then asked for one timed round of a named workload at a time,
/// so that rounds of ReAlign and of the reference alternate and both meet this machine in the same state (a shared
/// machine's memory bandwidth moves by a third from one minute to the next).
final class ReferenceSession {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffered: [UInt8] = []

    /// Nil when the script cannot start or does not report "ready".
    init?(_ arguments: [String]) {
        signal(SIGPIPE, SIG_IGN)  // a reference that dies makes writes fail, not this process
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        guard nextLine() == "ready" else {
            close()
            return nil
        }
    }

    deinit { close() }

    /// Seconds one round of `workload` took in the reference, or nil if it failed.
    func seconds(_ workload: String) -> Double? {
        guard process.isRunning, (try? input.fileHandleForWriting.write(contentsOf: Data((workload + "\n").utf8))) != nil
        else { return nil }
        return nextLine().flatMap(Double.init)
    }

    private func nextLine() -> String? {
        while true {
            if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffered.removeSubrange(...end) }
                return String(decoding: buffered[..<end], as: UTF8.self)
            }
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { return nil }
            buffered += data
        }
    }

    private func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
