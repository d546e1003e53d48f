import Alignment
import ArgumentParser
import Foundation
import Jobs
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

    func validate() throws {
        if objective == "help" { return }
        guard model != nil, data != nil, out != nil else { throw ValidationError("--model, --data and --out are required") }
    }

    /// The job's configuration from the options.
    func configuration() throws -> TrainConfig {
        var c = TrainConfig(model: model!, data: data!, out: out!)
        c.format = format
        c.dataset = dataset
        c.resume = resume
        c.nprocPerNode = nprocPerNode
        c.distTimeout = distTimeout
        c.distBackend = distBackend
        var o = TrainingOptions()
        o.objectives = try ObjectiveMix(parsing: objective).terms
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
        o.imageRoot = imageRoot
        guard let d = DType(name: dtype), d.isFloatingPoint else { throw ValidationError("--dtype must be f32 or bf16") }
        o.dtype = d
        guard let dev = Device(name: device) else { throw ValidationError("--device must be cpu, cuda or cuda:N") }
        o.device = dev
        c.options = o
        return c
    }

    func run() throws {
        if objective == "help" {
            print(ObjectiveMix.list)
            return
        }
        let config: TrainConfig
        do { config = try configuration() } catch let e as ValidationError { throw e } catch { throw ValidationError("\(error)") }
        do { try config.validate() } catch { throw ValidationError("\(error)") }
        do {
            try TrainJob.run(config)
        } catch {
            throw CleanExit.message(error)
        }
    }
}
