import Foundation
import Torch

/// Per-op overhead and matmul throughput: Swift API vs the same loop in C++ vs PyTorch eager.
public struct OpsBenchConfig: Sendable {
    /// Iterations of the small add per round (many short interleaved rounds resist noise better).
    public var iterations = 20_000
    /// Elements of each add operand.
    public var elements = 16
    /// Matrix size n for the n x n x n matmul (0 skips it).
    public var matmul = 2048
    /// Rounds; the best round counts.
    public var rounds = 60
    /// Intra-op threads (nil: libtorch's setting, all cores).
    public var threads: Int?
    /// Python interpreter with torch, for the PyTorch figures.
    public var python = "python3"

    public init() {}
}

public enum OpsBench {
    /// Prints the per-op time of a small add (Swift, C++, PyTorch) and fp32 matmul GFLOP/s; each figure is the best
    /// of `rounds`.
    public static func run(_ config: OpsBenchConfig) throws {
        let c = config
        if let threads = c.threads { try Torch.setThreads(threads) }
        let threads = Torch.threads
        printMachine()
        print("libtorch \(Torch.version) at \(Torch.libraryPath), \(threads) thread(s)")

        // Swift API and the same loop in C++ (against the same libtorch), rounds interleaved so that both see
        // the same machine conditions; the best round of each counts.
        let a = try Tensor.rand([c.elements]), b = try Tensor.rand([c.elements])
        for _ in 0..<(c.iterations / 10) { _ = try a + b }
        var swiftNs = Double.infinity
        var cppNs = Double.infinity
        var cppBelowNs = Double.infinity
        for _ in 0..<c.rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<c.iterations { _ = try a + b }
            let t1 = DispatchTime.now().uptimeNanoseconds
            swiftNs = min(swiftNs, Double(t1 - t0) / Double(c.iterations))
            cppNs = min(cppNs, try Benchmarks.cppAddLoop(elements: c.elements, iterations: c.iterations))
            cppBelowNs = min(cppBelowNs, try Benchmarks.cppAddLoop(elements: c.elements, iterations: c.iterations, belowAutograd: true))
        }

        var swiftGflops: Double? = nil
        if c.matmul > 0 {
            let x = try Tensor.rand([c.matmul, c.matmul]), y = try Tensor.rand([c.matmul, c.matmul])
            _ = try x.matmul(y)
            var best = Double.infinity
            for _ in 0..<c.rounds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try x.matmul(y)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
            }
            swiftGflops = 2 * pow(Double(c.matmul), 3) / best
        }

        let py = pythonFigures(c, threads: threads)
        print("")
        print(String(format: "add of two %d-element tensors, per op:", c.elements))
        print(String(format: "  Swift API        %8.3f µs", swiftNs / 1000))
        print(String(format: "  C++ (same lib)   %8.3f µs   Swift/C++ = %.3f", cppNs / 1000, swiftNs / cppNs))
        print(String(format: "  C++ no autograd  %8.3f µs   Swift/this = %.3f  (the binding's own cost; the shim skips autograd when no input needs it)", cppBelowNs / 1000, swiftNs / cppBelowNs))
        if let py {
            print(String(format: "  PyTorch %@ %8.3f µs   Swift/PyTorch = %.3f", py.version.padding(toLength: 8, withPad: " ", startingAt: 0), py.addNs / 1000, swiftNs / py.addNs))
        } else {
            print("  PyTorch          not available (\(c.python) cannot import torch)")
        }
        if let swiftGflops {
            print(String(format: "fp32 matmul %d³:", c.matmul))
            print(String(format: "  Swift API        %8.1f GFLOP/s", swiftGflops))
            if let g = py?.gflops {
                print(String(format: "  PyTorch          %8.1f GFLOP/s   Swift/PyTorch = %.2f", g, swiftGflops / g))
            }
        }
    }

    struct PythonFigures { let version: String; let addNs: Double; let gflops: Double? }

    /// The same add loop and matmul in PyTorch eager through `python`, or nil when it cannot import torch.
    static func pythonFigures(_ c: OpsBenchConfig, threads: Int) -> PythonFigures? {
        let script = """
            import time, torch
            torch.set_num_threads(\(threads))
            a = torch.rand(\(c.elements)); b = torch.rand(\(c.elements))
            for _ in range(\(c.iterations / 10)): a + b
            best = float('inf')
            for _ in range(\(c.rounds)):
                t0 = time.perf_counter_ns()
                for _ in range(\(c.iterations)): a + b
                best = min(best, (time.perf_counter_ns() - t0) / \(c.iterations))
            g = 0.0
            if \(c.matmul) > 0:
                x = torch.rand(\(c.matmul), \(c.matmul)); y = torch.rand(\(c.matmul), \(c.matmul)); x @ y
                t = float('inf')
                for _ in range(\(c.rounds)):
                    t0 = time.perf_counter_ns(); x @ y; t = min(t, time.perf_counter_ns() - t0)
                g = 2 * \(c.matmul) ** 3 / t
            print(torch.__version__.split('+')[0], best, g)
            """
        guard let text = referenceOutput([c.python, "-c", script]) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, let ns = Double(fields[1]), let g = Double(fields[2]) else { return nil }
        return PythonFigures(version: String(fields[0]), addNs: ns, gflops: c.matmul > 0 ? g : nil)
    }
}
