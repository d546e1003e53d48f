import Evaluation
import Foundation
import Testing

@Suite struct StatisticsTests {
    @Test func mcNemarExactMatchesTheBinomialTail() {
        // Two-sided exact p = 2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1.
        #expect(Statistics.mcNemarExact(better: 9, worse: 9) == 1)
        #expect(abs(Statistics.mcNemarExact(better: 0, worse: 5) - 2.0 / 32) < 1e-12)
        #expect(abs(Statistics.mcNemarExact(better: 9, worse: 1) - 2.0 * 11 / 1024) < 1e-12)
        #expect(Statistics.mcNemarExact(better: 0, worse: 0) == 1)
        // Large counts stay finite: 30 vs 70 of 100 discordant, scipy.stats.binomtest(30, 100).pvalue.
        #expect(abs(Statistics.mcNemarExact(better: 30, worse: 70) - 7.85013964559e-05) < 1e-12)
    }

    @Test func bootstrapIntervalsAreSeededAndCoverTheFigure() throws {
        var r = ImageRatio()
        for i in 0..<200 { r.add(image: "img\(i)", numerator: Double(i % 4 == 0 ? 0 : 6), denominator: 6) }  // accuracy 0.75
        let a = try #require(Statistics.interval(r, resamples: 1000, seed: 7))
        let b = try #require(Statistics.interval(r, resamples: 1000, seed: 7))
        #expect(a.lower == b.lower && a.upper == b.upper)
        #expect(a.lower < 0.75 && 0.75 < a.upper)
        // Clusters of six identical answers: the interval is that of 200 draws, about ±0.06, not of 1,200.
        #expect(a.upper - a.lower > 0.09 && a.upper - a.lower < 0.15, "\(a)")
    }

    @Test func pairedBootstrapSeesNoDifferenceBetweenEqualModelsAndAClearOne() throws {
        var a = ImageRatio(), b = ImageRatio()
        for i in 0..<300 {
            a.add(image: "img\(i)", numerator: Double(i % 3), denominator: 4)
            b.add(image: "img\(i)", numerator: Double(i % 3) + 1, denominator: 4)
        }
        let same = try #require(Statistics.pairedBootstrap(a, a, resamples: 1000, seed: 1))
        #expect(same.difference == 0 && same.p == 1)
        let better = try #require(Statistics.pairedBootstrap(a, b, resamples: 1000, seed: 1))
        #expect(abs(better.difference - 0.25) < 1e-12 && better.p < 0.01 && better.lower > 0)
    }

    @Test func mcNemarComparisonCountsDiscordantQuestions() {
        let base = ["1": true, "2": true, "3": false, "4": false, "5": true]
        let model = ["1": true, "2": false, "3": true, "4": true, "5": true]
        let c = PairedComparison.mcNemar(base: base, model: model)
        #expect(c.better == 2 && c.worse == 1)
        #expect(abs(c.difference - 0.2) < 1e-12)
        #expect(abs(c.p - 1) < 1e-12)
        #expect(abs(c.detectable! - 2.801585 * (0.6 / 5).squareRoot()) < 1e-6)
    }
}
