import Foundation
import JSON
import Testing
@testable import Tokenizers

/// Text is scalars, not Swift `String` equality: canonically equivalent tokens and JSON keys stay apart, as they do
/// in the `tokenizers` library and in Python.
@Suite struct CanonicalEquivalenceTests {
    /// The id of `token` in a tokenizer.json's model.vocab or added_tokens, found by comparing scalars.
    func fixtureID(_ name: String, _ token: String) throws -> Int? {
        let json = try JSONValue.parse(contentsOf: fixture("\(name)/tokenizer.json"))
        let same = { (s: String) in s.unicodeScalars.elementsEqual(token.unicodeScalars) }
        for t in json["added_tokens"]?.arrayValue ?? [] where same(t["content"]?.stringValue ?? "") { return t["id"]?.intValue }
        return json["model"]?["vocab"]?.objectValue?.first { same($0.0) }?.1.intValue
    }

    @Test func canonicallyEquivalentTokensStayApart() throws {
        // llama's vocabulary (trained on both forms) holds "é" and "e" + U+0301 as two tokens.
        let llama = try Tokenizer(path: fixture("llama"))
        let composed = try #require(try fixtureID("llama", "\u{E9}"))
        let decomposed = try #require(try fixtureID("llama", "e\u{301}"))
        #expect(composed != decomposed)
        #expect(llama.tokenToID("\u{E9}") == composed)
        #expect(llama.tokenToID("e\u{301}") == decomposed)
        #expect(llama.idToToken(decomposed).map { Array($0.unicodeScalars) } == ["e", "\u{301}"])

        // variant_removed: Å as U+00C5 (a byte-level vocabulary token), A + U+030A and U+212B ANGSTROM SIGN (added
        // tokens); Ω as U+03A9 and as the special U+2126 OHM SIGN.
        let tok = try Tokenizer(path: fixture("variant_removed"))
        var ids: [Int] = []
        for form in ["\u{C5}", "A\u{30A}", "\u{212B}", "\u{3A9}", "\u{2126}"] {
            let id = try #require(try fixtureID("variant_removed", form), "\(scalarDump(form)) is not in the fixture")
            #expect(tok.tokenToID(form) == id, "\(scalarDump(form))")
            ids.append(id)
        }
        #expect(Set(ids).count == 5)
        #expect(try tok.encode("\u{212B}", addSpecialTokens: false) == [ids[2]])
        #expect(try tok.encode("A\u{30A}", addSpecialTokens: false) == [ids[1]])
        #expect(tok.isSpecial(ids[4]) && !tok.isSpecial(ids[3]))
        // Skipping special tokens drops the Ohm sign only.
        #expect(Array(tok.decode([ids[3], ids[4]]).unicodeScalars) == ["\u{3A9}"])
        #expect(Array(tok.decode([ids[3], ids[4]], skipSpecialTokens: false).unicodeScalars) == ["\u{3A9}", "\u{2126}"])
    }

    @Test func jsonKeysAndStringsCompareByBytes() throws {
        let text = "{\"\u{E9}\": 1, \"e\u{301}\": 2, \"\\u00c5\": 3, \"\\u212b\": 4}"
        let v = try JSONValue.parse(Array(text.utf8))
        #expect(v.objectValue?.count == 4)
        #expect(v["\u{E9}"] == .int(1) && v["e\u{301}"] == .int(2))
        #expect(v["\u{C5}"] == .int(3) && v["\u{212B}"] == .int(4) && v["A\u{30A}"] == nil)
        #expect(v.exactDictionaryValue?.count == 4)
        #expect(v.exactDictionaryValue?[ExactString("e\u{301}")] == .int(2))
        // A String-keyed dictionary would merge the equivalent keys: it refuses instead.
        #expect(v.dictionaryValue == nil)
        #expect(try JSONValue.parse(Array("{\"a\": 1, \"b\": 2}".utf8)).dictionaryValue?.count == 2)
        // Byte-identical keys are still duplicates.
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array("{\"e\u{301}\": 1, \"e\\u0301\": 2}".utf8)) }

        #expect(JSONValue.string("\u{E9}") != .string("e\u{301}"))
        #expect(JSONValue.string("\u{E9}") == .string("\u{E9}"))
        #expect(JSONValue.object([("\u{E9}", .null)]) != .object([("e\u{301}", .null)]))
        #expect(ExactString("\u{E9}") != ExactString("e\u{301}") && ExactString("ok") == "ok")
        #expect(Set([ExactString("\u{C5}"), ExactString("A\u{30A}"), ExactString("\u{212B}")]).count == 3)
        // Written back, each key keeps its bytes.
        let again = try JSONValue.parse(Array(v.serialized().utf8))
        #expect(again == v)
    }

    @Test func imageTokenFoundByScalars() {
        // "<image>" followed by a combining mark is one Character but still holds the token's scalars.
        #expect(ChatFormat.llava15.prompt("<image>\u{301} what?") == "USER: <image>\u{301} what? ASSISTANT:")
    }
}

/// The character classes of every normalizer and pre-tokenizer component agree with the library on every code
/// point (Fixtures/unicode_classes.json, written by tools/reference/make_tokenizer_fixtures.py): noncharacters and
/// unassigned code points, private use, format characters, and the scalars whose category or decomposition is newer
/// than the library's Unicode tables.
@Suite struct UnicodeClassParityTests {
    @Test func everyCodePoint() throws {
        let root = try JSONValue.parse(contentsOf: fixture("unicode_classes.json"))
        func ranges(_ v: JSONValue?) -> [ClosedRange<UInt32>] {
            let flat = (v?.arrayValue ?? []).compactMap(\.intValue).map(UInt32.init)
            return stride(from: 0, to: flat.count - 1, by: 2).map { flat[$0]...flat[$0 + 1] }
        }
        let domain = ranges(root["domain"]).flatMap { $0 }.compactMap(Unicode.Scalar.init)
        #expect(domain.count > 250_000)
        let classes = try #require(root["classes"]?.objectValue)

        func normalized(_ n: Normalizer, _ c: Unicode.Scalar) -> [Unicode.Scalar] {
            var text = [c]
            var origin: [Int]? = nil
            n.normalize(&text, &origin)
            return text
        }
        func pieceCount(_ p: PreTokenizer, _ c: Unicode.Scalar) -> Int {
            p.apply([Piece(text: ["a", c, "a"], origin: nil)]).count
        }
        let clean = Normalizer.bert(cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false)
        let chinese = Normalizer.bert(cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false)
        let strip = Normalizer.bert(cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false)
        let tests: [String: (Unicode.Scalar) -> Bool] = [
            "bert_clean_removed": { normalized(clean, $0).isEmpty },
            "bert_clean_space": { $0 != " " && normalized(clean, $0) == [" "] },
            "bert_chinese": { normalized(chinese, $0) != [$0] },
            "bert_strip_removed": { normalized(strip, $0).isEmpty },
            "strip_accents_removed": { normalized(.stripAccents, $0).isEmpty },
            "bert_punctuation": { pieceCount(.bert, $0) == 3 },
            "punctuation": { pieceCount(.punctuation(.isolated), $0) == 3 },
            "digits": { pieceCount(.digits(individual: true), $0) == 3 },
            "word": { pieceCount(.whitespace, $0) == 1 },
            "whitespace": { pieceCount(.whitespaceSplit, $0) == 2 },
            "regex_letter": { $0.isLetter },
            "regex_number": { $0.isNumber },
            "regex_space": { $0.isWhitespace },
            "nfd_changed": { normalized(.nfd, $0) != [$0] },
            "nfc_changed": { normalized(.nfc, $0) != [$0] },
            "nfkd_changed": { normalized(.nfkd, $0) != [$0] },
            "nfkc_changed": { normalized(.nfkc, $0) != [$0] },
            "lowercase_changed": { normalized(.lowercase, $0) != [$0] },
        ]
        #expect(Set(classes.map(\.0)) == Set(tests.keys), "the fixture and the test name different classes")
        for (name, value) in classes {
            guard let test = tests[name] else { continue }
            let members = Set(ranges(value).flatMap { $0 })
            let wrong = domain.filter { test($0) != members.contains($0.value) }
            #expect(wrong.isEmpty, "\(name): \(wrong.count) code points differ from the library, first: \(wrong.prefix(12).map { "U+" + String($0.value, radix: 16, uppercase: true) + (members.contains($0.value) ? " (library: yes)" : " (library: no)") })")
        }
    }
}
