import Common
import Foundation
import JSON

/// A figure that is a ratio of sums over images (accuracy = right / asked, CHAIRi = hallucinated / mentioned,
/// F1 = 2TP / (2TP + FP + FN), ...), kept per image so that it can be resampled by image: questions about one image
/// are not independent, images are.
public struct ImageRatio: Sendable {
    /// Image ids, in a fixed order (sorted), with each image's numerator and denominator.
    public private(set) var images: [String] = []
    public private(set) var numerator: [Double] = []
    public private(set) var denominator: [Double] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// Adds to an image's sums.
    public mutating func add(image: String, numerator n: Double, denominator d: Double) {
        if let i = index[image] {
            numerator[i] += n
            denominator[i] += d
        } else {
            index[image] = images.count
            images.append(image)
            numerator.append(n)
            denominator.append(d)
        }
    }

    public var value: Double? {
        let d = denominator.reduce(0, +)
        return d == 0 ? nil : numerator.reduce(0, +) / d
    }

    /// The sums of `other`'s images in this one's order (absent images count zero): a paired comparison needs the
    /// same images on both sides.
    func aligned(to other: ImageRatio) -> (n: [Double], d: [Double]) {
        (images.map { other.index[$0].map { other.numerator[$0] } ?? 0 }, images.map { other.index[$0].map { other.denominator[$0] } ?? 0 })
    }
}

/// Intervals and paired tests for the demo's and the recipes' reports.
public enum Statistics {
    /// The percentile bootstrap's 95 % interval of `ratio`, resampling images with replacement (`resamples` draws,
    /// seeded: the same seed gives the same interval). Nil when the figure is undefined.
    public static func interval(_ ratio: ImageRatio, resamples: Int = 2000, seed: UInt64, level: Double = 0.95) -> (lower: Double, upper: Double)? {
        guard ratio.value != nil, !ratio.images.isEmpty else { return nil }
        var generator = SplitMix64(seed: seed)
        let count = ratio.images.count
        var draws: [Double] = []
        draws.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var n = 0.0, d = 0.0
            for _ in 0..<count {
                let i = Int(generator.next() % UInt64(count))
                n += ratio.numerator[i]
                d += ratio.denominator[i]
            }
            if d > 0 { draws.append(n / d) }
        }
        return percentiles(draws, level: level)
    }

    /// A paired bootstrap of `b - a` over the images of `a` (each draw takes the same images on both sides): the
    /// difference, its 95 % interval, and the two-sided p-value of "no difference" (twice the share of draws on
    /// the far side of zero, at most 1).
    public static func pairedBootstrap(_ a: ImageRatio, _ b: ImageRatio, resamples: Int = 2000, seed: UInt64)
        -> (difference: Double, lower: Double, upper: Double, p: Double)? {
        guard let va = a.value, let vb = b.value, !a.images.isEmpty else { return nil }
        let (bn, bd) = a.aligned(to: b)
        var generator = SplitMix64(seed: seed)
        let count = a.images.count
        var draws: [Double] = []
        draws.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var na = 0.0, da = 0.0, nb = 0.0, db = 0.0
            for _ in 0..<count {
                let i = Int(generator.next() % UInt64(count))
                na += a.numerator[i]; da += a.denominator[i]
                nb += bn[i]; db += bd[i]
            }
            if da > 0 && db > 0 { draws.append(nb / db - na / da) }
        }
        guard let (lower, upper) = percentiles(draws, level: 0.95) else { return nil }
        let below = Double(draws.filter { $0 <= 0 }.count) / Double(draws.count)
        let above = Double(draws.filter { $0 >= 0 }.count) / Double(draws.count)
        return (vb - va, lower, upper, min(1, 2 * min(below, above)))
    }

    static func percentiles(_ draws: [Double], level: Double) -> (Double, Double)? {
        guard !draws.isEmpty else { return nil }
        let sorted = draws.sorted()
        func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count - 1)).rounded())))] }
        return (at((1 - level) / 2), at(1 - (1 - level) / 2))
    }

    /// McNemar's exact test on paired right/wrong answers: `better` questions only the second model gets right,
    /// `worse` only the first. Two-sided p = min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2).
    public static func mcNemarExact(better: Int, worse: Int) -> Double {
        let n = better + worse
        guard n > 0 else { return 1 }
        let k = min(better, worse)
        // log C(n, i) - n log 2, summed in log space (n can be thousands).
        var logTerms: [Double] = []
        for i in 0...k { logTerms.append(lgamma(Double(n) + 1) - lgamma(Double(i) + 1) - lgamma(Double(n - i) + 1) - Double(n) * log(2)) }
        let top = logTerms.max()!
        let tail = exp(top) * logTerms.reduce(0) { $0 + exp($1 - top) }
        return min(1, 2 * tail)
    }

    /// The smallest accuracy difference a paired test of `questions` questions detects with 80 % power at the two-
    /// sided 5 % level, when a share `discordance` of the questions is answered differently by the two models:
    /// (z_0.975 + z_0.8) sqrt(discordance / questions).
    public static func detectableDifference(questions: Int, discordance: Double) -> Double {
        guard questions > 0 else { return .nan }
        return (1.959964 + 0.841621) * (max(discordance, 0) / Double(questions)).squareRoot()
    }
}

/// One yes/no question as a model answered it: what intervals and paired tests resample.
public struct YesNoOutcome: Sendable {
    public var id: String
    public var image: String
    public var truth: Bool
    public var answer: YesNo
    /// The answer is the truth (an unknown answer is wrong).
    public var correct: Bool { answer == (truth ? .yes : .no) }
}

extension YesNoOutcome {
    /// The scorable questions of a yes/no file with their answers, matched as the scorers match them (by
    /// question_id when both files carry it, else by order).
    public static func read(questionsFile: String, answersFile: String, rule: YesNoRule) throws -> [YesNoOutcome] {
        let qf = try JSONLines(path: questionsFile), af = try JSONLines(path: answersFile)
        let questions = qf.records.map { Question(line: $0.line, record: $0.value) }.filter { yesNoTruth($0.label) != nil }
        let matched = Matched(questions: questions, questionsFile: questionsFile,
                              answers: af.records.map { Answer(line: $0.line, record: $0.value) }, answersFile: answersFile)
        return matched.pairs.map { q, a in
            YesNoOutcome(id: q.id ?? String(q.line), image: q.image ?? String(q.line), truth: yesNoTruth(q.label)!, answer: rule.parse(a.text))
        }
    }
}

extension ImageRatio {
    /// Accuracy per image.
    public static func accuracy(_ outcomes: [YesNoOutcome]) -> ImageRatio {
        var r = ImageRatio()
        for o in outcomes { r.add(image: o.image, numerator: o.correct ? 1 : 0, denominator: 1) }
        return r
    }

    /// F1 per image as 2TP / (2TP + FP + FN) (an unknown answer counts as "no", as VLMEvalKit's F1 counts it).
    public static func f1(_ outcomes: [YesNoOutcome]) -> ImageRatio {
        var r = ImageRatio()
        for o in outcomes {
            let yes = o.answer == .yes
            let tp = o.truth && yes, fp = !o.truth && yes, fn = o.truth && !yes
            r.add(image: o.image, numerator: tp ? 2 : 0, denominator: (tp ? 2 : 0) + (fp ? 1 : 0) + (fn ? 1 : 0))
        }
        return r
    }

    /// The share of "yes" answers per image.
    public static func yesRatio(_ outcomes: [YesNoOutcome]) -> ImageRatio {
        var r = ImageRatio()
        for o in outcomes { r.add(image: o.image, numerator: o.answer == .yes ? 1 : 0, denominator: 1) }
        return r
    }

    /// The false-yes rate per image: "yes" to questions whose truth is "no".
    public static func falseYes(_ outcomes: [YesNoOutcome]) -> ImageRatio {
        var r = ImageRatio()
        for o in outcomes where !o.truth { r.add(image: o.image, numerator: o.answer == .yes ? 1 : 0, denominator: 1) }
        return r
    }
}

extension CHAIR.Result {
    /// CHAIRs, CHAIRi and recall per image (caption).
    public var ratios: (chairS: ImageRatio, chairI: ImageRatio, recall: ImageRatio) {
        var s = ImageRatio(), i = ImageRatio(), r = ImageRatio()
        for image in images {
            s.add(image: image.id, numerator: image.hallucinated.isEmpty ? 0 : 1, denominator: 1)
            i.add(image: image.id, numerator: Double(image.hallucinated.count), denominator: Double(image.mentioned.count))
            r.add(image: image.id, numerator: Double(Set(image.mentioned).intersection(image.groundTruth).count), denominator: Double(image.groundTruth.count))
        }
        return (s, i, r)
    }
}

/// A model's figure against the base's on the same questions or images.
public struct PairedComparison: Sendable {
    public var difference: Double
    public var p: Double
    /// "mcnemar" (right/wrong per question) or "paired-bootstrap" (over images).
    public var test: String
    /// McNemar: questions only this model gets right / only the base gets right.
    public var better: Int?
    public var worse: Int?
    /// The smallest difference this comparison detects with 80 % power (McNemar, from its discordance).
    public var detectable: Double?

    /// McNemar's exact test on the questions both answered.
    public static func mcNemar(base: [String: Bool], model: [String: Bool]) -> PairedComparison {
        var better = 0, worse = 0, n = 0, rightBase = 0, rightModel = 0
        for (id, b) in base {
            guard let m = model[id] else { continue }
            n += 1
            if b { rightBase += 1 }
            if m { rightModel += 1 }
            if m && !b { better += 1 }
            if b && !m { worse += 1 }
        }
        return PairedComparison(difference: n == 0 ? 0 : Double(rightModel - rightBase) / Double(n), p: Statistics.mcNemarExact(better: better, worse: worse),
                                test: "mcnemar", better: better, worse: worse,
                                detectable: Statistics.detectableDifference(questions: n, discordance: n == 0 ? 0 : Double(better + worse) / Double(n)))
    }

    public var json: JSONValue {
        var fields: [(String, JSONValue)] = [("difference", .double(difference)), ("p", .double(p)), ("test", .string(test))]
        if let better { fields.append(("better", .int(better))) }
        if let worse { fields.append(("worse", .int(worse))) }
        if let detectable, detectable.isFinite { fields.append(("detectable_80", .double(detectable))) }
        return .object(fields)
    }
}
