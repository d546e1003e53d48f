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
        try model.to(dtype: dtype)
        if device != .cpu { try model.to(device: device) }
        var state: [String: Tensor] = [:]
        var sources: [String: String] = [:]
        for name in checkpoint.names {
            guard let key = rename(name) else { continue }
            if let previous = sources[key] {
                throw ModelError("\(folder): checkpoint keys '\(previous)' and '\(name)' both map to parameter '\(key)'")
            }
            sources[key] = name
            state[key] = try checkpoint.tensor(name)
        }
        do {
            try model.load(state)
        } catch let report as LoadReport {
            throw ModelError("\(folder): \(report)")
        }
        model.eval()
    }
}
