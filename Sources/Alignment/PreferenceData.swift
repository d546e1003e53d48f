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

/// Reads preference data, JSONL or a JSON array of records, in the forms these tools write:
/// - ReAlign's `{"id","prompt","chosen","rejected","image","retrieved_image"}`;
/// - TRL's `{"prompt","chosen","rejected","images":[...]}` and conversation lists (`"chosen": [{"role":
///   "assistant", "content": ...}]`, prompt as a list of user turns);
/// - LLaMA-Factory's ShareGPT preference records: `conversations` [{`from`, `value`}] with `<image>` in the human
///   turn, `chosen` / `rejected` {`from`, `value`}, `images` [...];
/// - ms-swift's: `messages` [{`role`, `content`}] ending with the chosen assistant turn, `rejected_response` (a
///   string or assistant messages), `images`, and `rejected_images`, the image-side negative, read as rdpo's
///   retrieved image.
/// `<image>` placeholders are taken out of the prompt (the chat format places the image) after checking that
/// they match the images; a record with several images or several user turns is refused with its line.
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
        func take(_ json: JSONValue, _ number: Int) {
            func problem(_ reason: String) { problems.append(RecordProblem(file: path, line: number, reason: reason)) }
            guard json.objectValue != nil else { problem("not a JSON object"); return }
            let fields: Fields
            do { fields = try Fields(json) } catch { problem("\(error)"); return }
            guard let prompt = fields.prompt else { problem("missing or empty 'prompt'"); return }
            guard let chosen = fields.chosen else { problem("missing or empty 'chosen'"); return }
            if requireRejected && fields.rejected == nil { problem("missing or empty 'rejected' (a preference objective needs it)"); return }
            let id = json["id"]?.stringValue ?? json["id"]?.intValue.map(String.init) ?? "line-\(number)"
            guard seen.insert(id).inserted else { problem("duplicate id '\(id)'"); return }
            func resolve(_ p: String?) -> String? {
                guard let p, !p.isEmpty else { return nil }
                return p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p)
            }
            records.append(PreferenceRecord(id: id, prompt: prompt, chosen: chosen, rejected: fields.rejected,
                                            image: resolve(fields.image), retrievedImage: resolve(fields.retrievedImage), line: number))
        }
        let bytes = [UInt8](data)
        if let first = bytes.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }), first == UInt8(ascii: "[") {
            // A JSON array (LLaMA-Factory's and ms-swift's usual files): records are numbered from 1 in it.
            let array: [JSONValue]
            do {
                guard let a = try JSONValue.parse(bytes).arrayValue else { throw PreferenceDataError("not an array") }
                array = a
            } catch {
                throw PreferenceDataError("\(path): not a valid JSON array of records (\(error))")
            }
            for (index, json) in array.enumerated() { take(json, index + 1) }
            return (records, problems)
        }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let line = Array(raw)
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                take(try JSONValue.parse(line), number)
            } catch {
                problems.append(RecordProblem(file: path, line: number, reason: "not valid JSON (\(error))"))
            }
        }
        return (records, problems)
    }

    /// One record's fields, whichever tool's form it is in.
    struct Fields {
        var prompt: String?
        var chosen: String?
        var rejected: String?
        var image: String?
        var retrievedImage: String?

        init(_ json: JSONValue) throws {
            var images = json["images"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var placeholdersAreOurs = false  // ReAlign / TRL prompts keep theirs: the trainer places the image there
            if let conversations = json["conversations"]?.arrayValue {  // LLaMA-Factory ShareGPT
                let turns = conversations.filter { $0["from"]?.stringValue != "system" }
                guard turns.count == 1, let turn = turns.first, ["human", "user"].contains(turn["from"]?.stringValue ?? "") else {
                    throw PreferenceDataError("\(turns.count) turns in 'conversations': one human turn per record is supported (multi-turn records are refused, not cut)")
                }
                prompt = turn["value"]?.stringValue
                placeholdersAreOurs = true
                chosen = json["chosen"]?["value"]?.stringValue ?? json["chosen"]?.stringValue
                rejected = json["rejected"]?["value"]?.stringValue ?? json["rejected"]?.stringValue
            } else if let messages = json["messages"]?.arrayValue, json["rejected_response"] != nil {  // ms-swift
                let turns = messages.filter { $0["role"]?.stringValue != "system" }
                guard turns.count == 2, turns[0]["role"]?.stringValue == "user", turns[1]["role"]?.stringValue == "assistant" else {
                    throw PreferenceDataError("'messages' must be one user turn and the chosen assistant turn (\(turns.count) turns here; multi-turn records are refused, not cut)")
                }
                prompt = PreferenceData.text(turns[0]["content"], role: "user")
                placeholdersAreOurs = true
                chosen = PreferenceData.text(turns[1]["content"], role: "assistant")
                rejected = PreferenceData.text(json["rejected_response"], role: "assistant")
                let negatives = json["rejected_images"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard negatives.count <= 1 else { throw PreferenceDataError("\(negatives.count) rejected_images; one per record is supported") }
                retrievedImage = negatives.first
            } else {
                prompt = PreferenceData.text(json["prompt"], role: "user")
                chosen = PreferenceData.text(json["chosen"], role: "assistant")
                rejected = PreferenceData.text(json["rejected"], role: "assistant")
                retrievedImage = json["retrieved_image"]?.stringValue
                if let one = json["image"]?.stringValue ?? json["image_path"]?.stringValue { images = [one] }
            }
            guard images.count <= 1 else { throw PreferenceDataError("\(images.count) images; one image per record is supported") }
            image = images.first
            // "<image>" placeholders: as many as images (the usual "image features and image tokens do not match"
            // of those tools, caught here with the record's line); LLaMA-Factory's and ms-swift's are then left to
            // the chat format, which places the image as the model expects.
            if var text = prompt {
                let placeholders = text.components(separatedBy: "<image>").count - 1
                if placeholders > 0 {
                    guard placeholders == images.count else {
                        throw PreferenceDataError("\(placeholders) <image> placeholder(s) in the prompt for \(images.count) image(s)")
                    }
                    if placeholdersAreOurs {
                        text = text.replacingOccurrences(of: "<image>\n", with: "").replacingOccurrences(of: "<image>", with: "")
                            .trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
                prompt = text.isEmpty ? nil : text
            }
            if chosen?.isEmpty == true { chosen = nil }
            if rejected?.isEmpty == true { rejected = nil }
        }
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
