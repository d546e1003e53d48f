import Foundation
import Testing
import TestSupport
@testable import Alignment

/// A preference file as messy data gives it: good records mixed with missing, truncated, garbage and bomb images,
/// and files that break while the run goes on. Training reaches the end on the good records and names each bad one.
@Suite(.serialized) struct BadImageTrainingTests {
    static let images = ["0-red-circle.png", "1-blue-square.png", "2-green-circle.png", "3-yellow-square.png", "4-purple-triangle.png", "5-red-square.png"]
    static let bomb = repositoryRoot.appendingPathComponent("Tests/ImagesTests/Fixtures/bad/bomb_16000x16000.png").path

    /// A folder with copies of the fixture images (the tests break them) and a pairs file; returns (folder, file).
    func messyData(extra: [(image: String, retrieved: String)] = []) throws -> (String, String) {
        let folder = temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
        for name in Self.images { try fm.copyItem(atPath: alignmentFixture("prefs/images/\(name)"), toPath: "\(folder)/images/\(name)") }
        var lines: [String] = []
        for i in 0..<4 {
            lines.append(#"{"id": "good\#(i)", "image": "images/\#(Self.images[i])", "retrieved_image": "images/\#(Self.images[i + 1])", "prompt": "Describe the shape.", "chosen": "A shape as it is.", "rejected": "Another shape."}"#)
        }
        for (k, e) in extra.enumerated() {
            lines.append(#"{"id": "bad\#(k)", "image": "\#(e.image)", "retrieved_image": "\#(e.retrieved)", "prompt": "Describe the shape.", "chosen": "A shape as it is.", "rejected": "Another shape."}"#)
        }
        let file = folder + "/pairs.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return (folder, file)
    }

    func options() -> TrainingOptions {
        var o = smallOptions(.rdpo)
        o.steps = 3
        o.batchSize = 1
        o.gradientAccumulation = 2
        o.checkpointEvery = 1
        return o
    }

    @Test func badImagesAreReportedWithTheirLinesAndTheRestTrains() throws {
        let (folder, file) = try messyData(extra: [
            ("images/missing.png", "images/1-blue-square.png"),
            ("images/truncated.png", "images/1-blue-square.png"),
            ("images/garbage.png", "images/1-blue-square.png"),
            ("images/bomb.png", "images/1-blue-square.png"),
            ("images/2-green-circle.png", "images/bomb.png"),
        ])
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/images/0-red-circle.png"))
        try png.prefix(60).write(to: URL(fileURLWithPath: folder + "/images/truncated.png"))
        try Data((0..<500).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: folder + "/images/garbage.png"))
        try FileManager.default.copyItem(atPath: Self.bomb, toPath: folder + "/images/bomb.png")
        let out = temporaryFolder()
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: out, options: options())
        let problems = trainer.allProblems
        #expect(problems.map(\.line) == [5, 6, 7, 8, 9])
        #expect(problems.allSatisfy { $0.file == file })
        #expect(problems[0].message.contains("missing.png: no such file"))
        #expect(problems[1].message.contains("truncated.png"))
        #expect(problems[2].message.contains("garbage.png") && problems[2].message.contains("not a JPEG or PNG"))
        #expect(problems[3].message.contains("16000x16000") && problems[3].message.hasPrefix("image: "))
        #expect(problems[4].message.hasPrefix("retrieved image: ") && problems[4].message.contains("bomb.png"))
        #expect(trainer.totalRecords == 4)
        #expect(PreferenceTrainer.summary(problems, kept: 4) == "skipped 5 of 9 records: 5 with an image that does not decode; training on 4")
        try trainer.run(resume: false)
        #expect(FileManager.default.fileExists(atPath: out + "/adapter/adapter_model.safetensors"))
        #expect(try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count == 3)
        // The verdicts are cached: a second load decodes nothing that did not change, and gives the same report.
        let again = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: out, options: options())
        #expect(again.allProblems == problems)
    }

    @Test func anImageThatBreaksDuringTheRunSkipsItsRecordAndTheRunGoesOn() throws {
        let (folder, file) = try messyData()
        let out = temporaryFolder()
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: out, options: options())
        var warnings: [String] = []
        trainer.warn = { warnings.append($0) }
        // After the check: truncated on disk, as a sync gone wrong leaves it.
        let path = "\(folder)/images/\(Self.images[2])"
        try Data(contentsOf: URL(fileURLWithPath: path)).prefix(40).write(to: URL(fileURLWithPath: path))
        try trainer.run(resume: false)
        #expect(FileManager.default.fileExists(atPath: out + "/adapter/adapter_model.safetensors"))
        // good2 uses it as its image and good1 as its retrieved image: both are skipped, each once, with its line.
        #expect(trainer.skippedDuringRun.count == 2)
        #expect(warnings == trainer.skippedDuringRun)
        #expect(Set(warnings.map { $0.components(separatedBy: ": ")[0] }) == ["\(file):2", "\(file):3"])
        #expect(warnings.allSatisfy { $0.contains(Self.images[2]) })
    }

    @Test func whenNoRecordIsLeftTheRunStopsWithAClearError() throws {
        let (folder, file) = try messyData()
        let trainer = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: temporaryFolder(), options: options())
        for name in Self.images { try FileManager.default.removeItem(atPath: "\(folder)/images/\(name)") }
        let error = #expect(throws: (any Error).self) { try trainer.run(resume: false) }
        #expect(error.map { "\($0)".contains("no usable record is left") } == true)
    }

    /// Killed after step 1, an image broken, resumed: the run keeps its plan (same order, same checkpoint) and
    /// skips the broken record as it comes.
    @Test func aResumedRunKeepsItsPlanWhenAnImageBrokeMeanwhile() throws {
        let (folder, file) = try messyData()
        let out = temporaryFolder()
        #expect(throws: Interrupted.self) {
            try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: out, options: options()).run(resume: false) { r in
                if r.step == 1 { throw Interrupted() }
            }
        }
        try FileManager.default.removeItem(atPath: "\(folder)/images/\(Self.images[4])")
        let resumed = try PreferenceTrainer(modelFolder: tinyLlavaFolder(), data: file, out: out, options: options())
        // The load-time check reports it; the resumed plan still holds the record and skips it.
        #expect(resumed.allProblems.map(\.line) == [4])
        var steps: [Int] = []
        try resumed.run(resume: true) { steps.append($0.step) }
        #expect(steps == [2, 3])
        #expect(resumed.skippedDuringRun.count == 1 && resumed.skippedDuringRun[0].hasPrefix("\(file):4"))
        #expect(try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count == 3)
    }
}
