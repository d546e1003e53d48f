/// A tokenizer.json that cannot be used, naming the file and the component or key.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A span of text on its way through normalizers and pre-tokenizers, or an added token already split out.
struct Piece {
    var text: [Unicode.Scalar]
    /// For each scalar, the input offset it came from, kept (as the library's alignments) only when a
    /// pre-tokenizer needs it: Metaspace's `first` prepend scheme asks whether a word starts at offset 0.
    var origin: [Int]?
    /// The id of an added token matched in the input; such pieces skip normalization and the model.
    var tokenID: Int? = nil

    var atStart: Bool { origin?.first == 0 }
}

/// How a split keeps the delimiters it finds (the library's SplitDelimiterBehavior).
enum SplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// Splits `text` at the given match ranges (sorted, non-overlapping) with one of the library's behaviours.
/// Returns the kept spans; empty spans are dropped, as the library does.
func splitSpans(count: Int, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [Range<Int>] {
    // All spans in order, each flagged as a match or not.
    var spans: [(Range<Int>, Bool)] = []
    spans.reserveCapacity(matches.count * 2 + 1)
    var previous = 0
    for m in matches {
        if previous < m.lowerBound { spans.append((previous..<m.lowerBound, false)) }
        spans.append((m, true))
        previous = m.upperBound
    }
    if previous < count { spans.append((previous..<count, false)) }
    if invert { spans = spans.map { ($0.0, !$0.1) } }

    var out: [Range<Int>] = []
    switch behavior {
    case .removed:
        out = spans.filter { !$0.1 }.map(\.0)
    case .isolated:
        out = spans.map(\.0)
    case .contiguous:
        var previousMatch = false
        for (r, isMatch) in spans {
            if let last = out.last, isMatch == previousMatch {
                out[out.count - 1] = last.lowerBound..<r.upperBound
            } else {
                out.append(r)
            }
            previousMatch = isMatch
        }
    case .mergedWithPrevious:
        var previousMatch = false
        for (r, isMatch) in spans {
            if isMatch && !previousMatch, let last = out.last {
                out[out.count - 1] = last.lowerBound..<r.upperBound
            } else {
                out.append(r)
            }
            previousMatch = isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        var reversed: [Range<Int>] = []
        for (r, isMatch) in spans.reversed() {
            if isMatch && !previousMatch, let last = reversed.last {
                reversed[reversed.count - 1] = r.lowerBound..<last.upperBound
            } else {
                reversed.append(r)
            }
            previousMatch = isMatch
        }
        out = reversed.reversed()
    }
    return out.filter { !$0.isEmpty }
}

/// Splits a piece into sub-pieces by spans of its text.
func subPieces(_ piece: Piece, _ spans: [Range<Int>]) -> [Piece] {
    spans.map { r in Piece(text: Array(piece.text[r]), origin: piece.origin.map { Array($0[r]) }) }
}

/// Spans of a predicate's matches: each matching scalar is its own match (the library's `Fn(char) -> bool`
/// pattern).
func scalarMatches(_ text: [Unicode.Scalar], _ predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
    var out: [Range<Int>] = []
    for (i, c) in text.enumerated() where predicate(c) { out.append(i..<(i + 1)) }
    return out
}
