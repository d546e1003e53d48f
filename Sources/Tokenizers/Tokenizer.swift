import Foundation
import JSON

/// A Hugging Face `tokenizer.json` tokenizer that encodes and decodes exactly as the `tokenizers` library does:
/// added tokens split out first, then normalizer, pre-tokenizer, model, truncation, post-processor and padding.
public final class Tokenizer: @unchecked Sendable {
    public struct Truncation: Sendable {
        public var maxLength: Int
        public var fromLeft: Bool
        public var onlySecond: Bool
    }
    public struct Padding: Sendable {
        /// nil: pad to the longest of the batch (a single sequence: its own length).
        public var fixedLength: Int?
        public var toMultipleOf: Int?
        public var padID: Int
        public var left: Bool
    }

    /// Where the tokenizer was loaded from, for messages.
    public let source: String
    let model: TokenModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    let addedTokens: [Int: AddedToken]
    /// Added tokens by their exact content (`String` keys would merge canonically equivalent contents).
    let addedByContent: [ExactString: Int]
    /// Added tokens as decode returns them (normalized content for normalized tokens).
    let addedDecoded: [Int: String]
    let specialContents: Set<ExactString>
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    /// Whether pieces carry their input offsets (only Metaspace's `first` scheme needs them).
    let tracksOrigins: Bool
    public let truncation: Truncation?
    public let padding: Padding?

    /// Named special tokens from tokenizer_config.json / special_tokens_map.json (bos, eos, pad, unk, ...).
    public private(set) var specialTokens: [String: String] = [:]
    /// tokenizer_config.json, when the folder has one.
    public private(set) var config: JSONValue? = nil

    /// Loads `tokenizer.json` from a file, or a folder holding `tokenizer.json` and optionally
    /// `tokenizer_config.json` and `special_tokens_map.json`.
    public convenience init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError("\(path): no such file or folder")
        }
        let folder = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let file = isDirectory.boolValue ? (path as NSString).appendingPathComponent("tokenizer.json") : path
        guard FileManager.default.fileExists(atPath: file) else {
            throw TokenizerError("\(folder): no tokenizer.json (only tokenizer.json tokenizers are supported; convert slow tokenizers with transformers first)")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(contentsOf: file)
        } catch {
            throw TokenizerError("\(file): not valid JSON (\(error))")
        }
        try self.init(json: json, source: file)
        try loadSpecialTokens(folder: folder)
    }

    public init(json: JSONValue, source: String = "tokenizer.json") throws {
        self.source = source
        guard json.objectValue != nil else { throw TokenizerError("\(source): not a JSON object") }
        func component<T>(_ key: String, _ make: (JSONValue) throws -> T) throws -> T? {
            guard let v = json[key], !v.isNull else { return nil }
            return try make(v)
        }
        normalizer = try component("normalizer") { try Normalizer(json: $0, path: source) }
        preTokenizer = try component("pre_tokenizer") { try PreTokenizer(json: $0, path: source) }
        postProcessor = try component("post_processor") { try PostProcessor(json: $0, path: source) }
        decoder = try component("decoder") { try Decoder(json: $0, path: source) }
        tracksOrigins = preTokenizer?.needsOrigins ?? false

        guard let modelJSON = json["model"], modelJSON.objectValue != nil else { throw TokenizerError("\(source): missing key 'model'") }
        let type = modelJSON["type"]?.stringValue ?? (modelJSON["merges"] != nil ? "BPE" : modelJSON["continuing_subword_prefix"] != nil ? "WordPiece" : "WordLevel")
        switch type {
        case "BPE": model = try BPEModel(json: modelJSON, path: source)
        case "WordPiece": model = try WordPieceModel(json: modelJSON, path: source)
        case "WordLevel": model = try WordLevelModel(json: modelJSON, path: source)
        default: throw TokenizerError("\(source): model type '\(type)' is not supported (BPE, WordPiece and WordLevel are)")
        }

        var added: [Int: AddedToken] = [:]
        for (i, t) in (json["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, let content = t["content"]?.stringValue else {
                throw TokenizerError("\(source): added_tokens[\(i)] needs an integer 'id' and a 'content' string")
            }
            let special = t["special"]?.boolValue ?? false
            added[id] = AddedToken(id: id, content: content, singleWord: t["single_word"]?.boolValue ?? false,
                                   lstrip: t["lstrip"]?.boolValue ?? false, rstrip: t["rstrip"]?.boolValue ?? false,
                                   normalized: t["normalized"]?.boolValue ?? !special, special: special)
        }
        addedTokens = added
        // Of two added tokens with the same content, the lower id (deterministically, whatever the order of `added`).
        addedByContent = Dictionary(added.map { (ExactString($0.value.content), $0.key) }, uniquingKeysWith: { a, b in min(a, b) })
        specialContents = Set(added.values.filter(\.special).map { ExactString($0.content) })
        var raw: [(String, AddedToken)] = []
        var normalizedPatterns: [(String, AddedToken)] = []
        var decoded: [Int: String] = [:]
        for t in added.values.sorted(by: { $0.id < $1.id }) where !t.content.isEmpty {
            if t.normalized, let n = normalizer {
                var s = Array(t.content.unicodeScalars)
                var noOrigins: [Int]? = nil
                n.normalize(&s, &noOrigins)
                let pattern = scalarsString(s)
                normalizedPatterns.append((pattern, t))
                if !pattern.isByteEqual(to: t.content) { decoded[t.id] = pattern }
            } else if t.normalized {
                normalizedPatterns.append((t.content, t))
            } else {
                raw.append((t.content, t))
            }
        }
        addedDecoded = decoded
        rawMatcher = AddedTokenMatcher(raw.map { (pattern: $0.0, token: $0.1) })
        normalizedMatcher = AddedTokenMatcher(normalizedPatterns.map { (pattern: $0.0, token: $0.1) })

        if let t = json["truncation"], !t.isNull {
            guard let maxLength = t["max_length"]?.intValue, maxLength >= 0 else { throw TokenizerError("\(source): truncation.max_length is missing") }
            truncation = Truncation(maxLength: maxLength, fromLeft: t["direction"]?.stringValue == "Left",
                                    onlySecond: t["strategy"]?.stringValue == "OnlySecond")
        } else {
            truncation = nil
        }
        if let p = json["padding"], !p.isNull {
            var fixed: Int? = nil
            if let f = p["strategy"]?["Fixed"] {
                guard let n = f.intValue else { throw TokenizerError("\(source): padding.strategy.Fixed is not an integer") }
                fixed = n
            }
            padding = Padding(fixedLength: fixed, toMultipleOf: p["pad_to_multiple_of"]?.intValue, padID: p["pad_id"]?.intValue ?? 0,
                              left: p["direction"]?.stringValue == "Left")
        } else {
            padding = nil
        }
    }

    private func loadSpecialTokens(folder: String) throws {
        // special_tokens_map.json first, tokenizer_config.json overrides (as transformers merges them).
        for name in ["special_tokens_map.json", "tokenizer_config.json"] {
            let file = (folder as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: file) else { continue }
            let json: JSONValue
            do {
                json = try JSONValue.parse(contentsOf: file)
            } catch {
                throw TokenizerError("\(file): not valid JSON (\(error))")
            }
            if name == "tokenizer_config.json" { config = json }
            for (key, value) in json.objectValue ?? [] {
                // "<name>_token", compared by bytes.
                let bytes = Array(key.utf8)
                guard bytes.count >= 6, bytes.suffix(6).elementsEqual("_token".utf8) else { continue }
                let name = String(decoding: bytes.dropLast(6), as: UTF8.self)
                if let s = value.stringValue {
                    specialTokens[name] = s
                } else if let s = value["content"]?.stringValue {
                    specialTokens[name] = s
                }
            }
        }
    }

    // MARK: vocabulary

    /// Vocabulary size including added tokens.
    public var vocabularySize: Int { Swift.max(model.vocabSize, (addedTokens.keys.max() ?? -1) + 1) }

    /// The id of the token with exactly these scalars ("\u{E9}" and "e\u{301}" are two tokens).
    public func tokenToID(_ token: String) -> Int? { addedByContent[ExactString(token)] ?? model.tokenToID(token) }

    public func idToToken(_ id: Int) -> String? { addedTokens[id]?.content ?? model.idToToken(id) }

    /// The id of a named special token ("bos", "eos", "pad", "unk") from the folder's configuration.
    public func specialTokenID(_ name: String) -> Int? { specialTokens[name].flatMap { tokenToID($0) } }

    public func isSpecial(_ id: Int) -> Bool { addedTokens[id]?.special ?? false }

    // MARK: encoding

    /// Token ids of `text`, as `Tokenizer.encode(text, add_special_tokens=...)`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws -> [Int] {
        finish(try encodeModelIDs(text), addSpecialTokens: addSpecialTokens)
    }

    /// The model's ids before truncation, special tokens and padding.
    func encodeModelIDs(_ text: String) throws -> [Int] {
        let scalars = Array(text.unicodeScalars)
        var pieces = rawMatcher.split([Piece(text: scalars, origin: tracksOrigins ? Array(0..<scalars.count) : nil)])
        pieces = pieces.flatMap { p -> [Piece] in
            guard p.tokenID == nil else { return [p] }
            var q = p
            normalizer?.normalize(&q)
            if q.text.isEmpty { return [] }
            return normalizedMatcher.split([q])
        }
        if let preTokenizer { pieces = preTokenizer.apply(pieces) }
        var ids: [Int] = []
        ids.reserveCapacity(text.unicodeScalars.count / 3 + 4)
        for p in pieces {
            if let id = p.tokenID {
                ids.append(id)
            } else if !p.text.isEmpty {
                try model.tokenize(p.text, into: &ids)
            }
        }
        return ids
    }

    /// Ids truncated to `maxLength` (special tokens included) the way transformers' tokenizer call with
    /// `truncation=True, max_length=...` does: the file's own truncation and padding sections are ignored.
    public func encode(_ text: String, addSpecialTokens: Bool, maxLength: Int) throws -> [Int] {
        var ids = try encodeModelIDs(text)
        let added = addSpecialTokens ? (postProcessor?.addedCount ?? 0) : 0
        let limit = Swift.max(0, maxLength - added)
        if ids.count > limit { ids = Array(ids.prefix(limit)) }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    /// Truncation, special tokens and padding, in the library's order.
    func finish(_ encoded: [Int], addSpecialTokens: Bool) -> [Int] {
        var ids = encoded
        if let t = truncation, !t.onlySecond {
            let added = addSpecialTokens ? (postProcessor?.addedCount ?? 0) : 0
            let limit = Swift.max(0, t.maxLength - added)
            if ids.count > limit { ids = t.fromLeft ? Array(ids.suffix(limit)) : Array(ids.prefix(limit)) }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        if let p = padding {
            var target = p.fixedLength ?? ids.count
            if let m = p.toMultipleOf, m > 0, target % m > 0 { target += m - target % m }
            if ids.count < target {
                let pad = [Int](repeating: p.padID, count: target - ids.count)
                ids = p.left ? pad + ids : ids + pad
            }
        }
        return ids
    }

    // MARK: decoding

    /// Text of `ids`, as `Tokenizer.decode(ids, skip_special_tokens=...)`; ids the tokenizer does not know decode
    /// to nothing.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = addedDecoded[id] ?? addedTokens[id]?.content ?? model.idToToken(id) else { continue }
            if skipSpecialTokens && specialContents.contains(ExactString(token)) { continue }
            tokens.append(token)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }
}
