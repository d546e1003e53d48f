import Common
import Foundation
import Images
import JSON

/// What `realign world generate` writes: scenes, their images and every text made from them.
public struct WorldSpec: Sendable {
    public var train = 3000
    public var test = 500
    public var seed: UInt64 = 0
    /// Questions per training scene in sft.jsonl, besides its caption.
    public var questionsPerScene = 4
    public init() {}
}

public enum WorldFolder {
    static let trainStream: UInt64 = 1, testStream: UInt64 = 2

    public static func trainScenes(_ spec: WorldSpec) -> [Scene] {
        (0..<spec.train).map { SceneGenerator.biased.scene(id: String(format: "train-%06d", $0), seed: spec.seed, stream: trainStream, index: $0) }
    }

    public static func testScenes(_ spec: WorldSpec) -> [Scene] {
        (0..<spec.test).map { SceneGenerator.heldOut.scene(id: String(format: "test-%06d", $0), seed: spec.seed, stream: testStream, index: $0) }
    }

    public static func imagePath(_ scene: Scene) -> String {
        "images/\(scene.id.hasPrefix("train") ? "train" : "test")/\(scene.id).png"
    }

    /// Writes the world into `out` (see the README's ShapesWorld section for the files). Images already there
    /// with the right bytes are kept, so a re-run after a kill only writes what is missing.
    public static func generate(_ spec: WorldSpec, out: String, progress: ((String, Int, Int) -> Void)? = nil) throws -> JSONValue {
        let fm = FileManager.default
        for sub in ["images/train", "images/test", "tokenizer"] {
            try fm.createDirectory(atPath: (out as NSString).appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let train = trainScenes(spec), test = testScenes(spec)
        for (name, scenes) in [("train", train), ("test", test)] {
            for (i, scene) in scenes.enumerated() {
                let path = (out as NSString).appendingPathComponent(imagePath(scene))
                let data = try SceneRenderer.render(scene).pngData()
                if fm.contents(atPath: path) != data { try data.write(to: URL(fileURLWithPath: path), options: .atomic) }
                if (i + 1) % 100 == 0 || i + 1 == scenes.count { progress?(name, i + 1, scenes.count) }
            }
        }

        var sft: [JSONValue] = [], samples: [JSONValue] = []
        for scene in train {
            var rng = SplitMix64(seed: spec.seed ^ 0x5F7 ^ UInt64(scene.id.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
            let image = imagePath(scene)
            let caption = SceneText.caption(scene, variant: Int(rng.next() % 3))
            let record: JSONValue = .object([("id", .string(scene.id)), ("image", .string(image)), ("prompt", .string(SceneText.captionPrompt)), ("chosen", .string(caption))])
            samples.append(record)
            sft.append(.object([("id", .string(scene.id + "-caption")), ("image", .string(image)), ("prompt", .string(SceneText.captionPrompt)), ("chosen", .string(caption))]))
            for (k, q) in SceneText.trainingQuestions(scene, count: spec.questionsPerScene, rng: &rng).enumerated() {
                sft.append(.object([("id", .string("\(scene.id)-q\(k)")), ("image", .string(image)), ("prompt", .string(q.text)),
                                    ("chosen", .string(q.answer)), ("category", .string(q.category.rawValue))]))
            }
        }
        // Re-Align's candidate samples, as instruction data mixes them: each training scene's caption and one
        // question per kind answered in a full sentence (existence both ways). Drawn with a generator of their own,
        // so the files above keep their bytes.
        var instructions: [JSONValue] = []
        for scene in train {
            var rng = SplitMix64(seed: spec.seed ^ 0x1A57 ^ UInt64(scene.id.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
            let image = imagePath(scene)
            instructions.append(.object([("id", .string(scene.id + "-caption")), ("image", .string(image)), ("prompt", .string(SceneText.captionPrompt)),
                                         ("chosen", .string(SceneText.caption(scene, variant: Int(rng.next() % 3)))), ("category", .string("caption"))]))
            let all = SceneText.questions(scene)
            var picked: [(String, WorldQuestion)] = []
            if let q = all.filter({ $0.category == .existence && $0.answer == "yes" }).randomElement(using: &rng) { picked.append(("existence-yes", q)) }
            if let q = all.filter({ $0.category == .existence && $0.answer == "no" }).randomElement(using: &rng) { picked.append(("existence-no", q)) }
            for c in [WorldQuestion.Category.count, .colour, .size, .position] {
                if let q = all.filter({ $0.category == c }).randomElement(using: &rng) { picked.append((c.rawValue, q)) }
            }
            for (suffix, q) in picked {
                instructions.append(.object([("id", .string("\(scene.id)-\(suffix)")), ("image", .string(image)), ("prompt", .string(q.text)),
                                             ("chosen", .string(SceneText.sentenceAnswer(q, scene: scene))), ("category", .string(q.category.rawValue))]))
            }
        }
        var annotations: [JSONValue] = [], questions: [JSONValue] = []
        var questionID = 0
        for scene in test {
            let image = imagePath(scene)
            annotations.append(annotation(scene, image: image))
            for q in SceneText.questions(scene) where q.category != .existence {
                questions.append(.object([("question_id", .int(questionID)), ("image", .string(image)), ("text", .string(q.text)),
                                          ("answer", .string(q.answer)), ("category", .string(q.category.rawValue))]))
                questionID += 1
            }
        }
        try writeLines(sft, to: (out as NSString).appendingPathComponent("sft.jsonl"))
        try writeLines(samples, to: (out as NSString).appendingPathComponent("samples.jsonl"))
        try writeLines(instructions, to: (out as NSString).appendingPathComponent("instruction_samples.jsonl"))
        try writeLines(train.map { annotation($0, image: imagePath($0)) }, to: (out as NSString).appendingPathComponent("train_annotations.jsonl"))
        try writeLines(annotations, to: (out as NSString).appendingPathComponent("annotations.jsonl"))
        try writeLines(questions, to: (out as NSString).appendingPathComponent("attributes.jsonl"))
        try WorldTokenizer.write(to: (out as NSString).appendingPathComponent("tokenizer"))
        try WorldLexicon.chairObjects.write(toFile: (out as NSString).appendingPathComponent("objects.txt"), atomically: true, encoding: .utf8)
        try (WorldLexicon.editorLexicon.serialized(pretty: true) + "\n").write(toFile: (out as NSString).appendingPathComponent("editor_lexicon.json"), atomically: true, encoding: .utf8)
        try WorldLexicon.maskWordList.write(toFile: (out as NSString).appendingPathComponent("mask_words.txt"), atomically: true, encoding: .utf8)

        let summary: JSONValue = .object([
            ("seed", .int(Int(truncatingIfNeeded: spec.seed))),
            ("canvas", .int(SceneGenerator.biased.canvas)),
            ("train_scenes", .int(train.count)), ("test_scenes", .int(test.count)),
            ("sft_records", .int(sft.count)), ("attribute_questions", .int(questions.count)),
            ("partner_rate", .object([("train", .double(SceneGenerator.biased.partnerRate)), ("test", .double(SceneGenerator.heldOut.partnerRate))])),
            ("measured_partner_share", .object([("train", .double(partnerShare(train))), ("test", .double(partnerShare(test)))])),
            ("measured_companion_rate", .object([("train", .double(companionRate(train))), ("test", .double(companionRate(test)))])),
            ("partners", .array(WorldLexicon.partners.map { .array([.string($0.0.rawValue), .string($0.1.rawValue)]) })),
        ])
        try (summary.serialized(pretty: true) + "\n").write(toFile: (out as NSString).appendingPathComponent("world.json"), atomically: true, encoding: .utf8)
        return summary
    }

    /// `{"image_id", "image", "objects", "captions", "background", "details"}`: what the POPE builder, CHAIR and the
    /// attribute check read.
    static func annotation(_ scene: Scene, image: String) -> JSONValue {
        let details: [JSONValue] = scene.objects.map { o in
            .object([("shape", .string(o.shape.rawValue)), ("colour", .string(o.colour.rawValue)), ("size", .string(o.size.rawValue)),
                     ("x", .double(o.x)), ("y", .double(o.y)), ("radius", .double(o.radius)), ("position", .string(scene.position(of: o)))])
        }
        return .object([("image_id", .string(scene.id)), ("image", .string(image)),
                        ("objects", .array(scene.shapes.map { .string($0.rawValue) })),
                        ("captions", .array([.string(SceneText.caption(scene, variant: 0))])),
                        ("background", .string(scene.background.rawValue)), ("details", .array(details))])
    }

    /// Of the scenes with two or more objects that hold one of a partner pair, the share that hold both.
    public static func partnerShare(_ scenes: [Scene]) -> Double {
        var with = 0, total = 0
        for scene in scenes where scene.objects.count >= 2 {
            for (a, b) in WorldLexicon.partners {
                let hasA = scene.count(of: a) > 0, hasB = scene.count(of: b) > 0
                if hasA || hasB {
                    total += 1
                    if hasA && hasB { with += 1 }
                }
            }
        }
        return total == 0 ? 0 : Double(with) / Double(total)
    }

    /// Of the partnered shapes in scenes of two or more objects, the share whose partner is there too: how often
    /// "a circle comes with a square".
    public static func companionRate(_ scenes: [Scene]) -> Double {
        var with = 0, total = 0
        for scene in scenes where scene.objects.count >= 2 {
            for shape in Set(scene.shapes) {
                guard let partner = WorldLexicon.partner(of: shape) else { continue }
                total += 1
                if scene.count(of: partner) > 0 { with += 1 }
            }
        }
        return total == 0 ? 0 : Double(with) / Double(total)
    }

    static func writeLines(_ values: [JSONValue], to path: String) throws {
        let text = values.map { $0.serialized() }.joined(separator: "\n") + (values.isEmpty ? "" : "\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
