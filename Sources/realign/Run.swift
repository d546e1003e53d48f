import ArgumentParser
import Foundation
import Jobs

/// `realign run RECIPE.yaml`: the main job on one's own model and data.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe: pairs, training runs and benchmarks on your model, with a report comparing them.",
        discussion: """
            A recipe (YAML) names the base model, the pairs to build (re-align and/or vapr, or files of pairs), the \
            training runs (objective, hyperparameters, seeds) and the benchmarks (pope, mme, hallusionbench, chair, \
            exact, each with its question file). The stages run in order — evaluate the base, knowledge base, \
            pairs, then each training run and its evaluation — into output_dir (or --out), and report.md, \
            report.json and report.html compare the base and every trained model on every benchmark, with the \
            recipe and its sha256. A re-run after a kill continues at the unfinished stage, and inside it. Unknown \
            keys, wrong types and missing files are refused before anything runs, with the file and line. \
            docs/recipes.md describes every key; examples/recipes/ holds the papers' settings.
            """)

    @Argument(help: "The recipe file (YAML).") var recipe: String?
    @Option(help: "Output folder (default: the recipe's output_dir).") var out: String?
    @Flag(help: "Check the recipe (keys, types, values, files) and stop without running anything.") var check = false
    @Flag(help: "Print an annotated recipe with every key and its default, and stop.") var printDefault = false

    func run() throws {
        if printDefault {
            print(RecipeTemplate.annotated, terminator: "")
            return
        }
        guard let recipe else { throw ValidationError("give a recipe file (or --print-default for an annotated one)") }
        do {
            let parsed = try Recipe(contentsOf: recipe)
            let runner = try RecipeRunner(recipe: parsed, out: out)
            if check {
                try runner.check()
                print("\(recipe): ok: \(parsed.pairs.count) pair recipe(s), \(parsed.training.count) training run(s), \(parsed.benchmarks.count) benchmark(s) into \(runner.out)")
                return
            }
            print(try runner.run(), terminator: "")
        } catch {
            throw CleanExit.message(error)
        }
    }
}
