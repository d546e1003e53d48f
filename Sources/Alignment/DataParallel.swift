import Foundation
import JSON
import Torch

/// What data-parallel training exchanges between ranks over a c10d process group: the starting weights, the
/// summed gradients of a step, its metrics and the reference log-probs each rank computed for its share.
enum DataParallel {
    /// DDP's default bucket: gradients travel as flat buffers of about this many bytes, a few calls per step
    /// instead of one per tensor.
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

    /// Sums every parameter's gradient over the ranks, in place. A rank that saw no example of a tensor sends
    /// zeros; a tensor no rank produced a gradient for keeps none (as in one process, where AdamW skips it).
    static func sumGradients(_ parameters: [Tensor], group: ProcessGroup, bucketBytes: Int = defaultBucketBytes) throws {
        try withNoGrad {
            let present = try Tensor(try parameters.map { try $0.grad == nil ? 0.0 : 1.0 })
            try group.allReduce([present])
            let seen = try present.toArray(Double.self)
            for bucket in buckets(parameters, bytes: bucketBytes) {
                let flat = try Tensor.cat(bucket.map { i in try (parameters[i].grad ?? Tensor.zeros(like: parameters[i])).reshape([-1]) })
                try group.allReduce([flat])
                var offset = 0
                for i in bucket {
                    let p = parameters[i]
                    if seen[i] > 0 {
                        let summed = try flat.narrow(0, start: offset, length: p.count).view(p.shape)
                        if let g = try p.grad { try g.copyFrom(summed) } else { try p.setGrad(summed.contiguous()) }
                    }
                    offset += p.count
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
