import CTorch

/// Reductions along dimensions (an empty `dims` reduces over every element).
extension Tensor {
    public func sum(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_sum(handle, $0.baseAddress, Int32(dims.count), keepDim, dtype?.rawValue ?? -1, out) } }
    }
    public func sum(_ dim: Int, keepDim: Bool = false) throws -> Tensor { try sum([dim], keepDim: keepDim) }
    public func mean(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_mean(handle, $0.baseAddress, Int32(dims.count), keepDim, out) } }
    }
    public func mean(_ dim: Int, keepDim: Bool = false) throws -> Tensor { try mean([dim], keepDim: keepDim) }
    public func prod() throws -> Tensor { try result { ct_prod(handle, $0) } }
    /// Largest element.
    public func max() throws -> Tensor { try result { ct_max_all(handle, $0) } }
    public func min() throws -> Tensor { try result { ct_min_all(handle, $0) } }
    /// Largest values along `dim` and their indices.
    public func max(_ dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try result2 { ct_max_dim(handle, Int64(dim), keepDim, $0, $1) }
    }
    public func min(_ dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try result2 { ct_min_dim(handle, Int64(dim), keepDim, $0, $1) }
    }
    /// Index of the largest element (of the flattened tensor when `dim` is nil).
    public func argmax(_ dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
        try result { ct_argmax(handle, Int64(dim ?? 0), dim != nil, keepDim, $0) }
    }
    public func argmin(_ dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
        try result { ct_argmin(handle, Int64(dim ?? 0), dim != nil, keepDim, $0) }
    }
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        try result2 { ct_topk(handle, Int64(k), Int64(dim), largest, sorted, $0, $1) }
    }
    public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        try result2 { ct_sort(handle, Int64(dim), descending, stable, $0, $1) }
    }
    public func logsumexp(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_logsumexp(handle, $0.baseAddress, Int32(dims.count), keepDim, out) } }
    }
    public func logsumexp(_ dim: Int, keepDim: Bool = false) throws -> Tensor { try logsumexp([dim], keepDim: keepDim) }
    /// Variance (unbiased by default, as torch.var).
    public func variance(_ dims: [Int] = [], unbiased: Bool = true, keepDim: Bool = false) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_var(handle, $0.baseAddress, Int32(dims.count), unbiased, keepDim, out) } }
    }
    /// The `ord`-norm of the elements (torch.linalg.vector_norm).
    public func norm(_ ord: Double = 2, dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_vector_norm(handle, ord, $0.baseAddress, Int32(dims.count), keepDim, out) } }
    }
    public func cumsum(_ dim: Int) throws -> Tensor { try result { ct_cumsum(handle, Int64(dim), $0) } }
    public func all() throws -> Tensor { try result { ct_all(handle, $0) } }
    public func any() throws -> Tensor { try result { ct_any(handle, $0) } }
    public func softmax(_ dim: Int, dtype: DType? = nil) throws -> Tensor {
        try result { ct_softmax(handle, Int64(dim), dtype?.rawValue ?? -1, $0) }
    }
    public func logSoftmax(_ dim: Int, dtype: DType? = nil) throws -> Tensor {
        try result { ct_log_softmax(handle, Int64(dim), dtype?.rawValue ?? -1, $0) }
    }
}
