import Foundation
import Testing
import Torch
import Images
@testable import Models

/// Broken model folders give errors that name the file and the key.
@Suite struct LoadingErrorTests {
    func copyOfTinyLlava() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llava-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: modelFixture("tiny-llava"), toPath: dir)
        return dir
    }

    @Test func missingShardIsNamed() throws {
        let dir = try copyOfTinyLlava()
        let weights = try Checkpoint(path: dir).loadAll()
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        try Checkpoint.write(weights, to: dir, maxShardBytes: 400_000)
        #expect(FileManager.default.fileExists(atPath: dir + "/" + Checkpoint.indexName))
        _ = try ModelLoader.llava(dir)  // the sharded copy loads
        let shard = try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("model-00002") }!
        try FileManager.default.removeItem(atPath: dir + "/" + shard)
        #expect(performing: { _ = try ModelLoader.llava(dir) }, throws: { "\($0)".contains(shard) && "\($0)".contains("missing") })
    }

    @Test func wrongShapeAndMissingKeysAreNamed() throws {
        let dir = try copyOfTinyLlava()
        var weights = try Checkpoint(path: dir).loadAll()
        weights["multi_modal_projector.linear_1.weight"] = try Tensor.zeros([3, 3])
        weights["language_model.model.norm.weight"] = nil
        weights["language_model.model.extra.weight"] = try Tensor.zeros([2])
        try SafeTensors.write(weights, to: dir + "/model.safetensors")
        #expect(performing: { _ = try ModelLoader.llava(dir) }, throws: { error in
            let text = "\(error)"
            return text.contains(dir) && text.contains("multi_modal_projector.linear_1.weight") && text.contains("[3, 3]")
                && text.contains("language_model.model.norm.weight") && text.contains("language_model.model.extra.weight")
        })
    }

    @Test func badConfigsAreNamed() throws {
        let dir = try copyOfTinyLlava()
        let configPath = dir + "/config.json"
        let original = try String(contentsOfFile: configPath, encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("\"model_type\": \"llava\"", "\"model_type\": \"blip\"", "model_type 'blip' is not supported"),
            ("\"hidden_size\": 64", "\"hidden_size\": \"big\"", "text_config.hidden_size is not an integer"),
            ("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"", "rope_type 'yarn' is not supported"),
            ("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"", "text_config.model_type 'gpt2'"),
        ]
        for (from, to, message) in cases {
            #expect(original.contains(from), "fixture config lacks \(from)")
            try original.replacingOccurrences(of: from, with: to).write(toFile: configPath, atomically: true, encoding: .utf8)
            #expect(performing: { _ = try ModelLoader.llava(dir) }, throws: { "\($0)".contains(configPath) && "\($0)".contains(message) })
        }
        try "{ not json".write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(performing: { _ = try ModelLoader.llava(dir) }, throws: { "\($0)".contains("not valid JSON") })
    }

    @Test func anImageThatIsNotAnImage() throws {
        let dir = try copyOfTinyLlava()
        let vlm = try VisionLanguageModel(folder: dir)
        let bogus = dir + "/not-an-image.jpg"
        try "just text".write(toFile: bogus, atomically: true, encoding: .utf8)
        #expect(performing: { _ = try Images.RGBImage(contentsOfFile: bogus) }, throws: { "\($0)".contains(bogus) })
        // Text-only prompts work without an image.
        let answer = try vlm.answer("Hello", image: nil, options: GenerationOptions(maxNewTokens: 3))
        #expect(answer.tokens.count <= 3)
    }
}

/// A generated (or answer-text) image token without an image is an ordinary token, as in transformers; a prompt
/// that asks for an image it does not get is refused.
@Suite struct ImageTokenWithoutImageTests {
    @Test func embedsAsATokenButAPromptNeedsItsImage() throws {
        let model = try ModelLoader.llava(modelFixture("tiny-llava"))
        let id = model.config.imageTokenID
        let embedded = try withNoGrad { try model.embed(inputIDs: Tensor([5, id], shape: [1, 2]), imageFeatures: nil) }
        let table = try withNoGrad { try model.language_model.model.embed_tokens(Tensor([5, id], shape: [1, 2])) }
        #expect(try embedded.toArray(Float.self) == table.toArray(Float.self))
        let generator = TextGenerator(model: model, tokenizer: nil)
        #expect(throws: ModelError.self) {
            try generator.generate(prompts: [[1, id, 7]], images: nil, options: GenerationOptions(maxNewTokens: 2))
        }
    }
}
