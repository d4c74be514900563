// Migrations: run once and in order, re-running is a no-op, a failure rolls back and names the migration,
// appended migrations apply alone, and a history that disagrees with the code is refused.
import XCTest
@testable import CapfiltStore

final class MigrationTests: StoreTestCase {
    private let base = [
        Migration("0001_samples", "CREATE TABLE samples(key TEXT PRIMARY KEY, status TEXT NOT NULL);"),
        // Depends on 0001, and leaves a row behind so running it twice would show.
        Migration("0002_captions", """
            ALTER TABLE samples ADD COLUMN caption TEXT;
            CREATE TABLE events(note TEXT NOT NULL);
            INSERT INTO events VALUES ('0002 ran');
            """),
    ]

    private func events(_ db: Database) throws -> [String?] {
        try db.query("SELECT note FROM events ORDER BY rowid").map { $0["note"] as String? }
    }

    /// Migrations run in order, once; running the same list again changes nothing.
    func testRunOnceInOrderAndRerunIsNoOp() throws {
        try onMemoryAndFile { db, label in
            XCTAssertEqual(try db.appliedMigrations(), [], label)
            try db.migrate(base)
            XCTAssertEqual(try db.appliedMigrations(), ["0001_samples", "0002_captions"], label)
            try db.migrate(base)
            try db.migrate(base)
            XCTAssertEqual(try events(db), ["0002 ran"], label)
            XCTAssertEqual(try db.appliedMigrations(), ["0001_samples", "0002_captions"], label)
            try db.execute("INSERT INTO samples(key, status, caption) VALUES ('k', 'new', 'a cat')")
        }
    }

    /// Adding a migration later applies only the new one, also after closing and reopening the file.
    func testAppendedMigrationAppliesAlone() throws {
        let file = path("migrate.sqlite")
        try Database(path: file).migrate(base)
        let db = try Database(path: file)
        try db.migrate(base + [Migration("0003_more", "INSERT INTO events VALUES ('0003 ran')")])
        XCTAssertEqual(try events(db), ["0002 ran", "0003 ran"])
        XCTAssertEqual(try db.appliedMigrations(), ["0001_samples", "0002_captions", "0003_more"])
    }

    /// A failing migration rolls back all of its statements, is not recorded, and names itself in the error;
    /// earlier migrations stay applied, later ones do not run. Once fixed, it applies.
    func testFailingMigrationRollsBackAndNamesItself() throws {
        try onMemoryAndFile { db, label in
            let broken = Migration("0003_broken", """
                CREATE TABLE halfway(x);
                INSERT INTO no_such_table VALUES (1);
                """)
            let after = Migration("0004_after", "CREATE TABLE after(x)")
            let error = assertSQLiteError(try db.migrate(base + [broken, after]))
            XCTAssertTrue(error?.message.hasPrefix("migration \"0003_broken\" failed: no such table") ?? false,
                          "\(String(describing: error))")
            XCTAssertEqual(error?.sql, "INSERT INTO no_such_table VALUES (1);", label)
            XCTAssertTrue(error?.description.contains("rolled back") ?? false, label)
            XCTAssertEqual(try db.appliedMigrations(), ["0001_samples", "0002_captions"], label)
            XCTAssertEqual(try db.scalar("SELECT count(*) FROM sqlite_master WHERE name IN ('halfway', 'after')",
                                         as: Int.self), 0, label)
            XCTAssertFalse(db.isInTransaction, label)

            let fixed = Migration("0003_broken", "CREATE TABLE halfway(x);")
            try db.migrate(base + [fixed, after])
            XCTAssertEqual(try db.appliedMigrations().suffix(2), ["0003_broken", "0004_after"], label)
        }
    }

    /// A history that disagrees with the code (renamed, reordered, or unknown migrations) is refused, and
    /// nothing runs.
    func testHistoryMismatchIsRefused() throws {
        let db = try Database.inMemory()
        try db.migrate(base)
        let renamed = assertSQLiteError(try db.migrate([base[0], Migration("0002_renamed", "SELECT 1")]))
        XCTAssertEqual(renamed?.code, 17)   // SQLITE_SCHEMA
        XCTAssertTrue(renamed?.message.contains("\"0002_captions\"") ?? false)
        XCTAssertTrue(renamed?.message.contains("\"0002_renamed\"") ?? false)
        XCTAssertTrue(renamed?.hint.contains("append") ?? false)

        let newer = assertSQLiteError(try db.migrate([base[0]]))
        XCTAssertTrue(newer?.hint.contains("newer capfilt") ?? false, "\(String(describing: newer))")
        XCTAssertEqual(try db.appliedMigrations(), ["0001_samples", "0002_captions"])
    }

    /// Duplicate or empty names are refused before anything runs.
    func testInvalidNamesAreRefused() throws {
        let db = try Database.inMemory()
        XCTAssertEqual(assertSQLiteError(try db.migrate([base[0], base[0]]))?.isMisuse, true)
        XCTAssertEqual(assertSQLiteError(try db.migrate([Migration("", "SELECT 1")]))?.isMisuse, true)
        XCTAssertEqual(try db.appliedMigrations(), [])
    }
}
