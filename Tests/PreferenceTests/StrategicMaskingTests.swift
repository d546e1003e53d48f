import Foundation
import Testing
@testable import Preference

/// The rule masker's strategic mode and the kind mix of samples.
@Suite struct StrategicMaskingTests {
    let caption = "the image shows a large white crescent and a small black cross on a beige background. the white crescent is left of the black cross."

    func worldMasker() -> RuleMasker {
        RuleMasker(extraWords: ["[objects]", "crescent", "cross", "[attributes]", "white", "black", "beige", "large", "small", "[relations]", "left of"])
    }

    @Test func everySpanByDefault() {
        let masked = worldMasker().maskText(caption)
        #expect(masked == "the image shows a [MASK] [MASK] [MASK] and a [MASK] [MASK] [MASK] on a [MASK] background. the [MASK] [MASK] is [MASK] the [MASK] [MASK].")
    }

    @Test func strategicMasksAtMostNSpansOfTheChosenKindsSeeded() throws {
        var m = worldMasker()
        m.spans = 2
        m.kinds = [.objects, .relations]
        m.seed = 3
        let masked = m.maskText(caption)
        #expect(MaskedText(masked).maskCount == 2)
        let hidden = try #require(MaskedText(masked).fills(matching: caption))
        #expect(hidden.allSatisfy { ["crescent", "cross", "left of"].contains($0) }, "\(hidden)")
        #expect(m.maskText(caption) == masked)  // the same answer and seed: the same mask
        var other = m
        other.seed = 4
        let spread = Set((0..<20).map { s -> String in other.seed = UInt64(s); return other.maskText(caption) })
        #expect(spread.count > 3)  // the seed moves the choice
        m.kinds = [.attributes]
        m.spans = 1
        let one = try #require(MaskedText(m.maskText(caption)).fills(matching: caption))
        #expect(one.count == 1 && ["white", "black", "beige", "large", "small"].contains(one[0]))
        #expect(m.name == "rules (1 span of attributes)")
    }

    @Test func aKindMixKeepsOneSamplePerImageByWeight() throws {
        var samples: [SampleInput] = []
        for i in 0..<400 {
            samples.append(SampleInput(id: "\(i)-c", image: "/\(i).png", prompt: "describe", chosen: "c", line: 1, category: "caption"))
            samples.append(SampleInput(id: "\(i)-q", image: "/\(i).png", prompt: "count?", chosen: "q", line: 1, category: "count"))
            samples.append(SampleInput(id: "\(i)-p", image: "/\(i).png", prompt: "where?", chosen: "p", line: 1, category: "position"))
        }
        let mix = try KindMix(parsing: "caption=0.75,count=0.25", seed: 1)
        let picked = mix.pick(samples)
        #expect(picked.count == 400)
        #expect(Set(picked.map(\.image)).count == 400)
        let captions = picked.filter { $0.category == "caption" }.count
        #expect(captions > 260 && captions < 340, "\(captions)")
        #expect(!picked.contains { $0.category == "position" })
        #expect(mix.pick(samples).map(\.id) == picked.map(\.id))
        #expect(throws: (any Error).self) { try KindMix(parsing: "caption=x", seed: 0) }
        #expect(throws: (any Error).self) { try KindMix(parsing: "caption=0", seed: 0) }
    }
}
