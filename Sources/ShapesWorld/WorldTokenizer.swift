import Foundation
import JSON

/// The world's tokenizer: a Hugging Face WordLevel `tokenizer.json` over every word the world writes (lower-cased,
/// split on words and punctuation as `tokenizers`' Whitespace pre-tokenizer splits), `<s>` before each
/// sequence, decoded with the WordPiece decoder's clean-up so that "circle ." reads back as "circle.".
public enum WorldTokenizer {
    public static let specialTokens = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    public static var imageTokenID: Int { specialTokens.firstIndex(of: "<image>")! }

    /// The words of the templates, the chat format and the lexicon, in a fixed order after the special tokens.
    public static var vocabulary: [String] {
        var words = specialTokens
        let fixed = """
            user assistant : . , ? a an the and with there is are on of in image shows background object objects \
            describe how many what colour where or yes no left right above below top bottom center
            """
        var seen = Set(words)
        func add(_ w: String) { if seen.insert(w).inserted { words.append(w) } }
        for w in fixed.split(separator: " ") { add(String(w).trimmingCharacters(in: .whitespacesAndNewlines)) }
        for phrase in WorldLexicon.maskWords { for w in phrase.split(separator: " ") { add(String(w)) } }
        return words
    }

    /// tokenizer.json, as `tokenizers` 0.23 saves a WordLevel tokenizer built this way.
    public static func tokenizerJSON() -> JSONValue {
        let vocab = vocabulary
        let added: [JSONValue] = specialTokens.enumerated().map { id, content in
            .object([("id", .int(id)), ("content", .string(content)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                     ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true))])
        }
        func special(_ s: String) -> JSONValue { .object([("SpecialToken", .object([("id", .string(s)), ("type_id", .int(0))]))]) }
        func sequence(_ s: String, _ type: Int) -> JSONValue { .object([("Sequence", .object([("id", .string(s)), ("type_id", .int(type))]))]) }
        let post: JSONValue = .object([
            ("type", .string("TemplateProcessing")),
            ("single", .array([special("<s>"), sequence("A", 0)])),
            ("pair", .array([special("<s>"), sequence("A", 0), special("<s>"), sequence("B", 1)])),
            ("special_tokens", .object([("<s>", .object([("id", .string("<s>")), ("ids", .array([.int(1)])), ("tokens", .array([.string("<s>")]))]))])),
        ])
        return .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(added)),
            ("normalizer", .object([("type", .string("Lowercase"))])),
            ("pre_tokenizer", .object([("type", .string("Whitespace"))])),
            ("post_processor", post),
            ("decoder", .object([("type", .string("WordPiece")), ("prefix", .string("##")), ("cleanup", .bool(true))])),
            ("model", .object([("type", .string("WordLevel")),
                               ("vocab", .object(vocab.enumerated().map { ($0.element, .int($0.offset)) })),
                               ("unk_token", .string("<unk>"))])),
        ])
    }

    /// LLaVA-1.5's chat template (one user turn with the image first, then the assistant), as llava-hf ships it.
    public static let chatTemplate = "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}{% endfor %}{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %} {% else %}ASSISTANT: {% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"

    /// Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.json.
    public static func write(to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func save(_ value: JSONValue, _ name: String) throws {
            try (value.serialized(pretty: true) + "\n").write(toFile: (folder as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try save(tokenizerJSON(), "tokenizer.json")
        let decoder: [(String, JSONValue)] = specialTokens.enumerated().map { id, content in
            (String(id), .object([("content", .string(content)), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                                  ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(true))]))
        }
        try save(.object([
            ("added_tokens_decoder", .object(decoder)),
            ("bos_token", .string("<s>")), ("eos_token", .string("</s>")), ("pad_token", .string("<pad>")), ("unk_token", .string("<unk>")),
            ("extra_special_tokens", .object([("image_token", .string("<image>"))])),
            ("model_max_length", .int(512)),
            ("padding_side", .string("left")),
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
        ]), "tokenizer_config.json")
        try save(.object([("bos_token", .string("<s>")), ("eos_token", .string("</s>")), ("pad_token", .string("<pad>")), ("unk_token", .string("<unk>"))]),
                 "special_tokens_map.json")
        try save(.object([("chat_template", .string(chatTemplate))]), "chat_template.json")
    }
}
