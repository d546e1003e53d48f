import Foundation
import Models
import Retrieval

/// The retrieval knowledge base: every image embedded by a model's vision tower, in a FAISS index on disk.
public struct KnowledgeBaseConfig: Sendable {
    /// The model whose vision tower embeds the images.
    public var model: String
    /// A folder of images (.jpg/.jpeg/.png, recursively) or a JSONL with image fields.
    public var images: String
    /// Output folder; a re-run over a partly built one continues without re-embedding.
    public var out: String
    public var kind: VectorIndex.Kind = .flat
    public var batchSize = 16
    public var verbose = true

    public init(model: String, images: String, out: String) {
        self.model = model
        self.images = images
        self.out = out
    }
}

public enum KnowledgeBaseJob {
    /// Builds (or finishes) the knowledge base that `config` describes.
    @discardableResult
    public static func run(_ config: KnowledgeBaseConfig) throws -> KnowledgeBase {
        guard config.batchSize >= 1 else { throw JobError("knowledge base: batch size must be at least 1") }
        let vlm = try VisionLanguageModel(folder: config.model)
        let paths = try KnowledgeBase.listImages(config.images)
        let kb = try build(folder: config.out, model: vlm, images: paths, kind: config.kind, batchSize: config.batchSize, verbose: config.verbose)
        if config.verbose { log("\(kb.entries.count) images indexed (\(config.kind.rawValue), \(kb.dimension) dimensions) in \(config.out)") }
        return kb
    }

    /// Builds over a loaded model, reporting each unreadable image (listed in the manifest and skipped).
    @discardableResult
    public static func build(folder: String, model: VisionLanguageModel, images: [String], kind: VectorIndex.Kind,
                             batchSize: Int = 16, verbose: Bool = true) throws -> KnowledgeBase {
        let kb = try KnowledgeBase.build(folder: folder, model: model, images: images, kind: kind, batchSize: batchSize,
                                         progress: verbose ? progressBar("knowledge base") : nil)
        if verbose { for s in kb.skipped { log("knowledge base: skipped \(s.path): \(s.reason)") } }
        return kb
    }
}
