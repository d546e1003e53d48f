import Foundation
import JSON
import Testing
@testable import Tokenizers

@Suite struct TokenizerBehaviourTests {
    /// The hand-written GPT-2 and LLaMA-3/Qwen2 split matchers agree with the same patterns run on ICU's regex
    /// engine, on random strings built from the characters that matter to them.
    @Test(arguments: [SplitRegex.gpt2, SplitRegex.qwen2, SplitRegex.llama3])
    func fastSplittersAgreeWithRegexEngine(_ pattern: String) throws {
        let fast = try SplitRegex(pattern)
        let icu = try SplitRegex(icu: pattern)
        if case .icu = fast.engine { Issue.record("pattern did not get a hand-written matcher") }
        let alphabet: [Unicode.Scalar] = ["a", "B", "z", "é", "ß", "中", "ſ", "1", "٣", "²", "'", "’", " ", " ", " ", "\t", "\n", "\r",
                                          "\u{0B}", "\u{85}", "\u{A0}", "\u{3000}", ".", ",", "!", "-", "😀", "\u{301}", "_", "S", "T", "L", "M", "D", "R", "V", "E"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let text = (0..<Int.random(in: 0...14, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let a = fast.matches(in: text), b = icu.matches(in: text)
            #expect(a == b, "\(scalarsString(text).debugDescription): fast \(a) vs regex \(b)")
            if a != b { break }
        }
    }

    @Test func unknownComponentsAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let base = try String(contentsOfFile: fixture("wordlevel/tokenizer.json"), encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("\"type\": \"Whitespace\"", "\"type\": \"UnicodeScripts\"", "pre-tokenizer type 'UnicodeScripts' is not supported"),
            ("\"type\": \"WordLevel\"", "\"type\": \"Unigram\"", "model type 'Unigram' is not supported"),
            ("\"type\": \"NFKC\"", "\"type\": \"Precompiled\"", "normalizer type 'Precompiled' is not supported"),
            ("\"type\": \"TemplateProcessing\"", "\"type\": \"Mystery\"", "post-processor type 'Mystery' is not supported"),
        ]
        for (from, to, message) in cases {
            #expect(base.contains(from), "fixture lacks \(from)")
            let path = dir + "/tokenizer.json"
            try base.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
            #expect(performing: { _ = try Tokenizer(path: dir) }, throws: { error in
                "\(error)".contains(path) && "\(error)".contains(message)
            })
        }
        try "{\"model\": ".write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        #expect(performing: { _ = try Tokenizer(path: dir) }, throws: { "\($0)".contains("not valid JSON") })
        try "{\"added_tokens\": []}".write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        #expect(performing: { _ = try Tokenizer(path: dir) }, throws: { "\($0)".contains("missing key 'model'") })
        #expect(performing: { _ = try Tokenizer(path: dir + "/nothing") }, throws: { "\($0)".contains("no such file") })
    }

    /// llava-hf folders carry special_tokens_map.json; transformers 5 saves only tokenizer_config.json. Both give
    /// the same tokenizer and special tokens.
    @Test func bothFolderLayoutsLoad() throws {
        let hf = try Tokenizer(path: fixture("llama"))
        let t5 = try Tokenizer(path: fixture("llama_transformers5"))
        #expect(!FileManager.default.fileExists(atPath: fixture("llama_transformers5/special_tokens_map.json")))
        for name in ["bos", "eos", "unk", "pad"] {
            #expect(hf.specialTokenID(name) != nil && hf.specialTokenID(name) == t5.specialTokenID(name), "\(name)")
        }
        #expect(hf.specialTokenID("bos") == 1 && hf.eosID == 2)
        let text = "USER: <image>\nWhat is shown? ASSISTANT:"
        #expect(try hf.encode(text) == t5.encode(text))
        // The image token is one id, split out before normalization.
        let image = hf.tokenToID("<image>")!
        #expect(try hf.encode("<image>", addSpecialTokens: false) == [image])
    }

    @Test func chatFormatsAndTRLTokenLayout() throws {
        #expect(ChatFormat.llava15.prompt("What is this?") == "USER: <image>\nWhat is this? ASSISTANT:")
        #expect(ChatFormat.llavaMistral.prompt("Q") == "[INST] <image>\nQ [/INST]")
        #expect(ChatFormat.llavaVicuna.prompt("Q") == "USER: <image>\nQ ASSISTANT:")
        #expect(ChatFormat.vicunaV1.prompt("Q") == "\(ChatFormat.vicunaSystem) USER: <image>\nQ ASSISTANT:")
        #expect(ChatFormat.qwen2VL.prompt("Q") == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q<|im_end|>\n<|im_start|>assistant\n")
        // A prompt that already holds the image token keeps it where it is.
        #expect(ChatFormat.llava15.prompt("Compare <image> please") == "USER: Compare <image> please ASSISTANT:")
        #expect(ChatFormat.plain.prompt("Q", image: false) == "Q\n")

        let config = try JSONValue.parse(Array(#"{"model_type": "llava_next", "text_config": {"model_type": "mistral"}}"#.utf8))
        #expect(ChatFormat.detect(config: config) == .llavaMistral)
        #expect(ChatFormat.detect(config: try JSONValue.parse(Array(#"{"model_type": "llava"}"#.utf8))) == .llava15)
        #expect(ChatFormat.detect(config: try JSONValue.parse(Array(#"{"model_type": "qwen2_vl"}"#.utf8))) == .qwen2VL)

        // TRL's layout: prompt with BOS, completion without special tokens, EOS appended.
        let tok = try Tokenizer(path: fixture("llama"))
        let prompt = ChatFormat.llava15.prompt("Is there a dog?")
        let pair = try tok.encodePair(prompt: prompt, completion: "Yes, there is a dog.")
        #expect(pair.prompt == (try tok.encode(prompt)))
        #expect(pair.prompt.first == 1)
        #expect(pair.completion == (try tok.encode("Yes, there is a dog.", addSpecialTokens: false)) + [2])
        #expect(pair.prompt.filter { $0 == tok.tokenToID("<image>") }.count == 1)

        // Qwen2 has no BOS: the prompt gets nothing added; EOS is <|im_end|>.
        let qwen = try Tokenizer(path: fixture("qwen2"))
        let q = try qwen.encodePair(prompt: ChatFormat.qwen2VL.prompt("Q"), completion: "A")
        #expect(q.prompt == (try qwen.encode(ChatFormat.qwen2VL.prompt("Q"), addSpecialTokens: false)))
        #expect(q.completion.last == qwen.tokenToID("<|im_end|>"))
    }

    @Test func vocabularyLookups() throws {
        let tok = try Tokenizer(path: fixture("minilm"))
        #expect(tok.vocabularySize == 30522)
        #expect(tok.tokenToID("[CLS]") == 101 && tok.idToToken(102) == "[SEP]")
        #expect(tok.isSpecial(101) && !tok.isSpecial(2000))
        #expect(tok.decode([101, 7592, 102, 999_999]) == "hello")
    }
}
