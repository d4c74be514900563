// Errors carry the SQL, SQLite's codes and message, and a hint: syntax errors, constraint violations,
// argument-count mistakes, and long SQL abbreviated in the description.
import XCTest
@testable import CapfiltStore

final class ErrorTests: StoreTestCase {
    /// A syntax error names the SQL (in `sql` and in the description) and SQLite's message.
    func testSyntaxErrorNamesSQL() throws {
        try onMemoryAndFile { db, label in
            let error = assertSQLiteError(try db.query("SELEC id FROM samples"))
            XCTAssertEqual(error?.code, 1, label)   // SQLITE_ERROR
            XCTAssertEqual(error?.sql, "SELEC id FROM samples", label)
            XCTAssertTrue(error?.message.contains("syntax error") ?? false, label)
            XCTAssertTrue(error?.description.contains("`SELEC id FROM samples`") ?? false, label)
            XCTAssertTrue(error?.description.contains("Check the SQL text") ?? false, label)
        }
    }

    /// In a script, the error names the failing statement, not the first one; earlier statements ran.
    func testScriptErrorNamesFailingStatement() throws {
        let db = try Database.inMemory()
        let error = assertSQLiteError(try db.execute("CREATE TABLE a(x);\n  INSERT INTO nope VALUES (1);"))
        XCTAssertEqual(error?.sql, "INSERT INTO nope VALUES (1);")
        XCTAssertTrue(error?.message.contains("no such table: nope") ?? false)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM a", as: Int.self), 0)
    }

    /// Constraint violations carry the extended code and SQLite's message.
    func testConstraintViolationHasExtendedCode() throws {
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, caption TEXT NOT NULL)")
            try db.execute("INSERT INTO t VALUES (?, ?)", ["k", "c"])
            let unique = assertSQLiteError(try db.execute("INSERT INTO t VALUES (?, ?)", ["k", "d"]))
            XCTAssertEqual(unique?.code, 19, label)             // SQLITE_CONSTRAINT
            XCTAssertEqual(unique?.extendedCode, 1555, label)   // SQLITE_CONSTRAINT_PRIMARYKEY
            XCTAssertEqual(unique?.message, "UNIQUE constraint failed: t.key", label)
            XCTAssertEqual(unique?.isUniqueViolation, true, label)
            XCTAssertTrue(unique?.description.contains("INSERT OR IGNORE") ?? false, label)

            let notNull = assertSQLiteError(try db.execute("INSERT INTO t VALUES (?, ?)", ["k2", nil]))
            XCTAssertEqual(notNull?.extendedCode, 1299, label)  // SQLITE_CONSTRAINT_NOTNULL
            XCTAssertEqual(notNull?.message, "NOT NULL constraint failed: t.caption", label)
            XCTAssertEqual(notNull?.isConstraintViolation, true, label)
            XCTAssertEqual(notNull?.isUniqueViolation, false, label)
        }
    }

    /// Too many or too few arguments is an error that counts both, before anything runs.
    func testWrongArgumentCount() throws {
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE t(a, b)")
            let few = assertSQLiteError(try db.execute("INSERT INTO t VALUES (?, ?)", [1]))
            XCTAssertEqual(few?.code, 25, label)   // SQLITE_RANGE
            XCTAssertEqual(few?.message, "wrong number of arguments: the statement has 2 parameters, 1 given")
            XCTAssertEqual(few?.sql, "INSERT INTO t VALUES (?, ?)", label)
            let many = assertSQLiteError(try db.query("SELECT * FROM t WHERE a = ?", [1, 2]))
            XCTAssertEqual(many?.message, "wrong number of arguments: the statement has 1 parameter, 2 given")
            // No arguments for a statement with placeholders is caught too, even in a script.
            XCTAssertEqual(assertSQLiteError(try db.execute("DELETE FROM t WHERE a = ?"))?.code, 25, label)
            let statement = try db.prepare("SELECT ?")
            XCTAssertEqual(assertSQLiteError(try statement.bind([]))?.code, 25, label)
            XCTAssertEqual(try db.scalar("SELECT count(*) FROM t", as: Int.self), 0, label)
        }
    }

    /// The description quotes at most the first 200 characters of the SQL, on one line.
    func testLongSQLIsAbbreviated() throws {
        let db = try Database.inMemory()
        let columns = (0..<100).map { "column_\($0)" }.joined(separator: ",\n")
        let sql = "SELECT \(columns) FROM missing_table"
        let error = try XCTUnwrap(assertSQLiteError(try db.query(sql)))
        XCTAssertEqual(error.sql, sql)
        XCTAssertTrue(error.message.contains("no such table: missing_table"))
        let quoted = try XCTUnwrap(error.description.split(separator: "`").dropFirst().first)
        XCTAssertEqual(quoted.count, 201)   // 200 characters and an ellipsis
        XCTAssertTrue(quoted.hasPrefix("SELECT column_0, column_1"))
        XCTAssertFalse(error.description.contains("\n"))
    }

    /// prepare and query take one statement, and an empty string is not one.
    func testPrepareNeedsExactlyOneStatement() throws {
        let db = try Database.inMemory()
        XCTAssertEqual(assertSQLiteError(try db.prepare("SELECT 1; SELECT 2"))?.isMisuse, true)
        XCTAssertEqual(assertSQLiteError(try db.prepare("  -- nothing"))?.isMisuse, true)
        try db.execute("")   // an empty script does nothing
    }
}
