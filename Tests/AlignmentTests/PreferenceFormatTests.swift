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
        #expect(problems[0].reason.contains("2 <image> placeholder(s) in the prompt for 1 image(s)"), "\(problems[0])")
        #expect(problems[1].reason.contains("multi-turn"), "\(problems[1])")
    }

    @Test func msSwiftMessages() throws {
        let (records, problems) = try PreferenceData.load(folder + "/swift_dpo.jsonl")
        #expect(records.map(\.prompt) == ["What is in the picture?", "How many triangles?"])
        #expect(records.map(\.chosen) == ["A red circle on a white background.", "Two."])
        #expect(records.map(\.rejected) == ["A red circle next to a blue square.", "Three."])
        #expect(records.map(\.retrievedImage) == [nil, folder + "/images/a.png"])
        #expect(problems.map(\.line) == [3, 4])
        #expect(problems[0].reason.contains("multi-turn"))
        #expect(problems[1].reason.contains("1 <image> placeholder(s) in the prompt for 0 image(s)"))
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
        """.write(toFile: dir + "/p.jsonl", atomically: true, encoding: .utf8)
        let (records, problems) = try PreferenceData.load(dir + "/p.jsonl")
        #expect(records.map(\.prompt) == ["<image>\nDescribe."])
        #expect(problems.map(\.line) == [2])
        try "[{\"prompt\": 1},".write(toFile: dir + "/broken.json", atomically: true, encoding: .utf8)
        #expect { try PreferenceData.load(dir + "/broken.json") } throws: { "\($0)".contains("not a valid JSON array") }
    }
}
