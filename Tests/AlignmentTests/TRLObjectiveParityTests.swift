import Foundation
import Testing
import Torch
@testable import Alignment
@testable import Models

/// The objectives users know from TRL against TRL's own loss code at step 0 (trl 1.16.0,
/// tools/reference/make_trl_objective_fixtures.py): DPOTrainer's and KTOTrainer's `_compute_loss` on the tiny
/// LLaVA with the peft adapter, CPOTrainer's `cpo_loss` and ORPOTrainer's `odds_ratio_loss`. The log-probs come
/// from the trainer's own scoring (prompt shared by its responses, KL completions rotated as TRL rotates them).
@Suite(.serialized) struct TRLObjectiveParityTests {
    struct Run: CustomStringConvertible, Sendable {
        var fixture: String
        var mix: [(Objective, Double)]
        var settings: ObjectiveSettings
        var description: String { fixture }
    }

    static func settings(_ change: (inout ObjectiveSettings) -> Void = { _ in }) -> ObjectiveSettings {
        var s = ObjectiveSettings()
        change(&s)
        return s
    }

    static let runs: [Run] = [
        Run(fixture: "nca_pair", mix: [(.ncaPair, 1)], settings: settings()),
        Run(fixture: "bco_pair", mix: [(.bcoPair, 1)], settings: settings()),
        Run(fixture: "sppo_hard", mix: [(.sppoHard, 1)], settings: settings()),
        Run(fixture: "apo_zero", mix: [(.apoZero, 1)], settings: settings()),
        Run(fixture: "apo_down", mix: [(.apoDown, 1)], settings: settings()),
        Run(fixture: "exo_pair", mix: [(.exoPair, 1)], settings: settings { $0.labelSmoothing = 0.1 }),
        Run(fixture: "nll", mix: [(.nll, 1)], settings: settings()),
        Run(fixture: "rpo", mix: [(.dpo, 1), (.nll, 0.5)], settings: settings()),
        Run(fixture: "dpo_ld", mix: [(.dpo, 1)], settings: settings { $0.ldAlpha = 0.5 }),
        Run(fixture: "cdpo", mix: [(.dpo, 1)], settings: settings { $0.labelSmoothing = 0.1 }),
        Run(fixture: "cpo", mix: [(.cpo, 1)], settings: settings()),
        Run(fixture: "simpo", mix: [(.simpo, 1)], settings: settings { $0.beta = 2; $0.simpoGamma = 0.5 }),
        Run(fixture: "orpo", mix: [(.orpo, 1)], settings: settings()),
        Run(fixture: "kto", mix: [(.kto, 1)], settings: settings()),
        Run(fixture: "kto_weighted", mix: [(.kto, 1)], settings: settings { $0.undesirableWeight = 1.5 }),
    ]

    @Test(arguments: runs)
    func stepZeroMatchesTRL(_ run: Run) throws {
        let mix = try ObjectiveMix(run.mix, settings: run.settings)
        let f = try SafeTensorsFile(path: alignmentFixture("objectives_trl.safetensors"))
        let pairs = try SafeTensorsFile(path: alignmentFixture("objectives.safetensors"))
        let model = try ModelLoader.llava(tinyLlavaFolder())
        try model.loadAdapter(from: alignmentFixture("adapter_init"))
        try model.freeze()
        try model.unfreeze { $0.contains(".lora_") }
        model.train()

        // The fixture's pairs as the batcher encodes them: one image placeholder per prompt.
        var batch = Batcher.Batch()
        for i in 0..<2 {
            let ids = { (key: String) in try pairs.tensor(key).toArray(Int64.self).map(Int.init) }
            var prompt: [Int] = []
            for t in try ids("pair\(i).prompt") where !(t == model.imageTokenID && prompt.last == t) { prompt.append(t) }
            batch.encoded.append(.init(prompt: prompt, chosen: try ids("pair\(i).chosen"), rejected: try ids("pair\(i).rejected")))
        }
        batch.inputs = clipInputs(try pairs.tensor("pixels").to(dtype: .float32), model)

        let lp = try scoreBatch(batch, model: model, needRejected: mix.needsRejected, ldAlpha: run.settings.ldAlpha)
        var pair = PairLogProbs(policyChosen: lp.chosen)
        pair.policyRejected = lp.rejected
        pair.chosenLengths = try Tensor(lp.chosenLengths)
        pair.rejectedLengths = try Tensor(lp.rejectedLengths)
        if mix.needsReference {
            let reference = try model.withLoRADisabled {
                try withNoGrad { try scoreBatch(batch, model: model, needRejected: true, ldAlpha: run.settings.ldAlpha) }
            }
            pair.referenceChosen = reference.chosen
            pair.referenceRejected = reference.rejected
        }
        if mix.needsKLCompletions {
            (pair.policyKL, pair.referenceKL) = try scoreKLCompletions(batch, model: model)
        }
        var total: Tensor? = nil
        var terms: [(String, Tensor)] = []
        var metrics: [String: Tensor] = [:]
        for (objective, weight) in mix.terms {
            let out = try Objectives.loss(objective, pair, settings: run.settings)
            terms += out.terms
            metrics.merge(out.metrics) { a, _ in a }
            let weighted = try out.loss * weight
            total = try total.map { try $0 + weighted } ?? weighted
        }
        let name = run.fixture
        let expectedTerms = Set(f.names.filter { $0.hasPrefix("\(name).term.") }.map { String($0.dropFirst("\(name).term.".count)) })
        #expect(Set(terms.map(\.0)) == expectedTerms)
        // float32 values: 2e-5, relative above 1 (sppo_hard's squares reach 121)
        func close(_ a: Tensor, _ key: String) throws -> Double {
            try maxAbs(a, f.tensor(key)) / max(1, abs(try f.tensor(key).item()))
        }
        for (term, value) in terms {
            let diff = try close(value, "\(name).term.\(term)")
            #expect(diff < 2e-5, "\(name) term \(term) differs by \(diff)")
        }
        let lossDiff = try close(total!, "\(name).loss")
        #expect(lossDiff < 2e-5, "\(name) loss differs by \(lossDiff)")
        if f.names.contains("\(name).kl") {
            let kl = try maxAbs(metrics["kl"]!, f.tensor("\(name).kl"))
            #expect(kl < 1e-5, "\(name) KL estimate differs by \(kl)")
        }

        try total!.backward()
        let params = Dictionary(uniqueKeysWithValues: model.trainableParameters())
        let gradKeys = f.names.filter { $0.hasPrefix("\(name).grad.") }
        #expect(gradKeys.count == params.count && params.count == 2 * 7 * 2)
        var worst = 0.0
        for key in gradKeys {
            let peftName = String(key.dropFirst("\(name).grad.".count))
            let ours = model.sanitize(String(peftName.dropFirst("base_model.model.".count)))!
            let want = try f.tensor(key)
            let grad = try params[ours]?.grad
            let got = try #require(grad, "\(ours) has no gradient")
            worst = max(worst, try (got - want).norm().item() / max(try want.norm().item(), 1e-12))
        }
        #expect(worst < 1e-5, "\(name): LoRA gradients differ by \(worst) relative")
        print("parity \(name) (TRL): loss \(lossDiff), LoRA gradients \(worst) relative")
    }

    /// The registry's rules for the new settings, and that reference-free objectives read no reference.
    @Test func settingsAreValidated() throws {
        for o in [Objective.simpo, .cpo, .orpo, .sft, .nll] { #expect(!o.needs.reference, "\(o)") }
        #expect(try ObjectiveMix([(.simpo, 1)]).needsReference == false)
        #expect(try ObjectiveMix([(.simpo, 1), (.dpo, 1)]).needsReference)
        #expect(try ObjectiveMix([(.kto, 1)]).needsKLCompletions)
        #expect(performing: { _ = try ObjectiveMix([(.exoPair, 1)], settings: ObjectiveSettings()) },
                throws: { "\($0)".contains("exo_pair needs --label-smoothing") })
        #expect(performing: { _ = try ObjectiveMix([(.dpo, 1), (.sft, 0.1)], settings: Self.settings { $0.ldAlpha = 0.5 }) },
                throws: { "\($0)".contains("sft is not defined") })
        #expect(performing: { _ = try ObjectiveMix([(.dpo, 1)], settings: Self.settings { $0.ldAlpha = 1.5 }) },
                throws: { "\($0)".contains("--ld-alpha must lie") })
        #expect(performing: { _ = try ObjectiveMix([(.dpo, 1)], settings: Self.settings { $0.simpoGamma = 1 }) },
                throws: { "\($0)".contains("simpo gamma is set") && "\($0)".contains("simpo") })
        #expect(performing: { _ = try ObjectiveMix([(.kto, 1)], settings: Self.settings { $0.desirableWeight = -1 }) },
                throws: { "\($0)".contains("weights must be positive") })
        var o = TrainingOptions()
        o.objectives = [(.kto, 1)]
        o.full = true
        #expect(performing: { _ = try o.mix() }, throws: { "\($0)".contains("--full") })
    }
}
