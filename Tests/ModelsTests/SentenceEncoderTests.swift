import Foundation
import JSON
import TestSupport
import Testing
import Torch
@testable import Models


@Suite struct SentenceEncoderTests {
    /// Embeddings within 1e-5 of sentence-transformers on 50 sentences (tools/reference/make_sentence_fixtures.py).
    @Test func miniLMMatchesSentenceTransformers() throws {
        let encoder = try SentenceEncoder(folder: miniLMFolder())
        let spec = try JSONValue.parse(contentsOf: modelFixture("minilm_sentences.json"))
        let sentences = spec["sentences"]!.arrayValue!.map { $0.stringValue! }
        #expect(encoder.maxSequenceLength == spec["max_seq_length"]!.intValue!)
        let want = try SafeTensorsFile(path: modelFixture("minilm_embeddings.safetensors")).tensor("embeddings")
        let got = try encoder.embed(sentences, batchSize: 16)
        #expect(got.shape == [50, 384])
        let diff = try maxAbsDifference(got, want)
        #expect(diff <= 1e-5, "embeddings differ by \(diff)")
        // Unit length, and similar sentences closer than unrelated ones.
        let norms = try got.norm(2, dims: [1])
        #expect(try (norms - 1.0).abs().max().item() < 1e-5)
        #expect(try encoder.similarity("There is a red apple on the table.", "A red apple lies on the table.") >
                encoder.similarity("There is a red apple on the table.", "A train arrives at the station."))
    }

    /// Batches run in parallel and come back in input order: one sentence per batch (50 jobs on the workers, no
    /// padding) gives what one padded batch of all 50 gives on the calling thread.
    @Test func batchSizeDoesNotChangeEmbeddings() throws {
        let encoder = try SentenceEncoder(folder: miniLMFolder())
        let spec = try JSONValue.parse(contentsOf: modelFixture("minilm_sentences.json"))
        let sentences = spec["sentences"]!.arrayValue!.map { $0.stringValue! }
        let one = try encoder.embed(sentences, batchSize: 50)
        let each = try encoder.embed(sentences, batchSize: 1)
        let diff = try maxAbsDifference(one, each)
        #expect(diff <= 1e-6, "embeddings differ by \(diff)")
    }
}
