import Foundation
import Images
import JSON
import Tokenizers
import Torch

/// A VLM folder ready to use: the model, its tokenizer, its image processor and its chat format.
public final class VisionLanguageModel: @unchecked Sendable {
    public let folder: String
    public let model: any VLMModel
    public let tokenizer: Tokenizer
    public let processor: any VLMImageProcessor
    public var chatFormat: ChatFormat

    /// Loads a model folder of any supported backbone (see `VLMRegistry`), optionally with a PEFT LoRA adapter.
    /// `chatFormat` nil: the backbone's, chosen from config.json.
    public init(folder: String, adapter: String? = nil, dtype: DType = .float32, bf16LinearWeights: Bool = false,
                device: Device = .cpu, chatFormat: ChatFormat? = nil) throws {
        self.folder = folder
        let (entry, _) = try VLMRegistry.entry(folder: folder)
        model = try VLMRegistry.load(folder, dtype: dtype, device: device)
        if let adapter { try model.loadAdapter(from: adapter) }
        if bf16LinearWeights { try model.storeLinearWeightsInBF16() }
        tokenizer = try Tokenizer(path: folder)
        processor = try entry.processor(folder)
        let config = try JSONValue.parse(contentsOf: (folder as NSString).appendingPathComponent("config.json"))
        self.chatFormat = chatFormat ?? entry.chatFormat(config)
        let imageID = tokenizer.tokenToID(self.chatFormat.imageToken)
        guard imageID == model.imageTokenID else {
            throw ModelError("\(folder): the tokenizer's \(self.chatFormat.imageToken) is \(imageID.map(String.init) ?? "missing"), config.json says image token \(model.imageTokenID)")
        }
    }

    /// Images prepared as the folder's image processor prepares them, with their image-token counts.
    public func pixels(_ images: [RGBImage]) throws -> ImageInputs {
        try processor.preprocess(images)
    }

    /// Token ids of the chat-formatted prompt for plain user text, without image (`imageTokenCounts` empty) or
    /// with one image whose placeholder expands to its count.
    public func promptIDs(_ userText: String, imageTokenCounts: [Int]) throws -> [Int] {
        try model.expandImageTokens(tokenizer.encode(chatFormat.prompt(userText, image: !imageTokenCounts.isEmpty)), counts: imageTokenCounts)
    }

    /// Greedy (or sampled) answer to a question about an image; `onText` streams the growing answer.
    public func answer(_ question: String, image: RGBImage?, options: GenerationOptions = GenerationOptions(),
                       onText: ((String) -> Void)? = nil) throws -> GeneratedSequence {
        try complete(user: question, image: image, options: options, onText: onText).sequence
    }

    /// One chat completion: the answer to `user` (with an optional image), or, with `assistantPrefix`, the
    /// continuation of that started answer. The prefix is tokenized as training tokenizes answers (no special
    /// tokens, after the prompt), and the returned text is what the new tokens add to it.
    /// `onToken` sees every new token (and its log-probability when `options.logprobs` asks for it).
    public func complete(user: String, image: RGBImage?, assistantPrefix: String? = nil, options: GenerationOptions = GenerationOptions(),
                         onText: ((String) -> Void)? = nil, onToken: ((Int, TokenLogprob?) -> Void)? = nil)
        throws -> (text: String, promptTokens: Int, sequence: GeneratedSequence) {
        let options = withModelStops(options)
        let prefixIDs = try prefixTokens(assistantPrefix)
        let counts = image.map { [processor.tokenCount(width: $0.width, height: $0.height)] } ?? []
        let userIDs = try promptIDs(user, imageTokenCounts: counts)
        let prompt = userIDs + prefixIDs
        var streamed: [Int] = []
        let stream: (Int, Int, TokenLogprob?) -> Void = { _, token, logprob in
            onToken?(token, logprob)
            guard let onText else { return }
            streamed.append(token)
            onText(self.tokenizer.decode(streamed))
        }
        let generated: GeneratedSequence
        if assistantPrefix != nil && reusesPromptCache {
            generated = try continueCached(prompt, sharedAtLeast: userIDs.count, image: image, options: options, onToken: stream)
        } else {
            let inputs = try image.map { try pixels([$0]) }
            generated = try TextGenerator(model: model, tokenizer: tokenizer).generate(prompts: [prompt], images: inputs, options: options, onToken: stream)[0]
        }
        var text = generated.text ?? tokenizer.decode(generated.tokens)
        if !prefixIDs.isEmpty {
            text = continuationText(prefix: prefixIDs, tokens: generated.tokens)
            for stop in options.stopStrings where !stop.isEmpty {
                if let r = text.range(of: stop) { text = String(text[..<r.lowerBound]) }
            }
        }
        return (text, prompt.count, generated)
    }

    /// An assistant prefix as `complete` tokenizes it (no special tokens, as training tokenizes answers).
    public func prefixTokens(_ assistantPrefix: String?) throws -> [Int] {
        try assistantPrefix.map { try tokenizer.encode($0, addSpecialTokens: false) } ?? []
    }

    /// What `tokens` add to an assistant prefix: decoding them after the prefix keeps the space a SentencePiece
    /// piece carries (decoded alone it would be dropped).
    public func continuationText(prefix: [Int], tokens: [Int]) -> String {
        guard !prefix.isEmpty else { return tokenizer.decode(tokens) }
        let before = tokenizer.decode(prefix)
        let joined = tokenizer.decode(prefix + tokens)
        return joined.hasPrefix(before) ? String(joined.dropFirst(before.count)) : tokenizer.decode(tokens)
    }

    /// Whether completions that continue an assistant prefix keep their KV cache for the next one (see
    /// `continueCached`); off, every completion runs its whole prompt.
    public var reusesPromptCache = true

    /// The last continued completion: its image, the tokens in its cache, the cache.
    private final class PromptCache {
        let image: RGBImage?
        var ids: [Int]
        let cache: KVCache
        /// The image's patch grid where the model's positions need it.
        var grids: [[Int]]?
        init(image: RGBImage?, ids: [Int], cache: KVCache) {
            self.image = image
            self.ids = ids
            self.cache = cache
        }
    }
    private var promptCache: PromptCache?
    private let promptCacheLock = NSLock()

    /// Continues `ids` (a prompt and an assistant prefix). The inducer asks about one image and prompt many times
    /// with a growing prefix (mask by mask): when the last cached completion had the same image and shares at
    /// least the first `sharedAtLeast` tokens (the prompt with its image tokens), its cache is cut back to the
    /// shared start and only the tokens after it run — no vision tower, no second pass over the image tokens.
    func continueCached(_ ids: [Int], sharedAtLeast: Int, image: RGBImage?, options: GenerationOptions,
                        onToken: @escaping (Int, Int, TokenLogprob?) -> Void) throws -> GeneratedSequence {
        try promptCacheLock.withLock {
            var start = 0
            var entry: PromptCache
            if let c = promptCache, c.image == image {
                let shared = zip(c.ids, ids).prefix { $0.0 == $0.1 }.count
                if shared >= sharedAtLeast { start = min(shared, ids.count - 1) }
            }
            if start > 0, let c = promptCache {
                c.cache.truncate(to: start)
                c.ids = Array(ids[..<start])
                entry = c
            } else {
                entry = PromptCache(image: image, ids: [], cache: model.makeCache(batch: 1, capacity: ids.count + options.maxNewTokens + 64))
                promptCache = nil
            }
            let generator = TextGenerator(model: model, tokenizer: tokenizer)
            let result: (sequences: [GeneratedSequence], fed: [[Int]]) = try withNoGrad {
                var features: Tensor? = nil
                if start == 0, let image {
                    let inputs = try pixels([image])
                    features = try model.imageFeatures(inputs)
                    entry.grids = inputs.grids
                }
                let new = Array(ids[start...])
                let positions = try model.positions(tokens: [ids], mask: nil, grids: entry.grids, count: new.count)
                let hidden = try model.hiddenStates(inputIDs: Tensor(new, shape: [1, new.count]).to(device: model.device),
                                                    imageFeatures: features, positions: positions, cache: entry.cache)
                return try generator.decode(hidden: hidden, cache: entry.cache, tokens: [ids], mask: [Array(repeating: 1, count: ids.count)],
                                            grids: entry.grids, padded: false, options: options, onToken: onToken)
            }
            entry.ids = ids + result.fed[0]
            promptCache = entry
            return result.sequences[0]
        }
    }

    /// The options with the tokenizer's EOS as a stop token and its pad token for padding.
    func withModelStops(_ options: GenerationOptions) -> GenerationOptions {
        var options = options
        if let eos = tokenizer.eosID { options.stopTokenIDs.insert(eos) }
        if let pad = tokenizer.specialTokenID("pad") { options.padTokenID = pad }
        return options
    }

    /// Greedy (or sampled) answers to several questions, each about its image, generated as one left-padded batch.
    public func answers(_ questions: [String], images: [RGBImage], options: GenerationOptions = GenerationOptions()) throws -> [String] {
        guard questions.count == images.count else { throw ModelError("\(questions.count) questions but \(images.count) images") }
        guard !questions.isEmpty else { return [] }
        let options = withModelStops(options)
        let inputs = try pixels(images)
        let prompts = try zip(questions, inputs.tokenCounts).map { try promptIDs($0, imageTokenCounts: [$1]) }
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        return try generator.generate(prompts: prompts, images: inputs, options: options).map { $0.text ?? tokenizer.decode($0.tokens) }
    }
}
