import Foundation
import Testing
@testable import Torch

/// Per-thread intra-op counts and `Torch.parallelJobs` (independent jobs on all cores, one intra-op thread each).
@Suite(.serialized) struct ParallelJobsTests {
    @Test func aThreadCountSetOnOneThreadStaysOnIt() throws {
        let saved = Torch.threads
        try Torch.setThreads(3)
        defer { try? Torch.setThreads(saved) }
        let process = Torch.threads
        #expect(process == 3)
        try Torch.withThreadsOnThisThread(1) {
            #expect(Torch.threads == 1)
            // Another thread meanwhile still runs with the process-wide count.
            #expect(threadsOnANewThread() == process)
            // Operators run (and agree with the process-wide result) under the local count.
            let x = try Tensor.arange(0, 10_000).to(dtype: .float64)
            #expect(try x.sum().item() == 49_995_000)
        }
        #expect(Torch.threads == process)
        #expect(throws: TorchError.self) { try Torch.withThreadsOnThisThread(-1) {} }
    }

    @Test func everyJobRunsOnceOnASingleThreadedWorkerWithGradientsOff() throws {
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var runs: [Int] = []
            var threads: Set<Int> = []
            var gradOn = false
            func record(_ i: Int, recorded: Bool) {
                lock.lock(); defer { lock.unlock() }
                runs.append(i)
                threads.insert(Torch.threads)
                gradOn = gradOn || isGradEnabled || recorded
            }
        }
        let log = Log()
        let before = Torch.threads
        try Torch.parallelJobs(40, workers: 2) { i in
            let t = try Tensor.ones([64, 64]).requiresGrad(true)
            log.record(i, recorded: try t.matmul(t).requiresGrad)
        }
        #expect(log.runs.sorted() == Array(0..<40))
        #expect(log.threads == [1])
        #expect(!log.gradOn)
        #expect(Torch.threads == before, "the calling thread (one of the workers) gets its count back")
    }

    @Test func theFirstErrorStopsFurtherJobsAndIsRethrown() throws {
        final class Counter: @unchecked Sendable {
            let lock = NSLock()
            var started = 0
            func start() { lock.lock(); started += 1; lock.unlock() }
        }
        struct Failure: Error, Equatable { let job: Int }
        let counter = Counter()
        #expect(throws: Failure(job: 3)) {
            try Torch.parallelJobs(1000, workers: 2) { i in
                counter.start()
                if i == 3 { throw Failure(job: 3) }
                usleep(200)
            }
        }
        #expect(counter.started < 1000, "jobs after the failure were not started")
    }
}
