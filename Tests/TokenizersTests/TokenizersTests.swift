import Foundation
import JSON
import Testing
@testable import Tokenizers

func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

let tokenizerNames = ["minilm", "llama", "qwen2", "llama3", "gpt2", "metaspace", "wordlevel", "variant_splits", "variant_removed",
                      "metaspace_always", "metaspace_never", "variant_ignore_merges"]

/// Ids and decoded text identical to the `tokenizers` library on >= 300 strings per tokenizer
/// (tools/reference/make_tokenizer_fixtures.py).
@Suite struct TokenizerParityTests {
    @Test(arguments: tokenizerNames)
    func matchesTheLibrary(_ name: String) throws {
        let tokenizer = try Tokenizer(path: fixture(name))
        let root = try JSONValue.parse(contentsOf: fixture("\(name)/cases.json"))
        let cases = root["cases"]!.arrayValue!
        #expect(cases.count >= 300)
        var failures: [String] = []
        for c in cases {
            let text = c["text"]!.stringValue!
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            let idsPlain = c["ids_no_special"]!.arrayValue!.map { $0.intValue! }
            let got = try tokenizer.encode(text)
            if got != ids { failures.append("encode \(text.debugDescription): got \(got), want \(ids)") }
            let gotPlain = try tokenizer.encode(text, addSpecialTokens: false)
            if gotPlain != idsPlain { failures.append("encode (no special) \(text.debugDescription): got \(gotPlain), want \(idsPlain)") }
            let decoded = tokenizer.decode(ids)
            if decoded != c["decoded"]!.stringValue! { failures.append("decode \(ids): got \(decoded.debugDescription), want \(c["decoded"]!.stringValue!.debugDescription)") }
            let kept = tokenizer.decode(ids, skipSpecialTokens: false)
            if kept != c["decoded_keep"]!.stringValue! { failures.append("decode keep \(ids): got \(kept.debugDescription), want \(c["decoded_keep"]!.stringValue!.debugDescription)") }
        }
        for c in root["decode_cases"]!.arrayValue! {
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            let decoded = tokenizer.decode(ids)
            if decoded != c["decoded"]!.stringValue! { failures.append("decode \(ids): got \(decoded.debugDescription), want \(c["decoded"]!.stringValue!.debugDescription)") }
            let kept = tokenizer.decode(ids, skipSpecialTokens: false)
            if kept != c["decoded_keep"]!.stringValue! { failures.append("decode keep \(ids): got \(kept.debugDescription), want \(c["decoded_keep"]!.stringValue!.debugDescription)") }
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) mismatches, first: \(failures.prefix(8).joined(separator: "\n"))")
    }
}
