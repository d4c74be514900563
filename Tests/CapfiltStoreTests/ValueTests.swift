// Every storage class round-trips exactly (NULL, extreme integers, empty and large text/blob, non-ASCII),
// NaN becomes NULL, and conversions to Swift types are strict with errors that say why.
import Foundation
import XCTest
@testable import CapfiltStore

final class ValueTests: StoreTestCase {
    /// Each value is stored in a column without affinity, read back equal, with the expected SQLite type.
    func testRoundTripEveryStorageClass() throws {
        let largeText = String(repeating: "caption ünïcødé 🐈 ", count: 60_000)   // ~1.3 MB
        let largeBlob = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let cases: [(SQLValue, String)] = [
            (.null, "null"),
            (.integer(0), "integer"), (.integer(-1), "integer"),
            (.integer(Int64.min), "integer"), (.integer(Int64.max), "integer"),
            (.real(3.25), "real"), (.real(-0.1), "real"), (.real(1e-300), "real"),
            (.real(Double.greatestFiniteMagnitude), "real"), (.real(Double.leastNonzeroMagnitude), "real"),
            (.real(Double.infinity), "real"), (.real(-Double.infinity), "real"),
            (.text(""), "text"), (.text("plain ascii"), "text"),
            (.text("héllo wörld — 日本語のキャプション 🎉👩‍👩‍👧"), "text"), (.text("nul\u{0}inside"), "text"),
            (.text(largeText), "text"),
            (.blob([]), "blob"), (.blob([0, 1, 2, 255, 0]), "blob"), (.blob(largeBlob), "blob"),
        ]
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE v(id INTEGER PRIMARY KEY, value)")   // no type: no affinity conversion
            let insert = try db.prepare("INSERT INTO v(id, value) VALUES (?, ?)")
            for (i, (value, _)) in cases.enumerated() { try insert.run([.integer(Int64(i)), value]) }
            for (i, (value, type)) in cases.enumerated() {
                let row = try db.queryOne("SELECT value, typeof(value) AS type FROM v WHERE id = ?",
                                          [.integer(Int64(i))])
                XCTAssertEqual(row?[0], value, "\(label) case \(i)")
                XCTAssertEqual(row?["type"] as String?, type, "\(label) case \(i)")
            }
            XCTAssertEqual(try db.scalar("SELECT length(value) FROM v WHERE id = 15", as: Int.self), 3,
                           "SQLite's length() stops at NUL, but the stored text is complete")
        }
    }

    /// Decision: SQLite has no NaN, so NaN is stored as NULL. `Double.nan.sqlValue` is `.null`, binding
    /// `.real(.nan)` stores NULL too, and reading back gives `.null` / nil.
    func testNaNIsStoredAsNull() throws {
        XCTAssertEqual(Double.nan.sqlValue, .null)
        XCTAssertEqual(Float.nan.sqlValue, .null)
        XCTAssertEqual(Double.infinity.sqlValue, .real(.infinity))
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE v(x REAL)")
            try db.execute("INSERT INTO v VALUES (?)", [.real(.nan)])
            try db.execute("INSERT INTO v VALUES (?)", [Double.nan.sqlValue])
            XCTAssertEqual(try db.query("SELECT typeof(x) FROM v").map { $0[0] }, [.text("null"), .text("null")])
            XCTAssertNil(try db.scalar("SELECT x FROM v", as: Double.self), label)
            XCTAssertEqual(try db.queryOne("SELECT x FROM v")?.value("x", as: Double?.self), .some(nil), label)
        }
    }

    /// The Swift conformances round-trip through the database.
    func testSwiftTypesRoundTrip() throws {
        let db = try Database.inMemory()
        try db.execute("CREATE TABLE v(i, i64, i32, d, f, s, b, bytes, data, opt)")
        let blob: [UInt8] = [9, 8, 7]
        try db.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            SQLValue(Int.min), SQLValue(Int64.max), SQLValue(Int32.min), SQLValue(0.1), SQLValue(Float(2.5)),
            SQLValue("s"), SQLValue(true), SQLValue(blob), SQLValue(Data([1, 2])), SQLValue(Optional<Int>.none),
        ])
        let row = try XCTUnwrap(db.queryOne("SELECT * FROM v"))
        XCTAssertEqual(try row.value("i", as: Int.self), Int.min)
        XCTAssertEqual(try row.value("i64", as: Int64.self), Int64.max)
        XCTAssertEqual(try row.value("i32", as: Int32.self), Int32.min)
        XCTAssertEqual(try row.value("d", as: Double.self), 0.1)
        XCTAssertEqual(try row.value("f", as: Float.self), 2.5)
        XCTAssertEqual(try row.value("s", as: String.self), "s")
        XCTAssertEqual(try row.value("b", as: Bool.self), true)
        XCTAssertEqual(try row.value("bytes", as: [UInt8].self), blob)
        XCTAssertEqual(try row.value("data", as: Data.self), Data([1, 2]))
        XCTAssertNil(try row.value("opt", as: Int?.self))
        XCTAssertEqual(try row.value("d", as: Double?.self), 0.1)
        XCTAssertEqual(row["s"] as SQLValue?, .text("s"))
    }

    /// Literals build SQLValues: integers, floats, strings, booleans and nil.
    func testLiterals() {
        let values: [SQLValue] = [42, -7, 2.5, "text", true, false, nil]
        XCTAssertEqual(values, [.integer(42), .integer(-7), .real(2.5), .text("text"), .integer(1), .integer(0), .null])
        XCTAssertEqual(SQLValue.null.storageClass, "NULL")
        XCTAssertEqual(SQLValue.blob([1]).description, "<blob 1 bytes>")
    }

    /// Conversions are strict: the lenient subscript gives nil, the typed accessor throws and says why.
    func testStrictConversions() throws {
        let db = try Database.inMemory()
        let row = try XCTUnwrap(db.queryOne("SELECT '12' AS txt, NULL AS empty, 3000000000 AS big, 1.5 AS r"))
        XCTAssertNil(row["txt"] as Int?)
        XCTAssertNil(row["missing"] as String?)
        XCTAssertNil(row["big"] as Int32?)
        XCTAssertNil(row["r"] as Int?, "REAL never silently truncates to an integer")
        XCTAssertEqual(row["big"] as Double?, 3e9, "INTEGER widens to Double")

        let text = assertSQLiteError(try row.value("txt", as: Int.self))
        XCTAssertEqual(text?.isTypeMismatch, true)
        XCTAssertEqual(text?.code, 20)   // SQLITE_MISMATCH
        XCTAssertTrue(text?.message.contains("column \"txt\" holds TEXT '12'") ?? false, "\(String(describing: text))")

        let null = assertSQLiteError(try row.value("empty", as: String.self))
        XCTAssertEqual(null?.isTypeMismatch, true)
        XCTAssertTrue(null?.hint.contains("String?") ?? false, "\(String(describing: null))")
        XCTAssertNil(try row.value("empty", as: String?.self))

        let missing = assertSQLiteError(try row.value("nope", as: Int.self))
        XCTAssertEqual(missing?.code, 25)   // SQLITE_RANGE
        XCTAssertTrue(missing?.message.contains("columns: txt, empty, big, r") ?? false)
        XCTAssertEqual(assertSQLiteError(try row.value(at: 9, as: Int.self))?.code, 25)
        XCTAssertEqual(assertSQLiteError(try row.value("big", as: Int32.self))?.isTypeMismatch, true)
    }

    /// Column names match exactly, then case-insensitively; rows print their columns.
    func testRowLookupAndDescription() throws {
        let db = try Database.inMemory()
        let row = try XCTUnwrap(db.queryOne("SELECT 1 AS Key, 'x' AS key2"))
        XCTAssertEqual(row["Key"] as Int?, 1)
        XCTAssertEqual(row["KEY"] as Int?, 1)
        XCTAssertEqual(row.index(ofColumn: "key2"), 1)
        XCTAssertEqual(row.description, "[Key: 1, key2: 'x']")
    }

    /// scalar: nil for no row and for NULL; a mismatch throws and names the SQL.
    func testScalar() throws {
        let db = try Database.inMemory()
        try db.execute("CREATE TABLE t(x)")
        XCTAssertNil(try db.scalar("SELECT x FROM t", as: Int.self))
        XCTAssertNil(try db.scalar("SELECT NULL", as: Int.self))
        XCTAssertEqual(try db.scalar("SELECT ?", [7], as: Int.self), 7)
        let error = assertSQLiteError(try db.scalar("SELECT 'seven'", as: Int.self))
        XCTAssertEqual(error?.isTypeMismatch, true)
        XCTAssertEqual(error?.sql, "SELECT 'seven'")
    }
}
