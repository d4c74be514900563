// Real output against the JSON Schemas in Manifests/: every key.json in every shard, every manifest line,
// every stats file and the run manifest. The validator itself is checked to reject what it must.
import CapfiltPipeline
import CapfiltWebDataset
import CapfiltParquet
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
        let bad = #"{"schema_version": 1, "key": "a.b", "extra": 1}"#
        let problems = sample.validate(json: bad)
        XCTAssertTrue(problems.contains { $0.contains("schema_version") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("key") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("extra") }, "an additional column is text: \(problems)")
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
        XCTAssertEqual(Set((reason?["enum"] as? [Any] ?? []).compactMap { $0 as? String }.filter { !$0.isEmpty }), Set(Reason.all))
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
        var parquetSchemas: [[String]] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: shards.path).sorted() where name.hasSuffix(".parquet") {
            let jsonl = shards.appendingPathComponent(name.replacingOccurrences(of: ".parquet", with: ".jsonl"))
            parquetSchemas.append(try checkParquetAgreesWithJSONL(shards.appendingPathComponent(name), jsonl))
        }
        XCTAssertGreaterThan(parquetSchemas.count, 1, "a Parquet manifest beside every shard")
        XCTAssertEqual(Set(parquetSchemas.map { $0.joined(separator: ",") }).count, 1, "one schema for every shard")
        XCTAssertGreaterThan(checked.samples, 0)
        XCTAssertEqual(checked.rows, corpus.expectations.count)
        print("[schema] validated \(checked.samples) samples, \(checked.rows) manifest lines, \(checked.stats) stats files and the run manifest")
    }
    /// The Parquet manifest has the JSONL manifest's rows and columns, with nulls where the JSONL has its
    /// stand-ins ("", 0, false). Returns the Parquet schema's leaf columns and types.
    private func checkParquetAgreesWithJSONL(_ parquet: URL, _ jsonl: URL) throws -> [String] {
        let file = try ParquetFile(path: parquet.path)
        let lines = try String(contentsOf: jsonl, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(file.rowCount, lines.count, parquet.lastPathComponent)
        let leaves = file.schema.columns.map(\.dottedPath)
        var rows: [[String: Any]] = []
        for line in lines { rows.append(try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])) }
        XCTAssertEqual(Set(leaves.map { String($0.prefix { $0 != "." }) }), Set(rows.first?.keys.map { $0 } ?? []), "the same columns")
        var base = 0
        for group in 0..<file.rowGroups.count {
            let columns = try file.readRowGroup(group, columns: leaves)
            for (leaf, column) in columns {
                let name = String(leaf.prefix { $0 != "." })
                for r in 0..<column.rowCount {
                    let expected = rows[base + r][name]
                    func same(_ cell: ParquetValue, _ json: Any?) -> Bool {
                        switch cell {
                        case .null:
                            if let s = json as? String { return s.isEmpty }
                            if let n = json as? NSNumber { return n.doubleValue == 0 }
                            return (json as? [Any]).map { $0.allSatisfy { ($0 as? NSNumber)?.doubleValue == 0 } } ?? false
                        case .string(let s): return (json as? String) == s
                        case .int64(let i): return (json as? NSNumber)?.int64Value == i
                        case .float(let f): return (json as? NSNumber).map { Float($0.doubleValue) == f } ?? false
                        case .bool(let b): return (json as? NSNumber).map { SchemaValidator.isBool($0) && $0.boolValue == b } ?? false
                        case .list(let items):
                            guard let array = json as? [Any], array.count == items.count else { return false }
                            return zip(items, array).allSatisfy { same($0, $1) }
                        default: return false
                        }
                    }
                    XCTAssertTrue(same(column.row(r), expected), "\(parquet.lastPathComponent) row \(base + r) \(leaf): \(column.row(r)) vs \(String(describing: expected))")
                }
            }
            base += file.rowGroups[group].rowCount
        }
        return file.schema.columns.map { "\($0.dottedPath):\($0.physicalType)" }
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
