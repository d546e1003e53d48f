import Alignment
import Foundation
import Jobs
import Testing

/// Recipes are refused before anything runs, naming the key, its line and column.
@Suite struct RecipeTests {
    let base = "/recipes"

    func refusal(_ yaml: String) -> String {
        do {
            _ = try Recipe(text: yaml, file: "r.yaml", base: base)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    let minimal = """
        model_name_or_path: models/llava
        pairs:
          - name: realign
            samples: data/samples.jsonl
            sentence_model: models/minilm
        training_defaults:
          learning_rate: 2.0e-4
          lora_rank: 16
          seeds: [3, 4]
        training:
          - {name: rdpo, pairs: realign, pref_loss: "rdpo+0.1*sft"}
          - name: dpo
            pairs: realign
            pref_loss: dpo
            learning_rate: 1.0e-5
        benchmarks:
          - {name: adv, benchmark: pope, questions: pope.jsonl, rule: lmms-eval}

        """

    @Test func aRecipeReadsIntoTypedJobConfigurations() throws {
        let r = try Recipe(text: minimal, file: "r.yaml", base: base)
        #expect(r.model == "/recipes/models/llava")
        #expect(r.pairs.count == 1)
        #expect(r.pairs[0].config.input == "/recipes/data/samples.jsonl")
        #expect(r.pairs[0].config.method == .realign)
        // One run per seed; the entry's own keys win over the defaults.
        #expect(r.training.map(\.name) == ["rdpo", "rdpo-seed4", "dpo", "dpo-seed4"])
        #expect(r.training.map(\.seed) == [3, 4, 3, 4])
        #expect(r.training[0].options.learningRate == 2e-4)
        #expect(r.training[2].options.learningRate == 1e-5)
        #expect(r.training[0].options.lora.r == 16 && r.training[0].options.lora.alpha == 32)
        #expect(ObjectiveMix.text(r.training[0].options.objectives) == "rdpo+0.1*sft")
        #expect(r.benchmarks[0].rule == "lmms-eval")
        #expect(r.benchmarks[0].maxNewTokens == 4)
    }

    @Test func llamaFactorysAllTargetsEveryLinear() throws {
        let r = try Recipe(text: minimal.replacingOccurrences(of: "  lora_rank: 16", with: "  lora_rank: 16\n  lora_target: all"), file: "r.yaml", base: base)
        guard case .allLinear = r.training[0].options.loraTargets else { Issue.record("lora_target all: \(r.training[0].options.loraTargets)"); return }
        let named = try Recipe(text: minimal.replacingOccurrences(of: "  lora_rank: 16", with: "  lora_rank: 16\n  lora_target: q_proj,v_proj"), file: "r.yaml", base: base)
        guard case .names(let names) = named.training[0].options.loraTargets else { Issue.record("names"); return }
        #expect(names == ["q_proj", "v_proj"])
    }

    @Test func unknownKeysAreRefusedWithTheirLineAndASuggestion() {
        let bad = minimal.replacingOccurrences(of: "  lora_rank: 16", with: "  lora_rnak: 16")
        let message = refusal(bad)
        #expect(message.hasPrefix("r.yaml:8:3: training_defaults.lora_rnak: unknown key (did you mean 'lora_rank'?)"), "\(message)")
        let top = refusal(minimal + "trainig: []\n")
        #expect(top.hasPrefix("r.yaml:18:1: trainig: unknown key (did you mean 'training'?)"), "\(top)")
    }

    @Test func typeErrorsNameTheKeyAndLine() {
        let message = refusal(minimal.replacingOccurrences(of: "learning_rate: 1.0e-5", with: "learning_rate: fast"))
        #expect(message == "r.yaml:15:20: training[1].learning_rate: expected a number, got 'fast'", "\(message)")
        let rule = refusal(minimal.replacingOccurrences(of: "rule: lmms-eval", with: "rule: strict"))
        #expect(rule.contains("r.yaml:17:") && rule.contains("'strict' is not one of pope, lmms-eval, vlmevalkit"), "\(rule)")
        let objective = refusal(minimal.replacingOccurrences(of: "pref_loss: dpo", with: "pref_loss: dpoo"))
        #expect(objective.contains("r.yaml:14:16:") && objective.contains("'dpoo' is not an objective"), "\(objective)")
        let list = refusal("model_name_or_path: m\ntraining: {name: x}\n")
        #expect(list.contains("training: expected a list of mappings"), "\(list)")
    }

    @Test func namesMustBeUniqueAndPairsKnown() {
        #expect(refusal(minimal.replacingOccurrences(of: "name: dpo", with: "name: rdpo")).contains("the name 'rdpo' is used twice"))
        #expect(refusal(minimal.replacingOccurrences(of: "pairs: realign\n    pref_loss: dpo", with: "pairs: vapr\n    pref_loss: dpo"))
            .contains("pairs 'vapr' is neither a pair recipe's name"))
        #expect(refusal(minimal.replacingOccurrences(of: "    sentence_model: models/minilm\n", with: ""))
            .contains("re-align pairs need the sentence model"))
        #expect(refusal("seed: 1\n").contains("model_name_or_path is required"))
        #expect(refusal("model_name_or_path: [a\n").contains("not valid YAML"))
    }

    @Test func missingFilesAreListedBeforeAnythingRuns() throws {
        let r = try Recipe(text: minimal, file: "r.yaml", base: base)
        let missing = r.missingFiles()
        #expect(missing.contains("r.yaml: model_name_or_path: /recipes/models/llava/config.json does not exist"))
        #expect(missing.contains("r.yaml: pairs realign: samples: /recipes/data/samples.jsonl does not exist"))
        #expect(missing.contains("r.yaml: benchmarks adv: questions: /recipes/pope.jsonl does not exist"))
    }

    @Test func theAnnotatedDefaultAndTheShippedExamplesParse() throws {
        let defaults = try Recipe(text: RecipeTemplate.annotated, file: "default.yaml", base: base)
        #expect(defaults.pairs.map(\.name) == ["realign", "vapr"])
        #expect(defaults.training.map(\.name) == ["realign-rdpo", "vapr-dpo"])
        // The template's defaults are TrainingOptions' own.
        let o = defaults.training[0].options, d = TrainingOptions()
        #expect(o.learningRate == d.learningRate && o.projectorLearningRate == d.projectorLearningRate && o.epochs == d.epochs)
        #expect(o.batchSize == d.batchSize && o.gradientAccumulation == d.gradientAccumulation && o.lora.r == d.lora.r && o.lora.alpha == d.lora.alpha)
        #expect(o.warmupRatio == d.warmupRatio && o.schedule == d.schedule && o.checkpointEvery == d.checkpointEvery && o.seed == d.seed)
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/recipes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: examples).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for f in files { _ = try Recipe(contentsOf: examples + "/" + f) }
    }
}
