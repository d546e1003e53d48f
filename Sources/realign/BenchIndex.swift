import ArgumentParser
import Foundation
import Jobs
import Images
import JSON
import Models
import Retrieval
import Torch

/// Resident memory of this process, from /proc/self/statm.
func residentBytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// FAISS index kinds on random unit vectors: build time, memory, queries/s and recall@k against exact search.
struct BenchIndex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build time, memory, queries/s and recall@k of each index kind on random unit vectors.",
        discussion: """
            --data clustered (the default) draws vectors and queries around random centres on the sphere, as image \
            embeddings cluster; --data uniform draws independent uniform unit vectors, the worst case for any \
            approximate index (in 768 dimensions all points are nearly equidistant, so a graph has no shortcut). \
            Recall@k is measured against the exact (flat) index's answers; memory is the growth of resident memory \
            while the index is built (vectors held by the caller are not counted). Queries/s are measured both one \
            query at a time (as `realign index query` and the pipeline ask) and as one batch of all queries (where \
            exact search becomes a BLAS matrix product).
            """)

    @Option(help: "Vectors in the index.") var vectors = 1_000_000
    @Option(help: "Dimension.") var dimension = 768
    @Option(help: "Query vectors.") var queries = 1000
    @Option(help: "Neighbours per query (recall@k).") var k = 10
    @Option(help: "Comma-separated kinds to measure (flat is always built: it gives the truth).") var kinds = "flat,hnsw,ivf,ivfpq"
    @Option(help: "HNSW neighbours per node (M).") var hnswM = 32
    @Option(help: "HNSW efConstruction (FAISS default 40).") var efConstruction = 40
    @Option(help: "HNSW efSearch values to report (comma-separated).") var efSearch = "64,128,256"
    @Option(help: "IVF lists (default 4 x sqrt(vectors)).") var lists: Int?
    @Option(help: "IVF nprobe values to report (comma-separated).") var nprobe = "16,64"
    @Option(help: "IVF-PQ sub-quantizers (8 bits each).") var pqM = 64
    @Option(help: "Vectors the IVF kinds train on (default 64 x lists, at most all).") var trainSize: Int?
    @Option(help: "clustered or uniform.") var data = "clustered"
    @Option(help: "Clusters for --data clustered.") var clusters = 1000
    @Option(help: "Noise around each centre for --data clustered (per-coordinate standard deviation x sqrt(dimension)).") var spread = 1.0
    @Option(help: "Queries timed one at a time (the first ones).") var singleQueries = 200
    @Option(help: "Random seed.") var seed = 1
    @Option(help: "FAISS threads (OpenMP; default all cores).") var threads: Int?

    func run() throws {
        printMachine()
        let kindList = try kinds.split(separator: ",").map { name -> VectorIndex.Kind in
            guard let kind = VectorIndex.Kind(rawValue: String(name)) else { throw ValidationError("unknown kind \(name)") }
            return kind
        }
        if let threads { setenv("OMP_NUM_THREADS", String(threads), 1) }
        let nlist = lists ?? max(1, Int(4 * Double(vectors).squareRoot()))
        print("FAISS \(VectorIndex.faissVersion), \(vectors) x \(dimension) random unit vectors, \(queries) queries, recall@\(k), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        guard data == "clustered" || data == "uniform" else { throw ValidationError("--data must be clustered or uniform") }
        let centres = data == "clustered" ? try Tensor.randn([clusters, dimension], generator: Generator(seed: UInt64(seed) &+ 77)) : nil
        let base = try randomUnitVectors(vectors, seed: UInt64(seed), centres: centres)
        let query = try randomUnitVectors(queries, seed: UInt64(seed) &+ 1_000_003, centres: centres)
        print("data: \(data)" + (data == "clustered" ? ", \(clusters) clusters, spread \(spread)" : ""))
        let ids = (0..<vectors).map { Int64($0) }

        // The truth: exact inner-product search.
        var exactQPS = 0.0, exactSingleQPS = 0.0
        var truth: [[VectorIndex.Hit]] = []
        let singles = min(singleQueries, queries)
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
            if kindList.contains(.flat) {
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
        let trainCount = min(vectors, trainSize ?? 64 * nlist)
        for kind in kindList where kind != .flat {
            let before = residentBytes()
            var build = 0.0
            switch kind {
            case .hnsw:
                let index = try VectorIndex(dimension: dimension, kind: .hnsw, hnswNeighbors: hnswM)
                try index.setBuildBreadth(efConstruction)
                build = try seconds { try index.add(base, ids: ids) }
                try report("hnsw M\(hnswM) efC\(efConstruction)", build, residentBytes() - before, index, breadths: parse(efSearch))
            case .ivf, .ivfpq:
                let index = try VectorIndex(dimension: dimension, kind: kind, lists: nlist, subQuantizers: pqM)
                build = try seconds {
                    try index.train(Array(base[0..<(trainCount * dimension)]))
                    try index.add(base, ids: ids)
                }
                let name = kind == .ivf ? "ivf \(nlist)" : "ivfpq \(nlist), \(pqM)x8b"
                try report(name, build, residentBytes() - before, index, breadths: parse(nprobe))
            case .flat:
                break
            }
        }
    }

    func parse(_ list: String) throws -> [Int] {
        try list.split(separator: ",").map {
            guard let v = Int($0), v > 0 else { throw ValidationError("bad breadth \($0)") }
            return v
        }
    }

    /// n random unit vectors, drawn by libtorch (seeded) in chunks to bound the temporary memory: uniform on the
    /// sphere, or a random centre (unit) plus Gaussian noise of norm about `spread`, normalised.
    func randomUnitVectors(_ n: Int, seed: UInt64, centres: Tensor?) throws -> [Float] {
        let generator = try Generator(seed: seed)
        var out: [Float] = []
        out.reserveCapacity(n * dimension)
        let unitCentres = try centres.map { try $0 / $0.norm(2, dims: [-1], keepDim: true) }
        for start in stride(from: 0, to: n, by: 65536) {
            let rows = min(65536, n - start)
            var x = try Tensor.randn([rows, dimension], generator: generator)
            if let unitCentres {
                let pick = try Tensor.randint(0, clusters, [rows], generator: generator)
                x = try unitCentres.indexSelect(0, pick) + x * (spread / Double(dimension).squareRoot())
            }
            out += try (x / x.norm(2, dims: [-1], keepDim: true)).toArray(Float.self)
        }
        return out
    }
}

/// Images/s embedded for the knowledge base (decode, the model's image processor, CLIP tower pooled output,
/// L2 norm) vs transformers on the same images and threads (PIL + CLIPImageProcessor + CLIPVisionModel).
struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Images/s embedded by the VLM's vision tower (decode + preprocess + pooled CLS) vs transformers.",
        discussion: """
            MODEL: a folder from `python tools/reference/bench_models.py make DIR`; IMAGES: JPEGs from \
            `python tools/reference/bench_models.py images DIR`. Both sides decode each file, preprocess with the \
            folder's CLIP image processor, run the vision tower in batches and L2-normalise the pooled output.
            """)

    @Option(help: "The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).") var model: String
    @Option(help: "A folder of JPEG/PNG images.") var images: String
    @Option(help: "Images per batch.") var batchSize = 16
    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?
    var threads: Int { threadOption ?? ProcessInfo.processInfo.activeProcessorCount }
    @Option(help: "Python interpreter with torch and transformers.") var python = "python3"
    @Option(help: "The reference script.") var script = "tools/reference/bench_models.py"

    func run() throws {
        printMachine()
        try Torch.setThreads(threads)
        let vlm = try VisionLanguageModel(folder: model)
        let paths = try KnowledgeBase.listImages(images)
        guard !paths.isEmpty else { throw ValidationError("\(images) holds no images") }
        func embedAll() throws {
            for start in stride(from: 0, to: paths.count, by: batchSize) {
                let batch = try paths[start..<min(start + batchSize, paths.count)].map {
                    try RGBImage(data: Data(contentsOf: URL(fileURLWithPath: $0)), name: $0)
                }
                _ = try withNoGrad { try vlm.model.pooledImageEmbedding(vlm.pixels(batch)) }
            }
        }
        try embedAll()
        var best = Double.infinity
        for _ in 0..<3 { best = min(best, try seconds(embedAll)) }
        let ours = Double(paths.count) / best
        print("threads: \(threads), \(paths.count) images, batch \(batchSize)")
        var line = String(format: "  images embedded   ReAlign %8.1f images/s", ours)
        if let theirs = referenceJSON([python, script, "embed", model, images, String(threads), String(batchSize)])?["images_per_s"]?.doubleValue {
            line += String(format: "   transformers %8.1f images/s   speed-up %.2fx", theirs, ours / theirs)
        } else {
            line += "   (reference not available: \(python) \(script) failed)"
        }
        print(line)
    }
}
