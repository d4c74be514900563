// Opening and configuration (WAL, synchronous, foreign keys, busy timeout), running SQL, statements, and
// closing cleanly, on `:memory:` and on a temporary file.
import Foundation
import XCTest
@testable import CapfiltStore

final class DatabaseTests: StoreTestCase {
    /// A file database is in WAL mode with synchronous=FULL, foreign keys on and the 5 s default busy timeout.
    func testFileDatabaseConfiguration() throws {
        let db = try Database(path: path("run.sqlite"))
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode", as: String.self), "wal")
        XCTAssertEqual(try db.scalar("PRAGMA synchronous", as: Int.self), 2)   // 2 = FULL
        XCTAssertEqual(try db.scalar("PRAGMA foreign_keys", as: Int.self), 1)
        XCTAssertEqual(try db.scalar("PRAGMA busy_timeout", as: Int.self), 5000)
        XCTAssertEqual(db.durability, .full)
    }

    /// `.normal` durability and a custom busy timeout are applied.
    func testNormalDurabilityAndTimeout() throws {
        let db = try Database(path: path("run.sqlite"), durability: .normal, busyTimeout: 0.25)
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode", as: String.self), "wal")
        XCTAssertEqual(try db.scalar("PRAGMA synchronous", as: Int.self), 1)   // 1 = NORMAL
        XCTAssertEqual(try db.scalar("PRAGMA busy_timeout", as: Int.self), 250)
    }

    /// In memory there is no WAL (the journal stays in memory), but the other settings hold.
    func testInMemoryConfiguration() throws {
        let db = try Database.inMemory()
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode", as: String.self), "memory")
        XCTAssertEqual(try db.scalar("PRAGMA synchronous", as: Int.self), 2)
        XCTAssertEqual(try db.scalar("PRAGMA foreign_keys", as: Int.self), 1)
    }

    /// A filesystem without shared-memory locking cannot do WAL: opening fails with a clear error rather than
    /// silently running in rollback-journal mode. The "unix-dotfile" VFS stands in for such a filesystem.
    func testWALRefusedIsAClearError() throws {
        let error = assertSQLiteError(
            try Database(path: path("nowal.sqlite"), durability: .full, busyTimeout: 1, vfs: "unix-dotfile"))
        XCTAssertEqual(error?.code, 14)   // SQLITE_CANTOPEN
        XCTAssertTrue(error?.message.contains("journal_mode=WAL was refused") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("\"delete\"") ?? false)
        XCTAssertTrue(error?.description.contains("local disk") ?? false)
    }

    /// A database in a missing directory fails to open with SQLITE_CANTOPEN, naming the path.
    func testOpenInMissingDirectoryFails() {
        let missing = path("no/such/dir/run.sqlite")
        let error = assertSQLiteError(try Database(path: missing))
        XCTAssertEqual(error?.code, 14)
        XCTAssertTrue(error?.description.contains(missing) ?? false)
        XCTAssertTrue(error?.description.contains("directory exists") ?? false)
    }

    /// A script of several statements (with comments) runs in order; query, queryOne, scalar, changes and
    /// lastInsertRowID report what it did.
    func testScriptQueryAndCounters() throws {
        try onMemoryAndFile { db, label in
            try db.execute("""
                -- a leading comment
                CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL);
                INSERT INTO items(name, score) VALUES ('a', 0.5);   /* trailing */
                INSERT INTO items(name, score) VALUES ('b', NULL);
                """)
            XCTAssertEqual(db.lastInsertRowID, 2, label)
            try db.execute("INSERT INTO items(name, score) VALUES (?, ?)", ["c", 1.5])
            XCTAssertEqual(db.lastInsertRowID, 3, label)
            try db.execute("UPDATE items SET score = coalesce(score, 0) + 1")
            XCTAssertEqual(db.changes, 3, label)

            let rows = try db.query("SELECT id, name, score FROM items WHERE id >= ? ORDER BY id", [2])
            XCTAssertEqual(rows.count, 2, label)
            XCTAssertEqual(rows[0].columnNames, ["id", "name", "score"], label)
            XCTAssertEqual(rows[0].values, [.integer(2), .text("b"), .real(1)], label)
            XCTAssertEqual(rows[1]["name"] as String?, "c", label)

            XCTAssertEqual(try db.queryOne("SELECT name FROM items ORDER BY id DESC")?["name"] as String?, "c")
            XCTAssertNil(try db.queryOne("SELECT name FROM items WHERE id = ?", [99]), label)
            XCTAssertEqual(try db.scalar("SELECT count(*) FROM items", as: Int.self), 3, label)
            XCTAssertEqual(try db.scalar("SELECT sum(score) FROM items", as: Double.self), 5, label)
        }
    }

    /// With arguments, execute takes one statement: a script with arguments is rejected before anything runs.
    func testExecuteWithArgumentsTakesOneStatement() throws {
        let db = try Database.inMemory()
        try db.execute("CREATE TABLE t(x)")
        let error = assertSQLiteError(try db.execute("INSERT INTO t VALUES (?); INSERT INTO t VALUES (2)", [1]))
        XCTAssertEqual(error?.isMisuse, true)
        XCTAssertTrue(error?.message.contains("one SQL statement") ?? false)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t", as: Int.self), 0)
        // A trailing semicolon or comment is not a second statement.
        try db.execute("INSERT INTO t VALUES (?); -- done", [1])
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t", as: Int.self), 1)
    }

    /// foreign_keys=ON is in force: a dangling reference is refused with the FOREIGN KEY extended code.
    func testForeignKeysEnforced() throws {
        try onMemoryAndFile { db, label in
            try db.execute("""
                CREATE TABLE shards(id INTEGER PRIMARY KEY);
                CREATE TABLE samples(key TEXT PRIMARY KEY, shard INTEGER NOT NULL REFERENCES shards(id));
                """)
            let error = assertSQLiteError(try db.execute("INSERT INTO samples VALUES (?, ?)", ["k", 7]))
            XCTAssertEqual(error?.extendedCode, 787, label)   // SQLITE_CONSTRAINT_FOREIGNKEY
            XCTAssertEqual(error?.isForeignKeyViolation, true, label)
        }
    }

    /// A prepared statement binds and runs many times, steps row by row, and refuses to step unbound.
    func testPreparedStatementLifecycle() throws {
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE t(n INTEGER, sq INTEGER)")
            let insert = try db.prepare("INSERT INTO t VALUES (?, ?)")
            XCTAssertEqual(insert.parameterCount, 2)
            XCTAssertThrowsError(try insert.step(), label) { XCTAssertEqual(($0 as? SQLiteError)?.isMisuse, true) }
            for n in 1...10 { try insert.run([.integer(Int64(n)), .integer(Int64(n * n))]) }

            let select = try db.prepare("SELECT n, sq FROM t WHERE n > ? ORDER BY n")
            try select.bind([7])
            var seen: [Int] = []
            while let row = try select.step() { seen.append(try row.value("sq", as: Int.self)) }
            XCTAssertEqual(seen, [64, 81, 100], label)
            // After the end, the same bindings run again from the start.
            XCTAssertEqual(try select.step()?["n"] as Int?, 8, label)
            select.reset()
            XCTAssertEqual(try select.rows([9]).count, 1, label)
            XCTAssertEqual(try select.firstRow([0])?["n"] as Int?, 1, label)
        }
    }

    /// close() finalizes cached statements, so it succeeds after queries; afterwards calls throw misuse.
    func testCloseFinalizesCachedStatements() throws {
        try onMemoryAndFile { db, label in
            try db.execute("CREATE TABLE t(x)")
            for i in 0..<5 { try db.execute("INSERT INTO t VALUES (?)", [.integer(Int64(i))]) }
            _ = try db.query("SELECT * FROM t WHERE x > ?", [1])
            _ = try db.queryOne("SELECT x FROM t")
            do {
                let statement = try db.prepare("SELECT count(*) FROM t")
                _ = try statement.step()   // left mid-query on purpose
            }
            try db.close()
            try db.close()   // idempotent
            let error = assertSQLiteError(try db.query("SELECT 1"))
            XCTAssertEqual(error?.isMisuse, true, label)
            XCTAssertTrue(error?.message.contains("closed") ?? false, label)
        }
    }

    /// While a Statement from prepare is alive, close() refuses (and the database stays usable); once it is
    /// released, close() succeeds.
    func testCloseWithLiveStatementRefuses() throws {
        let db = try Database(path: path("live.sqlite"))
        var statement: Statement? = try db.prepare("SELECT 1")
        let error = assertSQLiteError(try db.close())
        XCTAssertEqual(error?.code, 5)   // SQLITE_BUSY: "unable to close due to unfinalized statements"
        XCTAssertTrue(error?.hint.contains("Release every Statement") ?? false)
        XCTAssertEqual(try statement?.step()?[0], .integer(1))
        statement = nil
        try db.close()
    }

    /// Releasing a Database closes it cleanly: as the last connection, SQLite checkpoints and deletes the WAL,
    /// which it would not do if closing failed on unfinalized statements.
    func testDeinitClosesCleanly() throws {
        let file = path("deinit.sqlite")
        do {
            let db = try Database(path: file)
            try db.execute("CREATE TABLE t(x)")
            try db.write { db in for i in 0..<100 { try db.execute("INSERT INTO t VALUES (?)", [.integer(Int64(i))]) } }
            _ = try db.query("SELECT x FROM t WHERE x < ?", [10])
            let statement = try db.prepare("SELECT x FROM t")
            _ = try statement.step()
            XCTAssertNotNil(fileSize(file + "-wal"))
        }
        XCTAssertNil(fileSize(file + "-wal"), "the WAL should be removed by a clean close")
        XCTAssertEqual(try Database(path: file).scalar("SELECT count(*) FROM t", as: Int.self), 100)
    }

    /// A Statement keeps its connection open after the Database is released.
    func testStatementOutlivesDatabase() throws {
        var db: Database? = try Database(path: path("outlive.sqlite"))
        try db?.execute("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
        let statement = try db?.prepare("SELECT x FROM t")
        db = nil
        XCTAssertEqual(try statement?.firstRow()?["x"] as Int?, 42)
    }

    /// checkpoint() moves the WAL into the database and truncates it to zero bytes.
    func testCheckpointTruncatesWAL() throws {
        let file = path("ckpt.sqlite")
        let db = try Database(path: file)
        try db.execute("CREATE TABLE t(x)")
        try db.write { db in for i in 0..<1000 { try db.execute("INSERT INTO t VALUES (?)", [.integer(Int64(i))]) } }
        XCTAssertGreaterThan(fileSize(file + "-wal") ?? 0, 0)
        try db.checkpoint()
        XCTAssertEqual(fileSize(file + "-wal"), 0)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t", as: Int.self), 1000)
        try Database.inMemory().checkpoint()   // no WAL: a no-op, not an error
    }
}
