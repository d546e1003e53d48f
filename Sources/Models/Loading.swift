import Foundation
import Torch

/// Loads Hugging Face model folders: config.json, (sharded) safetensors, strict key matching.
public enum ModelLoader {
    /// A LLaVA-1.5 folder as its concrete type (tests and the world's model builder; everything else loads
    /// through `VLMRegistry`).
    public static func llava(_ folder: String, dtype: DType = .float32, bf16LinearWeights: Bool = false,
                             device: Device = .cpu) throws -> LlavaForConditionalGeneration {
        let model = try VLMRegistry.load(folder, dtype: dtype, bf16LinearWeights: bf16LinearWeights, device: device)
        guard let llava = model as? LlavaForConditionalGeneration else {
            throw ModelError("\(folder): not a LLaVA-1.5 folder (model_type llava)")
        }
        return llava
    }

    /// Strict load: every parameter present with its shape, no unknown key; errors name keys and files.
    static func load(_ model: Module, from folder: String, dtype: DType, device: Device, rename: (String) -> String?) throws {
        let checkpoint = try Checkpoint(path: folder)
        var sources: [String: String] = [:]
        var shapes: [String: [Int]] = [:]
        for name in checkpoint.names {
            guard let key = rename(name) else { continue }
            if let previous = sources[key] {
                throw ModelError("\(folder): checkpoint keys '\(previous)' and '\(name)' both map to parameter '\(key)'")
            }
            sources[key] = name
            shapes[key] = checkpoint.info(name)!.shape
        }
        // One tensor at a time: a CPU tensor already in its dtype stays on the file's mapping (no copy: loading takes
        // no time and pages come in as used, as transformers loads); any other is copied out (its file pages given
        // back) and converted. The peak: the model's own size, plus one tensor.
        do {
            try model.load(shapes: shapes, dtype: dtype, device: device) { key in
                let name = sources[key]!
                let stored = checkpoint.info(name)?.dtype
                return try device == .cpu && (stored == dtype || stored?.isFloatingPoint == false)
                    ? checkpoint.mappedTensor(name) : checkpoint.tensor(name)
            }
        } catch let report as LoadReport {
            throw ModelError("\(folder): \(report)")
        }
        model.eval()
    }
}
