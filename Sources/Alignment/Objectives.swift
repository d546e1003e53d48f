import Foundation
import Models
import Torch

/// Summed log-probabilities of responses under the model (the quantity every preference objective compares).
public enum SequenceLogProbs {
    /// One row: `prompt` ids (image tokens expanded) followed by `completion` ids; the image for its placeholders.
    public struct Row {
        public var prompt: [Int]
        public var completion: [Int]
        public init(prompt: [Int], completion: [Int]) {
            self.prompt = prompt
            self.completion = completion
        }
    }

    /// Sum over completion tokens of log p(token | prefix, image), one value per row [N]. Rows are right-padded
    /// into one batch; vocabulary logits are computed only at the positions that predict completion tokens.
    public static func compute(_ model: any VLMModel, rows: [Row], imageFeatures: Tensor?,
                               padID: Int = 0) throws -> Tensor {
        guard !rows.isEmpty else { throw ModelError("no sequences to score") }
        let length = rows.map { $0.prompt.count + $0.completion.count }.max()!
        var ids: [Int] = []
        var mask: [Int] = []
        var predicting: [Bool] = []  // position t predicts token t+1, a completion token
        var targets: [Int] = []
        for row in rows {
            let sequence = row.prompt + row.completion
            ids += sequence + Array(repeating: padID, count: length - sequence.count)
            mask += Array(repeating: 1, count: sequence.count) + Array(repeating: 0, count: length - sequence.count)
            for t in 0..<length {
                let predicts = t + 1 >= row.prompt.count && t + 1 < sequence.count
                predicting.append(predicts)
                if predicts { targets.append(sequence[t + 1]) }
            }
        }
        let device = model.device
        let idTensor = try Tensor(ids, shape: [rows.count, length]).to(device: device)
        let maskTensor = try Tensor(mask, shape: [rows.count, length]).to(device: device)
        let hidden = try model.hiddenStates(inputIDs: idTensor, imageFeatures: imageFeatures, attentionMask: maskTensor)
        let select = try Tensor(predicting, shape: [rows.count, length]).to(device: device)
        let chosen = try hidden.maskedSelect(select.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1))
        let logProbs = try model.logits(chosen).to(dtype: .float32).logSoftmax(-1)
        let tokenLogProbs = try logProbs.gather(1, Tensor(targets).to(device: device).unsqueeze(1)).squeeze(1)
        // Sum per row: scatter each selected position's value to its row.
        var rowOfPosition: [Int] = []
        for (r, row) in rows.enumerated() { rowOfPosition += Array(repeating: r, count: row.completion.count) }
        return try Tensor.zeros([rows.count], device: device).scatterAdd(0, Tensor(rowOfPosition).to(device: device), tokenLogProbs)
    }
}

/// The preference objectives of DESIGN.md (log-probs are sums over response tokens).
public enum Objective: String, CaseIterable, Sendable {
    case sft, dpo, ipo, hinge, robust, rdpo, mdpo
}

/// Loss terms and metrics of one batch.
public struct ObjectiveOutput {
    /// Named loss terms (already weighted by the mix), each a scalar tensor.
    public var terms: [(String, Tensor)] = []
    public var loss: Tensor
    public var metrics: [String: Double] = [:]
}

/// Log-probs a preference objective needs, per pair [N] (policy and reference).
public struct PairLogProbs {
    public var policyChosen: Tensor
    public var policyRejected: Tensor?
    public var referenceChosen: Tensor?
    public var referenceRejected: Tensor?
    /// Chosen response under the retrieved (rDPO) or corrupted (mDPO) image.
    public var policyChosenOtherImage: Tensor?
    public var referenceChosenOtherImage: Tensor?
    /// Number of completion tokens per pair, for IPO's averaged log-probs and SFT's mean.
    public var chosenLengths: Tensor?
    public var rejectedLengths: Tensor?

    public init(policyChosen: Tensor) { self.policyChosen = policyChosen }
}

public enum Objectives {
    /// The loss of one objective, as TRL computes it (sigmoid DPO, IPO on length-averaged log-probs, hinge,
    /// robust with label smoothing) plus Re-Align's visual term (rDPO) and mDPO's conditional term and anchor.
    public static func loss(_ objective: Objective, _ lp: PairLogProbs, beta: Double, labelSmoothing: Double = 0,
                            mdpoDelta: Double = 0) throws -> ObjectiveOutput {
        func need(_ t: Tensor?, _ what: String) throws -> Tensor {
            guard let t else { throw ModelError("the \(objective.rawValue) objective needs \(what)") }
            return t
        }
        if objective == .sft {
            let lengths = try need(lp.chosenLengths, "response lengths").to(dtype: .float32)
            let nll = try (-lp.policyChosen / lengths).mean()
            return ObjectiveOutput(terms: [("sft", nll)], loss: nll, metrics: ["logps/chosen": try lp.policyChosen.mean().item()])
        }
        let pc = lp.policyChosen, pr = try need(lp.policyRejected, "rejected responses")
        let rc = try need(lp.referenceChosen, "reference log-probs"), rr = try need(lp.referenceRejected, "reference log-probs")
        let chosenReward = try pc - rc, rejectedReward = try pr - rr
        var logits = try chosenReward - rejectedReward
        var terms: [(String, Tensor)] = []
        switch objective {
        case .dpo, .rdpo, .mdpo:
            terms.append(("dpo", try (beta * logits).logSigmoid().neg().mean()))
        case .robust:
            let ls = labelSmoothing
            let l = try ((beta * logits).logSigmoid().neg() * (1 - ls) + (-beta * logits).logSigmoid() * ls) / (1 - 2 * ls)
            terms.append(("robust", try l.mean()))
        case .ipo:
            let lc = try need(lp.chosenLengths, "response lengths").to(dtype: .float32)
            let lr = try need(lp.rejectedLengths, "response lengths").to(dtype: .float32)
            logits = try (pc / lc - pr / lr) - (rc / lc - rr / lr)
            terms.append(("ipo", try (logits - 1 / (2 * beta)).square().mean()))
        case .hinge:
            terms.append(("hinge", try (1.0 - beta * logits).relu().mean()))
        case .sft:
            break
        }
        if objective == .rdpo || objective == .mdpo {
            let po = try need(lp.policyChosenOtherImage, "the chosen response under the other image")
            let ro = try need(lp.referenceChosenOtherImage, "reference log-probs under the other image")
            let visual = try chosenReward - (po - ro)
            terms.append((objective == .rdpo ? "visual" : "conditional", try (beta * visual).logSigmoid().neg().mean()))
        }
        if objective == .mdpo {
            terms.append(("anchor", try (beta * chosenReward - mdpoDelta).logSigmoid().neg().mean()))
        }
        var loss = terms[0].1
        for t in terms.dropFirst() { loss = try loss + t.1 }
        let chosenRewards = try (chosenReward * beta).detach(), rejectedRewards = try (rejectedReward * beta).detach()
        let metrics: [String: Double] = [
            "rewards/chosen": try chosenRewards.mean().item(),
            "rewards/rejected": try rejectedRewards.mean().item(),
            "rewards/margins": try (chosenRewards - rejectedRewards).mean().item(),
            "rewards/accuracies": try chosenRewards.gt(rejectedRewards).to(dtype: .float32).mean().item(),
            "logps/chosen": try pc.detach().mean().item(),
            "logps/rejected": try pr.detach().mean().item(),
            "logps/ref_chosen": try rc.mean().item(),
            "logps/ref_rejected": try rr.mean().item(),
        ]
        return ObjectiveOutput(terms: terms, loss: loss, metrics: metrics)
    }
}
