import CTorch

/// Reference loops written in C++ inside the shim, to measure the Swift API's own overhead.
public enum Benchmarks {
    /// Nanoseconds per `at::add` of two float tensors of `elements` elements, in a plain C++ loop; with
    /// `belowAutograd`, the loop runs with autograd dispatch excluded (as the shim runs ops that need no gradient).
    public static func cppAddLoop(elements: Int, iterations: Int, belowAutograd: Bool = false) throws -> Double {
        var ns = 0.0
        try check(ct_bench_add_loop(Int64(elements), Int64(iterations), belowAutograd, &ns))
        return ns
    }
}
