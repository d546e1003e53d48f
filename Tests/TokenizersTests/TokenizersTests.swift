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
        // Texts compare by scalars: `String !=` would hide a composed / decomposed mismatch.
        func same(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }
        for c in cases {
            let text = c["text"]!.stringValue!
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            let idsPlain = c["ids_no_special"]!.arrayValue!.map { $0.intValue! }
            let got = try tokenizer.encode(text)
            if got != ids { failures.append("encode \(scalarDump(text)): got \(got), want \(ids)") }
            let gotPlain = try tokenizer.encode(text, addSpecialTokens: false)
            if gotPlain != idsPlain { failures.append("encode (no special) \(scalarDump(text)): got \(gotPlain), want \(idsPlain)") }
            let decoded = tokenizer.decode(ids)
            if !same(decoded, c["decoded"]!.stringValue!) { failures.append("decode \(ids): got \(scalarDump(decoded)), want \(scalarDump(c["decoded"]!.stringValue!))") }
            let kept = tokenizer.decode(ids, skipSpecialTokens: false)
            if !same(kept, c["decoded_keep"]!.stringValue!) { failures.append("decode keep \(ids): got \(scalarDump(kept)), want \(scalarDump(c["decoded_keep"]!.stringValue!))") }
        }
        for c in root["decode_cases"]!.arrayValue! {
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            let decoded = tokenizer.decode(ids)
            if !same(decoded, c["decoded"]!.stringValue!) { failures.append("decode \(ids): got \(scalarDump(decoded)), want \(scalarDump(c["decoded"]!.stringValue!))") }
            let kept = tokenizer.decode(ids, skipSpecialTokens: false)
            if !same(kept, c["decoded_keep"]!.stringValue!) { failures.append("decode keep \(ids): got \(scalarDump(kept)), want \(scalarDump(c["decoded_keep"]!.stringValue!))") }
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) mismatches, first: \(failures.prefix(8).joined(separator: "\n"))")
    }
}

/// A string with its non-ASCII scalars spelled out, so that composed and decomposed forms read differently.
func scalarDump(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        if c.value >= 0x20 && c.value < 0x7F && c != "\\" && c != "\"" { out.unicodeScalars.append(c) } else { out += "\\u{\(String(c.value, radix: 16))}" }
    }
    return out + "\""
}
