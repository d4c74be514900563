// Every fixture pyarrow, datasets and DuckDB wrote (each codec x dictionary on/off x data page v1/v2, DELTA_* and
// BYTE_STREAM_SPLIT, a datasets image dataset, img2dataset's columns, DuckDB's V2 format) reads back cell for cell
// as pyarrow reads it (for the one DuckDB column pyarrow cannot read, as DuckDB reads it).

import Foundation
import XCTest
@testable import CapfiltParquet

final class FixtureTests: XCTestCase {
    func testEveryFixtureReadsAsPyarrowReadsIt() throws {
        let expected = try Fixture.expectations()
        let files = try XCTUnwrap(expected["files"] as? [String: [String: Any]])
        let tables = try XCTUnwrap(expected["tables"] as? [String: [String: [Any]]])
        XCTAssertGreaterThanOrEqual(files.count, 20)
        var compared = 0
        for (name, info) in files.sorted(by: { $0.key < $1.key }) {
            let file = try ParquetFile(path: Fixture.path(name))
            let table = try XCTUnwrap(tables[try XCTUnwrap(info["table"] as? String)])
            XCTAssertEqual(file.rowGroups.map(\.rowCount), info["rowGroups"] as? [Int], name)
            let physical = try XCTUnwrap(info["physicalTypes"] as? [String: String])
            XCTAssertEqual(Set(file.schema.columns.map(\.dottedPath)), Set(physical.keys), name)
            for column in file.schema.columns {
                XCTAssertEqual(column.physicalType.description, physical[column.dottedPath], "\(name) \(column.dottedPath)")
            }
            var rows: [String: [ParquetValue]] = [:]
            for g in file.rowGroups.indices {
                let columns = try file.readRowGroup(g, columns: Array(table.keys))
                XCTAssertEqual(Set(columns.keys), Set(table.keys))
                for (path, column) in columns {
                    XCTAssertEqual(column.rowCount, file.rowGroups[g].rowCount)
                    rows[path, default: []].append(contentsOf: (0..<column.rowCount).map(column.row))
                }
            }
            for (path, want) in table {
                let got = rows[path] ?? []
                XCTAssertEqual(got.count, want.count, "\(name) \(path) row count")
                for (r, (value, cell)) in zip(got, want).enumerated() {
                    if let problem = mismatch(value, cell) {
                        XCTFail("\(name) \(path) row \(r): \(problem)")
                    }
                    compared += 1
                }
            }
        }
        print("compared \(compared) cells with pyarrow across \(files.count) files: 0 differences")
        XCTAssertGreaterThan(compared, 8000)
    }

    func testFixturesCoverEveryCodecEncodingAndPageVersion() throws {
        let files = try XCTUnwrap(Fixture.expectations()["files"] as? [String: [String: Any]])
        let codecs = Set(files.values.flatMap { $0["codecs"] as? [String] ?? [] })
        let encodings = Set(files.values.flatMap { $0["encodings"] as? [String] ?? [] })
        XCTAssertEqual(codecs, ["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"])
        XCTAssertTrue(encodings.isSuperset(of: ["PLAIN", "RLE", "RLE_DICTIONARY", "DELTA_BINARY_PACKED",
                                                "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "BYTE_STREAM_SPLIT"]))
        XCTAssertTrue(files.keys.contains("basic_zstd_dict_v2.parquet"))
        XCTAssertTrue(files.keys.contains("basic_gzip_plain_v1.parquet"))
    }

    func testSchemaOfHuggingFaceImageDataset() throws {
        let file = try ParquetFile(path: Fixture.path("hf_images.parquet"))
        let bytes = try XCTUnwrap(file.schema.column("image.bytes"))
        XCTAssertEqual(bytes.path, ["image", "bytes"])
        XCTAssertEqual(bytes.physicalType, .byteArray)
        XCTAssertEqual(bytes.maxDefinitionLevel, 2)
        XCTAssertEqual(bytes.maxRepetitionLevel, 0)
        XCTAssertNil(bytes.logicalType)
        XCTAssertEqual(file.schema.column("image.path")?.logicalType, .string)
        XCTAssertNotNil(file.keyValueMetadata["huggingface"])
        let columns = try file.readRowGroup(0, columns: ["image.bytes", "image.path", "text"])
        let image = try XCTUnwrap(columns["image.bytes"])
        // Row 5 has no image: the struct itself is null (definition level 0). Row 6 is a file on disk: the struct
        // is there with a path but null bytes (level 1).
        XCTAssertEqual(image.definitionLevels, [2, 2, 2, 2, 2, 0, 1])
        XCTAssertEqual(image.validity, [true, true, true, true, true, false, false])
        XCTAssertEqual(columns["image.path"]?.string(at: 6), "images/on_disk.jpg")
        XCTAssertEqual(columns["image.path"]?.definitionLevels, [2, 2, 2, 2, 2, 0, 2])
        guard case .byteArray(let blobs) = image.values else { return XCTFail("image.bytes is not BYTE_ARRAY") }
        XCTAssertEqual(Array(blobs[0].prefix(4)), [0x89, 0x50, 0x4E, 0x47], "row 0 is a PNG")
        XCTAssertEqual(Array(blobs[1].prefix(2)), [0xFF, 0xD8], "row 1 is a JPEG")
        XCTAssertEqual(columns["image.path"]?.value(at: 1), .string("img_1.jpeg"))
    }

    func testLogicalTypesAreReported() throws {
        let schema = try ParquetFile(path: Fixture.path("typed.parquet")).schema
        XCTAssertEqual(schema.column("taken")?.logicalType, .timestamp(unit: "MICROS", adjustedToUTC: true))
        XCTAssertEqual(schema.column("day")?.logicalType, .date)
        XCTAssertEqual(schema.column("byte")?.logicalType, .integer(bitWidth: 8, signed: false))
        XCTAssertEqual(schema.column("tiny")?.logicalType, .integer(bitWidth: 8, signed: true))
        XCTAssertEqual(schema.column("big_unsigned")?.logicalType, .integer(bitWidth: 32, signed: false))
        XCTAssertEqual(schema.column("meta.license")?.logicalType, .string)
        XCTAssertEqual(schema.column("attributes.key_value.key")?.maxDefinitionLevel, 2, "map keys are required")
        XCTAssertEqual(schema.column("attributes.key_value.value")?.maxDefinitionLevel, 3)
        XCTAssertEqual(schema.columns(under: "attributes").map(\.dottedPath),
                       ["attributes.key_value.key", "attributes.key_value.value"])
        XCTAssertEqual(schema.columns(under: "meta.score").map(\.dottedPath), ["meta.score"])
        XCTAssertEqual(schema.columns(under: "met"), [])
    }

    func testListColumnsGiveOffsetsAndNullLists() throws {
        let file = try ParquetFile(path: Fixture.path("basic_snappy_dict_v1.parquet"))
        let tags = try XCTUnwrap(file.readRowGroup(0, columns: ["tags.list.element"])["tags.list.element"])
        XCTAssertEqual(tags.descriptor.maxRepetitionLevel, 1)
        XCTAssertEqual(tags.listOffsets.count, tags.rowCount + 1)
        // Row 3 is a null list, row 0 an empty one (i % 4 == 0 elements).
        XCTAssertFalse(tags.listValidity[3])
        XCTAssertTrue(tags.listValidity[0])
        XCTAssertEqual(tags.listOffsets[0], tags.listOffsets[1])
        XCTAssertEqual(tags.row(3), .null)
        XCTAssertEqual(tags.row(0), .list([]))
    }

    func testOnlyRequestedColumnsAreReturnedAndUnknownNamesListTheColumns() throws {
        let file = try ParquetFile(path: Fixture.path("img2dataset.parquet"))
        XCTAssertEqual(file.rowCount, 12)
        let columns = try file.readRowGroup(2, columns: ["key", "jpg"])
        XCTAssertEqual(Set(columns.keys), ["key", "jpg"])
        XCTAssertEqual(columns["key"]?.value(at: 0), .string("000000010"))
        // Row 10 failed to download (i % 4 == 2), row 11 did: the typed accessors give nil or the bytes.
        let jpg = try XCTUnwrap(columns["jpg"])
        XCTAssertNil(jpg.bytes(at: 0))
        XCTAssertEqual(jpg.bytes(at: 1).map { Array($0.prefix(3)) }, [0xFF, 0xD8, 0xFF])
        XCTAssertEqual(columns["key"]?.string(at: 1), "000000011")
        XCTAssertNil(columns["key"]?.integer(at: 1), "not an integer column")
        let sizes = try file.readRowGroup(0, columns: ["width", "status"])
        XCTAssertEqual(sizes["width"]?.integer(at: 0), 256)
        XCTAssertNil(sizes["width"]?.integer(at: 2), "a failed download has no width")
        XCTAssertEqual(sizes["status"]?.string(at: 2), "failed_to_download")
        XCTAssertThrowsError(try file.readRowGroup(0, columns: ["caption", "image"])) { error in
            let e = error as? ParquetError
            XCTAssertEqual(e?.kind, .invalidArgument)
            XCTAssertTrue(e?.description.contains("no column 'image'") == true, "\(error)")
            XCTAssertTrue(e?.description.contains("jpg") == true, "lists the columns: \(error)")
        }
        XCTAssertThrowsError(try file.readRowGroup(3, columns: ["key"])) { error in
            XCTAssertEqual((error as? ParquetError)?.kind, .invalidArgument)
        }
    }
}

/// Real pyarrow files using features the reader does not implement: the file opens (its schema is readable), the
/// other columns read, and the unsupported column fails with a message naming the feature and the column.
final class RefusedFeatureTests: XCTestCase {
    func testUnsupportedFeaturesAreRefusedByName() throws {
        let refused = try XCTUnwrap(Fixture.expectations()["refused"] as? [String: [String: String]])
        XCTAssertEqual(refused.count, 4)
        for (name, info) in refused.sorted(by: { $0.key < $1.key }) {
            let file = try ParquetFile(path: Fixture.path(name))
            let column = try XCTUnwrap(info["column"])
            let others = file.schema.columns.map(\.dottedPath).filter { $0 != column }
            XCTAssertNoThrow(try file.readRowGroup(0, columns: others), name)
            do {
                _ = try file.readRowGroup(0, columns: [column])
                XCTFail("\(name): \(column) read")
            } catch let error as ParquetError {
                XCTAssertEqual(error.kind, .unsupported, "\(name): \(error)")
                XCTAssertEqual(error.location, "row group 0, column \(column)", name)
                XCTAssertTrue(error.detail.contains(try XCTUnwrap(info["error"])), "\(name): \(error)")
            }
        }
    }
}
