import JSON

/// The prompt layouts of the VLM families ReAlign trains, with their image placeholder.
public enum ChatFormat: String, CaseIterable, Sendable {
    /// llava-hf LLaVA-1.5: `USER: <image>\n{prompt} ASSISTANT:`
    case llava15 = "llava-1.5"
    /// LLaVA-1.6 (LLaVA-NeXT) on Mistral: `[INST] <image>\n{prompt} [/INST]`
    case llavaMistral = "llava-1.6-mistral"
    /// LLaVA-1.6 on Vicuna, as the chat template of llava-hf's folders renders it: `USER: <image>\n{prompt} ASSISTANT:`
    /// (no system line unless the conversation has a system turn).
    case llavaVicuna = "llava-1.6-vicuna"
    /// The original LLaVA repository's `vicuna_v1` conversation: Vicuna's system line, then the LLaVA-1.5 turn.
    /// For checkpoints trained with that repository's prompts; never chosen automatically.
    case vicunaV1 = "vicuna-v1"
    /// Qwen2-VL: ChatML with the vision markers around the image pad token.
    case qwen2VL = "qwen2-vl"
    /// No template: `<image>\n{prompt}\n`.
    case plain

    public static let vicunaSystem = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions."

    /// The model's single image token, later expanded to the number of image features.
    public var imageToken: String { self == .qwen2VL ? "<|image_pad|>" : "<image>" }

    /// What stands for the image in the prompt text.
    var imagePlaceholder: String { self == .qwen2VL ? "<|vision_start|><|image_pad|><|vision_end|>" : "<image>\n" }

    /// The full prompt for plain user text, with the image placeholder unless the text already has the image
    /// token (then it stays where the user put it) or `image` is false. The model's answer follows it directly.
    public func prompt(_ user: String, image: Bool = true) -> String {
        // The token found by scalars, as the tokenizer's added-token matcher finds it.
        let content = (!image || containsScalars(user, imageToken)) ? user : imagePlaceholder + user
        switch self {
        case .llava15, .llavaVicuna: return "USER: \(content) ASSISTANT:"
        case .llavaMistral: return "[INST] \(content) [/INST]"
        case .vicunaV1: return "\(Self.vicunaSystem) USER: \(content) ASSISTANT:"
        case .qwen2VL:
            return "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\(content)<|im_end|>\n<|im_start|>assistant\n"
        case .plain: return "\(content)\n"
        }
    }

    /// The format a model folder's config.json implies: `llava` -> LLaVA-1.5, `llava_next` -> LLaVA-1.6 on
    /// Mistral or Vicuna by its text model, `qwen2_vl` / `qwen2_5_vl` -> Qwen2-VL; anything else -> plain.
    public static func detect(config: JSONValue) -> ChatFormat {
        switch config["model_type"]?.stringValue {
        case "llava": return .llava15
        case "llava_next": return config["text_config"]?["model_type"]?.stringValue == "mistral" ? .llavaMistral : .llavaVicuna
        case "qwen2_vl", "qwen2_5_vl": return .qwen2VL
        default: return .plain
        }
    }
}

/// Whether `text` holds `needle`'s scalars contiguously (`String.contains` matches whole Characters: it misses
/// "<image>" when a combining mark follows it).
func containsScalars(_ text: String, _ needle: String) -> Bool {
    let t = Array(text.unicodeScalars), n = Array(needle.unicodeScalars)
    guard !n.isEmpty else { return true }
    guard t.count >= n.count else { return false }
    for i in 0...(t.count - n.count) where t[i] == n[0] && t[i..<(i + n.count)].elementsEqual(n) { return true }
    return false
}

/// Token ids of one prompt/completion pair, built as TRL builds them: the prompt encoded with the tokenizer's own
/// special tokens (its BOS), the completion without them, then EOS appended to the completion.
public struct PromptCompletionIDs: Equatable, Sendable {
    public var prompt: [Int]
    public var completion: [Int]
    public var all: [Int] { prompt + completion }
}

extension Tokenizer {
    /// The EOS id from the folder's configuration, else from well-known token names.
    public var eosID: Int? {
        specialTokenID("eos") ?? ["</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>"].lazy.compactMap { self.tokenToID($0) }.first
    }

    public func encodePair(prompt: String, completion: String) throws -> PromptCompletionIDs {
        guard let eos = eosID else { throw TokenizerError("\(source): the tokenizer has no EOS token to end completions with") }
        return PromptCompletionIDs(prompt: try encode(prompt, addSpecialTokens: true),
                                   completion: try encode(completion, addSpecialTokens: false) + [eos])
    }
}
