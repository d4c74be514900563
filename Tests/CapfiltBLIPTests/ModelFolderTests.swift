// Model folders as users have them, and broken ones: each failure is one clear message.
import Foundation
import XCTest
@testable import CapfiltBLIP

final class ModelFolderTests: XCTestCase {
    /// The Hub's 4.26-era config.json and transformers 5's save_pretrained output describe the same model.
    func testHubAndV5ConfigsParseToTheSameModel() throws {
        for kind in ["caption", "itm"] {
            let v5 = try BLIPConfig.load(folder: fixtures.appendingPathComponent("\(kind)-st"))
            let hub = try BLIPConfig.load(folder: fixtures.appendingPathComponent("\(kind)-bin"))
            XCTAssertEqual(v5.vision, hub.vision, kind)
            XCTAssertEqual(v5.text, hub.text, kind)
            XCTAssertEqual(v5.text.bosTokenId, 4000, "[DEC] comes from the config, not a constant")
            XCTAssertEqual(v5.text.encoderHiddenSize, 48, "cross-attention reads the vision width")
        }
    }

    func testMissingKeysTakeTheTransformersClassDefaults() throws {
        let config = try BLIPConfig(json: Data(#"{"model_type": "blip", "text_config": {"num_attention_heads": 12}}"#.utf8), source: "x")
        XCTAssertEqual(config.vision.hiddenSize, 768)
        XCTAssertEqual(config.vision.layerNormEps, 1e-5)
        XCTAssertEqual(config.text.layerNormEps, 1e-12)
        XCTAssertEqual(config.text.bosTokenId, 30522)
        XCTAssertEqual(config.text.sepTokenId, 102)
        XCTAssertEqual(config.vision.sequenceLength, 577)
    }

    func testInvalidConfigsNameTheField() {
        let cases: [(String, String)] = [
            (#"{"model_type": "bert"}"#, "model_type"),
            (#"{"vision_config": {"hidden_size": "big"}}"#, "hidden_size"),
            (#"{"vision_config": {"hidden_size": 100, "num_attention_heads": 12}}"#, "multiple"),
            (#"{"text_config": {"hidden_act": "relu"}}"#, "hidden_act"),
            (#"[1, 2]"#, "JSON object"),
            (#"{"text_config": {"bos_token_id": 99999}}"#, "bos_token_id"),
        ]
        for (json, needle) in cases {
            XCTAssertThrowsError(try BLIPConfig(json: Data(json.utf8), source: "config.json"), json) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(error) should mention \(needle)")
            }
        }
    }

    func testWrongArchitectureIsRefused() throws {
        let folder = try ModelFolder(url: fixtures.appendingPathComponent("caption-st"))
        XCTAssertThrowsError(try folder.loadRetriever()) { error in
            XCTAssertTrue("\(error)".contains("BlipForImageTextRetrieval"), "\(error)")
        }
    }

    func testMissingFolderAndMissingFiles() throws {
        XCTAssertThrowsError(try ModelFolder(url: URL(fileURLWithPath: "/nonexistent/model"))) {
            XCTAssertTrue("\($0)".contains("/nonexistent/model"))
        }
        let temp = try copyFixture("caption-st")
        try FileManager.default.removeItem(at: temp.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try ModelFolder(url: temp)) { XCTAssertTrue("\($0)".contains("config.json")) }
    }

    /// A config that disagrees with the weights: the strict loader names the tensor and both shapes.
    func testShapeMismatchNamesTheTensor() throws {
        let temp = try copyFixture("caption-st")
        let url = temp.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var text = json["text_config"] as! [String: Any]
        text["intermediate_size"] = 80
        json["text_config"] = text
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        XCTAssertThrowsError(try ModelFolder(url: temp).loadCaptioner()) { error in
            XCTAssertTrue("\(error)".contains("intermediate.dense.weight"), "\(error)")
        }
    }

    /// A tensor in the file that no module uses is an error, as in a strict loader.
    func testFewerLayersInConfigLeavesUnusedTensors() throws {
        let temp = try copyFixture("itm-st")
        let url = temp.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var vision = json["vision_config"] as! [String: Any]
        vision["num_hidden_layers"] = 1
        json["vision_config"] = vision
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        XCTAssertThrowsError(try ModelFolder(url: temp).loadRetriever()) { error in
            XCTAssertTrue("\(error)".contains("vision_model.encoder.layers.1"), "\(error)")
        }
    }

    private func copyFixture(_ name: String) throws -> URL {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: temp)
        addTeardownBlock { try? FileManager.default.removeItem(at: temp) }
        return temp
    }
}
