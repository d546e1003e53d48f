import Foundation
import Images
import JSON
import Jobs
import Models
import Torch

/// Model forward, generation and sentence-encoder throughput vs transformers / sentence-transformers.
public struct ModelBenchConfig: Sendable {
    /// The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).
    public var model: String
    /// A sentence-transformers MiniLM folder (optional).
    public var minilm: String?
    /// Intra-op threads for both sides.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Python interpreter with torch and transformers.
    public var python = "python3"
    /// The reference script.
    public var script = "tools/reference/bench_models.py"
    /// The VLM's weight and compute dtype on both sides: float32 or bfloat16 (MiniLM stays f32).
    public var dtype = DType.float32
    /// ReAlign keeps the language model's linear weights in bf16 under f32 compute (the reference stays in `dtype`).
    public var bf16Weights = false
    /// Also time image features, prefill and one decode step, and the weight bytes a decode step reads against
    /// this machine's memory streaming rate.
    public var detail = false

    public init(model: String) {
        self.model = model
    }
}

public enum ModelBench {
    /// Prints the forward (all and text logits), greedy generation (prefill and decode step) and MiniLM figures of
    /// ReAlign and the reference, best of alternating rounds.
    public static func run(_ config: ModelBenchConfig) throws {
        let model = config.model, minilm = config.minilm, python = config.python, script = config.script
        let threads = config.threads, computeType = config.dtype, bf16Weights = config.bf16Weights, detail = config.detail
        printMachine()
        guard [.float32, .bfloat16].contains(computeType) else { throw JobError("--dtype must be f32 or bf16") }
        try Torch.setThreads(threads)
        let vlm = try VLMRegistry.load(model, dtype: computeType, bf16LinearWeights: bf16Weights)
        let inputs = try SafeTensorsFile(path: (model as NSString).appendingPathComponent("bench_inputs.safetensors"))
        let ids = try inputs.tensor("input_ids")
        let benchImages = try benchImageInputs(inputs, "", ids: ids, vlm: vlm, dtype: computeType)
        func best(_ rounds: Int, _ body: () throws -> Void) throws -> Double {
            try body()
            return try (0..<rounds).map { _ in try seconds(body) }.min()!
        }
        var arguments = [python, script, "serve", model, String(threads), computeType == .bfloat16 ? "bf16" : "f32"]
        if let minilm { arguments.append(minilm) }
        let reference = ReferenceSession(arguments)
        if reference == nil { print("  (reference not available: \(python) \(script) serve failed)") }
        /// Best of `rounds` for ReAlign and for the reference's `workload`, one round of each in turn after one
        /// untimed round of each.
        func alternating(_ rounds: Int, _ workload: String, _ body: () throws -> Void) throws -> (ours: Double, theirs: Double?) {
            try body()
            var theirs = reference?.seconds(workload)
            var ours = Double.infinity
            for _ in 0..<rounds {
                ours = min(ours, try seconds(body))
                if let best = theirs { theirs = reference?.seconds(workload).map { min(best, $0) } }
            }
            return (ours, theirs)
        }
        // All positions, as transformers' forward computes them; and only the text positions (what training and
        // scoring use: image positions never need vocabulary logits).
        let forward = try alternating(5, "forward") {
            try withNoGrad {
                let hidden = try vlm.hiddenStates(inputIDs: ids, imageFeatures: vlm.imageFeatures(benchImages), imageGrids: benchImages.grids)
                _ = try vlm.logits(hidden)
            }
        }
        let textPositions = try ids.ne(vlm.imageTokenID)
        let forwardText = try alternating(5, "forward") {
            try withNoGrad {
                let hidden = try vlm.hiddenStates(inputIDs: ids, imageFeatures: vlm.imageFeatures(benchImages), imageGrids: benchImages.grids)
                _ = try vlm.logits(hidden.maskedSelect(textPositions.unsqueeze(-1).expand(as: hidden)).view(-1, hidden.size(-1)))
            }
        }
        let referenceForward = [forward.theirs, forwardText.theirs].compactMap { $0 }.min()
        let prompt = try inputs.tensor("prompt_ids").flatten().toArray(Int64.self).map(Int.init)
        let promptImages = try benchImageInputs(inputs, "prompt_", ids: inputs.tensor("prompt_ids"), vlm: vlm, dtype: computeType)
        let generator = TextGenerator(model: vlm, tokenizer: nil)
        let generation = try alternating(3, "generate") {
            _ = try generator.generate(prompts: [prompt], images: promptImages, options: GenerationOptions(maxNewTokens: 64))
        }
        // Generation splits into the prompt's forward (compute-bound, like the forward above) and 63 decode steps
        // (bound by reading the weights): a longer prompt shifts the mix, so each phase is reported too.
        let prefill = try alternating(3, "prefill") {
            _ = try generator.generate(prompts: [prompt], images: promptImages, options: GenerationOptions(maxNewTokens: 1))
        }
        if detail {
            let features = try best(2) { _ = try withNoGrad { try vlm.imageFeatures(promptImages) } }
            print(String(format: "  detail: image features %.3f s, prefill+1 token %.3f s, per decode step %.4f s", features, prefill.ours, (generation.ours - prefill.ours) / 63))
            // A decode step reads every decoder and head weight once, and the keys and values cached so far: at the
            // rate this machine streams memory (a sum over 400 MB of ones, far past the caches; not zeros, whose
            // pages may all be one shared page) that alone takes `floor` per token. The rate moves by half from one
            // minute to the next on a shared machine, so each round times the sum, a prefill and a generation back
            // to back, and the ratio is taken within the round.
            let block = try Tensor.full([100_000_000], 1.0)
            let weights = vlm.namedParameters().filter { vlm.part($0.0) == .language && !$0.0.contains("embed_tokens") }
                .reduce(0) { $0 + $1.1.byteCount }
            // Keys and values per token: every layer's k_proj width, twice; the cache holds 32 tokens past the prompt on average.
            let kvWidth = vlm.namedParameters().filter { vlm.part($0.0) == .language && $0.0.hasSuffix("self_attn.k_proj.weight") }
                .reduce(0) { $0 + $1.1.size(0) }
            let cached = 2 * kvWidth * computeType.byteSize * (prompt.count + 32)
            var rounds: [(rate: Double, step: Double)] = []
            for _ in 0..<7 {
                let sum = try seconds { _ = try block.sum() }
                let one = try seconds { _ = try generator.generate(prompts: [prompt], images: promptImages, options: GenerationOptions(maxNewTokens: 1)) }
                let all = try seconds { _ = try generator.generate(prompts: [prompt], images: promptImages, options: GenerationOptions(maxNewTokens: 64)) }
                rounds.append((Double(block.byteCount) / sum, (all - one) / 63))
            }
            let ratios = rounds.map { $0.step / (Double(weights + cached) / $0.rate) }.sorted()
            let median = { (xs: [Double]) in xs.sorted()[xs.count / 2] }
            let rate = median(rounds.map(\.rate)), step = median(rounds.map(\.step))
            print(String(format: "  detail: a decode step reads %.0f MB of weights and %.0f MB of cached keys and values; memory streams at %.1f GB/s here (median of 7 rounds): floor %.2f ms per token, decode step %.2f ms, %.2fx the floor (rounds: %.2f-%.2fx)",
                         Double(weights) / 1e6, Double(cached) / 1e6, rate / 1e9, Double(weights + cached) / rate * 1e3, step * 1e3,
                         median(ratios), ratios.first!, ratios.last!))
        }
        var minilmSeconds: (ours: Double, theirs: Double?)? = nil
        if let minilm {
            let encoder = try SentenceEncoder(folder: minilm)
            let texts = try referenceSentences(python: python, script: script)
            minilmSeconds = try alternating(3, "minilm") { _ = try encoder.embed(texts, batchSize: 32) }
            if detail {
                let tokenizing = try best(2) { for t in texts { _ = try encoder.tokenizer.encode(t, addSpecialTokens: true, maxLength: 256) } }
                print(String(format: "  detail: MiniLM tokenization of %d sentences %.3f s", texts.count, tokenizing))
            }
        }
        print("threads: \(threads), parameters: \(String(format: "%.1fM", Double(vlm.parameterCount) / 1e6)), LLaVA dtype: \(computeType)\(bf16Weights ? " (ReAlign: bf16 linear weights)" : "")")
        print("  (best of alternating rounds: 5 per forward, 3 per generation and MiniLM)")
        func line(_ name: String, _ ours: Double, _ theirs: Double?, _ unit: String, higherIsBetter: Bool) {
            var text = String(format: "  %-30@ ReAlign %9.3f %@", name as NSString, ours, unit)
            if let theirs {
                text += String(format: "   reference %9.3f %@   speed-up %.2fx", theirs, unit, higherIsBetter ? ours / theirs : theirs / ours)
            }
            print(text)
        }
        let shape = "\(ids.size(0)) x \(ids.size(1))"
        line("forward \(shape), all logits", forward.ours, referenceForward, "s", higherIsBetter: false)
        line("forward \(shape), text logits", forwardText.ours, referenceForward, "s", higherIsBetter: false)
        line("greedy generation, 64 tokens", 64 / generation.ours, generation.theirs.map { 64 / $0 }, "tok/s", higherIsBetter: true)
        line("  of which prefill (\(prompt.count) tokens)", prefill.ours, prefill.theirs, "s", higherIsBetter: false)
        let steps = { (all: Double, first: Double) in (all - first) / 63 * 1e3 }
        line("  and a decode step", steps(generation.ours, prefill.ours),
             generation.theirs.flatMap { g in prefill.theirs.map { steps(g, $0) } }, "ms", higherIsBetter: false)
        if let minilmSeconds {
            line("MiniLM, 1000 sentences", 1000 / minilmSeconds.ours, minilmSeconds.theirs.map { 1000 / $0 }, "sent/s", higherIsBetter: true)
        }
    }


    /// The bench file's images: one crop per image (LLaVA-1.5), or every image's tiles in a row with `tiles` and
    /// `image_sizes` (LLaVA-NeXT); each image stands for as many tokens as its row of `ids` has image tokens.
    static func benchImageInputs(_ inputs: SafeTensorsFile, _ prefix: String, ids: Tensor, vlm: any VLMModel, dtype: DType) throws -> ImageInputs {
        let pixels = try inputs.tensor(prefix.isEmpty ? "pixel_values" : prefix + "pixels").to(dtype: dtype)
        let counts = try (0..<ids.size(0)).map { try ids.select(0, $0).eq(vlm.imageTokenID).sum().itemInt() }
        if inputs.names.contains(prefix + "image_grid_thw") {  // Qwen2-VL: patch rows and their grids
            return try ImageInputs(patchRows: pixels, imageGridTHW: inputs.tensor(prefix + "image_grid_thw"))
        }
        guard inputs.names.contains(prefix + "tiles") else { return ImageInputs(pixels: pixels, tokenCounts: counts) }
        let sizes = try inputs.tensor(prefix + "image_sizes").toArray(Int64.self).map(Int.init)
        return ImageInputs(pixels: pixels, tokenCounts: counts, tiles: try inputs.tensor(prefix + "tiles").toArray(Int64.self).map(Int.init),
                           originalSizes: stride(from: 0, to: sizes.count, by: 2).map { PixelSize(height: sizes[$0], width: sizes[$0 + 1]) })
    }

    /// The reference script's benchmark sentences (its `sentences` mode: a JSON array), so both sides embed the same.
    static func referenceSentences(python: String, script: String) throws -> [String] {
        guard let text = referenceOutput([python, script, "sentences"]), let list = try JSONValue.parse(Array(text.utf8)).arrayValue else {
            throw JobError("cannot get the benchmark sentences from \(script)")
        }
        return list.compactMap(\.stringValue)
    }
}
