import ArgumentParser
import Foundation
import Jobs
import JSON
import Models
import Retrieval

/// The retrieval knowledge base: build, extend, query, describe.
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build and query the image knowledge base (the VLM's vision tower + FAISS).",
        subcommands: [IndexBuild.self, IndexAdd.self, IndexQuery.self, IndexInfo.self])
}

struct IndexBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Embed every image of a folder (.jpg/.jpeg/.png, recursively) or a JSONL (its image fields) and index them.",
        discussion: "Re-running the same build over a partly built folder continues it without re-embedding. Unreadable images are listed in the manifest and skipped.")
    @Option(help: "The VLM folder whose vision tower embeds the images (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL).") var model: String
    @Option(help: "A folder of images or a JSONL with image fields.") var images: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "flat (exact), hnsw, ivf or ivfpq.") var kind = "flat"
    @Option(help: "Images per batch.") var batchSize = 16

    func run() throws {
        guard let k = VectorIndex.Kind(rawValue: kind) else { throw ValidationError("--kind must be flat, hnsw, ivf or ivfpq") }
        var config = KnowledgeBaseConfig(model: model, images: images, out: out)
        config.kind = k
        config.batchSize = batchSize
        do { try KnowledgeBaseJob.run(config) } catch { throw CleanExit.message(error) }
    }
}

struct IndexAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add new images to an existing knowledge base.")
    @Option(help: "The knowledge base folder.") var index: String
    @Option(help: "The model it was built with (default: the one in its manifest).") var model: String?
    @Option(help: "A folder of images or a JSONL with image fields.") var images: String
    @Option(help: "Images per batch.") var batchSize = 16

    func run() throws {
        do {
            let existing = try KnowledgeBase(opening: index)
            let vlm = try VisionLanguageModel(folder: model ?? existing.modelPath)
            let paths = try KnowledgeBase.listImages(images)
            let kb = try KnowledgeBase.build(folder: index, model: vlm, images: existing.entries.map(\.path) + paths, kind: existing.kind,
                                             batchSize: batchSize, progress: progressBar("embedding"))
            log("\(kb.entries.count) images indexed in \(index)")
        } catch {
            throw CleanExit.message(error)
        }
    }
}

struct IndexQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print the images most similar to one image, with cosine scores.",
        discussion: "--exclude-self drops the entry whose path is the query's (resolved) or whose content is identical, and still returns k others.")
    @Option(help: "The knowledge base folder.") var index: String
    @Option(help: "The model it was built with (default: the one in its manifest).") var model: String?
    @Option(help: "The query image.") var image: String
    @Option(help: "How many results.") var k = 5
    @Flag(help: "Leave the query image itself out.") var excludeSelf = false
    @Flag(help: "Print JSON: [{\"rank\", \"path\", \"score\"}].") var json = false

    func run() throws {
        do {
            let kb = try KnowledgeBase(opening: index)
            let vlm = try VisionLanguageModel(folder: model ?? kb.modelPath)
            let results = try kb.query(image, model: vlm, k: k, excludeSelf: excludeSelf)
            if json {
                print(JSONValue.array(results.map { .object([("rank", .int($0.rank)), ("path", .string($0.path)), ("score", .double(Double($0.score)))]) }).serialized())
            } else {
                for r in results { print(String(format: "%2d  %.4f  %@", r.rank, r.score, r.path)) }
            }
        } catch {
            throw CleanExit.message(error)
        }
    }
}

struct IndexInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a knowledge base.")
    @Option(help: "The knowledge base folder.") var index: String

    func run() throws {
        do {
            let kb = try KnowledgeBase(opening: index)
            print("model: \(kb.modelPath)")
            print("fingerprint: \(kb.fingerprint)")
            print("kind: \(kb.kind.rawValue), dimension: \(kb.dimension)")
            print("images: \(kb.entries.count), skipped: \(kb.skipped.count)")
            for s in kb.skipped { print("  skipped \(s.path): \(s.reason)") }
        } catch {
            throw CleanExit.message(error)
        }
    }
}
