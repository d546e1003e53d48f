import Alignment
import Evaluation
import Common
import Foundation
import JSON
import Jobs
import Models
import Torch
import Preference
import ShapesWorld
import TestSupport
import Testing
import WorldModel

/// The main job through the library, without the command line: pairs, training, answers, scores.
@Suite struct LibraryJobsTests {
    @Test func pairsTrainingAnsweringAndScoringRunAsLibraryJobs() async throws {
        let root = temporaryFolder("jobs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (world, model) = try smallWorld(root)

        var pairs = BuildPairsConfig(input: world + "/samples.jsonl", out: root + "/pairs.jsonl", model: model)
        pairs.sentenceModel = try miniLMFolder()
        pairs.maskWords = world + "/mask_words.txt"
        pairs.concurrency = 1
        pairs.verbose = false
        let built = try #require(try await BuildPairsJob(pairs).run())
        #expect(built.kept > 0)
        #expect(built.kept + built.unpaired + built.failed == 12)
        #expect(built.summary?["pairs"]?.intValue == built.kept)
        let records = try PreferenceData.load(root + "/pairs.jsonl").records
        #expect(records.count == built.kept)
        #expect(records.allSatisfy { $0.rejected != nil && $0.retrievedImage != nil })

        var train = TrainConfig(model: model, data: root + "/pairs.jsonl", out: root + "/train")
        train.options.objectives = try ObjectiveMix(parsing: "rdpo+0.1*sft").terms
        train.options.steps = 2
        train.options.batchSize = 2
        train.options.gradientAccumulation = 1
        train.options.lora = LoRAConfig(r: 4, alpha: 8, dropout: 0)
        train.options.learningRate = 1e-3
        train.verbose = false
        let trained = try #require(try TrainJob.run(train))
        #expect(trained.steps == 2)
        #expect(FileManager.default.fileExists(atPath: trained.output + "/adapter_model.safetensors"))

        let questions = world + "/pope/pope_adversarial.jsonl"
        var scores: [Double] = []
        for adapter in [nil, trained.output] {
            var answer = AnswerConfig(questions: questions, model: model)
            answer.adapter = adapter
            answer.imageRoot = world
            answer.answersOut = root + "/answers-\(adapter == nil ? "base" : "trained").jsonl"
            answer.maxNewTokens = 4
            answer.verbose = false
            let file = try #require(try AnswerJob.run(answer))
            let result = try POPEScorer(rule: .pope).score(questionsFile: questions, answersFile: file)
            #expect(result.issues.isEmpty)
            let overall = result.report(rule: .pope).json["overall"]
            // 4 images, 3 present and 3 absent shapes each: every question answered once.
            #expect(try JSONLines(path: file).records.count == 24)
            scores.append(try #require(overall?["accuracy"]?.doubleValue))
        }
        #expect(scores.allSatisfy { (0...1).contains($0) })
    }
}
