import Foundation
import TestSupport
import JSON
import Testing
import Torch
@testable import Alignment
@testable import Models

func prefsFile() -> String { alignmentFixture("prefs/pairs.jsonl") }

func smallOptions(_ objective: Objective = .rdpo) -> TrainingOptions {
    var o = TrainingOptions()
    o.objectives = [(objective, 1)]
    o.lora = LoRAConfig(r: 4, alpha: 8, dropout: 0.05)
    o.learningRate = 1e-3
    o.projectorLearningRate = nil
    o.warmupRatio = 0
    o.gradientAccumulation = 2
    o.checkpointEvery = 2
    return o
}

func adapterTensors(_ folder: String) throws -> [String: Tensor] {
    try SafeTensorsFile(path: folder + "/adapter_model.safetensors").loadAll()
}

struct Interrupted: Error {}

@Suite(.serialized) struct TrainerTests {
    @Test func readsEveryRecordFormAndReportsBadLines() throws {
        let (records, problems) = try PreferenceData.load(prefsFile())
        #expect(records.count == 8)
        #expect(problems.map(\.line) == [9, 10, 11])
        #expect(problems[0].message.contains("not valid JSON") && problems[1].message.contains("rejected") && problems[2].message.contains("duplicate"))
        let trl = records.first { $0.id == "trl" }!
        #expect(trl.image!.hasSuffix("images/0-red-circle.png") && trl.image!.hasPrefix("/"))
        let conversation = records.first { $0.id == "conv" }!
        #expect(conversation.prompt == "What shape is it?" && conversation.chosen == "A square." && conversation.rejected == "A circle.")
        // SFT does not need rejected responses.
        #expect(try PreferenceData.load(prefsFile(), requireRejected: false).problems.count == 2)
    }

    @Test func trainsAndWritesEverything() throws {
        let out = temporaryFolder()
        var o = smallOptions()
        o.steps = 3
        o.objectives = [(.rdpo, 1), (.sft, 0.1)]
        o.projectorLearningRate = 2e-4
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o)
        try trainer.run(resume: false)
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        for key in ["\"loss\"", "loss/dpo", "loss/visual", "loss/sft", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "\"lr\"", "grad_norm", "logps/ref_chosen"] {
            #expect(lines[2].contains(key), "metrics lack \(key)")
        }
        // With a mix, shared metrics are reported once: the policy's first-step log-probs equal the reference's.
        let first = try JSONValue.parse(Array(lines[0].utf8))
        #expect(abs(first["logps/chosen"]!.doubleValue! - first["logps/ref_chosen"]!.doubleValue!) < 1e-3)
        for chart in ["loss.svg", "reward_margins.svg", "accuracies.svg"] { #expect(FileManager.default.fileExists(atPath: out + "/charts/" + chart)) }
        #expect(FileManager.default.fileExists(atPath: out + "/checkpoints/step-2/optimizer.safetensors"))
        // The adapter (with the trained projector) loads into a fresh model.
        let model = try ModelLoader.llava(tinyLlavaFolder())
        try model.loadAdapter(from: out + "/adapter")
        #expect(model.loraLinears().count == 14)
    }

    /// Reference-free objectives (SimPO, ORPO, CPO) run no reference pass; KTO scores its KL completions each
    /// micro-batch and reports the estimate.
    @Test(arguments: [Objective.simpo, .orpo, .kto])
    func newObjectivesTrain(_ objective: Objective) throws {
        let out = temporaryFolder()
        var o = smallOptions(objective)
        o.steps = 2
        o.batchSize = 2
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o)
        try trainer.run(resume: false)
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let last = try JSONValue.parse(Array(lines[1].utf8))
        #expect(FileManager.default.fileExists(atPath: out + "/reference_logps.json") == objective.needs.reference)
        let terms = objective == .orpo ? ["loss/nll", "loss/odds_ratio"] : ["loss/\(objective.rawValue)"]
        for key in terms + ["loss", "rewards/margins"] + (objective == .kto ? ["kl", "logps/ref_chosen"] : []) {
            #expect(last[key]?.doubleValue?.isFinite == true, "\(objective): metrics lack \(key)")
        }
        if objective == .kto { #expect(last["kl"]!.doubleValue! >= 0) }
    }

    /// KTO with one pair per micro-batch has no mismatched pairs for its KL estimate: the run says so.
    @Test func ktoWithOnePairPerBatchWarns() throws {
        var o = smallOptions(.kto)
        o.steps = 1
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: temporaryFolder(), options: o)
        nonisolated(unsafe) var warnings: [String] = []
        trainer.warn = { warnings.append($0) }
        try trainer.run(resume: false)
        #expect(warnings.contains { $0.contains("--batch-size 2") })
    }

    /// A model handed to the trainer trains exactly as one it loads from the same folder, and is the one changed.
    @Test func anInjectedModelTrainsAsALoadedOne() throws {
        var o = smallOptions(.dpo)
        o.steps = 2
        let loaded = temporaryFolder(), injected = temporaryFolder()
        try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: loaded, options: o).run(resume: false)
        let vlm = try VisionLanguageModel(folder: tinyLlavaFolder())
        #expect(vlm.model.loraLinears().isEmpty)
        try PreferenceTrainer(model: vlm, data: prefsFile(), out: injected, options: o).run(resume: false)
        #expect(!vlm.model.loraLinears().isEmpty)
        let a = try String(contentsOfFile: loaded + "/metrics.jsonl", encoding: .utf8)
        let b = try String(contentsOfFile: injected + "/metrics.jsonl", encoding: .utf8)
        #expect(a.split(separator: "\n").count == 2)
        #expect(a == b)
    }

    /// Full fine-tuning writes a plain model folder that loads and differs from the base; resume restores it.
    @Test func fullFineTuning() throws {
        var o = smallOptions(.dpo)
        o.full = true
        o.steps = 2
        o.learningRate = 1e-4
        let out = temporaryFolder()
        try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o).run(resume: false)
        let tuned = try ModelLoader.llava(out + "/model").stateDict()
        let base = try ModelLoader.llava(tinyLlavaFolder()).stateDict()
        #expect(try !tuned["language_model.model.layers.0.mlp.up_proj.weight"]!.equal(base["language_model.model.layers.0.mlp.up_proj.weight"]!))
        #expect(try tuned["vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"]!.equal(base["vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"]!))
        #expect(FileManager.default.fileExists(atPath: out + "/checkpoints/step-2/trainable.safetensors"))
    }

    /// A loss that stops being finite ends training with a clear error; the last good checkpoint stays.
    @Test func nonFiniteLossStops() throws {
        var o = smallOptions(.dpo)
        o.steps = 6
        o.learningRate = 1e30
        o.maxGradNorm = 0
        o.checkpointEvery = 1
        let out = temporaryFolder()
        #expect(performing: {
            try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o).run(resume: false)
        }, throws: { "\($0)".contains("loss became") })
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").filter { $0.hasPrefix("step-") }
        #expect(!checkpoints.isEmpty)
        for c in checkpoints {
            let t = try SafeTensorsFile(path: out + "/checkpoints/\(c)/trainable.safetensors")
            for name in t.names { #expect(try t.tensor(name).isfinite().all().itemInt() == 1, "\(c) holds non-finite values") }
        }
    }

    /// In bf16 the cached reference log-probs equal the policy's at step 0 (fresh adapters leave the base model), so
    /// each rdpo term starts at log 2: the no-grad pass rounds as the pass that records gradients does.
    @Test(arguments: ["llava", "qwen2_vl"]) func bf16ReferenceEqualsPolicyAtStepZero(_ kind: String) throws {
        var o = smallOptions(.rdpo)
        o.dtype = .bfloat16
        o.steps = 1
        o.batchSize = 1
        o.gradientAccumulation = 1
        let out = temporaryFolder()
        let folder = kind == "llava" ? tinyLlavaFolder() : modelsFixture("qwen_vl/\(kind)")
        try PreferenceTrainer(modelFolder: folder, data: prefsFile(), out: out, options: o).run(resume: false)
        let line = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let m = try JSONValue.parse(Array(line.utf8))
        let value = { (key: String) in m[key]?.doubleValue ?? .nan }
        #expect(value("logps/chosen") == value("logps/ref_chosen"), "\(value("logps/chosen")) vs \(value("logps/ref_chosen"))")
        #expect(value("logps/rejected") == value("logps/ref_rejected"), "\(value("logps/rejected")) vs \(value("logps/ref_rejected"))")
        #expect(abs(value("loss") - 2 * log(2.0)) < 1e-12, "loss \(value("loss"))")
    }

    /// Batch 1 x accumulation 8 equals batch 8 x accumulation 1 after one optimizer step (the 8 usable records).
    @Test func accumulationInvariance() throws {
        func run(batch: Int, accumulation: Int) throws -> [String: Tensor] {
            let out = temporaryFolder()
            var o = smallOptions(.dpo)
            o.steps = 1
            o.batchSize = batch
            o.gradientAccumulation = accumulation
            let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: out, options: o)
            try trainer.run(resume: false)
            return try adapterTensors(out + "/adapter")
        }
        let a = try run(batch: 1, accumulation: 8), b = try run(batch: 8, accumulation: 1)
        var worst = 0.0
        for (k, t) in a { worst = max(worst, try (t - b[k]!).abs().max().item()) }
        #expect(worst < 1e-5, "adapters differ by \(worst)")
        #expect(!a.isEmpty)
    }

    /// Interrupted after step 2, resumed: the final adapter equals an uninterrupted run's.
    @Test func resumeContinuesExactly() throws {
        var o = smallOptions(.rdpo)
        o.steps = 4
        let straight = temporaryFolder()
        try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: straight, options: o).run(resume: false)
        let interrupted = temporaryFolder()
        #expect(throws: Interrupted.self) {
            try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: interrupted, options: o).run(resume: false) { r in
                if r.step == 2 { throw Interrupted() }
            }
        }
        try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: prefsFile(), out: interrupted, options: o).run(resume: true)
        let a = try adapterTensors(straight + "/adapter"), b = try adapterTensors(interrupted + "/adapter")
        #expect(Set(a.keys) == Set(b.keys))
        for (k, t) in a { #expect(try t.equal(b[k]!), "\(k) differs after resume") }
        let metrics = try String(contentsOfFile: interrupted + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 4)
    }
}
