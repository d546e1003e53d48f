import Foundation
import Testing
@testable import Torch

/// `Tensor.linear` picks its kernel by case (for inference: the shim's own kernel up to 16 rows, oneDNN's gemm for
/// more fp32 rows under fp32 or bf16 weights; libtorch's linear otherwise). Every case is checked against the same
/// product computed in float64.
@Suite struct LinearKernelTests {
    static let k = 300, n = 70

    /// x Wᵀ + b in float64, from the given (already rounded) operands.
    func reference(_ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
        var y = try x.to(dtype: .float64).matmul(w.to(dtype: .float64).transpose(0, 1))
        if let b { y = try y + b.to(dtype: .float64) }
        return y
    }

    /// Inputs of `rows` rows in three layouts: [rows, K], [1, rows, K] and a non-contiguous [rows, K] view.
    func inputs(rows: Int, seed: UInt64) throws -> [Tensor] {
        let g = try Generator(seed: seed)
        return [try Tensor.randn([rows, Self.k], generator: g),
                try Tensor.randn([1, rows, Self.k], generator: g),
                try Tensor.randn([Self.k, rows], generator: g).transpose(0, 1)]
    }

    @Test(arguments: [1, 3, 16, 17, 64, 333])
    func float32MatchesFloat64(rows: Int) throws {
        let g = try Generator(seed: 5)
        let w = try Tensor.randn([Self.n, Self.k], generator: g), b = try Tensor.randn([Self.n], generator: g)
        try withNoGrad {
            for x in try inputs(rows: rows, seed: UInt64(rows)) {
                for bias in [nil, b] {
                    let y = try x.linear(w, bias)
                    #expect(y.dtype == .float32 && y.shape == Array(x.shape.dropLast()) + [Self.n])
                    let error = try relativeError(y.view(rows, Self.n), reference(x.reshape(rows, Self.k), w, bias))
                    #expect(error < 1e-5, "rows \(rows), shape \(x.shape), bias \(bias != nil): \(error)")
                }
            }
        }
    }

    @Test(arguments: [1, 3, 16, 17, 64])
    func bfloat16MatchesFloat64WithinRounding(rows: Int) throws {
        let g = try Generator(seed: 6)
        let w = try Tensor.randn([Self.n, Self.k], generator: g).to(dtype: .bfloat16)
        let b = try Tensor.randn([Self.n], generator: g).to(dtype: .bfloat16)
        try withNoGrad {
            for x in try inputs(rows: rows, seed: UInt64(rows)).map({ try $0.to(dtype: .bfloat16) }) {
                for bias in [nil, b] {
                    let y = try x.linear(w, bias)
                    #expect(y.dtype == .bfloat16)
                    // Exact products, fp32 sums, one rounding to bf16 (8 significant bits) at the end.
                    let error = try relativeError(y.view(rows, Self.n), reference(x.reshape(rows, Self.k), w, bias))
                    #expect(error < 1.0 / 128, "rows \(rows), shape \(x.shape), bias \(bias != nil): \(error)")
                }
            }
        }
    }

    /// A bf16 weight under fp32 inputs: bf16(x) · W with fp32 accumulation, an fp32 result — for any row count.
    @Test(arguments: [1, 3, 16, 17, 64])
    func bfloat16WeightsUnderFloat32Inputs(rows: Int) throws {
        let g = try Generator(seed: 7)
        let w = try Tensor.randn([Self.n, Self.k], generator: g).to(dtype: .bfloat16)
        let b = try Tensor.randn([Self.n], generator: g)
        try withNoGrad {
            for x in try inputs(rows: rows, seed: UInt64(rows)) {
                for bias in [nil, b] {
                    let y = try x.linear(w, bias)
                    #expect(y.dtype == .float32)
                    let rounded = try x.reshape(rows, Self.k).to(dtype: .bfloat16)
                    let error = try relativeError(y.view(rows, Self.n), reference(rounded, w, bias))
                    #expect(error < 1e-5, "rows \(rows), shape \(x.shape), bias \(bias != nil): \(error)")
                }
            }
        }
    }

    /// The few-rows kernel sums 16 columns at a time, then the rest one by one, and splits weight rows across
    /// threads only when there are enough of them: widths below, at and just above one step, and weights of 1 to
    /// 4099 rows (one thread, and a split with an odd remainder). 40 rows take oneDNN's gemm at the same shapes.
    @Test(arguments: [(1, 3), (7, 1), (16, 4099), (17, 5), (32, 2048)])
    func shapesAtTheKernelsEdges(k: Int, n: Int) throws {
        let g = try Generator(seed: UInt64(k * 10_000 + n))
        let w32 = try Tensor.randn([n, k], generator: g), b = try Tensor.randn([n], generator: g)
        try withNoGrad {
            for w in [w32, try w32.to(dtype: .bfloat16)] {
                for rows in [1, 5, 40] {
                    let x = try Tensor.randn([rows, k], generator: g)
                    let operand = w.dtype == .bfloat16 ? try x.to(dtype: .bfloat16) : x
                    let error = try relativeError(x.linear(w, b), reference(operand, w, b))
                    #expect(error < 1e-5, "k \(k), n \(n), weight \(w.dtype), rows \(rows): \(error)")
                }
            }
        }
    }

    /// With gradients on, the same cases take autograd's path and gradients reach the input.
    @Test func gradientsFlowThroughEveryCase() throws {
        let g = try Generator(seed: 8)
        let w32 = try Tensor.randn([Self.n, Self.k], generator: g)
        for (w, tolerance) in [(w32, 1e-5), (try w32.to(dtype: .bfloat16), 1.0 / 64)] {
            for rows in [1, 4] {
                let x = try Tensor.randn([rows, Self.k], generator: g).requiresGrad(true)
                let y = try x.linear(w)
                #expect(y.dtype == .float32)
                try y.sum().backward()
                // d sum(x Wᵀ) / dx = 1 W: every row of the gradient is the column sums of W.
                let want = try Tensor.ones([rows, Self.n], dtype: .float64).matmul(w.to(dtype: .float64))
                let grad = try #require(try x.grad)
                let error = try relativeError(grad, want)
                #expect(error < tolerance, "weight \(w.dtype), rows \(rows): \(error)")
            }
        }
    }
}
