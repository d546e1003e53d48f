import CTorch

/// Views, indexing and joining.
extension Tensor {
    public func reshape(_ shape: [Int]) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_reshape(handle, $0.baseAddress, Int32(shape.count), out) } }
    }
    public func reshape(_ shape: Int...) throws -> Tensor { try reshape(shape) }
    public func view(_ shape: [Int]) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_view(handle, $0.baseAddress, Int32(shape.count), out) } }
    }
    public func view(_ shape: Int...) throws -> Tensor { try view(shape) }
    public func permute(_ dims: [Int]) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_permute(handle, $0.baseAddress, Int32(dims.count), out) } }
    }
    public func permute(_ dims: Int...) throws -> Tensor { try permute(dims) }
    public func transpose(_ d0: Int, _ d1: Int) throws -> Tensor { try result { ct_transpose(handle, Int64(d0), Int64(d1), $0) } }
    /// Transpose of the last two dimensions.
    public var mT: Tensor { get throws { try transpose(-2, -1) } }
    public func flatten(start: Int = 0, end: Int = -1) throws -> Tensor { try result { ct_flatten(handle, Int64(start), Int64(end), $0) } }
    public func squeeze() throws -> Tensor { try result { ct_squeeze(handle, $0) } }
    public func squeeze(_ dim: Int) throws -> Tensor { try result { ct_squeeze_dim(handle, Int64(dim), $0) } }
    public func unsqueeze(_ dim: Int) throws -> Tensor { try result { ct_unsqueeze(handle, Int64(dim), $0) } }
    public func expand(_ shape: [Int]) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_expand(handle, $0.baseAddress, Int32(shape.count), out) } }
    }
    public func expand(as other: Tensor) throws -> Tensor { try expand(other.shape) }
    public func contiguous() throws -> Tensor { isContiguous ? self : try result { ct_contiguous(handle, $0) } }
    public func narrow(_ dim: Int, start: Int, length: Int) throws -> Tensor {
        try result { ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }
    /// Elements start..<end (clamped like Python slicing; negative values count from the end) with a step.
    public func slice(_ dim: Int, _ start: Int? = nil, _ end: Int? = nil, step: Int = 1) throws -> Tensor {
        try result { ct_slice(handle, Int64(dim), Int64(start ?? 0), Int64(end ?? Int.max), Int64(step), $0) }
    }
    public func select(_ dim: Int, _ index: Int) throws -> Tensor { try result { ct_select(handle, Int64(dim), Int64(index), $0) } }
    public func indexSelect(_ dim: Int, _ index: Tensor) throws -> Tensor {
        try result { ct_index_select(handle, Int64(dim), index.handle, $0) }
    }
    public func gather(_ dim: Int, _ index: Tensor) throws -> Tensor { try result { ct_gather(handle, Int64(dim), index.handle, $0) } }
    public func scatter(_ dim: Int, _ index: Tensor, _ src: Tensor) throws -> Tensor {
        try result { ct_scatter(handle, Int64(dim), index.handle, src.handle, $0) }
    }
    public func scatterAdd(_ dim: Int, _ index: Tensor, _ src: Tensor) throws -> Tensor {
        try result { ct_scatter_add(handle, Int64(dim), index.handle, src.handle, $0) }
    }
    public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
        try result { ct_masked_fill(handle, mask.handle, scalar(value), $0) }
    }
    public func maskedFill(_ mask: Tensor, _ value: Int) throws -> Tensor {
        try result { ct_masked_fill(handle, mask.handle, scalar(value), $0) }
    }
    /// Copies `source`'s elements, in order, into the positions where `mask` is true.
    public func maskedScatter(_ mask: Tensor, _ source: Tensor) throws -> Tensor {
        try result { ct_masked_scatter(handle, mask.handle, source.handle, $0) }
    }
    public func maskedSelect(_ mask: Tensor) throws -> Tensor { try result { ct_masked_select(handle, mask.handle, $0) } }
    /// Indices of non-zero elements, [n, rank].
    public func nonzero() throws -> Tensor { try result { ct_nonzero(handle, $0) } }
    public func repeating(_ repeats: [Int]) throws -> Tensor {
        try result { out in repeats.withUnsafeBufferPointer { ct_repeat(handle, $0.baseAddress, Int32(repeats.count), out) } }
    }
    public func tril(_ diagonal: Int = 0) throws -> Tensor { try result { ct_tril(handle, Int64(diagonal), $0) } }
    public func triu(_ diagonal: Int = 0) throws -> Tensor { try result { ct_triu(handle, Int64(diagonal), $0) } }
    public func flip(_ dims: [Int]) throws -> Tensor {
        try result { out in dims.withUnsafeBufferPointer { ct_flip(handle, $0.baseAddress, Int32(dims.count), out) } }
    }
    public func roll(_ shift: Int, dim: Int) throws -> Tensor { try result { ct_roll(handle, Int64(shift), Int64(dim), $0) } }

    public enum PadMode: Int32, Sendable { case constant = 0, reflect = 1, replicate = 2 }
    /// Pads as torch.nn.functional.pad: `pads` are (last dim left, last dim right, next-to-last left, ...).
    public func pad(_ pads: [Int], mode: PadMode = .constant, value: Double = 0) throws -> Tensor {
        try result { out in pads.withUnsafeBufferPointer { ct_pad(handle, $0.baseAddress, Int32(pads.count), mode.rawValue, value, out) } }
    }

    public func split(_ size: Int, dim: Int = 0) throws -> [Tensor] {
        try resultList { ct_split(handle, Int64(size), Int64(dim), $0, $1) }
    }
    public func split(sizes: [Int], dim: Int = 0) throws -> [Tensor] {
        try resultList { arr, n in sizes.withUnsafeBufferPointer { ct_split_sizes(handle, $0.baseAddress, Int32(sizes.count), Int64(dim), arr, n) } }
    }
    public func chunk(_ chunks: Int, dim: Int = 0) throws -> [Tensor] {
        try resultList { ct_chunk(handle, Int64(chunks), Int64(dim), $0, $1) }
    }

    public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let handles: [ct_tensor?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try result { out in handles.withUnsafeBufferPointer { ct_cat($0.baseAddress, Int32(handles.count), Int64(dim), out) } }
        }
    }
    public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let handles: [ct_tensor?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try result { out in handles.withUnsafeBufferPointer { ct_stack($0.baseAddress, Int32(handles.count), Int64(dim), out) } }
        }
    }
    /// Elementwise `condition ? a : b`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try result { ct_where(condition.handle, a.handle, b.handle, $0) }
    }
}
