import Alignment
import ArgumentParser
import Foundation
import Models
import Torch

/// LoRA preference training (rDPO by default) on dual-preference JSONL.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a VLM with LoRA on preference pairs (rdpo by default; dpo, mdpo, simpo, orpo, kto, ... or mixes: --objective help).",
        discussion: """
            Records: {"id","prompt","chosen","rejected","image","retrieved_image"} (paths relative to the JSONL's \
            folder unless absolute or --image-root), TRL's {"prompt","chosen","rejected","images":[...]}, or \
            conversation lists; LLaMA-Factory's ShareGPT preference records and ms-swift's messages + \
            rejected_response (rejected_images as the retrieved image), JSONL or a JSON array. Bad records are \
            reported with their line and skipped. Defaults follow the Re-Align \
            paper: 1 epoch, lr 1e-5, projector lr 2e-5, cosine schedule, warmup 0.03, weight decay 0, accumulation 8, \
            batch 1, LoRA r 128 / alpha 256 on every linear of the language model, beta 0.1. --objective takes \
            one objective or a weighted mix such as "rdpo+0.1*sft" (`--objective help` lists them with their \
            formulas); reference-free ones (simpo, cpo, orpo, sft, nll) skip the reference pass. Output: metrics.jsonl, adapter/ (PEFT), \
            checkpoints/step-N/, charts/, reference_logps.json. --resume continues from the latest checkpoint.

            Data-parallel: under `torchrun --nproc-per-node N --no-python realign train ...` (or Slurm's srun, or \
            --nproc-per-node N here, which starts the local ranks itself) every rank trains on its share of each \
            global batch (batch size x accumulation x ranks, the single-process order dealt out as \
            DistributedSampler does), gradients are summed over Gloo, and rank 0 writes every file. The same \
            global batch gives the same adapter as one process.
            """)

    @Option(help: "The base model folder (Hugging Face format: LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL).") var model: String?
    @Option(help: "Preference data: JSONL or a JSON array, in any of the formats above.") var data: String?
    @Option(help: "The form of --data (default: told record by record): \(PreferenceFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var format = "auto"
    @Option(help: "With a LLaMA-Factory dataset_info.json as --data: the dataset entry to train on.") var dataset: String?
    @Option(help: "Output folder.") var out: String?
    @Option(help: "Objective or weighted mix, e.g. rdpo, dpo, \"rdpo+0.1*sft\"; `help` lists them.") var objective = "rdpo"
    @Option(help: "Start from this PEFT adapter instead of fresh LoRA factors.") var adapterInit: String?
    @Option(help: "Optimizer steps (default: --epochs over the data).") var steps: Int?
    @Option(help: "Epochs.") var epochs = 1.0
    @Option(help: "Pairs per micro-batch.") var batchSize = 1
    @Option(help: "Micro-batches per optimizer step.") var gradAccum = 8
    @Option(help: "Learning rate of the LoRA factors.") var lr = 1e-5
    @Option(help: "Learning rate of the projector (0 freezes it).") var projectorLr = 2e-5
    @Option(help: "AdamW weight decay.") var weightDecay = 0.0
    @Option(help: "Warmup as a fraction of the steps.") var warmupRatio = 0.03
    @Option(help: "constant, linear or cosine.") var schedule = "cosine"
    @Option(help: "DPO beta.") var beta = 0.1
    @Option(help: "Label smoothing e: robust, conservative dpo (cDPO), exo_pair (needs e > 0), cpo, simpo.") var labelSmoothing = 0.0
    @Option(help: "mDPO's anchor margin delta: -log sigmoid(beta * chosen reward - delta).") var mdpoDelta = 0.0
    @Option(help: "SimPO's target margin gamma.") var simpoGamma = 0.5
    @Option(help: "CPO's weight on its nll term.") var cpoAlpha = 1.0
    @Option(help: "Length-desensitised DPO: response tokens past the shorter response's length count this much (0..1).") var ldAlpha: Double?
    @Option(help: "KTO's weight on desirable (chosen) examples.") var desirableWeight = 1.0
    @Option(help: "KTO's weight on undesirable (rejected) examples.") var undesirableWeight = 1.0
    @Option(help: "LoRA rank.") var loraR = 128
    @Option(help: "LoRA alpha.") var loraAlpha = 256.0
    @Option(help: "LoRA dropout (off for preference objectives, as TRL).") var loraDropout = 0.05
    @Option(help: "all-linear, comma-separated module names (suffix match), or a regex (full match).") var loraTargets = "all-linear"
    @Flag(help: "Scale LoRA by alpha/sqrt(r).") var rslora = false
    @Option(help: "Gradient-norm clipping (0 disables).") var maxGradNorm = 1.0
    @Option(help: "Seed.") var seed: UInt64 = 42
    @Option(help: "Checkpoint every N steps.") var saveSteps = 50
    @Option(help: "Folder that image paths are relative to.") var imageRoot: String?
    @Option(help: "Compute dtype: f32 or bf16.") var dtype = "f32"
    @Flag(help: "Continue from the latest checkpoint in --out.") var resume = false
    @Option(help: "Also log to: tensorboard (event files in --out/runs, beside metrics.jsonl and the charts).") var reportTo: [String] = []
    @Flag(help: "Full fine-tuning of the language model instead of LoRA (writes --out/model).") var full = false
    @Flag(help: "Recompute each decoder layer's activations in backward instead of keeping them: less memory for one more forward per step, the same loss and gradients.") var gradientCheckpointing = false
    @Flag(help: "Also train the vision tower (frozen by default).") var trainVision = false
    @Option(help: "With --train-vision: the vision tower's own learning rate (default: --lr).") var visionLr: Double?
    @Option(help: "Start this many local data-parallel ranks (without torchrun); each gets an even share of the cores.") var nprocPerNode: Int?
    @Option(help: "Seconds a rank waits for the others in a rendezvous or collective before failing.") var distTimeout = 300.0
    @Option(help: "cpu, cuda or cuda:N. With several ranks on a node, cuda means cuda:LOCAL_RANK for each.") var device = "cpu"
    @Option(help: "Process-group backend: gloo, nccl, or auto (nccl on CUDA, gloo on CPU).") var distBackend = "auto"

    func parseObjectives() throws -> [(Objective, Double)] {
        try objective.split(separator: "+").map { part in
            let pieces = part.split(separator: "*").map { $0.trimmingCharacters(in: .whitespaces) }
            let (weight, name): (Double, String) = pieces.count == 2 ? (Double(pieces[0]) ?? .nan, pieces[1]) : (1, pieces[0])
            guard let o = Objective(rawValue: name), weight.isFinite else {
                throw ValidationError("--objective: '\(part)' is not an objective (\(Objective.allCases.map(\.rawValue).joined(separator: ", "))) with an optional weight")
            }
            return (o, weight)
        }
    }

    static var objectiveList: String {
        let width = Objective.allCases.map(\.rawValue.count).max()!
        return (["Objectives (h = r_c - r_l, r = log pi - log ref of a response, s = sigmoid, b = --beta):"]
            + Objective.allCases.map { "  \($0.rawValue.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.summary)" }
            + ["Mix them with weights: \"rdpo+0.1*sft\", \"dpo+0.5*nll\" (TRL's rpo_alpha 0.5)."]).joined(separator: "\n")
    }

    func validate() throws {
        if objective == "help" { return }
        guard model != nil, data != nil, out != nil else { throw ValidationError("--model, --data and --out are required") }
    }

    func run() throws {
        if objective == "help" {
            print(Self.objectiveList)
            return
        }
        let (model, out) = (model!, out!)
        let source = try PreferenceSource(path: data!, format: format, dataset: dataset)
        let data = source.path
        Launcher.bindToLauncher()
        var o = TrainingOptions()
        o.dataFormat = source.format
        o.datasetInfo = source.datasetInfo
        o.objectives = try parseObjectives()
        o.steps = steps
        o.epochs = epochs
        o.batchSize = batchSize
        o.gradientAccumulation = gradAccum
        o.learningRate = lr
        o.projectorLearningRate = projectorLr > 0 ? projectorLr : nil
        o.weightDecay = weightDecay
        o.warmupRatio = warmupRatio
        guard let kind = LRSchedule.Kind(rawValue: schedule) else { throw ValidationError("--schedule must be constant, linear or cosine") }
        o.schedule = kind
        o.objectiveSettings = ObjectiveSettings(beta: beta, labelSmoothing: labelSmoothing, mdpoDelta: mdpoDelta)
        o.objectiveSettings.simpoGamma = simpoGamma
        o.objectiveSettings.cpoAlpha = cpoAlpha
        o.objectiveSettings.ldAlpha = ldAlpha
        o.objectiveSettings.desirableWeight = desirableWeight
        o.objectiveSettings.undesirableWeight = undesirableWeight
        for target in reportTo.flatMap({ $0.split(separator: ",").map(String.init) }) {
            guard target == "tensorboard" || target == "none" else { throw ValidationError("--report-to: '\(target)' is not tensorboard or none") }
            o.tensorBoard = target == "tensorboard"
        }
        o.lora = LoRAConfig(r: loraR, alpha: loraAlpha, dropout: loraDropout, rsLoRA: rslora)
        o.loraTargets = try LoRATargets(parsing: loraTargets)
        o.maxGradNorm = maxGradNorm
        o.seed = seed
        o.checkpointEvery = saveSteps
        o.adapterInit = adapterInit
        o.full = full
        o.gradientCheckpointing = gradientCheckpointing
        o.trainVision = trainVision
        o.visionLearningRate = visionLr
        if full && adapterInit != nil { throw ValidationError("--full and --adapter-init exclude each other") }
        o.imageRoot = imageRoot
        guard let d = DType(name: dtype), d.isFloatingPoint else { throw ValidationError("--dtype must be f32 or bf16") }
        o.dtype = d
        guard let dev = Device(name: device) else { throw ValidationError("--device must be cpu, cuda or cuda:N") }
        if dev != .cpu && !Torch.cudaAvailable {
            throw ValidationError("--device \(device): this libtorch (\(Torch.version), \(Torch.libraryPath)) sees no CUDA device; build the shim against a CUDA libtorch and run with LD_LIBRARY_PATH set to its folder (README: Another libtorch)")
        }
        o.device = dev
        guard batchSize > 0, gradAccum > 0, saveSteps > 0 else { throw ValidationError("--batch-size, --grad-accum and --save-steps must be positive") }
        let environment: DistributedEnvironment?
        do { environment = try DistributedEnvironment.current() } catch { throw ValidationError("\(error)") }
        if let n = nprocPerNode {
            guard n >= 1 else { throw ValidationError("--nproc-per-node must be positive") }
            guard environment == nil else { throw ValidationError("--nproc-per-node starts ranks itself: leave it out under torchrun or Slurm") }
            if n > 1 {
                do { try Launcher.run(ranks: n) } catch { throw CleanExit.message(error) }
                return
            }
        }
        // Only rank 0 talks: the others would repeat every line.
        let talks = (environment?.rank ?? 0) == 0
        do {
            if let environment, device == "cuda" { o.device = .cuda(environment.localRank) }
            let backend = distBackend == "auto" ? (o.device == .cpu ? "gloo" : "nccl") : distBackend
            let group = try environment.map { try ProcessGroup(environment: $0, backend: backend, timeout: distTimeout) }
            if let environment, talks { log("rank 0 of \(environment.worldSize): data-parallel over \(backend), \(Torch.threads) thread(s) per rank") }
            let trainer = try PreferenceTrainer(modelFolder: model, data: data, out: out, options: o, group: group, progress: { done, total in
                guard total >= 500, talks else { return }
                FileHandle.standardError.write(Data("\rrealign: checking images \(done)/\(total)\(done == total ? "\n" : "")".utf8))
            })
            if talks {
                for p in trainer.allProblems { log("skipped \(p)") }
                if let summary = PreferenceTrainer.summary(trainer.allProblems, kept: trainer.totalRecords) { log(summary) }
                log("training \(o.objectives.map { "\($0.1)*\($0.0.rawValue)" }.joined(separator: " + ")) for \(trainer.totalSteps) steps")
            }
            trainer.warn = { message in if talks { log("warning: \(message)") } }
            try trainer.run(resume: resume) { r in
                let loss = r.values.first { $0.0 == "loss" }?.1 ?? .nan
                let eta = r.secondsLeft.isFinite ? String(format: "%dm%02ds", Int(r.secondsLeft) / 60, Int(r.secondsLeft) % 60) : "?"
                let bar = String(repeating: "#", count: r.step * 30 / max(1, r.totalSteps)).padding(toLength: 30, withPad: ".", startingAt: 0)
                FileHandle.standardError.write(Data(String(format: "\r[%@] step %d/%d loss %.4f  %.2f pairs/s  ETA %@ ", bar, r.step, r.totalSteps, loss, r.pairsPerSecond, eta).utf8))
            }
            guard talks else { return }
            FileHandle.standardError.write(Data("\n".utf8))
            if !trainer.skippedDuringRun.isEmpty {
                log("\(trainer.skippedDuringRun.count) record(s) skipped during the run because their image became unreadable (warnings above)")
            }
            log(full ? "model written to \(out)/model" : "adapter written to \(out)/adapter")
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write(Data("\n".utf8))
            throw CleanExit.message(error)
        }
    }
}
