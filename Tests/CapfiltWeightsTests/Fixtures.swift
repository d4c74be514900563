// Locates the fixtures written by Scripts/fixtures/weights.py and reads its expected.json.
import Foundation
import XCTest
@testable import CapfiltWeights

enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/weights")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    /// One tensor of expected.json.
    struct ExpectedTensor {
        let dtype: String
        let shape: [Int]
        /// fp32 bit patterns of `tensor.float()`, row-major; nil for integer tensors.
        let bits: [UInt32]?
    }

    /// expected.json, parsed once.
    struct Expected {
        let tensors: [String: ExpectedTensor]
        let storageKey: [String: String]
        let safetensorsLastTensor: String
        let digests: [String: String]
        let hostileGlobals: [String: [String]]
        let archivePrefix: String
    }

    static let expected: Expected = {
        do {
            let data = try Data(contentsOf: url("expected.json"))
            guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let tensors = root["tensors"] as? [String: [String: Any]] else {
                throw CocoaError(.fileReadCorruptFile)
            }
            var parsed: [String: ExpectedTensor] = [:]
            for (name, entry) in tensors {
                parsed[name] = ExpectedTensor(
                    dtype: entry["dtype"] as? String ?? "?",
                    shape: (entry["shape"] as? [Int]) ?? [],
                    bits: (entry["f32_bits"] as? [NSNumber])?.map { $0.uint32Value })
            }
            return Expected(
                tensors: parsed,
                storageKey: root["storage_key"] as? [String: String] ?? [:],
                safetensorsLastTensor: root["safetensors_last_tensor"] as? String ?? "",
                digests: root["digests"] as? [String: String] ?? [:],
                hostileGlobals: root["hostile_globals"] as? [String: [String]] ?? [:],
                archivePrefix: root["archive_prefix"] as? String ?? "")
        } catch {
            XCTFail("cannot read expected.json: \(error); run Scripts/fixtures/weights.py")
            return Expected(tensors: [:], storageKey: [:], safetensorsLastTensor: "", digests: [:],
                            hostileGlobals: [:], archivePrefix: "")
        }
    }()
}

/// Asserts that `body` throws a WeightsError of `kind` whose description contains every string in
/// `mentions` (and, if given, whose tensorName is `tensor`). Returns the error for further checks.
@discardableResult
func assertWeightsError<T>(_ kind: WeightsError.Kind, mentions: [String], tensor: String? = nil,
                           file: StaticString = #filePath, line: UInt = #line,
                           _ body: () throws -> T) -> WeightsError? {
    do {
        _ = try body()
        XCTFail("expected a \(kind) error, got success", file: file, line: line)
        return nil
    } catch let error as WeightsError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        for text in mentions {
            XCTAssertTrue(error.description.contains(text), "'\(text)' not in: \(error)", file: file, line: line)
        }
        if let tensor { XCTAssertEqual(error.tensorName, tensor, "\(error)", file: file, line: line) }
        XCTAssertTrue(error.description.hasSuffix("."), "message should end with the fix: \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected WeightsError, got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}
