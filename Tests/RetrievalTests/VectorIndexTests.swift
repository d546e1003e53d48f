import Foundation
import Testing
@testable import Retrieval

/// Random unit vectors (seeded).
func unitVectors(_ n: Int, _ d: Int, seed: UInt64) -> [Float] {
    var state = seed
    func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
    }
    var out: [Float] = []
    out.reserveCapacity(n * d)
    for _ in 0..<n {
        let v = (0..<d).map { _ in next() }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        out += v.map { $0 / norm }
    }
    return out
}

/// Brute-force cosine top-k with deterministic ties (higher score, then lower id).
func bruteForce(_ base: [Float], _ ids: [Int64], _ query: ArraySlice<Float>, d: Int, k: Int) -> [VectorIndex.Hit] {
    var hits: [VectorIndex.Hit] = []
    for i in 0..<(base.count / d) {
        var dot: Float = 0
        for j in 0..<d { dot += base[i * d + j] * query[query.startIndex + j] }
        hits.append(.init(id: ids[i], score: dot))
    }
    return Array(hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(k))
}

@Suite struct VectorIndexTests {
    @Test func exactSearchEqualsBruteForce() throws {
        let d = 64, n = 500
        let base = unitVectors(n, d, seed: 1), ids = (0..<n).map { Int64($0 * 3 + 7) }
        let index = try VectorIndex(dimension: d, kind: .flat)
        try index.add(base, ids: ids)
        #expect(index.count == n)
        let queries = unitVectors(20, d, seed: 2)
        let hits = try index.search(queries, k: 5)
        for q in 0..<20 {
            let want = bruteForce(base, ids, queries[(q * d)..<((q + 1) * d)], d: d, k: 5)
            #expect(hits[q].map(\.id) == want.map(\.id))
            for (a, b) in zip(hits[q], want) { #expect(abs(a.score - b.score) < 1e-5) }
            // One query at a time takes ReAlign's vectorised scan rather than FAISS's BLAS batch: same answer.
            let single = try index.search(Array(queries[(q * d)..<((q + 1) * d)]), k: 5)[0]
            #expect(single.map(\.id) == want.map(\.id))
            for (a, b) in zip(single, want) { #expect(abs(a.score - b.score) < 1e-5) }
        }
        // Asking for more than the index holds: the rest is empty.
        #expect(try index.search(Array(queries[0..<d]), k: n + 3)[0].count == n)
    }

    @Test func persistsAndReportsErrors() throws {
        let d = 16
        let index = try VectorIndex(dimension: d, kind: .hnsw)
        try index.add(unitVectors(50, d, seed: 3), ids: (0..<50).map { Int64($0) })
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("index-\(UUID().uuidString).faiss").path
        try index.write(to: path)
        let back = try VectorIndex.read(from: path, kind: .hnsw)
        #expect(back.count == 50 && back.dimension == d)
        let q = unitVectors(3, d, seed: 4)
        #expect(try back.search(q, k: 4) == index.search(q, k: 4))
        #expect(throws: IndexError.self) { try index.add([1, 2, 3], ids: [0]) }
        #expect(throws: IndexError.self) { try VectorIndex.read(from: path + ".missing", kind: .flat) }
        try "not an index".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: IndexError.self) { try VectorIndex.read(from: path, kind: .flat) }
        // IVF needs training before vectors can be added.
        let ivf = try VectorIndex(dimension: d, kind: .ivf, lists: 4)
        #expect(!ivf.isTrained)
        #expect(throws: IndexError.self) { try ivf.add(unitVectors(5, d, seed: 5), ids: [1, 2, 3, 4, 5]) }
        try ivf.train(unitVectors(400, d, seed: 6))
        try ivf.add(unitVectors(5, d, seed: 5), ids: [1, 2, 3, 4, 5])
        #expect(ivf.count == 5)
    }

    /// HNSW recall@10 against exact search (the full 100k x 768 measurement is in `realign bench index`).
    @Test func hnswRecall() throws {
        let d = 64, n = 5000
        let base = unitVectors(n, d, seed: 7), ids = (0..<n).map { Int64($0) }
        let exact = try VectorIndex(dimension: d, kind: .flat), hnsw = try VectorIndex(dimension: d, kind: .hnsw)
        try exact.add(base, ids: ids)
        try hnsw.add(base, ids: ids)
        try hnsw.setSearchBreadth(64)
        let queries = unitVectors(100, d, seed: 8)
        let a = try exact.search(queries, k: 10), b = try hnsw.search(queries, k: 10)
        var found = 0
        for (x, y) in zip(a, b) { found += Set(x.map(\.id)).intersection(y.map(\.id)).count }
        let recall = Double(found) / 1000
        #expect(recall >= 0.95, "recall@10 \(recall)")
    }
}
