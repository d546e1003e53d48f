import Foundation
import Images
import JSON
import Testing
@testable import Alignment

/// LLaMA-Factory's and ms-swift's preference records (`tools/reference/make_format_fixtures.py`, their documented
/// forms) read unchanged: the same pairs as the ReAlign form, image placeholders checked and left to the chat
/// format, ms-swift's rejected_images as rdpo's retrieved image, and what cannot be read refused with its position.
@Suite struct PreferenceFormatTests {
    let folder = alignmentFixture("formats")

    @Test func llamaFactoryShareGPTArrays() throws {
        let (records, problems) = try PreferenceData.load(folder + "/llamafactory_dpo.json")
        #expect(records.count == 2)
        #expect(records.map(\.prompt) == ["What is in the picture?", "Describe the image."])
        #expect(records.map(\.chosen) == ["A red circle on a white background.", "Two green triangles."])
        #expect(records.map(\.rejected) == ["A red circle next to a blue square.", "Three green triangles and a cat."])
        #expect(records.map(\.image) == [folder + "/images/a.png", folder + "/images/b.png"])
        #expect(records.map(\.line) == [1, 2], "records are numbered by their place in the array")
        #expect(problems.map(\.line) == [3, 4])
        #expect(problems[0].message.contains("2 image placeholder(s) in the prompt for 1 image(s)"), "\(problems[0])")
        #expect(problems[1].message.contains("multi-turn"), "\(problems[1])")
    }

    @Test func msSwiftMessages() throws {
        let (records, problems) = try PreferenceData.load(folder + "/swift_dpo.jsonl")
        #expect(records.map(\.prompt) == ["What is in the picture?", "How many triangles?"])
        #expect(records.map(\.chosen) == ["A red circle on a white background.", "Two."])
        #expect(records.map(\.rejected) == ["A red circle next to a blue square.", "Three."])
        #expect(records.map(\.retrievedImage) == [nil, folder + "/images/a.png"])
        #expect(problems.map(\.line) == [3, 4])
        #expect(problems[0].message.contains("multi-turn"))
        #expect(problems[1].message.contains("1 image placeholder(s) in the prompt for 0 image(s)"))
    }

    /// TRL's conversational vision form, as its extract_prompt and `datasets` write it (image parts with
    /// "text": null, escaped slashes): image parts counted against `images`, system turns kept, multi-turn refused.
    @Test func trlVisionConversations() throws {
        let (records, problems) = try PreferenceData.load(folder + "/trl_vision.jsonl")
        #expect(records.map(\.prompt) == ["What is in the picture?", "How many triangles? "])
        #expect(records.map(\.chosen) == ["A red circle on a white background.", "Two."])
        #expect(records.map(\.rejected) == ["A red circle next to a blue square.", "Three."])
        #expect(records.map(\.system) == [nil, "Answer briefly."])
        #expect(records.map(\.image) == [folder + "/images/a.png", folder + "/images/b.png"])
        #expect(problems.map(\.line) == [3, 4])
        #expect(problems[0].message.contains("2 image placeholder(s) in the prompt for 1 image(s)"), "\(problems[0])")
        #expect(problems[1].message.contains("multi-turn"), "\(problems[1])")
    }

    /// The Re-Align release's pref_data.json (images relative to the image folder) and mDPO's rendered prompts.
    @Test func reAlignReleaseAndMDPO() throws {
        let (records, problems) = try PreferenceData.load(folder + "/realign_pref_data.json", imageRoot: "/data/train2014")
        #expect(records.map(\.id) == ["coco-1", "coco-2"])
        #expect(records.map(\.prompt) == ["What is in the picture?", "How many triangles?"])
        #expect(records.map(\.rejected) == ["A red circle next to a blue square.", "Three."])
        #expect(records.map(\.image) == ["/data/train2014/a.png", "/data/train2014/b.png"])
        #expect(records.map(\.retrievedImage) == ["/data/train2014/b.png", "/data/train2014/a.png"])
        #expect(problems.map(\.line) == [3] && problems[0].message.contains("different questions"))

        let mdpo = try PreferenceData.load(folder + "/mdpo_data.json")
        #expect(mdpo.records.map(\.prompt) == ["What is in the picture?", "How many triangles?"])
        #expect(mdpo.records.map(\.chosen) == ["A red circle on a white background.", "Two."])
        #expect(mdpo.records.allSatisfy { $0.system?.hasPrefix("A chat between a curious user") == true })
        #expect(mdpo.records.map(\.image) == [folder + "/images/a.png", folder + "/images/b.png"])
        #expect(mdpo.problems.map(\.line) == [3] && mdpo.problems[0].message.contains("after 'ASSISTANT:'"))
    }

    /// LLaMA-Factory's dataset_info.json: its column and tag mappings (alpaca ranking, OpenAI-style sharegpt),
    /// and entries that cannot be trained on named as such.
    @Test func llamaFactoryDatasetInfo() throws {
        let info = folder + "/llamafactory/dataset_info.json"
        let alpaca = try DatasetInfoEntry.load(info, name: "alpaca_dpo")
        #expect(alpaca.file == folder + "/llamafactory/alpaca_dpo.json" && alpaca.formatting == "alpaca")
        let a = try PreferenceData.load(alpaca.file, datasetInfo: alpaca)
        #expect(a.problems.isEmpty)
        #expect(a.records.map(\.prompt) == ["Describe the image.\nBe brief."])
        #expect(a.records.map(\.image) == [folder + "/llamafactory/images/b.png"])
        let openai = try DatasetInfoEntry.load(info, name: "openai_dpo")
        let o = try PreferenceData.load(openai.file, datasetInfo: openai)
        #expect(o.problems.isEmpty)
        #expect(o.records.map(\.prompt) == ["What is in the picture?"] && o.records.map(\.system) == ["You are careful."])
        #expect(o.records.map(\.chosen) == ["A red circle on a white background."])
        #expect(o.records.map(\.image) == [folder + "/llamafactory/images/a.png"])
        #expect(performing: { _ = try DatasetInfoEntry.load(info, name: "not_ranking") }, throws: { "\($0)".contains("not a preference dataset") })
        #expect(performing: { _ = try DatasetInfoEntry.load(info, name: "nope") }, throws: { "\($0)".contains("no dataset 'nope'") })
        // The older dataset_info.json beside the ShareGPT fixture reads as the auto-detected file does.
        let shapes = try DatasetInfoEntry.load(folder + "/dataset_info.json", name: "shapes_dpo")
        #expect(try PreferenceData.load(shapes.file, datasetInfo: shapes).records == PreferenceData.load(shapes.file).records)
    }

    /// --format insists on one form: a record in another is reported, not guessed.
    @Test func anExplicitFormatRefusesOtherForms() throws {
        let (records, problems) = try PreferenceData.load(folder + "/swift_dpo.jsonl", format: .llamafactory)
        #expect(records.isEmpty && problems.count == 4)
        #expect(problems[0].message.contains("no 'conversations'"), "\(problems[0])")
    }

    /// `prefs convert` output read back gives the same records, for every form, from every form.
    @Test(arguments: PreferenceExport.Format.allCases)
    func conversionRoundTrips(_ target: PreferenceExport.Format) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("convert-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for source in ["/llamafactory_dpo.json", "/swift_dpo.jsonl", "/trl_vision.jsonl", "/mdpo_data.json", "/parquet/rlaif_v/prefs.jsonl"] {
            let original = try PreferenceData.load(folder + source).records
            for ext in ["json", "jsonl"] {
                let out = "\(dir)/out.\(ext)"
                try PreferenceExport.write(original, as: target, to: out)
                let (back, problems) = try PreferenceData.load(out)
                #expect(problems.isEmpty, "\(source) -> \(target): \(problems)")
                // Compared by bytes (String == would equate canonically equivalent texts).
                func fields(_ r: PreferenceRecord) -> [String] {
                    [r.id, r.prompt, r.chosen, r.rejected ?? "-", r.image ?? "-", r.retrievedImage ?? "-", r.system ?? "-"]
                }
                let same = back.map { fields($0).map { Array($0.utf8) } } == original.map { fields($0).map { Array($0.utf8) } }
                #expect(same && !original.isEmpty, "\(source) -> \(target) (\(ext)): \(back.map(fields)) vs \(original.map(fields))")
            }
        }
    }

    /// Sets published as Parquet (RLAIF-V, VLFeedback), exported by tools/export_hf_preferences.py: the pairs and
    /// image bytes equal what tools/reference/make_parquet_fixtures.py wrote into its Parquet files (expected.json,
    /// from its own rows, not from the exporter).
    @Test(arguments: ["rlaif_v", "vlfeedback"])
    func parquetExportsLoadToTheirPairs(_ set: String) throws {
        let dir = folder + "/parquet"
        let expected = try #require(try JSONValue.parse(contentsOf: dir + "/expected.json")[set]?.arrayValue)
        let (records, problems) = try PreferenceData.load("\(dir)/\(set)/prefs.jsonl")
        #expect(problems.isEmpty)
        #expect(records.count == expected.count && !records.isEmpty)
        for (r, e) in zip(records, expected) {
            #expect(Array(r.id.utf8) == Array((e["id"]?.stringValue ?? "").utf8))
            #expect(Array(r.prompt.unicodeScalars) == Array((e["prompt"]?.stringValue ?? "").unicodeScalars))
            #expect(Array(r.chosen.unicodeScalars) == Array((e["chosen"]?.stringValue ?? "").unicodeScalars))
            #expect(Array((r.rejected ?? "").unicodeScalars) == Array((e["rejected"]?.stringValue ?? "").unicodeScalars))
            #expect(try sha256(r.image!) == e["image_sha256"]?.stringValue, "\(r.id): image bytes")
            #expect(throws: Never.self) { _ = try RGBImage(contentsOfFile: r.image!) }
        }
    }

    /// coreutils' sha256sum (Foundation on Linux has no digest).
    func sha256(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    /// ReAlign's own prompts keep their placeholder (the trainer places the image there), yet a placeholder with
    /// no image is refused; a broken JSON array is one clear error.
    @Test func placeholdersInOurFormAndBrokenArrays() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("formats-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        {"id": "a", "prompt": "<image>\\nDescribe.", "chosen": "x", "rejected": "y", "image": "a.png"}
        {"id": "b", "prompt": "<image>\\nDescribe.", "chosen": "x", "rejected": "y"}
        {"prompt": "Describe.", "completion": "x", "label": true, "images": ["a.png"]}
        """.write(toFile: dir + "/p.jsonl", atomically: true, encoding: .utf8)
        let (records, problems) = try PreferenceData.load(dir + "/p.jsonl")
        #expect(records.map(\.prompt) == ["<image>\nDescribe."])
        #expect(problems.map(\.line) == [2, 3])
        #expect(problems[1].message.contains("unpaired KTO record"))
        try "[{\"prompt\": 1},".write(toFile: dir + "/broken.json", atomically: true, encoding: .utf8)
        #expect { try PreferenceData.load(dir + "/broken.json") } throws: { "\($0)".contains("not a valid JSON array") }
    }
}
