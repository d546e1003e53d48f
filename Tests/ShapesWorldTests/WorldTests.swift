import Evaluation
import Foundation
import Images
import JSON
import ShapesWorld
import Tokenizers
import XCTest

final class SceneTests: XCTestCase {
    func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "shapesworld-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testSameSeedSameBytesOtherSeedOtherScenes() throws {
        var spec = WorldSpec()
        spec.train = 24
        spec.test = 12
        spec.seed = 7
        let a = try temporaryFolder(), b = try temporaryFolder(), c = try temporaryFolder()
        _ = try WorldFolder.generate(spec, out: a)
        _ = try WorldFolder.generate(spec, out: b)
        let files = try FileManager.default.subpathsOfDirectory(atPath: a).filter { !$0.hasSuffix("/") }.sorted()
        XCTAssertGreaterThan(files.count, 40)
        for f in files {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: "\(a)/\(f)", isDirectory: &isDir)
            if isDir.boolValue { continue }
            XCTAssertEqual(FileManager.default.contents(atPath: "\(a)/\(f)"), FileManager.default.contents(atPath: "\(b)/\(f)"), f)
        }
        spec.seed = 8
        _ = try WorldFolder.generate(spec, out: c)
        XCTAssertNotEqual(FileManager.default.contents(atPath: "\(a)/samples.jsonl"), FileManager.default.contents(atPath: "\(c)/samples.jsonl"))
    }

    func testScenesHoldOneToFourObjectsInsideTheCanvasWithoutOverlap() {
        var counts = [Int: Int]()
        for scene in WorldFolder.trainScenes(spec(train: 400)) {
            counts[scene.objects.count, default: 0] += 1
            for o in scene.objects {
                XCTAssertGreaterThanOrEqual(o.x - o.radius, 0)
                XCTAssertLessThanOrEqual(o.x + o.radius, Double(scene.canvas))
                XCTAssertGreaterThanOrEqual(o.y - o.radius, 0)
                XCTAssertLessThanOrEqual(o.y + o.radius, Double(scene.canvas))
            }
            for (i, a) in scene.objects.enumerated() {
                for b in scene.objects[(i + 1)...] {
                    XCTAssertGreaterThan(((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)).squareRoot(), a.radius + b.radius)
                }
            }
        }
        XCTAssertEqual(Set(counts.keys), [1, 2, 3, 4])
    }

    /// Each object lies inside one cell of the 4 x 4 layout (the tiny model's patches), one object per cell.
    func testObjectsSitInsideTheirOwnCell() {
        for scene in WorldFolder.testScenes(spec(test: 300)) {
            let cell = Double(scene.canvas) / 4
            var used = Set<Int>()
            for o in scene.objects {
                let column = Int(o.x / cell), row = Int(o.y / cell)
                XCTAssertTrue(used.insert(row * 4 + column).inserted, "two objects in one cell")
                XCTAssertGreaterThanOrEqual(o.x - o.radius, Double(column) * cell)
                XCTAssertLessThanOrEqual(o.x + o.radius, Double(column + 1) * cell)
                XCTAssertGreaterThanOrEqual(o.y - o.radius, Double(row) * cell)
                XCTAssertLessThanOrEqual(o.y + o.radius, Double(row + 1) * cell)
            }
        }
    }

    func spec(train: Int = 0, test: Int = 0) -> WorldSpec {
        var s = WorldSpec()
        s.train = train
        s.test = test
        return s
    }

    /// The share of `fg` in a blend of `fg` over `bg`, from the channel where the two differ most.
    func share(_ p: RGB, _ bg: RGB, _ fg: RGB) -> Double {
        let values: [(Double, Double, Double)] = [(Double(p.r), Double(bg.r), Double(fg.r)), (Double(p.g), Double(bg.g), Double(fg.g)),
                                                   (Double(p.b), Double(bg.b), Double(fg.b))]
        var best = values[0]
        for v in values where abs(v.2 - v.1) > abs(best.2 - best.1) { best = v }
        return (best.0 - best.1) / (best.2 - best.1)
    }

    /// Each object drawn alone: its pixels lie within its radius, fully covered pixels carry exactly its colour,
    /// edge pixels are blends (anti-aliasing), its area is the shape's analytic area, and the symmetric shapes'
    /// pixel centroid is the annotated centre, so the annotated position is where the pixels are.
    func testAnnotationsMatchThePixels() throws {
        let area: [Shape: Double] = [.circle: Double.pi, .square: 1.64 * 1.64, .ring: Double.pi * 0.75, .diamond: 2 * 0.8,
                                     .cross: 2 * 0.6 * 1.84 - 0.36, .hexagon: 3 * 3.0.squareRoot() / 2]
        var checked = Set<Shape>()
        for scene in WorldFolder.trainScenes(spec(train: 120)) {
            for o in scene.objects {
                let alone = Scene(id: "alone", canvas: scene.canvas, background: scene.background, objects: [o])
                let image = SceneRenderer.render(alone)
                let bg = scene.background.rgb, fg = o.colour.rgb
                var covered = 0.0, sx = 0.0, sy = 0.0, partial = 0, full = 0
                for y in 0..<image.height {
                    for x in 0..<image.width {
                        let p = image[x, y]
                        guard p != bg else { continue }
                        // The share of the object's colour in the blend, from the channel that differs most.
                        let a = share(p, bg, fg)
                        XCTAssertGreaterThanOrEqual(a, -0.02)
                        XCTAssertLessThanOrEqual(a, 1.02)
                        XCTAssertLessThanOrEqual(abs(Double(x) + 0.5 - o.x), o.radius + 1, "\(o.description) pixel outside its radius")
                        XCTAssertLessThanOrEqual(abs(Double(y) + 0.5 - o.y), o.radius + 1)
                        if p == fg { full += 1 } else { partial += 1 }
                        covered += a
                        sx += a * (Double(x) + 0.5)
                        sy += a * (Double(y) + 0.5)
                    }
                }
                XCTAssertGreaterThan(full, 0, o.description)
                // Curved and slanted edges always cross pixels; a square's edges may fall between sample points.
                if o.shape != .square && o.shape != .cross { XCTAssertGreaterThan(partial, 0, "\(o.description): no blended edge pixels (aliased)") }
                if let unit = area[o.shape] {
                    XCTAssertEqual(covered / (unit * o.radius * o.radius), 1, accuracy: 0.04, "\(o.description) area")
                    XCTAssertEqual(sx / covered, o.x, accuracy: 0.3, "\(o.description) centre x")
                    XCTAssertEqual(sy / covered, o.y, accuracy: 0.3, "\(o.description) centre y")
                    var centred = o
                    centred.x = sx / covered
                    centred.y = sy / covered
                    XCTAssertEqual(alone.position(of: centred), alone.position(of: o))
                    checked.insert(o.shape)
                }
            }
        }
        XCTAssertEqual(checked.count, 6)
    }

    /// Every relation a caption states holds between the objects' rendered pixel centroids.
    func testCaptionRelationsFollowFromPositions() throws {
        var stated = 0
        for scene in WorldFolder.trainScenes(spec(train: 150)) {
            let caption = SceneText.caption(scene, variant: 0)
            func centroid(_ o: SceneObject) -> (Double, Double) {
                let image = SceneRenderer.render(Scene(id: "", canvas: scene.canvas, background: scene.background, objects: [o]))
                var n = 0.0, sx = 0.0, sy = 0.0
                for y in 0..<image.height { for x in 0..<image.width where image[x, y] != scene.background.rgb { n += 1; sx += Double(x); sy += Double(y) } }
                return (sx / n, sy / n)
            }
            for a in scene.objects {
                for b in scene.objects where a != b {
                    for relation in Relation.allCases {
                        let sentence = "the \(a.colour.rawValue) \(a.shape.rawValue) is \(relation.rawValue) the \(b.colour.rawValue) \(b.shape.rawValue)."
                        guard caption.contains(sentence) else { continue }
                        stated += 1
                        let (ax, ay) = centroid(a), (bx, by) = centroid(b)
                        switch relation {
                        case .leftOf: XCTAssertLessThan(ax, bx, sentence)
                        case .rightOf: XCTAssertGreaterThan(ax, bx, sentence)
                        case .above: XCTAssertLessThan(ay, by, sentence)
                        case .below: XCTAssertGreaterThan(ay, by, sentence)
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(stated, 100)
    }

    func testTrainingScenesAreBiasedAndHeldOutScenesAreNot() {
        let train = WorldFolder.partnerShare(WorldFolder.trainScenes(spec(train: 2000)))
        let test = WorldFolder.partnerShare(WorldFolder.testScenes(spec(test: 2000)))
        XCTAssertGreaterThan(train, 0.75)
        XCTAssertEqual(test, 1.0 / 3.0, accuracy: 0.06)
        // Per present partnered shape: its partner beside it in most training scenes, in about half the held-out.
        XCTAssertGreaterThan(WorldFolder.companionRate(WorldFolder.trainScenes(spec(train: 2000))), 0.8)
        XCTAssertEqual(WorldFolder.companionRate(WorldFolder.testScenes(spec(test: 2000))), 0.5, accuracy: 0.06)
    }

    func testQuestionsAnswerFromTheAnnotationsAndExistenceIsBalanced() throws {
        let folder = try temporaryFolder()
        _ = try WorldFolder.generate(spec(train: 200, test: 20), out: folder)
        let lines = try String(contentsOfFile: folder + "/sft.jsonl", encoding: .utf8).split(separator: "\n")
        var yes = 0, no = 0
        for line in lines {
            let r = try JSONValue.parse(Array(line.utf8))
            if r["category"]?.stringValue == "existence" {
                if r["chosen"]?.stringValue == "yes" { yes += 1 } else { no += 1 }
            }
        }
        XCTAssertEqual(yes, 200)
        XCTAssertEqual(no, 200)
        for scene in WorldFolder.testScenes(spec(test: 50)) {
            for q in SceneText.questions(scene) {
                switch q.category {
                case .existence:
                    let shape = Shape.allCases.first { q.text == SceneText.existenceQuestion($0) }!
                    XCTAssertEqual(q.answer, scene.objects.contains { $0.shape == shape } ? "yes" : "no")
                case .count where q.text == "how many objects are there?":
                    XCTAssertEqual(q.answer, WorldLexicon.counts[scene.objects.count])
                case .background:
                    XCTAssertEqual(q.answer, scene.background.rawValue)
                case .colour:
                    let o = scene.objects.first { q.text == "what colour is the \($0.shape.rawValue)?" }!
                    XCTAssertEqual(q.answer, o.colour.rawValue)
                default: break
                }
            }
        }
    }

    func testPOPEFilesFromTheWorldAreValid() throws {
        let folder = try temporaryFolder()
        _ = try WorldFolder.generate(spec(train: 300, test: 120), out: folder)
        let (images, issues) = try POPEBuilder.annotations(folder + "/annotations.jsonl")
        let (train, trainIssues) = try POPEBuilder.annotations(folder + "/train_annotations.jsonl")
        XCTAssertTrue(issues.isEmpty && trainIssues.isEmpty)
        let builder = POPEBuilder()
        let sampled = builder.sample(images, count: 1000, seed: 0)
        XCTAssertGreaterThan(sampled.count, 40)
        // As `world generate` builds them: co-occurrence counted over the training scenes.
        let splits = try builder.build(sampled, seed: 0, cooccurrence: train)
        let objects = Dictionary(uniqueKeysWithValues: images.map { ($0.image, Set($0.objects)) })
        var partnerNegatives = 0, adversarialNegatives = 0
        for split in POPEBuilder.splits {
            let questions = splits[split]!
            XCTAssertEqual(questions.count, sampled.count * 6)
            XCTAssertEqual(questions.filter { $0.label == "yes" }.count, sampled.count * 3)
            for q in questions {
                XCTAssertNotNil(Shape(rawValue: q.object), q.object)
                XCTAssertEqual(q.label == "yes", objects[q.image]!.contains(q.object), "\(q.image) \(q.text)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/" + q.image))
            }
            if split == "adversarial" {
                // Every absent partner of a positive is among the image's negatives (asked for that positive, or
                // already for an earlier one whose companion it also is).
                var negatives: [String: Set<String>] = [:]
                for q in questions where q.label == "no" { negatives[q.image, default: []].insert(q.object) }
                for positive in questions where positive.label == "yes" {
                    guard let p = WorldLexicon.partner(of: Shape(rawValue: positive.object)!), !objects[positive.image]!.contains(p.rawValue) else { continue }
                    adversarialNegatives += 1
                    if negatives[positive.image]!.contains(p.rawValue) { partnerNegatives += 1 }
                }
            }
        }
        // Where the partner is absent, the adversarial split asks about it: the probe of the world's bias.
        XCTAssertGreaterThan(adversarialNegatives, 10)
        XCTAssertEqual(partnerNegatives, adversarialNegatives)
    }
}

final class WorldTokenizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/world_tokenizer")

    /// JSON with every object's keys sorted, for comparing files whose key order may differ.
    func canonical(_ v: JSONValue) -> JSONValue {
        switch v {
        case .object(let fields): .object(fields.map { ($0.0, canonical($0.1)) }.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) })
        case .array(let items): .array(items.map(canonical))
        default: v
        }
    }

    func testTheWrittenTokenizerIsTheOneTokenizersBuildsFromTheVocabulary() throws {
        let fixture = try JSONValue.parse(contentsOf: Self.fixtures.appendingPathComponent("tokenizer.json").path)
        XCTAssertEqual(canonical(WorldTokenizer.tokenizerJSON()), canonical(fixture))
    }

    func testEncodeAndDecodeMatchTokenizers() throws {
        let folder = NSTemporaryDirectory() + "world-tokenizer-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try WorldTokenizer.write(to: folder)
        let tokenizer = try Tokenizer(path: folder)
        XCTAssertEqual(tokenizer.eosID, 2)
        XCTAssertEqual(tokenizer.tokenToID("<image>"), WorldTokenizer.imageTokenID)
        let cases = try JSONValue.parse(contentsOf: Self.fixtures.appendingPathComponent("cases.json").path).arrayValue!
        XCTAssertGreaterThan(cases.count, 300)
        for c in cases {
            let text = c["text"]!.stringValue!
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            XCTAssertEqual(try tokenizer.encode(text), ids, text)
            XCTAssertEqual(try tokenizer.encode(text, addSpecialTokens: false), c["ids_no_special"]!.arrayValue!.map { $0.intValue! }, text)
            XCTAssertEqual(Array(tokenizer.decode(ids).unicodeScalars), Array(c["decoded"]!.stringValue!.unicodeScalars), text)
            XCTAssertEqual(Array(tokenizer.decode(ids, skipSpecialTokens: false).unicodeScalars), Array(c["decoded_keep_special"]!.stringValue!.unicodeScalars), text)
        }
    }

    func testEveryWorldTextIsInTheVocabularyAndReadsBack() throws {
        let folder = NSTemporaryDirectory() + "world-tokenizer-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try WorldTokenizer.write(to: folder)
        let tokenizer = try Tokenizer(path: folder)
        var spec = WorldSpec()
        spec.train = 300
        for scene in WorldFolder.trainScenes(spec) {
            let texts = (0..<3).map { SceneText.caption(scene, variant: $0) } + SceneText.questions(scene).flatMap { [$0.text, $0.answer] }
            for text in texts + [ChatFormat.llava15.prompt(SceneText.captionPrompt)] {
                let ids = try tokenizer.encode(text, addSpecialTokens: false)
                XCTAssertFalse(ids.contains(0), "unknown word in: \(text)")
                if !text.contains("<image>") { XCTAssertEqual(Array(tokenizer.decode(ids).unicodeScalars), Array(text.lowercased().unicodeScalars), text) }
            }
        }
    }
}

final class CustomCHAIRTests: XCTestCase {
    /// CHAIR over the world's object list: plurals are listed names, an absent shape is a hallucination.
    func testTheWorldsObjectListFindsShapesAndTheirPlurals() throws {
        let chair = try CHAIR(objectList: WorldLexicon.chairObjects)
        XCTAssertEqual(chair.mentions("a red circle, two squares and a small blue star."), ["circle", "square", "star"])
        let gt = chair.groundTruth(objects: ["circle", "star"], captions: [])
        let r = chair.score(pairs: [("a", "a red circle, two squares and a small blue star.", gt), ("b", "a green star.", gt)])
        // One caption of two names an absent shape (square); 1 of 4 mentions is hallucinated; recall: circle,
        // star (a) + star (b) of 2 + 2 ground-truth objects.
        XCTAssertEqual(r.chairS, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.chairI, 0.25, accuracy: 1e-12)
        XCTAssertEqual(r.recall, 0.75, accuracy: 1e-12)
    }

    func testTwoWordNamesAndBadLists() throws {
        let chair = try CHAIR(objectList: "traffic light, traffic lights, stoplight\ncar, cars, automobile\n")
        XCTAssertEqual(chair.mentions("A traffic light near two cars, a stoplight and an automobile."), ["traffic light", "car", "traffic light", "car"])
        XCTAssertThrowsError(try CHAIR(objectList: "\n\n"))
        XCTAssertThrowsError(try CHAIR(objectList: "a very long name, x\n"))
    }
}
