import Images
import JSON

/// The words of ShapesWorld: shapes, colours, sizes, counts, relations, and the shapes that go together.
public enum Shape: String, CaseIterable, Sendable, Codable {
    case circle, square, triangle, star, heart, cross, diamond, ring, hexagon, crescent

    public var plural: String { rawValue + "s" }
}

/// Object colours; backgrounds use their own palette so that an object never disappears into its background.
public enum ObjectColour: String, CaseIterable, Sendable {
    case red, green, blue, yellow, purple, orange, white, black

    public var rgb: RGB {
        switch self {
        case .red: RGB(220, 40, 40)
        case .green: RGB(40, 170, 60)
        case .blue: RGB(40, 80, 220)
        case .yellow: RGB(240, 220, 40)
        case .purple: RGB(140, 60, 180)
        case .orange: RGB(245, 140, 30)
        case .white: RGB(250, 250, 250)
        case .black: RGB(20, 20, 20)
        }
    }
}

public enum BackgroundColour: String, CaseIterable, Sendable {
    case gray, beige, teal, pink

    public var rgb: RGB {
        switch self {
        case .gray: RGB(128, 128, 128)
        case .beige: RGB(215, 200, 160)
        case .teal: RGB(30, 110, 110)
        case .pink: RGB(235, 160, 190)
        }
    }
}

public enum ObjectSize: String, CaseIterable, Sendable {
    case small, large
}

/// Where one object lies relative to another.
public enum Relation: String, CaseIterable, Sendable {
    case leftOf = "left of", rightOf = "right of", above, below

    public var opposite: Relation {
        switch self {
        case .leftOf: .rightOf
        case .rightOf: .leftOf
        case .above: .below
        case .below: .above
        }
    }
}

public enum WorldLexicon {
    /// Shapes that co-occur in biased (training) scenes: when one of a pair is in a scene, its partner usually
    /// is too. A model that leans on this prior names the partner when it is absent.
    public static let partners: [(Shape, Shape)] = [(.circle, .square), (.triangle, .star), (.heart, .cross), (.diamond, .ring)]

    public static func partner(of shape: Shape) -> Shape? {
        for (a, b) in partners {
            if a == shape { return b }
            if b == shape { return a }
        }
        return nil
    }

    public static let counts = ["zero", "one", "two", "three", "four", "five"]

    /// Coarse positions on the canvas, a 3 x 3 grid: "top left", "top", ..., "center", ..., "bottom right".
    public static let positions = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]

    /// Every word and phrase of the world that names an object, an attribute, a count or a relation: what the
    /// rule masker hides and the rule editor swaps.
    public static var maskWords: [String] {
        var words: [String] = []
        words += Shape.allCases.flatMap { [$0.rawValue, $0.plural] }
        words += ObjectColour.allCases.map(\.rawValue) + BackgroundColour.allCases.map(\.rawValue)
        words += ObjectSize.allCases.map(\.rawValue)
        words += counts.dropFirst()
        words += Relation.allCases.map(\.rawValue)
        words += positions
        return words
    }

    /// The rule masker's word list (`--mask-words`): the same words in the kinds a strategic mask chooses from,
    /// each kind under its `[objects]`, `[attributes]` or `[relations]` line.
    public static var maskWordList: String {
        let objects = Shape.allCases.flatMap { [$0.rawValue, $0.plural] }
        let attributes = ObjectColour.allCases.map(\.rawValue) + BackgroundColour.allCases.map(\.rawValue) + ObjectSize.allCases.map(\.rawValue)
            + counts.dropFirst()
        let relations = Relation.allCases.map(\.rawValue) + positions
        return [("objects", objects), ("attributes", attributes), ("relations", relations)]
            .map { "[\($0.0)]\n" + $0.1.joined(separator: "\n") }.joined(separator: "\n") + "\n"
    }

    /// The CHAIR object list of the world, in the format of COCO's synonyms file: the object, then its other
    /// names (here its plural), separated by ", ".
    public static var chairObjects: String {
        Shape.allCases.map { "\($0.rawValue), \($0.plural)" }.joined(separator: "\n") + "\n"
    }

    /// The rule VaPR editor's lexicon for the world (`--editor rules --editor-lexicon`): which words swap with
    /// which. Background colours join the colour class, so "what colour is the background?" can be answered wrong.
    public static var editorLexicon: JSONValue {
        func list(_ words: [String]) -> JSONValue { .array(words.map { .string($0) }) }
        return .object([
            ("classes", .object([
                ("colour", list(ObjectColour.allCases.map(\.rawValue) + BackgroundColour.allCases.map(\.rawValue))),
                ("background", list(BackgroundColour.allCases.map(\.rawValue))),
                ("count", list(Array(counts.dropFirst()))),
                ("size", list(ObjectSize.allCases.map(\.rawValue))),
                ("object", list(Shape.allCases.map(\.rawValue))),
            ])),
            ("opposites", .array([["left of", "right of"], ["above", "below"], ["left", "right"], ["top", "bottom"], ["yes", "no"]].map { list($0) })),
        ])
    }
}
