import Foundation

/// The 32-bit Mersenne Twister (MT19937), seeded and consumed exactly as PyTorch's CPU generator: seeding with `s`
/// is `torch.manual_seed(s)` (the seed's low 32 bits initialise the state), `uniform(from:to:)` is
/// `torch.empty(1).uniform_(from, to).item()` and `randomInt(below:)` is `torch.randint(0, n, (1,)).item()`. So a
/// crop drawn here with seed `s` is the crop torchvision draws after `torch.manual_seed(s)`.
public struct TorchMersenneTwister: RandomNumberGenerator, Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            let prev = state[i - 1]
            state[i] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(i)
        }
        index = 624
    }

    /// The next 32 random bits (`mt19937()`).
    public mutating func next32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    /// 64 bits from two draws, as PyTorch's `random64()` combines them.
    public mutating func next() -> UInt64 {
        let hi = UInt64(next32())
        let lo = UInt64(next32())
        return (hi << 32) | lo
    }

    /// `torch.empty(1).uniform_(from, to).item()` for a float32 tensor: 24 random bits scaled to [0, 1), mapped
    /// onto [Float(from), Float(to)) in float32 arithmetic (PyTorch's accumulate type for float draws is float).
    /// PyTorch's CPU kernels are compiled with FMA contraction, so `x * (to - from) + from` is one fused
    /// multiply-add; an unfused version differs in the last bit for about a third of the draws.
    public mutating func uniform(from: Double, to: Double) -> Double {
        let f = Float(from), t = Float(to)
        let x = Float(next32() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
        return Double(f.addingProduct(x, t - f))
    }

    /// `torch.randint(0, n, (1,)).item()`: a draw modulo n (a 64-bit draw for ranges of 2^28 or more).
    public mutating func randomInt(below n: Int) -> Int {
        precondition(n > 0, "randomInt needs a positive bound")
        if n >= 1 << 28 { return Int(next() % UInt64(n)) }
        return Int(next32() % UInt32(n))
    }
}

/// torchvision's `RandomResizedCrop`: a random box of a random share of the area and aspect ratio, cut out and
/// resized back. mDPO corrupts the image this way with `scale: 0.01...0.2` (keep 1–20 % of the area).
public struct RandomResizedCrop: Sendable {
    public var scale: ClosedRange<Double>
    public var ratio: ClosedRange<Double>
    /// How the crop is resized back (torchvision's default for PIL images is bilinear, with Pillow's antialiasing).
    public var filter: ResampleFilter

    public init(scale: ClosedRange<Double> = 0.01...0.2, ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0),
                filter: ResampleFilter = .bilinear) {
        precondition(scale.lowerBound > 0, "scale must be positive")
        precondition(ratio.lowerBound > 0, "ratio must be positive")
        self.scale = scale
        self.ratio = ratio
        self.filter = filter
    }

    /// mDPO's image corruption: keep 1–20 % of the area.
    public static let mdpo = RandomResizedCrop()

    /// `RandomResizedCrop.get_params`: up to 10 tries of a target area `uniform(scale) * area` and an aspect ratio
    /// `exp(uniform(log ratio))`, sides rounded half-to-even, accepted when they fit; then a central crop clamped to
    /// the ratio bounds (the whole image when its own ratio is within them).
    public func box(width: Int, height: Int, using rng: inout TorchMersenneTwister) -> PixelRect {
        precondition(width > 0 && height > 0, "RandomResizedCrop needs a non-empty image, got \(width)x\(height)")
        let area = Double(width * height)
        // torch.log of a float32 tensor holding the bounds, kept as float32.
        let logLow = Double(logf(Float(ratio.lowerBound)))
        let logHigh = Double(logf(Float(ratio.upperBound)))
        for _ in 0..<10 {
            let targetArea = area * rng.uniform(from: scale.lowerBound, to: scale.upperBound)
            let aspect = Double(expf(Float(rng.uniform(from: logLow, to: logHigh))))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = rng.randomInt(below: height - h + 1)
                let left = rng.randomInt(below: width - w + 1)
                return PixelRect(x: left, y: top, width: w, height: h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return PixelRect(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// A random crop of `image`, resized back to the image's size, and the box it came from.
    public func apply(to image: RGBImage, using rng: inout TorchMersenneTwister) -> (box: PixelRect, image: RGBImage) {
        let box = self.box(width: image.width, height: image.height, using: &rng)
        let crop = image.cropped(to: box)
        return (box, crop.resized(width: image.width, height: image.height, filter: filter))
    }

    /// The same with a fresh generator seeded with `seed` (`torch.manual_seed(seed)`).
    public func apply(to image: RGBImage, seed: UInt64) -> (box: PixelRect, image: RGBImage) {
        var rng = TorchMersenneTwister(seed: seed)
        return apply(to: image, using: &rng)
    }
}
