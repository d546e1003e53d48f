import Common
import Foundation
import Images
import JSON
import Models
import Torch

/// Re-Align's image knowledge base: every image embedded by the VLM's own vision tower (pooled CLS state,
/// L2-normalised, so inner product is cosine) in a FAISS index, with a manifest beside it.
///
/// Folder layout: `manifest.json` (model, fingerprint, dimension, kind, entries with absolute paths and content
/// hashes, skipped files), `embeddings.f32` (rows in entry order, appended batch by batch so an interrupted build
/// resumes without re-embedding), `index.faiss`.
public final class KnowledgeBase: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: Int
        public var path: String
        public var contentHash: String
    }

    public let folder: String
    public private(set) var modelPath: String
    public private(set) var fingerprint: String
    public private(set) var dimension: Int
    public private(set) var kind: VectorIndex.Kind
    public private(set) var entries: [Entry] = []
    public private(set) var skipped: [(path: String, reason: String)] = []
    private var index: VectorIndex?

    var manifestPath: String { (folder as NSString).appendingPathComponent("manifest.json") }
    var embeddingsPath: String { (folder as NSString).appendingPathComponent("embeddings.f32") }
    var indexPath: String { (folder as NSString).appendingPathComponent("index.faiss") }

    /// The vision tower's identity: config and the class embedding's values.
    public static func fingerprint(of model: any VLMModel, folder: String) throws -> String {
        var h = FNV1a64()
        h.add(bytes: Array(FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent("config.json")) ?? Data()))
        h.add(bytes: try model.visionFingerprint())
        return h.hex
    }

    /// Opens an existing knowledge base.
    public init(opening folder: String) throws {
        self.folder = folder
        guard FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent("manifest.json")) else {
            throw IndexError("\(folder): no manifest.json (not a knowledge base)")
        }
        let m = try JSONValue.parse(contentsOf: (folder as NSString).appendingPathComponent("manifest.json"))
        guard let model = m["model"]?.stringValue, let fp = m["fingerprint"]?.stringValue, let d = m["dimension"]?.intValue,
              let k = m["kind"]?.stringValue.flatMap(VectorIndex.Kind.init(rawValue:)) else {
            throw IndexError("\(folder)/manifest.json: missing model, fingerprint, dimension or kind")
        }
        modelPath = model
        fingerprint = fp
        dimension = d
        kind = k
        for e in m["entries"]?.arrayValue ?? [] {
            guard let id = e["id"]?.intValue, let path = e["path"]?.stringValue, let hash = e["hash"]?.stringValue else {
                throw IndexError("\(folder)/manifest.json: a malformed entry")
            }
            entries.append(Entry(id: id, path: path, contentHash: hash))
        }
        for s in m["skipped"]?.arrayValue ?? [] {
            skipped.append((s["path"]?.stringValue ?? "?", s["reason"]?.stringValue ?? "?"))
        }
        if FileManager.default.fileExists(atPath: indexPath) { index = try VectorIndex.read(from: indexPath, kind: kind) }
    }

    private init(folder: String, modelPath: String, fingerprint: String, dimension: Int, kind: VectorIndex.Kind) {
        self.folder = folder
        self.modelPath = modelPath
        self.fingerprint = fingerprint
        self.dimension = dimension
        self.kind = kind
    }

    /// Images of a folder (.jpg/.jpeg/.png in any case, recursively, by relative path) or of a JSONL file (its
    /// `image` fields, in file order, relative to the file's folder unless absolute). Paths come back absolute.
    public static func listImages(_ source: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else { throw IndexError("\(source): no such file or folder") }
        let absolute = URL(fileURLWithPath: source).standardizedFileURL.path
        if isDirectory.boolValue {
            guard let walker = FileManager.default.enumerator(atPath: absolute) else { return [] }
            var relative: [String] = []
            while let item = walker.nextObject() as? String {
                let ext = (item as NSString).pathExtension.lowercased()
                if ["jpg", "jpeg", "png"].contains(ext) { relative.append(item) }
            }
            return relative.sorted().map { (absolute as NSString).appendingPathComponent($0) }
        }
        guard let data = FileManager.default.contents(atPath: absolute) else { throw IndexError("\(source): cannot read") }
        let base = (absolute as NSString).deletingLastPathComponent
        var paths: [String] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let v = try? JSONValue.parse(Array(line)), let image = v["image"]?.stringValue ?? v["images"]?.arrayValue?.first?.stringValue else {
                if !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
                    FileHandle.standardError.write(Data("realign: \(source):\(i + 1): no image field, skipped\n".utf8))
                }
                continue
            }
            let path = image.hasPrefix("/") ? image : (base as NSString).appendingPathComponent(image)
            if !paths.contains(path) { paths.append(URL(fileURLWithPath: path).standardizedFileURL.path) }
        }
        return paths
    }

    /// Builds (or, over a partly built folder, continues) a knowledge base of `images` embedded by `model`.
    public static func build(folder: String, model: VisionLanguageModel, images: [String], kind: VectorIndex.Kind,
                             batchSize: Int = 16, progress: ((Int, Int) throws -> Void)? = nil) throws -> KnowledgeBase {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fp = try fingerprint(of: model.model, folder: model.folder)
        let kb: KnowledgeBase
        if FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent("manifest.json")) {
            kb = try KnowledgeBase(opening: folder)
            guard kb.fingerprint == fp else {
                throw IndexError("\(folder): built by another model (\(kb.modelPath)); use a new folder")
            }
            guard kb.kind == kind else { throw IndexError("\(folder): built as a \(kb.kind.rawValue) index, not \(kind.rawValue)") }
        } else {
            kb = KnowledgeBase(folder: folder, modelPath: URL(fileURLWithPath: model.folder).standardizedFileURL.path, fingerprint: fp,
                               dimension: model.model.pooledImageEmbeddingDimension, kind: kind)
            try kb.writeManifest()
        }
        try kb.embed(images, model: model, batchSize: batchSize, progress: progress)
        try kb.rebuildIndex()
        return kb
    }

    /// Embeds images not yet in the base (resuming after an interruption), appending rows and entries.
    func embed(_ images: [String], model: VisionLanguageModel, batchSize: Int, progress: ((Int, Int) throws -> Void)?) throws {
        lookupLock.withLock { stored = nil }
        try truncateEmbeddings(to: entries.count)
        let known = Set(entries.map(\.path)).union(skipped.map(\.path))
        let todo = images.filter { !known.contains($0) }
        var done = images.count - todo.count
        try progress?(done, images.count)
        for start in stride(from: 0, to: todo.count, by: max(1, batchSize)) {
            let batch = Array(todo[start..<min(start + max(1, batchSize), todo.count)])
            var loaded: [(String, RGBImage, String)] = []
            for path in batch {
                do {
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                    loaded.append((path, try RGBImage(data: bytes, name: path), FNV1a64.hex(Array(bytes))))
                } catch let e as ImageError {
                    skipped.append((path, e.message))
                } catch {
                    // Not Foundation's text: it lists its user info in hash order, different in every process.
                    skipped.append((path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file"))
                }
            }
            if !loaded.isEmpty {
                let vectors = try withNoGrad { try model.model.pooledImageEmbedding(model.pixels(loaded.map(\.1))) }
                try appendEmbeddings(try vectors.flatten().toArray(Float.self))
                for (path, _, hash) in loaded { entries.append(Entry(id: entries.count, path: path, contentHash: hash)) }
            }
            try writeManifest()
            done += batch.count
            try progress?(done, images.count)
        }
    }

    func appendEmbeddings(_ values: [Float]) throws {
        if !FileManager.default.fileExists(atPath: embeddingsPath) { _ = FileManager.default.createFile(atPath: embeddingsPath, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: embeddingsPath))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: values.withUnsafeBytes { Data($0) })
        try handle.synchronize()
    }

    /// Rows past the manifest's entries (written before an interruption reached the manifest) are dropped.
    func truncateEmbeddings(to rows: Int) throws {
        guard FileManager.default.fileExists(atPath: embeddingsPath) else { return }
        let bytes = rows * dimension * 4
        let size = (try FileManager.default.attributesOfItem(atPath: embeddingsPath)[.size] as? Int) ?? 0
        if size < bytes { throw IndexError("\(embeddingsPath): holds fewer embeddings than the manifest lists") }
        if size > bytes {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: embeddingsPath))
            try handle.truncate(atOffset: UInt64(bytes))
            try handle.close()
        }
    }

    public func embeddings() throws -> [Float] {
        guard let data = FileManager.default.contents(atPath: embeddingsPath) else { return [] }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }.prefix(entries.count * dimension).map { $0 }
    }

    /// Builds the FAISS index from all stored embeddings (training IVF kinds on them) and writes it.
    func rebuildIndex() throws {
        let vectors = try embeddings()
        let n = entries.count
        let lists = max(1, min(Int(Double(max(n, 1)).squareRoot() * 4), max(1, n / 39)))
        let index = try VectorIndex(dimension: dimension, kind: kind, lists: lists, subQuantizers: dimension % 8 == 0 ? 8 : 1)
        if kind.needsTraining {
            guard n >= lists else { throw IndexError("\(kind.rawValue) needs at least \(lists) images to train, the base has \(n)") }
            try index.train(vectors)
        }
        if n > 0 { try index.add(vectors, ids: entries.map { Int64($0.id) }) }
        if kind == .hnsw { try index.setSearchBreadth(64) }
        let temporary = indexPath + ".tmp"
        try index.write(to: temporary)
        _ = try? FileManager.default.removeItem(atPath: indexPath)
        try FileManager.default.moveItem(atPath: temporary, toPath: indexPath)
        self.index = index
    }

    func writeManifest() throws {
        let entryJSON = entries.map { "{\"id\": \($0.id), \"path\": \(JSONValue.quoted($0.path)), \"hash\": \"\($0.contentHash)\"}" }
        let skippedJSON = skipped.map { "{\"path\": \(JSONValue.quoted($0.path)), \"reason\": \(JSONValue.quoted($0.reason))}" }
        let text = """
            {"version": 1, "model": \(JSONValue.quoted(modelPath)), "fingerprint": "\(fingerprint)", "dimension": \(dimension), "kind": "\(kind.rawValue)",
             "entries": [\(entryJSON.joined(separator: ",\n  "))],
             "skipped": [\(skippedJSON.joined(separator: ",\n  "))]}

            """
        try text.write(toFile: manifestPath, atomically: true, encoding: .utf8)
    }

    public struct Result: Sendable, Equatable {
        public var rank: Int
        public var path: String
        public var score: Float
    }

    /// The k most similar images to `image` (a file), best first. `excludeSelf` drops entries whose path is the
    /// query's (resolved, absolute) or whose content is identical, and still returns k others.
    public func query(_ image: String, model: VisionLanguageModel, k: Int, excludeSelf: Bool) throws -> [Result] {
        guard try Self.fingerprint(of: model.model, folder: model.folder) == fingerprint else {
            throw IndexError("\(folder): built by another model (\(modelPath)); query it with that model")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: image))
        let path = URL(fileURLWithPath: image).standardizedFileURL.path, hash = FNV1a64.hex(Array(bytes))
        // An image the base holds (same path, same bytes) is looked up, not embedded again.
        let vector = try (reusesStoredVectors ? storedVector(path: path, hash: hash) : nil) ?? withNoGrad {
            try model.model.pooledImageEmbedding(model.pixels([RGBImage(data: bytes, name: image)])).flatten().toArray(Float.self)
        }
        return try query(vector: vector, k: k, excluding: excludeSelf ? (path, hash) : nil)
    }

    /// Whether queries for images the base holds use their stored vectors (on by default).
    public var reusesStoredVectors = true
    private let lookupLock = NSLock()
    private var stored: (rows: [String: Int], vectors: [Float])?

    /// The stored embedding of an entry with this path and content, read from embeddings.f32 once.
    func storedVector(path: String, hash: String) throws -> [Float]? {
        try lookupLock.withLock {
            if stored == nil {
                var rows: [String: Int] = [:]
                for (row, e) in entries.enumerated() { rows[e.path + "\u{0}" + e.contentHash] = row }
                stored = (rows, try embeddings())
            }
            guard let row = stored!.rows[path + "\u{0}" + hash], (row + 1) * dimension <= stored!.vectors.count else { return nil }
            return Array(stored!.vectors[(row * dimension)..<((row + 1) * dimension)])
        }
    }

    /// Search by embedding; `excluding` (path, content hash) removes self-matches.
    public func query(vector: [Float], k: Int, excluding: (path: String, hash: String)?) throws -> [Result] {
        guard let index else { throw IndexError("\(folder): no index.faiss (the build did not finish)") }
        guard k > 0 else { throw IndexError("k must be positive") }
        var want = k + (excluding == nil ? 0 : 4)
        while true {
            let hits = try index.search(vector, k: min(want, max(entries.count, 1)))[0]
            // Ties in score are ordered by id for determinism.
            let ordered = hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
            let kept = ordered.filter { hit in
                guard let ex = excluding else { return true }
                let e = entries[Int(hit.id)]
                return e.path != ex.path && e.contentHash != ex.hash
            }
            if kept.count >= k || want >= entries.count {
                return kept.prefix(k).enumerated().map { Result(rank: $0.offset + 1, path: entries[Int($0.element.id)].path, score: $0.element.score) }
            }
            want *= 2
        }
    }
}

