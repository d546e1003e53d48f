import Foundation
import JSON

/// What a format's reader takes out of one record, before the checks every form shares.
struct RawPair {
    var prompt: String?
    var chosen: String?
    var rejected: String?
    var retrievedImage: String?
    var system: String?
    var images: [String] = []
    /// Image placeholders in the prompt outside its text: {"type": "image"} parts.
    var placeholders = 0
    /// ReAlign's prompts keep their "<image>": the trainer places the image there.
    var keepPlaceholders = false
    var provenance: JSONValue = .object([])
}

/// One reader per tool's record form (LLaMA-Factory's converter classes are the shape).
protocol PreferenceRecordReader {
    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair
}

extension PreferenceFormat {
    var reader: any PreferenceRecordReader.Type {
        switch self {
        case .auto, .realign, .trl: return ReAlignReader.self
        case .llamafactory: return LlamaFactoryReader.self
        case .swift: return SwiftReader.self
        case .realignRelease: return ReAlignReleaseReader.self
        case .mdpo: return MDPOReader.self
        }
    }
}

extension JSONValue {
    /// `key`'s value, or an error saying this is not a `format` record.
    func required(_ key: String, _ format: PreferenceFormat) throws -> JSONValue {
        guard let v = self[key] else { throw PreferenceDataError("no '\(key)': not a \(format.rawValue) record") }
        return v
    }
}

/// ReAlign's own `{"id","prompt","chosen","rejected","image","retrieved_image"}` and TRL's standard and
/// conversational forms (`prompt`/`chosen`/`rejected` as text or message lists, `images`). ReAlign's extra keys
/// (how build-prefs made the pair) are kept as provenance.
enum ReAlignReader: PreferenceRecordReader {
    static let pairKeys = ["id", "prompt", "chosen", "rejected", "image", "images", "image_path", "retrieved_image", "system"]

    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair {
        var r = RawPair()
        let prompt = try PreferenceData.turnText(try json.required("prompt", format), role: "user")
        r.prompt = prompt.text
        r.placeholders = prompt.imageParts
        r.system = json["prompt"]?.arrayValue != nil ? try PreferenceData.turnText(json["prompt"], role: "system").text : json["system"]?.stringValue
        r.chosen = try PreferenceData.turnText(try json.required("chosen", format), role: "assistant").text
        r.rejected = try PreferenceData.turnText(json["rejected"], role: "assistant").text
        r.retrievedImage = json["retrieved_image"]?.stringValue
        r.images = json["images"]?.arrayValue?.compactMap { $0.stringValue ?? $0["path"]?.stringValue } ?? []
        if let one = json["image"]?.stringValue ?? json["image_path"]?.stringValue { r.images = [one] }
        r.keepPlaceholders = true
        r.provenance = .object((json.objectValue ?? []).filter { key, _ in !pairKeys.contains { Array($0.utf8) == Array(key.utf8) } })
        return r
    }
}

/// LLaMA-Factory's ShareGPT preference records (`conversations`, `chosen`/`rejected` {from, value}, `images`) or
/// its alpaca ranking form, with the keys and tags its dataset_info.json entry names (its DatasetAttr defaults
/// otherwise).
enum LlamaFactoryReader: PreferenceRecordReader {
    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair {
        var r = RawPair()
        let info = datasetInfo ?? DatasetInfoEntry(file: "", formatting: json["conversations"] == nil && json["instruction"] != nil ? "alpaca" : "sharegpt",
                                                   columns: [:], tags: [:])
        let chosenKey = info.column("chosen"), rejectedKey = info.column("rejected")
        if info.formatting == "alpaca" {
            let instruction = json[info.columns["prompt"] ?? "instruction"]?.stringValue ?? ""
            let input = json[info.columns["query"] ?? "input"]?.stringValue ?? ""
            r.prompt = input.isEmpty ? instruction : instruction + "\n" + input  // LLaMA-Factory's join
            r.system = json[info.column("system")]?.stringValue
            r.chosen = json[chosenKey]?.stringValue
            r.rejected = json[rejectedKey]?.stringValue
        } else {
            let messagesKey = info.columns["messages"] ?? "conversations"
            guard let turns = json[messagesKey]?.arrayValue else { throw PreferenceDataError("no '\(messagesKey)': not a llamafactory record") }
            let role = info.tag("role_tag", "from"), content = info.tag("content_tag", "value")
            let user = info.tag("user_tag", "human"), systemTag = info.tag("system_tag", "system")
            let nonSystem = turns.filter { $0[role]?.stringValue != systemTag }
            guard nonSystem.count == 1, let turn = nonSystem.first, [user, "user"].contains(turn[role]?.stringValue ?? "") else {
                throw PreferenceDataError("\(nonSystem.count) turns in '\(messagesKey)': one \(user) turn per record is supported (multi-turn records are refused, not cut)")
            }
            r.prompt = turn[content]?.stringValue
            r.system = turns.first { $0[role]?.stringValue == systemTag }?[content]?.stringValue ?? json[info.column("system")]?.stringValue
            r.chosen = json[chosenKey]?[content]?.stringValue ?? json[chosenKey]?.stringValue
            r.rejected = json[rejectedKey]?[content]?.stringValue ?? json[rejectedKey]?.stringValue
        }
        r.images = json[info.column("images")]?.arrayValue?.compactMap(\.stringValue) ?? []
        r.retrievedImage = json["retrieved_image"]?.stringValue  // ours, kept by `prefs convert` (LLaMA-Factory has no such column)
        return r
    }
}

/// ms-swift's `messages` ending with the chosen reply, `rejected_response`, `images`, `rejected_images`.
enum SwiftReader: PreferenceRecordReader {
    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair {
        var r = RawPair()
        guard let messages = try json.required("messages", format).arrayValue else { throw PreferenceDataError("'messages' is not a list") }
        let turns = messages.filter { $0["role"]?.stringValue != "system" }
        guard turns.count == 2, turns[0]["role"]?.stringValue == "user", turns[1]["role"]?.stringValue == "assistant" else {
            throw PreferenceDataError("'messages' must be one user turn and the chosen assistant turn (\(turns.count) turns here; multi-turn records are refused, not cut)")
        }
        let user = try PreferenceData.turnText(turns[0]["content"], role: "user")
        r.prompt = user.text
        r.placeholders = user.imageParts
        r.system = messages.first { $0["role"]?.stringValue == "system" }?["content"]?.stringValue
        r.chosen = try PreferenceData.turnText(turns[1]["content"], role: "assistant").text
        r.rejected = try PreferenceData.turnText(try json.required("rejected_response", format), role: "assistant").text
        r.images = json["images"]?.arrayValue?.compactMap { $0.stringValue ?? $0["path"]?.stringValue } ?? []
        let negatives = json["rejected_images"]?.arrayValue?.compactMap { $0.stringValue ?? $0["path"]?.stringValue } ?? []
        guard negatives.count <= 1 else { throw PreferenceDataError("\(negatives.count) rejected_images; one per record is supported") }
        // `rejected_images` is ms-swift's image-side negative (read as rdpo's retrieved image); our own export
        // writes `retrieved_image` instead, which ms-swift ignores.
        r.retrievedImage = negatives.first ?? json["retrieved_image"]?.stringValue
        return r
    }
}

/// The Re-Align release's `pref_data.json`: `chosen` / `rejected` as whole [user, assistant] conversations sharing
/// their user turn (TRL's implicit-prompt form too, which its extract_prompt splits the same way).
enum ReAlignReleaseReader: PreferenceRecordReader {
    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair {
        func split(_ key: String) throws -> (user: String?, answer: String?, imageParts: Int) {
            guard let turns = try json.required(key, format).arrayValue else { throw PreferenceDataError("'\(key)' is not a message list") }
            let users = turns.filter { $0["role"]?.stringValue == "user" }, answers = turns.filter { $0["role"]?.stringValue == "assistant" }
            guard users.count == 1, answers.count == 1 else {
                throw PreferenceDataError("'\(key)' has \(users.count) user and \(answers.count) assistant turns: one of each is supported (multi-turn records are refused, not cut)")
            }
            let user = PreferenceData.content(users[0]["content"])
            return (user.text, PreferenceData.content(answers[0]["content"]).text, user.imageParts)
        }
        let c = try split("chosen"), rj = json["rejected"] == nil ? (user: c.user, answer: nil, imageParts: 0) : try split("rejected")
        guard c.user.map({ Array($0.unicodeScalars) }) == rj.user.map({ Array($0.unicodeScalars) }) else {
            throw PreferenceDataError("the chosen and rejected conversations ask different questions")
        }
        var r = RawPair()
        r.prompt = c.user
        r.placeholders = c.imageParts
        r.chosen = c.answer
        r.rejected = rj.answer
        r.images = json["image"]?.stringValue.map { [$0] } ?? json["images"]?.arrayValue?.compactMap(\.stringValue) ?? []
        r.retrievedImage = json["retrieved_image"]?.stringValue
        return r
    }
}

/// mDPO's `img_path`, `prompt` as the whole rendered vicuna prompt ("... USER: <image>\n... ASSISTANT:").
enum MDPOReader: PreferenceRecordReader {
    static func read(_ json: JSONValue, format: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws -> RawPair {
        guard let rendered = try json.required("prompt", format).stringValue else { throw PreferenceDataError("'prompt' is not a string") }
        let parsed = try PreferenceData.renderedVicuna(rendered)
        var r = RawPair()
        r.prompt = parsed.user
        r.system = parsed.system
        r.chosen = json["chosen"]?.stringValue
        r.rejected = json["rejected"]?.stringValue
        r.images = json["img_path"]?.stringValue.map { [$0] } ?? []
        return r
    }
}
