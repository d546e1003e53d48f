import Foundation

/// English word tokenization as nltk.word_tokenize (NLTK 3.2.5, which CHAIR pins) does it on one caption:
/// sentences first (a word ending in "." before whitespace ends one, as Punkt decides for ordinary words), then
/// the Penn Treebank rules on each sentence (punctuation split off, clitics like 's and n't separated, the
/// sentence's final period its own token). Hyphens, slashes and periods inside words stay.
public enum WordTokenizer {
    struct Rule {
        let regex: NSRegularExpression
        let template: String
        init(_ pattern: String, _ template: String, caseInsensitive: Bool = false) {
            regex = try! NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : [])
            self.template = template
        }
        func apply(_ s: String) -> String {
            regex.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
    }

    static let startingQuotes = [Rule(#"^""#, "``"), Rule("(``)", " $1 "), Rule(#"([ (\[{<])""#, "$1 `` ")]
    static let punctuation = [
        Rule(#"([:,])([^\d])"#, " $1 $2"), Rule("([:,])$", " $1 "), Rule(#"\.\.\."#, " ... "), Rule("[;@#$%&]", " $0 "),
        Rule(#"([^\.])(\.)([\]\)}>"']*)\s*$"#, "$1 $2$3 "), Rule("[?!]", " $0 "), Rule("([^'])' ", "$1 ' "),
    ]
    static let brackets = [Rule(#"[\]\[\(\)\{\}<>]"#, " $0 "), Rule("--", " -- ")]
    static let endingQuotes = [
        Rule(#"""#, " '' "), Rule("(\\S)('')", "$1 $2 "),
        Rule("([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "), Rule("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
    ]
    static let contractions = [
        "\\b(can)(not)\\b", "\\b(d)('ye)\\b", "\\b(gim)(me)\\b", "\\b(gon)(na)\\b", "\\b(got)(ta)\\b", "\\b(lem)(me)\\b", "\\b(mor)('n)\\b", "\\b(wan)(na) ",
        " ('t)(is)\\b", " ('t)(was)\\b",
    ].map { Rule($0, " $1 $2 ", caseInsensitive: true) }

    /// Abbreviations that do not end a sentence (Punkt's English model has more; none is a COCO object word).
    static let abbreviations: Set<String> = ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "inc", "co", "ltd", "no", "mt", "ft", "approx"]

    /// Splits into sentences: after a whitespace-delimited word ending in ".", unless it ends in "..", is a single
    /// letter or a number, or is a known abbreviation.
    static func sentences(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var word = ""
        func endsSentence(_ w: String) -> Bool {
            var core = Substring(w)
            while let last = core.last, "\"')]}".contains(last) { core = core.dropLast() }
            guard core.hasSuffix("."), !core.hasSuffix("..") else { return false }
            let stem = core.dropLast()
            let bare = stem.drop { "\"'([{`".contains($0) }
            if bare.count <= 1 || Double(bare) != nil || bare.allSatisfy({ $0.isNumber || $0 == "." || $0 == "," }) { return false }
            return !abbreviations.contains(String(bare).lowercased())
        }
        for c in text {
            if c.isWhitespace {
                if !word.isEmpty && endsSentence(word) {
                    out.append(current)
                    current = ""
                    word = ""
                    continue
                }
                word = ""
                current.append(c)
            } else {
                word.append(c)
                current.append(c)
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(current) }
        return out
    }

    /// The Treebank rules on one sentence.
    static func treebank(_ sentence: String) -> [String] {
        var text = sentence
        for rule in startingQuotes + punctuation + brackets { text = rule.apply(text) }
        text = " " + text + " "
        for rule in endingQuotes + contractions { text = rule.apply(text) }
        return text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }

    public static func tokenize(_ text: String) -> [String] {
        sentences(text).flatMap(treebank)
    }
}
