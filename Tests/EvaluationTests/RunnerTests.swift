import Common
import Foundation
import Images
import JSON
import Models
import Testing
@testable import Evaluation

/// The runner answers with the local model, batched, appending to a JSONL; a re-run answers only what is new.
@Suite(.serialized) struct RunnerTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

    @Test func answersResumesAndMatchesSingleGeneration() throws {
        let model = try VisionLanguageModel(folder: root.appendingPathComponent("ModelsTests/Fixtures/tiny-llava").path)
        let imageRoot = root.appendingPathComponent("AlignmentTests/Fixtures/prefs/images").path
        let images = try FileManager.default.contentsOfDirectory(atPath: imageRoot).sorted()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("realign-runner-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let questions = folder + "/q.jsonl", answers = folder + "/a.jsonl"
        func line(_ i: Int, _ image: String) -> String {
            JSONValue.object([("question_id", .int(i)), ("image", .string(image)), ("text", .string("Is there a cat in the image?")),
                              ("label", .string(i % 2 == 0 ? "yes" : "no")), ("category", .string("random"))]).serialized() + "\n"
        }
        try (0..<3).map { line($0, images[$0]) }.joined().write(toFile: questions, atomically: true, encoding: .utf8)
        var runner = AnswerRunner(model: model, imageRoot: imageRoot)
        runner.batchSize = 2
        runner.options = GenerationOptions(maxNewTokens: 6)
        let first = try runner.run(questionsFile: questions, answersFile: answers)
        #expect(first.answered == 3 && first.resumed == 0)

        // A kill mid-write leaves a partial line: it is dropped, and new questions are answered after it.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: answers))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"question_id\": 3, \"te".utf8))
        try handle.close()
        try (0..<5).map { line($0, images[$0]) }.joined().write(toFile: questions, atomically: true, encoding: .utf8)
        let second = try runner.run(questionsFile: questions, answersFile: answers)
        #expect(second.answered == 2 && second.resumed == 3)

        let written = try JSONLines(path: answers)
        #expect(written.issues.isEmpty && written.records.map { $0.value["question_id"]?.intValue } == [0, 1, 2, 3, 4])
        // Batched, left-padded answers equal one-at-a-time greedy answers.
        for (n, record) in written.records.enumerated() {
            let image = try RGBImage(data: Data(contentsOf: URL(fileURLWithPath: imageRoot + "/" + images[n])), name: images[n])
            let single = try model.answer("Is there a cat in the image?", image: image, options: GenerationOptions(maxNewTokens: 6))
            #expect(record.value["text"]?.stringValue == single.text, "answer \(n)")
        }
        // And the file scores.
        let score = try POPEScorer(rule: .vlmevalkit).score(questionsFile: questions, answersFile: answers)
        #expect(score.overall.count == 5 && score.missing == 0)
    }

    /// Without question ids, answers match by order: an unreadable image leaves an error record (counted missing)
    /// instead of a gap that would shift every later answer; a question without an image is asked as text.
    @Test func failuresKeepOrderMatching() throws {
        let model = try VisionLanguageModel(folder: root.appendingPathComponent("ModelsTests/Fixtures/tiny-llava").path)
        let imageRoot = root.appendingPathComponent("AlignmentTests/Fixtures/prefs/images").path
        let images = try FileManager.default.contentsOfDirectory(atPath: imageRoot).sorted()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("realign-runner-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let questions = folder + "/q.jsonl", answers = folder + "/a.jsonl"
        let rows: [JSONValue] = [
            .object([("image", .string(images[0])), ("text", .string("Is there a cat?")), ("label", .string("yes"))]),
            .object([("image", .string("missing.jpg")), ("text", .string("Is there a dog?")), ("label", .string("no"))]),
            .object([("text", .string("Is the sky blue?")), ("label", .string("yes"))]),
            .object([("image", .string(images[1])), ("text", .string("Is there a car?")), ("label", .string("no"))]),
        ]
        try rows.map { $0.serialized() + "\n" }.joined().write(toFile: questions, atomically: true, encoding: .utf8)
        var runner = AnswerRunner(model: model, imageRoot: imageRoot)
        runner.options = GenerationOptions(maxNewTokens: 4)
        let summary = try runner.run(questionsFile: questions, answersFile: answers)
        #expect(summary.answered == 3 && summary.issues.count == 1 && summary.issues[0].line == 2)
        let written = try JSONLines(path: answers).records.map(\.value)
        #expect(written.count == 4 && written[1]["error"] != nil && written[1]["text"] == .null)
        let textOnly = try model.answer("Is the sky blue?", image: nil, options: GenerationOptions(maxNewTokens: 4))
        #expect(written[2]["text"]?.stringValue == textOnly.text)
        let last = try RGBImage(data: Data(contentsOf: URL(fileURLWithPath: imageRoot + "/" + images[1])), name: images[1])
        #expect(written[3]["text"]?.stringValue == (try model.answer("Is there a car?", image: last, options: GenerationOptions(maxNewTokens: 4)).text))

        // Scoring: the questions carry no ids, so by order; the failed one is missing, the others stay aligned.
        let score = try POPEScorer(rule: .pope, knownCategories: nil).score(questionsFile: questions, answersFile: answers)
        #expect(score.matchMode == .order && score.missing == 1 && score.overall.count == 3)
        #expect(score.issues.contains { $0.line == 2 && $0.message.hasPrefix("no answer (") })
        // A re-run finds every question recorded.
        #expect(try runner.run(questionsFile: questions, answersFile: answers).resumed == 4)
    }
}
