/// Dense ground truth for pretraining a vision tower on the world: per patch, what covers it; per scene, what is
/// in it.
public enum SceneLabels {
    /// Per patch of `patch` x `patch` pixels (row-major): the index of the object covering most of its pixel
    /// centres, if it covers at least a tenth of them, else nil (background).
    public static func patchObjects(_ scene: Scene, patch: Int) -> [Int?] {
        let side = scene.canvas / patch
        var out: [Int?] = []
        for py in 0..<side {
            for px in 0..<side {
                var best: (Int, Int)? = nil
                for (k, o) in scene.objects.enumerated() {
                    var covered = 0
                    for y in (py * patch)..<((py + 1) * patch) {
                        for x in (px * patch)..<((px + 1) * patch) {
                            if SceneRenderer.contains(o.shape, u: (Double(x) + 0.5 - o.x) / o.radius, v: (Double(y) + 0.5 - o.y) / o.radius) { covered += 1 }
                        }
                    }
                    if covered * 10 >= patch * patch, covered > (best?.1 ?? 0) { best = (k, covered) }
                }
                out.append(best?.0)
            }
        }
        return out
    }

    /// Multi-hot presence: shapes, then object colours, then the background colour (one of them set).
    public static func presence(_ scene: Scene) -> [Float] {
        var v = [Float](repeating: 0, count: presenceCount)
        for o in scene.objects {
            v[Shape.allCases.firstIndex(of: o.shape)!] = 1
            v[Shape.allCases.count + ObjectColour.allCases.firstIndex(of: o.colour)!] = 1
        }
        v[Shape.allCases.count + ObjectColour.allCases.count + BackgroundColour.allCases.firstIndex(of: scene.background)!] = 1
        return v
    }

    public static var presenceCount: Int { Shape.allCases.count + ObjectColour.allCases.count + BackgroundColour.allCases.count }
}
