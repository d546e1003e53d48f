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
/// record's image, chosen under the other image when the batch carries one.
func scoreBatch(_ batch: Batcher.Batch, model: any VLMModel, needRejected: Bool) throws -> BatchLogProbs {
    let encoded = batch.encoded
    let inputs = batch.inputs!
    // Each prompt (its image tokens and the question) runs once for both responses.
    let groups = needRejected ? [encoded.map(\.chosen), encoded.map(\.rejected)] : [encoded.map(\.chosen)]
    let scored = try model.completionLogProbs(prompts: prompts(encoded, for: inputs, model: model), completions: groups,
                                              imageFeatures: model.imageFeatures(inputs), imageGrids: inputs.grids)
    var other: Tensor? = nil
    if let otherInputs = batch.otherInputs {
        // The other image may take another number of image tokens (tiles, aspect ratio): its own prompts.
        other = try model.completionLogProbs(prompts: prompts(encoded, for: otherInputs, model: model), completions: [encoded.map(\.chosen)],
                                             imageFeatures: model.imageFeatures(otherInputs), imageGrids: otherInputs.grids)[0]
    }
    return BatchLogProbs(chosen: scored[0], rejected: needRejected ? scored[1] : nil, other: other,
                         chosenLengths: encoded.map(\.chosen.count), rejectedLengths: encoded.map(\.rejected.count))
}

/// Each record's prompt with its image placeholder expanded to the token count of its image in `inputs`.
private func prompts(_ encoded: [Batcher.Encoded], for inputs: ImageInputs, model: any VLMModel) throws -> [[Int]] {
    try zip(encoded, inputs.tokenCounts).map { try model.expandImageTokens($0.prompt, counts: [$1]) }
}
