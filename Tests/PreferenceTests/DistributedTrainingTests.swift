import Foundation
import Testing
import TestSupport
import Torch

/// `realign train` as two data-parallel ranks over Gloo on loopback (the built-in launcher), against one process
/// with the same global batch: the same adapter, the same per-step loss and gradient norm; files written once;
/// a kill resumed; a rank killed makes the whole job stop, naming it.
@Suite(.serialized) struct DistributedTrainingTests {
    let data = repoPath("AlignmentTests/Fixtures/prefs/pairs.jsonl")

    func trainArguments(_ out: String, objective: String, steps: Int = 4) -> [String] {
        ["train", "--model", tinyLlava, "--data", data, "--out", out, "--objective", objective, "--batch-size", "1",
         "--steps", "\(steps)", "--lr", "1e-3", "--lora-r", "4", "--lora-alpha", "8", "--save-steps", "2", "--warmup-ratio", "0"]
    }

    func adapter(_ out: String) throws -> [String: Tensor] {
        try SafeTensorsFile(path: out + "/adapter/adapter_model.safetensors").loadAll()
    }

    func largestDifference(_ a: [String: Tensor], _ b: [String: Tensor]) throws -> Double {
        #expect(Set(a.keys) == Set(b.keys))
        return try a.keys.map { k in try (a[k]! - b[k]!).abs().max().item() }.max() ?? .infinity
    }

    /// loss and grad_norm of every metrics line, in order.
    func lossAndNorm(_ out: String) -> [[Double]] {
        jsonLines(out + "/metrics.jsonl").map { [$0["step"] as? Double ?? -1, $0["loss"] as? Double ?? .nan, $0["grad_norm"] as? Double ?? .nan] }
    }

    @Test(arguments: ["dpo", "rdpo"])
    func twoRanksTrainAsOneProcessWithTheSameGlobalBatch(objective: String) throws {
        let one = temporaryFolder("dp-one"), two = temporaryFolder("dp-two")
        let single = try runRealign(trainArguments(one, objective: objective) + ["--grad-accum", "4"])
        #expect(single.status == 0, "\(single.stderr)")
        let ranks = try runRealign(trainArguments(two, objective: objective) + ["--grad-accum", "2", "--nproc-per-node", "2"])
        #expect(ranks.status == 0, "\(ranks.stderr)")
        // Several optimizer steps of the same global batches: the adapters agree to float rounding, although the
        // weights moved far more than that (lr 1e-3 on r 4 factors).
        let (a, b) = (try adapter(one), try adapter(two))
        #expect(try largestDifference(a, b) < 1e-5)
        #expect(try a.values.map { try $0.abs().max().item() }.max()! > 1e-2)
        // The global loss and gradient norm per step (a wrongly scaled gradient would show in the norm).
        let (m1, m2) = (lossAndNorm(one), lossAndNorm(two))
        #expect(m1.count == 4 && m2.count == 4, "one line per step, written once")
        for (x, y) in zip(m1, m2) {
            #expect(x[0] == y[0])
            #expect(abs(x[1] - y[1]) < 1e-5 * max(1, abs(x[1])), "loss \(x) vs \(y)")
            #expect(abs(x[2] - y[2]) < 1e-5 * max(1, abs(x[2])), "grad_norm \(x) vs \(y)")
        }
        // Rank 0 alone wrote: checkpoints 2 and 4 and nothing half-written; one rank spoke.
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: two + "/checkpoints").sorted()
        #expect(checkpoints == ["step-2", "step-4"])
        #expect(ranks.stderr.components(separatedBy: "adapter written").count == 2, "\(ranks.stderr)")
        #expect(ranks.stderr.contains("rank 0 of 2"))
    }

    /// The launcher killed mid-run takes its ranks with it; the run resumes from its last checkpoint, also as one
    /// process, and ends where an uninterrupted one does.
    @Test func aKilledRunResumesWithAnyWorldSize() throws {
        let straight = temporaryFolder("dp-straight"), killed = temporaryFolder("dp-killed")
        let steps = 40
        #expect(try runRealign(trainArguments(straight, objective: "dpo", steps: steps) + ["--grad-accum", "4"]).status == 0)
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: try realignExecutable())
        launcher.arguments = trainArguments(killed, objective: "dpo", steps: steps) + ["--grad-accum", "2", "--nproc-per-node", "2"]
        let log = StderrLog(launcher)
        try launcher.run()
        let pids = try waitForRankPids(log, count: 2)
        // Wait for a checkpoint and a few steps past it, then kill the launcher alone.
        try waitUntil(60) { jsonLines(killed + "/metrics.jsonl").count >= 3 }
        kill(launcher.processIdentifier, SIGKILL)
        launcher.waitUntilExit()
        try waitUntil(30) { pids.allSatisfy { kill($0, 0) != 0 } }
        #expect(jsonLines(killed + "/metrics.jsonl").count < steps, "killed before the end")
        let resumed = try runRealign(trainArguments(killed, objective: "dpo", steps: steps) + ["--grad-accum", "4", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try largestDifference(adapter(straight), adapter(killed)) < 1e-5)
        #expect(lossAndNorm(killed).map { $0[0] } == (1...steps).map(Double.init))
    }

    /// A rank killed mid-run: the launcher stops the other one and exits non-zero naming the rank, within a minute.
    @Test func aDeadRankStopsTheJobAndIsNamed() throws {
        let out = temporaryFolder("dp-dead")
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: try realignExecutable())
        launcher.arguments = trainArguments(out, objective: "dpo", steps: 2000) + ["--grad-accum", "2", "--nproc-per-node", "2"]
        let log = StderrLog(launcher)
        try launcher.run()
        let pids = try waitForRankPids(log, count: 2)
        try waitUntil(60) { !jsonLines(out + "/metrics.jsonl").isEmpty }
        let killedAt = Date()
        kill(pids[1], SIGKILL)
        try waitUntil(60) { !launcher.isRunning }
        #expect(Date().timeIntervalSince(killedAt) < 60)
        #expect(launcher.terminationStatus != 0)
        try waitUntil(10) { log.text.contains("was killed") }
        let text = log.text
        #expect(text.contains("rank 1 of 2 was killed by signal 9"), "\(text)")
        try waitUntil(30) { kill(pids[0], 0) != 0 }
    }

    /// The pids the launcher logs ("rank R: pid P") once all have come; the log keeps being drained after.
    func waitForRankPids(_ log: StderrLog, count: Int) throws -> [Int32] {
        var pids: [Int32] = []
        try waitUntil(60) {
            let lines = log.text.split(separator: "\n")
            pids = (0..<count).compactMap { rank in
                lines.first { $0.contains("rank \(rank): pid ") }.flatMap { Int32($0.split(separator: " ").last!) }
            }
            return pids.count == count
        }
        return pids
    }

    func waitUntil(_ seconds: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { throw TorchError("timed out after \(seconds) s") }
            usleep(50_000)
        }
    }
}

/// A process's stderr, read as it comes (a full pipe would block the process).
final class StderrLog: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    init(_ process: Process) {
        let pipe = Pipe()
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.lock()
            self.data.append(chunk)
            self.lock.unlock()
        }
    }
    var text: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
