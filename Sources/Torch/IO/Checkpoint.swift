import Foundation
import JSON

/// The weights of a Hugging Face model folder: `model.safetensors`, or shards listed by
/// `model.safetensors.index.json`, or (failing both) every `*.safetensors` file in the folder.
public final class Checkpoint: @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"

    public let directory: String
    public let files: [SafeTensorsFile]
    /// tensor name -> index into `files`
    private let location: [String: Int]

    /// Opens a folder, or a single .safetensors file.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SafeTensorsError(path, "no such file or folder")
        }
        if !isDirectory.boolValue {
            directory = (path as NSString).deletingLastPathComponent
            let file = try SafeTensorsFile(path: path)
            files = [file]
            location = Dictionary(uniqueKeysWithValues: file.names.map { ($0, 0) })
            return
        }
        directory = path
        let indexPath = (path as NSString).appendingPathComponent(Self.indexName)
        if FileManager.default.fileExists(atPath: indexPath) {
            let map = try Self.readIndex(indexPath)
            let shardNames = Array(Set(map.values)).sorted()
            var opened: [SafeTensorsFile] = []
            var shardIndex: [String: Int] = [:]
            for shard in shardNames {
                let shardPath = (path as NSString).appendingPathComponent(shard)
                guard FileManager.default.fileExists(atPath: shardPath) else {
                    throw SafeTensorsError(indexPath, "shard '\(shard)' is listed but missing from the folder")
                }
                shardIndex[shard] = opened.count
                opened.append(try SafeTensorsFile(path: shardPath))
            }
            var location: [String: Int] = [:]
            for (name, shard) in map {
                let i = shardIndex[shard]!
                guard opened[i].info(name) != nil else {
                    throw SafeTensorsError(opened[i].path, "tensor '\(name)' is listed in \(Self.indexName) but not stored in this shard")
                }
                location[name] = i
            }
            files = opened
            self.location = location
            return
        }
        let single = (path as NSString).appendingPathComponent("model.safetensors")
        let candidates: [String]
        if FileManager.default.fileExists(atPath: single) {
            candidates = [single]
        } else {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            candidates = names.filter { $0.hasSuffix(".safetensors") }.sorted().map { (path as NSString).appendingPathComponent($0) }
        }
        guard !candidates.isEmpty else {
            throw SafeTensorsError(path, "no model.safetensors, \(Self.indexName) or *.safetensors file in the folder")
        }
        var opened: [SafeTensorsFile] = []
        var location: [String: Int] = [:]
        for c in candidates {
            let f = try SafeTensorsFile(path: c)
            for name in f.names {
                if let previous = location[name] {
                    throw SafeTensorsError(c, "tensor '\(name)' is also stored in \(opened[previous].path)")
                }
                location[name] = opened.count
            }
            opened.append(f)
        }
        files = opened
        self.location = location
    }

    static func readIndex(_ indexPath: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw SafeTensorsError(indexPath, "cannot read")
        }
        let root: JSONValue
        do {
            root = try JSONValue.parse(Array(data))
        } catch {
            throw SafeTensorsError(indexPath, "not valid JSON (\(error))")
        }
        guard let weightMap = root["weight_map"]?.objectValue else {
            throw SafeTensorsError(indexPath, "missing key 'weight_map'")
        }
        var map: [String: String] = [:]
        for (name, v) in weightMap {
            guard let shard = v.stringValue, !shard.contains("/"), shard.hasSuffix(".safetensors") else {
                throw SafeTensorsError(indexPath, "weight_map entry for '\(name)' is not a .safetensors file name in the folder")
            }
            map[name] = shard
        }
        return map
    }

    /// Every tensor name, sorted.
    public var names: [String] { location.keys.sorted() }
    public func info(_ name: String) -> SafeTensorInfo? { location[name].flatMap { files[$0].info(name) } }
    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func tensor(_ name: String) throws -> Tensor {
        guard let i = location[name] else { throw SafeTensorsError(directory, "no tensor named '\(name)' in the checkpoint") }
        return try files[i].tensor(name)
    }

    /// The named tensor over its file's mapping, no copy (see `SafeTensorsFile.mappedTensor`).
    public func mappedTensor(_ name: String) throws -> Tensor {
        guard let i = location[name] else { throw SafeTensorsError(directory, "no tensor named '\(name)' in the checkpoint") }
        return try files[i].mappedTensor(name)
    }

    public func loadAll() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensor(name) }
        return out
    }

    /// Writes tensors into `directory` as `model.safetensors`, or as shards of at most `maxShardBytes` with an
    /// index (names `model-00001-of-00003.safetensors`, as transformers writes them).
    public static func write(_ tensors: [String: Tensor], to directory: String, maxShardBytes: Int = 5 << 30,
                             metadata: [String: String] = ["format": "pt"]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = tensors.keys.sorted()
        var shards: [[String]] = [[]]
        var size = 0
        for name in names {
            let n = tensors[name]!.byteCount
            if size > 0 && size + n > maxShardBytes {
                shards.append([])
                size = 0
            }
            shards[shards.count - 1].append(name)
            size += n
        }
        if shards.count == 1 {
            try SafeTensors.write(tensors, metadata: metadata, to: (directory as NSString).appendingPathComponent("model.safetensors"))
            return
        }
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let file = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            let subset = Dictionary(uniqueKeysWithValues: shard.map { ($0, tensors[$0]!) })
            try SafeTensors.write(subset, metadata: metadata, to: (directory as NSString).appendingPathComponent(file))
            for name in shard { weightMap[name] = file }
        }
        let total = tensors.values.reduce(0) { $0 + $1.byteCount }
        let entries = weightMap.keys.sorted().map { "    \(JSONValue.quoted($0)): \(JSONValue.quoted(weightMap[$0]!))" }
        let json = "{\n  \"metadata\": {\n    \"total_size\": \(total)\n  },\n  \"weight_map\": {\n\(entries.joined(separator: ",\n"))\n  }\n}\n"
        try json.write(toFile: (directory as NSString).appendingPathComponent(indexName), atomically: true, encoding: .utf8)
    }
}
