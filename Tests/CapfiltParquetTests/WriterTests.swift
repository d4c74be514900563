// The writer's files (flat columns, lists, an image struct) read back through the reader cell for cell, are byte-identical run to run (and to the committed
// golden file that Scripts/check_parquet_writer.py reads with pyarrow, pandas and datasets), and bad input is
// refused with the column that is wrong.

import Foundation
import XCTest
@testable import CapfiltParquet

/// The manifest-like sample: 25 rows with nulls in every column, empty strings and lists, non-ASCII text.
/// Scripts/check_parquet_writer.py builds the same rows in Python; change both together.
enum ManifestSample {
    static let schema: [ParquetWriterColumn] = [
        ParquetWriterColumn("key", .string), ParquetWriterColumn("caption", .string),
        ParquetWriterColumn("width", .int64), ParquetWriterColumn("height", .int32),
        ParquetWriterColumn("itm", .double), ParquetWriterColumn("scale", .float),
        ParquetWriterColumn("kept", .bool), ParquetWriterColumn("jpg", .binary),
        ParquetWriterColumn("synthetic_captions", .stringList), ParquetWriterColumn("synthetic_scores", .floatList),
        ParquetWriterColumn("image", .image),
    ]
    /// A 2x2 PNG (Pillow), so `datasets` can decode the image column.
    static let png: [UInt8] = {
        let hex = "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001649444154789c633c21a7c1c0c0c0c4"
            + "c0c0c0c0c000000d720112397285f20000000049454e44ae426082"
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }()
    /// The footer metadata `datasets` reads its features from (what `Dataset.to_parquet` writes).
    static let huggingFaceFeatures = """
        {"info": {"features": {"key": {"dtype": "string", "_type": "Value"}, "caption": {"dtype": "string", "_type": \
        "Value"}, "width": {"dtype": "int64", "_type": "Value"}, "height": {"dtype": "int32", "_type": "Value"}, \
        "itm": {"dtype": "float64", "_type": "Value"}, "scale": {"dtype": "float32", "_type": "Value"}, "kept": \
        {"dtype": "bool", "_type": "Value"}, "jpg": {"dtype": "binary", "_type": "Value"}, "synthetic_captions": \
        {"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"}, "synthetic_scores": {"feature": \
        {"dtype": "float32", "_type": "Value"}, "_type": "List"}, "image": {"_type": "Image"}}}}
        """
    static var goldenOptions: ParquetWriterOptions {
        var options = ParquetWriterOptions()
        options.keyValueMetadata = ["huggingface": huggingFaceFeatures]
        return options
    }
    static let rowCount = 25
    static let rowGroupSize = 10

    static func column(_ name: String, rows: Range<Int>) -> ParquetColumnData {
        switch name {
        case "key": return .string(rows.map { String(format: "%09d", $0) })
        case "caption": return .string(rows.map { $0 % 5 == 4 ? nil : $0 % 6 == 1 ? "" : "caption \($0) — ünïcödé" })
        case "width": return .int64(rows.map { $0 % 7 == 3 ? nil : Int64($0) * 1_000_000_007 - 5 })
        case "height": return .int32(rows.map { $0 % 4 == 2 ? nil : Int32($0) - 12 })
        case "itm": return .double(rows.map { $0 % 3 == 0 ? nil : Double($0) / 8 })
        case "scale": return .float(rows.map { $0 % 5 == 0 ? nil : Float($0) * 0.25 })
        case "kept": return .bool(rows.map { $0 % 6 == 5 ? nil : $0 % 2 == 0 })
        case "jpg": return .binary(rows.map { i in i % 9 == 8 ? nil : (0..<(i % 4) * 3).map { UInt8((i + $0) % 256) } })
        case "synthetic_captions":
            return .stringList(rows.map { i in i % 8 == 7 ? nil : (0..<(i % 3)).map { "s\(i)_\($0)" } })
        case "image":
            return .image(rows.map { i in i % 9 == 8 ? nil : ParquetImage(bytes: png, path: i % 2 == 0 ? "\(i).png" : nil) })
        default:
            return .floatList(rows.map { i in i % 8 == 7 ? nil : (0..<(i % 3)).map { Float($0) * 0.5 + Float(i) } })
        }
    }

    static func write(to path: String, options: ParquetWriterOptions = goldenOptions) throws {
        let writer = try ParquetWriter(path: path, columns: schema, options: options)
        for start in stride(from: 0, to: rowCount, by: rowGroupSize) {
            let rows = start..<min(start + rowGroupSize, rowCount)
            try writer.writeRowGroup(schema.map { column($0.name, rows: rows) })
        }
        try writer.close()
    }

    /// The leaf columns the reader sees, and what each should give for a row, as a cell.
    static let leaves = ["key", "caption", "width", "height", "itm", "scale", "kept", "jpg",
                         "synthetic_captions.list.element", "synthetic_scores.list.element", "image.bytes", "image.path"]

    static func expected(_ leaf: String, row: Int) -> ParquetValue {
        let name = String(leaf.split(separator: ".")[0])
        switch column(name, rows: row..<row + 1) {
        case .string(let v): return v[0].map(ParquetValue.string) ?? .null
        case .int64(let v): return v[0].map(ParquetValue.int64) ?? .null
        case .int32(let v): return v[0].map(ParquetValue.int32) ?? .null
        case .double(let v): return v[0].map(ParquetValue.double) ?? .null
        case .float(let v): return v[0].map(ParquetValue.float) ?? .null
        case .bool(let v): return v[0].map(ParquetValue.bool) ?? .null
        case .binary(let v): return v[0].map(ParquetValue.bytes) ?? .null
        case .stringList(let v): return v[0].map { .list($0.map(ParquetValue.string)) } ?? .null
        case .floatList(let v): return v[0].map { .list($0.map(ParquetValue.float)) } ?? .null
        case .image(let v):
            guard let image = v[0] else { return .null }
            return leaf.hasSuffix(".bytes") ? .bytes(image.bytes) : image.path.map(ParquetValue.string) ?? .null
        }
    }
}

final class WriterTests: XCTestCase {
    func testRoundTripThroughTheReaderForEveryCodecAndPageSize() throws {
        let directory = try temporaryDirectory(self)
        for compression in [ParquetCompression.uncompressed, .snappy, .zstd] {
            for (pageBytes, dictionary) in [(1 << 20, false), (16, false), (1 << 20, true), (16, true)] {
                var options = ManifestSample.goldenOptions
                options.compression = compression
                options.pageBytes = pageBytes
                options.dictionary = dictionary
                let path = directory.appendingPathComponent("\(compression)-\(pageBytes)-\(dictionary).parquet").path
                try ManifestSample.write(to: path, options: options)
                let file = try ParquetFile(path: path)
                XCTAssertEqual(file.rowGroups.map(\.rowCount), [10, 10, 5])
                XCTAssertEqual(file.createdBy, "capfilt-parquet version 1")
                XCTAssertEqual(file.schema.column("caption")?.logicalType, .string)
                XCTAssertEqual(file.schema.column("synthetic_captions.list.element")?.maxDefinitionLevel, 3)
                XCTAssertEqual(file.schema.columns.map(\.dottedPath), ManifestSample.leaves)
                XCTAssertEqual(file.keyValueMetadata["huggingface"], ManifestSample.huggingFaceFeatures)
                var row = 0
                for g in file.rowGroups.indices {
                    let columns = try file.readRowGroup(g, columns: ManifestSample.leaves)
                    for r in 0..<file.rowGroups[g].rowCount {
                        for leaf in ManifestSample.leaves {
                            let got = try XCTUnwrap(columns[leaf]).row(r)
                            XCTAssertEqual(got, ManifestSample.expected(leaf, row: row + r),
                                           "\(compression) pageBytes \(pageBytes) dictionary \(dictionary) \(leaf) row \(row + r)")
                        }
                    }
                    row += file.rowGroups[g].rowCount
                }
                XCTAssertEqual(row, ManifestSample.rowCount)
            }
        }
    }

    /// Dictionary encoding applies to text leaves only, falls back to PLAIN past `dictionaryPageBytes`, and makes
    /// repeated values cheap.
    func testDictionaryEncodingOfTextColumns() throws {
        let directory = try temporaryDirectory(self)
        func write(_ name: String, dictionary: Bool, limit: Int = 1 << 20) throws -> (size: Int, file: ParquetFile) {
            var options = ParquetWriterOptions()
            options.compression = .uncompressed
            options.dictionary = dictionary
            options.dictionaryPageBytes = limit
            let path = directory.appendingPathComponent(name).path
            let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("status", .string),
                                                                 ParquetWriterColumn("key", .string),
                                                                 ParquetWriterColumn("n", .int64)], options: options)
            let rows = 2_000
            try writer.writeRowGroup([
                .string((0..<rows).map { $0 % 10 == 3 ? nil : ["success", "failed_to_download", "failed_to_resize"][$0 % 3] }),
                .string((0..<rows).map { String(format: "%09d", $0) }),
                .int64((0..<rows).map { Int64($0 % 3) }),
            ])
            try writer.close()
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            return (size, try ParquetFile(path: path))
        }
        let plain = try write("plain.parquet", dictionary: false)
        let encoded = try write("dictionary.parquet", dictionary: true, limit: 4_096)
        XCTAssertLessThan(encoded.size, plain.size - 20_000, "statuses as 2-bit ids, not 7-18 bytes each")
        for file in [plain.file, encoded.file] {
            let columns = try file.readRowGroup(0, columns: ["status", "key", "n"])
            XCTAssertEqual(columns["status"]?.string(at: 1), "failed_to_download")
            XCTAssertNil(columns["status"]?.string(at: 3))
            XCTAssertEqual(columns["key"]?.string(at: 1999), "000001999")
            XCTAssertEqual(columns["n"]?.integer(at: 5), 2)
        }
        // 2,000 distinct 9-byte keys (26 KB) pass the 4 KB limit, so that chunk alone fell back to PLAIN; the
        // int64 column is never dictionary-encoded.
        let chunks = encoded.file.metadata.rowGroups[0].columns
        XCTAssertEqual(chunks.map { $0.encodings.contains(.rleDictionary) }, [true, false, false])
        XCTAssertNotNil(chunks[0].dictionaryPageOffset)
        XCTAssertNil(chunks[1].dictionaryPageOffset)
        XCTAssertEqual(plain.file.metadata.rowGroups[0].columns.map { $0.encodings.contains(.rleDictionary) }, [false, false, false])
    }

    /// Statistics follow parquet-format's rules where they are subtle: NaN is left out, a zero bound is -0.0 as min
    /// and +0.0 as max, bytes compare unsigned, and long strings or lists get no min/max at all.
    func testStatisticsRules() throws {
        typealias S = ParquetWriter.LeafStatistics
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        XCTAssertEqual(ParquetWriter.statistics(.double([nil, 0.5, -1.5, .nan, 2])),
                       [S(nullCount: 1, range: (le((-1.5).bitPattern), le(2.0.bitPattern)))])
        XCTAssertEqual(ParquetWriter.statistics(.float([0.0, 0.0, 3])),
                       [S(nullCount: 0, range: (le((-Float(0)).bitPattern), le(Float(3).bitPattern)))])
        XCTAssertEqual(ParquetWriter.statistics(.float([-2, -0.0])),
                       [S(nullCount: 0, range: (le(Float(-2).bitPattern), le(Float(0).bitPattern)))])
        XCTAssertEqual(ParquetWriter.statistics(.double([.nan, nil])), [S(nullCount: 1, range: nil)])
        XCTAssertEqual(ParquetWriter.statistics(.string(["b", "é", nil, "a"])),
                       [S(nullCount: 1, range: (Array("a".utf8), Array("é".utf8)))], "0xC3 sorts after 'b'")
        XCTAssertEqual(ParquetWriter.statistics(.string(["a", String(repeating: "x", count: 257)])), [S(nullCount: 0, range: nil)])
        XCTAssertEqual(ParquetWriter.statistics(.int32([5, -7, nil])), [S(nullCount: 1, range: (le(Int32(-7)), le(Int32(5))))])
        XCTAssertEqual(ParquetWriter.statistics(.bool([true, nil])), [S(nullCount: 1, range: ([1], [1]))])
        XCTAssertEqual(ParquetWriter.statistics(.stringList([["a"]])), [nil])
        XCTAssertEqual(ParquetWriter.statistics(.image([nil, ParquetImage(bytes: [1]), ParquetImage(bytes: [], path: "p")])),
                       [S(nullCount: 1), S(nullCount: 2)])
    }

    /// The committed golden files are what the writer writes today; Scripts/check_parquet_writer.py proves pyarrow,
    /// pandas, DuckDB and datasets read them. A change here is a format change: regenerate with CAPFILT_WRITE_GOLDEN=1 and
    /// rerun the script.
    func testWriterMatchesTheCommittedGoldenFilesByteForByte() throws {
        var dictionaryZstd = ManifestSample.goldenOptions
        dictionaryZstd.dictionary = true
        dictionaryZstd.compression = .zstd
        for (name, options) in [("manifest_snappy.parquet", ManifestSample.goldenOptions),
                                ("manifest_dictionary_zstd.parquet", dictionaryZstd)] {
            let golden = Fixture.path("written/\(name)")
            if ProcessInfo.processInfo.environment["CAPFILT_WRITE_GOLDEN"] == "1" {
                try FileManager.default.createDirectory(atPath: Fixture.path("written"), withIntermediateDirectories: true)
                try ManifestSample.write(to: golden, options: options)
            }
            let directory = try temporaryDirectory(self)
            let first = directory.appendingPathComponent("a.parquet").path
            let second = directory.appendingPathComponent("b.parquet").path
            try ManifestSample.write(to: first, options: options)
            try ManifestSample.write(to: second, options: options)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: first))
            XCTAssertEqual(bytes, try Data(contentsOf: URL(fileURLWithPath: second)), "\(name): same rows, same bytes")
            XCTAssertEqual(bytes, try Data(contentsOf: URL(fileURLWithPath: golden)), "\(name): same bytes as the committed file")
        }
    }

    func testBadInputIsRefusedWithTheColumn() throws {
        let directory = try temporaryDirectory(self)
        let path = directory.appendingPathComponent("bad.parquet").path
        func kind(_ body: () throws -> Void) -> String {
            do { try body() } catch let error as ParquetError { return "\(error.kind): \(error.detail)" } catch { return "\(error)" }
            return "no error"
        }
        XCTAssertTrue(kind { _ = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a.b", .string)]) }
            .contains("contains '.'"))
        XCTAssertTrue(kind { _ = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .string), ParquetWriterColumn("a", .int32)]) }
            .contains("appears twice"))
        var gzip = ParquetWriterOptions()
        gzip.compression = .gzip
        XCTAssertTrue(kind { _ = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .string)], options: gzip) }
            .contains("not GZIP"))
        let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .string), ParquetWriterColumn("n", .int64)])
        XCTAssertTrue(kind { try writer.writeRowGroup([.string(["x"])]) }.contains("got 1 columns for a schema of 2"))
        XCTAssertTrue(kind { try writer.writeRowGroup([.string(["x"]), .int32([1])]) }.contains("column 'n' is int64 but got int32"))
        XCTAssertTrue(kind { try writer.writeRowGroup([.string(["x"]), .int64([1, 2])]) }.contains("column 'n' has 2 rows"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing at the final path before close")
        try writer.writeRowGroup([.string(["x", nil]), .int64([nil, 2])])
        try writer.close()
        XCTAssertTrue(kind { try writer.writeRowGroup([.string([]), .int64([])]) }.contains("closed"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
        let column = try XCTUnwrap(ParquetFile(path: path).readRowGroup(0, columns: ["n"])["n"])
        XCTAssertEqual([column.value(at: 0), column.value(at: 1)], [.null, .int64(2)])
    }

    func testCloseReplacesAnOlderFile() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("replaced.parquet").path
        for value in [Int32(1), 2] {
            let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .int32)])
            try writer.writeRowGroup([.int32([value])])
            try writer.close()
        }
        XCTAssertEqual(try ParquetFile(path: path).readRowGroup(0, columns: ["a"])["a"]?.integer(at: 0), 2)
    }

    func testAbandonedWriterLeavesNoFile() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("abandoned.parquet").path
        do {
            let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .int32)])
            try writer.writeRowGroup([.int32([1, 2, 3])])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
    }

    func testEmptyFileAndEmptyRowGroupRead() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("empty.parquet").path
        let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .stringList)])
        try writer.close()
        let file = try ParquetFile(path: path)
        XCTAssertEqual(file.rowCount, 0)
        XCTAssertEqual(file.rowGroups.count, 0)
        XCTAssertEqual(file.schema.columns.map(\.dottedPath), ["a.list.element"])
    }

    /// The level encoder against the decoder on seeded random levels of every shape (runs, noise, short tails).
    func testRLEHybridRoundTrip() throws {
        var rng = SeededGenerator(state: 5)
        for trial in 0..<500 {
            let width = 1 + Int(rng.next() % 3)
            let count = Int(rng.next() % 70)
            var levels: [UInt8] = []
            while levels.count < count {
                let value = UInt8(rng.next() % UInt64(1 << width))
                let run = rng.next() % 2 == 0 ? 1 : Int(rng.next() % 20)
                levels += repeatElement(value, count: min(run, count - levels.count))
            }
            let encoded = encodeRLEHybrid(levels, bitWidth: width)
            var cursor = ByteCursor(encoded)
            let decoded = try decodeRLEHybrid(&cursor, bitWidth: width, count: count, what: "levels")
            XCTAssertEqual(decoded.map { UInt8($0) }, levels, "trial \(trial) width \(width)")
            XCTAssertEqual(cursor.remaining, 0, "trial \(trial): no bytes left over")
        }
        // All-present columns cost a couple of bytes, not a bit per row.
        XCTAssertEqual(encodeRLEHybrid([UInt8](repeating: 1, count: 100_000), bitWidth: 1).count, 4)
    }
}
