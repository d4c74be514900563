// Files from the web are damaged or hostile: each kind of damage gives a ParquetError that names what is wrong,
// never a crash and never an allocation sized by a lying field. Loops over truncations and seeded bit flips check
// that no damage anywhere crashes the reader.

import Foundation
import XCTest
@testable import CapfiltParquet

final class HostileFileTests: XCTestCase {
    private var directory: URL?

    private func write(_ bytes: [UInt8], _ name: String = "hostile.parquet") throws -> String {
        if directory == nil { directory = try temporaryDirectory(self) }
        let url = try XCTUnwrap(directory).appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// The error `body` throws, failing the test when it is not a ParquetError.
    private func parquetError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ParquetError? {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let error as ParquetError {
            return error
        } catch {
            XCTFail("not a ParquetError: \(error)", file: file, line: line)
        }
        return nil
    }

    private func expect(_ bytes: [UInt8], _ kind: ParquetError.Kind, _ fragment: String,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes)
        let error = parquetError({ try readEverything(path) }, file: file, line: line)
        XCTAssertEqual(error?.kind, kind, "\(error.map(String.init(describing:)) ?? "")", file: file, line: line)
        XCTAssertTrue(error?.description.contains(fragment) == true, "\(error.map(String.init(describing:)) ?? "") lacks '\(fragment)'",
                      file: file, line: line)
    }

    func testHandBuiltBaselineReads() throws {
        var file = HandBuiltFile()
        file.pages = [HandBuiltFile.v1Page([1, nil, 3])]
        let path = try write(file.bytes())
        let x = try XCTUnwrap(ParquetFile(path: path).readRowGroup(0, columns: ["x"])["x"])
        XCTAssertEqual((0..<3).map(x.value(at:)), [.int32(1), .null, .int32(3)])
    }

    func testNotParquet() throws {
        try expect(Array("key,url,caption\n1,http://x/1.jpg,a cat\n2,http://x/2.jpg,a dog\n".utf8), .notParquet,
                   "starts with 'key,'")
        try expect([], .notParquet, "empty")
        try expect([0x50, 0x41, 0x52], .notParquet, "PAR1")
        var wrongHead = try Fixture.bytes("hf_images.parquet")
        wrongHead[3] = UInt8(ascii: "2")
        try expect(wrongHead, .notParquet, "does not start")
        var wrongTail = try Fixture.bytes("hf_images.parquet")
        wrongTail[wrongTail.count - 1] = 0
        try expect(wrongTail, .truncated, "does not end with 'PAR1'")
        try expect(Array("PAR1PAR1".utf8), .truncated, "at least 12")
    }

    func testFooterLengths() throws {
        var bytes = try Fixture.bytes("img2dataset.parquet")
        let n = bytes.count
        bytes.replaceSubrange((n - 8)..<(n - 4), with: [0xff, 0xff, 0xff, 0x7f])
        try expect(bytes, .badLength, "the footer claims 2147483647 bytes")
        var limits = ParquetReadLimits()
        limits.maxFooterBytes = 100
        let path = try write(try Fixture.bytes("img2dataset.parquet"))
        let error = parquetError { _ = try ParquetFile(path: path, limits: limits) }
        XCTAssertEqual(error?.kind, .badLength)
        XCTAssertTrue(error?.description.contains("maxFooterBytes") == true, "\(String(describing: error))")
    }

    /// A file holding only a footer.
    private func footerOnly(_ footer: [UInt8]) -> [UInt8] {
        var file = Array("PAR1".utf8) + footer
        withUnsafeBytes(of: UInt32(footer.count).littleEndian) { file.append(contentsOf: $0) }
        return file + Array("PAR1".utf8)
    }

    func testAbsurdThrift() throws {
        // version = 1, then schema: a list of structs claiming 2^32 - 1 elements.
        try expect(footerOnly([0x15, 0x02, 0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), .badThrift, "claims 4294967295")
        // A binary (a schema name) claiming 2^31 bytes.
        try expect(footerOnly([0x15, 0x02, 0x19, 0x1c, 0x48, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00, 0x00]), .badThrift,
                   "claims 2147483648 bytes")
        // Structs nested 10,000 deep.
        try expect(footerOnly([0x15, 0x02] + [UInt8](repeating: 0x1c, count: 10_000) + [UInt8](repeating: 0, count: 10_001)),
                   .badThrift, "deeper than 32")
        // A varint that never ends.
        try expect(footerOnly([0x15] + [UInt8](repeating: 0xff, count: 40)), .badThrift, "longer than 10 bytes")
        // An unknown type code, and a missing required field (FileMetaData.schema).
        try expect(footerOnly([0x1d, 0x00]), .badThrift, "unknown Thrift compact type 13")
        try expect(footerOnly([0x15, 0x02, 0x00]), .badThrift, "FileMetaData.schema (field 2) is missing")
        try expect(footerOnly([0x15, 0x02]), .badThrift, "ends inside a value")
    }

    func testHostileMetadataFields() throws {
        var base = HandBuiltFile()
        base.pages = [HandBuiltFile.v1Page([1, nil, 3])]
        var f = base
        f.chunkValues = 1 << 40
        try expect(f.bytes(), .badLength, "num_values is 1099511627776")
        f = base
        f.rows = -1
        try expect(f.bytes(), .badLength, "num_rows is -1")
        f = base
        f.columnOverrides = [9: .i64(1 << 50)]
        try expect(f.bytes(), .badLength, "outside the data region")
        f = base
        f.columnOverrides = [7: .i64(-5)]
        try expect(f.bytes(), .badLength, "outside the data region")
        f = base
        f.columnOverrides = [7: .i64(1 << 33)]
        try expect(f.bytes(), .badLength, "outside the data region")
        f = base
        f.rootChildren = 1_000_000
        try expect(f.bytes(), .corrupt, "more children than it has elements")
        f = base
        f.rootChildren = 0
        try expect(f.bytes(), .corrupt, "1 elements outside the tree")
        f = base
        f.columnOverrides = [3: .list([thriftString("y")])]
        try expect(f.bytes(), .corrupt, "path_in_schema is y")
        f = base
        f.codec = 3
        try expect(f.bytes(), .unsupported, "compression LZO")
        f = base
        f.type = 3
        f.pages = []
        try expect(f.bytes(), .unsupported, "INT96")
        f = base
        f.rows = 4
        try expect(f.bytes(), .corrupt, "holds 3 values but the row group has 4 rows")
    }

    /// Inputs whose cost is not their size: a deep schema chain and a footer of millions of empty structs.
    func testSchemaDepthAndFooterValueCountAreBounded() throws {
        var chain: [ThriftValue] = [thriftValue([4: thriftString("schema"), 5: .i32(1)])]
        for depth in 0..<5_000 { chain.append(thriftValue([3: .i32(1), 4: thriftString("g\(depth)"), 5: .i32(1)])) }
        chain.append(thriftValue([1: .i32(1), 3: .i32(1), 4: thriftString("x")]))
        let deep = encodeThrift(thrift([1: .i32(1), 2: .list(chain), 3: .i64(0), 4: .list([])]))
        try expect(footerOnly(deep), .unsupported, "nests deeper than 64 levels")
        // version, then a list of 3 million empty structs (one byte each).
        var many: [UInt8] = [0x15, 0x02, 0x19, 0xfc, 0xc0, 0x8d, 0xb7, 0x01]
        many += [UInt8](repeating: 0, count: 3_000_000)
        many.append(0)
        try expect(footerOnly(many), .badLength, "maxFooterValues")
    }

    func testHostilePages() throws {
        var base = HandBuiltFile()
        base.pages = [HandBuiltFile.v1Page([1, nil, 3])]
        var f = base
        f.pages[0].header[2] = .i32(.max)
        try expect(f.bytes(), .badLength, "maxPageBytes")
        f = base
        f.pages[0].header[3] = .i32(.max)
        try expect(f.bytes(), .badLength, "runs past the chunk")
        f = base
        f.pages[0].header[3] = .i32(-1)
        try expect(f.bytes(), .badLength, "compressed_page_size is negative")
        f = base
        f.pages[0].header[5] = thriftValue([1: .i32(4), 2: .i32(0), 3: .i32(3), 4: .i32(3)])
        try expect(f.bytes(), .corrupt, "only 3 left")
        f = base
        f.pages[0].header[5] = thriftValue([1: .i32(3), 2: .i32(42), 3: .i32(3), 4: .i32(3)])
        try expect(f.bytes(), .unsupported, "encoding #42 for INT32 values")
        try expect(f.bytes(), .unsupported, "(row group 0, column x): page at byte 4")
        f = base
        f.pages[0].header[5] = thriftValue([1: .i32(3), 2: .i32(8), 3: .i32(3), 4: .i32(3)])
        try expect(f.bytes(), .corrupt, "no dictionary page")
        f = base
        f.pages[0].header[1] = .i32(9)
        try expect(f.bytes(), .badThrift, "unknown page type 9")
        f = base
        f.pages[0].header[5] = nil
        try expect(f.bytes(), .badThrift, "data_page_header is missing")
        f = base
        f.pages[0].body.replaceSubrange(0..<4, with: [0xff, 0xff, 0xff, 0x7f])
        try expect(f.bytes(), .corrupt, "definition levels claim 2147483647 bytes")
        f = base
        // A definition level run of 2^31 values of level 1: only the page's 3 are decoded; values then run out.
        f.pages[0].body = [6, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01]
        f.pages[0].header[2] = .i32(10)
        f.pages[0].header[3] = .i32(10)
        try expect(f.bytes(), .corrupt, "needs 12 bytes but only 0 remain")
        f = base
        // Level 3 where the column's maximum is 1 (bit width 1 holds only 0 and 1, so use an RLE run byte of 3).
        f.pages[0].body = [2, 0, 0, 0, 0x06, 0x03]
        f.pages[0].header[2] = .i32(6)
        f.pages[0].header[3] = .i32(6)
        try expect(f.bytes(), .corrupt, "does not fit 1 bits")
        f = base
        f.pages = [(header: [1: .i32(2), 2: .i32(4), 3: .i32(4), 7: thriftValue([1: .i32(1), 2: .i32(0)])],
                    body: [7, 0, 0, 0]),
                   // Three present values (levels bit-packed 0b111), indices at bit width 1: a run of three 1s.
                   (header: [1: .i32(0), 2: .i32(9), 3: .i32(9),
                             5: thriftValue([1: .i32(3), 2: .i32(8), 3: .i32(3), 4: .i32(3)])],
                    body: [2, 0, 0, 0, 0x03, 0x07, 0x01, 0x06, 0x01])]
        try expect(f.bytes(), .corrupt, "dictionary index 1 is past the dictionary's 1 entries")
        f = base
        f.codec = 1
        try expect(f.bytes(), .decompression, "SNAPPY")
        f = base
        f.codec = 6
        try expect(f.bytes(), .decompression, "ZSTD")
        f = base
        f.codec = 2
        try expect(f.bytes(), .decompression, "GZIP")
    }

    /// Damage in one column chunk spoils only that chunk: other columns and row groups still read, which also shows
    /// the reader touches only the requested chunks.
    func testDamageStaysInItsColumnChunk() throws {
        let path = try write([], "two-columns.parquet")
        var options = ParquetWriterOptions()
        options.compression = .uncompressed
        let writer = try ParquetWriter(path: path, columns: [ParquetWriterColumn("a", .int64), ParquetWriterColumn("b", .string)],
                                       options: options)
        for group in 0..<2 {
            try writer.writeRowGroup([.int64((0..<50).map { Int64($0 + 100 * group) }), .string((0..<50).map { "row \($0)" })])
        }
        try writer.close()
        let damaged = try ParquetFile(path: path).chunkRanges[0][1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in damaged.lowerBound..<damaged.lowerBound + 6 { bytes[Int(i)] = 0xff }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try ParquetFile(path: path)
        XCTAssertEqual(try file.readRowGroup(0, columns: ["a"])["a"]?.value(at: 49), .int64(49))
        XCTAssertEqual(try file.readRowGroup(1, columns: ["a", "b"])["b"]?.value(at: 3), .string("row 3"))
        let error = parquetError { _ = try file.readRowGroup(0, columns: ["a", "b"]) }
        XCTAssertEqual(error?.location, "row group 0, column b")
        XCTAssertEqual(error?.kind, .badThrift, "\(String(describing: error))")
    }

    func testTruncatedAtManyOffsets() throws {
        var tried = 0
        for name in ["basic_snappy_dict_v2.parquet", "hf_images.parquet", "delta_v1.parquet"] {
            let bytes = try Fixture.bytes(name)
            let offsets = Array(stride(from: 0, to: bytes.count, by: 11)) + Array(max(0, bytes.count - 300)..<bytes.count)
            for cut in Set(offsets) {
                let path = try write(Array(bytes[0..<cut]), "cut.parquet")
                let error = parquetError { try readEverything(path) }
                XCTAssertTrue(error?.kind == .truncated || error?.kind == .notParquet, "\(name) cut at \(cut): \(String(describing: error))")
                tried += 1
            }
        }
        print("truncated 3 fixtures at \(tried) offsets: every one refused")
    }

    /// Bit flips in the footer and anywhere in the file: reading either succeeds (a flip in a value) or throws a
    /// ParquetError; nothing else, and no crash.
    func testSeededBitFlipsNeverCrash() throws {
        var rng = SeededGenerator(state: 2026)
        var outcomes: [String: Int] = [:]
        for name in ["basic_zstd_dict_v1.parquet", "basic_none_plain_v2.parquet", "hf_images.parquet", "delta_v2.parquet",
                     "typed.parquet", "written/manifest_snappy.parquet"] {
            let original = try Fixture.bytes(name)
            let footerLength = Int(original[original.count - 8]) | Int(original[original.count - 7]) << 8
            let footerStart = original.count - 8 - footerLength
            for trial in 0..<200 {
                var bytes = original
                let flips = 1 + Int(rng.next() % 3)
                for _ in 0..<flips {
                    // Half the trials hit the footer, half anywhere in the data.
                    let position = trial % 2 == 0
                        ? footerStart + Int(rng.next() % UInt64(footerLength))
                        : 4 + Int(rng.next() % UInt64(footerStart - 4))
                    bytes[position] ^= UInt8(1) << UInt8(rng.next() % 8)
                }
                let path = try write(bytes, "flip.parquet")
                do {
                    try readEverything(path)
                    outcomes["read", default: 0] += 1
                } catch let error as ParquetError {
                    outcomes["\(error.kind)", default: 0] += 1
                } catch {
                    XCTFail("\(name) trial \(trial): not a ParquetError: \(error)")
                }
            }
        }
        print("seeded bit flips: \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertGreaterThan(outcomes.filter { $0.key != "read" }.values.reduce(0, +), 250, "most footer flips are caught")
    }

    /// Random bytes after a valid magic: the reader refuses them without crashing.
    func testRandomBytesNeverCrash() throws {
        var rng = SeededGenerator(state: 12)
        for trial in 0..<300 {
            let length = 12 + Int(rng.next() % 600)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes.replaceSubrange(0..<4, with: Array("PAR1".utf8))
            bytes.replaceSubrange((length - 4)..<length, with: Array("PAR1".utf8))
            let footer = Int(rng.next() % UInt64(length - 11))
            withUnsafeBytes(of: UInt32(footer).littleEndian) { bytes.replaceSubrange((length - 8)..<(length - 4), with: $0) }
            let path = try write(bytes, "random.parquet")
            XCTAssertNotNil(parquetError { try readEverything(path) }, "trial \(trial)")
        }
    }
}

/// Failed opens must not leak file descriptors: an ingest refuses thousands of bad files in one process.
final class DescriptorLeakTests: XCTestCase {
    func testRefusedFilesCloseTheirDescriptors() throws {
        let directory = try temporaryDirectory(self)
        let path = directory.appendingPathComponent("bad.parquet").path
        try Data("PAR1 this is not a footer PAR1".utf8).write(to: URL(fileURLWithPath: path))
        func openDescriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0 }
        let before = openDescriptors()
        for _ in 0..<2000 { XCTAssertThrowsError(try ParquetFile(path: path)) }
        for _ in 0..<200 { _ = try ParquetFile(path: Fixture.path("hf_images.parquet")) }
        XCTAssertLessThanOrEqual(openDescriptors(), before + 2, "descriptors leak")
        XCTAssertThrowsError(try ParquetFile(path: directory.path)) { error in
            XCTAssertEqual((error as? ParquetError)?.kind, .io, "a directory: \(error)")
        }
    }

    /// One ParquetFile read from several threads at once gives the same columns as one thread.
    func testConcurrentReadsOfOneFile() throws {
        let file = try ParquetFile(path: Fixture.path("basic_zstd_dict_v2.parquet"))
        let names = file.schema.columns.map(\.dottedPath)
        let reference = try (0..<file.rowGroups.count).map { try file.readRowGroup($0, columns: names) }
        let results = ConcurrentResults(count: 24)
        DispatchQueue.concurrentPerform(iterations: 24) { i in
            let g = i % file.rowGroups.count
            let got = try? file.readRowGroup(g, columns: names)
            results.set(i, got.map { columns in names.allSatisfy { columns[$0]?.values == reference[g][$0]?.values } } ?? false)
        }
        XCTAssertEqual(results.values, [Bool](repeating: true, count: 24))
    }
}

/// A lock-protected result array for the concurrency test.
final class ConcurrentResults: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Bool]
    init(count: Int) { storage = [Bool](repeating: false, count: count) }
    func set(_ i: Int, _ value: Bool) { lock.lock(); storage[i] = value; lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return storage }
}
