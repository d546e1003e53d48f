import Common

/// A question about a scene with its exact answer.
public struct WorldQuestion: Sendable, Equatable {
    public enum Category: String, Sendable, CaseIterable {
        case existence, count, colour, size, position, background
    }
    public var category: Category
    public var text: String
    public var answer: String
}

/// Captions and questions written from a scene's annotations; all lower-case, in the world's vocabulary.
public enum SceneText {
    public static let captionPrompt = "describe the image."

    /// One of three caption templates (chosen by `variant`): the objects with their attributes, left to right,
    /// and the relations between neighbours.
    public static func caption(_ scene: Scene, variant: Int) -> String {
        let objects = scene.objects.sorted { $0.x < $1.x }
        let list = join(objects.map { "a \($0.description)" })
        let n = objects.count
        let countText = n == 1 ? "one object" : "\(WorldLexicon.counts[n]) objects"
        var relations: [String] = []
        func unique(_ o: SceneObject) -> Bool { objects.filter { $0.shape == o.shape && $0.colour == o.colour }.count == 1 }
        // Neighbours from left to right, where "the <colour> <shape>" names each of them alone.
        for (a, b) in zip(objects, objects.dropFirst()) where unique(a) && unique(b) {
            relations.append("the \(a.colour.rawValue) \(a.shape.rawValue) is \(Scene.relation(of: a, to: b).rawValue) the \(b.colour.rawValue) \(b.shape.rawValue).")
        }
        let relationText = relations.isEmpty ? "" : " " + relations.joined(separator: " ")
        switch variant % 3 {
        case 0: return "a \(scene.background.rawValue) background with \(list).\(relationText)"
        case 1: return "there \(n == 1 ? "is" : "are") \(countText) on a \(scene.background.rawValue) background, \(list).\(relationText)"
        default: return "the image shows \(list) on a \(scene.background.rawValue) background.\(relationText)"
        }
    }

    static func join(_ items: [String]) -> String {
        switch items.count {
        case 0: return ""
        case 1: return items[0]
        default: return items.dropLast().joined(separator: ", ") + " and " + items.last!
        }
    }

    /// "is there a circle in the image?", as POPE asks it (lower-cased).
    public static func existenceQuestion(_ shape: Shape) -> String { "is there a \(shape.rawValue) in the image?" }

    /// Every question the scene answers exactly: existence of each present shape (yes) and of each absent
    /// one (no), counts, and the colour, size and position of each object its shape (or its colour and shape)
    /// names uniquely, and the background.
    public static func questions(_ scene: Scene) -> [WorldQuestion] {
        var out: [WorldQuestion] = []
        for s in Shape.allCases {
            out.append(WorldQuestion(category: .existence, text: existenceQuestion(s), answer: scene.count(of: s) > 0 ? "yes" : "no"))
        }
        out.append(WorldQuestion(category: .count, text: "how many objects are there?", answer: WorldLexicon.counts[scene.objects.count]))
        for s in scene.shapes {
            out.append(WorldQuestion(category: .count, text: "how many \(s.plural) are there?", answer: WorldLexicon.counts[scene.count(of: s)]))
        }
        for o in scene.objects {
            if scene.count(of: o.shape) == 1 {
                out.append(WorldQuestion(category: .colour, text: "what colour is the \(o.shape.rawValue)?", answer: o.colour.rawValue))
            }
            if scene.objects.filter({ $0.shape == o.shape && $0.colour == o.colour }).count == 1 {
                let name = "\(o.colour.rawValue) \(o.shape.rawValue)"
                out.append(WorldQuestion(category: .size, text: "is the \(name) small or large?", answer: o.size.rawValue))
                out.append(WorldQuestion(category: .position, text: "where is the \(name)?", answer: scene.position(of: o)))
            }
        }
        out.append(WorldQuestion(category: .background, text: "what colour is the background?", answer: scene.background.rawValue))
        return out
    }

    /// The answer to a question in a full sentence, as instruction data answers (Re-Align's samples mix these
    /// with captions): existence names what is there ("yes, there is a small red circle in the image.") or what is
    /// not, counts name the shape, attributes name the object they describe.
    public static func sentenceAnswer(_ q: WorldQuestion, scene: Scene) -> String {
        func plural(_ n: Int, _ shape: Shape) -> String { n == 1 ? "one \(shape.rawValue)" : "\(WorldLexicon.counts[n]) \(shape.plural)" }
        switch q.category {
        case .existence:
            let shape = Shape.allCases.first { existenceQuestion($0) == q.text }!
            let present = scene.objects.filter { $0.shape == shape }
            if present.isEmpty { return "no, there is no \(shape.rawValue) in the image." }
            if present.count == 1 { return "yes, there is a \(present[0].description) in the image." }
            return "yes, there are \(plural(present.count, shape)) in the image: \(join(present.map { "a \($0.description)" }))."
        case .count:
            if q.text == "how many objects are there?" {
                let n = scene.objects.count
                return n == 1 ? "there is one object in the image." : "there are \(WorldLexicon.counts[n]) objects in the image."
            }
            let shape = Shape.allCases.first { q.text == "how many \($0.plural) are there?" }!
            let n = scene.count(of: shape)
            return n == 1 ? "there is one \(shape.rawValue) in the image." : "there are \(plural(n, shape)) in the image."
        case .colour:
            let shape = Shape.allCases.first { q.text == "what colour is the \($0.rawValue)?" }!
            return "the \(shape.rawValue) is \(q.answer)."
        case .size:
            let name = q.text.replacingOccurrences(of: "is the ", with: "").replacingOccurrences(of: " small or large?", with: "")
            return "the \(name) is \(q.answer)."
        case .position:
            let name = q.text.replacingOccurrences(of: "where is the ", with: "").replacingOccurrences(of: "?", with: "")
            return "the \(name) is at the \(q.answer) of the image."
        case .background:
            return "the background is \(q.answer)."
        }
    }

    /// A training mix of `count` questions: one existence question answered yes and one answered no (so
    /// existence stays balanced), then others drawn from the remaining categories.
    public static func trainingQuestions(_ scene: Scene, count: Int, rng: inout SplitMix64) -> [WorldQuestion] {
        let all = questions(scene)
        let yes = all.filter { $0.category == .existence && $0.answer == "yes" }
        let no = all.filter { $0.category == .existence && $0.answer == "no" }
        var chosen: [WorldQuestion] = []
        if let q = yes.randomElement(using: &rng) { chosen.append(q) }
        if let q = no.randomElement(using: &rng) { chosen.append(q) }
        var rest = all.filter { $0.category != .existence }
        while chosen.count < count && !rest.isEmpty {
            chosen.append(rest.remove(at: Int(rng.next() % UInt64(rest.count))))
        }
        return chosen
    }
}
