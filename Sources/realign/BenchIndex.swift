import ArgumentParser
import Bench
import Retrieval

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
        let kindList = try kinds.split(separator: ",").map { name -> VectorIndex.Kind in
            guard let kind = VectorIndex.Kind(rawValue: String(name)) else { throw ValidationError("unknown kind \(name)") }
            return kind
        }
        guard let distribution = IndexBenchConfig.Distribution(rawValue: data) else { throw ValidationError("--data must be clustered or uniform") }
        var c = IndexBenchConfig()
        c.vectors = vectors
        c.dimension = dimension
        c.queries = queries
        c.k = k
        c.kinds = kindList
        c.hnswM = hnswM
        c.efConstruction = efConstruction
        // Breadths are read only for the kinds measured.
        if kindList.contains(.hnsw) { c.efSearch = try parse(efSearch) }
        c.lists = lists
        if kindList.contains(.ivf) || kindList.contains(.ivfpq) { c.nprobe = try parse(nprobe) }
        c.pqM = pqM
        c.trainSize = trainSize
        c.data = distribution
        c.clusters = clusters
        c.spread = spread
        c.singleQueries = singleQueries
        c.seed = seed
        c.threads = threads
        try benchmark { try IndexBench.run(c) }
    }

    func parse(_ list: String) throws -> [Int] {
        try list.split(separator: ",").map {
            guard let v = Int($0), v > 0 else { throw ValidationError("bad breadth \($0)") }
            return v
        }
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
    @Option(help: "Python interpreter with torch and transformers.") var python = "python3"
    @Option(help: "The reference script.") var script = "tools/reference/bench_models.py"

    func run() throws {
        var c = EmbedBenchConfig(model: model, images: images)
        c.batchSize = batchSize
        if let threadOption { c.threads = threadOption }
        c.python = python
        c.script = script
        try benchmark { try EmbedBench.run(c) }
    }
}
