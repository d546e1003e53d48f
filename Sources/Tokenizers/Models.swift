import Foundation
import JSON

/// A tokenization model: turns one pre-tokenized word into ids.
protocol TokenModel: AnyObject, Sendable {
    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) throws
    func tokenToID(_ token: String) -> Int?
    func idToToken(_ id: Int) -> String?
    var vocabSize: Int { get }
}

/// model.vocab as token -> id and id -> token. Tokens are keyed by their exact scalars: a vocabulary may hold
/// both "\u{E9}" and "e\u{301}", which `String` keys would merge.
func parseVocabulary(_ json: JSONValue, path: String) throws -> ([ExactString: Int], [Int: String]) {
    guard let vocabJSON = json["vocab"]?.objectValue else { throw TokenizerError("\(path): model.vocab is missing or not an object") }
    var vocab = [ExactString: Int](minimumCapacity: vocabJSON.count)
    var vocabR = [Int: String](minimumCapacity: vocabJSON.count)
    for (token, v) in vocabJSON {
        guard let id = v.intValue else { throw TokenizerError("\(path): model.vocab['\(token)'] is not an integer") }
        vocab[ExactString(token)] = id
        vocabR[id] = token
    }
    return (vocab, vocabR)
}

func scalarsString(_ s: some Sequence<Unicode.Scalar>) -> String {
    var v = String.UnicodeScalarView()
    v.append(contentsOf: s)
    return String(v)
}

/// Byte-pair encoding with the library's options: merges by rank, byte fallback (`<0xAB>` tokens), an unknown
/// token (optionally fused), continuing-subword prefix, end-of-word suffix, `ignore_merges`.
final class BPEModel: TokenModel, @unchecked Sendable {
    let vocab: [ExactString: Int]
    let vocabR: [Int: String]
    /// (left id, right id) packed -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkToken: String?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// `<0x00>` ... `<0xFF>` ids when byte fallback is on.
    private let byteIDs: [Int?]
    /// Single-scalar lookups, the common case with no prefix or suffix.
    private let scalarIDs: [UInt32: Int]

    private let cacheLock = NSLock()
    /// Keyed by the word's scalars (exact, unlike `String` keys).
    private var cache: [[Unicode.Scalar]: [Int]] = [:]
    private static let cacheCapacity = 100_000
    private static let maxCachedLength = 256

    init(json: JSONValue, path: String) throws {
        let (vocab, vocabR) = try parseVocabulary(json, path: path)
        self.vocab = vocab
        self.vocabR = vocabR
        unkToken = json["unk_token"]?.stringValue
        continuingSubwordPrefix = json["continuing_subword_prefix"]?.stringValue
        endOfWordSuffix = json["end_of_word_suffix"]?.stringValue
        fuseUnk = json["fuse_unk"]?.boolValue ?? false
        byteFallback = json["byte_fallback"]?.boolValue ?? false
        ignoreMerges = json["ignore_merges"]?.boolValue ?? false
        if let dropout = json["dropout"]?.doubleValue, dropout > 0 {
            throw TokenizerError("\(path): BPE dropout \(dropout) is a training-time option and is not supported")
        }

        // Merges: ["a b", ...] (legacy) or [["a", "b"], ...]. A later duplicate overrides an earlier one, as the
        // library's map does.
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        let prefixCount = continuingSubwordPrefix?.utf8.count ?? 0
        for (rank, m) in (json["merges"]?.arrayValue ?? []).enumerated() {
            let a: String, b: String
            if let s = m.stringValue {
                // Split at the space byte, as the library does: splitting Characters would miss a space that a
                // combining mark follows (" \u{301}" is one Character).
                let parts = s.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError("\(path): merge \(rank) '\(s)' is not two tokens separated by one space") }
                a = String(decoding: parts[0], as: UTF8.self)
                b = String(decoding: parts[1], as: UTF8.self)
            } else if let pair = m.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                a = x
                b = y
            } else {
                throw TokenizerError("\(path): merge \(rank) is neither 'a b' nor [a, b]")
            }
            guard let aID = vocab[ExactString(a)], let bID = vocab[ExactString(b)] else {
                throw TokenizerError("\(path): merge \(rank) uses a token that is not in the vocabulary: '\(vocab[ExactString(a)] == nil ? a : b)'")
            }
            let merged = a + String(decoding: Array(b.utf8).dropFirst(min(prefixCount, b.utf8.count)), as: UTF8.self)
            guard let mergedID = vocab[ExactString(merged)] else {
                throw TokenizerError("\(path): merge \(rank) makes '\(merged)', which is not in the vocabulary")
            }
            merges[Self.pair(aID, bID)] = (Int32(rank), Int32(mergedID))
        }
        self.merges = merges
        byteIDs = (0..<256).map { vocab[ExactString(String(format: "<0x%02X>", $0))] }
        var scalarIDs: [UInt32: Int] = [:]
        for (token, id) in vocab {
            let scalars = token.string.unicodeScalars
            if scalars.count == 1 { scalarIDs[scalars.first!.value] = id }
        }
        self.scalarIDs = scalarIDs
    }

    @inline(__always) static func pair(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b)) }

    var vocabSize: Int { vocab.count }
    func tokenToID(_ token: String) -> Int? { vocab[ExactString(token)] }
    func idToToken(_ id: Int) -> String? { vocabR[id] }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) throws {
        if ignoreMerges, let id = vocab[ExactString(scalarsString(word))] {
            ids.append(id)
            return
        }
        cacheLock.lock()
        let hit = cache[word]
        cacheLock.unlock()
        if let hit {
            ids.append(contentsOf: hit)
            return
        }
        let result = try mergeWord(word)
        ids.append(contentsOf: result)
        if word.count < Self.maxCachedLength {
            cacheLock.lock()
            if cache.count < Self.cacheCapacity { cache[word] = result }
            cacheLock.unlock()
        }
    }

    /// One symbol per character (or byte-fallback bytes, or unknown), then merges by rank, lowest first and
    /// leftmost among equals — the library's `merge_word` and `merge_all`.
    private func mergeWord(_ word: [Unicode.Scalar]) throws -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var pendingUnk: Int? = nil
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        for (i, c) in word.enumerated() {
            var id: Int? = nil
            var text: String? = nil
            if plain {
                id = scalarIDs[c.value]
            } else {
                var s = String(Character(c))
                if i > 0, let p = continuingSubwordPrefix { s = p + s }
                if i == word.count - 1, let e = endOfWordSuffix { s += e }
                id = vocab[ExactString(s)]
                text = s
            }
            if let id {
                if let u = pendingUnk {
                    symbols.append(u)
                    pendingUnk = nil
                }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let bytes = Array((text ?? String(Character(c))).utf8)
                let fallback = bytes.compactMap { byteIDs[Int($0)] }
                if fallback.count == bytes.count {
                    // As the library does, a pending unknown is not flushed before byte tokens.
                    symbols.append(contentsOf: fallback)
                    continue
                }
            }
            if let unk = unkToken {
                guard let unkID = vocab[ExactString(unk)] else { throw TokenizerError("unknown token '\(unk)' is not in the vocabulary") }
                if let u = pendingUnk, !fuseUnk { symbols.append(u) }
                pendingUnk = unkID
            }
        }
        if let u = pendingUnk { symbols.append(u) }
        if symbols.count < 2 { return symbols }
        return merge(symbols)
    }

    private func merge(_ initial: [Int]) -> [Int] {
        var ids = initial
        let n = ids.count
        var next = Array(1...n)  // index of the next live symbol (n: none)
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        // Min-heap of candidate merges (rank, position, merged id).
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges[Self.pair(ids[i], ids[i + 1])] { heap.push(.init(rank: m.rank, pos: Int32(i), id: m.id)) }
        }
        while let top = heap.pop() {
            let i = Int(top.pos)
            guard alive[i] else { continue }
            let j = next[i]
            guard j < n else { continue }
            // The pair may have changed since this candidate was queued.
            guard let m = merges[Self.pair(ids[i], ids[j])], m.id == top.id else { continue }
            ids[i] = Int(top.id)
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0, let m = merges[Self.pair(ids[prev[i]], ids[i])] {
                heap.push(.init(rank: m.rank, pos: Int32(prev[i]), id: m.id))
            }
            if next[i] < n, let m = merges[Self.pair(ids[i], ids[next[i]])] {
                heap.push(.init(rank: m.rank, pos: Int32(i), id: m.id))
            }
        }
        var out: [Int] = []
        out.reserveCapacity(n)
        for i in 0..<n where alive[i] { out.append(ids[i]) }
        return out
    }
}

/// A binary min-heap ordered by (rank, position).
struct MergeHeap {
    struct Item { var rank: Int32; var pos: Int32; var id: Int32 }
    private var items: [Item] = []

    @inline(__always) private static func less(_ a: Item, _ b: Item) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    mutating func push(_ x: Item) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !Self.less(items[i], items[p]) { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Item? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && Self.less(items[l], items[m]) { m = l }
                if r < items.count && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// Greedy longest-match-first subwords with a continuation prefix (BERT).
final class WordPieceModel: TokenModel, @unchecked Sendable {
    let vocab: [ExactString: Int]
    let vocabR: [Int: String]
    let unkToken: String
    let prefix: String
    let maxInputCharsPerWord: Int

    init(json: JSONValue, path: String) throws {
        let (vocab, vocabR) = try parseVocabulary(json, path: path)
        self.vocab = vocab
        self.vocabR = vocabR
        unkToken = json["unk_token"]?.stringValue ?? "[UNK]"
        prefix = json["continuing_subword_prefix"]?.stringValue ?? "##"
        maxInputCharsPerWord = json["max_input_chars_per_word"]?.intValue ?? 100
    }

    var vocabSize: Int { vocab.count }
    func tokenToID(_ token: String) -> Int? { vocab[ExactString(token)] }
    func idToToken(_ id: Int) -> String? { vocabR[id] }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) throws {
        guard let unkID = vocab[ExactString(unkToken)] else { throw TokenizerError("WordPiece unknown token '\(unkToken)' is not in the vocabulary") }
        if word.count > maxInputCharsPerWord {
            ids.append(unkID)
            return
        }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int? = nil
            while start < end {
                var s = scalarsString(word[start..<end])
                if start > 0 { s = prefix + s }
                if let id = vocab[ExactString(s)] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(unkID)
                return
            }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }
}

/// Whole words looked up in a vocabulary, or the unknown token.
final class WordLevelModel: TokenModel, @unchecked Sendable {
    let vocab: [ExactString: Int]
    let vocabR: [Int: String]
    let unkToken: String

    init(json: JSONValue, path: String) throws {
        let (vocab, vocabR) = try parseVocabulary(json, path: path)
        self.vocab = vocab
        self.vocabR = vocabR
        unkToken = json["unk_token"]?.stringValue ?? "<unk>"
    }

    var vocabSize: Int { vocab.count }
    func tokenToID(_ token: String) -> Int? { vocab[ExactString(token)] }
    func idToToken(_ id: Int) -> String? { vocabR[id] }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) throws {
        if let id = vocab[ExactString(scalarsString(word))] {
            ids.append(id)
        } else if let unk = vocab[ExactString(unkToken)] {
            ids.append(unk)
        } else {
            throw TokenizerError("WordLevel unknown token '\(unkToken)' is not in the vocabulary")
        }
    }
}
