// Good files: torch.save archives (three zip layouts) and safetensors give exactly the values torch gave,
// and agree with each other bit for bit; model folders resolve and fingerprint as documented.
import CapfiltTensor
import Foundation
import XCTest
@testable import CapfiltWeights

final class GoodCheckpointTests: XCTestCase {
    private func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

    /// Every descriptor matches expected.json, and every float tensor's fp32 bits equal torch's
    /// `tensor.float()` (so F16/BF16 widening, F64 rounding, NaN payloads, strides and offsets are exact).
    private func checkAgainstExpected(_ source: TensorSource, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = Fixtures.expected.tensors
        XCTAssertEqual(Set(source.descriptors.keys), Set(expected.keys), file: file, line: line)
        var maxDifferingElements = 0
        for (name, want) in expected {
            guard let descriptor = source.descriptors[name] else { continue }
            XCTAssertEqual(descriptor.name, name, file: file, line: line)
            XCTAssertEqual(descriptor.elementType.rawValue, want.dtype, name, file: file, line: line)
            XCTAssertEqual(descriptor.shape, want.shape, name, file: file, line: line)
            if let wantBits = want.bits {
                let tensor = try source.float32Tensor(named: name)
                XCTAssertEqual(tensor.shape, want.shape, name, file: file, line: line)
                let got = bits(tensor)
                XCTAssertEqual(got, wantBits, "\(name) in \(source.path)", file: file, line: line)
                maxDifferingElements = max(maxDifferingElements, zip(got, wantBits).filter { $0 != $1 }.count)
            } else {
                assertWeightsError(.unsupportedConversion, mentions: [name, "I64"], tensor: name, file: file, line: line) {
                    try source.float32Tensor(named: name)
                }
            }
        }
        print("\(URL(fileURLWithPath: source.path).lastPathComponent): \(expected.count) tensors, max differing elements \(maxDifferingElements)")
    }

    func testTorchSaveFileMatchesTorchValues() throws {
        try checkAgainstExpected(try TorchCheckpointFile(url: Fixtures.url("good.bin")))
    }

    /// torch.save to a buffer names the top folder `archive/` rather than after the file.
    func testArchiveFolderNameVaries() throws {
        try checkAgainstExpected(try TorchCheckpointFile(url: Fixtures.url("good_archive.bin")))
    }

    /// The same entries repacked with zip64 extra fields (saturated sizes and offsets) everywhere.
    func testZip64ExtraFields() throws {
        try checkAgainstExpected(try TorchCheckpointFile(url: Fixtures.url("good_zip64.bin")))
    }

    func testSafeTensorsMatchesTorchValues() throws {
        let file = try SafeTensorsFile(url: Fixtures.url("good.safetensors"))
        XCTAssertEqual(file.metadata["format"], "pt")
        try checkAgainstExpected(file)
    }

    /// .bin and .safetensors of the same state dict: same descriptors, same bits, tensor by tensor.
    func testBinAndSafeTensorsAgreeExactly() throws {
        let bin = try TorchCheckpointFile(url: Fixtures.url("good.bin"))
        let st = try SafeTensorsFile(url: Fixtures.url("good.safetensors"))
        XCTAssertEqual(bin.descriptors, st.descriptors)
        for (name, descriptor) in bin.descriptors where descriptor.elementType.isFloatingPoint {
            XCTAssertEqual(bits(try bin.float32Tensor(named: name)), bits(try st.float32Tensor(named: name)), name)
        }
    }

    /// Tied weights share one storage; views with storage offsets and strides read the right elements.
    func testSharedStoragesAndViews() throws {
        let bin = try TorchCheckpointFile(url: Fixtures.url("good.bin"))
        let keys = Fixtures.expected.storageKey
        XCTAssertEqual(keys["layer.weight"], keys["layer.alias"])
        XCTAssertEqual(keys["emb.full"], keys["emb.rows"])
        XCTAssertEqual(bits(try bin.float32Tensor(named: "layer.weight")), bits(try bin.float32Tensor(named: "layer.alias")))
        let full = try bin.float32Tensor(named: "emb.full")    // (6, 5)
        let rows = try bin.float32Tensor(named: "emb.rows")    // full[2:5]
        let column = try bin.float32Tensor(named: "emb.column") // full[:, 1]
        XCTAssertEqual(rows.scalars, Array(full.scalars[10..<25]))
        XCTAssertEqual(column.scalars, (0..<6).map { full.scalars[$0 * 5 + 1] })
        let empty = try bin.float32Tensor(named: "empty.weight")
        XCTAssertEqual(empty.shape, [0, 3])
        XCTAssertEqual(empty.count, 0)
        let scalar = try bin.float32Tensor(named: "scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.scalars, [2.75])
    }

    func testUnknownNameIsMissingTensor() throws {
        let st = try SafeTensorsFile(url: Fixtures.url("good.safetensors"))
        assertWeightsError(.missingTensor, mentions: ["no.such.tensor", "good.safetensors"], tensor: "no.such.tensor") {
            try st.float32Tensor(named: "no.such.tensor")
        }
    }

    // MARK: - Folders

    func testFolderPrefersSafeTensors() throws {
        let source = try CheckpointFolder.tensorSource(in: Fixtures.url("folder_safetensors"))
        XCTAssertTrue(source is SafeTensorsFile, "\(type(of: source))")
        try checkAgainstExpected(source)
        XCTAssertEqual(try CheckpointFolder.weightsDigest(in: Fixtures.url("folder_safetensors")),
                       Fixtures.expected.digests["folder_safetensors"])
    }

    func testFolderFallsBackToPytorchModelBin() throws {
        let source = try CheckpointFolder.tensorSource(in: Fixtures.url("folder_bin"))
        XCTAssertTrue(source is TorchCheckpointFile, "\(type(of: source))")
        try checkAgainstExpected(source)
        XCTAssertEqual(try CheckpointFolder.weightsDigest(in: Fixtures.url("folder_bin")),
                       Fixtures.expected.digests["folder_bin"])
    }

    func testShardedFolders() throws {
        for folder in ["folder_sharded", "folder_sharded_bin"] {
            let source = try CheckpointFolder.tensorSource(in: Fixtures.url(folder))
            XCTAssertTrue(source.path.hasSuffix(".index.json"), source.path)
            try checkAgainstExpected(source)
            XCTAssertEqual(try CheckpointFolder.weightsDigest(in: Fixtures.url(folder)), Fixtures.expected.digests[folder], folder)
        }
    }

    func testFolderWithoutWeightsListsWhatItFound() {
        let folder = Fixtures.url("folder_empty")
        assertWeightsError(.noCheckpoint, mentions: ["config.json", "tf_model.h5", "model.safetensors", "pytorch_model.bin"]) {
            try CheckpointFolder.tensorSource(in: folder)
        }
        assertWeightsError(.noCheckpoint, mentions: ["folder_empty"]) { try CheckpointFolder.weightsDigest(in: folder) }
        assertWeightsError(.noCheckpoint, mentions: ["no such folder"]) {
            try CheckpointFolder.tensorSource(in: Fixtures.url("does_not_exist"))
        }
    }

    /// A copied index whose weight_map names the wrong shard for one tensor.
    func testShardIndexDisagreeingWithShards() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Fixtures.url("folder_sharded")
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) where name.hasSuffix(".safetensors") {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        // `scalar` lives in the second shard; the index claims the first.
        let index = #"{"weight_map": {"layer.weight": "model-00001-of-00002.safetensors", "scalar": "model-00001-of-00002.safetensors", "emb.full": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        assertWeightsError(.invalidIndex, mentions: ["scalar", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
                           tensor: "scalar") {
            try CheckpointFolder.tensorSource(in: dir)
        }
        try Data(#"{"weight_map": {"scalar": "../escape.safetensors"}}"#.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        assertWeightsError(.invalidIndex, mentions: ["escape"], tensor: "scalar") { try CheckpointFolder.tensorSource(in: dir) }
    }
}
