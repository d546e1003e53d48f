#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A string that compares and hashes by its UTF-8 bytes.
///
/// Swift's `String ==` and `String` dictionary keys use Unicode canonical equivalence: "é" (U+00E9) equals
/// "e\u{301}", "Å" (U+00C5) equals U+212B ANGSTROM SIGN. Python, Rust and JSON keep those apart, so wherever
/// parity with them matters (vocabularies, added tokens, JSON keys) keys are `ExactString`s.
public struct ExactString: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let string: String

    @inline(__always) public init(_ string: String) { self.string = string }
    public init(stringLiteral value: String) { string = value }

    public var description: String { string }

    @inline(__always) public static func == (a: ExactString, b: ExactString) -> Bool { a.string.isByteEqual(to: b.string) }

    @inline(__always) public func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Whether the two strings have the same UTF-8 bytes (the same scalars): `==` without canonical equivalence.
    @inline(__always) public func isByteEqual(to other: String) -> Bool {
        var a = self, b = other
        return a.withUTF8 { x in
            b.withUTF8 { y in x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
    }
}
