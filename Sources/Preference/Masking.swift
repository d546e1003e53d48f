import Backends
import Common
import Foundation

/// The mask token of masked answers.
public let maskToken = "[MASK]"

/// A masked answer: the literal pieces around its masks (`pieces.count == masks + 1`).
public struct MaskedText: Sendable, Equatable {
    public let text: String
    public let pieces: [String]
    public var maskCount: Int { pieces.count - 1 }

    public init(_ text: String) {
        self.text = text
        pieces = text.components(separatedBy: maskToken)
    }

    /// The text with mask i replaced by fills[i].
    public func filled(_ fills: [String]) -> String {
        var out = pieces[0]
        for (i, fill) in fills.enumerated() where i + 1 < pieces.count { out += fill + pieces[i + 1] }
        return out
    }

    /// The fills that turn this template into `text`, if `text` keeps every literal piece in order (whitespace
    /// runs compared as one space). Nil when it does not.
    public func fills(matching text: String) -> [String]? {
        let pattern = "^" + pieces.map { piece in
            piece.split(omittingEmptySubsequences: false, whereSeparator: { $0.isWhitespace }).map { NSRegularExpression.escapedPattern(for: String($0)) }.joined(separator: "\\s+")
        }.joined(separator: "(.*?)") + "$"
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]) else { return nil }
        let ns = text as NSString
        guard let match = regex.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (1..<match.numberOfRanges).map { ns.substring(with: match.range(at: $0)) }
    }
}

/// Why a masked answer is refused.
public struct MaskError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Masked answers must keep the answer's text outside the masks and hide at least one non-empty part of it.
public func validateMask(original: String, masked: String) throws {
    let template = MaskedText(masked)
    guard template.maskCount > 0 else { throw MaskError("the masked answer has no \(maskToken)") }
    guard let hidden = template.fills(matching: original) else {
        throw MaskError("the masked answer changes the text outside its masks")
    }
    guard hidden.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
        throw MaskError("the masks hide nothing of the answer")
    }
}

/// Turns a correct answer into a masked one.
public protocol Masker: Sendable {
    var name: String { get }
    func mask(answer: String, prompt: String, image: String) async throws -> String
}

/// Masks words about objects, attributes (colours, sizes, materials, counts) and spatial relations from built-in
/// lexicons, plus any words or phrases the user adds. Needs no network; the text outside the masks is left exactly
/// as it was. A phrase is matched before its words; each matched word or phrase is one span. By default every span
/// is masked; strategically (`spans`, `kinds`), at most `spans` of the spans of the chosen kinds are, drawn with a
/// generator seeded by `seed` and the answer, so the same answer gets the same mask.
public struct RuleMasker: Masker {
    /// What a span names.
    public enum Kind: String, CaseIterable, Sendable { case objects, attributes, relations }

    public var name: String {
        guard spans != nil || kinds != Set(Kind.allCases) else { return "rules" }
        return "rules (\(spans.map { "\($0) span\($0 == 1 ? "" : "s")" } ?? "every span") of \(Kind.allCases.filter(kinds.contains).map(\.rawValue).joined(separator: ", ")))"
    }
    /// Lower-case words and phrases to mask, with their kind.
    public private(set) var lexicon: [String: Kind]
    private var longestPhrase: Int
    /// At most this many spans per answer (nil: every span).
    public var spans: Int?
    /// The kinds of span that may be masked.
    public var kinds = Set(Kind.allCases)
    public var seed: UInt64 = 0

    public init(extraWords: [String] = []) {
        var words: [String: Kind] = [:]
        for (kind, lists) in [(Kind.objects, [Self.objects]), (.attributes, [Self.colours, Self.counts, Self.sizes, Self.materials]), (.relations, [Self.spatial])] {
            for list in lists { for w in list.split(separator: " ") { words[w.replacingOccurrences(of: "_", with: " ")] = kind } }
        }
        // Added words: under a `[objects]` / `[attributes]` / `[relations]` line, that kind; before any, the kind the
        // built-in lexicons give them, else objects.
        var section: Kind?
        for w in extraWords {
            let t = w.trimmingCharacters(in: .whitespaces).lowercased()
            if t.hasPrefix("["), t.hasSuffix("]"), let k = Kind(rawValue: String(t.dropFirst().dropLast())) { section = k; continue }
            if t.isEmpty || t.hasPrefix("#") { continue }
            words[t] = section ?? words[t] ?? .objects
        }
        lexicon = words
        longestPhrase = words.keys.map { $0.split(separator: " ").count }.max() ?? 1
    }

    /// Reads a word list: one word or phrase per line, `#` starts a comment line, `[objects]`, `[attributes]` or
    /// `[relations]` starts the words of that kind.
    public init(wordList path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw MaskError("\(path): cannot read the word list") }
        self.init(extraWords: text.components(separatedBy: .newlines))
    }

    public func mask(answer: String, prompt: String, image: String) async throws -> String {
        let masked = maskText(answer)
        try validateMask(original: answer, masked: masked)
        return masked
    }

    /// The answer with the chosen lexicon spans replaced by masks.
    public func maskText(_ text: String) -> String {
        let found = spansOf(text).filter { kinds.contains($0.kind) }
        var chosen = found
        if let spans, found.count > spans {
            var hash = FNV1a64()
            hash.add(bytes: text.utf8)
            var rng = SplitMix64(seed: seed ^ hash.value)
            var order = Array(found.indices)
            order.shuffle(using: &rng)
            let keep = Set(order.prefix(max(0, spans)))
            chosen = found.indices.filter(keep.contains).map { found[$0] }
        }
        var out = ""
        var cursor = text.startIndex
        for span in chosen {
            out += text[cursor..<span.range.lowerBound] + maskToken
            cursor = span.range.upperBound
        }
        return out + text[cursor...]
    }

    /// Every lexicon span of the text, in order, with its kind.
    func spansOf(_ text: String) -> [(range: Range<String.Index>, kind: Kind)] {
        // Word spans: runs of letters, digits, apostrophes and hyphens.
        var words: [Range<String.Index>] = []
        var i = text.startIndex
        while i < text.endIndex {
            if text[i].isLetter || text[i].isNumber {
                var j = i
                while j < text.endIndex && (text[j].isLetter || text[j].isNumber || text[j] == "-" || text[j] == "'") { j = text.index(after: j) }
                words.append(i..<j)
                i = j
            } else {
                i = text.index(after: i)
            }
        }
        var out: [(range: Range<String.Index>, kind: Kind)] = []
        var w = 0
        while w < words.count {
            var matched: (Int, Kind)?
            // Longest phrase first; phrases span words separated by single spaces only.
            for n in stride(from: min(longestPhrase, words.count - w), through: 1, by: -1) {
                let span = text[words[w].lowerBound..<words[w + n - 1].upperBound]
                guard !span.contains(where: { !$0.isLetter && !$0.isNumber && $0 != " " && $0 != "-" && $0 != "'" }) else { continue }
                if let kind = kind(of: span.lowercased()) { matched = (n, kind); break }
            }
            if let (n, kind) = matched {
                out.append((words[w].lowerBound..<words[w + n - 1].upperBound, kind))
                w += n
            } else {
                w += 1
            }
        }
        return out
    }

    /// A lexicon entry's kind, or a plural's ("apples", "boxes", "berries", "knives"); numbers are attributes.
    func kind(of word: String) -> Kind? {
        if let k = lexicon[word] { return k }
        if word.allSatisfy(\.isNumber) { return .attributes }
        for (suffix, replacement) in [("ies", "y"), ("ves", "f"), ("ves", "fe"), ("es", ""), ("s", "")] where word.hasSuffix(suffix) {
            if let k = lexicon[String(word.dropLast(suffix.count)) + replacement] { return k }
        }
        return nil
    }

    // Lexicons (underscores join phrases). Objects: the COCO categories and common scene nouns.
    static let objects = """
        person people man men woman women boy girl child children kid baby player rider skier surfer bicycle bike car \
        motorcycle airplane plane bus train truck boat traffic_light fire_hydrant stop_sign parking_meter bench bird cat \
        dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee skis snowboard \
        ball kite bat baseball_bat baseball_glove glove skateboard surfboard tennis_racket racket bottle wine_glass \
        glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair \
        couch sofa potted_plant plant bed dining_table table toilet tv television laptop mouse remote keyboard phone \
        cell_phone microwave oven toaster sink refrigerator fridge book clock vase scissors teddy_bear hair_drier \
        toothbrush tree flower grass building house window door wall floor road street sidewalk sky cloud mountain \
        river lake sea ocean beach water snow field fence sign pole lamp light shelf box bag hat shirt jacket dress \
        shoe food plate basket flag tower bridge circle square triangle rectangle star shape ring hexagon cube
        """
    static let colours = """
        red blue green yellow orange purple pink brown black white gray grey silver gold golden beige tan cyan \
        magenta violet navy maroon turquoise teal dark light pale bright colorful colourful
        """
    static let counts = """
        one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen twenty dozen \
        single pair couple few several many multiple numerous both no none first second third
        """
    static let sizes = """
        small large big tiny huge giant little tall short long wide narrow thick thin massive miniature
        """
    static let materials = """
        wooden metal metallic plastic glass_made stone brick leather paper concrete
        """
    static let spatial = """
        left right above below under underneath beneath behind in_front_of front next_to beside near top bottom \
        middle center centre inside outside on_top_of between across along around against over
        """
}

/// Asks a model backend to mask an answer, then checks that the text outside the masks is the answer's.
public struct BackendMasker: Masker {
    public let backend: any ChatBackend
    public var name: String { backend.name }

    public init(backend: any ChatBackend) { self.backend = backend }

    static let instructions = """
        You hide the visual facts of an answer about an image. Replace each word or short phrase that names an \
        object, an attribute (colour, size, shape, material, count) or a relation between objects (position, \
        action) with \(maskToken). Keep every other character exactly as it is: same words, same order, same \
        punctuation. Mask between one and six spans. Reply with the masked answer only.
        """

    public func mask(answer: String, prompt: String, image: String) async throws -> String {
        let request = ChatRequest(system: Self.instructions, user: "Question: \(prompt)\nAnswer: \(answer)\n\nMasked answer:",
                                  image: nil, maxTokens: max(64, answer.count), temperature: 0)
        var masked = try await backend.complete(request).text.trimmingCharacters(in: .whitespacesAndNewlines)
        if masked.hasPrefix("Masked answer:") { masked = String(masked.dropFirst(14)).trimmingCharacters(in: .whitespaces) }
        try validateMask(original: answer, masked: masked)
        return masked
    }
}
