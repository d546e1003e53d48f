import Common
import Foundation
import JSON
import TestSupport
import Testing

/// `realign demo --select --quick` and `--study --quick` run to the end, and runs killed at seeded random moments (five
/// times, then left to finish) resume to the same results.
@Suite(.serialized) struct DemoSelectTests {
    @Test func selectionRunsAndResumesAfterKillsToTheSameChoice() throws {
        let root = temporaryFolder("select")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let minilm = try miniLMFolder()
        let whole = try runRealign(["demo", "--select", "--quick", "--out", root + "/whole", "--sentence-model", minilm])
        try #require(whole.status == 0, "\(whole.stderr.suffix(3000))")
        let selection = try JSONValue.parse(contentsOf: root + "/whole/selection.json")
        #expect(selection["chosen"]?.arrayValue?.count == 4)
        #expect(selection["phase_b"]?["realign-rdpo"]?.arrayValue?.count == 2)  // the quick grid: 1 lr x 1 epoch x 2 betas
        #expect(try String(contentsOfFile: root + "/whole/selection.md", encoding: .utf8).contains("## Chosen"))

        var generator = SplitMix64(seed: 5)
        var kills = 0
        while true {
            let attempt = try runRealign(["demo", "--select", "--quick", "--out", root + "/resumed", "--sentence-model", minilm],
                                         killAfter: kills < 5 ? 0.3 + Double(generator.next() % 1500) / 1000 : nil)
            if attempt.status == 0 { break }
            #expect(attempt.status == 9, "\(attempt.stderr.suffix(2000))")
            kills += 1
            try #require(kills <= 5, "the selection failed after its kills")
        }
        #expect(kills >= 2)
        let again = try JSONValue.parse(contentsOf: root + "/resumed/selection.json")
        #expect(again["chosen"] == selection["chosen"])
        #expect(again["phase_a"] == selection["phase_a"])
        #expect(again["phase_b"] == selection["phase_b"])
    }

    @Test func studyRunsAndResumesAfterKillsToTheSameTable() throws {
        let root = temporaryFolder("study")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let minilm = try miniLMFolder()
        let whole = try runRealign(["demo", "--study", "--quick", "--out", root + "/whole", "--sentence-model", minilm])
        try #require(whole.status == 0, "\(whole.stderr.suffix(3000))")
        let study = try JSONValue.parse(contentsOf: root + "/whole/study.json")
        // The quick study: 3 sizes x 3 methods + the two ablations, one seed.
        #expect(study["runs"]?.arrayValue?.count == 11)
        #expect(try String(contentsOfFile: root + "/whole/study_accuracy.svg", encoding: .utf8).contains("<svg"))
        var generator = SplitMix64(seed: 9)
        var kills = 0
        while true {
            let attempt = try runRealign(["demo", "--study", "--quick", "--out", root + "/resumed", "--sentence-model", minilm],
                                         killAfter: kills < 5 ? 0.3 + Double(generator.next() % 1500) / 1000 : nil)
            if attempt.status == 0 { break }
            #expect(attempt.status == 9, "\(attempt.stderr.suffix(2000))")
            kills += 1
            try #require(kills <= 5, "the study failed after its kills")
        }
        #expect(kills >= 2)
        let again = try JSONValue.parse(contentsOf: root + "/resumed/study.json")
        #expect(again["runs"] == study["runs"])
    }
}
