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
