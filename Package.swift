// swift-tools-version:6.0
// capfilt: BLIP CapFilt for web-scale image-text corpora, in Swift on OpenBLAS and oneDNN.
//
// Layers point one way (see ARCHITECTURE.md):
//   C libraries (COpenBLAS, CDNNL, CSQLite, CImageCodecs, CSnappy, CZstd, CZlib)
//     -> CapfiltTensor (tensors, BLAS, fused ops)
//     -> CapfiltWeights (safetensors, torch zip+pickle, strict loading)
//     -> CapfiltBLIP (vision/text towers, heads, generation)
//     -> CapfiltPipeline (spec, job plan and leases, per-unit ledgers and staged runs, merge)
//     -> capfilt (command line)
//   Leaves beside them: CapfiltImage (decode, Pillow-exact resize), CapfiltText (WordPiece),
//   CapfiltWebDataset (tar shards), CapfiltDigest (SHA-256), CapfiltStore (SQLite),
//   CapfiltCorpus (input readers; uses CapfiltParquet), CapfiltParquet (Parquet reader and writer; CSnappy, CZstd, CZlib).
import PackageDescription

let package = Package(
    name: "capfilt",
    products: [
        .executable(name: "capfilt", targets: ["capfilt"]),
        .library(name: "CapfiltBLIP", targets: ["CapfiltBLIP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries. Each is imported by exactly one Swift file.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // oneDNN 2.6 (no pkg-config file in Debian's package; headers and library in the default paths).
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // libjpeg and libpng report errors with longjmp, which Swift cannot catch: a small C layer does.
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("webp")]
        ),

        .target(name: "CVectorKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CapfiltTensor", dependencies: ["COpenBLAS", "CDNNL", "CVectorKernels"]),
        .target(name: "CapfiltWeights", dependencies: ["CapfiltTensor", "CapfiltDigest"]),
        .target(name: "CapfiltImage", dependencies: ["CImageCodecs"]),
        .target(name: "CapfiltText"),
        .target(name: "CapfiltDigest"),
        .target(name: "CapfiltWebDataset", dependencies: ["CapfiltDigest"]),
        .target(name: "CapfiltStore", dependencies: ["CSQLite"]),
        .target(name: "CapfiltCorpus", dependencies: ["CapfiltWebDataset", "CapfiltParquet"]),
        .target(name: "CapfiltParquet", dependencies: ["CSnappy", "CZstd", "CZlib"]),
        .target(
            name: "CapfiltBLIP",
            dependencies: ["CapfiltTensor", "CapfiltWeights", "CapfiltImage", "CapfiltText"]
        ),
        .target(
            name: "CapfiltPipeline",
            dependencies: ["CapfiltBLIP", "CapfiltCorpus", "CapfiltStore", "CapfiltWebDataset", "CapfiltDigest",
                           "CapfiltImage", "CapfiltParquet", .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "capfilt",
            dependencies: [
                "CapfiltBLIP", "CapfiltImage", "CapfiltText", "CapfiltPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "CapfiltTensorTests", dependencies: ["CapfiltTensor", "CVectorKernels"]),
        .testTarget(name: "CapfiltWeightsTests", dependencies: ["CapfiltWeights", "CapfiltTensor"]),
        .testTarget(name: "CapfiltImageTests", dependencies: ["CapfiltImage"]),
        .testTarget(name: "CapfiltTextTests", dependencies: ["CapfiltText"]),
        .testTarget(name: "CapfiltDigestTests", dependencies: ["CapfiltDigest"]),
        .testTarget(name: "CapfiltWebDatasetTests", dependencies: ["CapfiltWebDataset"]),
        .testTarget(name: "CapfiltStoreTests", dependencies: ["CapfiltStore"]),
        .testTarget(name: "CapfiltCorpusTests", dependencies: ["CapfiltCorpus", "CapfiltWebDataset", "CapfiltParquet"]),
        .testTarget(name: "CapfiltParquetTests", dependencies: ["CapfiltParquet"]),
        .testTarget(name: "CapfiltBLIPTests", dependencies: ["CapfiltBLIP", "CapfiltTensor", "CapfiltWeights", "CapfiltImage", "CapfiltText"]),
        .testTarget(name: "CapfiltPipelineTests", dependencies: ["CapfiltPipeline", "CapfiltStore", "CapfiltWebDataset", "CapfiltParquet",
                                                              "CapfiltImage", "CapfiltDigest"]),
        .testTarget(name: "CapfiltCLITests", dependencies: ["capfilt"]),
    ],
    swiftLanguageModes: [.v6]
)
