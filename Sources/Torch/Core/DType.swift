import CTorch

/// Element types. Raw values are the shim's codes.
public enum DType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case float32 = 0, float16 = 1, bfloat16 = 2, float64 = 3
    case int64 = 4, int32 = 5, int16 = 6, int8 = 7, uint8 = 8, bool = 9

    public var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    public var isFloatingPoint: Bool { [.float32, .float16, .bfloat16, .float64].contains(self) }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float64: "float64"
        case .int64: "int64"
        case .int32: "int32"
        case .int16: "int16"
        case .int8: "int8"
        case .uint8: "uint8"
        case .bool: "bool"
        }
    }

    /// Parses "f32", "float32", "bf16", "fp16", ... as a CLI would accept them.
    public init?(name: String) {
        switch name.lowercased() {
        case "f32", "fp32", "float32", "float": self = .float32
        case "f16", "fp16", "float16", "half": self = .float16
        case "bf16", "bfloat16": self = .bfloat16
        case "f64", "fp64", "float64", "double": self = .float64
        case "i64", "int64", "long": self = .int64
        case "i32", "int32", "int": self = .int32
        case "i16", "int16": self = .int16
        case "i8", "int8": self = .int8
        case "u8", "uint8": self = .uint8
        case "bool": self = .bool
        default: return nil
        }
    }
}

/// Where a tensor lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    var kind: Int32 {
        switch self {
        case .cpu: Int32(CT_CPU)
        case .cuda: Int32(CT_CUDA)
        }
    }
    var index: Int32 {
        switch self {
        case .cpu: 0
        case .cuda(let i): Int32(i)
        }
    }

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let i): "cuda:\(i)"
        }
    }

    /// Parses "cpu", "cuda", "cuda:1".
    public init?(name: String) {
        if name == "cpu" { self = .cpu; return }
        if name == "cuda" { self = .cuda(0); return }
        if name.hasPrefix("cuda:"), let i = Int(name.dropFirst(5)), i >= 0 { self = .cuda(i); return }
        return nil
    }
}

/// Swift element types that map to a tensor dtype, for converting from and to arrays.
public protocol TensorElement {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
extension Int: TensorElement { public static var dtype: DType { .int64 } }
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
#endif
