import Foundation
import Testing
import Torch
@testable import Models

/// The backbone seam: folders load by their `model_type`, and what a model needs of a prompt is checked.
@Suite struct RegistryTests {
    func copy(_ fixture: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: modelFixture(fixture), toPath: dir)
        return dir
    }

    @Test func aFolderLoadsByItsModelType() throws {
        let model = try VLMRegistry.load(modelFixture("tiny-llava"))
        #expect(model is LlavaForConditionalGeneration)
        let vlm = try VisionLanguageModel(folder: modelFixture("tiny-llava"))
        #expect(vlm.chatFormat == .llava15)
    }

    @Test func qwenFoldersLoadThroughTheRegistry() throws {
        for kind in ["qwen2_vl", "qwen2_5_vl"] {
            let folder = modelFixture("qwen_vl/\(kind)")
            #expect(try VLMRegistry.load(folder) is Qwen2VLForConditionalGeneration)
            #expect(try VLMRegistry.processor(folder: folder) is Qwen2VLImageProcessor)
        }
    }

    @Test func anUnknownModelTypeNamesItAndTheSupportedOnes() throws {
        let dir = try copy("tiny-llava")
        let path = dir + "/config.json"
        let config = try String(contentsOfFile: path, encoding: .utf8)
        try config.replacingOccurrences(of: "\"model_type\": \"llava\"", with: "\"model_type\": \"idefics3\"")
            .write(toFile: path, atomically: true, encoding: .utf8)
        for load in [{ _ = try VLMRegistry.load(dir) }, { _ = try VisionLanguageModel(folder: dir) }] {
            #expect(performing: load, throws: { error in
                "\(error)".contains(path) && "\(error)".contains("model_type 'idefics3' is not supported (supported: llava, llava_next, qwen2_vl, qwen2_5_vl)")
            })
        }
    }

    @Test func imagePlaceholdersMustMatchTheImages() throws {
        let model = try VLMRegistry.load(modelFixture("tiny-llava"))
        let i = model.imageTokenID
        #expect(try model.expandImageTokens([1, i, 5, i, 6], counts: [2, 3]) == [1, i, i, 5, i, i, i, 6])
        #expect(performing: { _ = try model.expandImageTokens([1, i, 5], counts: [2, 3]) },
                throws: { "\($0)".contains("1 image placeholder(s) but 2 image(s)") })
        #expect(performing: { _ = try model.expandImageTokens([1, i, i], counts: [2]) },
                throws: { "\($0)".contains("more image placeholders than the 1 image(s)") })
    }

    @Test func anUnknownActivationIsAnErrorNamingTheKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/config.json"
        try #"{"model_type": "bert", "hidden_act": "swish"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(performing: { _ = try BertConfig(ConfigReader.load(path)) },
                throws: { "\($0)".contains(path) && "\($0)".contains("hidden_act 'swish' is not supported") })
        #expect(performing: { _ = try activation("swish") }, throws: { "\($0)".contains("activation 'swish' is not supported") })
    }
}
