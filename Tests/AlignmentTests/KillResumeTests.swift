import Foundation
import Testing
import TestSupport
import Torch

/// SIGKILL `realign train` at a random step, restart with --resume: the final adapter equals an uninterrupted
/// run's.
@Suite(.serialized) struct KillResumeTests {
    func arguments(_ out: String, resume: Bool) -> [String] {
        ["train", "--model", tinyLlavaFolder(), "--data", prefsFile(), "--out", out, "--objective", "rdpo", "--steps", "6",
         "--grad-accum", "2", "--lora-r", "4", "--lora-alpha", "8", "--lr", "1e-3", "--warmup-ratio", "0",
         "--projector-lr", "0", "--save-steps", "1"] + (resume ? ["--resume"] : [])
    }

    func runToEnd(_ out: String, resume: Bool) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = arguments(out, resume: resume)
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "realign train exited with \(p.terminationStatus)")
    }

    @Test func sigkillThenResume() throws {
        let straight = temporaryFolder()
        try runToEnd(straight, resume: false)
        let reference = try adapterTensors(straight + "/adapter")

        let killed = temporaryFolder()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2 {
            let target = Int.random(in: 1...4, using: &rng)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try realignExecutable())
            p.arguments = arguments(killed, resume: FileManager.default.fileExists(atPath: killed + "/checkpoints"))
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            // Kill once the run has written `target` metric lines (or when it ends by itself).
            let deadline = Date().addingTimeInterval(120)
            while p.isRunning && Date() < deadline {
                let lines = (try? String(contentsOfFile: killed + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0
                if lines >= target { break }
                usleep(20_000)
            }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        try runToEnd(killed, resume: true)
        let resumed = try adapterTensors(killed + "/adapter")
        #expect(Set(resumed.keys) == Set(reference.keys))
        for (k, t) in reference { #expect(try t.equal(resumed[k]!), "\(k) differs after kill and resume") }
        let metrics = try String(contentsOfFile: killed + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 6)
    }
}
