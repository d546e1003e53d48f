import Common
import Foundation
import Torch

/// `--nproc-per-node N` without torchrun: this binary starts N copies of the same command as the local ranks of
/// one node, with the environment torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
/// MASTER_ADDR, MASTER_PORT) and an even share of the cores each. When a rank fails, the others are stopped
/// and the launcher exits non-zero naming it; it never waits on a rank that cannot finish.
public enum Launcher {
    /// A command line without `option` and its value (`--option V` or `--option=V`): a rank's, without the
    /// launcher's own options.
    public static func without(_ option: String, _ arguments: [String]) -> [String] {
        var out: [String] = []
        var skip = false
        for a in arguments {
            if skip { skip = false; continue }
            if a == option { skip = true; continue }
            if a.hasPrefix(option + "=") { continue }
            out.append(a)
        }
        return out
    }

    /// In a rank this launcher started: die with the launcher (a killed launcher must not leave ranks behind,
    /// blocked on a collective or holding the output folder).
    public static func bindToLauncher() {
        guard let text = ProcessInfo.processInfo.environment["REALIGN_LAUNCHER_PID"], let pid = Int32(text) else { return }
        // prctl(PR_SET_PDEATHSIG, SIGKILL): variadic in C, so Swift's Glibc leaves it out; called through its symbol.
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
            _ = unsafeBitCast(symbol, to: Prctl.self)(1, UInt(SIGKILL), 0, 0, 0)
        }
        if getppid() != pid { exit(1) }  // the launcher was gone before the signal was set
    }

    /// Runs the ranks to the end. Throws (naming the first rank that failed) when any of them does.
    public static func run(ranks: Int, arguments: [String] = CommandLine.arguments, threadsPerRank: Int? = nil, rank0Output: Pipe? = nil) throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
        let port = try ProcessGroup.freeLoopbackPort()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = threadsPerRank ?? max(1, cores / ranks)
        var children: [Process] = []
        func stopAll() {
            for c in children where c.isRunning { kill(c.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(5)
            while children.contains(where: \.isRunning) && Date() < deadline { usleep(50_000) }
            for c in children where c.isRunning { kill(c.processIdentifier, SIGKILL) }
        }
        log("starting \(ranks) ranks on this node (\(threads) thread\(threads == 1 ? "" : "s") each, rendezvous on 127.0.0.1:\(port))")
        for rank in 0..<ranks {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = Array(without("--nproc-per-node", arguments).dropFirst())
            var env = ProcessInfo.processInfo.environment
            env["RANK"] = "\(rank)"
            env["LOCAL_RANK"] = "\(rank)"
            env["WORLD_SIZE"] = "\(ranks)"
            env["LOCAL_WORLD_SIZE"] = "\(ranks)"
            env["MASTER_ADDR"] = "127.0.0.1"
            env["MASTER_PORT"] = "\(port)"
            env["OMP_NUM_THREADS"] = "\(threads)"
            env["REALIGN_LAUNCHER_PID"] = "\(getpid())"
            p.environment = env
            if rank == 0, let rank0Output { p.standardOutput = rank0Output }
            do {
                try p.run()
            } catch {
                stopAll()
                throw TorchError("could not start rank \(rank) (\(executable)): \(error)")
            }
            children.append(p)
            log("rank \(rank): pid \(p.processIdentifier)")
        }
        // Poll: the first rank to fail stops the rest, so a rank blocked in a collective never hangs the job.
        while true {
            if let (rank, child) = children.enumerated().first(where: { !$0.element.isRunning && $0.element.terminationStatus != 0 }) {
                let how = child.terminationReason == .uncaughtSignal
                    ? "was killed by signal \(child.terminationStatus)" : "exited with status \(child.terminationStatus)"
                stopAll()
                throw TorchError("rank \(rank) of \(ranks) \(how); the other ranks were stopped")
            }
            if children.allSatisfy({ !$0.isRunning }) { return }
            usleep(100_000)
        }
    }
}

/// How a job spreads over processes (one shared helper for every job that can): local ranks this process starts
/// (`nprocPerNode`), ranks under torchrun or Slurm, one shard by hand (`shard` "I/N"), or a merge of shards.
public struct LaunchOptions: Sendable {
    public var nprocPerNode: Int?
    public var shard: String?
    public var mergeShards: Int?
    /// Seconds a rank waits for the others.
    public var timeout: Double = 3600
    public init() {}
}

/// What this process does of a job.
public enum LaunchRole {
    /// Local ranks were started with this command line and have done the job.
    case launched
    /// The whole job, alone.
    case whole
    /// Shard `Shard` of the job, in a process group (torchrun, Slurm, or the local launcher).
    case rank(Shard, ProcessGroup)
    /// One shard by hand, merged later.
    case shard(Shard)
    /// Merge this many shards' outputs, then stop.
    case merge(Int)

    /// Whether this process speaks for the job (rank 0, or alone).
    public var talks: Bool {
        if case .rank(_, let group) = self { return group.rank == 0 }
        return true
    }

    public var part: Shard? {
        switch self {
        case .rank(let s, _), .shard(let s): return s
        default: return nil
        }
    }

    public var group: ProcessGroup? {
        if case .rank(_, let g) = self { return g }
        return nil
    }
}

extension LaunchOptions {
    /// This process's role. With `nprocPerNode` > 1 it starts the ranks (this command line without the option)
    /// and returns `.launched` once they all finished; a failed rank throws, naming it.
    public func role(backend: String = "gloo") throws -> LaunchRole {
        Launcher.bindToLauncher()
        if let n = mergeShards {
            guard n >= 1 else { throw JobError("merge: the shard count must be positive") }
            return .merge(n)
        }
        let environment = try DistributedEnvironment.current()
        if let n = nprocPerNode {
            guard n >= 1 else { throw JobError("--nproc-per-node must be positive") }
            guard environment == nil, shard == nil else { throw JobError("--nproc-per-node starts ranks itself: leave out --shard, torchrun and Slurm") }
            if n > 1 {
                try Launcher.run(ranks: n)
                return .launched
            }
        }
        if let environment {
            guard shard == nil else { throw JobError("--shard: under torchrun or Slurm each rank is its own shard; leave it out") }
            let group = try ProcessGroup(environment: environment, backend: backend, timeout: timeout)
            return .rank(try Shard(index: environment.rank, count: environment.worldSize), group)
        }
        if let shard { return .shard(try Shard(parsing: shard)) }
        return .whole
    }
}
