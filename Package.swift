// swift-tools-version: 6.1
import Foundation
import PackageDescription

// libtorch: Debian's libtorch-dev by default; LIBTORCH=/dir (with include/ and lib/) selects another one, such as
// the libtorch inside a PyTorch install or a CUDA build.
let environment = ProcessInfo.processInfo.environment
var torchCxxFlags: [String] = []
var torchLinkerFlags: [String] = []
if let root = environment["LIBTORCH"], !root.isEmpty {
    torchCxxFlags = ["-I\(root)/include", "-I\(root)/include/torch/csrc/api/include"]
    torchLinkerFlags = ["-L\(root)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(root)/lib"]
    // A CUDA build registers its kernels from libtorch_cuda at load time; nothing references it directly, so
    // keep the linker from dropping it.
    if FileManager.default.fileExists(atPath: "\(root)/lib/libtorch_cuda.so") {
        torchLinkerFlags += ["-Xlinker", "--no-as-needed", "-ltorch_cuda", "-Xlinker", "--as-needed"]
        // NCCL process groups need NCCL's and the CUDA runtime's headers: beside a PyTorch wheel they are the
        // nvidia-* packages' (site-packages/nvidia/*/include), elsewhere CUDA_HOME's.
        let nvidia = URL(fileURLWithPath: root).deletingLastPathComponent().appendingPathComponent("nvidia").path
        let cudaHome = environment["CUDA_HOME"] ?? "/usr/local/cuda"
        let includes = ["\(nvidia)/nccl/include", "\(nvidia)/cuda_runtime/include", "\(cudaHome)/include"]
            .filter { FileManager.default.fileExists(atPath: $0) }
        if includes.contains(where: { FileManager.default.fileExists(atPath: "\($0)/nccl.h") }) {
            torchCxxFlags += includes.map { "-I\($0)" } + ["-DCT_WITH_NCCL", "-DUSE_C10D_NCCL"]
        }
    }
} else {
    torchCxxFlags = ["-I/usr/include/torch/csrc/api/include"]
    // Debian's OpenBLAS comes in a pthreads build (the default) and an OpenMP build. libtorch parallelises with
    // OpenMP, and the two thread pools spin against each other: the OpenMP build shares libtorch's pool and runs
    // the model benchmark 4-5x faster on 2 cores. An RPATH (searched for libtorch's own dependencies too, unlike
    // RUNPATH) selects it without touching the system's alternatives; without the package it is simply absent.
    torchLinkerFlags = ["-Xlinker", "--disable-new-dtags"]
    for arch in ["x86_64", "aarch64"] {
        torchLinkerFlags += ["-Xlinker", "-rpath", "-Xlinker", "/usr/lib/\(arch)-linux-gnu/openblas-openmp"]
    }
}

// FAISS's headers include <omp.h>, which clang finds in GCC's own include folder (or with libomp-dev).
var faissCxxFlags: [String] = []
for arch in ["x86_64", "aarch64"] {
    let root = "/usr/lib/gcc/\(arch)-linux-gnu"
    let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    if let v = versions.filter({ FileManager.default.fileExists(atPath: "\(root)/\($0)/include/omp.h") }).max(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
        faissCxxFlags = ["-I\(root)/\(v)/include"]
        break
    }
}

let package = Package(
    name: "ReAlign",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "realign", targets: ["realign"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Images", targets: ["Images"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The OpenAI-compatible server (`realign serve`); its optional traits (swift-configuration, full
        // Foundation) are left out to keep the build small.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // TensorBoard's Event protobuf (the generated code is committed: no protoc at build time).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(
            name: "CTorch",
            // -Wno-psabi: the shim's 8-float vector helpers are always inlined, never passed across an ABI boundary.
            cxxSettings: [.unsafeFlags(torchCxxFlags + ["-Wno-c++20-extensions", "-Wno-psabi"])],
            linkerSettings: [
                .unsafeFlags(torchLinkerFlags),
                .linkedLibrary("torch"),
                .linkedLibrary("torch_cpu"),
                .linkedLibrary("c10"),
            ]
        ),
        .target(name: "JSON"),
        // libtorch-free helpers every module may use: seeded generators, a stable hash, the resumable JSONL appender.
        .target(name: "Common", dependencies: ["JSON"]),
        .target(name: "Torch", dependencies: ["CTorch", "JSON"]),
        // Text and pixels in: no libtorch, so they build and test fast.
        .target(name: "Tokenizers", dependencies: ["JSON"]),
        .target(
            name: "CImageIO",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]
        ),
        .target(name: "Images", dependencies: ["CImageIO"]),
        .target(name: "Models", dependencies: ["Common", "Torch", "Tokenizers", "Images", "JSON"]),
        // The synthetic world of the embedded demo: scenes, rendering, text, tokenizer (no libtorch).
        .target(name: "ShapesWorld", dependencies: ["Common", "Images", "JSON"]),
        .target(
            name: "CFaiss",
            cxxSettings: [.unsafeFlags(faissCxxFlags)],
            linkerSettings: [.linkedLibrary("faiss"), .linkedLibrary("openblas"), .linkedLibrary("lapack"), .linkedLibrary("gomp")]
        ),
        .target(name: "Retrieval", dependencies: ["Common", "CFaiss", "Models", "Torch", "Images", "JSON"]),
        .target(
            name: "Evaluation", dependencies: ["Common", "Backends", "Models", "Images", "JSON"],
            resources: [.embedInCode("Resources/coco_synonyms.txt"), .embedInCode("Resources/chair_rules.json")]),
        // TensorBoard event files: TFRecord framing with ISA-L's CRC-32C (libisal-dev) and the Event protobuf.
        .systemLibrary(name: "CISAL", providers: [.apt(["libisal-dev"])]),
        .target(name: "TensorBoard", dependencies: ["CISAL", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "Alignment", dependencies: ["Common", "Models", "Torch", "Tokenizers", "Images", "JSON", "TensorBoard"]),
        // Chat backends: the protocol, our local model behind it, the OpenAI-compatible client.
        .target(name: "Backends", dependencies: ["Models", "Images", "JSON"]),
        // Preference data: maskers, the Re-Align pipeline, VaPR.
        .target(name: "Preference", dependencies: ["Common", "Backends", "Models", "Retrieval", "Torch", "Tokenizers", "Images", "JSON"]),
        // `realign serve`: a local model behind the OpenAI chat-completions API.
        // ShapesWorld's tiny LLaVA: its folder and its staged pretraining.
        .target(name: "WorldModel", dependencies: ["ShapesWorld", "Alignment", "Models", "Torch", "Images", "JSON"],
                resources: [.copy("Resources/shapesworld-llava")]),
        .target(name: "Serving", dependencies: [
            "Backends", "Models", "Images", "JSON",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        .executableTarget(
            name: "realign",
            dependencies: [
                "Common",
                "JSON",
                "Torch",
                "Tokenizers",
                "Images",
                "Models",
                "Alignment",
                "Retrieval",
                "Evaluation",
                "Backends",
                "Preference",
                "Serving",
                "ShapesWorld",
                "WorldModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers shared by the test targets (the built executable, the MiniLM folder); not a product.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "TokenizersTests",
            dependencies: ["Tokenizers", "JSON"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "CommonTests", dependencies: ["Common", "JSON"]),
        .testTarget(
            name: "ImagesTests",
            dependencies: ["Images"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "EvaluationTests",
            dependencies: ["Evaluation", "Models", "Images", "JSON"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "PreferenceTests",
            dependencies: ["TestSupport", "Common", "Backends", "Preference", "Alignment", "Retrieval", "Models", "Torch", "JSON"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "RetrievalTests",
            dependencies: ["TestSupport", "Retrieval", "Models", "Torch", "JSON"]
        ),
        .testTarget(
            name: "AlignmentTests",
            dependencies: ["TestSupport", "Alignment", "Models", "Torch", "Tokenizers", "JSON", "TensorBoard"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "ModelsTests",
            dependencies: ["TestSupport", "Models", "Torch", "Tokenizers", "Images", "JSON"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "DemoTests",
            dependencies: ["TestSupport", "JSON"]
        ),
        .testTarget(
            name: "ShapesWorldTests",
            dependencies: ["ShapesWorld", "Evaluation", "Tokenizers", "Images", "JSON"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "TorchTests",
            dependencies: ["Torch", "JSON"],
            exclude: ["Fixtures"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
