// Shared test helpers: fixture paths, what pyarrow read from each fixture (expected.json), comparison of decoded
// cells with it, temp files, and a seeded generator for the hostile-file loops.

import Foundation
import XCTest
@testable import CapfiltParquet

enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/parquet")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(name))) }

    /// expected.json: {"files": {name: {rowGroups, physicalTypes, encodings, codecs, table}}, "tables": {table: {column: [cell]}}}
    static func expectations() throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var h: UInt64 = 0xCBF29CE484222325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001B3 }
    return h
}

func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Floats are stored as {"float": repr} so no JSON parser's rounding gets in the way.
private func floatText(_ expected: Any) -> String? { (expected as? [String: Any])?["float"] as? String }

/// Whether a decoded cell equals pyarrow's JSON value; `nil` when equal, else a description of the difference.
func mismatch(_ value: ParquetValue, _ expected: Any) -> String? {
    func bytesMatch(_ b: [UInt8]) -> Bool {
        guard let object = expected as? [String: Any] else { return false }
        if let h = object["hex"] as? String { return hex(b) == h }
        if let h = object["fnv1a64"] as? String, let n = object["len"] as? Int {
            return String(format: "%016llx", fnv1a64(b)) == h && b.count == n
        }
        return false
    }
    let same: Bool
    switch value {
    case .null: same = expected is NSNull
    case .bool(let v): same = (expected as? Bool) == v
    case .int32(let v): same = (expected as? NSNumber)?.int64Value == Int64(v)
    case .int64(let v): same = (expected as? NSNumber)?.int64Value == v
    case .float(let v): same = floatText(expected).flatMap(Double.init).map { Float($0) == v } ?? false
    case .double(let v): same = floatText(expected).flatMap(Double.init) == v
    case .string(let v): same = (expected as? String) == v
    case .bytes(let b): same = bytesMatch(b)
    case .list(let items):
        guard let array = expected as? [Any], array.count == items.count else { return "\(value) vs \(expected)" }
        for (item, want) in zip(items, array) {
            if let problem = mismatch(item, want) { return problem }
        }
        same = true
    }
    return same ? nil : "\(value) vs \(expected)"
}

/// A fresh temp directory, removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-parquet-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// splitmix64: the hostile loops are seeded so a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// Opens `path` and reads every column of every row group, as an ingest would.
@discardableResult
func readEverything(_ path: String) throws -> Int {
    let file = try ParquetFile(path: path)
    var cells = 0
    for g in file.rowGroups.indices {
        let columns = try file.readRowGroup(g, columns: file.schema.columns.map(\.dottedPath))
        for column in columns.values { cells += column.values.count }
    }
    return cells
}

/// Thrift compact encoding of a decoded tree, so tests can rebuild footers and page headers with hostile values.
func encodeThrift(_ s: ThriftStruct) -> [UInt8] {
    var out: [UInt8] = []
    func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
    func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    func typeCode(_ v: ThriftValue) -> UInt8 {
        switch v {
        case .bool(let b): return b ? 1 : 2
        case .byte: return 3
        case .i16: return 4
        case .i32: return 5
        case .i64: return 6
        case .double: return 7
        case .binary: return 8
        case .list: return 9
        case .map: return 11
        case .structure: return 12
        }
    }
    func body(_ v: ThriftValue, inList: Bool) {
        switch v {
        case .bool(let b): if inList { out.append(b ? 1 : 2) }
        case .byte(let b): out.append(UInt8(bitPattern: b))
        case .i16(let i): zigzag(Int64(i))
        case .i32(let i): zigzag(Int64(i))
        case .i64(let i): zigzag(i)
        case .double(let d): for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64(k)))) }
        case .binary(let b): varint(UInt64(b.count)); out.append(contentsOf: b)
        case .list(let items):
            let element = items.first.map(typeCode) ?? 5
            if items.count < 15 { out.append(UInt8(items.count) << 4 | (element == 2 ? 1 : element)) } else {
                out.append(0xf0 | (element == 2 ? 1 : element)); varint(UInt64(items.count))
            }
            for item in items { body(item, inList: true) }
        case .map: out.append(0)
        case .structure(let s): structure(s)
        }
    }
    func structure(_ s: ThriftStruct) {
        var last: Int16 = 0
        for (id, value) in s.fields.sorted(by: { $0.key < $1.key }) {
            let delta = id - last
            if delta > 0 && delta <= 15 { out.append(UInt8(delta) << 4 | typeCode(value)) } else {
                out.append(typeCode(value)); zigzag(Int64(id))
            }
            last = id
            body(value, inList: false)
        }
        out.append(0)
    }
    structure(s)
    return out
}

func thrift(_ fields: [Int16: ThriftValue]) -> ThriftStruct { ThriftStruct(name: "test", fields: fields) }
func thriftValue(_ fields: [Int16: ThriftValue]) -> ThriftValue { .structure(thrift(fields)) }
func thriftString(_ s: String) -> ThriftValue { .binary(Array(s.utf8)) }

/// A one-column file built by hand: column "x" (INT32 unless `type` says otherwise, optional), one row group, the
/// given pages (header fields and body) in one chunk. Tests change one field at a time to make it hostile.
struct HandBuiltFile {
    var type: Int32 = 1
    var repetition: Int32 = 1
    var rootChildren: Int32 = 1
    var codec: Int32 = 0
    var rows: Int64 = 3
    var chunkValues: Int64 = 3
    var pages: [(header: [Int16: ThriftValue], body: [UInt8])] = []
    /// Overrides for ColumnMetaData fields (e.g. 7: total_compressed_size, 9: data_page_offset).
    var columnOverrides: [Int16: ThriftValue] = [:]

    /// A v1 data page of `values` (nil = null) for an optional INT32 column, PLAIN, uncompressed.
    static func v1Page(_ values: [Int32?], encoding: Int32 = 0) -> (header: [Int16: ThriftValue], body: [UInt8]) {
        // Definition levels as one bit-packed group of 8 (bit width 1), length-prefixed.
        var bits: UInt8 = 0
        for (i, v) in values.enumerated() where v != nil { bits |= 1 << UInt8(i) }
        var body: [UInt8] = [2, 0, 0, 0, 0x03, bits]
        for v in values.compactMap({ $0 }) { withUnsafeBytes(of: v.littleEndian) { body.append(contentsOf: $0) } }
        let header: [Int16: ThriftValue] = [
            1: .i32(0), 2: .i32(Int32(body.count)), 3: .i32(Int32(body.count)),
            5: thriftValue([1: .i32(Int32(values.count)), 2: .i32(encoding), 3: .i32(3), 4: .i32(3)]),
        ]
        return (header, body)
    }

    func bytes() -> [UInt8] {
        var file = Array("PAR1".utf8)
        let chunkStart = file.count
        for page in pages {
            file += encodeThrift(thrift(page.header))
            file += page.body
        }
        let chunkLength = file.count - chunkStart
        var column: [Int16: ThriftValue] = [
            1: .i32(type), 2: .list([.i32(0), .i32(3)]), 3: .list([thriftString("x")]), 4: .i32(codec),
            5: .i64(chunkValues), 6: .i64(Int64(chunkLength)), 7: .i64(Int64(chunkLength)), 9: .i64(Int64(chunkStart)),
        ]
        column.merge(columnOverrides) { $1 }
        let footer = encodeThrift(thrift([
            1: .i32(1),
            2: .list([thriftValue([4: thriftString("schema"), 5: .i32(rootChildren)]),
                      thriftValue([1: .i32(type), 3: .i32(repetition), 4: thriftString("x")])]),
            3: .i64(rows),
            4: .list([thriftValue([1: .list([thriftValue([2: .i64(Int64(chunkStart)), 3: .structure(thrift(column))])]),
                                   2: .i64(Int64(chunkLength)), 3: .i64(rows)])]),
        ]))
        file += footer
        withUnsafeBytes(of: UInt32(footer.count).littleEndian) { file.append(contentsOf: $0) }
        file += Array("PAR1".utf8)
        return file
    }
}
