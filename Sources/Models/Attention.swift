import Torch

/// How a decoder's attention is masked: plainly causal (the fused kernel's fast path), or an additive mask that
/// also hides padding and accounts for cached positions.
public struct AttentionMask: @unchecked Sendable {
    var causal: Bool
    /// [B, 1, L, T]: 0 where attention is allowed, the dtype's lowest value elsewhere (as transformers' eager
    /// masks, so fully padded rows stay finite).
    var additive: Tensor?

    static let none = AttentionMask(causal: false, additive: nil)

    /// For `queryLength` new positions after `offset` cached ones; `padding` [B, offset + queryLength] holds 1
    /// for real tokens and 0 for padding (nil: no padding).
    public static func make(padding: Tensor?, queryLength: Int, offset: Int, dtype: DType, device: Device) throws -> AttentionMask {
        let total = offset + queryLength
        let hasPadding = try padding.map { try $0.eq(0).any().itemInt() != 0 } ?? false
        if !hasPadding {
            if offset == 0 { return AttentionMask(causal: queryLength > 1, additive: nil) }
            if queryLength == 1 { return .none }
        }
        let keys = try Tensor.arange(0, total, device: device).view(1, 1, 1, total)
        let queries = try (Tensor.arange(0, queryLength, device: device) + offset).view(1, 1, queryLength, 1)
        var keep = try keys.le(queries)
        if hasPadding, let padding {
            keep = try keep.logicalAnd(padding.ne(0).view(padding.size(0), 1, 1, total))
        }
        let shape = [keep.size(0), 1, queryLength, total]
        let additive = try Tensor.zeros(shape, dtype: dtype, device: device).maskedFill(keep.expand(shape).logicalNot(), lowest(dtype))
        return AttentionMask(causal: false, additive: additive)
    }

    /// torch.finfo(dtype).min
    static func lowest(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: -65504
        case .bfloat16: -3.3895313892515355e38
        case .float64: -Double.greatestFiniteMagnitude
        default: -Double(Float.greatestFiniteMagnitude)
        }
    }
}

/// Keys and values of past positions, per layer, in preallocated buffers [B, kvHeads, capacity, headDim].
public final class KVCache: @unchecked Sendable {
    final class Layer: @unchecked Sendable {
        unowned let cache: KVCache
        var keys: Tensor?
        var values: Tensor?

        init(cache: KVCache) { self.cache = cache }

        /// Stores the new positions after the committed ones and returns all positions so far.
        func append(keys k: Tensor, values v: Tensor) throws -> (Tensor, Tensor) {
            let start = cache.length, n = k.size(2), end = start + n
            if keys == nil || keys!.size(2) < end {
                let capacity = max(end, cache.capacity)
                var shape = k.shape
                shape[2] = capacity
                let newKeys = try Tensor.zeros(shape, dtype: k.dtype, device: k.device)
                let newValues = try Tensor.zeros(shape, dtype: v.dtype, device: v.device)
                if let keys, let values, start > 0 {
                    try newKeys.narrow(2, start: 0, length: start).copyFrom(keys.narrow(2, start: 0, length: start))
                    try newValues.narrow(2, start: 0, length: start).copyFrom(values.narrow(2, start: 0, length: start))
                }
                keys = newKeys
                values = newValues
            }
            try withNoGrad {
                try keys!.narrow(2, start: start, length: n).copyFrom(k)
                try values!.narrow(2, start: start, length: n).copyFrom(v)
            }
            return (try keys!.narrow(2, start: 0, length: end), try values!.narrow(2, start: 0, length: end))
        }
    }

    /// Positions stored so far.
    public private(set) var length = 0
    let capacity: Int
    private(set) var layers: [Layer] = []

    /// A cache for `layers` decoder layers that expects up to `capacity` positions (it grows beyond if needed).
    public init(layers count: Int, capacity: Int) {
        self.capacity = capacity
        layers = (0..<count).map { _ in Layer(cache: self) }
    }

    func commit(_ n: Int) { length += n }

    /// Forgets the positions from `n` on (their slots are overwritten by the next append).
    func truncate(to n: Int) {
        precondition(n >= 0 && n <= length, "a cache of \(length) positions cannot keep \(n)")
        length = n
    }
}
