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
        case .nfc: unicodeNormalize(&text, &origin) { canonicalCompose(decomposeNFD($0)) }
        case .nfd: unicodeNormalize(&text, &origin, decomposeNFD)
        case .nfkc: unicodeNormalize(&text, &origin) { canonicalCompose(decomposeNFKD($0)) }
        case .nfkd: unicodeNormalize(&text, &origin, decomposeNFKD)
        case .lowercase: mapScalars(&text, &origin, lowercaseMapping)
        case .stripAccents: mapScalars(&text, &origin) { $0.isMark ? [] : [$0] }
        case let .bert(cleanText, handleChinese, stripAccents, lowercase):
            if cleanText {
                // Controls other than tab and newlines go first (so \v and U+0085 vanish), then whitespace
                // becomes a space. Format and private-use characters go too; unassigned code points and
                // noncharacters (U+FDD0, U+FFFE) stay, as the library's tables have no Cn.
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
                unicodeNormalize(&text, &origin, decomposeNFD)
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

/// Unicode normalization as the library's tables do it: scalars newer than those tables
/// (`isInNormalizationTables`) pass through unchanged and, being starters that combine with nothing, split the
/// text into segments normalized on their own. With origins, each run (a starter and the combining marks after
/// it) takes its first character's origin; where runs compose with each other (Hangul jamo, some Brahmic vowel
/// signs) the whole segment takes its first character's origin.
func unicodeNormalize(_ text: inout [Unicode.Scalar], _ origin: inout [Int]?, _ f: (ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar]) {
    // ASCII is unchanged by every normalization form.
    if text.allSatisfy({ $0.value < 0x80 }) { return }
    let inert = { (c: Unicode.Scalar) in c.value >= 0x80 && !c.isInNormalizationTables }
    if origin == nil && !text.contains(where: inert) {
        text = f(text[...])
        return
    }
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count)
    var outOrigin: [Int] = []
    var start = 0
    while start < text.count {
        if inert(text[start]) {
            out.append(text[start])
            if let o = origin { outOrigin.append(o[start]) }
            start += 1
            continue
        }
        var end = start + 1
        while end < text.count && !inert(text[end]) { end += 1 }
        let normalized = f(text[start..<end])
        out += normalized
        if let o = origin {
            var runs: [Unicode.Scalar] = []
            var runOrigins: [Int] = []
            var r = start
            while r < end {
                var e = r + 1
                while e < end && text[e].properties.canonicalCombiningClass != .notReordered { e += 1 }
                let n = f(text[r..<e])
                runs += n
                runOrigins += [Int](repeating: o[r], count: n.count)
                r = e
            }
            outOrigin += runs == normalized ? runOrigins : [Int](repeating: o[start], count: normalized.count)
        }
        start = end
    }
    text = out
    if origin != nil { origin = outOrigin }
}

/// Canonical and compatibility decomposition (Foundation's, which agrees with the library on every code point).
func decomposeNFD(_ s: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] { Array(scalarsString(s).decomposedStringWithCanonicalMapping.unicodeScalars) }
func decomposeNFKD(_ s: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] { Array(scalarsString(s).decomposedStringWithCompatibilityMapping.unicodeScalars) }

/// Unicode's canonical composition (UAX #15) of decomposed text: NFC = compose(NFD), NFKC = compose(NFKD).
/// Foundation's own NFC and NFKC are not used: they leave U+AC00 + U+11A8 apart, fail to compose "a" + U+0F71 U+0F72
/// + U+0301, and fold a supplementary starter onto a BMP one (U+10041 + U+0301 becomes U+00C1).
func canonicalCompose(_ d: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(d.count)
    var starter = -1  // index in out of the last starter
    var lastClass = -1  // combining class of the last character after that starter; -1: none (adjacent)
    for c in d {
        if c.value < 0x80 {
            // ASCII never composes onto a preceding character.
            starter = out.count
            lastClass = -1
            out.append(c)
            continue
        }
        let cc = Int(c.properties.canonicalCombiningClass.rawValue)
        if starter >= 0 && (lastClass == -1 || lastClass < cc), let composite = Composition.compose(out[starter], c) {
            out[starter] = composite
            continue
        }
        if cc == 0 {
            starter = out.count
            lastClass = -1
        } else {
            lastClass = cc
        }
        out.append(c)
    }
    return out
}

/// Primary composites of the library's normalization tables (Unicode 9.0), with Hangul syllables composed
/// arithmetically.
enum Composition {
    static func compose(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Unicode.Scalar? {
        let x = a.value, y = b.value
        if x >= 0x1100 && x < 0x1113 && y >= 0x1161 && y < 0x1176 {
            return Unicode.Scalar(0xAC00 + ((x - 0x1100) * 21 + (y - 0x1161)) * 28)
        }
        if x >= 0xAC00 && x <= 0xD7A3 && (x - 0xAC00) % 28 == 0 && y > 0x11A7 && y <= 0x11C2 {
            return Unicode.Scalar(x + (y - 0x11A7))
        }
        return pairs[UInt64(x) << 32 | UInt64(y)].flatMap(Unicode.Scalar.init)
    }

    /// (first, second) -> composite, from each composite's decomposition. Every primary composite of Unicode 9.0
    /// lies in these ranges (later ones are newer than the library's tables and compose with nothing).
    static let pairs: [UInt64: UInt32] = {
        var byDecomposition: [[Unicode.Scalar]: Unicode.Scalar] = [:]
        var composites: [(Unicode.Scalar, [Unicode.Scalar])] = []
        for range in [UInt32(0xC0)...0x30FF, 0x11000...0x119FF] {
            for v in range {
                guard let c = Unicode.Scalar(v), c.isInNormalizationTables, !c.properties.isFullCompositionExclusion else { continue }
                let d = decomposeNFD([c][...])
                if d.count >= 2 { composites.append((c, d)) }
            }
        }
        composites.sort { $0.1.count < $1.1.count }
        var pairs: [UInt64: UInt32] = [:]
        for (c, d) in composites {
            // The one-step decomposition: the composite of all but the last character, then the last.
            let first = d.count == 2 ? d[0] : byDecomposition[Array(d.dropLast())]
            byDecomposition[d] = c
            guard let first else { continue }
            pairs[UInt64(first.value) << 32 | UInt64(d.last!.value)] = c.value
        }
        return pairs
    }()
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
