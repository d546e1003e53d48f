import Foundation

/// Resampling filters, numbered as `PIL.Image.Resampling` (the numbers found in `preprocessor_config.json`'s
/// "resample"). All are Pillow's separable convolution; nearest-neighbour (0) is not offered.
public enum ResampleFilter: Int, Sendable, CaseIterable {
    case lanczos = 1
    case bilinear = 2
    case bicubic = 3
    case box = 4
    case hamming = 5
    /// Magic Kernel Sharp 2013 and 2021 (John Costella), added in Pillow 13.
    case mks2013 = 6
    case mks2021 = 7

    /// Half-width of the kernel at scale 1.
    var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear, .hamming: return 1.0
        case .bicubic: return 2.0
        case .lanczos: return 3.0
        case .mks2013: return 2.5
        case .mks2021: return 4.5
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1.0 : 0.0
        case .bilinear:
            let a = abs(x)
            return a < 1.0 ? 1.0 - a : 0.0
        case .hamming:
            let a = abs(x)
            if a == 0.0 { return 1.0 }
            if a >= 1.0 { return 0.0 }
            let t = a * Double.pi
            // Pillow writes the window's constants as C floats.
            return sin(t) / t * (Double(Float(0.54)) + Double(Float(0.46)) * cos(t))
        case .bicubic:
            // Keys' cubic convolution with a = -0.5.
            let a = -0.5
            let t = abs(x)
            if t < 1.0 { return ((a + 2.0) * t - (a + 3.0)) * t * t + 1 }
            if t < 2.0 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0.0
        case .lanczos:
            guard x >= -3.0 && x < 3.0 else { return 0.0 }
            func sinc(_ v: Double) -> Double {
                if v == 0.0 { return 1.0 }
                let t = v * Double.pi
                return sin(t) / t
            }
            return sinc(x) * sinc(x / 3)
        case .mks2013:
            let t = abs(x)
            if t < 0.5 { return 17.0 / 16.0 - 7.0 / 4.0 * (t * t) }
            if t < 1.5 { return (1.0 - t) * (7.0 / 4.0 - t) }
            if t < 2.5 { return -1.0 / 8.0 * ((t - 5.0 / 2.0) * (t - 5.0 / 2.0)) }
            return 0
        case .mks2021:
            let t = abs(x)
            if t < 0.5 { return 577.0 / 576.0 - 239.0 / 144.0 * (t * t) }
            if t < 1.5 { return 35.0 / 36.0 * (t - 1.0) * (t - 239.0 / 140.0) }
            if t < 2.5 { return 1.0 / 6.0 * (t - 2.0) * (65.0 / 24.0 - t) }
            if t < 3.5 { return 1.0 / 36.0 * (t - 3.0) * (t - 15.0 / 4.0) }
            if t < 4.5 { return -1.0 / 288.0 * ((t - 9.0 / 2.0) * (t - 9.0 / 2.0)) }
            return 0
        }
    }
}

/// Pillow's fixed-point separable resampler for 8-bit images (libImaging/Resample.c), reimplemented: for every
/// output sample, a kernel window centred on the sample's position in the input, widened by the downscale factor
/// (so downscaling averages, "antialias"), weights normalised to sum 1 and rounded to 22 fractional bits, an
/// integer sum started at one half, and the result clipped to 0...255. One pass per axis, the first one clipped to
/// 8 bits before the second reads it, in Pillow's order — so results equal `Image.resize` exactly, not just closely.
enum PillowResample {
    static let precisionBits: Int32 = 32 - 8 - 2

    /// Kernel windows for one axis: for output i, `first[i]` is the first input index and `count[i]` the number of
    /// taps; `weights[i * taps ..< i * taps + count[i]]` are its fixed-point weights.
    struct Kernel {
        var taps: Int
        var first: [Int]
        var count: [Int]
        var weights: [Int32]
    }

    /// The window of input [in0, in1) (the "box", all of the input unless cropping) mapped onto `outSize` samples.
    static func kernel(inSize: Int, in0: Double = 0, in1: Double? = nil, outSize: Int, filter: ResampleFilter) -> Kernel {
        let in1 = in1 ?? Double(inSize)
        let scale = (in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = filter.support * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        let inverse = 1.0 / filterScale
        var first = [Int](repeating: 0, count: outSize)
        var count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let one = Double(1 << precisionBits)
        for i in 0..<outSize {
            let center = in0 + (Double(i) + 0.5) * scale
            // C's (int) casts truncate toward zero; Swift's Int(Double) does the same.
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            let n = max(hi - lo, 0)
            var sum = 0.0
            for x in 0..<n {
                let w = filter.weight((Double(x + lo) - center + 0.5) * inverse)
                k[x] = w
                sum += w
            }
            if sum != 0.0 {
                for x in 0..<n { k[x] /= sum }
            }
            for x in 0..<n {
                weights[i * taps + x] = k[x] < 0 ? Int32(-0.5 + k[x] * one) : Int32(0.5 + k[x] * one)
            }
            first[i] = lo
            count[i] = n
        }
        return Kernel(taps: taps, first: first, count: count, weights: weights)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> precisionBits
        return s <= 0 ? 0 : s >= 255 ? 255 : UInt8(truncatingIfNeeded: s)
    }

    /// Horizontal pass over rows [rowStart, rowStart + rows) of an interleaved image with `channels` bytes per pixel.
    static func horizontal(_ src: UnsafePointer<UInt8>, inWidth: Int, rowStart: Int, rows: Int, channels: Int,
                           kernel: Kernel, into dst: UnsafeMutablePointer<UInt8>) {
        let outWidth = kernel.first.count
        let half: Int32 = 1 << (precisionBits - 1)
        kernel.weights.withUnsafeBufferPointer { wb in
            kernel.first.withUnsafeBufferPointer { fb in
                kernel.count.withUnsafeBufferPointer { cb in
                    let weights = wb.baseAddress!
                    for y in 0..<rows {
                        let line = src + (rowStart + y) * inWidth * channels
                        let out = dst + y * outWidth * channels
                        if channels == 3 {
                            for i in 0..<outWidth {
                                let w = weights + i * kernel.taps
                                var p = line + fb[i] * 3
                                var s0 = half, s1 = half, s2 = half
                                for t in 0..<cb[i] {
                                    let k = w[t]
                                    s0 &+= Int32(p[0]) &* k
                                    s1 &+= Int32(p[1]) &* k
                                    s2 &+= Int32(p[2]) &* k
                                    p += 3
                                }
                                out[3 * i] = clip8(s0)
                                out[3 * i + 1] = clip8(s1)
                                out[3 * i + 2] = clip8(s2)
                            }
                        } else {
                            for i in 0..<outWidth {
                                let w = weights + i * kernel.taps
                                for c in 0..<channels {
                                    var p = line + fb[i] * channels + c
                                    var s = half
                                    for t in 0..<cb[i] {
                                        s &+= Int32(p[0]) &* w[t]
                                        p += channels
                                    }
                                    out[i * channels + c] = clip8(s)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Vertical pass: output row i is the weighted sum of input rows first[i] ..< first[i] + count[i] (relative
    /// to `src`). Rows are accumulated whole, so the inner loop runs over contiguous memory.
    static func vertical(_ src: UnsafePointer<UInt8>, rowBytes: Int, kernel: Kernel, into dst: UnsafeMutablePointer<UInt8>) {
        let half: Int32 = 1 << (precisionBits - 1)
        var acc = [Int32](repeating: 0, count: rowBytes)
        acc.withUnsafeMutableBufferPointer { ab in
            let a = ab.baseAddress!
            kernel.weights.withUnsafeBufferPointer { wb in
                for i in 0..<kernel.first.count {
                    for x in 0..<rowBytes { a[x] = half }
                    for t in 0..<kernel.count[i] {
                        let k = wb[i * kernel.taps + t]
                        let line = src + (kernel.first[i] + t) * rowBytes
                        for x in 0..<rowBytes { a[x] &+= Int32(line[x]) &* k }
                    }
                    let out = dst + i * rowBytes
                    for x in 0..<rowBytes { out[x] = clip8(a[x]) }
                }
            }
        }
    }

    /// `Image.resize((outWidth, outHeight), filter)` for an interleaved 8-bit image (Pillow 13's
    /// ImagingResampleInner): only the passes that change a size run, each one clipped to 8 bits. The horizontal
    /// pass comes first — restricted to the rows the vertical pass will read — unless the height shrinks by more
    /// than twice as many pixels as the width does; then the vertical pass runs first, over whole rows.
    static func resize(_ pixels: [UInt8], width: Int, height: Int, channels: Int, outWidth: Int, outHeight: Int,
                       filter: ResampleFilter) -> [UInt8] {
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        if !needHorizontal && !needVertical { return pixels }
        let horizontalFirst = !(height - outHeight > 0 && height - outHeight > (width - outWidth) * 2)
        var vKernel = needVertical ? kernel(inSize: height, outSize: outHeight, filter: filter) : nil
        let hKernel = needHorizontal ? kernel(inSize: width, outSize: outWidth, filter: filter) : nil

        func horizontalPass(_ src: [UInt8], rowStart: Int, rows: Int, kernel: Kernel) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: outWidth * rows * channels)
            src.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    horizontal(s.baseAddress!, inWidth: width, rowStart: rowStart, rows: rows, channels: channels,
                               kernel: kernel, into: d.baseAddress!)
                }
            }
            return out
        }
        func verticalPass(_ src: [UInt8], rowWidth: Int, kernel: Kernel) -> [UInt8] {
            let rowBytes = rowWidth * channels
            var out = [UInt8](repeating: 0, count: rowBytes * outHeight)
            src.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    vertical(s.baseAddress!, rowBytes: rowBytes, kernel: kernel, into: d.baseAddress!)
                }
            }
            return out
        }

        if horizontalFirst {
            var current = pixels
            if let hKernel {
                // Only the rows the vertical pass will read (all of them when there is no vertical pass).
                var firstRow = 0, lastRow = height
                if let v = vKernel {
                    firstRow = v.first[0]
                    lastRow = v.first[outHeight - 1] + v.count[outHeight - 1]
                    vKernel!.first = v.first.map { $0 - firstRow }
                }
                current = horizontalPass(pixels, rowStart: firstRow, rows: lastRow - firstRow, kernel: hKernel)
            }
            if let vKernel { current = verticalPass(current, rowWidth: needHorizontal ? outWidth : width, kernel: vKernel) }
            return current
        }
        var current = verticalPass(pixels, rowWidth: width, kernel: vKernel!)
        if let hKernel { current = horizontalPass(current, rowStart: 0, rows: outHeight, kernel: hKernel) }
        return current
    }
}

extension RGBImage {
    /// The image resized as Pillow's `Image.resize((width, height), resample=filter)` resizes a uint8 RGB image
    /// (bit-identical results).
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResampleFilter = .bicubic) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "resize needs a positive size, got \(newWidth)x\(newHeight)")
        precondition(width > 0 && height > 0, "cannot resize an empty image")
        let out = PillowResample.resize(pixels, width: width, height: height, channels: 3, outWidth: newWidth,
                                        outHeight: newHeight, filter: filter)
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }
}
