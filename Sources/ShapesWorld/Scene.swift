import Common

/// One object of a scene: its shape, colour and size, and its centre in pixels (y grows downwards).
public struct SceneObject: Sendable, Equatable {
    public var shape: Shape
    public var colour: ObjectColour
    public var size: ObjectSize
    public var x: Double
    public var y: Double
    /// Half the object's extent in pixels.
    public var radius: Double

    public init(shape: Shape, colour: ObjectColour, size: ObjectSize, x: Double, y: Double, radius: Double) {
        self.shape = shape
        self.colour = colour
        self.size = size
        self.x = x
        self.y = y
        self.radius = radius
    }

    /// "large red circle".
    public var description: String { "\(size.rawValue) \(colour.rawValue) \(shape.rawValue)" }
}

/// A square canvas with a background colour and 1-4 objects; everything about it is exact ground truth.
public struct Scene: Sendable, Equatable {
    public var id: String
    public var canvas: Int
    public var background: BackgroundColour
    public var objects: [SceneObject]

    public init(id: String, canvas: Int, background: BackgroundColour, objects: [SceneObject]) {
        self.id = id
        self.canvas = canvas
        self.background = background
        self.objects = objects
    }

    /// Distinct shapes in order of first appearance.
    public var shapes: [Shape] {
        var seen: [Shape] = []
        for o in objects where !seen.contains(o.shape) { seen.append(o.shape) }
        return seen
    }

    public func count(of shape: Shape) -> Int { objects.filter { $0.shape == shape }.count }

    /// Where `a` lies relative to `b`: along the axis on which they are further apart.
    public static func relation(of a: SceneObject, to b: SceneObject) -> Relation {
        let dx = a.x - b.x, dy = a.y - b.y
        if abs(dx) >= abs(dy) { return dx < 0 ? .leftOf : .rightOf }
        return dy < 0 ? .above : .below
    }

    /// The object's cell of a 3 x 3 grid over the canvas: "top left" ... "center" ... "bottom right".
    public func position(of o: SceneObject) -> String {
        let third = Double(canvas) / 3
        let column = min(2, Int(o.x / third)), row = min(2, Int(o.y / third))
        return WorldLexicon.positions[row * 3 + column]
    }
}

/// Seeded scenes. Biased scenes (training) add a shape's partner with probability `partnerRate` (0.8: a shape
/// of a pair then has its partner beside it in 8 of 9 scenes); held-out scenes use 1/3, so that a partnered shape
/// that is there has its partner absent half the time and a model that learned the prior errs. (A pair that comes
/// together holds two partnered shapes, one that does not holds one: P(partner | shape) = 2r / (1 + r).)
public struct SceneGenerator: Sendable {
    public var canvas = 96
    /// Objects sit in the cells of a `grid` x `grid` layout, one per cell, a few pixels off its centre: the cells
    /// are the tiny model's 24-pixel patches, so each image token sees one whole object or none.
    public var grid = 4
    public var partnerRate: Double
    /// Chance that a further object repeats a shape already present (so that counting questions have answers
    /// above one).
    public var repeatRate = 0.2
    public var smallRadius = 7.0
    public var largeRadius = 10.0

    public init(partnerRate: Double) { self.partnerRate = partnerRate }

    /// Training scenes (the biased distribution).
    public static let biased = SceneGenerator(partnerRate: 0.8)
    /// Held-out scenes (the bias broken).
    public static let heldOut = SceneGenerator(partnerRate: 1.0 / 3.0)

    /// Scene `index` of a split; the same (seed, split, index) always gives the same scene.
    public func scene(id: String, seed: UInt64, stream: UInt64, index: Int) -> Scene {
        var rng = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D ^ stream &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(index) &* 0xD1B5_4A32_D192_ED03)
        return make(id: id, rng: &rng)
    }

    private func make(id: String, rng: inout SplitMix64) -> Scene {
        let background = BackgroundColour.allCases[Int(rng.next() % UInt64(BackgroundColour.allCases.count))]
        let n = pick([1, 2, 3, 4], weights: [0.15, 0.25, 0.3, 0.3], rng: &rng)
        let shapes = chooseShapes(n, rng: &rng)
        var cells = Array(0..<(grid * grid))
        cells.shuffle(using: &rng)
        let cell = Double(canvas) / Double(grid)
        var objects: [SceneObject] = []
        for (shape, c) in zip(shapes, cells) {
            let colour = ObjectColour.allCases[Int(rng.next() % UInt64(ObjectColour.allCases.count))]
            let size: ObjectSize = rng.unit() < 0.5 ? .small : .large
            let r = size == .small ? smallRadius : largeRadius
            // Off the cell's centre by up to what keeps a pixel of margin inside the cell.
            let slack = max(0, cell / 2 - r - 1)
            let x = (Double(c % grid) + 0.5) * cell + (rng.unit() * 2 - 1) * slack
            let y = (Double(c / grid) + 0.5) * cell + (rng.unit() * 2 - 1) * slack
            objects.append(SceneObject(shape: shape, colour: colour, size: size, x: x, y: y, radius: r))
        }
        return Scene(id: id, canvas: canvas, background: background, objects: objects)
    }

    /// `n` shapes. A new shape with a partner brings the partner along with probability `partnerRate`
    /// (decided once: otherwise the partner is banned from the scene). Further objects repeat a present shape
    /// with `repeatRate`.
    func chooseShapes(_ n: Int, rng: inout SplitMix64) -> [Shape] {
        var shapes: [Shape] = []
        var banned = Set<Shape>()
        while shapes.count < n {
            if !shapes.isEmpty && rng.unit() < repeatRate {
                shapes.append(shapes[Int(rng.next() % UInt64(shapes.count))])
                continue
            }
            var candidates = Shape.allCases.filter { !shapes.contains($0) && !banned.contains($0) }
            // The last place of a scene with others in it takes a shape without a partner (or a repeat): a
            // partnered shape there could only come alone, which would undercut the rate.
            if n - shapes.count == 1 && !shapes.isEmpty {
                candidates = candidates.filter { WorldLexicon.partner(of: $0) == nil }
                if candidates.isEmpty {
                    shapes.append(shapes[Int(rng.next() % UInt64(shapes.count))])
                    continue
                }
            }
            guard !candidates.isEmpty else { break }
            let shape = candidates[Int(rng.next() % UInt64(candidates.count))]
            guard let partner = WorldLexicon.partner(of: shape), !shapes.contains(partner), !banned.contains(partner) else {
                shapes.append(shape)
                continue
            }
            if rng.unit() < partnerRate {
                shapes.append(shape)
                if shapes.count < n { shapes.append(partner) }
            } else {
                shapes.append(shape)
                banned.insert(partner)
            }
        }
        return shapes
    }

    private func pick(_ values: [Int], weights: [Double], rng: inout SplitMix64) -> Int {
        var r = rng.unit() * weights.reduce(0, +)
        for (v, w) in zip(values, weights) {
            r -= w
            if r < 0 { return v }
        }
        return values.last!
    }
}
