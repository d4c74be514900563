// Strict loading: missing tensors, wrong shapes and unused tensors are errors that name them.
import Foundation
import XCTest
@testable import CapfiltWeights

final class StrictWeightReaderTests: XCTestCase {
    private func reader() throws -> StrictWeightReader {
        StrictWeightReader(source: try SafeTensorsFile(url: Fixtures.url("good.safetensors")))
    }

    /// Loading everything the file has, with the right shapes, finishes cleanly; position_ids is ignored
    /// the way the model will ignore it.
    func testLoadingEverythingFinishes() throws {
        let r = try reader()
        for (name, want) in Fixtures.expected.tensors where want.bits != nil {
            let t = try r.tensor(name, shape: want.shape)
            XCTAssertEqual(t.shape, want.shape)
        }
        XCTAssertTrue(r.contains("text.position_ids"))
        XCTAssertNoThrow(try r.finish { $0.hasSuffix(".position_ids") })
    }

    func testMissingTensorNamesItAndNearNames() throws {
        let r = try reader()
        assertWeightsError(.missingTensor, mentions: ["layer.wieght", "[6, 4]", "nearest names present: layer.weight"],
                           tensor: "layer.wieght") {
            try r.tensor("layer.wieght", shape: [6, 4])
        }
        XCTAssertFalse(r.contains("layer.wieght"))
        XCTAssertNil(try r.optionalTensor("layer.wieght", shape: [6, 4]))
        XCTAssertNotNil(try r.optionalTensor("layer.weight", shape: [6, 4]))
    }

    func testWrongShapeGivesBothShapes() throws {
        let r = try reader()
        assertWeightsError(.shapeMismatch, mentions: ["layer.weight", "[6, 4]", "[4, 6]"], tensor: "layer.weight") {
            try r.tensor("layer.weight", shape: [4, 6])
        }
        assertWeightsError(.shapeMismatch, mentions: ["scalar", "[]", "[1]"], tensor: "scalar") {
            try r.optionalTensor("scalar", shape: [1])
        }
    }

    func testIntegerTensorIsNotAWeight() throws {
        let r = try reader()
        assertWeightsError(.unsupportedConversion, mentions: ["text.position_ids", "I64"], tensor: "text.position_ids") {
            try r.tensor("text.position_ids", shape: [1, 8])
        }
    }

    /// Unused tensors are listed sorted, the first 10 and a count; markUsed and `ignoring` excuse them.
    func testUnusedTensorsAreListed() throws {
        let r = try reader()
        _ = try r.tensor("layer.weight", shape: [6, 4])
        let all = Fixtures.expected.tensors.keys.filter { $0 != "layer.weight" }.sorted()
        XCTAssertGreaterThan(all.count, 10)
        let error = assertWeightsError(.unusedTensors, mentions: ["\(all.count) tensors"] + Array(all.prefix(10)) + ["(\(all.count - 10) more)"]) {
            try r.finish { _ in false }
        }
        XCTAssertFalse(error?.description.contains(all[10] + ",") ?? true, "only the first 10 are listed")
        XCTAssertFalse(error?.description.contains("layer.weight,") ?? true, "used tensors are not listed")

        for name in all.dropFirst() { r.markUsed(name) }
        assertWeightsError(.unusedTensors, mentions: ["1 tensor in the checkpoint was not used: \(all[0])."]) { try r.finish { _ in false } }
        XCTAssertNoThrow(try r.finish { $0 == all[0] })
    }

    func testEditDistance() {
        XCTAssertEqual(StrictWeightReader.editDistance(Array("kitten".utf8), Array("sitting".utf8)), 3)
        XCTAssertEqual(StrictWeightReader.editDistance([], Array("abc".utf8)), 3)
        XCTAssertEqual(StrictWeightReader.editDistance(Array("same".utf8), Array("same".utf8)), 0)
    }
}
