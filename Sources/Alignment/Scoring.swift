import Models
import Torch

/// The summed log-probs the objectives read for one micro-batch, [B] each.
struct BatchLogProbs {
    var chosen: Tensor
    var rejected: Tensor?
    /// The chosen response under the other image (rDPO: retrieved; mDPO: corrupted).
    var other: Tensor?
    var chosenLengths: [Int]
    var rejectedLengths: [Int]
}

/// Policy (or, under withLoRADisabled, reference) log-probs of a micro-batch: chosen and rejected under the
/// record's image, chosen under the other image when the batch carries one. With `ldAlpha` the tokens past the
/// shorter response of each pair count that much (length-desensitised DPO), the other image's chosen alike.
func scoreBatch(_ batch: Batcher.Batch, model: any VLMModel, needRejected: Bool, ldAlpha: Double? = nil) throws -> BatchLogProbs {
    let encoded = batch.encoded
    let inputs = batch.inputs!
    let chosenLengths = encoded.map(\.chosen.count), rejectedLengths = encoded.map(\.rejected.count)
    let weights = ldAlpha.map { SequenceLogProbs.desensitisedWeights(chosenLengths: chosenLengths, rejectedLengths: rejectedLengths, alpha: $0) }
    // Each prompt (its image tokens and the question) runs once for both responses.
    let groups = needRejected ? [encoded.map(\.chosen), encoded.map(\.rejected)] : [encoded.map(\.chosen)]
    let scored = try model.completionLogProbs(prompts: prompts(encoded, for: inputs, model: model), completions: groups,
                                              imageFeatures: model.imageFeatures(inputs), imageGrids: inputs.grids,
                                              weights: weights.map { needRejected ? [$0.chosen, $0.rejected] : [$0.chosen] })
    var other: Tensor? = nil
    if let otherInputs = batch.otherInputs {
        // The other image may take another number of image tokens (tiles, aspect ratio): its own prompts.
        other = try model.completionLogProbs(prompts: prompts(encoded, for: otherInputs, model: model), completions: [encoded.map(\.chosen)],
                                             imageFeatures: model.imageFeatures(otherInputs), imageGrids: otherInputs.grids,
                                             weights: weights.map { [$0.chosen] })[0]
    }
    return BatchLogProbs(chosen: scored[0], rejected: needRejected ? scored[1] : nil, other: other,
                         chosenLengths: chosenLengths, rejectedLengths: rejectedLengths)
}

/// KTO's KL completions, as TRL builds them: the micro-batch's 2N examples (chosen 0..N-1, then rejected
/// 0..N-1) each scored with the previous example's response (the first with the last's), under the policy and
/// under the reference, without gradients. Returns [2N] each, in the examples' order.
func scoreKLCompletions(_ batch: Batcher.Batch, model: any VLMModel) throws -> (policy: Tensor, reference: Tensor) {
    let encoded = batch.encoded
    let inputs = batch.inputs!
    let examples = encoded.map(\.chosen) + encoded.map(\.rejected)
    let n = encoded.count
    let rotated = (0..<2 * n).map { examples[($0 + 2 * n - 1) % (2 * n)] }
    let promptIDs = try prompts(encoded, for: inputs, model: model)
    func score() throws -> Tensor {
        try withNoGrad {
            try Tensor.cat(model.completionLogProbs(prompts: promptIDs, completions: [Array(rotated[..<n]), Array(rotated[n...])],
                                                    imageFeatures: model.imageFeatures(inputs), imageGrids: inputs.grids), dim: 0)
        }
    }
    let policy = try score()
    let reference = try model.withLoRADisabled { try score() }
    return (policy, reference)
}

/// Each record's prompt with its image placeholder expanded to the token count of its image in `inputs`.
private func prompts(_ encoded: [Batcher.Encoded], for inputs: ImageInputs, model: any VLMModel) throws -> [[Int]] {
    try zip(encoded, inputs.tokenCounts).map { try model.expandImageTokens($0.prompt, counts: [$1]) }
}
