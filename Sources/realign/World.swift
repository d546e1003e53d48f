import ArgumentParser
import Evaluation
import Foundation
import Jobs
import JSON
import ShapesWorld
import WorldModel

/// ShapesWorld: the synthetic world of the embedded demo.
struct World: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "ShapesWorld: seeded synthetic scenes with exact ground truth, and the tiny VLM that learns them.",
        discussion: """
            Scenes hold 1-4 shapes (10 kinds, 8 colours, small or large) on one of 4 backgrounds, drawn \
            anti-aliased at 96 x 96. In training scenes some shapes come with a partner 80 % of the time \
            (circle-square, triangle-star, heart-cross, diamond-ring); in held-out scenes the \
            partner is absent half the time, so a model that leans on the prior names absent partners — what \
            POPE's adversarial split probes (its co-occurrences are counted over the training scenes).
            """,
        subcommands: [WorldGenerate.self, WorldPretrain.self])
}

struct WorldGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Write a ShapesWorld folder: images, SFT data, samples for build-prefs, annotations, POPE, tokenizer.",
        discussion: """
            Files: images/{train,test}/*.png; sft.jsonl (captions and questions of the training scenes, \
            {"id","image","prompt","chosen"}); samples.jsonl (one caption per training scene, for build-prefs); \
            annotations.jsonl and train_annotations.jsonl ({"image_id","image","objects","captions","background",\
            "details"}); attributes.jsonl (held-out colour, count, size, position and background questions with \
            their answers); pope/pope_{random,popular,adversarial,all}.jsonl (the POPE builder over the held-out \
            scenes); tokenizer/ (WordLevel tokenizer.json with the LLaVA-1.5 chat template); objects.txt (the \
            CHAIR object list); mask_words.txt (the rule masker's lexicon); editor_lexicon.json (the rule VaPR \
            editor's word classes); world.json (settings and measured \
            partner rates). The same seed gives the same bytes.
            """)
    @Option(help: "Output folder.") var out: String
    @Option(help: "Training scenes.") var train = 3000
    @Option(help: "Held-out scenes.") var test = 500
    @Option(help: "Seed of every scene and text.") var seed: UInt64 = 0
    @Option(help: "Held-out images the POPE builder samples (those with 3 or more shapes).") var popeImages = 300

    func run() throws {
        try runEval {
            var spec = WorldSpec()
            spec.train = train
            spec.test = test
            spec.seed = seed
            let summary = try generateWorld(spec, out: out, popeImages: popeImages)
            log("wrote \(out): \(summary["train_scenes"]?.intValue ?? 0) training and \(summary["test_scenes"]?.intValue ?? 0) held-out scenes, \(summary["sft_records"]?.intValue ?? 0) SFT records")
        }
    }
}

struct WorldPretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain", abstract: "Build ShapesWorld's tiny LLaVA from random weights (the model the demo ships and starts from).",
        discussion: """
            Three stages, as real VLMs are built: (1) the vision tower on dense scene labels (per patch: the shape, \
            colour and size covering it; per scene: shapes, colours and background present), on scenes drawn \
            fresh each step; (2) the projector and the language model on the training captions, tower frozen; (3) \
            SFT of every part on captions and questions (sft.jsonl); (4) a second, shorter SFT cycle at a lower rate \
            from the stage-3 model in fp16. Writes OUT/model (a llava-hf folder, fp16 \
            weights) and keeps each stage's folder; a re-run continues at the unfinished stage. The same seed, \
            world and thread count give the same weights.
            """)
    @Option(help: "Output folder.") var out: String
    @Option(help: "A world folder from `realign world generate` (default: generate OUT/world with the default sizes and --seed).") var world: String?
    @Option(help: "Seed of the weights, the scenes and the data order.") var seed: UInt64 = 0
    @Option(help: "Training scenes of the generated world (without --world).") var trainScenes = 3000
    @Option(help: "Vision-tower steps (stage 1).") var visionSteps = 2000
    @Option(help: "Vision-tower learning rate (stage 1).") var visionLr = 1e-3
    @Option(help: "Scenes per vision step (stage 1).") var visionBatchSize = 48
    @Option(help: "Caption steps (stage 2).") var alignSteps = 600
    @Option(help: "SFT steps (stage 3).") var sftSteps = 3000
    @Option(help: "Steps of the second, shorter SFT cycle (stage 4; 0 skips it).") var polishSteps = 2000
    @Option(help: "Learning rate of stage 4.") var polishLr = 3e-4
    @Option(help: "Records per step in stages 2 and 3.") var batchSize = 16
    @Flag(help: "Stages 2-4: recompute each decoder layer's activations in backward instead of keeping them (less memory, the same weights).") var gradientCheckpointing = false

    func run() throws {
        try runEval {
            let worldFolder = world ?? (out as NSString).appendingPathComponent("world")
            if world == nil && !FileManager.default.fileExists(atPath: (worldFolder as NSString).appendingPathComponent("world.json")) {
                var spec = WorldSpec()
                spec.seed = seed
                spec.train = trainScenes
                _ = try generateWorld(spec, out: worldFolder, popeImages: 300)
            }
            var plan = WorldPretraining()
            plan.seed = seed
            plan.vision.steps = visionSteps
            plan.vision.learningRate = visionLr
            plan.vision.batchSize = visionBatchSize
            plan.alignSteps = alignSteps
            plan.sftSteps = sftSteps
            plan.polishSteps = polishSteps
            plan.polishLearningRate = polishLr
            plan.batchSize = batchSize
            plan.gradientCheckpointing = gradientCheckpointing
            let started = Date()
            let model = try plan.run(world: worldFolder, out: out) { log($0) }
            log(String(format: "model: %@ (%.0f s)", model, Date().timeIntervalSince(started)))
        }
    }
}
