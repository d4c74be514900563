// Real output against the JSON Schemas in Manifests/: every key.json in every shard, every manifest line,
// every stats file and the run manifest. The validator itself is checked to reject what it must.
import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

final class OutputSchemaTests: XCTestCase {
    private func schema(_ name: String) throws -> SchemaValidator {
        try SchemaValidator(schemaAt: repoRoot.appendingPathComponent("Manifests/\(name).schema.json"))
    }

    func testValidatorRejectsWhatItMust() throws {
        let stats = try schema("shard-stats")
        XCTAssertFalse(stats.validate(json: "{}").isEmpty, "missing fields")
        let sample = try schema("sample")
        let bad = #"{"schema_version": 2, "key": "a.b", "extra": 1}"#
        let problems = sample.validate(json: bad)
        XCTAssertTrue(problems.contains { $0.contains("schema_version") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("key") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("unexpected property extra") }, "\(problems)")
        let row = try schema("manifest-row")
        XCTAssertTrue(row.validate(json: #"{"status": true}"#).contains { $0.contains("status") })
        XCTAssertTrue(SchemaValidator.matches(NSNumber(value: true), type: "boolean"))
        XCTAssertFalse(SchemaValidator.matches(NSNumber(value: 1), type: "boolean"))
        XCTAssertFalse(SchemaValidator.matches(NSNumber(value: true), type: "integer"))
    }

    /// One code per cause, the same in the code, in Manifests/reasons.json and in the manifest schema: users
    /// filter on them, so a code cannot appear, vanish or be renamed without the docs saying so.
    func testReasonCodesAreDocumentedAndStable() throws {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: repoRoot.appendingPathComponent("Manifests/reasons.json"))) as? [String: Any]
        let documented = (doc?["reasons"] as? [[String: String]] ?? []).compactMap { $0["code"] }
        XCTAssertEqual(Set(documented), Set(Reason.all), "Manifests/reasons.json lists exactly the codes capfilt writes")
        XCTAssertEqual(documented.count, Set(documented).count, "no code twice")
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: repoRoot.appendingPathComponent("Manifests/manifest-row.schema.json"))) as? [String: Any]
        let reason = (schema?["properties"] as? [String: Any])?["reason"] as? [String: Any]
        XCTAssertEqual(Set((reason?["enum"] as? [Any] ?? []).compactMap { $0 as? String }), Set(Reason.all))
        // The codes that existed before this list are still there, with the same spelling.
        for code in ["image_missing", "image_empty", "image_unreadable", "image_too_many_bytes", "image_unsupported_format",
                     "image_too_large", "image_corrupt", "duplicate_image", "duplicate_key", "no_text_matched"] {
            XCTAssertTrue(Reason.all.contains(code), code)
        }
    }

    func testRealOutputMatchesTheSchemas() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        let spec = try CapfiltPipelineSpecLoader.load(corpus)
        XCTAssertEqual(try spec.run(), .completed)
        let shards = corpus.output.appendingPathComponent("shards")
        let sample = try schema("sample"), row = try schema("manifest-row"), stats = try schema("shard-stats"), run = try schema("run-manifest")
        var checked = (samples: 0, rows: 0, stats: 0)
        for name in try FileManager.default.contentsOfDirectory(atPath: shards.path).sorted() {
            let url = shards.appendingPathComponent(name)
            if name.hasSuffix(".tar") {
                let reader = try WebDatasetReader(url: url)
                while let s = try reader.nextSample() {
                    let problems = sample.validate(json: String(decoding: s.members["json"] ?? [], as: UTF8.self))
                    XCTAssertEqual(problems, [], "\(name) \(s.key)")
                    checked.samples += 1
                }
            } else if name.hasSuffix(".jsonl") {
                for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                    XCTAssertEqual(row.validate(json: String(line)), [], "\(name): \(line.prefix(120))")
                    checked.rows += 1
                }
            } else if name.hasSuffix("_stats.json") {
                XCTAssertEqual(stats.validate(json: try String(contentsOf: url, encoding: .utf8)), [], name)
                checked.stats += 1
            }
        }
        XCTAssertEqual(run.validate(json: try String(contentsOf: corpus.output.appendingPathComponent("capfilt_run.json"), encoding: .utf8)), [])
        XCTAssertGreaterThan(checked.samples, 0)
        XCTAssertEqual(checked.rows, corpus.expectations.count)
        print("[schema] validated \(checked.samples) samples, \(checked.rows) manifest lines, \(checked.stats) stats files and the run manifest")
    }
}

final class ManifestExampleTests: XCTestCase {
    /// The examples shipped in Manifests/examples (taken from a real run) match their schemas.
    func testShippedExamplesMatchTheirSchemas() throws {
        let dir = repoRoot.appendingPathComponent("Manifests")
        let pairs: [(String, String)] = [("sample", "examples/sample.json"), ("shard-stats", "examples/shard_stats.json"),
                                         ("run-manifest", "examples/capfilt_run.json")]
        for (schema, example) in pairs {
            let validator = try SchemaValidator(schemaAt: dir.appendingPathComponent("\(schema).schema.json"))
            XCTAssertEqual(validator.validate(json: try String(contentsOf: dir.appendingPathComponent(example), encoding: .utf8)), [], example)
        }
        let rows = try SchemaValidator(schemaAt: dir.appendingPathComponent("manifest-row.schema.json"))
        let lines = try String(contentsOf: dir.appendingPathComponent("examples/manifest.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 4, "kept, filtered, failed and duplicate examples")
        for line in lines { XCTAssertEqual(rows.validate(json: String(line)), [], String(line.prefix(100))) }
    }
}
