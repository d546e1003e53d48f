import Foundation
import JSON

/// One preference pair: a prompt about an image, a chosen and (for preference objectives) a rejected response,
/// and optionally the retrieved image (rDPO's visual term).
public struct PreferenceRecord: Sendable, Equatable {
    public var id: String
    /// Plain user text (the trainer adds the chat format and the image token unless it is already there).
    public var prompt: String
    public var chosen: String
    public var rejected: String?
    /// Absolute image paths.
    public var image: String?
    public var retrievedImage: String?
    /// 1-based line in the JSONL file.
    public var line: Int
}

/// A record that could not be used, with its line and the reason.
public struct RecordProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

/// Reads preference JSONL in the forms ReAlign, TRL and Re-Align write:
/// `{"id","prompt","chosen","rejected","image","retrieved_image"}`, TRL's `{"prompt","chosen","rejected","images":[...]}`,
/// and conversation lists (`"chosen": [{"role": "assistant", "content": ...}]`, prompt as a list of user turns).
public enum PreferenceData {
    public static func load(_ path: String, imageRoot: String? = nil, requireRejected: Bool = true)
        throws -> (records: [PreferenceRecord], problems: [RecordProblem])
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PreferenceDataError("\(path): cannot read")
        }
        let base = imageRoot ?? (path as NSString).deletingLastPathComponent
        var records: [PreferenceRecord] = []
        var problems: [RecordProblem] = []
        var seen = Set<String>()
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let bytes = Array(raw)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            func problem(_ reason: String) { problems.append(RecordProblem(file: path, line: number, reason: reason)) }
            let json: JSONValue
            do {
                json = try JSONValue.parse(bytes)
            } catch {
                problem("not valid JSON (\(error))")
                continue
            }
            guard json.objectValue != nil else { problem("not a JSON object"); continue }
            guard let prompt = text(json["prompt"], role: "user") else { problem("missing or empty 'prompt'"); continue }
            guard let chosen = text(json["chosen"], role: "assistant") else { problem("missing or empty 'chosen'"); continue }
            let rejected = text(json["rejected"], role: "assistant")
            if requireRejected && rejected == nil { problem("missing or empty 'rejected' (a preference objective needs it)"); continue }
            var image = json["image"]?.stringValue ?? json["image_path"]?.stringValue
            if image == nil, let images = json["images"]?.arrayValue {
                guard images.count <= 1 else { problem("\(images.count) images; one image per record is supported"); continue }
                image = images.first?.stringValue
            }
            let retrieved = json["retrieved_image"]?.stringValue
            let id = json["id"]?.stringValue ?? json["id"]?.intValue.map(String.init) ?? "line-\(number)"
            guard seen.insert(id).inserted else { problem("duplicate id '\(id)'"); continue }
            func resolve(_ p: String?) -> String? {
                guard let p, !p.isEmpty else { return nil }
                return p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p)
            }
            records.append(PreferenceRecord(id: id, prompt: prompt, chosen: chosen, rejected: rejected,
                                            image: resolve(image), retrievedImage: resolve(retrieved), line: number))
        }
        return (records, problems)
    }

    /// A string, or the content of the last turn with `role` in a conversation list (content may itself be a
    /// list of {"type": "text", "text": ...} parts).
    static func text(_ value: JSONValue?, role: String) -> String? {
        if let s = value?.stringValue { return s.isEmpty ? nil : s }
        guard let turns = value?.arrayValue else { return nil }
        for turn in turns.reversed() where turn["role"]?.stringValue == role || turn["role"] == nil {
            if let s = turn["content"]?.stringValue, !s.isEmpty { return s }
            if let parts = turn["content"]?.arrayValue {
                let joined = parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
                if !joined.isEmpty { return joined }
            }
        }
        return nil
    }
}

public struct PreferenceDataError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
