import Foundation
import JSON
import Tokenizers
import Torch

final class BertEmbeddings: Module, @unchecked Sendable {
    override class var checkpointNames: [String: String] { ["layerNorm": "LayerNorm"] }
    let word_embeddings: Embedding
    let position_embeddings: Embedding
    let token_type_embeddings: Embedding
    let layerNorm: LayerNorm

    init(_ c: BertConfig) throws {
        word_embeddings = try Embedding(c.vocabSize, c.hiddenSize)
        position_embeddings = try Embedding(c.maxPositionEmbeddings, c.hiddenSize)
        token_type_embeddings = try Embedding(c.typeVocabSize, c.hiddenSize)
        layerNorm = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        super.init()
    }

    func callAsFunction(_ ids: Tensor) throws -> Tensor {
        let (b, l) = (ids.size(0), ids.size(1))
        let positions = try Tensor.arange(0, l, device: ids.device).unsqueeze(0).expand([b, l])
        let types = try Tensor.zeros([b, l], dtype: .int64, device: ids.device)
        return try layerNorm(word_embeddings(ids) + token_type_embeddings(types) + position_embeddings(positions))
    }
}

final class BertSelfAttention: Module, @unchecked Sendable {
    let query: Linear
    let key: Linear
    let value: Linear
    let heads: Int

    init(_ c: BertConfig) throws {
        query = try Linear(c.hiddenSize, c.hiddenSize)
        key = try Linear(c.hiddenSize, c.hiddenSize)
        value = try Linear(c.hiddenSize, c.hiddenSize)
        heads = c.heads
        super.init()
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let (b, l, d) = (x.size(0), x.size(1), x.size(2))
        func split(_ t: Tensor) throws -> Tensor { try t.view(b, l, heads, d / heads).transpose(1, 2) }
        let attended = try F.scaledDotProductAttention(split(query(x)), split(key(x)), split(value(x)), mask: mask)
        return try attended.transpose(1, 2).reshape(b, l, d)
    }
}

/// dense -> residual -> LayerNorm
final class BertResidualOutput: Module, @unchecked Sendable {
    override class var checkpointNames: [String: String] { ["layerNorm": "LayerNorm"] }
    let dense: Linear
    let layerNorm: LayerNorm

    init(_ inFeatures: Int, _ c: BertConfig) throws {
        dense = try Linear(inFeatures, c.hiddenSize)
        layerNorm = try LayerNorm(c.hiddenSize, eps: c.layerNormEps)
        super.init()
    }

    func callAsFunction(_ x: Tensor, residual: Tensor) throws -> Tensor { try layerNorm(dense(x) + residual) }
}

final class BertAttention: Module, @unchecked Sendable {
    override class var checkpointNames: [String: String] { ["selfAttention": "self"] }
    let selfAttention: BertSelfAttention
    let output: BertResidualOutput

    init(_ c: BertConfig) throws {
        selfAttention = try BertSelfAttention(c)
        output = try BertResidualOutput(c.hiddenSize, c)
        super.init()
    }
}

final class BertIntermediate: Module, @unchecked Sendable {
    let dense: Linear
    let act: (Tensor) throws -> Tensor
    init(_ c: BertConfig) throws {
        dense = try Linear(c.hiddenSize, c.intermediateSize)
        act = try activation(c.hiddenAct)
        super.init()
    }
}

final class BertLayer: Module, @unchecked Sendable {
    let attention: BertAttention
    let intermediate: BertIntermediate
    let output: BertResidualOutput

    init(_ c: BertConfig) throws {
        attention = try BertAttention(c)
        intermediate = try BertIntermediate(c)
        output = try BertResidualOutput(c.intermediateSize, c)
        super.init()
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let a = try attention.output(attention.selfAttention(x, mask: mask), residual: x)
        return try output(intermediate.act(intermediate.dense(a)), residual: a)
    }
}

final class BertEncoder: Module, @unchecked Sendable {
    let layer: [BertLayer]
    init(_ c: BertConfig) throws {
        layer = try (0..<c.layers).map { _ in try BertLayer(c) }
        super.init()
    }
}

final class BertPooler: Module, @unchecked Sendable {
    let dense: Linear
    init(_ c: BertConfig) throws {
        dense = try Linear(c.hiddenSize, c.hiddenSize)
        super.init()
    }
}

/// transformers' BertModel (the pooler is loaded for strictness; sentence embeddings use mean pooling).
final class BertModel: Module, @unchecked Sendable {
    let embeddings: BertEmbeddings
    let encoder: BertEncoder
    let pooler: BertPooler?
    let config: BertConfig

    init(_ c: BertConfig, pooler: Bool) throws {
        config = c
        embeddings = try BertEmbeddings(c)
        encoder = try BertEncoder(c)
        self.pooler = pooler ? try BertPooler(c) : nil
        super.init()
    }

    /// Last hidden states [B, L, hidden]; `mask` [B, L] is 1 for real tokens.
    func callAsFunction(_ ids: Tensor, mask: Tensor) throws -> Tensor {
        // Padding keys get the dtype's lowest value, as transformers' extended attention mask does.
        let additive = try ((1.0 - mask.to(dtype: .float32)) * AttentionMask.lowest(.float32)).view(mask.size(0), 1, 1, mask.size(1))
        var h = try embeddings(ids)
        for layer in encoder.layer { h = try layer(h, mask: additive.to(dtype: h.dtype)) }
        return h
    }
}

/// A sentence-transformers model (BERT + mean pooling + L2 normalisation), as all-MiniLM-L6-v2 runs.
public final class SentenceEncoder: @unchecked Sendable {
    let model: BertModel
    public let tokenizer: Tokenizer
    /// sentence-transformers truncates at `max_seq_length` (sentence_bert_config.json), not at tokenizer.json's.
    public let maxSequenceLength: Int
    public let folder: String

    public var dimension: Int { model.config.hiddenSize }

    public init(folder: String, dtype: DType = .float32) throws {
        self.folder = folder
        let config = try BertConfig(ConfigReader.load((folder as NSString).appendingPathComponent("config.json")))
        let checkpoint = try Checkpoint(path: folder)
        model = try ParameterInitialisation.skipped { try BertModel(config, pooler: checkpoint.contains("pooler.dense.weight")) }
        try ModelLoader.load(model, from: folder, dtype: dtype, device: .cpu) { key in
            key.hasSuffix("position_ids") ? nil : (key.hasPrefix("bert.") ? String(key.dropFirst(5)) : key)
        }
        tokenizer = try Tokenizer(path: folder)
        let sbert = (folder as NSString).appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: sbert) {
            maxSequenceLength = try ConfigReader.load(sbert).int("max_seq_length", config.maxPositionEmbeddings)
        } else {
            maxSequenceLength = config.maxPositionEmbeddings
        }
        let pooling = (folder as NSString).appendingPathComponent("1_Pooling/config.json")
        if FileManager.default.fileExists(atPath: pooling) {
            let p = try ConfigReader.load(pooling)
            guard try p.bool("pooling_mode_mean_tokens", true), !(try p.bool("pooling_mode_cls_token", false)) else {
                throw ModelError("\(pooling): only mean pooling is supported")
            }
        }
    }

    /// Normalized embeddings [N, dimension] (float32), in batches of `batchSize`. Texts are batched longest
    /// first (as sentence-transformers does) so that each batch pads little; rows come back in input order.
    /// Batches run on all cores at once, one intra-op thread each (`Torch.parallelJobs`).
    public func embed(_ texts: [String], batchSize: Int = 32) throws -> Tensor {
        guard !texts.isEmpty else { return try Tensor.zeros([0, dimension]) }
        let encoded = try texts.map { try tokenizer.encode($0, addSpecialTokens: true, maxLength: maxSequenceLength) }
        let order = encoded.indices.sorted { encoded[$0].count != encoded[$1].count ? encoded[$0].count > encoded[$1].count : $0 < $1 }
        let starts = Array(stride(from: 0, to: order.count, by: batchSize))
        let parts = Results(starts.count)
        try Torch.parallelJobs(starts.count) { [self] j in
            let batch = order[starts[j]..<min(starts[j] + batchSize, order.count)].map { encoded[$0] }
            parts[j] = try pooled(batch)
        }
        let sorted = parts.count == 1 ? parts[0] : try Tensor.cat(parts.values, dim: 0)
        // Row i of `sorted` is text order[i]: invert the permutation.
        var inverse = [Int](repeating: 0, count: order.count)
        for (position, index) in order.enumerated() { inverse[index] = position }
        return try sorted.indexSelect(0, Tensor(inverse))
    }

    /// Mean-pooled, normalized embeddings of one batch of token ids (padded here).
    private func pooled(_ batch: [[Int]]) throws -> Tensor {
        let length = batch.map(\.count).max()!
        let ids = batch.flatMap { $0 + Array(repeating: 0, count: length - $0.count) }
        let maskValues = batch.flatMap { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: length - $0.count) }
        let idTensor = try Tensor(ids, shape: [batch.count, length])
        let mask = try Tensor(maskValues, shape: [batch.count, length])
        return try withNoGrad {
            let hidden = try model(idTensor, mask: mask).to(dtype: .float32)
            let m = try mask.to(dtype: .float32).unsqueeze(-1)
            let mean = try (hidden * m).sum(1) / m.sum(1).clamp(min: 1e-9)
            return try mean / mean.norm(2, dims: [1], keepDim: true).clamp(min: 1e-12)
        }
    }

    /// One slot per job, written from worker threads.
    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [Tensor?]
        init(_ count: Int) { slots = Array(repeating: nil, count: count) }
        var count: Int { slots.count }
        var values: [Tensor] { lock.lock(); defer { lock.unlock() }; return slots.map { $0! } }
        subscript(i: Int) -> Tensor {
            get { lock.lock(); defer { lock.unlock() }; return slots[i]! }
            set { lock.lock(); slots[i] = newValue; lock.unlock() }
        }
    }

    /// Cosine similarity of two texts' embeddings.
    public func similarity(_ a: String, _ b: String) throws -> Double {
        let e = try embed([a, b])
        return try (e.select(0, 0) * e.select(0, 1)).sum().item()
    }
}
