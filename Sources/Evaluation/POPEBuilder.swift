import Common
import Foundation
import JSON
import Models

/// Builds POPE question sets from per-image object annotations, as RUCAIBox/POPE does: images with at least 3
/// objects, N of them sampled (seeded; kept in annotation order), the first 3 objects of each as positives, each
/// followed by one negative absent from the image and not yet asked about it, drawn at random (random), by global
/// frequency among the sampled images (popular) or by co-occurrence with that positive (adversarial); where
/// popular/adversarial candidates run out, a random one. The original's "an ... imange" typo is fixed.
/// Co-occurrence is counted over the sampled images, as the original does over COCO; when the evaluated images
/// come from another distribution than the training data (a held-out set that breaks a bias on purpose), pass the
/// training annotations instead, so that the adversarial split asks about the prior the model learned.
public struct POPEBuilder: Sendable {
    public static let splits = ["random", "popular", "adversarial"]
    public var positives = 3

    public struct Image: Sendable {
        public var image: String
        public var objects: [String]
    }

    public struct Question: Sendable, Equatable {
        public var id: Int
        public var image: String
        public var text: String
        public var label: String
        public var category: String
        public var object: String
    }

    public init() {}

    /// Reads `{"image", "objects": [...]}` JSONL, or COCO instances JSON (images by `file_name`). Objects keep
    /// their first-listed order, without repeats. Bad lines are returned as issues.
    public static func annotations(_ path: String) throws -> (images: [Image], issues: [EvalIssue]) {
        if path.hasSuffix(".json") {
            let coco = try COCOAnnotations(instances: path)
            return (coco.objects.map { Image(image: coco.fileNames[$0.0] ?? $0.0, objects: $0.1) }, [])
        }
        let lines = try JSONLines(path: path)
        var issues = lines.issues
        var images: [Image] = []
        for (line, record) in lines.records {
            guard let image = record.text(["image", "file_name", "image_id"]), let objects = record["objects"]?.arrayValue?.compactMap(\.stringValue) else {
                issues.append(EvalIssue(file: path, line: line, message: "needs \"image\" and \"objects\", skipped"))
                continue
            }
            var unique: [String] = []
            for o in objects where !unique.contains(o) { unique.append(o) }
            images.append(Image(image: image, objects: unique))
        }
        return (images, issues)
    }

    /// "Is there a dog in the image?", "Is there an apple in the image?".
    public static func questionText(_ object: String) -> String {
        let vowel = object.first.map { "aeiouAEIOU".contains($0) } ?? false
        return "Is there \(vowel ? "an" : "a") \(object) in the image?"
    }

    /// The sampled images: all eligible ones when `count` reaches them, else `count` chosen by the seed.
    public func sample(_ images: [Image], count: Int, seed: UInt64) -> [Image] {
        let eligible = images.filter { $0.objects.count >= positives }
        guard count < eligible.count else { return eligible }
        var rng = SplitMix64(seed: seed)
        var indices = Array(eligible.indices)
        for i in stride(from: indices.count - 1, to: 0, by: -1) { indices.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return indices.prefix(max(0, count)).sorted().map { eligible[$0] }
    }

    /// Objects by how many sampled images hold them, most first; ties in order of first appearance.
    public static func frequencyRanking(_ images: [Image]) -> [(String, Int)] {
        var counts: [String: Int] = [:]
        var order: [String] = []
        for image in images {
            for o in image.objects {
                if counts[o] == nil { order.append(o) }
                counts[o, default: 0] += 1
            }
        }
        return order.enumerated().sorted { counts[$0.element]! != counts[$1.element]! ? counts[$0.element]! > counts[$1.element]! : $0.offset < $1.offset }
            .map { ($0.element, counts[$0.element]!) }
    }

    /// For each object, the others by how often they share an image with it, most first (ties: first seen).
    public static func coOccurrence(_ images: [Image]) -> [String: [String]] {
        var counts: [String: [String: Int]] = [:]
        var order: [String: [String]] = [:]
        for image in images {
            for o in image.objects {
                for other in image.objects where other != o {
                    if counts[o]?[other] == nil { order[o, default: []].append(other) }
                    counts[o, default: [:]][other, default: 0] += 1
                }
            }
        }
        return order.mapValues { others in others }.reduce(into: [:]) { result, entry in
            let row = counts[entry.key]!
            result[entry.key] = entry.value.enumerated().sorted { row[$0.element]! != row[$1.element]! ? row[$0.element]! > row[$1.element]! : $0.offset < $1.offset }.map(\.element)
        }
    }

    /// The three splits over the sampled images; question ids run on across splits (random, popular,
    /// adversarial), so the combined file has unique ids. `cooccurrence` (default: the sampled images) is where
    /// the adversarial split's co-occurrence counts come from.
    public func build(_ sampled: [Image], seed: UInt64, cooccurrence: [Image]? = nil) throws -> [String: [Question]] {
        let ranking = Self.frequencyRanking(sampled).map(\.0)
        let co = Self.coOccurrence(cooccurrence ?? sampled)
        var out: [String: [Question]] = [:]
        var nextID = 1
        for (s, split) in Self.splits.enumerated() {
            var rng = SplitMix64(seed: seed &+ UInt64(s + 1) &* 0x9E37_79B9)
            var questions: [Question] = []
            for image in sampled {
                var asked: [String] = []
                for i in 0..<positives {
                    let positive = image.objects[i]
                    asked.append(positive)
                    questions.append(Question(id: nextID, image: image.image, text: Self.questionText(positive), label: "yes", category: split, object: positive))
                    nextID += 1
                    let fits = { (o: String) in !asked.contains(o) && !image.objects.contains(o) }
                    var negative: String?
                    switch split {
                    case "popular": negative = ranking.first(where: fits)
                    case "adversarial": negative = co[positive]?.first(where: fits)
                    default: break
                    }
                    if negative == nil {
                        let pool = ranking.filter(fits)
                        guard !pool.isEmpty else { throw EvalError("\(image.image): every known object is in the image; no negative exists") }
                        negative = pool[Int(rng.next() % UInt64(pool.count))]
                    }
                    asked.append(negative!)
                    questions.append(Question(id: nextID, image: image.image, text: Self.questionText(negative!), label: "no", category: split, object: negative!))
                    nextID += 1
                }
            }
            out[split] = questions
        }
        return out
    }

    /// Writes pope_random.jsonl, pope_popular.jsonl, pope_adversarial.jsonl and pope_all.jsonl (all three).
    public func write(_ splits: [String: [Question]], to folder: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func line(_ q: Question) -> String {
            JSONValue.object([("question_id", .int(q.id)), ("image", .string(q.image)), ("text", .string(q.text)),
                              ("label", .string(q.label)), ("category", .string(q.category))]).serialized() + "\n"
        }
        var written: [String] = []
        var all = ""
        for split in Self.splits {
            let text = (splits[split] ?? []).map(line).joined()
            all += text
            let path = (folder as NSString).appendingPathComponent("pope_\(split).jsonl")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            written.append(path)
        }
        let path = (folder as NSString).appendingPathComponent("pope_all.jsonl")
        try all.write(toFile: path, atomically: true, encoding: .utf8)
        return written + [path]
    }
}
