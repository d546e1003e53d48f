import Foundation
import JSON

/// A split pattern from tokenizer.json, with Oniguruma's semantics. The pre-tokenization patterns of the GPT-2 and
/// LLaMA-3/Qwen2 families run as hand-written matchers (the hot path of byte-level tokenizers); any other pattern
/// runs on ICU's regex engine, with `\s`/`\S` rewritten to Oniguruma's White_Space meaning.
final class SplitRegex: @unchecked Sendable {
    static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    enum Engine {
        case gpt2
        case llama(maxDigits: Int)
        case literal([Unicode.Scalar])
        case icu(NSRegularExpression)
    }

    let pattern: String
    let engine: Engine

    /// `literal`: the pattern is a plain string to find (tokenizer.json's `{"String": ...}`).
    init(_ pattern: String, literal: Bool = false) throws {
        self.pattern = pattern
        if literal {
            engine = .literal(Array(pattern.unicodeScalars))
        } else if pattern.isByteEqual(to: Self.gpt2) {
            engine = .gpt2
        } else if pattern.isByteEqual(to: Self.qwen2) {
            engine = .llama(maxDigits: 1)
        } else if pattern.isByteEqual(to: Self.llama3) {
            engine = .llama(maxDigits: 3)
        } else {
            do {
                engine = .icu(try NSRegularExpression(pattern: Self.icuPattern(pattern), options: []))
            } catch {
                throw TokenizerError("regex \(pattern) is not supported: \(error)")
            }
        }
    }

    /// The same pattern always on ICU (tests compare it with the hand-written matchers).
    init(icu pattern: String) throws {
        self.pattern = pattern
        engine = .icu(try NSRegularExpression(pattern: Self.icuPattern(pattern), options: []))
    }

    /// Oniguruma's `\s` is White_Space; ICU's leaves out \v and U+0085. Read by scalars: a backslash that a
    /// combining mark follows is still a backslash.
    static func icuPattern(_ p: String) -> String {
        let whitespace = #"\t\n\x{0B}\f\r\x{85}\p{Z}"#
        var out = String.UnicodeScalarView()
        var inClass = false
        let chars = Array(p.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count {
                let n = chars[i + 1]
                if n == "s" {
                    out.append(contentsOf: (inClass ? whitespace : "[\(whitespace)]").unicodeScalars)
                } else if n == "S" && !inClass {
                    out.append(contentsOf: "[^\(whitespace)]".unicodeScalars)
                } else {
                    out.append(c)
                    out.append(n)
                }
                i += 2
                continue
            }
            if c == "[" && !inClass { inClass = true } else if c == "]" && inClass { inClass = false }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// Non-overlapping leftmost matches, as `find_iter` returns them.
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        switch engine {
        case .gpt2: return gpt2Matches(text)
        case .llama(let maxDigits): return llamaMatches(text, maxDigits: maxDigits)
        case .literal(let needle): return literalMatches(text, needle)
        case .icu(let re): return icuMatches(text, re)
        }
    }

    private func literalMatches(_ text: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> [Range<Int>] {
        guard !needle.isEmpty, needle.count <= text.count else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        while i + needle.count <= text.count {
            if text[i] == needle[0] && text[i..<(i + needle.count)].elementsEqual(needle) {
                out.append(i..<(i + needle.count))
                i += needle.count
            } else {
                i += 1
            }
        }
        return out
    }

    private func icuMatches(_ text: [Unicode.Scalar], _ re: NSRegularExpression) -> [Range<Int>] {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: text)
        let string = String(s)
        // UTF-16 offset -> scalar index, at scalar boundaries.
        var scalarAt = [Int](repeating: 0, count: string.utf16.count + 1)
        var u = 0
        for (i, c) in text.enumerated() {
            scalarAt[u] = i
            u += c.utf16.count
        }
        scalarAt[u] = text.count
        let ns = string as NSString
        return re.matches(in: string, options: [], range: NSRange(location: 0, length: ns.length)).compactMap { m in
            let r = m.range
            guard r.location != NSNotFound, r.length > 0 else { return nil }
            return scalarAt[r.location]..<scalarAt[r.location + r.length]
        }
    }

    // MARK: hand-written matchers

    /// Kind of a scalar for the split patterns.
    @inline(__always) private static func isOther(_ c: Unicode.Scalar) -> Bool {
        !c.isWhitespace && !c.isLetter && !c.isNumber
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or (with `(?i:...)`) case-insensitive; returns the length.
    @inline(__always) private static func contraction(_ text: [Unicode.Scalar], _ i: Int, ignoreCase: Bool) -> Int {
        guard text[i] == "'", i + 1 < text.count else { return 0 }
        func letter(_ k: Int) -> Unicode.Scalar? {
            guard k < text.count else { return nil }
            let c = text[k]
            guard ignoreCase else { return c }
            if c.value >= 0x41 && c.value <= 0x5A { return Unicode.Scalar(c.value + 0x20) }
            if c.value == 0x17F { return "s" }  // LATIN SMALL LETTER LONG S folds to s
            return c
        }
        switch letter(i + 1) {
        case "s", "t", "m", "d": return 2
        case "r": return letter(i + 2) == "e" ? 3 : 0
        case "v": return letter(i + 2) == "e" ? 3 : 0
        case "l": return letter(i + 2) == "l" ? 3 : 0
        default: return 0
        }
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the run, less its last scalar when a non-space follows and the run
    /// is longer than one.
    @inline(__always) private static func whitespaceRun(_ text: [Unicode.Scalar], _ i: Int) -> Int {
        var j = i
        while j < text.count && text[j].isWhitespace { j += 1 }
        if j == text.count || j - i == 1 { return j }
        return j - 1
    }

    private func gpt2Matches(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(text.count / 3 + 1)
        let n = text.count
        var i = 0
        while i < n {
            let c = text[i]
            var end = i + 1
            let contraction = Self.contraction(text, i, ignoreCase: false)
            if contraction > 0 {
                end = i + contraction
            } else {
                let start = (c == " " && i + 1 < n) ? i + 1 : i
                let head = text[start]
                if head.isLetter && (start == i || c == " ") {
                    end = start + 1
                    while end < n && text[end].isLetter { end += 1 }
                } else if head.isNumber && (start == i || c == " ") {
                    end = start + 1
                    while end < n && text[end].isNumber { end += 1 }
                } else if Self.isOther(head) && (start == i || c == " ") {
                    end = start + 1
                    while end < n && Self.isOther(text[end]) { end += 1 }
                } else if c.isWhitespace {
                    end = Self.whitespaceRun(text, i)
                }
            }
            out.append(i..<end)
            i = end
        }
        return out
    }

    private func llamaMatches(_ text: [Unicode.Scalar], maxDigits: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(text.count / 3 + 1)
        let n = text.count
        var i = 0
        while i < n {
            let c = text[i]
            var end = i + 1
            let contraction = Self.contraction(text, i, ignoreCase: true)
            if contraction > 0 {
                end = i + contraction
            } else if c.isLetter || (c != "\r" && c != "\n" && !c.isNumber && i + 1 < n && text[i + 1].isLetter) {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                end = c.isLetter ? i + 1 : i + 2
                while end < n && text[end].isLetter { end += 1 }
            } else if c.isNumber {
                // \p{N}{1,maxDigits}
                while end < n && end - i < maxDigits && text[end].isNumber { end += 1 }
            } else if Self.isOther(c) || (c == " " && i + 1 < n && Self.isOther(text[i + 1])) {
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                end = c == " " ? i + 2 : i + 1
                while end < n && Self.isOther(text[end]) { end += 1 }
                while end < n && (text[end] == "\r" || text[end] == "\n") { end += 1 }
            } else {
                // c is whitespace: `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`
                var j = i
                var lastNewline = -1
                while j < n && text[j].isWhitespace {
                    if text[j] == "\r" || text[j] == "\n" { lastNewline = j }
                    j += 1
                }
                end = lastNewline >= 0 ? lastNewline + 1 : Self.whitespaceRun(text, i)
            }
            out.append(i..<end)
            i = end
        }
        return out
    }
}
