import Foundation
import TestSupport
import Testing
import Torch
@testable import Models
@testable import Retrieval


struct Stop: Error {}

@Suite(.serialized) struct KnowledgeBaseTests {
    let modelFolder = repoPath("ModelsTests/Fixtures/tiny-llava")
    let imageFolder = repoPath("AlignmentTests/Fixtures/prefs/images")

    func temp() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("kb-\(UUID().uuidString)").path }

    @Test func buildQueryExcludeSelfAndBruteForce() throws {
        let vlm = try VisionLanguageModel(folder: modelFolder)
        let images = try KnowledgeBase.listImages(imageFolder)
        #expect(images.count == 6 && images.allSatisfy { $0.hasPrefix("/") })
        let folder = temp()
        let kb = try KnowledgeBase.build(folder: folder, model: vlm, images: images, kind: .flat, batchSize: 4)
        #expect(kb.entries.count == 6)
        // Exact search equals a brute-force cosine ranking of the stored embeddings.
        let vectors = try kb.embeddings(), d = kb.dimension
        for (i, query) in images.enumerated() {
            let q = Array(vectors[(i * d)..<((i + 1) * d)])
            let results = try kb.query(vector: q, k: 6, excluding: nil)
            let scores = (0..<6).map { j in (0..<d).reduce(Float(0)) { $0 + q[$1] * vectors[j * d + $1] } }
            let want = (0..<6).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            #expect(results.map(\.path) == want.map { images[$0] }, "ranking for \(query)")
            for (r, j) in zip(results, want) { #expect(abs(r.score - scores[j]) < 1e-5) }
        }
        // Self excluded by path, and by identical content under another name; still k results.
        let own = try kb.query(images[1], model: vlm, k: 3, excludeSelf: true)
        #expect(own.count == 3 && !own.contains { $0.path == images[1] })
        let copy = temp() + ".png"
        try FileManager.default.copyItem(atPath: images[1], toPath: copy)
        let viaCopy = try kb.query(copy, model: vlm, k: 5, excludeSelf: true)
        #expect(viaCopy.count == 5 && !viaCopy.contains { $0.path == images[1] })
        let withSelf = try kb.query(images[1], model: vlm, k: 1, excludeSelf: false)
        #expect(withSelf.first?.path == images[1])
        // An image the base holds is looked up (its stored row), one under another path is embedded: same answer.
        let stored = try kb.query(images[1], model: vlm, k: 5, excludeSelf: true)
        #expect(stored.map(\.path) == viaCopy.map(\.path))
        for (a, b) in zip(stored, viaCopy) { #expect(abs(a.score - b.score) < 1e-5) }
        #expect(try kb.storedVector(path: images[1], hash: kb.entries[1].contentHash) == Array(vectors[d..<(2 * d)]))
        #expect(try kb.storedVector(path: copy, hash: kb.entries[1].contentHash) == nil)
    }

    /// An interrupted build, re-run, finishes without re-embedding and equals an uninterrupted build.
    @Test func interruptedBuildResumes() throws {
        let vlm = try VisionLanguageModel(folder: modelFolder)
        let images = try KnowledgeBase.listImages(imageFolder)
        let straight = try KnowledgeBase.build(folder: temp(), model: vlm, images: images, kind: .flat, batchSize: 2)
        let folder = temp()
        #expect(throws: Stop.self) {
            _ = try KnowledgeBase.build(folder: folder, model: vlm, images: images, kind: .flat, batchSize: 2) { done, _ in
                if done >= 4 { throw Stop() }
            }
        }
        var embedded: [Int] = []
        let resumed = try KnowledgeBase.build(folder: folder, model: vlm, images: images, kind: .flat, batchSize: 2) { done, _ in embedded.append(done) }
        #expect(embedded.first == 4)  // the first four were not embedded again
        #expect(resumed.entries.map(\.path) == straight.entries.map(\.path))
        #expect(try resumed.embeddings() == straight.embeddings())
    }

    /// A knowledge base refuses queries through another model.
    @Test func refusesAnotherModel() throws {
        let vlm = try VisionLanguageModel(folder: modelFolder)
        let kb = try KnowledgeBase.build(folder: temp(), model: vlm, images: try KnowledgeBase.listImages(imageFolder), kind: .hnsw)
        let other = temp()
        try FileManager.default.copyItem(atPath: modelFolder, toPath: other)
        var weights = try Checkpoint(path: other).loadAll()
        weights["vision_tower.embeddings.class_embedding"] = try weights["vision_tower.embeddings.class_embedding"]! + 1.0
        try SafeTensors.write(weights, to: other + "/model.safetensors")
        let otherVLM = try VisionLanguageModel(folder: other)
        #expect(performing: { _ = try kb.query(try KnowledgeBase.listImages(imageFolder)[0], model: otherVLM, k: 2, excludeSelf: false) },
                throws: { "\($0)".contains("another model") })
    }
}
