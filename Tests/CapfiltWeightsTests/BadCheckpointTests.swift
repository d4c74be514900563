// Every broken or hostile fixture fails at open time with a WeightsError of the right kind whose message
// names the problem: the tensor, the zip entry, or the pickle global/opcode.
import Foundation
import XCTest
@testable import CapfiltWeights

final class BadCheckpointTests: XCTestCase {
    private func safetensors(_ name: String) -> () throws -> SafeTensorsFile {
        { try SafeTensorsFile(url: Fixtures.url(name)) }
    }

    private func torch(_ name: String) -> () throws -> TorchCheckpointFile {
        { try TorchCheckpointFile(url: Fixtures.url(name)) }
    }

    // MARK: - safetensors

    func testTruncatedSafeTensorsNamesTheCutTensor() {
        let last = Fixtures.expected.safetensorsLastTensor
        assertWeightsError(.truncatedFile, mentions: [last, "bad_truncated.safetensors", "truncated"], tensor: last,
                           safetensors("bad_truncated.safetensors"))
    }

    func testHeaderLengthPastEndOfFile() {
        assertWeightsError(.invalidHeader, mentions: ["header length", "past the end", "bad_header_past_eof.safetensors"],
                           safetensors("bad_header_past_eof.safetensors"))
    }

    func testInvalidJSONHeader() {
        assertWeightsError(.invalidJSON, mentions: ["JSON", "byte", "bad_json.safetensors"], safetensors("bad_json.safetensors"))
    }

    func testUnknownDtype() {
        assertWeightsError(.unknownElementType, mentions: ["weird.weight", "F8_E4M3"], tensor: "weird.weight",
                           safetensors("bad_dtype.safetensors"))
    }

    func testOffsetOutOfRange() {
        assertWeightsError(.invalidOffsets, mentions: ["far.weight", "[1000, 1008)", "outside"], tensor: "far.weight",
                           safetensors("bad_offset_out_of_range.safetensors"))
    }

    func testOverlappingOffsets() {
        assertWeightsError(.invalidOffsets, mentions: ["b.weight", "a.weight", "overlap"], tensor: "b.weight",
                           safetensors("bad_overlap.safetensors"))
    }

    func testReversedOffsets() {
        assertWeightsError(.invalidOffsets, mentions: ["a.weight", "reversed"], tensor: "a.weight",
                           safetensors("bad_reversed.safetensors"))
    }

    func testSizeShapeMismatch() {
        assertWeightsError(.sizeMismatch, mentions: ["square.weight", "[3, 3]", "36 bytes", "32"], tensor: "square.weight",
                           safetensors("bad_size_mismatch.safetensors"))
    }

    /// Files shorter than the 8-byte length, empty files, directories, missing files.
    func testDegenerateFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tiny = dir.appendingPathComponent("tiny.safetensors")
        try Data([1, 2, 3]).write(to: tiny)
        assertWeightsError(.truncatedFile, mentions: ["3 bytes"]) { try SafeTensorsFile(url: tiny) }
        let empty = dir.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        assertWeightsError(.invalidZip, mentions: ["not a zip"]) { try TorchCheckpointFile(url: empty) }
        assertWeightsError(.fileUnreadable, mentions: ["not a regular file"]) { try SafeTensorsFile(url: dir) }
        assertWeightsError(.fileUnreadable, mentions: ["missing.safetensors"]) {
            try SafeTensorsFile(url: dir.appendingPathComponent("missing.safetensors"))
        }
        // A header that is valid JSON but not an object, and one with a non-string metadata value.
        var bytes = [UInt8](repeating: 0, count: 8)
        let header = Array("[1, 2]  ".utf8)
        bytes[0] = UInt8(header.count)
        let array = dir.appendingPathComponent("array.safetensors")
        try Data(bytes + header).write(to: array)
        assertWeightsError(.invalidHeader, mentions: ["an array"]) { try SafeTensorsFile(url: array) }
        // A bare end-of-central-directory record claiming 65,535 entries in an empty directory.
        let eocdOnly = dir.appendingPathComponent("eocd.bin")
        try Data([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).write(to: eocdOnly)
        assertWeightsError(.invalidZip, mentions: ["65535 entries"]) { try TorchCheckpointFile(url: eocdOnly) }
        // An empty but well-formed zip has no data.pkl.
        let emptyZip = dir.appendingPathComponent("emptyzip.bin")
        try Data([0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)).write(to: emptyZip)
        assertWeightsError(.invalidZip, mentions: ["data.pkl"]) { try TorchCheckpointFile(url: emptyZip) }
    }

    // MARK: - torch zip

    func testTruncatedZip() {
        assertWeightsError(.truncatedFile, mentions: ["truncated", "bad_truncated.bin"], torch("bad_truncated.bin"))
    }

    func testCompressedEntry() {
        let entry = Fixtures.expected.archivePrefix + "data/0"
        let tensor = Fixtures.expected.storageKey.first { $0.value == "0" }?.key
        assertWeightsError(.compressedEntry, mentions: [entry, "compressed"], tensor: tensor, torch("bad_compressed.bin"))
    }

    func testMissingDataEntry() {
        let entry = Fixtures.expected.archivePrefix + "data/1"
        let tensor = Fixtures.expected.storageKey.first { $0.value == "1" }?.key
        XCTAssertNotNil(tensor)
        assertWeightsError(.missingEntry, mentions: [entry, tensor ?? "?"], tensor: tensor, torch("bad_missing_entry.bin"))
    }

    func testLegacyTorchFormatIsRefusedClearly() {
        assertWeightsError(.unsupportedFormat, mentions: ["legacy", "torch < 1.6"], torch("bad_legacy.bin"))
    }

    func testNestedCheckpointIsNotAStateDict() {
        assertWeightsError(.invalidPickle, mentions: ["model", "not a tensor"], tensor: "model", torch("bad_nested.bin"))
    }

    // MARK: - hostile pickles

    /// `__reduce__` -> os.system pickles as GLOBAL 'posix system' on Linux; the literal 'os system' too.
    func testForbiddenGlobals() {
        for (file, global) in [("bad_os_system.bin", "posix.system"), ("bad_os_system_literal.bin", "os.system"),
                               ("bad_builtins_eval.bin", "builtins.eval")] {
            XCTAssertEqual(Fixtures.expected.hostileGlobals[file], [global], "fixture \(file) changed")
            let error = assertWeightsError(.forbiddenPickle, mentions: ["GLOBAL '\(global)'", "data.pkl", "nothing was executed"],
                                           torch(file))
            XCTAssertNil(error?.tensorName)
        }
    }

    func testForbiddenOpcodes() {
        for (file, opcode) in [("bad_inst.bin", "INST"), ("bad_obj.bin", "OBJ"), ("bad_newobj.bin", "NEWOBJ"),
                               ("bad_ext1.bin", "EXT1")] {
            assertWeightsError(.forbiddenPickle, mentions: ["opcode \(opcode) ", "nothing was executed"], torch(file))
        }
    }

    func testReduceOnAWhitelistedTypeThatIsNotACallable() {
        assertWeightsError(.forbiddenPickle, mentions: ["REDUCE calls torch.FloatStorage"], torch("bad_reduce_storage.bin"))
    }
}
