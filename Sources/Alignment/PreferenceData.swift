import Common
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
    /// A system prompt the record carried (LLaMA-Factory / ms-swift / TRL system turns). Kept for conversion; the
    /// trainer uses the model's chat format, which has its own.
    public var system: String? = nil
    /// 1-based line in the JSONL file (or place in the JSON array).
    public var line: Int
    /// How the pair was made, as build-prefs records it (masked, similarity, retrieval_rank, retrieval_score;
    /// VaPR's category, substitutions, length_gap, levenshtein): kept in ReAlign's own form, an object.
    public var provenance: JSONValue = .object([])

    public init(id: String, prompt: String, chosen: String, rejected: String?, image: String?, retrievedImage: String?,
                system: String? = nil, line: Int, provenance: JSONValue = .object([])) {
        self.id = id
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.image = image
        self.retrievedImage = retrievedImage
        self.system = system
        self.line = line
        self.provenance = provenance
    }
}

/// A record that could not be used, with its line and the reason.
public typealias RecordProblem = LineProblem

/// The record forms the reader takes; `auto` tells them apart record by record by their keys.
public enum PreferenceFormat: String, CaseIterable, Sendable {
    case auto
    /// `{"id","prompt","chosen","rejected","image","retrieved_image"}` (ReAlign's own).
    case realign
    /// TRL's standard and conversational preference forms: `prompt`, `chosen`, `rejected` as strings or message
    /// lists (content as a string or `{"type":"text"|"image"}` parts), `images` [...].
    case trl
    /// LLaMA-Factory's ShareGPT preference records (`conversations`, `chosen`/`rejected` {from, value}, `images`)
    /// or its alpaca ranking form (`instruction`, `input`, `chosen`, `rejected`, `images`).
    case llamafactory
    /// ms-swift's `messages` ending with the chosen reply, `rejected_response`, `images`, `rejected_images`.
    case swift
    /// The Re-Align release's `pref_data.json`: `image`, `retrieved_image`, `chosen` / `rejected` as [user,
    /// assistant] message lists (images relative to the image folder: pass --image-root).
    case realignRelease = "realign-release"
    /// mDPO's `img_path`, `prompt` as the whole rendered vicuna prompt ("... USER: <image>\n... ASSISTANT:").
    case mdpo
}

/// A LLaMA-Factory `dataset_info.json` entry: which file, which form, and which keys hold what.
public struct DatasetInfoEntry: Sendable {
    public var file: String
    public var formatting: String  // "sharegpt" or "alpaca"
    /// Our name -> the file's key: messages, chosen, rejected, images, system, prompt, query.
    public var columns: [String: String]
    /// ShareGPT tags: role_tag, content_tag, user_tag, assistant_tag, system_tag.
    public var tags: [String: String]

    func column(_ name: String) -> String { columns[name] ?? name }
    func tag(_ name: String, _ fallback: String) -> String { tags[name] ?? fallback }

    /// Reads entry `name` of `dataset_info.json` at `path`; `file_name` is relative to its folder.
    public static func load(_ path: String, name: String) throws -> DatasetInfoEntry {
        let info = try JSONValue.parse(contentsOf: path)
        guard let entries = info.objectValue else { throw PreferenceDataError("\(path): not a JSON object of datasets") }
        guard let entry = entries.first(where: { Array($0.0.utf8) == Array(name.utf8) })?.1 else {
            throw PreferenceDataError("\(path): no dataset '\(name)' (it has \(entries.map(\.0).joined(separator: ", ")))")
        }
        guard let file = entry["file_name"]?.stringValue else {
            throw PreferenceDataError("\(path): '\(name)' has no file_name (hub and script datasets: export them first, README)")
        }
        guard entry["ranking"]?.boolValue == true else {
            throw PreferenceDataError("\(path): '\(name)' is not a preference dataset (\"ranking\": true)")
        }
        let formatting = entry["formatting"]?.stringValue ?? "alpaca"
        guard formatting == "sharegpt" || formatting == "alpaca" else {
            throw PreferenceDataError("\(path): '\(name)': formatting '\(formatting)' (sharegpt and alpaca are read)")
        }
        func strings(_ key: String) -> [String: String] {
            Dictionary((entry[key]?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
        }
        let folder = (path as NSString).deletingLastPathComponent
        return DatasetInfoEntry(file: file.hasPrefix("/") ? file : (folder as NSString).appendingPathComponent(file),
                                formatting: formatting, columns: strings("columns"), tags: strings("tags"))
    }
}

/// Reads preference data, JSONL or a JSON array of records, in the forms of `PreferenceFormat`. `<image>`
/// placeholders (and TRL's `{"type":"image"}` parts) are counted against the images — the "image features and
/// image tokens do not match" those tools fail with, caught here with the record's position — and then left to
/// the chat format, except in ReAlign's own prompts, where the trainer places the image at the placeholder. A
/// record with several images or several user turns is refused with its position, never cut.
public enum PreferenceData {
    public static func load(_ path: String, imageRoot: String? = nil, requireRejected: Bool = true, format: PreferenceFormat = .auto,
                            datasetInfo: DatasetInfoEntry? = nil) throws -> (records: [PreferenceRecord], problems: [RecordProblem])
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PreferenceDataError("\(path): cannot read")
        }
        let base = imageRoot ?? (path as NSString).deletingLastPathComponent
        var records: [PreferenceRecord] = []
        var problems: [RecordProblem] = []
        var seen = Set<String>()
        func take(_ json: JSONValue, _ number: Int) {
            func problem(_ reason: String) { problems.append(RecordProblem(file: path, line: number, message: reason)) }
            guard json.objectValue != nil else { problem("not a JSON object"); return }
            let fields: Fields
            do { fields = try Fields(json, format: format, datasetInfo: datasetInfo) } catch { problem("\(error)"); return }
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
                                            image: resolve(fields.image), retrievedImage: resolve(fields.retrievedImage),
                                            system: fields.system, line: number, provenance: fields.provenance))
        }
        let bytes = [UInt8](data)
        if let first = bytes.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }), first == UInt8(ascii: "[") {
            // A JSON array (LLaMA-Factory's, ms-swift's, Re-Align's and mDPO's usual files): records are numbered
            // from 1 in it.
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
        let lines = JSONLines(data: data, path: path)
        for (number, json) in lines.records { take(json, number) }
        // Problems in file order: the lines that are not JSON objects among the records that could not be used.
        problems = (problems + lines.issues).sorted { $0.line < $1.line }
        return (records, problems)
    }

    /// The form a record is in, told by its keys.
    static func detect(_ json: JSONValue, datasetInfo: DatasetInfoEntry?) -> PreferenceFormat {
        if datasetInfo != nil { return .llamafactory }
        if json["conversations"] != nil || (json["instruction"] != nil && json["prompt"] == nil) { return .llamafactory }
        if json["messages"] != nil && json["rejected_response"] != nil { return .swift }
        if json["img_path"] != nil { return .mdpo }
        if json["prompt"] == nil, let turns = json["chosen"]?.arrayValue, turns.contains(where: { $0["role"]?.stringValue == "user" }) {
            return .realignRelease
        }
        if json["images"] != nil || json["prompt"]?.arrayValue != nil || json["chosen"]?.arrayValue != nil { return .trl }
        return .realign
    }

    /// One record's fields, whichever tool's form it is in: the form's reader takes them out, then the checks
    /// every form shares (one image, placeholders against images, empty texts as absent).
    struct Fields {
        var prompt: String?
        var chosen: String?
        var rejected: String?
        var image: String?
        var retrievedImage: String?
        var system: String?
        var provenance: JSONValue = .object([])

        init(_ json: JSONValue, format requested: PreferenceFormat, datasetInfo: DatasetInfoEntry?) throws {
            let format = requested == .auto ? PreferenceData.detect(json, datasetInfo: datasetInfo) : requested
            if json["completion"] != nil && json["label"] != nil && json["chosen"] == nil {
                throw PreferenceDataError("an unpaired KTO record (prompt, completion, label): only pairs are read (kto takes each pair as a desirable and an undesirable example)")
            }
            let raw = try format.reader.read(json, format: format, datasetInfo: datasetInfo)
            system = raw.system
            chosen = raw.chosen
            rejected = raw.rejected
            retrievedImage = raw.retrievedImage
            provenance = raw.provenance
            guard raw.images.count <= 1 else { throw PreferenceDataError("\(raw.images.count) images; one image per record is supported") }
            image = raw.images.first
            if var text = raw.prompt {
                let placeholders = raw.placeholders + text.components(separatedBy: "<image>").count - 1
                if placeholders > 0 {
                    guard placeholders == raw.images.count else {
                        throw PreferenceDataError("\(placeholders) image placeholder(s) in the prompt for \(raw.images.count) image(s)")
                    }
                    if !raw.keepPlaceholders {
                        // The placeholder and its own line break go; the text's own spacing stays.
                        text = text.replacingOccurrences(of: "<image>\n", with: "").replacingOccurrences(of: "\n<image>", with: "")
                            .replacingOccurrences(of: "<image>", with: "")
                    }
                }
                prompt = text.isEmpty ? nil : text
            }
            if chosen?.isEmpty == true { chosen = nil }
            if rejected?.isEmpty == true { rejected = nil }
            if system?.isEmpty == true { system = nil }
        }
    }

    /// A string, or the text of the one turn with `role` in a message list (content a string or a list of
    /// {"type": "text", "text": ...} / {"type": "image"} parts; image parts are counted). Several turns with the
    /// role are refused: multi-turn records are not cut to their last turn.
    static func turnText(_ value: JSONValue?, role: String) throws -> (text: String?, imageParts: Int) {
        guard let value else { return (nil, 0) }
        if let s = value.stringValue { return (s.isEmpty ? nil : s, 0) }
        if let parts = value.arrayValue, parts.allSatisfy({ $0["type"] != nil }) { return content(.array(parts)) }
        guard let turns = value.arrayValue else { return (nil, 0) }
        let matching = turns.filter { $0["role"]?.stringValue == role || ($0["role"] == nil && role != "system") }
        guard matching.count <= 1 else {
            throw PreferenceDataError("\(matching.count) \(role) turns: one per record is supported (multi-turn records are refused, not cut)")
        }
        return matching.first.map { content($0["content"]) } ?? (nil, 0)
    }

    static func content(_ value: JSONValue?) -> (text: String?, imageParts: Int) {
        if let s = value?.stringValue { return (s.isEmpty ? nil : s, 0) }
        let parts = value?.arrayValue ?? []
        let text = parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
        let images = parts.filter { $0["type"]?.stringValue == "image" || $0["type"]?.stringValue == "image_url" }.count
        return (text.isEmpty ? nil : text, images)
    }

    /// mDPO's prompts are the rendered LLaVA / vicuna prompt: "[system ]USER: <question> ASSISTANT:".
    static func renderedVicuna(_ rendered: String) throws -> (system: String?, user: String) {
        let scalars = Array(rendered.unicodeScalars)
        func find(_ marker: String, from: Int = 0) -> Int? {
            let m = Array(marker.unicodeScalars)
            guard scalars.count - m.count >= from else { return nil }
            return (from...(scalars.count - m.count)).first { Array(scalars[$0..<($0 + m.count)]) == m }
        }
        guard let user = find("USER:"), let assistant = find("ASSISTANT:", from: user), find("USER:", from: user + 5) == nil else {
            throw PreferenceDataError("the prompt is not one rendered 'USER: ... ASSISTANT:' turn")
        }
        let tail = String(String.UnicodeScalarView(scalars[(assistant + 10)...])).trimmingCharacters(in: .whitespacesAndNewlines)
        guard tail.isEmpty else { throw PreferenceDataError("text after 'ASSISTANT:' in the prompt (a started answer is not supported)") }
        let system = String(String.UnicodeScalarView(scalars[..<user])).trimmingCharacters(in: .whitespacesAndNewlines)
        let question = String(String.UnicodeScalarView(scalars[(user + 5)..<assistant])).trimmingCharacters(in: .whitespacesAndNewlines)
        return (system.isEmpty ? nil : system, question)
    }
}

public struct PreferenceDataError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where preference data comes from: a file in some form, or an entry of LLaMA-Factory's dataset_info.json.
public struct PreferenceSource: Sendable {
    public var path: String
    public var format: PreferenceFormat
    public var datasetInfo: DatasetInfoEntry?

    public init(path: String, format: String, dataset: String?, formatFlag: String = "--format") throws {
        guard let f = PreferenceFormat(rawValue: format) else {
            throw PreferenceDataError("\(formatFlag) must be one of \(PreferenceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.format = f
        if (path as NSString).lastPathComponent == "dataset_info.json" {
            guard let dataset else { throw PreferenceDataError("\(path) is LLaMA-Factory's dataset list: name the entry with --dataset") }
            datasetInfo = try DatasetInfoEntry.load(path, name: dataset)
            self.path = datasetInfo!.file
            if f != .auto && f != .llamafactory { throw PreferenceDataError("a dataset_info.json entry is read as llamafactory (\(formatFlag) \(format) given)") }
        } else {
            if dataset != nil { throw PreferenceDataError("--dataset names an entry of a dataset_info.json --data/--input") }
            self.path = path
        }
    }
}
