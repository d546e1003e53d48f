import Foundation
import Retrieval
import Torch

/// FAISS index kinds on random unit vectors: build time, memory, queries/s and recall@k against exact search.
public struct IndexBenchConfig: Sendable {
    /// How the random vectors and queries are drawn.
    public enum Distribution: String, CaseIterable, Sendable {
        /// Around random centres on the sphere, as image embeddings cluster.
        case clustered
        /// Independent uniform unit vectors: the worst case for any approximate index.
        case uniform
    }

    /// Vectors in the index.
    public var vectors = 1_000_000
    public var dimension = 768
    /// Query vectors.
    public var queries = 1000
    /// Neighbours per query (recall@k).
    public var k = 10
    /// Kinds to measure (flat is always built: it gives the truth).
    public var kinds: [VectorIndex.Kind] = [.flat, .hnsw, .ivf, .ivfpq]
    /// HNSW neighbours per node (M).
    public var hnswM = 32
    /// HNSW efConstruction (FAISS default 40).
    public var efConstruction = 40
    /// HNSW efSearch values to report.
    public var efSearch = [64, 128, 256]
    /// IVF lists (nil: 4 x sqrt(vectors)).
    public var lists: Int?
    /// IVF nprobe values to report.
    public var nprobe = [16, 64]
    /// IVF-PQ sub-quantizers (8 bits each).
    public var pqM = 64
    /// Vectors the IVF kinds train on (nil: 64 x lists, at most all).
    public var trainSize: Int?
    public var data = Distribution.clustered
    /// Clusters for `.clustered`.
    public var clusters = 1000
    /// Noise around each centre for `.clustered` (per-coordinate standard deviation x sqrt(dimension)).
    public var spread = 1.0
    /// Queries timed one at a time (the first ones).
    public var singleQueries = 200
    /// Random seed.
    public var seed = 1
    /// FAISS threads (OpenMP; nil: all cores).
    public var threads: Int?

    public init() {}
}

public enum IndexBench {
    /// Prints one line per kind and search breadth: build seconds, resident growth, queries/s one at a time and
    /// batched (and their ratio to exact search), recall@k against the flat index's answers.
    public static func run(_ config: IndexBenchConfig) throws {
        let c = config, dimension = c.dimension, queries = c.queries, k = c.k, vectors = c.vectors
        printMachine()
        if let threads = c.threads { setenv("OMP_NUM_THREADS", String(threads), 1) }
        let nlist = c.lists ?? max(1, Int(4 * Double(vectors).squareRoot()))
        print("FAISS \(VectorIndex.faissVersion), \(vectors) x \(dimension) random unit vectors, \(queries) queries, recall@\(k), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let centres = c.data == .clustered ? try Tensor.randn([c.clusters, dimension], generator: Generator(seed: UInt64(c.seed) &+ 77)) : nil
        let base = try randomUnitVectors(c, vectors, seed: UInt64(c.seed), centres: centres)
        let query = try randomUnitVectors(c, queries, seed: UInt64(c.seed) &+ 1_000_003, centres: centres)
        print("data: \(c.data.rawValue)" + (c.data == .clustered ? ", \(c.clusters) clusters, spread \(c.spread)" : ""))
        let ids = (0..<vectors).map { Int64($0) }

        // The truth: exact inner-product search.
        var exactQPS = 0.0, exactSingleQPS = 0.0
        var truth: [[VectorIndex.Hit]] = []
        let singles = min(c.singleQueries, queries)
        /// Queries/s asking one query per call.
        func oneAtATime(_ index: VectorIndex) throws -> Double {
            let t = try seconds { for q in 0..<singles { _ = try index.search(Array(query[(q * dimension)..<((q + 1) * dimension)]), k: k) } }
            return Double(singles) / t
        }
        do {
            let before = residentBytes()
            let exact = try VectorIndex(dimension: dimension, kind: .flat)
            let build = try seconds { try exact.add(base, ids: ids) }
            let memory = residentBytes() - before
            let searching = try seconds { truth = try exact.search(query, k: k) }
            exactQPS = Double(queries) / searching
            exactSingleQPS = try oneAtATime(exact)
            if c.kinds.contains(.flat) {
                print(String(format: "  %-36@ build %7.1f s  memory %6.2f GiB  one at a time %8.0f q/s (1.0x)  batched %8.0f q/s (1.0x)  recall@%d 1.000",
                             "flat (exact)" as NSString, build, memory / 1_073_741_824, exactSingleQPS, exactQPS, k))
            }
        }
        func recall(_ hits: [[VectorIndex.Hit]]) -> Double {
            var found = 0
            for (a, b) in zip(truth, hits) { found += Set(a.map(\.id)).intersection(b.map(\.id)).count }
            return Double(found) / Double(queries * k)
        }
        /// Resident growth in GiB, or n/a where the allocator reused memory an earlier index freed.
        func gib(_ bytes: Double) -> String { bytes > 16_777_216 ? String(format: "%6.2f GiB", bytes / 1_073_741_824) : "   n/a    " }
        func report(_ name: String, _ build: Double, _ memory: Double, _ index: VectorIndex, breadths: [Int]) throws {
            for breadth in breadths {
                try index.setSearchBreadth(breadth)
                var hits: [[VectorIndex.Hit]] = []
                let searching = try seconds { hits = try index.search(query, k: k) }
                let qps = Double(queries) / searching
                let single = try oneAtATime(index)
                print(String(format: "  %-36@ build %7.1f s  memory %@  one at a time %8.0f q/s (%.1fx)  batched %8.0f q/s (%.1fx)  recall@%d %.3f",
                             "\(name), \(index.kind == .hnsw ? "ef" : "nprobe") \(breadth)" as NSString,
                             build, gib(memory) as NSString, single, single / exactSingleQPS, qps, qps / exactQPS, k, recall(hits)))
            }
        }
        let trainCount = min(vectors, c.trainSize ?? 64 * nlist)
        for kind in c.kinds where kind != .flat {
            let before = residentBytes()
            var build = 0.0
            switch kind {
            case .hnsw:
                let index = try VectorIndex(dimension: dimension, kind: .hnsw, hnswNeighbors: c.hnswM)
                try index.setBuildBreadth(c.efConstruction)
                build = try seconds { try index.add(base, ids: ids) }
                try report("hnsw M\(c.hnswM) efC\(c.efConstruction)", build, residentBytes() - before, index, breadths: c.efSearch)
            case .ivf, .ivfpq:
                let index = try VectorIndex(dimension: dimension, kind: kind, lists: nlist, subQuantizers: c.pqM)
                build = try seconds {
                    try index.train(Array(base[0..<(trainCount * dimension)]))
                    try index.add(base, ids: ids)
                }
                let name = kind == .ivf ? "ivf \(nlist)" : "ivfpq \(nlist), \(c.pqM)x8b"
                try report(name, build, residentBytes() - before, index, breadths: c.nprobe)
            case .flat:
                break
            }
        }
    }

    /// n random unit vectors, drawn by libtorch (seeded) in chunks to bound the temporary memory: uniform on the
    /// sphere, or a random centre (unit) plus Gaussian noise of norm about `spread`, normalised.
    static func randomUnitVectors(_ c: IndexBenchConfig, _ n: Int, seed: UInt64, centres: Tensor?) throws -> [Float] {
        let dimension = c.dimension
        let generator = try Generator(seed: seed)
        var out: [Float] = []
        out.reserveCapacity(n * dimension)
        let unitCentres = try centres.map { try $0 / $0.norm(2, dims: [-1], keepDim: true) }
        for start in stride(from: 0, to: n, by: 65536) {
            let rows = min(65536, n - start)
            var x = try Tensor.randn([rows, dimension], generator: generator)
            if let unitCentres {
                let pick = try Tensor.randint(0, c.clusters, [rows], generator: generator)
                x = try unitCentres.indexSelect(0, pick) + x * (c.spread / Double(dimension).squareRoot())
            }
            out += try (x / x.norm(2, dims: [-1], keepDim: true)).toArray(Float.self)
        }
        return out
    }
}
