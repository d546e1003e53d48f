import Foundation
import Testing
@testable import Torch

/// c10d process groups over Gloo on loopback: two ranks as two threads of this process (each its own group, as
/// two processes would have), the store hosted by rank 0.
@Suite struct ProcessGroupTests {
    /// Runs `body(rank, group)` for ranks 0..<world on their own threads; the errors each rank threw, by rank.
    static func ranks(_ world: Int, timeout: Double = 20, joining: Set<Int>? = nil,
                      _ body: @escaping @Sendable (Int, ProcessGroup) throws -> Void) throws -> [Int: String] {
        let port = try ProcessGroup.freeLoopbackPort()
        let errors = Locked<[Int: String]>([:])
        let done = DispatchGroup()
        for rank in 0..<world where joining?.contains(rank) ?? true {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    let group = try ProcessGroup(host: "127.0.0.1", port: port, rank: rank, worldSize: world,
                                                 hostsStore: rank == 0, interface: "lo", timeout: timeout)
                    try body(rank, group)
                } catch {
                    errors.update { $0[rank] = "\(error)" }
                }
            }.start()
        }
        done.wait()
        return errors.value
    }

    @Test func collectivesCombineEveryRank() throws {
        try #require(ProcessGroup.hasGloo)
        let results = Locked<[Int: [[Double]]]>([:])
        let errors = try Self.ranks(2) { rank, group in
            #expect(group.rank == rank && group.worldSize == 2)
            let r = Double(rank)
            // Sum, max and min in place, two tensors in one call.
            let a = try Tensor([1 + r, 2 + r, 3 + r]), b = try Tensor([10 * (r + 1)])
            try group.allReduce([a, b])
            let m = try Tensor([r, -r])
            try group.allReduce([m], .max)
            // Rank 1's values everywhere.
            let c = try Tensor([100 + r, 200 + r])
            try group.broadcast([c], root: 1)
            let gathered = try group.allGather(Tensor([r, r * r, 7]))
            try group.barrier()
            results.update { $0[rank] = try! [a.toArray(Double.self), b.toArray(Double.self), m.toArray(Double.self),
                                              c.toArray(Double.self)] + gathered.map { try $0.toArray(Double.self) } }
        }
        #expect(errors.isEmpty, "\(errors)")
        let expected: [[Double]] = [[3, 5, 7], [30], [1, 0], [101, 201], [0, 0, 7], [1, 1, 7]]
        #expect(results.value[0] == expected)
        #expect(results.value[1] == expected)
    }

    /// Objects of different lengths (an empty one too) come back whole and in rank order; the store carries keys.
    @Test func bytesAndStoreKeysTravel() throws {
        try #require(ProcessGroup.hasGloo)
        let results = Locked<[Int: [[UInt8]]]>([:])
        let errors = try Self.ranks(3) { rank, group in
            let mine: [UInt8] = rank == 1 ? [] : Array("rank \(rank) says \(String(repeating: "é", count: rank * 3))".utf8)
            let all = try group.allGather(bytes: mine)
            if rank == 2 { try group.storeSet("note", [1, 2, 3]) }
            try group.barrier()
            #expect(try group.storeHas("note"))
            #expect(try group.storeGet("note") == [1, 2, 3])
            #expect(try !group.storeHas("absent"))
            results.update { $0[rank] = all }
        }
        #expect(errors.isEmpty, "\(errors)")
        let expected = [Array("rank 0 says ".utf8), [], Array("rank 2 says éééééé".utf8)]
        for rank in 0..<3 { #expect(results.value[rank] == expected) }
    }

    /// A rank that never comes: the one that did gives up within the timeout with an error naming itself, not a hang.
    @Test func aMissingRankIsAnErrorNotAHang() throws {
        try #require(ProcessGroup.hasGloo)
        let started = Date()
        let errors = try Self.ranks(2, timeout: 2, joining: [0]) { _, _ in }
        #expect(Date().timeIntervalSince(started) < 30)
        let message = try #require(errors[0])
        #expect(message.contains("rank 0"), "\(message)")
    }

    /// A rank that leaves (its group freed: connections closed, heartbeat stopped) fails the next collective of
    /// the others, which name it instead of only reporting a closed connection.
    @Test func theRankThatStoppedIsNamed() throws {
        try #require(ProcessGroup.hasGloo)
        let errors = try Self.ranks(2, timeout: 20) { rank, group in
            try group.barrier()
            guard rank == 0 else { return }  // rank 1 leaves; its group goes with it
            usleep(500_000)
            try group.allReduce([Tensor([1.0])])
        }
        let message = try #require(errors[0])
        #expect(message.contains("rank 0 of 2: all-reduce failed") && message.contains("rank 1 stopped"), "\(message)")
        #expect(errors[1] == nil)
    }

    @Test func badArgumentsAreRefused() throws {
        #expect(throws: TorchError.self) { try ProcessGroup(host: "127.0.0.1", port: 29999, rank: 2, worldSize: 2, hostsStore: true) }
        #expect(throws: TorchError.self) { try ProcessGroup(host: "127.0.0.1", port: 70000, rank: 0, worldSize: 1, hostsStore: true) }
        #expect(throws: TorchError.self) {
            try ProcessGroup(backend: "mpi", host: "127.0.0.1", port: try ProcessGroup.freeLoopbackPort(), rank: 0, worldSize: 1, hostsStore: true, timeout: 2)
        }
    }

    @Test func theEnvironmentOfTorchrunAndSlurm() throws {
        let torchrun = ["RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.5",
                        "MASTER_PORT": "29400", "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "2"]
        #expect(try DistributedEnvironment.current(torchrun) == DistributedEnvironment(
            rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddress: "10.0.0.5", masterPort: 29400, agentStore: true, attempt: 2))
        let slurm = ["SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "4(x2)",
                     "MASTER_ADDR": "node01"]
        #expect(try DistributedEnvironment.current(slurm) == DistributedEnvironment(
            rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddress: "node01", masterPort: 29500))
        #expect(try DistributedEnvironment.current([:]) == nil)
        #expect(try DistributedEnvironment.current(["PATH": "/usr/bin"]) == nil)
        for (bad, names) in [(["RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "h"], "RANK"),
                             (["RANK": "", "WORLD_SIZE": "2", "MASTER_ADDR": "h"], "RANK is set but empty"),
                             (["RANK": "0", "MASTER_ADDR": "h"], "WORLD_SIZE"),
                             (["RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h"], "rank 2"),
                             (["RANK": "0", "WORLD_SIZE": "2"], "MASTER_ADDR"),
                             (["RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "0"], "MASTER_PORT")] {
            #expect { try DistributedEnvironment.current(bad) } throws: { "\($0)".contains(names) }
        }
    }
}

/// A value shared by threads behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ body: (inout Value) throws -> Void) rethrows {
        lock.lock(); defer { lock.unlock() }
        try body(&stored)
    }
}
