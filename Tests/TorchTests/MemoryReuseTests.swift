import Testing
@testable import Torch

/// The CPU allocator that `Torch.tuneAllocator()` installs keeps large freed blocks for the next request.
@Suite(.serialized) struct MemoryReuseTests {
    /// 48 MB of float32: above the 32 MB line where blocks are kept.
    let large = 12_000_000

    @Test func aFreedLargeBlockServesTheNextRequestOfItsSize() throws {
        Torch.tuneAllocator()
        do {
            let filled = try Tensor.ones([large])
            #expect(try filled.sum().item() == Double(large))
        }
        let before = Torch.reuseStats
        #expect(before.keptBytes >= large * 4)
        // A request up to 1/8 smaller takes the same block; what it holds is the new tensor's, not the old one's.
        let zeros = try Tensor.zeros([large - large / 10])
        let after = Torch.reuseStats
        #expect(after.reused == before.reused + 1)
        #expect(after.keptBytes == before.keptBytes - large * 4)
        #expect(try zeros.abs().sum().item() == 0)
    }

    @Test func aMuchSmallerRequestGetsAFreshBlock() throws {
        Torch.tuneAllocator()
        // Sizes no other test frees: a 2/3 request does not take the kept 3-unit block (nor the 1-unit ones).
        do { _ = try Tensor.empty([large * 3]) }
        let before = Torch.reuseStats
        #expect(before.keptBytes >= large * 12)
        let smaller = try Tensor.ones([large * 2])
        #expect(Torch.reuseStats.reused == before.reused)
        #expect(try smaller.sum().item() == Double(large * 2))
    }

    @Test func keptBlocksStayWithinOneGiB() throws {
        Torch.tuneAllocator()
        do {
            // 30 × 48 MB in use at once, then all freed: only the newest that fit in 1 GiB are kept.
            let blocks = try (0..<30).map { _ in try Tensor.empty([large]) }
            #expect(blocks.count == 30)
        }
        let kept = Torch.reuseStats.keptBytes
        #expect(kept <= 1 << 30)
        #expect(kept >= (1 << 30) - large * 4)
    }
}
