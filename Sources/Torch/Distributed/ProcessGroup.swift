import CTorch
import Foundation

/// Where this process sits among the ranks of a job, read from the environment torchrun sets (`RANK`,
/// `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`), or Slurm's (`SLURM_PROCID`,
/// `SLURM_NTASKS`, `SLURM_LOCALID`, `SLURM_NTASKS_PER_NODE`) when torchrun's are absent.
public struct DistributedEnvironment: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    public var localRank: Int
    public var localWorldSize: Int
    public var masterAddress: String
    public var masterPort: Int
    /// torchrun's elastic agent already serves the store at MASTER_PORT: every rank connects as a client.
    public var agentStore: Bool
    /// Which restart of the job this is (torchrun's `TORCHELASTIC_RESTART_COUNT`): the store's keys are kept apart.
    public var attempt: Int

    public init(rank: Int, worldSize: Int, localRank: Int, localWorldSize: Int, masterAddress: String = "127.0.0.1",
                masterPort: Int = 29500, agentStore: Bool = false, attempt: Int = 0) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.localWorldSize = localWorldSize
        self.masterAddress = masterAddress
        self.masterPort = masterPort
        self.agentStore = agentStore
        self.attempt = attempt
    }

    /// nil when the process was not started as one rank of several (no RANK / SLURM_PROCID); an error names the
    /// variable that is malformed or missing.
    public static func current(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> DistributedEnvironment? {
        func int(_ key: String) throws -> Int? {
            guard let text = env[key], !text.isEmpty else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw TorchError("the environment variable \(key)=\"\(text)\" is not an integer")
            }
            return value
        }
        let torchrun = env["RANK"] != nil
        let prefix = torchrun ? nil : (env["SLURM_PROCID"] != nil ? "SLURM" : nil)
        guard torchrun || prefix != nil else { return nil }
        guard let rank = try int(torchrun ? "RANK" : "SLURM_PROCID") else {
            throw TorchError("\(torchrun ? "RANK" : "SLURM_PROCID") is set but empty")
        }
        guard let world = try int(torchrun ? "WORLD_SIZE" : "SLURM_NTASKS") else {
            throw TorchError("\(torchrun ? "RANK" : "SLURM_PROCID") is set but \(torchrun ? "WORLD_SIZE" : "SLURM_NTASKS") is not")
        }
        let localRank = try int(torchrun ? "LOCAL_RANK" : "SLURM_LOCALID") ?? rank
        // Slurm's SLURM_NTASKS_PER_NODE may read "2(x3)"; its leading count is the local world.
        let slurmPerNode = env["SLURM_NTASKS_PER_NODE"].flatMap { Int($0.prefix(while: \.isNumber)) }
        let localWorld = try (torchrun ? int("LOCAL_WORLD_SIZE") : slurmPerNode) ?? world
        guard world >= 1, (0..<world).contains(rank) else { throw TorchError("rank \(rank) is not in a world of \(world)") }
        guard localWorld >= 1, (0..<localWorld).contains(localRank) else {
            throw TorchError("local rank \(localRank) is not among \(localWorld) local ranks")
        }
        let address = env["MASTER_ADDR"].flatMap { $0.isEmpty ? nil : $0 } ?? (torchrun ? nil : env["SLURM_LAUNCH_NODE_IPADDR"])
        guard let address else { throw TorchError("MASTER_ADDR is not set: the address of rank 0's host is needed for the rendezvous") }
        let port = try int("MASTER_PORT") ?? 29500
        guard (1...65535).contains(port) else { throw TorchError("MASTER_PORT=\(port) is not a port") }
        return DistributedEnvironment(rank: rank, worldSize: world, localRank: localRank, localWorldSize: localWorld,
                                      masterAddress: address, masterPort: port,
                                      agentStore: env["TORCHELASTIC_USE_AGENT_STORE"]?.lowercased() == "true",
                                      attempt: try int("TORCHELASTIC_RESTART_COUNT") ?? 0)
    }
}

/// A c10d process group: libtorch's TCPStore rendezvous and its Gloo backend, with the collectives data-parallel
/// training needs. Every collective is called by every rank in the same order; each waits at most `timeout`
/// seconds, and a failure (a rank gone, a timeout) throws an error naming this rank and the operation.
public final class ProcessGroup: @unchecked Sendable {
    public enum Reduction: Int32 { case sum = 0, max = 1, min = 2 }

    public let rank: Int
    public let worldSize: Int
    public let timeout: Double
    let handle: ct_process_group

    /// A TCP port on loopback that nothing listens on now (the kernel's pick for a bind, released again): a
    /// rendezvous port for ranks started on this machine.
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TorchError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TorchError("no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether this libtorch build can make Gloo groups (its headers were found at build time).
    public static var hasGloo: Bool { ct_has_gloo() }
    /// Whether it can make NCCL groups (a CUDA libtorch with NCCL's headers at build time).
    public static var hasNCCL: Bool { ct_has_nccl() }

    /// Joins the group. `hostsStore`: this process serves the rendezvous store (rank 0, unless a launcher serves
    /// it); `interface`: the network interface Gloo binds to (default: `GLOO_SOCKET_IFNAME`, else the host's
    /// address, else loopback).
    public init(backend: String = "gloo", host: String, port: Int, rank: Int, worldSize: Int, hostsStore: Bool,
                prefix: String = "realign", interface: String? = ProcessInfo.processInfo.environment["GLOO_SOCKET_IFNAME"],
                timeout: Double = 300) throws {
        var out: ct_process_group? = nil
        try check(ct_pg_init(backend, host, Int32(port), Int32(rank), Int32(worldSize), hostsStore, prefix, interface ?? "",
                             Int64(timeout * 1000), &out))
        handle = out!
        self.rank = rank
        self.worldSize = worldSize
        self.timeout = timeout
    }

    /// The group a torchrun (or Slurm) environment describes. torchrun's agent already serves a store at
    /// MASTER_PORT, but libtorch 1.x's client cannot speak to the 2.x server (it resets the connection): with a
    /// libtorch older than 2, rank 0 serves the group's own store at MASTER_PORT + 2 instead. Not + 1: torchrun
    /// picks MASTER_PORT by binding port 0, which Linux answers with an odd port, while the ephemeral source ports
    /// of outgoing connections (the agent's, the ranks', Gloo's) are even: MASTER_PORT + 1 was taken by one of them
    /// in 2 of 15 torchrun runs here.
    public convenience init(environment e: DistributedEnvironment, backend: String = "gloo", timeout: Double = 300) throws {
        let ownStore = !e.agentStore || (Int(Torch.version.prefix(while: \.isNumber)) ?? 0) < 2
        let port = e.agentStore && ownStore ? e.masterPort + 2 : e.masterPort
        try self.init(backend: backend, host: e.masterAddress, port: port, rank: e.rank, worldSize: e.worldSize,
                      hostsStore: e.rank == 0 && ownStore, prefix: "realign/attempt_\(e.attempt)/", timeout: timeout)
    }

    deinit { ct_pg_free(handle) }

    /// Reduces each tensor in place over all ranks (the same shapes, in the same order, on every rank).
    public func allReduce(_ tensors: [Tensor], _ op: Reduction = .sum) throws {
        guard !tensors.isEmpty else { return }
        var handles: [ct_tensor?] = tensors.map(\.handle)
        try check(ct_pg_allreduce(handle, &handles, Int32(handles.count), op.rawValue))
    }

    /// Overwrites each tensor with rank `root`'s.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        guard !tensors.isEmpty else { return }
        var handles: [ct_tensor?] = tensors.map(\.handle)
        try check(ct_pg_broadcast(handle, &handles, Int32(handles.count), Int32(root)))
    }

    /// Every rank's `tensor` (the same shape on each), in rank order.
    public func allGather(_ tensor: Tensor) throws -> [Tensor] {
        try resultList { ct_pg_allgather(handle, tensor.handle, $0, $1) }
    }

    public func barrier() throws { try check(ct_pg_barrier(handle)) }

    /// Every rank's bytes, in rank order (of any lengths): the lengths first, then the bytes padded to the longest,
    /// as torch.distributed.all_gather_object does it.
    public func allGather(bytes: [UInt8]) throws -> [[UInt8]] {
        let lengths = try allGather(Tensor([Int64(bytes.count)])).map { Int(try $0.item()) }
        let longest = lengths.max() ?? 0
        var padded = bytes + [UInt8](repeating: 0, count: longest - bytes.count)
        if padded.isEmpty { padded = [0] }
        let parts = try allGather(Tensor(padded))
        return try zip(parts, lengths).map { part, length in Array(try part.bytes().prefix(length)) }
    }

    /// A key of the rendezvous store (under the group's prefix).
    public func storeSet(_ key: String, _ value: [UInt8]) throws {
        try check(ct_pg_store_set(handle, key, value, Int64(value.count)))
    }

    /// Waits up to the group's timeout for the key.
    public func storeGet(_ key: String) throws -> [UInt8] {
        var p: UnsafeMutablePointer<UInt8>? = nil
        var n: Int64 = 0
        try check(ct_pg_store_get(handle, key, &p, &n))
        defer { ct_free_bytes(p) }
        return Array(UnsafeBufferPointer(start: p, count: Int(n)))
    }

    public func storeHas(_ key: String) throws -> Bool {
        var present = false
        try check(ct_pg_store_check(handle, key, &present))
        return present
    }
}
