import Alignment
import Foundation
import JSON
import Models
import ShapesWorld
import Torch

/// How ShapesWorld's base VLM is built from random weights, staged as real VLMs are built: (1) the vision tower
/// on dense scene labels, (2) the projector and the language model on captions with the tower frozen, (3) SFT
/// of every part on captions and questions, and (4) a shorter second SFT cycle at a lower rate. Stage 2 departs
/// from LLaVA's (projector alone): here the language model starts random, and a projector cannot teach a random
/// decoder to speak.
public struct WorldPretraining {
    public var seed: UInt64 = 0
    public var spec = TinyVLMSpec()
    public var vision = VisionPretraining()
    public var alignSteps = 600
    public var sftSteps = 3000
    public var batchSize = 16
    public var alignLearningRate = 1e-3
    public var sftLearningRate = 5e-4
    /// The vision tower's own learning rate in stage 3 (nil: the stage's learning rate).
    public var sftVisionLearningRate: Double? = nil
    /// Stage 4: a second, shorter SFT cycle at a lower rate (a warm restart of the cosine schedule) from the
    /// stage-3 model as stored in fp16; 0 skips it. Stage 3 alone leaves the decoder's grounding half learned;
    /// measured on a validation world (seed 7), POPE random / adversarial after 1000 steps 0.721 / 0.680, after
    /// 2000 steps 0.848 / 0.777, after 3000 steps 0.819 / 0.751.
    public var polishSteps = 2000
    public var polishLearningRate = 3e-4
    /// Stages 2-4: decoder activations recomputed in backward (TrainingOptions.gradientCheckpointing).
    public var gradientCheckpointing = false
    public init() {}

    /// Runs the stages that are not done yet into `out` (init, vision, align, sft, model) and returns the
    /// finished folder `out/model` (weights stored in fp16). A killed run continues at its stage; the trainer
    /// stages continue from their last checkpoint.
    public func run(world: String, out: String, log: @escaping (String) -> Void) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
        func done(_ stage: String) -> Bool { fm.fileExists(atPath: path("\(stage)/.done")) }
        func finish(_ stage: String) throws { try "".write(toFile: path("\(stage)/.done"), atomically: true, encoding: .utf8) }
        let started = Date()

        if !done("vision") {
            try? fm.removeItem(atPath: path("vision"))
            try TinyVLM.create(spec, at: path("vision"), seed: seed)
            var v = vision
            v.seed = seed
            log("stage 1/4: vision tower on dense scene labels, \(v.steps) steps of \(v.batchSize) scenes")
            try v.run(folder: path("vision")) { step, total, loss, accuracy in
                log(String(format: "  vision step %d/%d  loss %.4f  patch shape accuracy %.3f  (%.0f s)", step, total, loss, accuracy, Date().timeIntervalSince(started)))
            }
            if let p = v.lastProbe {
                log(String(format: "  held-out scenes: shape accuracy on object patches %.3f, shape presence (balanced) %.3f", p.objectPatchAccuracy, p.shapePresenceAccuracy))
            }
            try finish("vision")
        }
        if !done("align") {
            try fm.createDirectory(atPath: path("align"), withIntermediateDirectories: true)
            let captions = path("align/captions.jsonl")
            // Image paths relative to the world folder become absolute: the captions file lives elsewhere.
            let worldPath = URL(fileURLWithPath: world).standardizedFileURL.path
            let lines = try String(contentsOfFile: (worldPath as NSString).appendingPathComponent("sft.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try JSONValue.parse(Array($0.utf8)) }
                .filter { $0["id"]?.stringValue?.hasSuffix("-caption") == true }
                .map { record -> String in
                    let fields = (record.objectValue ?? []).map { key, value -> (String, JSONValue) in
                        guard Array(key.utf8) == Array("image".utf8), let image = value.stringValue, !image.hasPrefix("/") else { return (key, value) }
                        return (key, .string((worldPath as NSString).appendingPathComponent(image)))
                    }
                    return JSONValue.object(fields).serialized()
                }
            try (lines.joined(separator: "\n") + "\n").write(toFile: captions, atomically: true, encoding: .utf8)
            log("stage 2/4: projector and language model on \(lines.count) captions, vision tower frozen, \(alignSteps) steps")
            try train(model: path("vision"), data: captions, out: path("align"), steps: alignSteps, lr: alignLearningRate, visionLR: nil, trainVision: false, log: log)
            try finish("align")
        }
        if !done("sft") {
            log("stage 3/4: every part on captions and questions, \(sftSteps) steps")
            try train(model: path("align/model"), data: (world as NSString).appendingPathComponent("sft.jsonl"), out: path("sft"),
                      steps: sftSteps, lr: sftLearningRate, visionLR: sftVisionLearningRate, trainVision: true, log: log)
            try finish("sft")
        }
        if !done("sft-fp16") {
            try export(path("sft/model"), to: path("sft-fp16"))
            try finish("sft-fp16")
        }
        if polishSteps > 0 && !done("polish") {
            log("stage 4/4: every part again, \(polishSteps) steps at lr \(polishLearningRate), from the stage-3 model in fp16")
            try train(model: path("sft-fp16"), data: (world as NSString).appendingPathComponent("sft.jsonl"), out: path("polish"),
                      steps: polishSteps, lr: polishLearningRate, visionLR: nil, trainVision: true, log: log)
            try finish("polish")
        }
        if !done("model") {
            try export(polishSteps > 0 ? path("polish/model") : path("sft/model"), to: path("model"))
            try finish("model")
        }
        return path("model")
    }

    /// A llava-hf folder of `spec` with the weights of `source` stored in fp16.
    func export(_ source: String, to folder: String) throws {
        try? FileManager.default.removeItem(atPath: folder)
        try TinyVLM.writeFolderFiles(spec, to: folder, dtype: "float16")
        let model = try ModelLoader.llava(source)
        try model.saveWeights(to: folder, dtype: .float16)
    }

    func train(model: String, data: String, out: String, steps: Int, lr: Double, visionLR: Double?, trainVision: Bool, log: @escaping (String) -> Void) throws {
        var o = TrainingOptions()
        o.objectives = [(.sft, 1)]
        o.full = true
        o.trainVision = trainVision
        o.visionLearningRate = visionLR
        o.steps = steps
        o.batchSize = batchSize
        o.gradientAccumulation = 1
        o.learningRate = lr
        o.projectorLearningRate = lr
        o.warmupRatio = 0.03
        o.weightDecay = 0.01
        o.seed = seed
        o.checkpointEvery = 100
        o.gradientCheckpointing = gradientCheckpointing
        let trainer = try PreferenceTrainer(modelFolder: model, data: data, out: out, options: o)
        for p in trainer.allProblems.prefix(10) { log("skipped \(p)") }
        trainer.warn = { log("warning: \($0)") }
        let started = Date()
        try trainer.run(resume: true) { r in
            guard r.step % 20 == 0 || r.step == r.totalSteps else { return }
            let loss = r.values.first { $0.0 == "loss" }?.1 ?? .nan
            log(String(format: "  step %d/%d  loss %.4f  (%.0f s, %.0f s left)", r.step, r.totalSteps, loss, Date().timeIntervalSince(started), r.secondsLeft))
        }
    }
}
