import CFaiss
import Foundation

/// A FAISS failure, with FAISS's message.
public struct IndexError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

@inline(__always) func checkFaiss(_ status: Int32, _ context: String = "") throws {
    if status != 0 {
        let message = String(cString: cf_last_error())
        throw IndexError(context.isEmpty ? message : "\(context): \(message)")
    }
}

/// A FAISS inner-product index with its own 64-bit ids: exact (`flat`), HNSW, IVF-Flat or IVF-PQ.
public final class VectorIndex: @unchecked Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case flat, hnsw, ivf, ivfpq
        var code: Int32 {
            switch self {
            case .flat: Int32(CF_FLAT)
            case .hnsw: Int32(CF_HNSW)
            case .ivf: Int32(CF_IVF)
            case .ivfpq: Int32(CF_IVFPQ)
            }
        }
        /// IVF kinds must be trained on representative vectors first.
        public var needsTraining: Bool { self == .ivf || self == .ivfpq }
    }

    let handle: cf_index
    public let kind: Kind

    public static var faissVersion: String { String(cString: cf_version()) }

    public init(dimension: Int, kind: Kind = .flat, hnswNeighbors: Int = 32, lists: Int = 100, subQuantizers: Int = 8) throws {
        var out: cf_index? = nil
        try checkFaiss(cf_index_new(Int32(dimension), kind.code, Int32(hnswNeighbors), Int32(lists), Int32(subQuantizers), &out))
        handle = out!
        self.kind = kind
    }

    init(handle: cf_index, kind: Kind) {
        self.handle = handle
        self.kind = kind
    }

    deinit { cf_index_free(handle) }

    public var dimension: Int { Int(cf_index_dim(handle)) }
    public var count: Int { Int(cf_index_count(handle)) }
    public var isTrained: Bool { cf_index_is_trained(handle) }

    private func checkShape(_ vectors: [Float]) throws -> Int {
        guard vectors.count % dimension == 0 else {
            throw IndexError("\(vectors.count) values are not whole \(dimension)-dimensional vectors")
        }
        return vectors.count / dimension
    }

    public func train(_ vectors: [Float]) throws {
        let n = try checkShape(vectors)
        try checkFaiss(cf_index_train(handle, vectors, Int64(n)), "training")
    }

    /// Adds row-major vectors with their ids.
    public func add(_ vectors: [Float], ids: [Int64]) throws {
        let n = try checkShape(vectors)
        guard n == ids.count else { throw IndexError("\(n) vectors but \(ids.count) ids") }
        try checkFaiss(cf_index_add(handle, vectors, ids, Int64(n)), "adding vectors")
    }

    public struct Hit: Sendable, Equatable {
        public var id: Int64
        public var score: Float
    }

    /// The k best hits per query (inner product, highest first); fewer when the index holds fewer.
    public func search(_ queries: [Float], k: Int) throws -> [[Hit]] {
        let nq = try checkShape(queries)
        guard k > 0 else { throw IndexError("k must be positive") }
        var scores = [Float](repeating: 0, count: nq * k)
        var ids = [Int64](repeating: -1, count: nq * k)
        try checkFaiss(cf_index_search(handle, queries, Int64(nq), Int64(k), &scores, &ids), "searching")
        return (0..<nq).map { q in
            (0..<k).compactMap { j in ids[q * k + j] >= 0 ? Hit(id: ids[q * k + j], score: scores[q * k + j]) : nil }
        }
    }

    /// HNSW efSearch or IVF nprobe.
    public func setSearchBreadth(_ breadth: Int) throws { try checkFaiss(cf_index_set_search_breadth(handle, Int32(breadth))) }

    /// HNSW efConstruction (before vectors are added).
    public func setBuildBreadth(_ breadth: Int) throws { try checkFaiss(cf_index_set_build_breadth(handle, Int32(breadth))) }

    public func write(to path: String) throws { try checkFaiss(cf_index_write(handle, path), path) }

    public static func read(from path: String, kind: Kind) throws -> VectorIndex {
        guard FileManager.default.fileExists(atPath: path) else { throw IndexError("\(path): no such file") }
        var out: cf_index? = nil
        try checkFaiss(cf_index_read(path, &out), path)
        return VectorIndex(handle: out!, kind: kind)
    }
}
