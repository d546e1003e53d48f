import Foundation
import JSON
import Torch

/// What data-parallel training exchanges between ranks over a c10d process group: the starting weights, the
/// summed gradients of a step, its metrics and the reference log-probs each rank computed for its share.
enum DataParallel {
    /// DDP's default bucket: gradients travel as flat buffers of about this many bytes, a few calls per step
    /// instead of one per tensor.
    static let bucketBytes = 25 << 20

    /// The trainable tensors of rank 0 on every rank, so that all start from the same weights.
    static func broadcastParameters(_ parameters: [Tensor], group: ProcessGroup) throws {
        try withNoGrad {
            for bucket in buckets(parameters) {
                let flat = try Tensor.cat(bucket.map { try $0.detach().reshape([-1]) })
                try group.broadcast([flat], root: 0)
                try scatter(flat, into: bucket)
            }
        }
    }

    /// Sums every parameter's gradient over the ranks, in place. A rank that saw no example of a tensor sends
    /// zeros; a tensor no rank produced a gradient for keeps none (as in one process, where AdamW skips it).
    static func sumGradients(_ parameters: [Tensor], group: ProcessGroup) throws {
        try withNoGrad {
            let present = try Tensor(try parameters.map { try $0.grad == nil ? 0.0 : 1.0 })
            try group.allReduce([present])
            let seen = try present.toArray(Double.self)
            for bucket in buckets(parameters) {
                let flat = try Tensor.cat(bucket.map { p in try (p.grad ?? Tensor.zeros(like: p)).reshape([-1]) })
                try group.allReduce([flat])
                var offset = 0
                for p in bucket {
                    let n = p.count
                    let index = parameters.firstIndex { $0 === p }!
                    if seen[index] > 0 {
                        let summed = try flat.narrow(0, start: offset, length: n).view(p.shape)
                        if let g = try p.grad { try g.copyFrom(summed) } else { try p.setGrad(summed.contiguous()) }
                    }
                    offset += n
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

    /// Trainable tensors in order, grouped into buckets of about `bucketBytes` (one dtype per bucket).
    static func buckets(_ parameters: [Tensor]) -> [[Tensor]] {
        var out: [[Tensor]] = []
        var current: [Tensor] = []
        var bytes = 0
        for p in parameters {
            let size = p.count * p.dtype.byteSize
            if !current.isEmpty && (bytes + size > bucketBytes || current[0].dtype != p.dtype) {
                out.append(current)
                current = []
                bytes = 0
            }
            current.append(p)
            bytes += size
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static func scatter(_ flat: Tensor, into tensors: [Tensor]) throws {
        var offset = 0
        for t in tensors {
            try t.copyFrom(flat.narrow(0, start: offset, length: t.count).view(t.shape))
            offset += t.count
        }
    }
}
