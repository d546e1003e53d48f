import Foundation
import JSON

/// Plain SVG line charts of training metrics (no dependencies; opens in any browser).
public enum Charts {
    static let groups: [(file: String, title: String, keys: @Sendable (String) -> Bool)] = [
        ("loss.svg", "Loss terms", { $0 == "loss" || $0.hasPrefix("loss/") }),
        ("reward_margins.svg", "Rewards", { $0.hasPrefix("rewards/") && $0 != "rewards/accuracies" }),
        ("accuracies.svg", "Reward accuracy", { $0 == "rewards/accuracies" }),
        ("learning_rate.svg", "Learning rate", { $0 == "lr" }),
    ]

    public static func write(metrics path: String, to folder: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        var series: [String: [(Double, Double)]] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let v = try? JSONValue.parse(Array(line.utf8)), let step = v["step"]?.doubleValue else { continue }
            for (k, value) in v.objectValue ?? [] where k != "step" {
                if let d = value.doubleValue { series[k, default: []].append((step, d)) }
            }
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for group in groups {
            let chosen = series.filter { group.keys($0.key) }.sorted { $0.key < $1.key }
            guard !chosen.isEmpty else { continue }
            try svg(title: group.title, series: chosen.map { ($0.key, $0.value) })
                .write(toFile: (folder as NSString).appendingPathComponent(group.file), atomically: true, encoding: .utf8)
        }
    }

    /// A line chart of named series of (x, y) points.
    public static func svg(title: String, series: [(String, [(Double, Double)])]) -> String {
        let width = 720.0, height = 360.0, left = 70.0, right = 160.0, top = 40.0, bottom = 40.0
        let points = series.flatMap(\.1)
        let xs = points.map(\.0), ys = points.map(\.1)
        let (x0, x1) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1))
        var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        // Round ticks (1, 2 or 5 times a power of ten), the axis widened to the ticks around the data.
        let step = niceStep((y1 - y0) / 4)
        (y0, y1) = ((y0 / step + 1e-9).rounded(.down) * step, (y1 / step - 1e-9).rounded(.up) * step)
        let ticks = Int(((y1 - y0) / step).rounded())
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom) }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(left)\" y=\"22\" font-size=\"15\">\(escape(title))</text>\n"
        out += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"#888\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#888\"/>\n"
        for i in 0...ticks {
            let y = y0 + step * Double(i)
            out += "<text x=\"\(left - 6)\" y=\"\(py(y) + 4)\" text-anchor=\"end\">\(String(format: "%.4g", abs(y) < step / 2 ? 0 : y))</text>\n"
        }
        out += "<text x=\"\(left)\" y=\"\(height - bottom + 18)\">step \(Int(x0))</text>\n"
        out += "<text x=\"\(width - right)\" y=\"\(height - bottom + 18)\" text-anchor=\"end\">\(Int(x1))</text>\n"
        for (i, (name, values)) in series.enumerated() {
            let color = colors[i % colors.count]
            let path = values.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            out += "<text x=\"\(width - right + 10)\" y=\"\(top + 16 * Double(i))\" fill=\"\(color)\">\(escape(name))</text>\n"
        }
        return out + "</svg>\n"
    }

    /// The smallest of 1, 2, 5 × 10^k that is at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let power = pow(10, (log10(raw)).rounded(.down))
        return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
    }

    /// Text made safe for SVG and HTML.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
