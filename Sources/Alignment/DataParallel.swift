import Foundation
import JSON
import Torch

/// What data-parallel training exchanges between ranks over a c10d process group, besides the gradients (Torch's
/// GradientReducer): the starting weights and a step's metrics.
enum DataParallel {
    /// Weights travel as flat buffers of about this many bytes (DDP's bucket), a few calls instead of one per tensor.
    static let defaultBucketBytes = 25 << 20

    /// The trainable tensors of rank 0 on every rank, so that all start from the same weights.
    static func broadcastParameters(_ parameters: [Tensor], group: ProcessGroup, bucketBytes: Int = defaultBucketBytes) throws {
        try withNoGrad {
            for bucket in buckets(parameters, bytes: bucketBytes) {
                let tensors = bucket.map { parameters[$0] }
                let flat = try Tensor.cat(tensors.map { try $0.detach().reshape([-1]) })
                try group.broadcast([flat], root: 0)
                var offset = 0
                for t in tensors {
                    try t.copyFrom(flat.narrow(0, start: offset, length: t.count).view(t.shape))
                    offset += t.count
                }
            }
        }
    }

    /// The step's metric sums added over the ranks (a rank without examples may lack keys: they count as 0).
    static func sumMetrics(_ sums: [String: Tensor], pairs: Int, group: ProcessGroup, device: Device) throws -> (sums: [String: Tensor], pairs: Int) {
        let mine = Array(sums.keys.sorted().joined(separator: "\n").utf8)
        var keys = Set<String>()
        for bytes in try group.allGather(bytes: mine) where !bytes.isEmpty {
            for k in String(decoding: bytes, as: UTF8.self).split(separator: "\n") { keys.insert(String(k)) }
        }
        let ordered = keys.sorted()
        let values = try Tensor.stack(ordered.map { try (sums[$0]?.detach() ?? Tensor.zeros([])).to(dtype: .float64).to(device: .cpu).reshape([]) }
                                      + [Tensor([Double(pairs)]).reshape([])])
        try group.allReduce([values])
        var out: [String: Tensor] = [:]
        for (i, k) in ordered.enumerated() { out[k] = try values.select(0, i).to(device: device) }
        return (out, Int(try values.select(0, ordered.count).item()))
    }

    /// The tensors' indices in order, grouped into buckets of about `limit` bytes (one dtype per bucket).
    static func buckets(_ parameters: [Tensor], bytes limit: Int = defaultBucketBytes) -> [[Int]] {
        var out: [[Int]] = []
        var current: [Int] = []
        var bytes = 0
        for (i, p) in parameters.enumerated() {
            let size = p.count * p.dtype.byteSize
            if !current.isEmpty && (bytes + size > limit || parameters[current[0]].dtype != p.dtype) {
                out.append(current)
                current = []
                bytes = 0
            }
            current.append(i)
            bytes += size
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
