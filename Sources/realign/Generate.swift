import ArgumentParser
import Foundation
import Jobs
import Images
import Models
import Tokenizers
import Torch

/// Answers a question about an image with a local VLM; only the answer goes to stdout.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a prompt about an image with a local VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL).",
        discussion: """
            --prompt is plain user text: the chat format (from the model's config.json, or --chat-format) adds the \
            template and the image token. The answer streams to stdout as it is generated; logs go to stderr. \
            Greedy by default (temperature 0, as the papers evaluate).
            """)

    @Option(help: "A Hugging Face VLM folder (config.json, safetensors, tokenizer, preprocessor config): LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL.")
    var model: String

    @Option(help: "A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) to apply.")
    var adapter: String?

    @Option(help: "The image (JPEG or PNG).")
    var image: String?

    @Option(help: "The user's question or instruction (plain text).")
    var prompt: String

    @Option(help: "Most tokens to generate.")
    var maxNewTokens = 256

    @Option(help: "Chat format: \(ChatFormat.allCases.map(\.rawValue).joined(separator: ", ")) (default: from config.json).")
    var chatFormat: String?

    @Option(help: "Sampling temperature (0: greedy).")
    var temperature = 0.0

    @Option(help: "Nucleus sampling mass.")
    var topP = 1.0

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Stop when the answer contains this text (repeatable).")
    var stop: [String] = []

    @Option(help: "Compute dtype: f32 or bf16.")
    var dtype = "f32"

    @OptionGroup var precision: WeightPrecision

    func run() throws {
        guard let computeType = DType(name: dtype), computeType.isFloatingPoint else {
            throw ValidationError("--dtype must be f32, bf16, f16 or f64")
        }
        let format = try chatFormat.map(parseChatFormat)
        do {
            let vlm = try VisionLanguageModel(folder: model, adapter: adapter, dtype: computeType, bf16LinearWeights: precision.bf16Weights,
                                              chatFormat: format)
            let picture = try image.map { try RGBImage(contentsOfFile: $0) }
            log("model \(model) (\(vlm.chatFormat.rawValue), \(computeType)), generating up to \(maxNewTokens) tokens")
            var printed = ""
            let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed, stopStrings: stop)
            let result = try vlm.answer(prompt, image: picture, options: options) { text in
                // Print what is new; hold back while a partial character is still resolving.
                guard text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") else { return }
                let delta = String(text.dropFirst(printed.count))
                if !delta.isEmpty {
                    FileHandle.standardOutput.write(Data(delta.utf8))
                    printed = text
                }
            }
            let final = result.text ?? ""
            if final.hasPrefix(printed) {
                FileHandle.standardOutput.write(Data((String(final.dropFirst(printed.count)) + "\n").utf8))
            } else {
                FileHandle.standardOutput.write(Data("\n".utf8))
            }
            log("\(result.tokens.count) tokens, stopped by \(result.reason.rawValue)")
        } catch let e as ValidationError {
            throw e
        } catch {
            throw CleanExit.message(error)
        }
    }
}

/// Sentence embeddings, as sentence-transformers computes them.
struct EmbedText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-text",
        abstract: "Print L2-normalized sentence embeddings (e.g. all-MiniLM-L6-v2), one line per text.",
        discussion: "Texts are truncated at the model's sentence-transformers max_seq_length (sentence_bert_config.json).")

    @Option(help: "A sentence-transformers model folder (BERT config.json, safetensors, tokenizer).")
    var model: String

    @Flag(help: "Print a JSON array of embeddings.")
    var json = false

    @Argument(help: "Texts to embed.")
    var texts: [String]

    func run() throws {
        do {
            let encoder = try SentenceEncoder(folder: model)
            let embeddings = try encoder.embed(texts)
            let rows = try (0..<texts.count).map { try embeddings.select(0, $0).toArray(Float.self) }
            if json {
                print("[" + rows.map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" }.joined(separator: ", ") + "]")
            } else {
                for row in rows { print(row.map { "\($0)" }.joined(separator: " ")) }
            }
        } catch {
            throw CleanExit.message(error)
        }
    }
}

func parseChatFormat(_ name: String) throws -> ChatFormat {
    guard let f = ChatFormat(rawValue: name) else {
        throw ValidationError("unknown chat format '\(name)' (\(ChatFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    return f
}

/// Folds a LoRA adapter into its base model and writes a Hugging Face model folder.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a PEFT LoRA adapter into its base VLM and export a Hugging Face folder.",
        discussion: "The output holds model.safetensors (sharded past 5 GB), config.json and the base folder's tokenizer and processor files.")

    @Option(help: "The base VLM folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL).")
    var model: String

    @Option(help: "The adapter folder (PEFT format).")
    var adapter: String

    @Option(help: "Where to write the merged model.")
    var out: String

    func run() throws {
        do {
            let vlm = try VLMRegistry.load(model)
            try vlm.loadAdapter(from: adapter)
            let count = vlm.loraLinears().count
            try vlm.mergeAdapters()
            try vlm.exportModel(to: out, baseFolder: model)
            log("merged \(count) adapted layers into \(out)")
        } catch {
            throw CleanExit.message(error)
        }
    }
}

/// `--bf16-weights` for the commands that run a local VLM (generate, serve, build-prefs).
struct WeightPrecision: ParsableArguments {
    @Flag(help: "Keep the language model's linear weights in bf16 under f32 compute (bf16 inputs, f32 sums and results): half the bytes read per generated token, 1.3-1.9x faster decoding on CPU; answers may differ slightly from f32.")
    var bf16Weights = false
}
