import Foundation
import Images

/// Draws scenes anti-aliased: each pixel takes each object's colour in proportion to the share of the pixel the
/// object covers, measured on a 4 x 4 grid of sample points inside the pixel.
public enum SceneRenderer {
    static let samples = 4

    public static func render(_ scene: Scene) -> RGBImage {
        var image = RGBImage(width: scene.canvas, height: scene.canvas, fill: scene.background.rgb)
        for object in scene.objects { draw(object, into: &image) }
        return image
    }

    /// The share of pixel (px, py) that `object` covers, in 1/16 steps.
    public static func coverage(_ object: SceneObject, px: Int, py: Int) -> Double {
        var inside = 0
        for sy in 0..<samples {
            for sx in 0..<samples {
                let x = Double(px) + (Double(sx) + 0.5) / Double(samples)
                let y = Double(py) + (Double(sy) + 0.5) / Double(samples)
                if contains(object.shape, u: (x - object.x) / object.radius, v: (y - object.y) / object.radius) { inside += 1 }
            }
        }
        return Double(inside) / Double(samples * samples)
    }

    static func draw(_ object: SceneObject, into image: inout RGBImage) {
        let c = object.colour.rgb
        let x0 = max(0, Int((object.x - object.radius).rounded(.down)) - 1), x1 = min(image.width - 1, Int((object.x + object.radius).rounded(.up)) + 1)
        let y0 = max(0, Int((object.y - object.radius).rounded(.down)) - 1), y1 = min(image.height - 1, Int((object.y + object.radius).rounded(.up)) + 1)
        guard x0 <= x1, y0 <= y1 else { return }
        for py in y0...y1 {
            for px in x0...x1 {
                let a = coverage(object, px: px, py: py)
                guard a > 0 else { continue }
                let i = (py * image.width + px) * 3
                func blend(_ old: UInt8, _ new: UInt8) -> UInt8 { UInt8((Double(old) * (1 - a) + Double(new) * a).rounded()) }
                image.pixels[i] = blend(image.pixels[i], c.r)
                image.pixels[i + 1] = blend(image.pixels[i + 1], c.g)
                image.pixels[i + 2] = blend(image.pixels[i + 2], c.b)
            }
        }
    }

    /// Whether the point (u, v), in units of the object's radius from its centre (v downwards), is inside.
    public static func contains(_ shape: Shape, u: Double, v: Double) -> Bool {
        let au = abs(u), av = abs(v)
        switch shape {
        case .circle:
            return u * u + v * v <= 1
        case .square:
            return au <= 0.82 && av <= 0.82
        case .triangle:
            // Apex up at v = -0.95, base at v = 0.8.
            return v <= 0.8 && v >= -0.95 && au <= (v + 0.95) / 1.75
        case .star:
            return inPolygon(u, v, starPolygon)
        case .heart:
            // (x² + y² - 1)³ - x² y³ <= 0, y upwards, scaled into the unit square.
            let x = u * 1.15, y = -v * 1.2 + 0.15
            let t = x * x + y * y - 1
            return t * t * t - x * x * y * y * y <= 0
        case .cross:
            return (au <= 0.3 && av <= 0.92) || (av <= 0.3 && au <= 0.92)
        case .diamond:
            return au / 0.8 + av <= 1
        case .ring:
            let r2 = u * u + v * v
            return r2 <= 1 && r2 >= 0.5 * 0.5
        case .hexagon:
            let s = 3.0.squareRoot()
            return av <= s / 2 && s * au + av <= s
        case .crescent:
            let du = u - 0.45, dv = v + 0.15
            return u * u + v * v <= 1 && du * du + dv * dv > 0.8 * 0.8
        }
    }

    /// A five-pointed star, point up: outer radius 1, inner 0.42.
    static let starPolygon: [(Double, Double)] = (0..<10).map { k in
        let angle = -Double.pi / 2 + Double(k) * Double.pi / 5
        let r = k % 2 == 0 ? 1.0 : 0.42
        return (r * cos(angle), r * sin(angle))
    }

    static func inPolygon(_ x: Double, _ y: Double, _ polygon: [(Double, Double)]) -> Bool {
        var inside = false
        var j = polygon.count - 1
        for i in polygon.indices {
            let (xi, yi) = polygon[i], (xj, yj) = polygon[j]
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi { inside.toggle() }
            j = i
        }
        return inside
    }
}
