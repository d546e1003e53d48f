import Foundation
import TestSupport
import Testing
import Torch
@testable import Alignment
@testable import Models

/// The objective registry: what each objective needs, and the mixes it allows.
@Suite struct ObjectiveMixTests {
    @Test func eachObjectiveDeclaresItsNeeds() {
        #expect(Objective.sft.needs == ObjectiveNeeds(rejected: false, reference: false, otherImage: nil, parameters: []))
        #expect(Objective.rdpo.needs.otherImage == .retrieved && Objective.mdpo.needs.otherImage == .corrupted)
        #expect(Objective.robust.needs.parameters.contains(.labelSmoothing))
        #expect(Objective.mdpo.needs.parameters.contains(.mdpoDelta))
        for o in Objective.allCases where o != .sft && o != .nll { #expect(o.needs.rejected && o.needs.parameters.contains(.beta), "\(o)") }
    }

    @Test func mixesAreValidated() throws {
        let mix = try ObjectiveMix([(.rdpo, 1), (.sft, 0.1)])
        #expect(mix.needsRejected && mix.otherImage == .retrieved)
        #expect(try ObjectiveMix([(.sft, 1)]).needsRejected == false)
        // rDPO's retrieved image and mDPO's corrupted one cannot share a run (each would be scored with the other's).
        #expect(performing: { _ = try ObjectiveMix([(.rdpo, 1), (.mdpo, 1)]) }, throws: { "\($0)".contains("a mix can hold one of them") })
        #expect(throws: ModelError.self) { _ = try ObjectiveMix([(.dpo, 1), (.dpo, 0.5)]) }
        #expect(throws: ModelError.self) { _ = try ObjectiveMix([(.dpo, -1)]) }
        #expect(throws: ModelError.self) { _ = try ObjectiveMix([(.dpo, .nan)]) }
        #expect(throws: ModelError.self) { _ = try ObjectiveMix([]) }
        // A setting no objective of the mix reads is a mistake worth naming.
        #expect(performing: { _ = try ObjectiveMix([(.hinge, 1)], settings: [.labelSmoothing]) },
                throws: { "\($0)".contains("label smoothing is set") && "\($0)".contains("robust") })
        #expect(performing: { _ = try ObjectiveMix([(.rdpo, 1)], settings: [.mdpoDelta]) }, throws: { "\($0)".contains("mdpo") })
        _ = try ObjectiveMix([(.mdpo, 1)], settings: [.mdpoDelta])
    }

    /// The trainer refuses an invalid mix before it loads anything.
    @Test func theTrainerRefusesAnInvalidMix() throws {
        var o = smallOptions(.rdpo)
        o.objectives = [(.rdpo, 1), (.mdpo, 1)]
        #expect(throws: ModelError.self) {
            _ = try PreferenceTrainer(modelFolder: "/nonexistent", data: "/nonexistent.jsonl", out: temporaryFolder(), options: o)
        }
    }

    /// mDPO's delta reaches the anchor term: -log σ(β·(πc − rc) − δ), computed here in Double.
    @Test func mdpoDeltaReachesTheAnchor() throws {
        var lp = PairLogProbs(policyChosen: try Tensor([-10.0, -12.0]))
        lp.policyRejected = try Tensor([-11.0, -11.5])
        lp.referenceChosen = try Tensor([-10.5, -12.5])
        lp.referenceRejected = try Tensor([-11.0, -11.0])
        lp.policyChosenOtherImage = try Tensor([-13.0, -14.0])
        lp.referenceChosenOtherImage = try Tensor([-12.0, -13.0])
        let beta = 0.1
        for delta in [0.0, 0.5, 2.0] {
            let out = try Objectives.loss(.mdpo, lp, beta: beta, mdpoDelta: delta)
            let anchor = try #require(out.terms.first { $0.0 == "anchor" }?.1).item()
            let want = [0.5, 0.5].map { reward in -log(1 / (1 + exp(-(beta * reward - delta)))) }.reduce(0, +) / 2
            #expect(abs(anchor - want) < 1e-6, "delta \(delta): anchor \(anchor), want \(want)")
        }
    }
}
