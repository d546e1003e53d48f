/// FNV-1a (64-bit): a hash that is the same in every run and build (Swift's `hashValue` is seeded per process).
/// Used for content hashes, fingerprints and per-record seeds; not for security.
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes {
            value ^= UInt64(b)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    /// A field: its UTF-8 bytes, then 0xFF (never a UTF-8 byte), so that "ab" + "c" and "a" + "bc" differ.
    public mutating func add(field: String) {
        add(bytes: field.utf8)
        add(bytes: [0xFF])
    }

    public var hex: String { String(value, radix: 16) }

    public static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var h = FNV1a64()
        h.add(bytes: bytes)
        return h.hex
    }
}
