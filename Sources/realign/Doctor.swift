import ArgumentParser
import Foundation
import Jobs
import Images
import Retrieval
import Torch

/// Prints what a user needs when something is off: which native libraries were found, where, and how they run.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the native libraries ReAlign runs on (libtorch, threads, CUDA) and whether they work.")

    @Flag(help: "Also print libtorch's build configuration and parallel settings.")
    var verbose = false

    func run() throws {
        print("libtorch \(Torch.version)")
        print("  library: \(Torch.libraryPath)")
        print("  shim: \(Torch.shimPath)")
        print("  CPU: \(Torch.cpuInfo)")
        print("  intra-op threads: \(Torch.threads) (cores: \(ProcessInfo.processInfo.activeProcessorCount))")
        print("  inter-op threads: \(Torch.interopThreads)")
        print("  fused attention: \(Torch.hasFusedAttention ? "yes" : "no (composite path)")")
        if let blas = Torch.blasLibrary {
            let openmp = blas.contains("openblas-openmp")
            let pthread = blas.contains("openblas-pthread")
            print("  BLAS: \(blas)\(openmp ? " (OpenMP build: shares libtorch's threads)" : pthread ? " (pthreads build: its threads compete with libtorch's; install libopenblas-openmp-dev)" : "")")
        } else {
            print("  BLAS: none found in this process (matmul falls back to libtorch's own kernels)")
        }
        if Torch.cudaAvailable {
            print("  CUDA: available, \(Torch.cudaDeviceCount) device(s)")
        } else {
            print("  CUDA: not available (CPU build or no GPU)")
        }
        print("  process groups: Gloo \(ProcessGroup.hasGloo ? "yes" : "no (install libgloo-dev and rebuild)"), NCCL \(ProcessGroup.hasNCCL ? "yes" : "no")")
        // A tiny computation proves the library actually runs, not just links.
        do {
            let a = try Tensor([1.0, 2.0, 3.0] as [Float])
            let s = try (a * a).sum().item()
            print("  self-test: \(s == 14 ? "ok" : "WRONG RESULT \(s)")")
        print("libjpeg \(ImageLibraries.jpegVersion), libpng \(ImageLibraries.pngVersion), FAISS \(VectorIndex.faissVersion)")
        } catch {
            print("  self-test: failed: \(error)")
            throw ExitCode.failure
        }
        if verbose {
            print("")
            print(Torch.parallelInfo)
            print(Torch.buildConfig)
        }
    }
}
