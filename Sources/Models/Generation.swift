import Foundation
@_exported import Common
import Tokenizers
import Torch

/// How to generate: greedy by default (temperature 0, as the papers evaluate), or temperature / top-p sampling
/// with a seed.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int = 128
    public var temperature: Double = 0
    public var topP: Double = 1
    public var seed: UInt64 = 0
    /// Token ids that end a sequence (typically EOS); not included in the result.
    public var stopTokenIDs: Set<Int> = []
    /// Texts that end a sequence once the decoded answer contains them; the answer is cut before them.
    public var stopStrings: [String] = []
    /// The id fed for finished rows and used to left-pad prompts.
    public var padTokenID: Int = 0
    /// When set, each generated token's log-probability and this many most likely alternatives (0...20) are
    /// kept, from the model's distribution (before temperature and top-p), as OpenAI's `logprobs` reports them.
    public var logprobs: Int? = nil

    public init(maxNewTokens: Int = 128, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0,
                stopTokenIDs: Set<Int> = [], stopStrings: [String] = [], padTokenID: Int = 0) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokenIDs = stopTokenIDs
        self.stopStrings = stopStrings
        self.padTokenID = padTokenID
    }
}

public struct GeneratedSequence: Sendable, Equatable {
    public enum StopReason: String, Sendable { case stopToken, stopString, length }
    /// Generated ids, without the prompt and without a final stop token.
    public var tokens: [Int]
    /// The decoded answer (cut before a stop string), when a tokenizer was given.
    public var text: String?
    public var reason: StopReason
    /// One per token of `tokens` when `GenerationOptions.logprobs` was set.
    public var logprobs: [TokenLogprob] = []
}

/// A generated token's log-probability and the most likely alternatives at its step.
public struct TokenLogprob: Sendable, Equatable {
    public struct Choice: Sendable, Equatable {
        public var id: Int
        public var logprob: Double
    }
    public var id: Int
    public var logprob: Double
    public var top: [Choice]
}

/// Autoregressive generation with a KV cache; prompts of different lengths are left-padded into one batch.
public struct TextGenerator {
    public let model: any VLMModel
    public let tokenizer: Tokenizer?

    public init(model: any VLMModel, tokenizer: Tokenizer?) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// `prompts`: token ids with image tokens already expanded (see `expandImageTokens`); `images`: the prepared
    /// images of every prompt, in order. `onToken(row, id, logprob)` streams tokens (the log-probability when
    /// `options.logprobs` asks for it).
    public func generate(prompts: [[Int]], images: ImageInputs?, options: GenerationOptions,
                         onToken: ((Int, Int, TokenLogprob?) -> Void)? = nil) throws -> [GeneratedSequence] {
        guard !prompts.isEmpty, prompts.allSatisfy({ !$0.isEmpty }) else { throw ModelError("generation needs non-empty prompts") }
        guard options.maxNewTokens >= 0 else { throw ModelError("max new tokens must not be negative") }
        if images == nil, prompts.contains(where: { $0.contains(model.imageTokenID) }) {
            throw ModelError("the prompt has image tokens but no image was given")
        }
        let batch = prompts.count
        let length = prompts.map(\.count).max()!
        let rows = prompts.map { Array(repeating: options.padTokenID, count: length - $0.count) + $0 }
        let maskRows = prompts.map { Array(repeating: 0, count: length - $0.count) + Array(repeating: 1, count: $0.count) }
        let ids = rows.flatMap { $0 }
        let device = model.device
        let mask = try Tensor(maskRows.flatMap { $0 }, shape: [batch, length]).to(device: device)
        let padded = prompts.contains { $0.count < length }
        let grids = images?.grids
        let positions = try model.positions(tokens: rows, mask: maskRows, grids: grids, count: length)
        var results: [GeneratedSequence] = []
        try withNoGrad {
            let features = try images.map { try model.imageFeatures($0) }
            let cache = model.makeCache(batch: batch, capacity: length + options.maxNewTokens)
            let hidden = try model.hiddenStates(inputIDs: Tensor(ids, shape: [batch, length]).to(device: device),
                                                imageFeatures: features, attentionMask: padded ? mask : nil,
                                                positions: positions, cache: cache)
            results = try decode(hidden: hidden, cache: cache, tokens: rows, mask: maskRows, grids: grids, padded: padded,
                                 options: options, onToken: onToken).sequences
        }
        return results
    }

    /// The decoding loop after a prefill: `hidden` holds the prefilled states (the last one predicts the first new
    /// token), `cache` the keys and values of `tokens` (rows, real ones marked by `mask`; `grids` their images'
    /// grids), from which each new token's position follows. Returns the sequences (texts decoded when there is a
    /// tokenizer) and, per row, the tokens fed into the cache after the prefill.
    func decode(hidden first: Tensor, cache: KVCache, tokens initialTokens: [[Int]], mask initialMask: [[Int]], grids: [[Int]]?,
                padded: Bool, options: GenerationOptions,
                onToken: ((Int, Int, TokenLogprob?) -> Void)?) throws -> (sequences: [GeneratedSequence], fed: [[Int]]) {
        let batch = first.size(0), device = model.device
        var hidden = first, tokens = initialTokens, maskRows = initialMask
        var mask = try Tensor(initialMask.flatMap { $0 }, shape: [batch, initialMask.first?.count ?? 0]).to(device: device)
        var sampler = Sampler(seed: options.seed)
        var results = (0..<batch).map { _ in GeneratedSequence(tokens: [], text: nil, reason: .length) }
        var fed = [[Int]](repeating: [], count: batch)
        var finished = [Bool](repeating: false, count: batch)
        try withNoGrad {
            for step in 0..<options.maxNewTokens {
                let logits = try model.logits(hidden.select(1, hidden.size(1) - 1)).to(dtype: .float32)
                let next = try choose(logits, options: options, sampler: &sampler)
                let stepLogprobs = try options.logprobs.map { try Self.logprobs(logits, chosen: next, top: $0) }
                var feed: [Int] = []
                for row in 0..<batch {
                    guard !finished[row] else { feed.append(options.padTokenID); continue }
                    let token = next[row]
                    feed.append(token)
                    if options.stopTokenIDs.contains(token) {
                        finished[row] = true
                        results[row].reason = .stopToken
                        continue
                    }
                    results[row].tokens.append(token)
                    if let stepLogprobs { results[row].logprobs.append(stepLogprobs[row]) }
                    onToken?(row, token, stepLogprobs?[row])
                    if !options.stopStrings.isEmpty, let tokenizer {
                        let text = tokenizer.decode(results[row].tokens)
                        if options.stopStrings.contains(where: { text.contains($0) }) {
                            finished[row] = true
                            results[row].reason = .stopString
                        }
                    }
                }
                if finished.allSatisfy({ $0 }) || step == options.maxNewTokens - 1 { break }
                for row in 0..<batch {
                    fed[row].append(feed[row])
                    tokens[row].append(feed[row])
                    maskRows[row].append(1)
                }
                mask = try Tensor.cat([mask, Tensor.ones([batch, 1], dtype: .int64, device: device)], dim: 1)
                let positions = try model.positions(tokens: tokens, mask: maskRows, grids: grids, count: 1)
                hidden = try model.hiddenStates(inputIDs: Tensor(feed, shape: [batch, 1]).to(device: device),
                                                attentionMask: padded ? mask : nil, positions: positions, cache: cache)
            }
        }
        if let tokenizer {
            for row in 0..<batch {
                var text = tokenizer.decode(results[row].tokens)
                if results[row].reason == .stopString,
                   let cut = options.stopStrings.compactMap({ text.range(of: $0)?.lowerBound }).min() {
                    text = String(text[..<cut])
                }
                results[row].text = text
            }
        }
        return (results, fed)
    }

    /// Each row's chosen token's log-probability and its `top` most likely tokens (one read-back per step).
    static func logprobs(_ logits: Tensor, chosen: [Int], top: Int) throws -> [TokenLogprob] {
        let logProbs = try logits.logSoftmax(-1)
        let rows = chosen.count
        let picked = try logProbs.gather(1, Tensor(chosen).to(device: logits.device).unsqueeze(1)).to(dtype: .float64).to(device: .cpu).toArray(Double.self)
        var values: [Double] = [], indices: [Int] = []
        if top > 0 {
            let best = try logProbs.topk(top, dim: -1)
            values = try best.values.to(dtype: .float64).to(device: .cpu).toArray(Double.self)
            indices = try best.indices.to(device: .cpu).toArray(Int64.self).map(Int.init)
        }
        return (0..<rows).map { r in
            TokenLogprob(id: chosen[r], logprob: picked[r],
                         top: (0..<top).map { TokenLogprob.Choice(id: indices[r * top + $0], logprob: values[r * top + $0]) })
        }
    }

    /// The next token of each row: argmax, or a sample from the temperature-scaled, top-p-filtered distribution.
    private func choose(_ logits: Tensor, options: GenerationOptions, sampler: inout Sampler) throws -> [Int] {
        if options.temperature <= 0 { return try logits.argmax(-1).toArray(Int64.self).map(Int.init) }
        let probabilities = try (logits / options.temperature).softmax(-1).to(dtype: .float64)
        let vocabulary = logits.size(-1)
        let values = try probabilities.flatten().toArray(Double.self)
        return (0..<logits.size(0)).map { row in
            sampler.sample(Array(values[(row * vocabulary)..<((row + 1) * vocabulary)]), topP: options.topP)
        }
    }
}

/// Seeded sampling from a probability vector.
struct Sampler {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func next() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }

    /// Samples from probabilities restricted to the smallest most-probable set whose mass reaches `topP`.
    mutating func sample(_ probabilities: [Double], topP: Double) -> Int {
        var order = Array(probabilities.indices)
        order.sort { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }
        var kept: [Int] = []
        var mass = 0.0
        for i in order {
            kept.append(i)
            mass += probabilities[i]
            if mass >= topP { break }
        }
        var r = next() * mass
        for i in kept {
            r -= probabilities[i]
            if r <= 0 { return i }
        }
        return kept.last!
    }
}
