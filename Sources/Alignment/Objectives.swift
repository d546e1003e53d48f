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
    /// `weights`: one per completion token of each row (length-desensitised DPO), else 1.
    public static func compute(_ model: any VLMModel, rows: [Row], imageFeatures: Tensor?, imageGrids: [[Int]]? = nil,
                               weights: [[Double]]? = nil, padID: Int = 0) throws -> Tensor {
        guard !rows.isEmpty else { throw ModelError("no sequences to score") }
        let length = rows.map { $0.prompt.count + $0.completion.count }.max()!
        var ids: [Int] = []
        var mask: [Int] = []
        var predicting: [Bool] = []  // position t predicts token t+1, a completion token
        var targets: [Int] = []
        var targetWeights: [Float] = []
        for (r, row) in rows.enumerated() {
            let sequence = row.prompt + row.completion
            ids += sequence + Array(repeating: padID, count: length - sequence.count)
            mask += Array(repeating: 1, count: sequence.count) + Array(repeating: 0, count: length - sequence.count)
            for t in 0..<length {
                let predicts = t + 1 >= row.prompt.count && t + 1 < sequence.count
                predicting.append(predicts)
                if predicts {
                    targets.append(sequence[t + 1])
                    targetWeights.append(Float(weights?[r][t + 1 - row.prompt.count] ?? 1))
                }
            }
        }
        let device = model.device
        let idTensor = try Tensor(ids, shape: [rows.count, length]).to(device: device)
        let maskTensor = try Tensor(mask, shape: [rows.count, length]).to(device: device)
        let hidden = try model.hiddenStates(inputIDs: idTensor, imageFeatures: imageFeatures, attentionMask: maskTensor, imageGrids: imageGrids)
        let select = try Tensor(predicting, shape: [rows.count, length]).to(device: device)
        let chosen = try hidden.maskedSelect(select.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1))
        let logProbs = try model.logits(chosen).to(dtype: .float32).logSoftmax(-1)
        var tokenLogProbs = try logProbs.gather(1, Tensor(targets).to(device: device).unsqueeze(1)).squeeze(1)
        if weights != nil { tokenLogProbs = try tokenLogProbs * Tensor(targetWeights).to(device: device) }
        // Sum per row: scatter each selected position's value to its row.
        var rowOfPosition: [Int] = []
        for (r, row) in rows.enumerated() { rowOfPosition += Array(repeating: r, count: row.completion.count) }
        return try Tensor.zeros([rows.count], device: device).scatterAdd(0, Tensor(rowOfPosition).to(device: device), tokenLogProbs)
    }

    /// Length-desensitised DPO's token weights (TRL's ld_alpha): in each pair, the tokens past the shorter
    /// response's length count `alpha`, the shared ones 1.
    public static func desensitisedWeights(chosenLengths: [Int], rejectedLengths: [Int], alpha: Double) -> (chosen: [[Double]], rejected: [[Double]]) {
        func weights(_ n: Int, _ shared: Int) -> [Double] { (0..<n).map { $0 < shared ? 1 : alpha } }
        let shared = zip(chosenLengths, rejectedLengths).map { min($0, $1) }
        return (zip(chosenLengths, shared).map(weights), zip(rejectedLengths, shared).map(weights))
    }
}

/// The preference objectives: DESIGN.md's (dpo, rdpo, mdpo, and the usual ipo / hinge / robust / sft) and the ones
/// users know from TRL, LLaMA-Factory and ms-swift, each as TRL's loss code computes it (TRL's names where it has
/// them). Log-probs are sums over response tokens unless an objective averages them.
public enum Objective: String, CaseIterable, Sendable {
    case sft, nll, dpo, ipo, hinge, robust, rdpo, mdpo
    case exoPair = "exo_pair", ncaPair = "nca_pair", bcoPair = "bco_pair", sppoHard = "sppo_hard"
    case apoZero = "apo_zero", apoDown = "apo_down"
    case simpo, cpo, orpo, kto

    /// The one place that says what each objective needs: the registry a mix is validated against and the
    /// trainer reads (which responses and images to score, whether a reference pass runs, which settings apply).
    public var needs: ObjectiveNeeds {
        typealias P = ObjectiveNeeds.Parameter
        let pair: Set<P> = [.beta, .ldAlpha]  // reference-based pair objectives: ld_alpha reweights their log-probs
        switch self {
        case .sft, .nll: return ObjectiveNeeds(rejected: false, reference: false, parameters: [])
        case .dpo, .robust, .exoPair: return ObjectiveNeeds(rejected: true, parameters: pair.union([.labelSmoothing]))
        case .ipo, .hinge, .ncaPair, .bcoPair, .sppoHard, .apoZero, .apoDown: return ObjectiveNeeds(rejected: true, parameters: pair)
        case .rdpo: return ObjectiveNeeds(rejected: true, otherImage: .retrieved, parameters: pair)
        case .mdpo: return ObjectiveNeeds(rejected: true, otherImage: .corrupted, parameters: pair.union([.mdpoDelta]))
        case .simpo: return ObjectiveNeeds(rejected: true, reference: false, parameters: [.beta, .simpoGamma, .labelSmoothing])
        case .cpo: return ObjectiveNeeds(rejected: true, reference: false, parameters: [.beta, .cpoAlpha, .labelSmoothing])
        case .orpo: return ObjectiveNeeds(rejected: true, reference: false, parameters: [.beta])
        case .kto: return ObjectiveNeeds(rejected: true, klCompletions: true, parameters: [.beta, .desirableWeight, .undesirableWeight])
        }
    }

    /// One line for `realign train --objective help`: the formula, with r = log pi - log ref of a response.
    public var summary: String {
        switch self {
        case .sft: return "-mean over responses of (log pi(chosen) / its length): supervised, no rejected response, no reference (LLaMA-Factory's sft term)"
        case .nll: return "-sum log pi(chosen) / chosen tokens of the batch: TRL's sft loss type; dpo+a*nll is TRL's rpo_alpha, LLaMA-Factory's pref_ftx"
        case .dpo: return "-log s(b(r_c - r_l)); with --label-smoothing e: conservative DPO (cDPO), -(1-e) log s(b h) - e log s(-b h)"
        case .ipo: return "(h_avg - 1/(2b))^2 on length-averaged log-ratios"
        case .hinge: return "relu(1 - b h) (SLiC)"
        case .robust: return "robust DPO: ((1-e)(-log s(b h)) + e log s(-b h)) / (1-2e), e = --label-smoothing"
        case .rdpo: return "Re-Align: dpo - log s(b(r_c - r_c under the retrieved image))"
        case .mdpo: return "mDPO: dpo - log s(b(r_c - r_c under a corrupted crop)) - log s(b r_c - delta)"
        case .exoPair: return "EXO: KL(softmax(b h) || [1-e, e]) over the pair; needs --label-smoothing e > 0 (the paper: 1e-3)"
        case .ncaPair: return "NCA: -log s(b r_c) - 0.5 log s(-b r_c) - 0.5 log s(-b r_l)"
        case .bcoPair: return "BCO (pair): -log s(b r_c) - log s(-b r_l)"
        case .sppoHard: return "SPPO (hard labels): (r_c - 1/(2b))^2 + (r_l + 1/(2b))^2"
        case .apoZero: return "APO-zero: 1 - s(b r_c) + s(b r_l) (chosen better than the model's own answers)"
        case .apoDown: return "APO-down: s(b r_c) + 1 - s(b h) (chosen worse than the model's own answers)"
        case .simpo: return "SimPO, no reference: -log s(b(avg log pi(c) - avg log pi(l)) - gamma), gamma = --simpo-gamma (beta around 2)"
        case .cpo: return "CPO, no reference: -log s(b(log pi(c) - log pi(l))) + --cpo-alpha x nll"
        case .orpo: return "ORPO, no reference: nll - b log s(log odds(c) - log odds(l)) on average log-probs (b is lambda)"
        case .kto: return "KTO: each pair a desirable and an undesirable example, 1 - s(b(r - KL)) and 1 - s(b(KL - r)), KL from mismatched pairs"
        }
    }
}

/// What an objective scores besides the chosen response under the record's image.
public struct ObjectiveNeeds: Sendable, Equatable {
    /// The image the chosen response is also scored under: Re-Align's retrieved image, or mDPO's corrupted crop.
    public enum OtherImage: String, Sendable { case retrieved, corrupted }
    public enum Parameter: String, Sendable, CaseIterable {
        case beta, labelSmoothing = "label smoothing", mdpoDelta = "mdpo delta", simpoGamma = "simpo gamma"
        case cpoAlpha = "cpo alpha", ldAlpha = "ld alpha", desirableWeight = "desirable weight", undesirableWeight = "undesirable weight"
    }

    public var rejected: Bool
    /// Whether it reads the reference model's log-probs (reference-free objectives skip the reference pass).
    public var reference: Bool = true
    public var otherImage: OtherImage? = nil
    /// KTO's KL estimate: each prompt also scored with another example's response (policy and reference, no grad).
    public var klCompletions = false
    public var parameters: Set<Parameter>
}

/// The values of the settings objectives read (TRL's defaults).
public struct ObjectiveSettings: Sendable, Equatable {
    public var beta = 0.1
    public var labelSmoothing = 0.0
    /// mDPO's anchor margin: -log σ(β·(chosen reward) − δ).
    public var mdpoDelta = 0.0
    public var simpoGamma = 0.5
    public var cpoAlpha = 1.0
    /// Length-desensitised DPO: response tokens past the shorter response's length count with this weight.
    public var ldAlpha: Double? = nil
    public var desirableWeight = 1.0
    public var undesirableWeight = 1.0

    public init(beta: Double = 0.1, labelSmoothing: Double = 0, mdpoDelta: Double = 0) {
        self.beta = beta
        self.labelSmoothing = labelSmoothing
        self.mdpoDelta = mdpoDelta
    }

    /// The settings given other than their defaults (beta always counts as read).
    public var changed: Set<ObjectiveNeeds.Parameter> {
        let d = ObjectiveSettings()
        var s = Set<ObjectiveNeeds.Parameter>()
        if labelSmoothing != d.labelSmoothing { s.insert(.labelSmoothing) }
        if mdpoDelta != d.mdpoDelta { s.insert(.mdpoDelta) }
        if simpoGamma != d.simpoGamma { s.insert(.simpoGamma) }
        if cpoAlpha != d.cpoAlpha { s.insert(.cpoAlpha) }
        if ldAlpha != nil { s.insert(.ldAlpha) }
        if desirableWeight != d.desirableWeight { s.insert(.desirableWeight) }
        if undesirableWeight != d.undesirableWeight { s.insert(.undesirableWeight) }
        return s
    }
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
        // ld_alpha changes the summed log-probs every objective of the run reads: all of them must be defined on it.
        if settings.contains(.ldAlpha), let other = terms.first(where: { !$0.0.needs.parameters.contains(.ldAlpha) }) {
            throw ModelError("ld alpha reweights the log-probs of every objective in the run, and \(other.0.rawValue) is not defined on them (train it without --ld-alpha)")
        }
        self.terms = terms
    }

    /// Also checks the values: exo_pair's smoothing, ranges.
    public init(_ terms: [(Objective, Double)], settings: ObjectiveSettings) throws {
        try self.init(terms, settings: settings.changed)
        let names = Set(terms.map(\.0))
        if names.contains(.exoPair) && !(settings.labelSmoothing > 0 && settings.labelSmoothing < 1) {
            throw ModelError("exo_pair needs --label-smoothing in (0, 1) (the EXO paper uses 1e-3)")
        }
        if (names.contains(.robust)) && !(settings.labelSmoothing >= 0 && settings.labelSmoothing < 0.5) {
            throw ModelError("robust needs --label-smoothing in [0, 0.5)")
        }
        guard settings.labelSmoothing >= 0 && settings.labelSmoothing < 1 else { throw ModelError("--label-smoothing must lie in [0, 1)") }
        if let a = settings.ldAlpha, !(a >= 0 && a <= 1) { throw ModelError("--ld-alpha must lie in [0, 1] (1: plain summed log-probs)") }
        guard settings.beta.isFinite, settings.beta > 0 else { throw ModelError("--beta must be positive") }
        guard settings.desirableWeight > 0, settings.undesirableWeight > 0 else { throw ModelError("kto's desirable and undesirable weights must be positive") }
    }

    public var needsRejected: Bool { terms.contains { $0.0.needs.rejected } }
    public var needsReference: Bool { terms.contains { $0.0.needs.reference } }
    public var needsKLCompletions: Bool { terms.contains { $0.0.needs.klCompletions } }
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
    /// Number of completion tokens per pair, for averaged log-probs and the nll's token mean.
    public var chosenLengths: Tensor?
    public var rejectedLengths: Tensor?
    /// KTO: each of the 2N examples' prompt with the previous example's response (policy and reference) [2N].
    public var policyKL: Tensor?
    public var referenceKL: Tensor?

    public init(policyChosen: Tensor) { self.policyChosen = policyChosen }
}

public enum Objectives {
    public static func loss(_ objective: Objective, _ lp: PairLogProbs, beta: Double, labelSmoothing: Double = 0,
                            mdpoDelta: Double = 0) throws -> ObjectiveOutput {
        try loss(objective, lp, settings: ObjectiveSettings(beta: beta, labelSmoothing: labelSmoothing, mdpoDelta: mdpoDelta))
    }

    /// The loss of one objective, as TRL computes it, plus Re-Align's visual term (rDPO) and mDPO's conditional
    /// term and anchor.
    public static func loss(_ objective: Objective, _ lp: PairLogProbs, settings s: ObjectiveSettings) throws -> ObjectiveOutput {
        let beta = s.beta, eps = s.labelSmoothing
        func need(_ t: Tensor?, _ what: String) throws -> Tensor {
            guard let t else { throw ModelError("the \(objective.rawValue) objective needs \(what)") }
            return t
        }
        /// -(1-ε) log σ(βx) - ε log σ(-βx): DPO's sigmoid, conservative when ε > 0 (cDPO; TRL's CPO and SimPO too).
        func sigmoidLoss(_ x: Tensor) throws -> Tensor {
            let l = try (beta * x).logSigmoid().neg()
            return eps == 0 ? try l.mean() : try (l * (1 - eps) - (-beta * x).logSigmoid() * eps).mean()
        }
        let pc = lp.policyChosen
        let chosenLengths = { try need(lp.chosenLengths, "response lengths").to(dtype: .float32) }
        let rejectedLengths = { try need(lp.rejectedLengths, "response lengths").to(dtype: .float32) }
        // TRL's sft loss type / CPO's nll: the mean over every chosen token of the batch.
        let nll = { try pc.sum().neg() / chosenLengths().sum() }
        switch objective {
        case .sft:
            let loss = try (-pc / chosenLengths()).mean()
            return ObjectiveOutput(terms: [("sft", loss)], loss: loss, metrics: ["logps/chosen": try pc.detach().mean()])
        case .nll:
            let loss = try nll()
            return ObjectiveOutput(terms: [("nll", loss)], loss: loss, metrics: ["logps/chosen": try pc.detach().mean()])
        case .simpo, .cpo, .orpo:
            let pr = try need(lp.policyRejected, "rejected responses")
            let averaged = objective != .cpo
            let c = averaged ? try pc / chosenLengths() : pc, r = averaged ? try pr / rejectedLengths() : pr
            var terms: [(String, Tensor)]
            switch objective {
            case .simpo: terms = [("simpo", try sigmoidLoss(c - r - s.simpoGamma / beta))]
            case .cpo: terms = [("cpo", try sigmoidLoss(c - r)), ("nll", try nll())]
            default:
                // log odds(p) = log p - log(1 - p), with log(1 - exp(x)) computed stably on both sides of -ln 2.
                func log1mexp(_ x: Tensor) throws -> Tensor {
                    try Tensor.where(x.lt(-0.6931471805599453), x.exp().neg().log1p(), x.expm1().neg().log())
                }
                let logOdds = try (c - r) - (log1mexp(c) - log1mexp(r))
                terms = [("nll", try nll()), ("odds_ratio", try (logOdds.logSigmoid().mean() * -beta))]
            }
            var loss = terms[0].1
            if objective == .cpo { loss = try loss + terms[1].1 * s.cpoAlpha } else if terms.count > 1 { loss = try loss + terms[1].1 }
            return ObjectiveOutput(terms: terms, loss: loss, metrics: try rewardMetrics(chosen: c * beta, rejected: r * beta, pc: pc, pr: pr))
        default:
            break
        }
        let pr = try need(lp.policyRejected, "rejected responses")
        let rc = try need(lp.referenceChosen, "reference log-probs"), rr = try need(lp.referenceRejected, "reference log-probs")
        let chosenReward = try pc - rc, rejectedReward = try pr - rr
        let logits = try chosenReward - rejectedReward
        var terms: [(String, Tensor)] = []
        var extra: [String: Tensor] = [:]
        switch objective {
        case .dpo:
            terms.append(("dpo", try sigmoidLoss(logits)))
        case .rdpo, .mdpo:
            terms.append(("dpo", try (beta * logits).logSigmoid().neg().mean()))
        case .robust:
            let l = try ((beta * logits).logSigmoid().neg() * (1 - eps) + (-beta * logits).logSigmoid() * eps) / (1 - 2 * eps)
            terms.append(("robust", try l.mean()))
        case .ipo:
            let lc = try chosenLengths(), lr = try rejectedLengths()
            let averaged = try (pc / lc - pr / lr) - (rc / lc - rr / lr)
            terms.append(("ipo", try (averaged - 1 / (2 * beta)).square().mean()))
        case .hinge:
            terms.append(("hinge", try (1.0 - beta * logits).relu().mean()))
        case .exoPair:
            // KL(q || p) over {chosen, rejected}: q = softmax of β·h, p = [1-ε, ε].
            let x = try beta * logits
            let l = try x.sigmoid() * (x.logSigmoid() - Foundation.log1p(-eps)) + (-x).sigmoid() * ((-x).logSigmoid() - Foundation.log(eps))
            terms.append(("exo_pair", try l.mean()))
        case .ncaPair:
            let c = try beta * chosenReward, r = try beta * rejectedReward
            terms.append(("nca_pair", try (c.logSigmoid().neg() - (-c).logSigmoid() * 0.5 - (-r).logSigmoid() * 0.5).mean()))
        case .bcoPair:
            let c = try beta * chosenReward, r = try beta * rejectedReward
            terms.append(("bco_pair", try (c.logSigmoid().neg() - (-r).logSigmoid()).mean()))
        case .sppoHard:
            let l = try (chosenReward - 0.5 / beta).square() + (rejectedReward + 0.5 / beta).square()
            terms.append(("sppo_hard", try l.mean()))
        case .apoZero:
            terms.append(("apo_zero", try ((1.0 - (beta * chosenReward).sigmoid()) + (beta * rejectedReward).sigmoid()).mean()))
        case .apoDown:
            terms.append(("apo_down", try ((beta * chosenReward).sigmoid() + (1.0 - (beta * logits).sigmoid())).mean()))
        case .kto:
            // KL(policy || reference) from mismatched prompt/response pairs, detached and floored at 0.
            let kl = try (need(lp.policyKL, "the KL completions") - need(lp.referenceKL, "the KL completions' reference log-probs"))
                .mean().detach().clamp(min: 0)
            let desirable = try (1.0 - (beta * (chosenReward - kl)).sigmoid()) * s.desirableWeight
            let undesirable = try (1.0 - (beta * (kl - rejectedReward)).sigmoid()) * s.undesirableWeight
            terms.append(("kto", try Tensor.cat([desirable, undesirable]).mean()))
            extra["kl"] = kl
        case .sft, .nll, .simpo, .cpo, .orpo:
            break
        }
        if objective == .rdpo || objective == .mdpo {
            let po = try need(lp.policyChosenOtherImage, "the chosen response under the other image")
            let ro = try need(lp.referenceChosenOtherImage, "reference log-probs under the other image")
            let visual = try chosenReward - (po - ro)
            terms.append((objective == .rdpo ? "visual" : "conditional", try (beta * visual).logSigmoid().neg().mean()))
        }
        if objective == .mdpo {
            terms.append(("anchor", try (beta * chosenReward - s.mdpoDelta).logSigmoid().neg().mean()))
        }
        var loss = terms[0].1
        for t in terms.dropFirst() { loss = try loss + t.1 }
        var metrics = try rewardMetrics(chosen: chosenReward * beta, rejected: rejectedReward * beta, pc: pc, pr: pr)
        metrics["logps/ref_chosen"] = try rc.detach().mean()
        metrics["logps/ref_rejected"] = try rr.detach().mean()
        metrics.merge(extra) { a, _ in a }
        return ObjectiveOutput(terms: terms, loss: loss, metrics: metrics)
    }

    /// TRL's reward metrics (rewards: β times the log-ratio, or the log-prob for reference-free objectives).
    static func rewardMetrics(chosen: Tensor, rejected: Tensor, pc: Tensor, pr: Tensor) throws -> [String: Tensor] {
        let c = try chosen.detach(), r = try rejected.detach()
        return [
            "rewards/chosen": try c.mean(),
            "rewards/rejected": try r.mean(),
            "rewards/margins": try (c - r).mean(),
            "rewards/accuracies": try c.gt(r).to(dtype: .float32).mean(),
            "logps/chosen": try pc.detach().mean(),
            "logps/rejected": try pr.detach().mean(),
        ]
    }
}

/// One objective or a weighted mix as written on a command line or in a recipe: "rdpo", "rdpo+0.1*sft",
/// "dpo + 0.5*nll" (TRL's rpo_alpha 0.5).
extension ObjectiveMix: CustomStringConvertible {
    public init(parsing text: String) throws {
        let terms = try text.split(separator: "+").map { part -> (Objective, Double) in
            let pieces = part.split(separator: "*").map { $0.trimmingCharacters(in: .whitespaces) }
            let (weight, name): (Double, String) = pieces.count == 2 ? (Double(pieces[0]) ?? .nan, pieces[1]) : (1, pieces.first ?? "")
            guard pieces.count <= 2, let o = Objective(rawValue: name), weight.isFinite else {
                throw ModelError("'\(part.trimmingCharacters(in: .whitespaces))' is not an objective (\(Objective.allCases.map(\.rawValue).joined(separator: ", "))) with an optional weight")
            }
            return (o, weight)
        }
        try self.init(terms)
    }

    /// The mix as it parses back: "rdpo+0.1*sft".
    public var description: String { Self.text(terms) }

    public static func text(_ terms: [(Objective, Double)]) -> String {
        terms.map { $0.1 == 1 ? $0.0.rawValue : "\(number($0.1))*\($0.0.rawValue)" }.joined(separator: "+")
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }

    /// Every objective with its formula, for `--objective help`.
    public static var list: String {
        let width = Objective.allCases.map(\.rawValue.count).max()!
        return (["Objectives (h = r_c - r_l, r = log pi - log ref of a response, s = sigmoid, b = --beta):"]
            + Objective.allCases.map { "  \($0.rawValue.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.summary)" }
            + ["Mix them with weights: \"rdpo+0.1*sft\", \"dpo+0.5*nll\" (TRL's rpo_alpha 0.5)."]).joined(separator: "\n")
    }
}
