import Foundation
import Images
import Testing
@testable import Models

/// Continuing an assistant prefix through the kept KV cache gives what running the whole prompt gives.
@Suite struct PromptCacheTests {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

    @Test func cachedContinuationsEqualFullPrompts() throws {
        let vlm = try VisionLanguageModel(folder: fixtures.appendingPathComponent("ModelsTests/Fixtures/tiny-llava").path)
        let images = try ["0-red-circle.png", "1-blue-square.png"].map {
            try RGBImage(contentsOfFile: fixtures.appendingPathComponent("AlignmentTests/Fixtures/prefs/images/\($0)").path)
        }
        // The inducer's pattern: one prompt and image, a growing prefix; then another image (a cache miss), a
        // prefix that diverges from the cached one, and the first image again.
        let calls: [(Int, String)] = [(0, ""), (0, "There is a"), (0, "There is a red"), (0, "There is a red circle on the"),
                                      (1, "There is a"), (1, "A blue"), (0, "There is a red circle"), (0, "There is a red circle")]
        var options = GenerationOptions(maxNewTokens: 6)
        options.stopStrings = ["circle"]
        var cached: [GeneratedSequence] = [], full: [GeneratedSequence] = []
        for reuse in [true, false] {
            vlm.reusesPromptCache = reuse
            for (image, prefix) in calls {
                let r = try vlm.complete(user: "Describe the image.", image: images[image], assistantPrefix: prefix, options: options)
                if reuse { cached.append(r.sequence) } else { full.append(r.sequence) }
            }
        }
        #expect(cached == full)
        #expect(cached.contains { !$0.tokens.isEmpty })
    }
}
