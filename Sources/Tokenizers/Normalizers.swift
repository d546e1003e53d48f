import Foundation
import JSON

/// Rewrites text before pre-tokenization (tokenizer.json's "normalizer").
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case stripAccents
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool?, lowercase: Bool)
    case prepend(String)
    case replace(SplitRegex, String)
    case strip(left: Bool, right: Bool)
    case byteLevel
    case sequence([Normalizer])

    init(json: JSONValue, path: String) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerError("\(path): normalizer has no type") }
        switch type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "StripAccents": self = .stripAccents
        case "BertNormalizer":
            self = .bert(cleanText: json["clean_text"]?.boolValue ?? true,
                         handleChineseChars: json["handle_chinese_chars"]?.boolValue ?? true,
                         stripAccents: json["strip_accents"]?.boolValue,
                         lowercase: json["lowercase"]?.boolValue ?? true)
        case "Prepend":
            guard let s = json["prepend"]?.stringValue else { throw TokenizerError("\(path): Prepend normalizer has no 'prepend' string") }
            self = .prepend(s)
        case "Replace":
            self = .replace(try patternRegex(json["pattern"], path: path, what: "Replace normalizer"), json["content"]?.stringValue ?? "")
        case "Strip":
            self = .strip(left: json["strip_left"]?.boolValue ?? true, right: json["strip_right"]?.boolValue ?? true)
        case "ByteLevel": self = .byteLevel
        case "Sequence":
            guard let items = json["normalizers"]?.arrayValue else { throw TokenizerError("\(path): Sequence normalizer has no 'normalizers' list") }
            self = .sequence(try items.map { try Normalizer(json: $0, path: path) })
        default:
            throw TokenizerError("\(path): normalizer type '\(type)' is not supported")
        }
    }

    /// Normalizes a piece. Its origins (when tracked) follow the library's alignment rules: characters that
    /// replace or expand a character keep its origin, inserted ones take their neighbour's.
    func normalize(_ piece: inout Piece) {
        var text = piece.text
        var origin = piece.origin
        normalize(&text, &origin)
        piece.text = text
        piece.origin = origin
    }

    func normalize(_ text: inout [Unicode.Scalar], _ origin: inout [Int]?) {
        switch self {
        case .nfc: unicodeNormalize(&text, &origin) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: unicodeNormalize(&text, &origin) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: unicodeNormalize(&text, &origin) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: unicodeNormalize(&text, &origin) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase: mapScalars(&text, &origin, lowercaseMapping)
        case .stripAccents: mapScalars(&text, &origin) { $0.isMark ? [] : [$0] }
        case let .bert(cleanText, handleChinese, stripAccents, lowercase):
            if cleanText {
                // Controls other than tab and newlines go first (so \v and U+0085 vanish), then whitespace
                // becomes a space.
                mapScalars(&text, &origin) { c in
                    if c.value == 0 || c.value == 0xFFFD { return [] }
                    let tabOrNewline = c == "\t" || c == "\n" || c == "\r"
                    if !tabOrNewline && c.isOtherCategory { return [] }
                    return [(tabOrNewline || c.isWhitespace) ? " " : c]
                }
            }
            if handleChinese && text.contains(where: { $0.isChineseCharacter }) {
                mapScalars(&text, &origin) { $0.isChineseCharacter ? [" ", $0, " "] : [$0] }
            }
            if stripAccents ?? lowercase {
                unicodeNormalize(&text, &origin) { $0.decomposedStringWithCanonicalMapping }
                mapScalars(&text, &origin) { $0.isNonspacingMark ? [] : [$0] }
            }
            if lowercase { mapScalars(&text, &origin, lowercaseMapping) }
        case .prepend(let s):
            guard !text.isEmpty else { return }
            let added = Array(s.unicodeScalars)
            text.insert(contentsOf: added, at: 0)
            if let o = origin { origin = [Int](repeating: o[0], count: added.count) + o }
        case let .replace(regex, content):
            let matches = regex.matches(in: text)
            if matches.isEmpty { return }
            let added = Array(content.unicodeScalars)
            var out: [Unicode.Scalar] = []
            var outOrigin: [Int] = []
            var previous = 0
            for m in matches {
                out += text[previous..<m.lowerBound]
                out += added
                if let o = origin {
                    outOrigin += o[previous..<m.lowerBound]
                    // Replacement characters take the origin of the last character they replace.
                    let inherited = m.upperBound > 0 ? o[m.upperBound - 1] : 0
                    outOrigin += [Int](repeating: inherited, count: added.count)
                }
                previous = m.upperBound
            }
            out += text[previous...]
            if let o = origin { origin = outOrigin + o[previous...] }
            text = out
        case let .strip(left, right):
            var end = text.count
            if right { while end > 0 && text[end - 1].isWhitespace { end -= 1 } }
            var start = 0
            if left { while start < end && text[start].isWhitespace { start += 1 } }
            if start == 0 && end == text.count { return }
            text = Array(text[start..<end])
            if let o = origin { origin = Array(o[start..<end]) }
        case .byteLevel:
            mapScalars(&text, &origin) { ByteLevelTable.encode([$0]) }
        case .sequence(let items):
            for n in items { n.normalize(&text, &origin) }
        }
    }
}

/// Maps each scalar to zero or more scalars; outputs keep the origin of their source scalar.
private func mapScalars(_ text: inout [Unicode.Scalar], _ origin: inout [Int]?, _ f: (Unicode.Scalar) -> [Unicode.Scalar]) {
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count)
    var outOrigin: [Int] = []
    for (i, c) in text.enumerated() {
        let mapped = f(c)
        out += mapped
        if let o = origin { outOrigin += [Int](repeating: o[i], count: mapped.count) }
    }
    text = out
    if origin != nil { origin = outOrigin }
}

/// Unicode normalization. Without origins, the whole text at once; with them, run by run (a run is a starter
/// and the combining marks after it), each output run taking its first character's origin.
private func unicodeNormalize(_ text: inout [Unicode.Scalar], _ origin: inout [Int]?, _ f: (String) -> String) {
    // ASCII is unchanged by every normalization form.
    if text.allSatisfy({ $0.value < 0x80 }) { return }
    guard let o = origin else {
        text = Array(f(scalarsString(text)).unicodeScalars)
        return
    }
    var out: [Unicode.Scalar] = []
    var outOrigin: [Int] = []
    var start = 0
    while start < text.count {
        var end = start + 1
        while end < text.count && text[end].properties.canonicalCombiningClass != .notReordered { end += 1 }
        let normalized = Array(f(scalarsString(text[start..<end])).unicodeScalars)
        out += normalized
        outOrigin += [Int](repeating: o[start], count: normalized.count)
        start = end
    }
    text = out
    origin = outOrigin
}

/// Rust `char::to_lowercase`: the full mapping of one character, without context rules such as final sigma.
private func lowercaseMapping(_ c: Unicode.Scalar) -> [Unicode.Scalar] {
    if c.value < 0x80 { return [(c.value >= 0x41 && c.value <= 0x5A) ? Unicode.Scalar(c.value + 0x20)! : c] }
    return Array(c.properties.lowercaseMapping.unicodeScalars)
}

/// A pattern given as `{"String": "..."}` or `{"Regex": "..."}`.
func patternRegex(_ json: JSONValue?, path: String, what: String) throws -> SplitRegex {
    if let s = json?["String"]?.stringValue { return try SplitRegex(s, literal: true) }
    if let r = json?["Regex"]?.stringValue {
        do {
            return try SplitRegex(r)
        } catch let e as TokenizerError {
            throw TokenizerError("\(path): \(what): \(e.message)")
        }
    }
    throw TokenizerError("\(path): \(what) has no pattern {\"String\": ...} or {\"Regex\": ...}")
}

/// GPT-2's reversible map from bytes to printable characters.
enum ByteLevelTable {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { d[s.value] = UInt8(b) }
        return d
    }()

    /// Each UTF-8 byte of the text as its printable character.
    static func encode(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count + text.count / 4)
        for c in text {
            if c.value < 0x80 {
                out.append(byteToScalar[Int(c.value)])
            } else {
                for b in String(Character(c)).utf8 { out.append(byteToScalar[Int(b)]) }
            }
        }
        return out
    }
}
