import Foundation
import Torch

/// Loads Hugging Face model folders: config.json, (sharded) safetensors, strict key matching.
public enum ModelLoader {
    /// A LLaVA-1.5 folder (`LlavaForConditionalGeneration`), weights converted to `dtype`; `bf16LinearWeights`
    /// keeps the language model's linear weights in bf16 under fp32 compute (see `storeLinearWeightsInBF16`).
    public static func llava(_ folder: String, dtype: DType = .float32, bf16LinearWeights: Bool = false,
                             device: Device = .cpu) throws -> LlavaForConditionalGeneration {
        let config = try LlavaConfig(ConfigReader.load((folder as NSString).appendingPathComponent("config.json")))
        let model = try ParameterInitialisation.skipped { try LlavaForConditionalGeneration(config) }
        try load(model, from: folder, dtype: dtype, device: device) { llavaKey($0, tied: config.text.tieWordEmbeddings) }
        if bf16LinearWeights { try model.storeLinearWeightsInBF16() }
        return model
    }

    /// Maps the llava-hf key layouts onto ours (`language_model.model.*`, `language_model.lm_head.*`,
    /// `vision_tower.vision_model.*`, `multi_modal_projector.*`); nil drops a key that holds no parameter.
    public static func llavaKey(_ key: String, tied: Bool) -> String? {
        var k = key
        for (old, new) in [("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                           ("model.multi_modal_projector.", "multi_modal_projector.")] where k.hasPrefix(old) {
            k = new + k.dropFirst(old.count)
        }
        if k.hasPrefix("lm_head.") { k = "language_model." + k }
        if k.hasPrefix("vision_tower.") && !k.hasPrefix("vision_tower.vision_model.") {
            k = "vision_tower.vision_model." + k.dropFirst("vision_tower.".count)
        }
        // Buffers that older checkpoints saved.
        if k.hasSuffix(".position_ids") || k.hasSuffix("rotary_emb.inv_freq") { return nil }
        if tied && k == "language_model.lm_head.weight" { return nil }
        return k
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
