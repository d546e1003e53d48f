import Backends
import Common
import Foundation
import JSON

/// VaPR's key-span edit without a model: the word or phrase that carries the answer's category (a colour, a
/// count, an object, a size, a relation, yes/no) is swapped for another of its class — a colour for another
/// colour, a relation for its opposite — and the rest of the answer is left as it was. Captions get two edits.
/// The choice is seeded by the record id, so a re-run makes the same edit; substitutions the penalty list names
/// as overused are passed over.
public struct RuleEditor: Sendable {
    /// Interchangeable words and phrases by class (lower case).
    public var classes: [String: [String]]
    /// Pairs that swap with each other only (left of <-> right of, yes <-> no).
    public var opposites: [String: String]

    public static let classesForCategory: [TaskCategory: [String]] = [
        .colour: ["colour"], .counting: ["count"], .object: ["object"], .size: ["size"], .spatial: ["relation"],
        .existence: ["answer", "object"], .background: ["background", "colour"], .referential: ["colour", "object"],
        .reasoning: ["object", "colour"], .captioning: ["object", "colour", "count", "size", "relation"],
    ]

    public init(classes: [String: [String]], opposites: [(String, String)]) {
        self.classes = classes.mapValues { $0.map { $0.lowercased() } }
        var o: [String: String] = [:]
        for (a, b) in opposites {
            o[a.lowercased()] = b.lowercased()
            o[b.lowercased()] = a.lowercased()
        }
        self.opposites = o
    }

    /// General English word classes (the rule masker's colours, counts and sizes, COCO-style objects).
    public static let english = RuleEditor(
        classes: [
            "colour": ["red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray"],
            "count": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
            "size": ["small", "large", "big", "tiny", "huge", "tall", "short"],
            "object": ["person", "man", "woman", "child", "dog", "cat", "horse", "bird", "car", "bus", "truck", "bicycle",
                       "boat", "chair", "table", "couch", "bed", "tree", "cup", "bottle", "plate", "book", "clock", "umbrella"],
        ],
        opposites: [("left", "right"), ("above", "below"), ("top", "bottom"), ("in front of", "behind"), ("inside", "outside"),
                    ("near", "far from"), ("yes", "no"), ("small", "large"), ("big", "small")])

    /// Reads a lexicon file: `{"classes": {"colour": [...], "object": [...], ...}, "opposites": [["left of", "right of"], ...]}`.
    /// Classes the categories use: colour, count, object, size, relation, background, answer.
    public init(lexiconFile path: String) throws {
        let json: JSONValue
        do { json = try JSONValue.parse(contentsOf: path) } catch { throw BackendError("\(path): not valid JSON (\(error))") }
        guard let classes = json["classes"]?.objectValue else { throw BackendError("\(path): needs a \"classes\" object of word lists") }
        var c: [String: [String]] = [:]
        for (name, list) in classes {
            guard let words = list.arrayValue?.compactMap(\.stringValue), !words.isEmpty else { throw BackendError("\(path): classes.\(name) is not a list of words") }
            c[name] = words
        }
        var pairs: [(String, String)] = []
        for (i, p) in (json["opposites"]?.arrayValue ?? []).enumerated() {
            guard let a = p.arrayValue, a.count == 2, let x = a[0].stringValue, let y = a[1].stringValue else {
                throw BackendError("\(path): opposites[\(i)] is not a pair of words")
            }
            pairs.append((x, y))
        }
        self.init(classes: c, opposites: pairs)
    }

    /// The lexicon as a file `init(lexiconFile:)` reads.
    public var lexiconJSON: JSONValue {
        var seen = Set<String>()
        var pairs: [JSONValue] = []
        for key in opposites.keys.sorted() where !seen.contains(key) {
            let other = opposites[key]!
            seen.insert(key); seen.insert(other)
            pairs.append(.array([.string(key), .string(other)]))
        }
        return .object([("classes", .object(classes.keys.sorted().map { ($0, .array(classes[$0]!.map { .string($0) })) })), ("opposites", .array(pairs))])
    }

    struct Span { var range: Range<String.Index>; var text: String; var replacements: [String] }

    /// The spans of `text` a category may change, with their possible replacements, longest phrase first and
    /// never overlapping.
    func spans(in text: String, category: TaskCategory) -> [Span] {
        let lower = text.lowercased()
        guard lower.count == text.count else { return [] }
        var candidates: [(String, [String])] = []
        for cls in Self.classesForCategory[category] ?? [] {
            if cls == "relation" || cls == "answer" {
                let words = cls == "answer" ? ["yes", "no"] : opposites.keys.filter { $0 != "yes" && $0 != "no" }
                for w in words { if let o = opposites[w] { candidates.append((w, [o])) } }
            } else {
                let list = classes[cls] ?? []
                for w in list { candidates.append((w, list.filter { $0 != w })) }
            }
        }
        candidates.sort { $0.0.count != $1.0.count ? $0.0.count > $1.0.count : $0.0 < $1.0 }
        var taken: [Range<String.Index>] = []
        var out: [Span] = []
        for (word, replacements) in candidates where !replacements.isEmpty {
            var from = lower.startIndex
            while let r = lower.range(of: word, range: from..<lower.endIndex) {
                from = r.upperBound
                let before = r.lowerBound == lower.startIndex ? nil : lower[lower.index(before: r.lowerBound)]
                let after = r.upperBound == lower.endIndex ? nil : lower[r.upperBound]
                guard !(before?.isLetter ?? false), !(after?.isLetter ?? false) else { continue }
                guard !taken.contains(where: { $0.overlaps(r) }) else { continue }
                taken.append(r)
                out.append(Span(range: r, text: word, replacements: replacements))
            }
        }
        return out.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }

    /// The edited answer, or nil when the answer holds nothing of the category to change.
    public func edit(_ answer: String, category: TaskCategory, id: String, avoid: Set<String>) -> String? {
        var spans = spans(in: answer, category: category)
        guard !spans.isEmpty else { return nil }
        var rng = SplitMix64(seed: { var h = FNV1a64(); h.add(bytes: id.utf8); return h.value }())
        let edits = category == .captioning ? min(2, spans.count) : 1
        var chosen: [(Span, String)] = []
        while chosen.count < edits && !spans.isEmpty {
            let span = spans.remove(at: Int(rng.next() % UInt64(spans.count)))
            var options = span.replacements
            options.shuffle(using: &rng)
            if let r = options.first(where: { !avoid.contains("\(span.text) -> \($0)") }) { chosen.append((span, r)) }
        }
        guard !chosen.isEmpty else { return nil }
        var out = answer
        for (span, replacement) in chosen.sorted(by: { $0.0.range.lowerBound > $1.0.range.lowerBound }) {
            let original = String(answer[span.range])
            let cased = original.first?.isUppercase == true ? replacement.prefix(1).uppercased() + replacement.dropFirst() : replacement
            out.replaceSubrange(span.range, with: cased)
        }
        return out
    }
}
