import ArgumentParser
import Foundation
import Jobs
import Images
import Alignment
import JSON
import Models
import Tokenizers
import Torch

/// Benchmarks, measured against the reference on the same machine in the same run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure ReAlign against its references on this machine.",
        subcommands: [BenchOps.self, BenchTokenizer.self, BenchModel.self, BenchTrain.self, BenchIndex.self, BenchEmbed.self, BenchPrefs.self, BenchScale.self])
}

/// The first line of every benchmark: the CPU and the level its kernels take, the libtorch, so figures name their machine.
func printMachine() {
    print("machine: \(Torch.cpuInfo); libtorch \(Torch.version)")
}

/// Runs the Python reference through /usr/bin/env (so `--python` may be a name on PATH and leading VAR=value
/// words set its environment); its stdout, or nil when it cannot start or fails.
func referenceOutput(_ arguments: [String]) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
}

/// The JSON object on the last line a reference script prints.
func referenceJSON(_ arguments: [String]) -> JSONValue? {
    guard let text = referenceOutput(arguments), let line = text.split(separator: "\n").last else { return nil }
    return try? JSONValue.parse(Array(line.utf8))
}

/// A reference script in `serve` mode: started once, then asked for one timed round of a named workload at a time,
/// so that rounds of ReAlign and of the reference alternate and both meet this machine in the same state (a shared
/// machine's memory bandwidth moves by a third from one minute to the next).
final class ReferenceSession {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffered: [UInt8] = []

    /// Nil when the script cannot start or does not report "ready".
    init?(_ arguments: [String]) {
        signal(SIGPIPE, SIG_IGN)  // a reference that dies makes writes fail, not this process
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        guard nextLine() == "ready" else {
            close()
            return nil
        }
    }

    deinit { close() }

    /// Seconds one round of `workload` took in the reference, or nil if it failed.
    func seconds(_ workload: String) -> Double? {
        guard process.isRunning, (try? input.fileHandleForWriting.write(contentsOf: Data((workload + "\n").utf8))) != nil
        else { return nil }
        return nextLine().flatMap(Double.init)
    }

    private func nextLine() -> String? {
        while true {
            if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffered.removeSubrange(...end) }
                return String(decoding: buffered[..<end], as: UTF8.self)
            }
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { return nil }
            buffered += data
        }
    }

    private func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// Per-op overhead and matmul throughput: Swift API vs the same loop in C++ vs PyTorch eager.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Per-op time of a small add (Swift vs C++ vs PyTorch) and fp32 matmul GFLOP/s (Swift vs PyTorch).",
        discussion: """
            The C++ loop runs inside the shim against the same libtorch. PyTorch is run through `--python` \
            (skipped when it cannot import torch). Each figure is the best of several rounds.
            """)

    @Option(help: "Iterations of the small add per round (many short interleaved rounds resist noise better).")
    var iterations = 20_000

    @Option(help: "Elements of each add operand.")
    var elements = 16

    @Option(help: "Matrix size n for the n x n x n matmul (0 skips it).")
    var matmul = 2048

    @Option(help: "Rounds; the best round counts.")
    var rounds = 60

    @Option(help: "Intra-op threads (default: all cores).")
    var threads: Int?

    @Option(help: "Python interpreter with torch, for the PyTorch figures.")
    var python = "python3"

    func run() throws {
        if let threads { try Torch.setThreads(threads) }
        let threads = Torch.threads
        printMachine()
        print("libtorch \(Torch.version) at \(Torch.libraryPath), \(threads) thread(s)")

        // Swift API and the same loop in C++ (against the same libtorch), rounds interleaved so that both see
        // the same machine conditions; the best round of each counts.
        let a = try Tensor.rand([elements]), b = try Tensor.rand([elements])
        for _ in 0..<(iterations / 10) { _ = try a + b }
        var swiftNs = Double.infinity
        var cppNs = Double.infinity
        var cppBelowNs = Double.infinity
        for _ in 0..<rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { _ = try a + b }
            let t1 = DispatchTime.now().uptimeNanoseconds
            swiftNs = min(swiftNs, Double(t1 - t0) / Double(iterations))
            cppNs = min(cppNs, try Benchmarks.cppAddLoop(elements: elements, iterations: iterations))
            cppBelowNs = min(cppBelowNs, try Benchmarks.cppAddLoop(elements: elements, iterations: iterations, belowAutograd: true))
        }

        var swiftGflops: Double? = nil
        if matmul > 0 {
            let x = try Tensor.rand([matmul, matmul]), y = try Tensor.rand([matmul, matmul])
            _ = try x.matmul(y)
            var best = Double.infinity
            for _ in 0..<rounds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try x.matmul(y)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
            }
            swiftGflops = 2 * pow(Double(matmul), 3) / best
        }

        let py = pythonFigures(threads: threads)
        print("")
        print(String(format: "add of two %d-element tensors, per op:", elements))
        print(String(format: "  Swift API        %8.3f µs", swiftNs / 1000))
        print(String(format: "  C++ (same lib)   %8.3f µs   Swift/C++ = %.3f", cppNs / 1000, swiftNs / cppNs))
        print(String(format: "  C++ no autograd  %8.3f µs   Swift/this = %.3f  (the binding's own cost; the shim skips autograd when no input needs it)", cppBelowNs / 1000, swiftNs / cppBelowNs))
        if let py {
            print(String(format: "  PyTorch %@ %8.3f µs   Swift/PyTorch = %.3f", py.version.padding(toLength: 8, withPad: " ", startingAt: 0), py.addNs / 1000, swiftNs / py.addNs))
        } else {
            print("  PyTorch          not available (\(python) cannot import torch)")
        }
        if let swiftGflops {
            print(String(format: "fp32 matmul %d³:", matmul))
            print(String(format: "  Swift API        %8.1f GFLOP/s", swiftGflops))
            if let g = py?.gflops {
                print(String(format: "  PyTorch          %8.1f GFLOP/s   Swift/PyTorch = %.2f", g, swiftGflops / g))
            }
        }
    }

    struct PythonFigures { let version: String; let addNs: Double; let gflops: Double? }

    func pythonFigures(threads: Int) -> PythonFigures? {
        let script = """
            import time, torch
            torch.set_num_threads(\(threads))
            a = torch.rand(\(elements)); b = torch.rand(\(elements))
            for _ in range(\(iterations / 10)): a + b
            best = float('inf')
            for _ in range(\(rounds)):
                t0 = time.perf_counter_ns()
                for _ in range(\(iterations)): a + b
                best = min(best, (time.perf_counter_ns() - t0) / \(iterations))
            g = 0.0
            if \(matmul) > 0:
                x = torch.rand(\(matmul), \(matmul)); y = torch.rand(\(matmul), \(matmul)); x @ y
                t = float('inf')
                for _ in range(\(rounds)):
                    t0 = time.perf_counter_ns(); x @ y; t = min(t, time.perf_counter_ns() - t0)
                g = 2 * \(matmul) ** 3 / t
            print(torch.__version__.split('+')[0], best, g)
            """
        guard let text = referenceOutput([python, "-c", script]) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, let ns = Double(fields[1]), let g = Double(fields[2]) else { return nil }
        return PythonFigures(version: String(fields[0]), addNs: ns, gflops: matmul > 0 ? g : nil)
    }
}

/// Encoding throughput of a byte-level BPE tokenizer vs the `tokenizers` library, single thread both.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokens/s encoding a large English text: ReAlign vs the tokenizers library (single thread).",
        discussion: """
            Without --text, about 10 MB of English is assembled from the machine's documentation \
            (/usr/share/common-licenses, /usr/share/doc/*/copyright), repeated as needed. The library runs through \
            --python with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1.
            """)

    @Option(help: "A tokenizer.json file or folder (a byte-level BPE such as Qwen2's).")
    var tokenizer: String

    @Option(help: "The text to encode (default: ~10 MB assembled from local documentation).")
    var text: String?

    @Option(help: "Size of the assembled text in MB.")
    var megabytes = 10

    @Option(help: "Rounds; the best counts.")
    var rounds = 3

    @Option(help: "Python interpreter with the tokenizers package.")
    var python = "python3"

    func run() throws {
        printMachine()
        let corpus = try text.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? Self.assemble(megabytes: megabytes)
        let path = text ?? {
            let p = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-text.txt").path
            try? corpus.write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }()
        let tok = try Tokenizer(path: tokenizer)
        var ids: [Int] = []
        var best = Double.infinity
        for _ in 0..<rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            ids = try tok.encode(corpus, addSpecialTokens: false)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        let bytes = corpus.utf8.count
        print(String(format: "text: %.1f MB, %d tokens", Double(bytes) / 1e6, ids.count))
        print(String(format: "  ReAlign      %8.2f s   %10.0f tokens/s", best, Double(ids.count) / best))
        let script = """
            import os, sys, time
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(sys.argv[1])
            text = open(sys.argv[2], encoding="utf-8").read()
            best = float("inf")
            for _ in range(\(rounds)):
                t0 = time.perf_counter(); enc = tok.encode(text, add_special_tokens=False); best = min(best, time.perf_counter() - t0)
            print(best, len(enc.ids), int(enc.ids == [int(x) for x in open(sys.argv[3]).read().split()]))
            """
        let idsPath = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-ids.txt").path
        try ids.map(String.init).joined(separator: " ").write(toFile: idsPath, atomically: true, encoding: .utf8)
        let file = (try? FileManager.default.attributesOfItem(atPath: tokenizer)[.type] as? FileAttributeType) == .typeDirectory
            ? (tokenizer as NSString).appendingPathComponent("tokenizer.json") : tokenizer
        let fields = referenceOutput(["RAYON_NUM_THREADS=1", python, "-c", script, file, path, idsPath])?.split(whereSeparator: \.isWhitespace) ?? []
        guard fields.count == 3, let seconds = Double(fields[0]) else {
            print("  tokenizers   not available (\(python) cannot run or cannot import tokenizers)")
            return
        }
        print(String(format: "  tokenizers   %8.2f s   %10.0f tokens/s   ReAlign/tokenizers = %.2fx   ids identical: %@",
                     seconds, Double(ids.count) / seconds, seconds / best, fields[2] == "1" ? "yes" : "NO"))
    }

    /// English text from local documentation, repeated up to the size asked.
    static func assemble(megabytes: Int) throws -> String {
        var files = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/common-licenses"))?.sorted().map { "/usr/share/common-licenses/" + $0 } ?? []
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/doc"))?.sorted() ?? []
        files += docs.map { "/usr/share/doc/\($0)/copyright" }
        var parts: [String] = []
        var size = 0
        for f in files {
            guard let s = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
            parts.append(s)
            size += s.utf8.count
        }
        guard size > 0 else { throw ValidationError("no local documentation to build a text from; pass --text FILE") }
        let target = megabytes * 1_000_000
        var out = ""
        out.reserveCapacity(target + size)
        while out.utf8.count < target {
            for p in parts where out.utf8.count < target { out += p }
        }
        return out
    }
}

/// Model forward, generation and sentence-encoder throughput vs transformers / sentence-transformers.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "VLM forward and greedy generation vs transformers, MiniLM vs sentence-transformers (same threads).",
        discussion: """
            MODEL is a folder made by `python tools/reference/bench_models.py make DIR` (a random ~62M-parameter \
            LLaVA with bench_inputs.safetensors: 4 x 360 tokens with 256 image tokens each, and a 360-token \
            prompt) or `... make-next DIR` (the same sizes as LLaVA-NeXT: 2 x 1102 tokens, each with a 5-tile \
            image of 982 tokens). The forward computes logits at every position, as transformers' forward does.
            """)

    @Option(help: "The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).")
    var model: String

    @Option(help: "A sentence-transformers MiniLM folder (optional).")
    var minilm: String?

    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?
    var threads: Int { threadOption ?? ProcessInfo.processInfo.activeProcessorCount }

    @Option(help: "Python interpreter with torch and transformers.")
    var python = "python3"

    @Option(help: "The reference script.")
    var script = "tools/reference/bench_models.py"

    @Option(help: "The VLM's weight and compute dtype on both sides: f32 or bf16 (MiniLM stays f32).")
    var dtype = "f32"

    @Flag(help: "ReAlign keeps the language model's linear weights in bf16 under f32 compute (the reference stays in --dtype).")
    var bf16Weights = false

    @Flag(help: "Also time image features, prefill and one decode step, and print the weight bytes a decode step reads against this machine's memory streaming rate.")
    var detail = false

    func run() throws {
        printMachine()
        guard let computeType = DType(name: dtype), [.float32, .bfloat16].contains(computeType) else {
            throw ValidationError("--dtype must be f32 or bf16")
        }
        try Torch.setThreads(threads)
        let vlm = try VLMRegistry.load(model, dtype: computeType, bf16LinearWeights: bf16Weights)
        let inputs = try SafeTensorsFile(path: (model as NSString).appendingPathComponent("bench_inputs.safetensors"))
        let ids = try inputs.tensor("input_ids")
        let benchImages = try benchImageInputs(inputs, "", ids: ids, vlm: vlm, dtype: computeType)
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
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
            let texts = try referenceSentences()
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
    func benchImageInputs(_ inputs: SafeTensorsFile, _ prefix: String, ids: Tensor, vlm: any VLMModel, dtype: DType) throws -> ImageInputs {
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

    func referenceSentences() throws -> [String] {
        guard let text = referenceOutput([python, script, "sentences"]), let list = try JSONValue.parse(Array(text.utf8)).arrayValue else {
            throw ValidationError("cannot get the benchmark sentences from \(script)")
        }
        return list.compactMap(\.stringValue)
    }
}

/// Preference-training throughput and peak memory vs transformers + peft on the same batch.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Seconds per rdpo/dpo optimizer step (batch 2) vs transformers + peft, and peak resident memory.",
        discussion: """
            MODEL: a folder from `python tools/reference/bench_models.py make DIR`; DATA: pairs from \
            `python tools/reference/bench_train.py data DIR`. Both sides: LoRA r 128 / alpha 256 on every linear of \
            the language model, batch 2, no accumulation. ReAlign's reference log-probs come from its cache (one \
            no-grad pass before training, reported separately); the reference recomputes them every step, as TRL \
            does without precomputation.
            """)

    @Option(help: "The bench VLM folder (tools/reference/bench_models.py writes LLaVA, LLaVA-NeXT and Qwen2/2.5-VL ones).") var model: String
    @Option(help: "The bench pairs.jsonl.") var data: String
    @Option(help: "dpo or rdpo.") var objective = "rdpo"
    @Option(name: .customLong("threads"), help: "Intra-op threads for both sides (default: every core).") var threadOption: Int?
    var threads: Int { threadOption ?? ProcessInfo.processInfo.activeProcessorCount }
    @Option(help: "Python interpreter with torch, transformers and peft.") var python = "python3"
    @Option(help: "The reference script.") var script = "tools/reference/bench_train.py"
    @Option(help: "Also time this many data-parallel ranks of one thread each (batch 2 / ranks per rank, the same global batch) against one process of --threads threads.") var ranks = 1
    @Option(help: "cpu, cuda or cuda:N, for both sides (the reference gets the same device).") var device = "cpu"
    @Option(help: "Compute dtype for both sides: f32 or bf16.") var dtype = "f32"
    @Flag(help: "Gradient checkpointing on both sides (the reference: transformers' gradient_checkpointing_enable, non-reentrant).") var gradientCheckpointing = false

    func run() throws {
        printMachine()
        guard let o = Objective(rawValue: objective), o == .dpo || o == .rdpo else { throw ValidationError("--objective must be dpo or rdpo") }
        guard let computeType = DType(name: dtype), computeType == .float32 || computeType == .bfloat16 else {
            throw ValidationError("--dtype must be f32 or bf16")
        }
        guard var onDevice = Device(name: device) else { throw ValidationError("--device must be cpu, cuda or cuda:N") }
        if onDevice != .cpu && !Torch.cudaAvailable {
            throw ValidationError("--device \(device): this libtorch (\(Torch.version), \(Torch.libraryPath)) sees no CUDA device")
        }
        Launcher.bindToLauncher()
        let environment = try DistributedEnvironment.current()
        if let environment, 2 % environment.worldSize != 0 { throw ValidationError("bench train: the ranks must divide its batch of 2") }
        if let environment, device == "cuda" { onDevice = .cuda(environment.localRank) }
        let group = try environment.map { try ProcessGroup(environment: $0, backend: onDevice == .cpu ? "gloo" : "nccl") }
        try Torch.setThreads(environment == nil ? threads : 1)
        var options = TrainingOptions()
        options.objectives = [(o, 1)]
        options.steps = 4
        options.batchSize = 2 / (environment?.worldSize ?? 1)
        options.gradientAccumulation = 1
        options.projectorLearningRate = nil
        options.warmupRatio = 0
        options.lora = LoRAConfig(r: 128, alpha: 256, dropout: 0)
        options.checkpointEvery = 1000
        options.device = onDevice
        options.dtype = computeType
        options.gradientCheckpointing = gradientCheckpointing
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-train-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let trainer = try PreferenceTrainer(modelFolder: model, data: data, out: out + (environment == nil ? "" : "-ranks"), options: options, group: group)
        var stamps: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        try trainer.run(resume: false) { _ in stamps.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        // Steps 2-4 (the first one includes warm-up and, before it, the reference pass).
        if environment != nil {  // a rank of --ranks: rank 0 reports to the bench that started it
            if stamps.count == 4 { print("seconds_per_step \((stamps[3] - stamps[0]) / 3)") }
            if let b = trainer.lastStepBuckets, group?.rank == 0 { print("buckets \(b.count) \(b.startedInBackward)") }
            return
        }
        let perStep = (stamps[3] - stamps[0]) / 3
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Double(usage.ru_maxrss) * 1024
        print("threads: \(threads), objective: \(objective), batch 2, \(onDevice), \(dtype)\(gradientCheckpointing ? ", gradient checkpointing" : "")")
        print(String(format: "  ReAlign      %.2f s/step  %.2f pairs/s  peak RSS %.2f GiB  (first step incl. reference pass: %.2f s)",
                     perStep, 2 / perStep, peak / 1_073_741_824, stamps[0]))
        if ranks > 1 {
            guard 2 % ranks == 0 else { throw ValidationError("--ranks must divide the bench's batch of 2") }
            let pipe = Pipe()
            try Launcher.run(ranks: ranks, arguments: Launcher.without("--ranks", CommandLine.arguments), threadsPerRank: 1, rank0Output: pipe)
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("seconds_per_step ") }), let seconds = Double(line.split(separator: " ")[1]) {
                print(String(format: "  ReAlign, %d ranks x 1 thread (batch %d each): %.2f s/step, %.2fx one process of %d threads",
                             ranks, 2 / ranks, seconds, perStep / seconds, threads))
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("buckets ") }) {
                    let n = line.split(separator: " ")
                    print("    gradient all-reduce: \(n[1]) buckets, \(n[2]) started while backward ran")
                }
            } else {
                print("  ReAlign, \(ranks) ranks: no timing came back")
            }
        }
        guard let json = referenceJSON([python, script, "time", model, data, objective, String(threads), device, dtype] + (gradientCheckpointing ? ["checkpointing"] : [])),
              let seconds = json["seconds_per_step"]?.doubleValue, let rss = json["peak_rss_bytes"]?.doubleValue else {
            print("  reference    not available (\(python) \(script) failed)")
            return
        }
        print(String(format: "  reference    %.2f s/step  %.2f pairs/s  peak RSS %.2f GiB", seconds, 2 / seconds, rss / 1_073_741_824))
        print(String(format: "  speed-up %.2fx, memory %.2fx of the reference", seconds / perStep, peak / rss))
    }
}
