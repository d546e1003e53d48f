import Foundation
import Testing
import Torch
@testable import Alignment

/// What ranks exchange, with two ranks as threads over Gloo on loopback and buckets small enough that the
/// tensors span several: weights broadcast from rank 0, gradients summed during the last backward (a tensor one
/// rank lacks a gradient for counts as zeros there; one no rank has stays without), metrics summed with keys a
/// rank lacks.
@Suite struct DataParallelTests {
    final class Results: @unchecked Sendable {
        let lock = NSLock()
        var byRank: [Int: [String: [Double]]] = [:]
        var errors: [String] = []
        func set(_ rank: Int, _ key: String, _ value: [Double]) { lock.lock(); byRank[rank, default: [:]][key] = value; lock.unlock() }
        func fail(_ e: Error) { lock.lock(); errors.append("\(e)"); lock.unlock() }
    }

    @Test func ranksExchangeWeightsGradientsAndMetrics() throws {
        try #require(ProcessGroup.hasGloo)
        let port = try ProcessGroup.freeLoopbackPort()
        let results = Results()
        let done = DispatchGroup()
        for rank in 0..<2 {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    let group = try ProcessGroup(host: "127.0.0.1", port: port, rank: rank, worldSize: 2, hostsStore: rank == 0,
                                                 interface: "lo", timeout: 20)
                    let r = Double(rank)
                    // Four float32 tensors of 3, 5, 2 and 4 values; 16-byte buckets split them [0], [1], [2, ...].
                    let params = try [3, 5, 2, 4].enumerated().map { i, n in
                        try Tensor((0..<n).map { Double($0 + 10 * i) + 100 * r }).to(dtype: .float32).requiresGrad(true)
                    }
                    #expect(DataParallel.buckets(params, bytes: 16).count >= 3)
                    try DataParallel.broadcastParameters(params, group: group, bucketBytes: 16)
                    results.set(rank, "weights", try params.flatMap { try $0.detach().toArray(Float.self).map(Double.init) })
                    // Gradients summed during the step's last backward. 16-byte buckets, filled from the last
                    // tensor: [3], [2], [1], [0]. Micro-batch 1 (not armed): tensor 1 on rank 1 only. Micro-batch 2
                    // (armed): tensors 0 and 3 on both ranks; tensor 2 on none.
                    let reducer = try GradientReducer(params, group: group, bucketBytes: 16, firstBucketBytes: 16)
                    #expect(reducer.bucketCount == 4)
                    if rank == 1 { try (params[1] * (r + 1)).sum().backward() }
                    try reducer.arm()
                    try ((params[0] * (r + 1)).sum() + (params[3] * (r + 1)).sum()).backward()
                    // Bucket 0 (tensor 3) starts in the backward; bucket 1 waits for tensor 2, which never comes.
                    results.set(rank, "started", [Double(try reducer.finish())])
                    for (i, p) in params.enumerated() {
                        results.set(rank, "grad\(i)", try p.grad.map { try $0.toArray(Float.self).map(Double.init) } ?? [-1])
                    }
                    // The next step: every tensor in the armed backward, so every bucket starts there.
                    for p in params { try p.zeroGrad() }
                    try reducer.arm()
                    try params.map { try ($0 * (r + 1)).sum() }.reduce(Tensor.zeros([]), +).backward()
                    results.set(rank, "started2", [Double(try reducer.finish())])
                    results.set(rank, "step2", try params.flatMap { try $0.grad!.toArray(Float.self).map(Double.init) })
                    // Not armed: everything after the backward.
                    for p in params { try p.zeroGrad() }
                    try (params[2] * (r + 1)).sum().backward()
                    results.set(rank, "started3", [Double(try reducer.finish())])
                    results.set(rank, "step3", try params.map { try $0.grad?.sum().item() ?? -1 })
                    let sums = rank == 0 ? ["loss": try Tensor([1.5]).reshape([])] : ["loss": try Tensor([2.0]).reshape([]), "extra": try Tensor([4.0]).reshape([])]
                    let (merged, pairs) = try DataParallel.sumMetrics(sums, pairs: 2 + rank, group: group, device: .cpu)
                    results.set(rank, "metrics", [try merged["loss"]!.item(), try merged["extra"]!.item(), Double(pairs), Double(merged.count)])
                } catch {
                    results.fail(error)
                }
            }.start()
        }
        done.wait()
        #expect(results.errors.isEmpty, "\(results.errors)")
        let rank0Weights = [0.0, 1, 2, 10, 11, 12, 13, 14, 20, 21, 30, 31, 32, 33]
        for rank in 0..<2 {
            let got = results.byRank[rank] ?? [:]
            #expect(got["weights"] == rank0Weights, "rank \(rank) starts from rank 0's weights")
            #expect(got["grad0"] == [3, 3, 3], "1 + 2 from the two ranks")
            #expect(got["grad1"] == [2, 2, 2, 2, 2], "rank 1's gradient, rank 0 counting zeros")
            #expect(got["grad2"] == [-1], "no rank had one: it stays without")
            #expect(got["grad3"] == [3, 3, 3, 3])
            #expect(got["started"] == [1], "only the first bucket could start during the backward")
            #expect(got["started2"] == [4])
            #expect(got["step2"] == [Double](repeating: 3, count: 14))
            #expect(got["started3"] == [0])
            #expect(got["step3"] == [-1, -1, 6, -1])
            #expect(got["metrics"] == [3.5, 4, 5, 2])
        }
    }
}
