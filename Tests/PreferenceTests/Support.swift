import Foundation
import Models
import TestSupport
import Retrieval
@testable import Backends
@testable import Preference


let tinyLlava = repoPath("ModelsTests/Fixtures/tiny-llava")
let samplesFile = repoPath("PreferenceTests/Fixtures/shapes/samples.jsonl")

func temporaryFolder(_ tag: String = "prefs") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `realign` to the end; returns its exit status and stderr.
@discardableResult
func runRealign(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try realignExecutable())
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

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
