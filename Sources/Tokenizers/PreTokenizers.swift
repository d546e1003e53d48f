import JSON

/// Splits normalized text into words for the model (tokenizer.json's "pre_tokenizer").
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    case whitespace
    case whitespaceSplit
    case bert
    case split(SplitRegex, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case punctuation(SplitBehavior)
    case charDelimiter(Unicode.Scalar)
    case sequence([PreTokenizer])

    enum PrependScheme: String, Sendable { case first, never, always }

    static let gpt2Regex = try! SplitRegex(SplitRegex.gpt2)

    init(json: JSONValue, path: String) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerError("\(path): pre_tokenizer has no type") }
        func behavior(_ key: String, default d: SplitBehavior? = nil) throws -> SplitBehavior {
            guard let s = json[key]?.stringValue else {
                if let d { return d }
                throw TokenizerError("\(path): \(type) pre-tokenizer has no '\(key)'")
            }
            guard let b = SplitBehavior(rawValue: s) else { throw TokenizerError("\(path): \(type) pre-tokenizer has unknown behavior '\(s)'") }
            return b
        }
        switch type {
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: json["add_prefix_space"]?.boolValue ?? true, useRegex: json["use_regex"]?.boolValue ?? true)
        case "Metaspace":
            guard let r = json["replacement"]?.stringValue, r.unicodeScalars.count == 1 else {
                throw TokenizerError("\(path): Metaspace pre-tokenizer needs a one-character 'replacement'")
            }
            var scheme = PrependScheme.always
            if let s = json["prepend_scheme"]?.stringValue {
                guard let p = PrependScheme(rawValue: s) else { throw TokenizerError("\(path): Metaspace has unknown prepend_scheme '\(s)'") }
                scheme = p
            }
            if json["add_prefix_space"]?.boolValue == false {
                if json["prepend_scheme"] != nil && scheme != .never {
                    throw TokenizerError("\(path): Metaspace add_prefix_space does not match declared prepend_scheme")
                }
                scheme = .never
            }
            self = .metaspace(replacement: r.unicodeScalars.first!, prependScheme: scheme, split: json["split"]?.boolValue ?? true)
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "BertPreTokenizer": self = .bert
        case "Split":
            self = .split(try patternRegex(json["pattern"], path: path, what: "Split pre-tokenizer"), try behavior("behavior"),
                          invert: json["invert"]?.boolValue ?? false)
        case "Digits": self = .digits(individual: json["individual_digits"]?.boolValue ?? false)
        case "Punctuation": self = .punctuation(try behavior("behavior", default: .isolated))
        case "CharDelimiterSplit":
            guard let d = json["delimiter"]?.stringValue, d.unicodeScalars.count == 1 else {
                throw TokenizerError("\(path): CharDelimiterSplit needs a one-character 'delimiter'")
            }
            self = .charDelimiter(d.unicodeScalars.first!)
        case "Sequence":
            guard let items = json["pretokenizers"]?.arrayValue else { throw TokenizerError("\(path): Sequence pre-tokenizer has no 'pretokenizers' list") }
            self = .sequence(try items.map { try PreTokenizer(json: $0, path: path) })
        default:
            throw TokenizerError("\(path): pre-tokenizer type '\(type)' is not supported")
        }
    }

    /// Whether this pre-tokenizer asks where words start in the input (pieces must then carry origins).
    var needsOrigins: Bool {
        switch self {
        case .metaspace(_, let scheme, _): scheme == .first
        case .sequence(let items): items.contains { $0.needsOrigins }
        default: false
        }
    }

    /// Applies this pre-tokenizer to every piece that is not already a token.
    func apply(_ pieces: [Piece]) -> [Piece] {
        if case .sequence(let items) = self {
            return items.reduce(pieces) { $1.apply($0) }
        }
        var out: [Piece] = []
        out.reserveCapacity(pieces.count * 2)
        for p in pieces {
            if p.tokenID != nil {
                out.append(p)
            } else {
                out += split(p).filter { !$0.text.isEmpty }
            }
        }
        return out
    }

    private func split(_ piece: Piece) -> [Piece] {
        let text = piece.text
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var p = piece
            if addPrefixSpace && p.text.first != " " {
                p.text.insert(" ", at: 0)
                if let o = p.origin { p.origin = [o[0]] + o }
            }
            let parts = useRegex ? subPieces(p, splitSpans(count: p.text.count, matches: Self.gpt2Regex.matches(in: p.text), behavior: .isolated)) : [p]
            return parts.map { part in
                var q = Piece(text: ByteLevelTable.encode(part.text), origin: nil)
                if let o = part.origin {
                    // Every byte of a character keeps the character's origin.
                    q.origin = zip(part.text, o).flatMap { c, origin in [Int](repeating: origin, count: c.value < 0x80 ? 1 : String(Character(c)).utf8.count) }
                }
                return q
            }
        case let .metaspace(replacement, scheme, split):
            var p = piece
            p.text = p.text.map { $0 == " " ? replacement : $0 }
            let prepend: Bool
            switch scheme {
            case .always: prepend = p.text.first != replacement
            case .first: prepend = p.text.first != replacement && piece.atStart
            case .never: prepend = false
            }
            if prepend {
                p.text.insert(replacement, at: 0)
                if let o = p.origin { p.origin = [o[0]] + o }
            }
            guard split else { return [p] }
            return subPieces(p, splitSpans(count: p.text.count, matches: scalarMatches(p.text) { $0 == replacement }, behavior: .mergedWithNext))
        case .whitespace:
            // `\w+|[^\w\s]+` kept, everything else removed.
            var matches: [Range<Int>] = []
            var i = 0
            while i < text.count {
                let c = text[i]
                if c.isWordCharacter {
                    var j = i + 1
                    while j < text.count && text[j].isWordCharacter { j += 1 }
                    matches.append(i..<j)
                    i = j
                } else if !c.isWhitespace {
                    var j = i + 1
                    while j < text.count && !text[j].isWordCharacter && !text[j].isWhitespace { j += 1 }
                    matches.append(i..<j)
                    i = j
                } else {
                    i += 1
                }
            }
            return subPieces(piece, splitSpans(count: text.count, matches: matches, behavior: .removed, invert: true))
        case .whitespaceSplit:
            return subPieces(piece, splitSpans(count: text.count, matches: scalarMatches(text) { $0.isWhitespace }, behavior: .removed))
        case .bert:
            let words = subPieces(piece, splitSpans(count: text.count, matches: scalarMatches(text) { $0.isWhitespace }, behavior: .removed))
            return words.flatMap { w in
                subPieces(w, splitSpans(count: w.text.count, matches: scalarMatches(w.text) { $0.isBertPunctuation }, behavior: .isolated))
            }
        case let .split(regex, behavior, invert):
            return subPieces(piece, splitSpans(count: text.count, matches: regex.matches(in: text), behavior: behavior, invert: invert))
        case .digits(let individual):
            return subPieces(piece, splitSpans(count: text.count, matches: scalarMatches(text) { $0.isNumeric },
                                               behavior: individual ? .isolated : .contiguous))
        case .punctuation(let behavior):
            return subPieces(piece, splitSpans(count: text.count, matches: scalarMatches(text) { $0.isBertPunctuation }, behavior: behavior))
        case .charDelimiter(let d):
            return subPieces(piece, splitSpans(count: text.count, matches: scalarMatches(text) { $0 == d }, behavior: .removed))
        case .sequence(let items):
            return items.reduce([piece]) { $1.apply($0) }
        }
    }
}
