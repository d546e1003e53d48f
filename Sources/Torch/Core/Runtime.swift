import Foundation
import CTorch

/// A libtorch failure (shape mismatch, bad dtype, ...) with libtorch's own message, without the C++ backtrace.
public struct TorchError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

@inline(__always)
func check(_ status: Int32) throws {
    if status != 0 { throw TorchError(String(cString: ct_last_error())) }
}

/// Runs a shim call that writes one new tensor handle, and wraps it.
@inline(__always)
func result(_ body: (UnsafeMutablePointer<ct_tensor?>) -> Int32) throws -> Tensor {
    var out: ct_tensor? = nil
    try check(body(&out))
    return Tensor(handle: out!)
}

@inline(__always)
func result2(_ body: (UnsafeMutablePointer<ct_tensor?>, UnsafeMutablePointer<ct_tensor?>) -> Int32) throws
    -> (Tensor, Tensor)
{
    var a: ct_tensor? = nil
    var b: ct_tensor? = nil
    try check(body(&a, &b))
    return (Tensor(handle: a!), Tensor(handle: b!))
}

/// Runs a shim call that writes a malloc'd array of handles.
func resultList(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<ct_tensor?>?>, UnsafeMutablePointer<Int64>) -> Int32)
    throws -> [Tensor]
{
    var arr: UnsafeMutablePointer<ct_tensor?>? = nil
    var n: Int64 = 0
    try check(body(&arr, &n))
    defer { ct_free_array(arr) }
    return (0..<Int(n)).map { Tensor(handle: arr![$0]!) }
}

@inline(__always) func scalar(_ v: Double) -> ct_scalar { ct_scalar(f: v, i: 0, is_int: 0) }
@inline(__always) func scalar(_ v: Int) -> ct_scalar { ct_scalar(f: 0, i: Int64(v), is_int: 1) }

func takeString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    defer { ct_free_string(p) }
    return String(cString: p)
}

/// Process-wide libtorch facts and settings.
public enum Torch {
    /// The libtorch version the shim was compiled against ("1.13.0").
    public static var version: String { String(cString: ct_version()) }
    /// Path of the libtorch shared object loaded into this process.
    public static var libraryPath: String { takeString(ct_library_path()) }
    /// The shim over libtorch that was loaded (librealign_torch.so: LD_LIBRARY_PATH picks another one).
    public static var shimPath: String { takeString(ct_shim_path()) }
    public static var parallelInfo: String { takeString(ct_parallel_info()) }
    public static var buildConfig: String { takeString(ct_build_config()) }
    /// The CPU's model name and the level the shim's vector kernels take on it, e.g. "AMD EPYC, kernels: x86-64-v4
    /// (AVX-512)": what every benchmark prints beside its figures.
    public static var cpuInfo: String { takeString(ct_cpu_info()) }
    public static var hasFusedAttention: Bool { ct_has_fused_sdpa() }

    /// The BLAS shared object loaded into this process (from /proc/self/maps), e.g. OpenBLAS's OpenMP build.
    public static var blasLibrary: String? {
        // procfs files report size 0: read to the end rather than by size.
        guard let data = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() else { return nil }
        let maps = String(decoding: data, as: UTF8.self)
        let paths = maps.split(separator: "\n").compactMap { line -> String? in
            guard let slash = line.firstIndex(of: "/") else { return nil }
            let path = String(line[slash...])
            let name = (path as NSString).lastPathComponent.lowercased()
            return name.contains("blas") || name.contains("mkl_rt") ? path : nil
        }
        return paths.first { $0.contains("openblas") || $0.contains("mkl") } ?? paths.first
    }

    /// Intra-op threads. Defaults to every core unless OMP_NUM_THREADS is set.
    public static var threads: Int { Int(ct_get_num_threads()) }
    public static func setThreads(_ n: Int) throws { try check(ct_set_num_threads(Int32(n))) }
    public static var interopThreads: Int { Int(ct_get_num_interop_threads()) }

    /// Runs `body` with `n` intra-op threads on the calling thread only; other threads keep `threads`.
    public static func withThreadsOnThisThread<R>(_ n: Int, _ body: () throws -> R) throws -> R {
        try check(ct_set_thread_num_threads(Int32(n)))
        defer { ct_set_thread_num_threads(0) }
        return try body()
    }

    /// Runs `job(0..<count)` on `workers` threads that take the next index as they finish one, each thread with a
    /// single intra-op thread. For many small independent inputs (sentence batches) this keeps every core busy
    /// without the fork/join barrier that intra-op threading pays around each small operator. The first error
    /// stops further jobs and is rethrown. Gradient mode is per thread: jobs start with recording off.
    public static func parallelJobs(_ count: Int, workers: Int = threads, _ job: @Sendable (Int) throws -> Void) throws {
        let workers = Swift.max(1, Swift.min(workers, count))
        if workers == 1 {
            for i in 0..<count { try withNoGrad { try job(i) } }
            return
        }
        final class Queue: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var error: Error?
            func take(_ count: Int) -> Int? {
                lock.lock(); defer { lock.unlock() }
                guard error == nil, next < count else { return nil }
                next += 1
                return next - 1
            }
            func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
        }
        let queue = Queue()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            do {
                try withThreadsOnThisThread(1) {
                    try withNoGrad { while let i = queue.take(count) { try job(i) } }
                }
            } catch {
                queue.fail(error)
            }
        }
        if let error = queue.error { throw error }
    }

    public static var cudaAvailable: Bool { ct_cuda_is_available() }
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

    /// Tunes CPU memory for tensor workloads (call once, early, in an executable): glibc's heap keeps blocks up to
    /// 32 MB, and freed tensor blocks of 32 MB and more (up to 1 GiB in all) serve the next request of their size
    /// instead of being unmapped and page-faulted in again.
    public static func tuneAllocator() { ct_tune_allocator() }

    /// Switches the shim's own inference kernels on or off for the process (they run only where no gradient is
    /// needed, and round slightly differently from libtorch's ops); off, a no-grad pass equals one that records
    /// gradients bit for bit. Returns the previous setting.
    @discardableResult
    public static func setInferenceKernels(_ enabled: Bool) -> Bool { ct_set_inference_kernels(enabled) }

    /// Sets how many bytes of freed large CPU blocks are kept for reuse (1 GiB at first; 0 keeps none), freeing the
    /// oldest beyond it now; returns the previous limit.
    @discardableResult
    public static func setReuseLimit(_ bytes: Int) -> Int { Int(ct_set_cpu_reuse_limit(max(0, bytes))) }

    /// Large freed CPU blocks kept for reuse now (bytes), and how many allocations they have served so far.
    public static var reuseStats: (keptBytes: Int, reused: Int) {
        var kept = 0, reused: UInt64 = 0
        ct_cpu_reuse_stats(&kept, &reused)
        return (kept, Int(reused))
    }

    /// Seeds the default generator (what `torch.manual_seed` does for the CPU).
    public static func manualSeed(_ seed: UInt64) throws { try check(ct_manual_seed(seed)) }

    /// The default CPU generator's state, to save in a checkpoint.
    public static func rngState() throws -> Tensor { try result { ct_generator_get_state(nil, $0) } }
    public static func setRngState(_ state: Tensor) throws { try check(ct_generator_set_state(nil, state.handle)) }
}
