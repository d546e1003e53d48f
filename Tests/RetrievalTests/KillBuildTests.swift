import Foundation
import TestSupport
import Testing
@testable import Retrieval

/// SIGKILL `realign index build` part-way, run it again: it continues from what was stored (no re-embedding) and
/// ends with the same base as an uninterrupted build.
@Suite(.serialized) struct KillBuildTests {
    func temp() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("kb-kill-\(UUID().uuidString)").path }

    /// 24 images: the six fixture pictures under four names each.
    func imageFolder() throws -> String {
        let folder = temp()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = repoPath("AlignmentTests/Fixtures/prefs/images")
        for (i, name) in try FileManager.default.contentsOfDirectory(atPath: source).sorted().enumerated() {
            for copy in 0..<4 {
                try FileManager.default.copyItem(atPath: source + "/" + name, toPath: folder + "/img\(copy)-\(i)." + (name as NSString).pathExtension)
            }
        }
        return folder
    }

    func build(_ images: String, _ out: String, stderr: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = ["index", "build", "--model", repoPath("ModelsTests/Fixtures/tiny-llava"), "--images", images, "--out", out, "--batch-size", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = stderr ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    func entries(_ folder: String) -> Int { (try? KnowledgeBase(opening: folder).entries.count) ?? 0 }

    @Test func sigkillThenRerun() throws {
        let images = try imageFolder()
        let straight = temp()
        let s = try build(images, straight)
        s.waitUntilExit()
        #expect(s.terminationStatus == 0)

        let killed = temp()
        let p = try build(images, killed)
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && entries(killed) < 5 && Date() < deadline { usleep(5_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let stored = entries(killed)
        #expect(stored >= 5 && stored < 24, "killed with \(stored) of 24 stored")

        let pipe = Pipe()
        let again = try build(images, killed, stderr: pipe)
        let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
        // The first progress report counts what was already stored: nothing of it is embedded again.
        let first = log.split(separator: "\r").first { $0.contains("/24") }.flatMap { $0.split(separator: " ").last }
        #expect(first.flatMap { Int($0.split(separator: "/")[0]) } == stored, "first progress \(String(describing: first))")

        let a = try KnowledgeBase(opening: straight), b = try KnowledgeBase(opening: killed)
        #expect(a.entries == b.entries)
        #expect(try a.embeddings() == b.embeddings())
        #expect(FileManager.default.contents(atPath: straight + "/index.faiss") == FileManager.default.contents(atPath: killed + "/index.faiss"))
    }
}
