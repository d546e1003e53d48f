// swift-tools-version: 6.1
import Foundation
import PackageDescription

// libtorch: the C++ shim over it (Sources/CTorch) is its own shared library, librealign_torch.so, built by
// scripts/build-shim.sh (`make` runs it) against Debian's libtorch-dev, or against the one LIBTORCH=/dir names (the
// libtorch inside a PyTorch install, a CUDA build). The Swift side links only the shim's C surface: another libtorch
// needs only the shim rebuilt, and LD_LIBRARY_PATH (searched before the RUNPATH below) picks it at run time.
let environment = ProcessInfo.processInfo.environment
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let shimFolder: String = {
    guard let root = environment["LIBTORCH"], !root.isEmpty else { return "\(packageRoot)/.build-shim/debian" }
    let absolute = URL(fileURLWithPath: root, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        .standardizedFileURL.path
    return "\(packageRoot)/.build-shim/" + absolute.replacingOccurrences(of: "/", with: "_")
}()
if !FileManager.default.fileExists(atPath: "\(shimFolder)/librealign_torch.so") {
    FileHandle.standardError.write(Data("\(shimFolder)/librealign_torch.so is not built yet: run `make shim` (or scripts/build-shim.sh) before `swift build`\n".utf8))
}
// RUNPATH (new dtags), so that LD_LIBRARY_PATH can point at another shim; the shim beside the binary ($ORIGIN)
// serves a copied install. Debian's OpenBLAS comes in a pthreads build (the default) and an OpenMP build that shares
// libtorch's OpenMP threads (4-5x faster on 2 cores); FAISS makes the binary load OpenBLAS itself, so the binary's
// own search path selects the OpenMP one (absent without the package).
var torchLinkerFlags = ["-L\(shimFolder)", "-Xlinker", "--enable-new-dtags",
                        "-Xlinker", "-rpath", "-Xlinker", shimFolder, "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN"]
for arch in ["x86_64", "aarch64"] {
    torchLinkerFlags += ["-Xlinker", "-rpath", "-Xlinker", "/usr/lib/\(arch)-linux-gnu/openblas-openmp"]
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
        // Recipes (`realign run RECIPE.yaml`): Yams's node tree keeps each key's line for error messages.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The shim's C surface (module.modulemap links librealign_torch.so, which scripts/build-shim.sh builds).
        .systemLibrary(name: "CTorch", path: "Sources/CTorch"),
        .target(name: "JSON"),
        // libtorch-free helpers every module may use: seeded generators, a stable hash, the resumable JSONL appender.
        .target(name: "Common", dependencies: ["JSON"]),
        .target(name: "Torch", dependencies: ["CTorch", "JSON"], linkerSettings: [.unsafeFlags(torchLinkerFlags)]),
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
        .target(name: "Preference", dependencies: ["Common", "Alignment", "Backends", "Models", "Retrieval", "Torch", "Tokenizers", "Images", "JSON"]),
        // `realign serve`: a local model behind the OpenAI chat-completions API.
        // ShapesWorld's tiny LLaVA: its folder and its staged pretraining.
        .target(name: "WorldModel", dependencies: ["ShapesWorld", "Alignment", "Models", "Torch", "Images", "JSON"],
                resources: [.copy("Resources/shapesworld-llava")]),
        .target(name: "Serving", dependencies: [
            "Backends", "Models", "Images", "JSON",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // The library's jobs (knowledge base, pairs, training, answering, scoring, report), the recipe runner and
        // the demo: what the CLI and other programs call.
        .target(name: "Jobs", dependencies: [
            "Common", "JSON", "Torch", "Models", "Alignment", "Retrieval", "Evaluation", "Backends", "Preference",
            "ShapesWorld", "WorldModel", .product(name: "Yams", package: "Yams"),
        ]),
        // Speed and memory measurements against the Python reference on the same machine (`realign bench`).
        .target(name: "Bench", dependencies: [
            "JSON", "Torch", "Tokenizers", "Images", "Models", "Alignment", "Retrieval", "Backends", "Preference", "Jobs",
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
                "Jobs",
                "Bench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers shared by the test targets (the built executable, the MiniLM folder, temporary folders, a small
        // ShapesWorld); not a product.
        .target(name: "TestSupport", dependencies: ["Jobs", "ShapesWorld", "WorldModel"], path: "Tests/TestSupport"),
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
        // The commands end to end, through the built executable.
        .testTarget(
            name: "CommandLineTests",
            dependencies: ["TestSupport", "Jobs", "Common", "JSON"]
        ),
        .testTarget(
            name: "JobsTests",
            dependencies: ["TestSupport", "Jobs", "Alignment", "Evaluation", "Preference", "Models", "Torch", "Common", "JSON", "ShapesWorld", "WorldModel"]
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
