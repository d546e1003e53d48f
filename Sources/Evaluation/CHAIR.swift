import Common
import Foundation
import JSON

/// CHAIR (Rohrbach et al. 2018, LisaAnne/Hallucination utils/chair.py): object mentions in a caption, found with
/// COCO's synonym list, checked against the image's objects (instance categories and the objects named by its
/// ground-truth captions). CHAIRs = captions with a hallucinated object / captions; CHAIRi = hallucinated
/// mentions / all mentions; recall (as OPERA's chair.py adds it) = ground-truth objects mentioned / ground-truth
/// objects, pooled over captions.
public struct CHAIR: Sendable {
    /// synonym -> canonical COCO category, as the shipped synonyms file lists them.
    public let canonical: [String: String]
    let doubleWords: [String: String]
    let singular: [String: String]

    /// The shipped data: COCO synonyms and the original's rules (double words, singular forms from Pattern).
    public init() throws {
        try self.init(synonyms: String(decoding: PackageResources.coco_synonyms_txt, as: UTF8.self),
                      rules: JSONValue.parse(PackageResources.chair_rules_json))
    }

    /// Another object vocabulary, in the synonyms file's format: one object per line, its other names (synonyms,
    /// plural forms) after it, separated by ", ". Words are matched as listed (no singularising: list the plurals);
    /// a two-word name is matched as the two words in a row.
    public init(objectList: String, source: String = "objects file") throws {
        var doubles: [(String, JSONValue)] = []
        for line in objectList.split(separator: "\n") {
            for entry in line.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: ", ") {
                let words = entry.split(separator: " ")
                if words.count > 2 { throw EvalError("\(source): '\(entry)' has more than two words (CHAIR matches one or two)") }
                if words.count == 2 { doubles.append((entry, .string(entry))) }
            }
        }
        try self.init(synonyms: objectList, rules: .object([("double_words", .object(doubles)), ("singularize", .object([]))]))
        if canonical.isEmpty { throw EvalError("\(source): no objects listed") }
    }

    init(synonyms: String, rules: JSONValue) throws {
        var canonical: [String: String] = [:]
        // Exactly as the original reads it: strip the line, split on ", " (an entry after a double space keeps
        // its leading space and so never matches).
        for line in synonyms.split(separator: "\n", omittingEmptySubsequences: false) {
            let entries = line.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: ", ")
            guard let head = entries.first, !head.isEmpty else { continue }
            for e in entries { canonical[e] = head }
        }
        self.canonical = canonical
        guard let doubles = rules["double_words"]?.objectValue, let singular = rules["singularize"]?.objectValue else {
            throw EvalError("chair_rules.json: missing double_words or singularize")
        }
        doubleWords = Dictionary(doubles.compactMap { k, v in v.stringValue.map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
        self.singular = Dictionary(singular.compactMap { k, v in v.stringValue.map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Words after singularising and merging two-word objects (the original's caption_to_words, before the
    /// object filter).
    public func words(_ caption: String) -> [String] {
        let tokens = WordTokenizer.tokenize(caption.lowercased()).map { singular[$0] ?? $0 }
        var merged: [String] = []
        var i = 0
        while i < tokens.count {
            if i + 1 < tokens.count, let double = doubleWords[tokens[i] + " " + tokens[i + 1]] {
                merged.append(double)
                i += 2
            } else {
                merged.append(tokens[i])
                i += 1
            }
        }
        return merged
    }

    /// The canonical objects a caption mentions, in order, repeats kept.
    public func mentions(_ caption: String) -> [String] {
        var words = words(caption)
        // "toilet seat" is a toilet, and so is "the seat of the toilet".
        if words.contains("toilet") && words.contains("seat") { words.removeAll { $0 == "seat" } }
        return words.compactMap { canonical[$0] }
    }

    public struct ImageResult: Sendable {
        public var id: String
        public var mentioned: [String]
        public var hallucinated: [String]
        public var groundTruth: Set<String>
    }

    public struct Result: Sendable {
        public var chairS = 0.0, chairI = 0.0, recall = 0.0
        public var images: [ImageResult] = []
        public var matchMode: MatchMode = .order
        public var questions = 0
        public var missing = 0
        public var issues: [EvalIssue] = []

        public func report() -> Report {
            Report(.object([
                ("benchmark", .string("chair")), ("matched_by", .string(matchMode.rawValue)), ("questions", .int(questions)),
                ("scored", .int(images.count)), ("missing", .int(missing)),
                ("overall", .object([("CHAIRs", .double(chairS)), ("CHAIRi", .double(chairI)), ("recall", .double(recall)),
                                     ("captions", .int(images.count)), ("mentions", .int(images.reduce(0) { $0 + $1.mentioned.count })),
                                     ("hallucinated", .int(images.reduce(0) { $0 + $1.hallucinated.count }))])),
                ("per_image", .array(images.map { .object([("image_id", .string($0.id)), ("mentioned", .array($0.mentioned.map { .string($0) })),
                                                           ("hallucinated", .array($0.hallucinated.map { .string($0) }))]) })),
                ("issues", issuesJSON(issues)),
            ]))
        }
    }

    /// The image's objects: instance categories (through the synonyms) and the objects of its captions.
    public func groundTruth(objects: [String], captions: [String]) -> Set<String> {
        var gt = Set(objects.compactMap { canonical[$0] ?? canonical[$0.lowercased()] })
        for c in captions { gt.formUnion(mentions(c)) }
        return gt
    }

    public func score(pairs: [(id: String, caption: String, groundTruth: Set<String>)]) -> Result {
        var r = Result()
        var hallucinatedCaptions = 0, mentionCount = 0, hallucinated = 0, recalled = 0, gtTotal = 0
        for p in pairs {
            let m = mentions(p.caption)
            let h = m.filter { !p.groundTruth.contains($0) }
            mentionCount += m.count
            hallucinated += h.count
            if !h.isEmpty { hallucinatedCaptions += 1 }
            recalled += Set(m).intersection(p.groundTruth).count
            gtTotal += p.groundTruth.count
            r.images.append(ImageResult(id: p.id, mentioned: m, hallucinated: h, groundTruth: p.groundTruth))
        }
        r.chairS = pairs.isEmpty ? 0 : Double(hallucinatedCaptions) / Double(pairs.count)
        r.chairI = mentionCount == 0 ? 0 : Double(hallucinated) / Double(mentionCount)
        r.recall = gtTotal == 0 ? 0 : Double(recalled) / Double(gtTotal)
        return r
    }

    /// Scores captions against annotations: a JSONL of `{"image_id", "objects": [...], "captions": [...]}`, or COCO
    /// `instances_*.json` (with `captions_*.json` beside it through `captionsFile`). Captions: JSONL with
    /// `image_id` (or `question_id`) and `caption` (or `text`/`answer`).
    public func score(annotationsFile: String, captionsFile: String? = nil, answersFile: String) throws -> Result {
        var issues: [EvalIssue] = []
        var truth: [String: Set<String>] = [:]
        if annotationsFile.hasSuffix(".json") {
            let coco = try COCOAnnotations(instances: annotationsFile, captions: captionsFile)
            for (id, objects) in coco.objects { truth[id] = groundTruth(objects: objects, captions: coco.captions[id] ?? []) }
        } else {
            let af = try JSONLines(path: annotationsFile)
            issues += af.issues
            for (line, record) in af.records {
                guard let id = record.text(["image_id", "question_id"]) else {
                    issues.append(EvalIssue(file: annotationsFile, line: line, message: "no image_id, skipped"))
                    continue
                }
                let objects = record["objects"]?.arrayValue?.compactMap(\.stringValue) ?? []
                for o in objects where canonical[o] == nil && canonical[o.lowercased()] == nil {
                    issues.append(EvalIssue(file: annotationsFile, line: line, message: "unknown object \"\(o)\" (not a COCO category or synonym), ignored"))
                }
                truth[id] = groundTruth(objects: objects, captions: record["captions"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            }
        }
        let cf = try JSONLines(path: answersFile)
        issues += cf.issues
        let answers = cf.records.map { Answer(line: $0.line, record: $0.value, idKeys: ["image_id", "question_id"]) }
        // Captions name their image; only the captioned images are scored.
        var pairs: [(id: String, caption: String, groundTruth: Set<String>)] = []
        var seen = Set<String>()
        for a in answers {
            guard let id = a.id else {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "no image_id, skipped"))
                continue
            }
            if let error = a.error {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "no caption (\(error))"))
                continue
            }
            guard let gt = truth[id] else {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "image_id \(id) has no annotation, skipped"))
                continue
            }
            if !seen.insert(id).inserted {
                issues.append(EvalIssue(file: answersFile, line: a.line, message: "a second caption for image_id \(id); scored as well"))
            }
            pairs.append((id, a.text, gt))
        }
        var result = score(pairs: pairs)
        result.matchMode = .questionID
        result.questions = cf.records.count
        result.issues = issues
        return result
    }
}

/// COCO annotation files: instance categories per image (and reference captions, when given).
public struct COCOAnnotations: Sendable {
    /// image id -> category names in annotation order, without repeats; every listed image, even with none.
    public var objects: [(String, [String])] = []
    public var fileNames: [String: String] = [:]
    public var captions: [String: [String]] = [:]

    public init(instances: String, captions captionsFile: String? = nil) throws {
        let json = try JSONValue.parse(contentsOf: instances)
        guard let categories = json["categories"]?.arrayValue, let annotations = json["annotations"]?.arrayValue,
              let images = json["images"]?.arrayValue else {
            throw EvalError("\(instances): a COCO instances file needs images, annotations and categories")
        }
        var names: [Int: String] = [:]
        for c in categories { if let id = c["id"]?.intValue, let name = c["name"]?.stringValue { names[id] = name } }
        var perImage: [String: [String]] = [:]
        for (i, a) in annotations.enumerated() {
            guard let image = a.text(["image_id"]), let cat = a["category_id"]?.intValue, let name = names[cat] else {
                throw EvalError("\(instances): annotation \(i) lacks image_id or a known category_id")
            }
            if !(perImage[image]?.contains(name) ?? false) { perImage[image, default: []].append(name) }
        }
        for image in images {
            guard let id = image.text(["id"]) else { continue }
            objects.append((id, perImage[id] ?? []))
            if let f = image["file_name"]?.stringValue { fileNames[id] = f }
        }
        if let captionsFile {
            let c = try JSONValue.parse(contentsOf: captionsFile)
            for a in c["annotations"]?.arrayValue ?? [] {
                if let id = a.text(["image_id"]), let text = a["caption"]?.stringValue { captions[id, default: []].append(text) }
            }
        }
    }
}
