import Foundation
import JSON
import Testing
@testable import Backends
@testable import Preference

@Suite struct RuleEditorTests {
    let world = RuleEditor(classes: ["colour": ["red", "blue", "green"], "count": ["one", "two", "three"], "size": ["small", "large"],
                                     "object": ["circle", "square", "star"]],
                           opposites: [("left of", "right of"), ("above", "below"), ("yes", "no")])

    @Test func eachCategoryChangesItsKeySpanOnly() {
        let colour = world.edit("The car is red.", category: .colour, id: "a", avoid: [])!
        #expect(colour == "The car is blue." || colour == "The car is green.")
        #expect(world.edit("the red circle is left of the star.", category: .spatial, id: "b", avoid: []) == "the red circle is right of the star.")
        #expect(world.edit("yes", category: .existence, id: "c", avoid: []) == "no")
        let count = world.edit("two", category: .counting, id: "d", avoid: [])!
        #expect(count == "one" || count == "three")
        // Capitals are kept; a word inside another word is not a span ("reddish").
        #expect(world.edit("Red.", category: .colour, id: "e", avoid: []).map { $0 == "Blue." || $0 == "Green." } == true)
        #expect(world.edit("a reddish thing", category: .colour, id: "f", avoid: []) == nil)
        // Nothing of the category: no edit.
        #expect(world.edit("a small circle", category: .colour, id: "g", avoid: []) == nil)
    }

    @Test func captionsGetTwoEditsAndTheSameIdTheSameEdit() {
        let caption = "a small red circle and a large blue square. the red circle is above the blue square."
        let edited = world.edit(caption, category: .captioning, id: "cap", avoid: [])!
        #expect(VaPREditor.substitutions(from: caption, to: edited).count == 2)
        #expect(world.edit(caption, category: .captioning, id: "cap", avoid: []) == edited)
        #expect(levenshtein(caption, edited) < 16)
    }

    @Test func avoidedSubstitutionsArePassedOver() {
        #expect(world.edit("red", category: .colour, id: "x", avoid: ["red -> blue"]) == "green")
        #expect(world.edit("red", category: .colour, id: "x", avoid: ["red -> blue", "red -> green"]) == nil)
    }

    @Test func lexiconFilesRoundTripAndBadOnesAreNamed() throws {
        let path = NSTemporaryDirectory() + "lexicon-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try world.lexiconJSON.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        let read = try RuleEditor(lexiconFile: path)
        #expect(read.classes == world.classes && read.opposites == world.opposites)
        try "{\"classes\": {\"colour\": 3}}".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: BackendError.self) { try RuleEditor(lexiconFile: path) }
    }

    /// A backend whose replies take a random time, always making the same swap.
    final class SlowSwapper: ChatBackend, @unchecked Sendable {
        let name = "slow"
        let usage = TokenUsage()
        func complete(_ request: ChatRequest) async throws -> ChatReply {
            try await Task.sleep(nanoseconds: UInt64.random(in: 0...20_000_000))
            let answer = request.user.components(separatedBy: "Answer: ").last?.components(separatedBy: "\n").first ?? ""
            return ChatReply(text: answer.replacingOccurrences(of: "red", with: "blue"))
        }
    }

    /// The penalty list changes in input order, so any concurrency and any timing give the same file.
    @Test func vaprOutputDoesNotDependOnConcurrencyOrTiming() async throws {
        let samples = (0..<12).map { SampleInput(id: "s\($0)", image: "/x.png", prompt: "What color is the car?", chosen: "The car is red.", line: $0 + 1) }
        var files: [Data] = []
        for (concurrency, editor) in [(1, VaPREditor.Editor.backend(SlowSwapper())), (6, .backend(SlowSwapper())), (6, .backend(SlowSwapper())),
                                      (1, .rules(world)), (5, .rules(world))] {
            var vapr = VaPREditor(classifier: .rules, editor: editor) { $0.split(separator: " ").count }
            vapr.maxReuse = 2
            let out = NSTemporaryDirectory() + "vapr-\(UUID().uuidString).jsonl"
            defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: ResumableOutput.skippedPath(for: out)) }
            let v = vapr
            _ = try await RecordRunner(concurrency: concurrency).run(samples, output: try ResumableOutput(path: out),
                                                                    commit: { await v.commit($0, $1) }) { await v.propose($0) }
            let kept = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            if case .backend = editor {
                // The first two records in input order keep the swap; every later one is refused.
                #expect(kept.count == 2 && kept[0].contains("\"s0\"") && kept[1].contains("\"s1\""))
            } else {
                // red -> blue and red -> green, twice each.
                #expect(kept.count == 4)
            }
            files.append(FileManager.default.contents(atPath: out)! + FileManager.default.contents(atPath: ResumableOutput.skippedPath(for: out))!)
        }
        #expect(files[0] == files[1] && files[1] == files[2])
        #expect(files[3] == files[4])
    }
}
