import Foundation
import Models
import TestSupport
import Retrieval
@testable import Backends
@testable import Preference


let tinyLlava = repoPath("ModelsTests/Fixtures/tiny-llava")
let samplesFile = repoPath("PreferenceTests/Fixtures/shapes/samples.jsonl")

/// Loaded once: the tiny LLaVA, MiniLM and a knowledge base of the fixture images.
final class Shared: @unchecked Sendable {
    static let instance = Shared()
    let worker = TorchWorker()
    lazy var vlm: VisionLanguageModel = try! VisionLanguageModel(folder: tinyLlava)
    lazy var encoder: SentenceEncoder = try! SentenceEncoder(folder: try! miniLMFolder())
    lazy var samples: [SampleInput] = try! SampleReader.read(samplesFile).samples
    lazy var base: KnowledgeBase = try! KnowledgeBase.build(folder: temporaryFolder("kb"), model: vlm, images: samples.map(\.image), kind: .flat)

    func pipeline(similarity: (any TextSimilarity)? = nil, tau: Double = 0.95, k: Int = 5) -> ReAlignPipeline {
        var p = ReAlignPipeline(chosen: .given, masker: RuleMasker(),
                                retriever: KnowledgeBaseRetriever(base: base, model: vlm, worker: worker),
                                inducer: Inducer(backend: LocalBackend(model: vlm, worker: worker)),
                                similarity: similarity ?? SentenceSimilarity(encoder: encoder, worker: worker))
        p.tau = tau
        p.k = k
        return p
    }
}

/// Line objects of a JSONL file.
func jsonLines(_ path: String) -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}
