import Foundation
import Images
import Jobs
import Models
import Retrieval
import Torch

/// Images/s embedded for the knowledge base (decode, the model's image processor, CLIP tower pooled output,
/// L2 norm) vs transformers on the same images and threads (PIL + CLIPImageProcessor + CLIPVisionModel).
public struct EmbedBenchConfig: Sendable {
    /// The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).
    public var model: String
    /// A folder of JPEG/PNG images.
    public var images: String
    /// Images per batch.
    public var batchSize = 16
    /// Intra-op threads for both sides.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Python interpreter with torch and transformers.
    public var python = "python3"
    /// The reference script.
    public var script = "tools/reference/bench_models.py"

    public init(model: String, images: String) {
        self.model = model
        self.images = images
    }
}

public enum EmbedBench {
    /// Prints images/s of ReAlign (best of 3 passes over the folder, after one untimed pass) and of transformers.
    public static func run(_ config: EmbedBenchConfig) throws {
        let c = config, batchSize = c.batchSize
        printMachine()
        try Torch.setThreads(c.threads)
        let vlm = try VisionLanguageModel(folder: c.model)
        let paths = try KnowledgeBase.listImages(c.images)
        guard !paths.isEmpty else { throw JobError("\(c.images) holds no images") }
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
        print("threads: \(c.threads), \(paths.count) images, batch \(batchSize)")
        var line = String(format: "  images embedded   ReAlign %8.1f images/s", ours)
        if let theirs = referenceJSON([c.python, c.script, "embed", c.model, c.images, String(c.threads), String(batchSize)])?["images_per_s"]?.doubleValue {
            line += String(format: "   transformers %8.1f images/s   speed-up %.2fx", theirs, ours / theirs)
        } else {
            line += "   (reference not available: \(c.python) \(c.script) failed)"
        }
        print(line)
    }
}
