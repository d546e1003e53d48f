import Foundation
import JSON

/// Adds special tokens around an encoded sequence (tokenizer.json's "post_processor").
indirect enum PostProcessor: Sendable {
    /// Items of a single-sequence template: a special token's ids, or the sequence itself.
    enum TemplateItem: Sendable { case special([Int]), sequence }
    case template(single: [TemplateItem])
    /// `cls ids + sequence + sep ids` (BertProcessing, RobertaProcessing for a single sequence).
    case surround(cls: Int, sep: Int)
    /// Adds nothing (ByteLevel only adjusts offsets).
    case none
    case sequence([PostProcessor])

    init(json: JSONValue, path: String) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerError("\(path): post_processor has no type") }
        switch type {
        case "TemplateProcessing":
            guard let single = json["single"]?.arrayValue else { throw TokenizerError("\(path): TemplateProcessing has no 'single' template") }
            let specials = json["special_tokens"]?.exactDictionaryValue ?? [:]
            self = .template(single: try single.map { item in
                if let s = item["SpecialToken"] {
                    guard let name = s["id"]?.stringValue else { throw TokenizerError("\(path): TemplateProcessing SpecialToken without an id") }
                    guard let ids = specials[ExactString(name)]?["ids"]?.arrayValue?.compactMap(\.intValue) else {
                        throw TokenizerError("\(path): TemplateProcessing uses special token '\(name)' missing from special_tokens")
                    }
                    return .special(ids)
                }
                if item["Sequence"] != nil { return .sequence }
                throw TokenizerError("\(path): TemplateProcessing item is neither SpecialToken nor Sequence")
            })
        case "BertProcessing", "RobertaProcessing":
            guard let sep = json["sep"]?.arrayValue, sep.count == 2, let sepID = sep[1].intValue,
                  let cls = json["cls"]?.arrayValue, cls.count == 2, let clsID = cls[1].intValue
            else { throw TokenizerError("\(path): \(type) needs 'sep' and 'cls' as [token, id]") }
            self = .surround(cls: clsID, sep: sepID)
        case "ByteLevel":
            self = .none
        case "Sequence":
            guard let items = json["processors"]?.arrayValue else { throw TokenizerError("\(path): Sequence post-processor has no 'processors' list") }
            self = .sequence(try items.map { try PostProcessor(json: $0, path: path) })
        default:
            throw TokenizerError("\(path): post-processor type '\(type)' is not supported")
        }
    }

    /// How many ids `process` adds to a single sequence.
    var addedCount: Int {
        switch self {
        case .template(let items): items.reduce(0) { if case .special(let ids) = $1 { $0 + ids.count } else { $0 } }
        case .surround: 2
        case .none: 0
        case .sequence(let items): items.reduce(0) { $0 + $1.addedCount }
        }
    }

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let items):
            var out: [Int] = []
            for item in items {
                switch item {
                case .special(let s): out += s
                case .sequence: out += ids
                }
            }
            return out
        case let .surround(cls, sep): return [cls] + ids + [sep]
        case .none: return ids
        case .sequence(let items): return items.reduce(ids) { $1.process($0) }
        }
    }
}

/// Turns tokens back into text (tokenizer.json's "decoder").
indirect enum Decoder: Sendable {
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, prependScheme: PreTokenizer.PrependScheme)
    case wordPiece(prefix: String, cleanup: Bool)
    case bpe(suffix: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case replace(SplitRegex, String)
    case sequence([Decoder])

    init(json: JSONValue, path: String) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerError("\(path): decoder has no type") }
        switch type {
        case "ByteLevel": self = .byteLevel
        case "Metaspace":
            guard let r = json["replacement"]?.stringValue, r.unicodeScalars.count == 1 else {
                throw TokenizerError("\(path): Metaspace decoder needs a one-character 'replacement'")
            }
            var scheme = PreTokenizer.PrependScheme.always
            if let s = json["prepend_scheme"]?.stringValue {
                guard let p = PreTokenizer.PrependScheme(rawValue: s) else { throw TokenizerError("\(path): Metaspace decoder has unknown prepend_scheme '\(s)'") }
                scheme = p
            }
            if json["add_prefix_space"]?.boolValue == false { scheme = .never }
            self = .metaspace(replacement: r.unicodeScalars.first!, prependScheme: scheme)
        case "WordPiece": self = .wordPiece(prefix: json["prefix"]?.stringValue ?? "##", cleanup: json["cleanup"]?.boolValue ?? true)
        case "BPEDecoder": self = .bpe(suffix: json["suffix"]?.stringValue ?? "</w>")
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            guard let c = json["content"]?.stringValue, c.unicodeScalars.count == 1 else { throw TokenizerError("\(path): Strip decoder needs a one-character 'content'") }
            self = .strip(content: c.unicodeScalars.first!, start: json["start"]?.intValue ?? 0, stop: json["stop"]?.intValue ?? 0)
        case "Replace":
            self = .replace(try patternRegex(json["pattern"], path: path, what: "Replace decoder"), json["content"]?.stringValue ?? "")
        case "Sequence":
            guard let items = json["decoders"]?.arrayValue else { throw TokenizerError("\(path): Sequence decoder has no 'decoders' list") }
            self = .sequence(try items.map { try Decoder(json: $0, path: path) })
        default:
            throw TokenizerError("\(path): decoder type '\(type)' is not supported")
        }
    }

    func decode(_ tokens: [String]) -> String { decodeChain(tokens).joined() }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                var mapped: [UInt8] = []
                var ok = true
                for s in t.unicodeScalars {
                    guard let b = ByteLevelTable.scalarToByte[s.value] else { ok = false; break }
                    mapped.append(b)
                }
                bytes += ok ? mapped : Array(t.utf8)
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { i, t in
                var out = String.UnicodeScalarView()
                for c in t.unicodeScalars {
                    if c == replacement {
                        if i == 0 && scheme != .never { continue }
                        out.append(" ")
                    } else {
                        out.append(c)
                    }
                }
                return String(out)
            }
        case let .wordPiece(prefix, cleanup):
            return tokens.enumerated().map { i, t in
                var token = t
                if i != 0 {
                    if token.unicodeScalars.starts(with: prefix.unicodeScalars) {
                        token = scalarsString(token.unicodeScalars.dropFirst(prefix.unicodeScalars.count))
                    } else {
                        token = " " + token
                    }
                }
                return cleanup ? Self.cleanup(token) : token
            }
        case .bpe(let suffix):
            return tokens.enumerated().map { i, t in replacingScalars(t, suffix, i == tokens.count - 1 ? "" : " ") }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending.removeAll()
            }
            for t in tokens {
                let u = Array(t.utf8)
                // `<0xAB>`, by bytes (`hasPrefix` compares Characters, and "x\u{301}" is not "x").
                if u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { t in
                let chars = Array(t.unicodeScalars)
                var startCut = 0
                for i in 0..<min(start, chars.count) {
                    if chars[i] == content { startCut = i + 1 } else { break }
                }
                var stopCut = chars.count
                for i in 0..<min(stop, chars.count) {
                    let index = chars.count - i - 1
                    if chars[index] == content { stopCut = index } else { break }
                }
                return startCut < stopCut ? scalarsString(chars[startCut..<stopCut]) : ""
            }
        case let .replace(regex, content):
            return tokens.map { t in
                let chars = Array(t.unicodeScalars)
                let matches = regex.matches(in: chars)
                if matches.isEmpty { return t }
                var out = String.UnicodeScalarView()
                var previous = 0
                for m in matches {
                    out.append(contentsOf: chars[previous..<m.lowerBound])
                    out.append(contentsOf: content.unicodeScalars)
                    previous = m.upperBound
                }
                out.append(contentsOf: chars[previous...])
                return String(out)
            }
        case .sequence(let items):
            return items.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// WordPiece's cleanup of spaces before punctuation and contractions.
    static func cleanup(_ s: String) -> String {
        let rules: [(String, String)] = [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ]
        return rules.reduce(s) { replacingScalars($0, $1.0, $1.1) }
    }
}

/// Replaces every non-overlapping occurrence of `target`, left to right, comparing Unicode scalars exactly (as
/// Rust's `str::replace` compares bytes), not canonically equivalent characters.
func replacingScalars(_ s: String, _ target: String, _ replacement: String) -> String {
    let text = Array(s.unicodeScalars), needle = Array(target.unicodeScalars)
    guard !needle.isEmpty, text.count >= needle.count else { return s }
    var out = String.UnicodeScalarView()
    var i = 0
    var changed = false
    while i < text.count {
        if i + needle.count <= text.count && text[i] == needle[0] && text[i..<(i + needle.count)].elementsEqual(needle) {
            out.append(contentsOf: replacement.unicodeScalars)
            i += needle.count
            changed = true
        } else {
            out.append(text[i])
            i += 1
        }
    }
    return changed ? String(out) : s
}
