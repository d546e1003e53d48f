import Common
import Foundation
import JSON
import Models
import Torch

/// A run's folder on disk: atomic checkpoints (`checkpoints/step-N/` with the trainable tensors, the optimizer's
/// state and RNG, the adapter so far and `trainer_state.json`) and `metrics.jsonl`, one line per step.
struct CheckpointStore {
    let out: String
    /// Ties a checkpoint to the model, data and settings that made it.
    let fingerprint: String

    var folder: String { (out as NSString).appendingPathComponent("checkpoints") }
    var metricsPath: String { (out as NSString).appendingPathComponent("metrics.jsonl") }

    func latest() -> (step: Int, path: String)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { n -> (Int, String)? in
            guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)),
                  FileManager.default.fileExists(atPath: "\(folder)/\(n)/trainer_state.json") else { return nil }
            return (s, "\(folder)/\(n)")
        }.max { $0.0 < $1.0 }
    }

    /// Writes step `step` into a temporary folder and renames it into place, so a kill leaves the previous
    /// checkpoint whole. `extra` writes what else belongs with it (the adapter).
    func save(step: Int, trainable: [(String, Tensor)], optimizer: AdamW, extra: (String) throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let final = "\(folder)/step-\(step)"
        let temporary = "\(folder)/.step-\(step).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (name, p) in trainable { tensors[name] = try p.detach().contiguous() }
        try SafeTensors.write(tensors, to: temporary + "/trainable.safetensors")
        try extra(temporary)
        let (state, steps) = try optimizer.stateTensors()
        var optimizerTensors = state
        optimizerTensors["rng_state"] = try Torch.rngState()
        try SafeTensors.write(optimizerTensors, to: temporary + "/optimizer.safetensors")
        let trainerState: JSONValue = .object([
            ("step", .int(step)), ("fingerprint", .string(fingerprint)),
            ("optimizer_steps", .object(steps.keys.sorted().map { ($0, .int(steps[$0]!)) })),
        ])
        try (trainerState.serialized() + "\n").write(toFile: temporary + "/trainer_state.json", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: final)
        try FileManager.default.moveItem(atPath: temporary, toPath: final)
    }

    /// Restores the trainable tensors, the optimizer and the RNG from the checkpoint at `path`; returns its step.
    func restore(from path: String, trainable: [(String, Tensor)], optimizer: AdamW) throws -> Int {
        let state = try JSONValue.parse(contentsOf: path + "/trainer_state.json")
        guard let step = state["step"]?.intValue else { throw ModelError("\(path)/trainer_state.json: no step") }
        guard state["fingerprint"]?.stringValue == fingerprint else {
            throw ModelError("\(path): the checkpoint was made with other data, model or settings; start without --resume or use a new --out")
        }
        let saved = try SafeTensorsFile(path: path + "/trainable.safetensors")
        let params = Dictionary(trainable, uniquingKeysWith: { a, _ in a })
        guard Set(saved.names) == Set(params.keys) else {
            throw ModelError("\(path): the checkpoint's trainable tensors do not match this run's (other --full/--lora settings?)")
        }
        try withNoGrad {
            for name in saved.names { try params[name]!.copyFrom(saved.tensor(name)) }
        }
        let tensors = try SafeTensorsFile(path: path + "/optimizer.safetensors").loadAll()
        var steps: [String: Int] = [:]
        for (k, v) in state["optimizer_steps"]?.objectValue ?? [] { steps[k] = v.intValue }
        try optimizer.loadState(tensors: tensors.filter { $0.key != "rng_state" }, steps: steps)
        if let rng = tensors["rng_state"] { try Torch.setRngState(rng) }
        return step
    }

    /// metrics.jsonl for a run starting after step `start`: a resumed run keeps the lines up to its checkpoint
    /// (and rewrites what came after), a new run starts an empty file.
    func metrics(startingAfter start: Int) throws -> JSONLAppender {
        if start == 0 { try? FileManager.default.removeItem(atPath: metricsPath) }
        return try JSONLAppender(path: metricsPath) { line in (line?["step"]?.intValue).map { $0 <= start } ?? false }
    }

    /// One metrics line: the step, then each value (a non-finite one as null).
    static func metricsLine(step: Int, values: [(String, Double)]) -> JSONValue {
        .object([("step", .int(step))] + values.map { ($0.0, .double($0.1)) })
    }
}
