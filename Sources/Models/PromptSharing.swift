import Torch

extension VLMModel {
    /// Summed log-probabilities of several completions per prompt, running each prompt (with its image) once:
    /// prompts are left-padded and encoded with their keys and values kept in the autograd graph, then every
    /// completion attends to its prompt's keys and values. `completions[j][i]` is completion j of prompt i; the
    /// result holds one tensor [B] per j. Equal to scoring prompt + completion sequences one by one.
    /// `imageGrids`: the prompts' images' patch grids, in order, where the model's positions need them.
    /// `weights[j][i][k]`: a weight on token k of completion j of prompt i in its sum (length-desensitised DPO).
    public func completionLogProbs(prompts: [[Int]], completions: [[[Int]]], imageFeatures: Tensor?, imageGrids: [[Int]]? = nil,
                                   weights: [[[Double]]]? = nil, padID: Int = 0) throws -> [Tensor] {
        let b = prompts.count
        guard b > 0, !completions.isEmpty, completions.allSatisfy({ $0.count == b }) else {
            throw ModelError("completion scoring needs one completion per prompt in every group")
        }
        guard prompts.allSatisfy({ !$0.isEmpty }), completions.allSatisfy({ $0.allSatisfy { !$0.isEmpty } }) else {
            throw ModelError("prompts and completions must not be empty")
        }
        if let weights {
            guard weights.count == completions.count, zip(weights, completions).allSatisfy({ w, c in w.map(\.count) == c.map(\.count) }) else {
                throw ModelError("completion scoring: one weight per completion token")
            }
        }
        let p = prompts.map(\.count).max()!
        // Prompts, left-padded; positions count real tokens only.
        let promptRows = prompts.map { Array(repeating: padID, count: p - $0.count) + $0 }
        let promptMaskRows = prompts.map { Array(repeating: 0, count: p - $0.count) + Array(repeating: 1, count: $0.count) }
        let maskP = try Tensor(promptMaskRows.flatMap { $0 }, shape: [b, p]).to(device: device)
        let positionsP = try positions(tokens: promptRows, mask: promptMaskRows, grids: imageGrids, count: p)
        let embeddedP = try embed(inputIDs: Tensor(promptRows.flatMap { $0 }, shape: [b, p]).to(device: device), imageFeatures: imageFeatures)
        let prompted = try decoder(embeddings: embeddedP, positions: positionsP,
                                      mask: AttentionMask.make(padding: maskP, queryLength: p, offset: 0, dtype: embeddedP.dtype, device: device),
                                      past: nil)
        // The last prompt position predicts every completion's first token.
        let firstLogProbs = try logits(prompted.hidden.select(1, p - 1)).to(dtype: .float32).logSoftmax(-1)

        let groups = completions.count
        let rows = groups * b
        let c = completions.flatMap { $0.map(\.count) }.max()!
        var ids: [Int] = [], mask: [Int] = [], predicting: [Bool] = [], targets: [Int] = [], rowOf: [Int] = [], targetWeights: [Double] = []
        var fullRows: [[Int]] = [], fullMaskRows: [[Int]] = []
        for (j, group) in completions.enumerated() {
            for (i, completion) in group.enumerated() {
                let row = j * b + i
                let padded = completion + Array(repeating: padID, count: c - completion.count)
                let real = Array(repeating: 1, count: completion.count) + Array(repeating: 0, count: c - completion.count)
                ids += padded
                mask += real
                fullRows.append(promptRows[i] + padded)
                fullMaskRows.append(promptMaskRows[i] + real)
                for t in 0..<c {
                    let predicts = t + 1 < completion.count
                    predicting.append(predicts)
                    if predicts {
                        targets.append(completion[t + 1])
                        rowOf.append(row)
                        if let weights { targetWeights.append(weights[j][i][t + 1]) }
                    }
                }
            }
        }
        var past: [(Tensor, Tensor)] = []
        for (k, v) in prompted.keysValues {
            past.append((try Tensor.cat(Array(repeating: k, count: groups), dim: 0), try Tensor.cat(Array(repeating: v, count: groups), dim: 0)))
        }
        let fullMask = try Tensor.cat([maskP.repeating([groups, 1]), Tensor(mask, shape: [rows, c]).to(device: device)], dim: 1)
        let embeddedC = try embed(inputIDs: Tensor(ids, shape: [rows, c]).to(device: device), imageFeatures: nil)
        // Completion tokens continue their prompt's positions (the model's scheme, over the real tokens).
        // Every group repeats the prompts, and with them their images.
        let groupGrids = imageGrids.map { g in Array(repeating: g, count: groups).flatMap { $0 } }
        let completed = try decoder(embeddings: embeddedC, positions: positions(tokens: fullRows, mask: fullMaskRows, grids: groupGrids, count: c),
                                       mask: AttentionMask.make(padding: fullMask, queryLength: c, offset: p, dtype: embeddedC.dtype, device: device),
                                       past: past)
        let hidden = completed.hidden
        let select = try Tensor(predicting, shape: [rows, c]).to(device: device)
        var sums = try Tensor.zeros([rows], device: device)
        if !targets.isEmpty {
            let chosen = try hidden.maskedSelect(select.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1))
            let logProbs = try logits(chosen).to(dtype: .float32).logSoftmax(-1)
            var values = try logProbs.gather(1, Tensor(targets).to(device: device).unsqueeze(1)).squeeze(1)
            if weights != nil { values = try values * Tensor(targetWeights.map(Float.init)).to(device: device) }
            sums = try sums.scatterAdd(0, Tensor(rowOf).to(device: device), values)
        }
        // First tokens, from the prompt's last position.
        let firsts = completions.flatMap { $0.map { $0[0] } }
        let firstRows = try Tensor.cat(Array(repeating: firstLogProbs, count: groups), dim: 0)
        var firstValues = try firstRows.gather(1, Tensor(firsts).to(device: device).unsqueeze(1)).squeeze(1)
        if let weights { firstValues = try firstValues * Tensor(weights.flatMap { $0.map { Float($0[0]) } }).to(device: device) }
        let total = try sums + firstValues
        return try (0..<groups).map { j in try total.narrow(0, start: j * b, length: b) }
    }
}
