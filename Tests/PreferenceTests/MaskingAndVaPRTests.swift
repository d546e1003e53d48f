import Foundation
import TestSupport
import JSON
import Testing
@testable import Backends
@testable import Preference

@Suite struct MaskingTests {
    @Test func ruleMaskerHidesLexiconWordsAndKeepsTheRest() throws {
        let masker = RuleMasker()
        let answer = "Two red apples sit to the left of a small wooden box, next to three cats."
        let masked = masker.maskText(answer)
        #expect(masked == "[MASK] [MASK] [MASK] sit to the [MASK] of a [MASK] [MASK] [MASK], [MASK] [MASK] [MASK].")
        let template = MaskedText(masked)
        let hidden = try #require(template.fills(matching: answer))
        // Adjacent masks make the split between them ambiguous; the spans still rebuild the answer.
        #expect(hidden.count == 10 && hidden[3] == "left")
        #expect(template.filled(hidden) == answer)
        try validateMask(original: answer, masked: masked)
    }

    @Test func everyFixtureAnswerMasksValidly() throws {
        for sample in try SampleReader.read(samplesFile).samples {
            let chosen = try #require(sample.chosen)
            let masked = RuleMasker().maskText(chosen)
            try validateMask(original: chosen, masked: masked)
            #expect(MaskedText(masked).filled(MaskedText(masked).fills(matching: chosen)!) == chosen)
        }
    }

    @Test func userWordsExtendTheLexicon() throws {
        let file = temporaryFolder() + "/words.txt"
        try "# extra\nzebra crossing\nlighthouse\n".write(toFile: file, atomically: true, encoding: .utf8)
        let masker = try RuleMasker(wordList: file)
        #expect(masker.maskText("A lighthouse by the zebra crossing.") == "A [MASK] by the [MASK].")
        #expect(RuleMasker().maskText("A lighthouse by the zebra crossing.") == "A lighthouse by the [MASK] crossing.")
    }

    @Test func validationRefusesBadMasks() {
        #expect(throws: MaskError.self) { try validateMask(original: "A red car.", masked: "A red car.") }
        #expect(throws: MaskError.self) { try validateMask(original: "A red car.", masked: "A [MASK] truck.") }
        #expect(throws: MaskError.self) { try validateMask(original: "A red car.", masked: "A red car.[MASK]") }
        #expect(throws: Never.self) { try validateMask(original: "A red  car.", masked: "A [MASK] car.") }
    }

    @Test func backendMaskerIsValidated() async throws {
        let server = try ScriptedServer { n, _ in
            .init(body: ScriptedServer.completion(n == 0 ? "Masked answer: A [MASK] car parks [MASK] the house." : "A [MASK] truck parks near the house."))
        }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        let masker = BackendMasker(backend: client)
        let answer = "A red car parks behind the house."
        #expect(try await masker.mask(answer: answer, prompt: "Describe.", image: "") == "A [MASK] car parks [MASK] the house.")
        await #expect(throws: MaskError.self) { try await masker.mask(answer: answer, prompt: "Describe.", image: "") }
    }
}

@Suite struct InductionTests {
    @Test func instructModeReadsFillsBackFromTheReply() async throws {
        let server = try ScriptedServer { n, _ in
            .init(body: ScriptedServer.completion(n == 0 ? "A blue  car parks near the house." : "Something else entirely."))
        }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        let inducer = Inducer(backend: client, mode: .instruct)
        let image = repoPath("PreferenceTests/Fixtures/shapes/images/00-red-circle.png")
        #expect(try await inducer.fill(prompt: "Describe.", masked: "A [MASK] car parks [MASK] the house.", image: image) == "A blue car parks near the house.")
        await #expect(throws: Inducer.Failure.self) { try await inducer.fill(prompt: "Describe.", masked: "A [MASK] car.", image: image) }
    }

    @Test func continueModeSendsThePrefixAndStopsAtTheNextWord() async throws {
        let server = try ScriptedServer { n, _ in .init(body: ScriptedServer.completion(n == 0 ? " green" : " beside\nmore")) }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        let image = repoPath("PreferenceTests/Fixtures/shapes/images/00-red-circle.png")
        let filled = try await Inducer(backend: client).fill(prompt: "Describe.", masked: "A [MASK] car parks [MASK] the house.", image: image)
        #expect(filled == "A green car parks beside the house.")
        let bodies = try server.requests.map { try JSONValue.parse(Array($0.body.utf8)) }
        #expect(bodies[0]["messages"]?.arrayValue?.last?["content"]?.stringValue == "A ")
        #expect(bodies[0]["stop"]?.arrayValue?.compactMap(\.stringValue) == ["\n", " car"])
        #expect(bodies[1]["messages"]?.arrayValue?.last?["content"]?.stringValue == "A green car parks ")
    }

    /// Masks with only whitespace between them take one word each (nothing else would stop a fill).
    @Test func adjacentMasksTakeOneWordEach() async throws {
        let server = try ScriptedServer { n, _ in .init(body: ScriptedServer.completion([" big red square and more", " red square", " square."][min(n, 2)])) }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        let image = repoPath("PreferenceTests/Fixtures/shapes/images/00-red-circle.png")
        let filled = try await Inducer(backend: client).fill(prompt: "Describe.", masked: "a [MASK] [MASK] [MASK].", image: image)
        #expect(filled == "a big red square..")
        let bodies = try server.requests.map { try JSONValue.parse(Array($0.body.utf8)) }
        #expect(bodies.compactMap { $0["messages"]?.arrayValue?.last?["content"]?.stringValue } == ["a ", "a big ", "a big red "])
    }
}

@Suite struct VaPRTests {
    @Test func levenshteinDistances() {
        #expect(levenshtein("kitten", "sitting") == 3)
        #expect(levenshtein("", "abc") == 3)
        #expect(levenshtein("flaw", "lawn") == 2)
        #expect(levenshtein("same", "same") == 0)
    }

    @Test func substitutionsFromTheWordDiff() {
        #expect(VaPREditor.substitutions(from: "There are two red apples.", to: "There are three red apples.") == ["two -> three"])
        #expect(VaPREditor.substitutions(from: "A cat on the left.", to: "A dog on the right side.") == ["cat -> dog", "left -> right side"])
    }

    @Test func categoriesAndUnsuitableSamples() {
        #expect(VaPREditor.classifyByRules(prompt: "How many dogs are there?", chosen: "Two.") == .counting)
        #expect(VaPREditor.classifyByRules(prompt: "What color is the bus?", chosen: "Red.") == .colour)
        #expect(VaPREditor.classifyByRules(prompt: "Is there a cat in the image?", chosen: "Yes.") == .existence)
        #expect(VaPREditor.classifyByRules(prompt: "Where is the lamp?", chosen: "On the left.") == .spatial)
        #expect(VaPREditor.classifyByRules(prompt: "Why is the man smiling?", chosen: "He won.") == .reasoning)
        #expect(VaPREditor.classifyByRules(prompt: "Describe the image in detail.", chosen: "A street.") == .captioning)
        #expect(VaPREditor.classifyByRules(prompt: "What is in the background?", chosen: "Hills.") == .background)
        #expect(VaPREditor.isUnsuitable(prompt: "Which animal is it?\nA. cat\nB. dog", chosen: "A") != nil)
        #expect(VaPREditor.isUnsuitable(prompt: "What is it?", chosen: "B.") != nil)
        #expect(VaPREditor.isUnsuitable(prompt: "What is it?", chosen: "A dog.") == nil)
    }

    /// An editor that always makes the same swap: after `maxReuse` pairs it is told to avoid it, then refused.
    @Test func penaltyListStopsRepeatedSubstitutions() async throws {
        let server = try ScriptedServer { _, r in
            let body = (try? JSONValue.parse(Array(r.body.utf8)))?["messages"]?.arrayValue?.last?["content"]?.arrayValue?.last?["text"]?.stringValue ?? ""
            let answer = body.components(separatedBy: "Answer: ").last?.components(separatedBy: "\n").first ?? ""
            return .init(body: ScriptedServer.completion(answer.replacingOccurrences(of: "red", with: "blue")))
        }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        var editor = VaPREditor(classifier: .rules, editor: client) { $0.split(separator: " ").count }
        editor.maxReuse = 2
        var outcomes: [RecordOutcome] = []
        for i in 0..<3 {
            outcomes.append(await editor.process(SampleInput(id: "v\(i)", image: "/x.png", prompt: "What color is the car?", chosen: "The car is red.", line: i + 1)))
        }
        guard case .kept(let pair) = outcomes[0], case .kept = outcomes[1] else { Issue.record("\(outcomes)"); return }
        let first = pair.json
        #expect(first["rejected"]?.stringValue == "The car is blue.")
        #expect(first["category"]?.stringValue == "colour")
        #expect(first["substitutions"]?.arrayValue == [.string("red -> blue")])
        #expect(first["length_gap"]?.intValue == 0 && first["levenshtein"]?.intValue == 4)
        guard case .skipped(_, "unpaired", let reason) = outcomes[2] else { Issue.record("third pair reused the swap"); return }
        #expect(reason.contains("red -> blue"))
        // The third sample was asked twice, the second time with the overused swap named.
        #expect(server.requests.count == 4)
        #expect(server.requests[3].body.contains("Do not use these substitutions") && server.requests[3].body.contains("red -> blue"))
        #expect(editor.penalties.count("red -> blue") == 2)
    }

    @Test func thresholdsRejectLengthBiasedEdits() async throws {
        let server = try ScriptedServer { _, _ in .init(body: ScriptedServer.completion("The car is blue, shiny, parked by a long row of tall old houses.")) }
        let client = try OpenAIClient(baseURL: URL(string: server.baseURL)!, model: "m", apiKeyVariable: nil)
        var editor = VaPREditor(classifier: .rules, editor: client) { $0.split(separator: " ").count }
        editor.maxLengthGap = 3
        let outcome = await editor.process(SampleInput(id: "t", image: "/x.png", prompt: "What color is the car?", chosen: "The car is red.", line: 1))
        guard case .skipped(_, "unpaired", let reason) = outcome else { Issue.record("a long edit passed"); return }
        #expect(reason.contains("length gap"))
    }
}
