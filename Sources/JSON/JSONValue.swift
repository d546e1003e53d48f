#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small strict JSON parser for untrusted headers: integers stay exact, booleans stay booleans, nesting is
/// bounded, duplicate keys are rejected, and every failure is an error (never a trap).
///
/// Strings and keys are compared by their bytes, as JSON (and Python, and Rust) compare them, not by Swift's
/// canonical equivalence: an object may hold both "\u00e9" and "e\u0301", `==` tells them apart, and lookups by
/// key find only the byte-identical key.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.int(x), .int(y)): x == y
        case let (.double(x), .double(y)): x == y
        case let (.string(x), .string(y)): x.isByteEqual(to: y)
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0.isByteEqual(to: $1.0) && $0.1 == $1.1 }
        default: false
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    public static let maxDepth = 64

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var p = Parser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != bytes.count { throw p.error("trailing characters") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0) }
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var intValue: Int? { if case .int(let i) = self { return i } else { return nil } }
    /// A number as Double (integers included).
    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var isNull: Bool { self == .null }
    /// An object's members by their exact keys (the parser already refused duplicate keys; of byte-identical
    /// keys in a built object, the last wins).
    public var exactDictionaryValue: [ExactString: JSONValue]? {
        guard let o = objectValue else { return nil }
        var d = [ExactString: JSONValue](minimumCapacity: o.count)
        for (k, v) in o { d[ExactString(k)] = v }
        return d
    }
    /// An object's members as a `String`-keyed dictionary, for objects whose keys are names or ids. `String` keys
    /// are canonically equivalent when their bytes differ ("\u00e9" and "e\u0301"), so an object holding two
    /// such keys gives nil rather than losing one of them: use `exactDictionaryValue` for arbitrary keys.
    public var dictionaryValue: [String: JSONValue]? {
        guard let o = objectValue else { return nil }
        var d = [String: JSONValue](minimumCapacity: o.count)
        for (k, v) in o { d[k] = v }
        if d.count < o.count && Set(o.map { ExactString($0.0) }).count != d.count { return nil }
        return d
    }
    /// The value of the byte-identical `key` in an object (linear in the object's size: convert large objects
    /// once with `exactDictionaryValue`).
    public subscript(key: String) -> JSONValue? { objectValue?.first { $0.0.isByteEqual(to: key) }?.1 }

    /// Reads and parses a file.
    public static func parse(contentsOf path: String) throws -> JSONValue {
        guard let handle = fopen(path, "rb") else { throw ParseError(offset: 0, reason: "cannot open \(path)") }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, handle)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        return try parse(bytes)
    }
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    var i = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func error(_ reason: String) -> JSONValue.ParseError { JSONValue.ParseError(offset: i, reason: reason) }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
    }

    mutating func expect(_ word: String) throws {
        for c in word.utf8 {
            guard peek == c else { throw error("invalid literal") }
            i += 1
        }
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < JSONValue.maxDepth else { throw error("nesting deeper than \(JSONValue.maxDepth)") }
        guard let c = peek else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(String, JSONValue)] = []
            var seen = Set<ExactString>()  // byte-exact: "\u00e9" and "e\u0301" are two keys
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a key string") }
                let key = try string()
                guard seen.insert(ExactString(key)).inserted else { throw error("duplicate key '\(key)'") }
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default:
            return try number()
        }
    }

    mutating func number() throws -> JSONValue {
        let start = i
        var isInteger = true
        if peek == UInt8(ascii: "-") { i += 1 }
        guard let first = peek, first >= 0x30, first <= 0x39 else { throw error("invalid value") }
        if first == 0x30 {
            i += 1
        } else {
            while let c = peek, c >= 0x30, c <= 0x39 { i += 1 }
        }
        if peek == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard let c = peek, c >= 0x30, c <= 0x39 else { throw error("invalid number") }
            while let c = peek, c >= 0x30, c <= 0x39 { i += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard let c = peek, c >= 0x30, c <= 0x39 else { throw error("invalid number") }
            while let c = peek, c >= 0x30, c <= 0x39 { i += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int(text) {
            return .int(v)
        }
        // Integers beyond Int (transformers writes model_max_length = 1e30 as an integer) become doubles.
        guard let d = Double(text), d.isFinite else { throw error("invalid number") }
        return .double(d)
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func string() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("unterminated string") }
            i += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw error("unterminated escape") }
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard peek == UInt8(ascii: "\\") else { throw error("lone surrogate") }
                        i += 1
                        guard peek == UInt8(ascii: "u") else { throw error("lone surrogate") }
                        i += 1
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw error("invalid code point") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("invalid escape")
                }
            default:
                guard c >= 0x20 else { throw error("control character in string") }
                out.append(c)
            }
        }
    }
}

extension JSONValue {
    /// JSON text: compact on one line, or indented by two spaces per level. Doubles use the shortest text that
    /// reads back to the same value; non-finite doubles become null (JSON has no NaN).
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(into: &out, pretty: pretty, depth: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, depth: Int) {
        let newline = pretty ? "\n" + String(repeating: "  ", count: depth + 1) : ""
        let closing = pretty ? "\n" + String(repeating: "  ", count: depth) : ""
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): out += JSONValue.quoted(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                out += (i > 0 ? "," : "") + (pretty ? newline : (i > 0 ? " " : ""))
                item.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            out += closing + "]"
        case .object(let fields):
            if fields.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                out += (i > 0 ? "," : "") + (pretty ? newline : (i > 0 ? " " : "")) + JSONValue.quoted(key) + ": "
                value.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            out += closing + "}"
        }
    }
}
