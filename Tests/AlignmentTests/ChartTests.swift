import Foundation
import Testing
@testable import Alignment

@Suite struct ChartTests {
    /// The y-axis labels of a chart, bottom to top as written.
    func labels(_ svg: String) -> [String] {
        svg.split(separator: "\n").filter { $0.hasPrefix("<text x=\"64.0\"") }.compactMap { line in
            guard let open = line.range(of: "\">", options: .backwards), let close = line.range(of: "</text>") else { return nil }
            return String(line[open.upperBound..<close.lowerBound])
        }
    }

    @Test func yTicksAreRoundAndCoverTheData() {
        // Margins from -0.017 to 3.356: a quarter of the range is 0.84, so the step is 1 and the axis -1...4.
        let margins = Charts.svg(title: "m", series: [("a", [(1, -0.017), (2, 3.356)])])
        #expect(labels(margins) == ["-1", "0", "1", "2", "3", "4"])
        // Accuracies from 0.25 to 1: step 0.2 (0.1875 rounds up to 0.2), axis 0.2...1.
        let accuracy = Charts.svg(title: "a", series: [("a", [(1, 0.25), (2, 1.0)])])
        #expect(labels(accuracy) == ["0.2", "0.4", "0.6", "0.8", "1"])
    }

    @Test func niceStepsAreOneTwoOrFiveTimesAPowerOfTen() {
        #expect(Charts.niceStep(0.84) == 1)
        #expect(Charts.niceStep(0.1875) == 0.2)
        #expect(Charts.niceStep(3) == 5)
        #expect(Charts.niceStep(0.05) == 0.05)
        #expect(Charts.niceStep(7) == 10)
    }
}
