import ArgumentParser
import Foundation
import Jobs
import JSON
import Torch

/// Lists the tensors of a safetensors file or a model folder and summarises its config.json.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a .safetensors file or a Hugging Face model folder, and summarise its config.json.",
        discussion: """
            For each tensor: name, dtype, shape and bytes; then the total parameter count. For a folder, the \
            weights are model.safetensors, the shards of model.safetensors.index.json, or every *.safetensors \
            file. A broken file exits with status 1 and a one-line message naming the file and the problem.
            """)

    @Argument(help: "A .safetensors file or a model folder.")
    var path: String

    @Flag(help: "Print only the summary, not every tensor.")
    var summary = false

    @Flag(help: "Print the listing as JSON.")
    var json = false

    func run() throws {
        do {
            try inspect()
        } catch {
            FileHandle.standardError.write(Data("realign inspect: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func inspect() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SafeTensorsError(path, "no such file or folder")
        }
        let config = isDirectory.boolValue ? try readConfig((path as NSString).appendingPathComponent("config.json")) : nil
        let entries = isDirectory.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path) : []
        let hasWeights = !isDirectory.boolValue || entries.contains { $0.hasSuffix(".safetensors") || $0 == Checkpoint.indexName }
        let checkpoint = hasWeights ? try Checkpoint(path: path) : nil
        let infos = checkpoint.map { c in c.names.map { c.info($0)! } } ?? []
        let parameters = infos.reduce(0) { $0 + $1.elementCount }
        let bytes = infos.reduce(0) { $0 + $1.byteCount }

        if json {
            var out = "{\"path\":\(quote(path)),\"files\":[\((checkpoint?.files ?? []).map { quote($0.path) }.joined(separator: ","))],"
            out += "\"parameters\":\(parameters),\"bytes\":\(bytes),\"tensors\":["
            out += (summary ? [] : infos).map { "{\"name\":\(quote($0.name)),\"dtype\":\"\($0.dtypeName)\",\"shape\":[\($0.shape.map(String.init).joined(separator: ","))],\"bytes\":\($0.byteCount)}" }.joined(separator: ",")
            out += "],\"config\":{\(configSummary(config).map { "\(quote($0.0)):\(quote($0.1))" }.joined(separator: ","))}}"
            print(out)
            return
        }
        if let checkpoint {
            print("\(checkpoint.files.count) safetensors file(s):")
            for f in checkpoint.files {
                print("  \(f.path)\(f.metadata.isEmpty ? "" : "  metadata: " + f.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
            }
        } else {
            print("no weights in this folder")
        }
        if !summary && !infos.isEmpty {
            let width = min(infos.map(\.name.count).max() ?? 0, 80)
            print("")
            for e in infos {
                let name = e.name.padding(toLength: max(width, e.name.count), withPad: " ", startingAt: 0)
                let dtype = e.dtypeName.padding(toLength: 5, withPad: " ", startingAt: 0)
                print("\(name)  \(dtype)  \(("[" + e.shape.map(String.init).joined(separator: ", ") + "]").padding(toLength: 18, withPad: " ", startingAt: 0))  \(formatBytes(e.byteCount))")
            }
        }
        print("")
        print("tensors: \(infos.count)   parameters: \(formatCount(parameters)) (\(parameters))   size: \(formatBytes(bytes))")
        let lines = configSummary(config)
        if !lines.isEmpty {
            print("")
            print("config.json:")
            for (k, v) in lines { print("  \(k): \(v)") }
        }
    }

    func readConfig(_ configPath: String) throws -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: configPath) else { return nil }
        do {
            let value = try JSONValue.parse(Array(data))
            guard value.objectValue != nil else { throw SafeTensorsError(configPath, "not a JSON object") }
            return value
        } catch let error as JSONValue.ParseError {
            throw SafeTensorsError(configPath, "not valid JSON (\(error))")
        }
    }

    /// The fields a user checks first, for the model and its nested text/vision configs.
    func configSummary(_ config: JSONValue?) -> [(String, String)] {
        guard let config else { return [] }
        let keys = ["model_type", "architectures", "dtype", "torch_dtype", "hidden_size", "intermediate_size",
                    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                    "max_position_embeddings", "rope_theta", "rope_scaling", "hidden_act", "image_size", "patch_size",
                    "image_token_index", "image_token_id", "vision_feature_layer", "vision_feature_select_strategy",
                    "projector_hidden_act", "tie_word_embeddings"]
        var out: [(String, String)] = []
        func collect(_ v: JSONValue, prefix: String) {
            for k in keys {
                if let x = v[k] { out.append((prefix + k, render(x))) }
            }
            for nested in ["text_config", "vision_config"] {
                if let n = v[nested], n.objectValue != nil { collect(n, prefix: prefix + nested + ".") }
            }
        }
        collect(config, prefix: "")
        return out
    }

    func render(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): String(b)
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): s
        case .array(let a): "[" + a.map(render).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.map { "\($0.0): \(render($0.1))" }.joined(separator: ", ") + "}"
        }
    }

    func quote(_ s: String) -> String { JSONValue.quoted(s) }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}

func formatCount(_ n: Int) -> String {
    switch n {
    case 1_000_000_000...: String(format: "%.2fB", Double(n) / 1e9)
    case 1_000_000...: String(format: "%.2fM", Double(n) / 1e6)
    case 1_000...: String(format: "%.1fK", Double(n) / 1e3)
    default: String(n)
    }
}
