import CTorch

/// Sums the gradients of trainable tensors over a process group while the step's last backward still runs, as
/// DDP's Reducer does: the tensors are grouped into flat buckets in reverse order (the order backward produces
/// their gradients), the first one small so that communication starts early; a bucket's all-reduce starts as soon
/// as its gradients are accumulated and every bucket before it has started (one order on every rank).
///
/// Per optimizer step: `arm()` before the last micro-batch's backward, `finish()` after it (also when this rank had
/// nothing to run backward on: it then sends what it holds). Earlier micro-batches accumulate locally.
public final class GradientReducer {
    /// DDP's defaults: 25 MiB buckets, the first 1 MiB.
    public static let defaultBucketBytes = 25 << 20
    public static let defaultFirstBucketBytes = 1 << 20

    public let bucketCount: Int
    let handle: ct_grad_reducer
    let group: ProcessGroup  // the reducer's collectives run on it: keep it alive

    public init(_ parameters: [Tensor], group: ProcessGroup, bucketBytes: Int = defaultBucketBytes,
                firstBucketBytes: Int = defaultFirstBucketBytes) throws {
        let bucketOf = GradientReducer.assignBuckets(parameters, bytes: bucketBytes, firstBytes: firstBucketBytes)
        var handles: [ct_tensor?] = parameters.map(\.handle)
        var out: ct_grad_reducer? = nil
        try check(ct_grad_reducer_new(group.handle, &handles, Int32(handles.count), bucketOf.map(Int64.init), &out))
        handle = out!
        self.group = group
        bucketCount = (bucketOf.max() ?? -1) + 1
    }

    deinit { ct_grad_reducer_free(handle) }

    /// The next backward is the step's last: its gradients travel as they become ready.
    public func arm() throws { try check(ct_grad_reducer_arm(handle)) }

    /// Starts what the backward did not, waits, and leaves every gradient summed over the ranks (a tensor one rank
    /// lacks a gradient for counts as zeros there; one no rank has keeps none). Returns how many buckets started
    /// during the backward.
    @discardableResult
    public func finish() throws -> Int {
        var started: Int32 = 0
        try check(ct_grad_reducer_finish(handle, &started))
        return Int(started)
    }

    /// Each tensor's bucket: walking the tensors from the last, buckets fill to `bytes` (the first to `firstBytes`)
    /// and hold one dtype and device each.
    static func assignBuckets(_ parameters: [Tensor], bytes: Int, firstBytes: Int) -> [Int] {
        var bucketOf = [Int](repeating: 0, count: parameters.count)
        var bucket = 0
        var filled = 0
        var last: Tensor? = nil
        for i in parameters.indices.reversed() {
            let p = parameters[i]
            let size = p.byteCount
            let limit = bucket == 0 ? firstBytes : bytes
            if let l = last, filled + size > limit || l.dtype != p.dtype || l.device != p.device {
                bucket += 1
                filled = 0
            }
            bucketOf[i] = bucket
            filled += size
            last = p
        }
        return bucketOf
    }
}
