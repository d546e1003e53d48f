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
    public static func compute(_ model: any VLMModel, rows: [Row], imageFeatures: Tensor?, imageGrids: [[Int]]? = nil,
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
        let hidden = try model.hiddenStates(inputIDs: idTensor, imageFeatures: imageFeatures, attentionMask: maskTensor, imageGrids: imageGrids)
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

    /// The one place that says what each objective needs: the registry a mix is validated against and the
    /// trainer reads (which responses and images to score, which settings apply).
    public var needs: ObjectiveNeeds {
        switch self {
        case .sft: return ObjectiveNeeds(rejected: false, otherImage: nil, parameters: [])
        case .dpo, .ipo, .hinge: return ObjectiveNeeds(rejected: true, otherImage: nil, parameters: [.beta])
        case .robust: return ObjectiveNeeds(rejected: true, otherImage: nil, parameters: [.beta, .labelSmoothing])
        case .rdpo: return ObjectiveNeeds(rejected: true, otherImage: .retrieved, parameters: [.beta])
        case .mdpo: return ObjectiveNeeds(rejected: true, otherImage: .corrupted, parameters: [.beta, .mdpoDelta])
        }
    }
}

/// What an objective scores besides the chosen response under the record's image.
public struct ObjectiveNeeds: Sendable, Equatable {
    /// The image the chosen response is also scored under: Re-Align's retrieved image, or mDPO's corrupted crop.
    public enum OtherImage: String, Sendable { case retrieved, corrupted }
    public enum Parameter: String, Sendable, CaseIterable { case beta, labelSmoothing = "label smoothing", mdpoDelta = "mdpo delta" }

    public var rejected: Bool
    public var otherImage: OtherImage?
    public var parameters: Set<Parameter>
}

/// A weighted mix of objectives (e.g. rdpo + 0.1 sft), checked against what each needs: one "other image" per
/// run, each objective once, positive finite weights, and no setting that no objective of the mix reads.
public struct ObjectiveMix: Sendable {
    public let terms: [(Objective, Double)]

    public init(_ terms: [(Objective, Double)], settings: Set<ObjectiveNeeds.Parameter> = []) throws {
        guard !terms.isEmpty else { throw ModelError("no objective given") }
        var seen = Set<Objective>()
        for (o, w) in terms {
            guard w.isFinite, w > 0 else { throw ModelError("\(o.rawValue): the weight \(w) must be positive and finite") }
            guard seen.insert(o).inserted else { throw ModelError("\(o.rawValue) appears twice in the mix") }
        }
        let others = Set(terms.compactMap { $0.0.needs.otherImage })
        guard others.count <= 1 else {
            let names = terms.filter { $0.0.needs.otherImage != nil }.map { "\($0.0.rawValue) scores the chosen response under the \($0.0.needs.otherImage!.rawValue) image" }
            throw ModelError("\(names.joined(separator: ", ")): a mix can hold one of them (train them in two runs)")
        }
        let read = terms.reduce(into: Set<ObjectiveNeeds.Parameter>()) { $0.formUnion($1.0.needs.parameters) }
        if let unused = settings.subtracting(read).sorted(by: { $0.rawValue < $1.rawValue }).first {
            let readers = Objective.allCases.filter { $0.needs.parameters.contains(unused) }.map(\.rawValue)
            throw ModelError("\(unused.rawValue) is set but no objective of the mix reads it (it is read by \(readers.joined(separator: ", ")))")
        }
        self.terms = terms
    }

    public var needsRejected: Bool { terms.contains { $0.0.needs.rejected } }
    public var otherImage: ObjectiveNeeds.OtherImage? { terms.lazy.compactMap { $0.0.needs.otherImage }.first }
}

/// Loss terms and metrics of one batch, all tensors on the model's device (read back once per step).
public struct ObjectiveOutput {
    /// Named loss terms (not weighted by the mix), each a scalar tensor.
    public var terms: [(String, Tensor)] = []
    public var loss: Tensor
    /// Detached scalars: rewards and log-probs as TRL names them.
    public var metrics: [String: Tensor] = [:]
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
            return ObjectiveOutput(terms: [("sft", nll)], loss: nll, metrics: ["logps/chosen": try lp.policyChosen.detach().mean()])
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
        let metrics: [String: Tensor] = [
            "rewards/chosen": try chosenRewards.mean(),
            "rewards/rejected": try rejectedRewards.mean(),
            "rewards/margins": try (chosenRewards - rejectedRewards).mean(),
            "rewards/accuracies": try chosenRewards.gt(rejectedRewards).to(dtype: .float32).mean(),
            "logps/chosen": try pc.detach().mean(),
            "logps/rejected": try pr.detach().mean(),
            "logps/ref_chosen": try rc.detach().mean(),
            "logps/ref_rejected": try rr.detach().mean(),
        ]
        return ObjectiveOutput(terms: terms, loss: loss, metrics: metrics)
    }
}
