import Foundation
import JSON

/// Writes preference records in the forms other tools read, so pairs built here train there and back:
/// LLaMA-Factory's ShareGPT preference records (with a `dataset_info.json` entry), ms-swift's messages +
/// rejected_response, TRL's conversational vision form, and ReAlign's own. Each keeps `id`; the retrieved image
/// goes to a `retrieved_image` key those tools ignore — not to ms-swift's `rejected_images`, which beside a
/// `rejected_response` makes one pair (chosen, image) against (rejected, retrieved image), not rdpo's two.
public enum PreferenceExport {
    public enum Format: String, CaseIterable, Sendable { case llamafactory, swift, trl, realign }

    /// One record; image paths relative to `folder` when they lie inside it, else (and without a folder) absolute.
    /// ReAlign's own form keeps the record's provenance keys after its own.
    public static func json(_ r: PreferenceRecord, as format: Format, relativeTo folder: String?) -> JSONValue {
        func path(_ p: String?) -> JSONValue? {
            guard let p else { return nil }
            guard let folder else { return .string(p) }
            let prefix = folder.hasSuffix("/") ? folder : folder + "/"
            return .string(p.hasPrefix(prefix) ? String(p.dropFirst(prefix.count)) : p)
        }
        var fields: [(String, JSONValue)] = [("id", .string(r.id))]
        let images: JSONValue? = path(r.image).map { .array([$0]) }
        // Placeholder-based forms: one "<image>" in the user turn, where the record had it or first.
        let withPlaceholder = r.image == nil || r.prompt.contains("<image>") ? r.prompt : "<image>" + r.prompt
        switch format {
        case .realign:
            fields += [("prompt", .string(r.prompt)), ("chosen", .string(r.chosen))]
            if let rejected = r.rejected { fields.append(("rejected", .string(rejected))) }
            if let image = path(r.image) { fields.append(("image", image)) }
            if let retrieved = path(r.retrievedImage) { fields.append(("retrieved_image", retrieved)) }
            if let system = r.system { fields.append(("system", .string(system))) }
            for (key, value) in r.provenance.objectValue ?? [] where !fields.contains(where: { Array($0.0.utf8) == Array(key.utf8) }) {
                fields.append((key, value))
            }
        case .llamafactory:
            var turns: [JSONValue] = []
            if let system = r.system { turns.append(.object([("from", .string("system")), ("value", .string(system))])) }
            turns.append(.object([("from", .string("human")), ("value", .string(withPlaceholder))]))
            fields.append(("conversations", .array(turns)))
            fields.append(("chosen", .object([("from", .string("gpt")), ("value", .string(r.chosen))])))
            if let rejected = r.rejected { fields.append(("rejected", .object([("from", .string("gpt")), ("value", .string(rejected))]))) }
            if let images { fields.append(("images", images)) }
            if let retrieved = path(r.retrievedImage) { fields.append(("retrieved_image", retrieved)) }
        case .swift:
            var messages: [JSONValue] = []
            if let system = r.system { messages.append(.object([("role", .string("system")), ("content", .string(system))])) }
            messages.append(.object([("role", .string("user")), ("content", .string(withPlaceholder))]))
            messages.append(.object([("role", .string("assistant")), ("content", .string(r.chosen))]))
            fields.append(("messages", .array(messages)))
            if let rejected = r.rejected { fields.append(("rejected_response", .string(rejected))) }
            if let images { fields.append(("images", images)) }
            if let retrieved = path(r.retrievedImage) { fields.append(("retrieved_image", retrieved)) }
        case .trl:
            // The user turn as content parts, the image part where the placeholder was (first when none).
            var parts: [JSONValue] = []
            let pieces = withPlaceholder.components(separatedBy: "<image>")
            for (i, piece) in pieces.enumerated() {
                if i > 0 { parts.append(.object([("type", .string("image"))])) }
                if !piece.isEmpty { parts.append(.object([("type", .string("text")), ("text", .string(piece))])) }
            }
            func turn(_ role: String, _ content: JSONValue) -> JSONValue { .object([("role", .string(role)), ("content", content)]) }
            func text(_ s: String) -> JSONValue { .array([.object([("type", .string("text")), ("text", .string(s))])]) }
            var prompt: [JSONValue] = []
            if let system = r.system { prompt.append(turn("system", text(system))) }
            prompt.append(turn("user", .array(parts)))
            fields.append(("prompt", .array(prompt)))
            fields.append(("chosen", .array([turn("assistant", text(r.chosen))])))
            if let rejected = r.rejected { fields.append(("rejected", .array([turn("assistant", text(rejected))]))) }
            if let images { fields.append(("images", images)) }
            if let retrieved = path(r.retrievedImage) { fields.append(("retrieved_image", retrieved)) }
        }
        return .object(fields)
    }

    /// Writes `records` to `path`: a JSON array when it ends in `.json` (LLaMA-Factory's and ms-swift's usual
    /// files), JSONL otherwise; atomically, so an interrupted run leaves no half file.
    public static func write(_ records: [PreferenceRecord], as format: Format, to path: String) throws {
        let folder = ((path as NSString).deletingLastPathComponent as NSString).standardizingPath
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let absoluteFolder = folder.hasPrefix("/") ? folder : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(folder)
        let lines = records.map { json($0, as: format, relativeTo: absoluteFolder).serialized() }
        let body = path.hasSuffix(".json") ? "[\n" + lines.joined(separator: ",\n") + "\n]\n" : lines.map { $0 + "\n" }.joined()
        try body.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The `dataset_info.json` entry LLaMA-Factory needs for a file written `as: .llamafactory`.
    public static func datasetInfoEntry(fileName: String) -> JSONValue {
        .object([
            ("file_name", .string(fileName)), ("formatting", .string("sharegpt")), ("ranking", .bool(true)),
            ("columns", .object([("messages", .string("conversations")), ("chosen", .string("chosen")),
                                 ("rejected", .string("rejected")), ("images", .string("images"))])),
        ])
    }
}

extension PreferenceExport {
    /// Writes (or updates) the dataset_info.json beside a LLaMA-Factory file with an entry for it, named `name` or
    /// after the file; returns the dataset_info.json path and the entry's name.
    @discardableResult
    public static func registerInDatasetInfo(_ file: String, name: String? = nil) throws -> (path: String, entry: String) {
        let info = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent("dataset_info.json")
        let entry = name ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var entries = FileManager.default.fileExists(atPath: info) ? (try JSONValue.parse(contentsOf: info).objectValue ?? []) : []
        entries.removeAll { Array($0.0.utf8) == Array(entry.utf8) }
        entries.append((entry, datasetInfoEntry(fileName: (file as NSString).lastPathComponent)))
        try (JSONValue.object(entries).serialized(pretty: true) + "\n").write(toFile: info, atomically: true, encoding: .utf8)
        return (info, entry)
    }
}

extension PreferenceRecord {
    /// The record in ReAlign's own form with absolute paths: what build-prefs writes.
    public var json: JSONValue { PreferenceExport.json(self, as: .realign, relativeTo: nil) }
}
