import Alignment
import Backends
import Foundation
import JSON
import Models
import Retrieval
import Torch

/// Similar images for a query image, best first, the query itself left out.
public protocol Retriever: Sendable {
    func neighbours(of image: String, k: Int) async throws -> [KnowledgeBase.Result]
}

/// Cosine similarity of two texts.
public protocol TextSimilarity: Sendable {
    func similarity(_ a: String, _ b: String) async throws -> Double
}

/// The knowledge base of the retrieval issue, queried with the VLM's own vision tower.
public struct KnowledgeBaseRetriever: Retriever {
    public let base: KnowledgeBase
    public let model: VisionLanguageModel
    public let worker: TorchWorker

    public init(base: KnowledgeBase, model: VisionLanguageModel, worker: TorchWorker) {
        self.base = base
        self.model = model
        self.worker = worker
    }

    public func neighbours(of image: String, k: Int) async throws -> [KnowledgeBase.Result] {
        let base = self.base, model = self.model
        return try await worker.run { try base.query(image, model: model, k: k, excludeSelf: true) }
    }
}

/// Sentence-embedding cosine (all-MiniLM-L6-v2 by default), as the paper's filter.
public struct SentenceSimilarity: TextSimilarity {
    public let encoder: SentenceEncoder
    public let worker: TorchWorker

    public init(encoder: SentenceEncoder, worker: TorchWorker) {
        self.encoder = encoder
        self.worker = worker
    }

    public func similarity(_ a: String, _ b: String) async throws -> Double {
        let encoder = self.encoder
        return try await worker.run { try encoder.similarity(a, b) }
    }
}

/// Seconds spent per stage, summed over records (stages of concurrent records overlap).
public final class StageClock: @unchecked Sendable {
    public static let stages = ["chosen", "mask", "retrieve", "induce", "filter"]
    private let lock = NSLock()
    private var seconds: [String: Double] = [:]

    public init() {}

    func time<T>(_ stage: String, _ body: () async throws -> T) async rethrows -> T {
        let start = Date()
        defer { let t = Date().timeIntervalSince(start); lock.withLock { seconds[stage, default: 0] += t } }
        return try await body()
    }

    public var totals: [String: Double] { lock.withLock { seconds } }
}

/// Re-Align's preference data: chosen -> strategic mask -> retrieve similar images -> the hallucination-prone
/// VLM fills the masks looking at the k-th image, in rank order, until cosine(chosen, completion) < tau.
public struct ReAlignPipeline: Sendable {
    public enum ChosenSource: Sendable {
        case given
        case backend(any ChatBackend)
    }

    public var chosen: ChosenSource
    public var masker: any Masker
    public var retriever: any Retriever
    public var inducer: Inducer
    public var similarity: any TextSimilarity
    public var k = 5
    public var tau = 0.95
    public var clock = StageClock()

    public init(chosen: ChosenSource, masker: any Masker, retriever: any Retriever, inducer: Inducer, similarity: any TextSimilarity) {
        self.chosen = chosen
        self.masker = masker
        self.retriever = retriever
        self.inducer = inducer
        self.similarity = similarity
    }

    /// One sample to one outcome; every error becomes a skipped record with its reason, never a throw.
    public func process(_ sample: SampleInput) async -> RecordOutcome {
        func failed(_ reason: String) -> RecordOutcome { .skipped(id: sample.id, kind: "failed", reason: reason) }
        guard FileManager.default.isReadableFile(atPath: sample.image) else { return failed("\(sample.image): no such image file") }
        // 1. The correct answer.
        let answer: String
        do {
            switch chosen {
            case .given:
                guard let given = sample.chosen else { return failed("no 'chosen' in the input (use --chosen BACKEND to generate one)") }
                answer = given
            case .backend(let backend):
                answer = try await clock.time("chosen") {
                    try await backend.complete(ChatRequest(user: sample.prompt, image: sample.image, maxTokens: 256)).text
                }.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !answer.isEmpty else { return failed("the chosen-answer backend returned an empty answer") }
            }
        } catch {
            return failed("chosen answer: \(error)")
        }
        // 2. Strategic masking.
        let masked: String
        do {
            masked = try await clock.time("mask") { try await masker.mask(answer: answer, prompt: sample.prompt, image: sample.image) }
        } catch let e as MaskError {
            return failed("invalid mask: \(e.message)")
        } catch {
            return failed("masking: \(error)")
        }
        // 3. Retrieval, the query image left out.
        let neighbours: [KnowledgeBase.Result]
        do {
            neighbours = try await clock.time("retrieve") { try await retriever.neighbours(of: sample.image, k: k) }
        } catch {
            return failed("retrieval: \(error)")
        }
        guard !neighbours.isEmpty else { return .skipped(id: sample.id, kind: "unpaired", reason: "the knowledge base has no other image") }
        // 4-5. Induction over the ranked images until the completion differs enough.
        var tried: [String] = []
        for neighbour in neighbours {
            let completion: String
            do {
                completion = try await clock.time("induce") { try await inducer.fill(prompt: sample.prompt, masked: masked, image: neighbour.path) }
            } catch let e as Inducer.Failure {
                tried.append("rank \(neighbour.rank): \(e.message)")
                continue
            } catch {
                return failed("induction (rank \(neighbour.rank)): \(error)")
            }
            let cosine: Double
            do {
                cosine = try await clock.time("filter") { try await similarity.similarity(answer, completion) }
            } catch {
                return failed("similarity: \(error)")
            }
            if cosine < tau {
                return .kept(PreferenceRecord(
                    id: sample.id, prompt: sample.prompt, chosen: answer, rejected: completion, image: sample.image,
                    retrievedImage: neighbour.path, line: sample.line,
                    provenance: .object([("masked", .string(masked)), ("similarity", .double(Self.rounded(cosine))),
                                         ("retrieval_rank", .int(neighbour.rank)),
                                         ("retrieval_score", .double(Self.rounded(Double(neighbour.score))))]
                                        + (sample.category.map { [("category", JSONValue.string($0))] } ?? []))))
            }
            tried.append("rank \(neighbour.rank): cosine \(String(format: "%.4f", cosine))")
        }
        return .skipped(id: sample.id, kind: "unpaired", reason: "no completion below tau \(tau) over \(neighbours.count) images (\(tried.joined(separator: "; ")))")
    }

    /// Six decimals: stable text across runs and machines for values computed in float32.
    static func rounded(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }
}
