import JSON

/// A token from tokenizer.json's "added_tokens", split out of the text before the model runs.
struct AddedToken: Sendable {
    let id: Int
    let content: String
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool
}

/// Finds added tokens in text: leftmost match first, the longest among those starting there, with the tokens'
/// single_word / lstrip / rstrip rules — as the library's AddedVocabulary does.
struct AddedTokenMatcher: Sendable {
    private struct Candidate: Sendable { let pattern: [Unicode.Scalar]; let token: AddedToken }
    /// Candidates by first scalar, longest first.
    private let byFirst: [Unicode.Scalar: [Candidate]]

    var isEmpty: Bool { byFirst.isEmpty }

    init(_ tokens: [(pattern: String, token: AddedToken)]) {
        var d: [Unicode.Scalar: [Candidate]] = [:]
        for (pattern, token) in tokens {
            let p = Array(pattern.unicodeScalars)
            guard let first = p.first else { continue }
            d[first, default: []].append(Candidate(pattern: p, token: token))
        }
        byFirst = d.mapValues { $0.sorted { $0.pattern.count > $1.pattern.count } }
    }

    /// Splits each plain piece around the tokens found in it; token pieces pass through.
    func split(_ pieces: [Piece]) -> [Piece] {
        if isEmpty { return pieces }
        var out: [Piece] = []
        for p in pieces {
            if p.tokenID != nil { out.append(p); continue }
            out += split(p)
        }
        return out
    }

    private func split(_ piece: Piece) -> [Piece] {
        let text = piece.text
        var out: [Piece] = []
        var startOffset = 0
        var i = 0
        func emit(_ r: Range<Int>, id: Int?) {
            guard !r.isEmpty else { return }
            out.append(Piece(text: Array(text[r]), origin: piece.origin.map { Array($0[r]) }, tokenID: id))
        }
        while i < text.count {
            guard let candidates = byFirst[text[i]],
                  let match = candidates.first(where: { c in
                      i + c.pattern.count <= text.count && text[i..<(i + c.pattern.count)].elementsEqual(c.pattern)
                  })
            else {
                i += 1
                continue
            }
            let token = match.token
            var start = i
            var stop = i + match.pattern.count
            i = stop
            if token.singleWord {
                let startSpace = start == 0 || !text[start - 1].isWordCharacter
                let stopSpace = stop == text.count || !text[stop].isWordCharacter
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var s = start
                while s > 0 && text[s - 1].isWhitespace { s -= 1 }
                start = max(s, startOffset)
            }
            if token.rstrip {
                while stop < text.count && text[stop].isWhitespace { stop += 1 }
            }
            if startOffset < start { emit(startOffset..<start, id: nil) }
            emit(start..<stop, id: token.id)
            startOffset = stop
        }
        if startOffset < text.count { emit(startOffset..<text.count, id: nil) }
        return out
    }
}
