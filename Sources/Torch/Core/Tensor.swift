import CTorch

/// A libtorch tensor. Owns one handle of the shim and frees it when the last reference goes.
public final class Tensor: @unchecked Sendable {
    public let handle: ct_tensor

    init(handle: ct_tensor) { self.handle = handle }
    deinit { ct_free(handle) }

    // MARK: information

    public var rank: Int { Int(ct_dim(handle)) }
    public var shape: [Int] {
        let n = rank
        return [Int](unsafeUninitializedCapacity: n) { buf, count in
            ct_sizes(handle, buf.baseAddress)
            count = n
        }
    }
    public var strides: [Int] {
        let n = rank
        return [Int](unsafeUninitializedCapacity: n) { buf, count in
            ct_strides(handle, buf.baseAddress)
            count = n
        }
    }
    /// Size along one dimension (negative counts from the end).
    public func size(_ dim: Int) -> Int {
        let s = shape
        return s[dim < 0 ? dim + s.count : dim]
    }
    public var count: Int { Int(ct_numel(handle)) }
    public var dtype: DType {
        // Tensors of other libtorch types (complex, quantized) are never made through this API.
        DType(rawValue: ct_dtype(handle)) ?? .float32
    }
    public var device: Device {
        var kind: Int32 = 0
        var index: Int32 = 0
        ct_device(handle, &kind, &index)
        return kind == Int32(CT_CUDA) ? .cuda(Int(index)) : .cpu
    }
    public var isContiguous: Bool { ct_is_contiguous(handle) }
    public var byteCount: Int { count * dtype.byteSize }

    // MARK: creation

    public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_empty($0.baseAddress, Int32(shape.count), dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_zeros($0.baseAddress, Int32(shape.count), dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_ones($0.baseAddress, Int32(shape.count), dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_full($0.baseAddress, Int32(shape.count), scalar(value), dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func full(_ shape: [Int], _ value: Int, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_full($0.baseAddress, Int32(shape.count), scalar(value), dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func zeros(like t: Tensor) throws -> Tensor { try zeros(t.shape, dtype: t.dtype, device: t.device) }
    public static func ones(like t: Tensor) throws -> Tensor { try ones(t.shape, dtype: t.dtype, device: t.device) }

    /// Integers start..<end by step (int64), as torch.arange with integer arguments.
    public static func arange(_ start: Int = 0, _ end: Int, step: Int = 1, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
        try result { ct_arange(scalar(start), scalar(end), scalar(step), dtype.rawValue, device.kind, device.index, $0) }
    }
    public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { ct_arange(scalar(start), scalar(end), scalar(step), dtype.rawValue, device.kind, device.index, $0) }
    }
    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { ct_linspace(start, end, Int64(steps), dtype.rawValue, device.kind, device.index, $0) }
    }
    public static func eye(_ n: Int, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { ct_eye(Int64(n), dtype.rawValue, device.kind, device.index, $0) }
    }
    /// Standard normal samples; `generator` nil uses the default (seeded by `Torch.manualSeed`).
    public static func randn(_ shape: [Int], generator: Generator? = nil, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_randn($0.baseAddress, Int32(shape.count), generator?.handle, dtype.rawValue, device.kind, device.index, out) } }
    }
    /// Uniform samples in [0, 1).
    public static func rand(_ shape: [Int], generator: Generator? = nil, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_rand($0.baseAddress, Int32(shape.count), generator?.handle, dtype.rawValue, device.kind, device.index, out) } }
    }
    /// Integers in low..<high.
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], generator: Generator? = nil, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_randint(Int64(low), Int64(high), $0.baseAddress, Int32(shape.count), generator?.handle, dtype.rawValue, device.kind, device.index, out) } }
    }
    public static func randperm(_ n: Int, generator: Generator? = nil) throws -> Tensor {
        try result { ct_randperm(Int64(n), generator?.handle, $0) }
    }

    /// A CPU tensor holding a copy of `values` (row-major) with the given shape (default: 1-D).
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) throws {
        let shape = shape ?? [values.count]
        let dtype = T.dtype
        var out: ct_tensor? = nil
        // Int is 64-bit here, so [Int] bytes are an int64 buffer.
        let status = values.withUnsafeBytes { raw in
            shape.withUnsafeBufferPointer { ct_from_data(raw.baseAddress, raw.count, $0.baseAddress, Int32(shape.count), dtype.rawValue, &out) }
        }
        try check(status)
        self.init(handle: out!)
    }

    /// A CPU tensor from raw little-endian bytes of the given dtype and shape.
    /// A tensor over `data` without a copy; `owner` is kept alive until the tensor's storage goes.
    static func over(_ data: UnsafeMutableRawPointer, shape: [Int], dtype: DType, owner: AnyObject) throws -> Tensor {
        let context = Unmanaged.passRetained(owner).toOpaque()
        return try result { out in
            shape.withUnsafeBufferPointer {
                ct_from_blob(data, $0.baseAddress, Int32(shape.count), dtype.rawValue, { Unmanaged<AnyObject>.fromOpaque($0!).release() }, context, out)
            }
        }
    }

    public static func fromBytes(_ bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws -> Tensor {
        try result { out in shape.withUnsafeBufferPointer { ct_from_data(bytes.baseAddress, bytes.count, $0.baseAddress, Int32(shape.count), dtype.rawValue, out) } }
    }

    /// A 0-dimensional tensor.
    public static func scalarTensor(_ v: Double, dtype: DType = .float32) throws -> Tensor { try full([], v, dtype: dtype) }

    // MARK: reading back

    /// The elements in row-major order. The tensor must already have the element type's dtype.
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws -> [T] {
        guard dtype == T.dtype else {
            throw TorchError("toArray(\(T.self)) needs a \(T.dtype) tensor, this one is \(dtype); convert it with to(dtype:) first")
        }
        let n = count
        let bytes = n * dtype.byteSize
        return try [T](unsafeUninitializedCapacity: n) { buf, initialized in
            try check(ct_copy_to_buffer(handle, buf.baseAddress, bytes))
            initialized = n
        }
    }

    /// The raw bytes (contiguous, row-major, CPU) of the tensor's own dtype.
    public func bytes() throws -> [UInt8] {
        let n = byteCount
        return try [UInt8](unsafeUninitializedCapacity: n) { buf, initialized in
            try check(ct_copy_to_buffer(handle, buf.baseAddress, n))
            initialized = n
        }
    }

    /// The value of a one-element tensor.
    public func item() throws -> Double {
        var v = 0.0
        try check(ct_item_double(handle, &v))
        return v
    }
    public func itemInt() throws -> Int {
        var v: Int64 = 0
        try check(ct_item_int64(handle, &v))
        return Int(v)
    }
    public func itemFloat() throws -> Float { Float(try item()) }

    // MARK: copies and conversion

    /// A second handle to the same tensor (shares data and autograd identity).
    public func alias() throws -> Tensor { try result { ct_shallow_clone(handle, $0) } }
    /// A copy with its own storage (differentiable, like torch.clone).
    public func clone() throws -> Tensor { try result { ct_clone(handle, $0) } }
    public func to(dtype: DType) throws -> Tensor {
        if dtype == self.dtype { return self }
        return try result { ct_to_dtype(handle, dtype.rawValue, $0) }
    }
    public func to(device: Device) throws -> Tensor {
        if device == self.device { return self }
        return try result { ct_to_device(handle, device.kind, device.index, $0) }
    }
    public func to(_ device: Device, dtype: DType) throws -> Tensor { try to(device: device).to(dtype: dtype) }

    /// Replaces this tensor's data (shape, dtype, storage) by `other`'s while keeping its identity — what
    /// PyTorch's `param.data = other` does.
    public func setData(_ other: Tensor) throws { try check(ct_set_data(handle, other.handle)) }

    /// True when shapes and all elements are equal.
    public func equal(_ other: Tensor) throws -> Bool {
        var r = false
        try check(ct_equal(handle, other.handle, &r))
        return r
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { takeString(ct_to_string(handle)) }
}

/// A seedable random generator (CPU).
public final class Generator: @unchecked Sendable {
    let handle: ct_generator
    public init(seed: UInt64) throws {
        var g: ct_generator? = nil
        try check(ct_generator_new(seed, &g))
        handle = g!
    }
    deinit { ct_generator_free(handle) }
    public func seed(_ s: UInt64) throws { try check(ct_generator_set_seed(handle, s)) }
    public func state() throws -> Tensor { try result { ct_generator_get_state(handle, $0) } }
    public func setState(_ s: Tensor) throws { try check(ct_generator_set_state(handle, s.handle)) }
}
