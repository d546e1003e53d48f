import Common
import Foundation
import JSON
import Testing
@testable import Evaluation

@Suite struct POPEBuilderTests {
    func temporaryFolder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("realign-pope-\(UUID().uuidString)").path
    }

    /// The original's structure: 6 questions per image alternating yes/no, positives = the first 3 objects,
    /// negatives absent from the image and never repeated within it.
    @Test func structure() throws {
        let (images, issues) = try POPEBuilder.annotations(fixture("pope_annotations.jsonl"))
        #expect(issues.isEmpty)
        let builder = POPEBuilder()
        let sampled = builder.sample(images, count: 8, seed: 3)
        #expect(sampled.count == 8 && sampled.allSatisfy { $0.objects.count >= 3 })
        let splits = try builder.build(sampled, seed: 3)
        var ids = Set<Int>()
        for split in POPEBuilder.splits {
            let qs = splits[split]!
            #expect(qs.count == 6 * sampled.count)
            #expect(qs.filter { $0.label == "yes" }.count == qs.count / 2)
            for (n, image) in sampled.enumerated() {
                let mine = Array(qs[(6 * n)..<(6 * n + 6)])
                #expect(mine.allSatisfy { $0.image == image.image && $0.category == split })
                #expect(mine.map(\.label) == ["yes", "no", "yes", "no", "yes", "no"])
                #expect(mine.filter { $0.label == "yes" }.map(\.object) == Array(image.objects.prefix(3)))
                let negatives = mine.filter { $0.label == "no" }.map(\.object)
                #expect(negatives.allSatisfy { !image.objects.contains($0) }, "\(split): a negative is in \(image.image)")
                #expect(Set(negatives).count == 3)
                for q in mine { #expect(q.text == POPEBuilder.questionText(q.object)) }
            }
            for q in qs { #expect(ids.insert(q.id).inserted, "question ids repeat") }
        }
    }

    /// Popular and adversarial negatives equal the original algorithm's (tools/reference/make_eval_fixtures.py
    /// pope_build on all eligible images in file order).
    @Test func popularAndAdversarialMatchTheOriginal() throws {
        let want = try JSONValue.parse(contentsOf: fixture("pope_build_expected.json"))
        let (images, _) = try POPEBuilder.annotations(fixture("pope_annotations.jsonl"))
        let builder = POPEBuilder()
        let sampled = builder.sample(images, count: 1000, seed: 0)
        #expect(sampled.map(\.image) == want["selected_images"]?.arrayValue?.compactMap(\.stringValue))
        let ranking = POPEBuilder.frequencyRanking(sampled)
        #expect(ranking.map(\.0) == want["frequency_ranking"]?.arrayValue?.compactMap { $0.arrayValue?.first?.stringValue })
        let co = POPEBuilder.coOccurrence(sampled)
        for (object, list) in want["co_occurrence_ranking"]?.objectValue ?? [] {
            #expect(co[object] == list.arrayValue?.compactMap(\.stringValue), "co-occurrence of \(object)")
        }
        let splits = try builder.build(sampled, seed: 0)
        for split in ["popular", "adversarial"] {
            let qs = splits[split]!
            for (n, e) in (want[split]?.arrayValue ?? []).enumerated() {
                let negatives = qs[(6 * n)..<(6 * n + 6)].filter { $0.label == "no" }.map(\.object)
                for (ours, theirs) in zip(negatives, e["negatives"]?.arrayValue ?? []) where !theirs.isNull {
                    // null: the original fell back to a random pick there.
                    #expect(ours == theirs.stringValue, "\(split) negatives of \(e["image"]?.stringValue ?? "")")
                }
            }
        }
        for t in want["texts"]?.arrayValue ?? [] {
            #expect(POPEBuilder.questionText(t["object"]!.stringValue!) == t["text"]?.stringValue)
        }
    }

    /// With co-occurrence counted over other annotations (a training set), the adversarial negative of each
    /// positive is its most frequent companion there, whatever the sampled images hold together.
    @Test func adversarialCoOccurrenceFromOtherAnnotations() throws {
        let sampled = [POPEBuilder.Image(image: "a.png", objects: ["cat", "dog", "car"]),
                       POPEBuilder.Image(image: "b.png", objects: ["cat", "bus", "tree"]),
                       POPEBuilder.Image(image: "c.png", objects: ["dog", "car", "tree"]),
                       POPEBuilder.Image(image: "d.png", objects: ["lamp", "sky", "sun"])]
        let prior = [POPEBuilder.Image(image: "t1.png", objects: ["cat", "mouse"]), POPEBuilder.Image(image: "t2.png", objects: ["cat", "mouse", "dog"]),
                     POPEBuilder.Image(image: "t3.png", objects: ["dog", "bone"]), POPEBuilder.Image(image: "t4.png", objects: ["dog", "bone"]),
                     POPEBuilder.Image(image: "t5.png", objects: ["car", "road"])]
        let builder = POPEBuilder()
        let own = try builder.build(sampled, seed: 0)["adversarial"]!
        let trained = try builder.build(sampled, seed: 0, cooccurrence: prior)["adversarial"]!
        let negatives = trained.filter { $0.image == "a.png" && $0.label == "no" }.map(\.object)
        #expect(negatives == ["mouse", "bone", "road"])
        // Over the sampled images themselves, cat's companions are dog, car, bus and tree: "mouse" never comes up.
        #expect(own.filter { $0.image == "a.png" && $0.label == "no" }.first?.object == "bus")
        #expect(trained.filter { $0.label == "no" }.allSatisfy { q in !sampled.first { $0.image == q.image }!.objects.contains(q.object) })
    }

    @Test func sameSeedSameFiles() throws {
        let (images, _) = try POPEBuilder.annotations(fixture("pope_annotations.jsonl"))
        let builder = POPEBuilder()
        func files(_ seed: UInt64) throws -> [String] {
            let folder = temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            return try builder.write(builder.build(builder.sample(images, count: 6, seed: seed), seed: seed), to: folder)
                .map { try String(contentsOfFile: $0, encoding: .utf8) }
        }
        let a = try files(11), b = try files(11), c = try files(12)
        #expect(a == b)
        #expect(a != c)
        // The written file scores as a POPE question file.
        let folder = temporaryFolder()
        let paths = try builder.write(builder.build(builder.sample(images, count: 6, seed: 1), seed: 1), to: folder)
        let all = try JSONLines(path: paths.last!)
        #expect(all.issues.isEmpty && all.records.count == 6 * 6 * 3)
    }

    @Test func cocoInstances() throws {
        let (images, _) = try POPEBuilder.annotations(fixture("coco_instances_small.json"))
        #expect(!images.isEmpty)
        #expect(images.allSatisfy { Set($0.objects).count == $0.objects.count })
        #expect(images.allSatisfy { $0.image.hasSuffix(".jpg") })
    }
}

/// Bad input is reported by file and line and counted; nothing crashes, nothing is dropped silently.
@Suite struct BadInputTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("realign-eval-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func popeReportsEveryBadLine() throws {
        let questions = try write("""
            {"question_id": 1, "image": "a.jpg", "text": "Is there a dog in the image?", "label": "yes", "category": "random"}
            {"question_id": 2, "image": "a.jpg", "text": "Is there a cat in the image?", "label": "no", "category": "random"
            {"question_id": 3, "image": "a.jpg", "text": "Is there a car in the image?", "label": "no", "category": "weird"}
            {"question_id": 4, "image": "a.jpg", "text": "Is there a cup in the image?", "label": "maybe", "category": "random"}
            {"question_id": 5, "image": "a.jpg", "text": "Is there a bus in the image?", "label": "yes", "category": "random"}

            """)
        let answers = try write("""
            {"question_id": 1, "text": "Yes"}
            not json
            {"question_id": 3, "text": "No"}
            {"question_id": 9, "text": "No"}

            """)
        let r = try POPEScorer(rule: .pope).score(questionsFile: questions, answersFile: answers)
        let text = r.issues.map(\.description)
        #expect(text.contains { $0.hasPrefix("\(questions):2:") && $0.contains("not valid JSON") })
        #expect(text.contains { $0.hasPrefix("\(questions):3:") && $0.contains("unknown category") })
        #expect(text.contains { $0.hasPrefix("\(questions):4:") && $0.contains("label") })
        #expect(text.contains { $0.hasPrefix("\(questions):5:") && $0.contains("no answer") })
        #expect(text.contains { $0.hasPrefix("\(answers):2:") && $0.contains("not valid JSON") })
        #expect(text.contains { $0.hasPrefix("\(answers):4:") && $0.contains("unknown question_id") })
        #expect(r.overall.count == 2 && r.missing == 1)
        #expect(r.categories.map(\.0) == ["random", "weird"])
        let json = r.report(rule: .pope).json
        #expect(json["missing"]?.intValue == 1 && json["issues"]?.arrayValue?.count == text.count)
    }

    @Test func orderMatchingIsSaidAndShortFilesCounted() throws {
        let questions = try write("""
            {"image": "a.jpg", "text": "Is there a dog in the image?", "label": "yes"}
            {"image": "a.jpg", "text": "Is there a cat in the image?", "label": "no"}
            {"image": "a.jpg", "text": "Is there a car in the image?", "label": "no"}

            """)
        let answers = try write("{\"text\": \"yes\"}\n{\"text\": \"no\"}\n")
        let r = try POPEScorer(rule: .lmmsEval).score(questionsFile: questions, answersFile: answers)
        #expect(r.matchMode == .order && r.missing == 1 && r.overall.count == 2 && r.overall.accuracy == 1)
        #expect(r.report(rule: .lmmsEval).json["matched_by"]?.stringValue == "order")
    }

    @Test func mmeUnknownSubtaskAndHallusionBadRows() throws {
        let questions = try write("""
            {"question_id": 1, "image": "x/1.jpg", "question": "q?", "answer": "Yes", "category": "telepathy"}
            {"question_id": 2, "image": "existence/1.jpg", "question": "q?", "answer": "No", "category": "existence"}

            """)
        let answers = try write("{\"question_id\": 1, \"text\": \"yes\"}\n{\"question_id\": 2, \"text\": \"no\"}\n")
        let r = try MMEScorer().score(questionsFile: questions, answersFile: answers)
        #expect(r.issues.contains { $0.line == 1 && $0.message.contains("unknown MME subtask") })
        #expect(r.subtasks.map(\.name) == ["existence", "telepathy"])
        #expect(r.perception == 100 && r.cognition == 0)  // acc 1, acc+ 0 (a lone question has no pair)

        let hb = try write("""
            {"category": "VX", "subcategory": "a", "visual_input": "1", "set_id": "0", "figure_id": "0", "question_id": "0", "question": "q", "gt_answer": "1"}
            {"category": "VD", "subcategory": "a", "visual_input": "1", "set_id": "0", "figure_id": "0", "question_id": "0", "question": "q"}
            {"category": "VD", "subcategory": "a", "visual_input": "1", "set_id": "0", "figure_id": "0", "question_id": "0", "question": "q", "gt_answer": "1"}

            """)
        let hr = try HallusionBenchScorer().score(questionsFile: hb, answersFile: try write("{\"text\": \"yes\"}\n"))
        #expect(hr.issues.contains { $0.line == 1 && $0.message.contains("unknown category") })
        #expect(hr.issues.contains { $0.line == 2 })
        #expect(hr.overall.count == 1 && hr.overall.aAcc == 1)
    }

    @Test func compareShowsDeltas() throws {
        let a = JSONValue.object([("overall", .object([("accuracy", .double(0.5)), ("count", .int(10))]))])
        let b = JSONValue.object([("overall", .object([("accuracy", .double(0.75)), ("count", .int(10))]))])
        let table = Report.compare(a, b, names: ("base", "aligned"))
        #expect(table.contains("| overall.accuracy | 0.5000 | 0.7500 | +0.2500 |"))
        #expect(table.contains("| overall.count | 10 | 10 | 0 |"))
        #expect(Report(a).markdown.contains("| overall | 0.5000 | 10 |"))
        #expect(try JSONValue.parse(Array(a.serialized(pretty: true).utf8)) == a)
    }
}
