import CTorch

/// Reference loops written in C++ inside the shim, to measure the Swift API's own overhead.
public enum Benchmarks {
    /// Nanoseconds per `at::add` of two float tensors of `elements` elements, in a plain C++ loop.
    public static func cppAddLoop(elements: Int, iterations: Int) throws -> Double {
        var ns = 0.0
        try check(ct_bench_add_loop(Int64(elements), Int64(iterations), &ns))
        return ns
    }
}
