// write(_:): commit on return, rollback on throw, no nesting, and BEGIN IMMEDIATE's up-front write lock
// as seen from a second connection.
import Foundation
import XCTest
@testable import CapfiltStore

final class TransactionTests: StoreTestCase {
    private func makeTable(_ db: Database) throws {
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    }

    private func count(_ db: Database) throws -> Int? {
        try db.scalar("SELECT count(*) FROM t", as: Int.self)
    }

    /// A returning body commits, and write returns its value.
    func testWriteCommitsAndReturns() throws {
        try onMemoryAndFile { db, label in
            try makeTable(db)
            let id = try db.write { db -> Int64 in
                try db.execute("INSERT INTO t(name) VALUES (?)", ["a"])
                XCTAssertTrue(db.isInTransaction)
                return db.lastInsertRowID
            }
            XCTAssertEqual(id, 1, label)
            XCTAssertFalse(db.isInTransaction, label)
            XCTAssertEqual(try count(db), 1, label)
        }
    }

    /// A throwing body rolls back everything it did, and write rethrows the body's own error.
    func testWriteRollsBackOnThrow() throws {
        try onMemoryAndFile { db, label in
            try makeTable(db)
            XCTAssertThrowsError(try db.write { db in
                try db.execute("INSERT INTO t(name) VALUES (?)", ["a"])
                try db.execute("INSERT INTO t(name) VALUES (?)", ["b"])
                throw TestAbort(reason: "changed my mind")
            }, label) { XCTAssertEqual($0 as? TestAbort, TestAbort(reason: "changed my mind")) }
            XCTAssertEqual(try count(db), 0, label)
            XCTAssertFalse(db.isInTransaction, label)
            // The connection is usable again.
            try db.write { db in try db.execute("INSERT INTO t(name) VALUES (?)", ["c"]) }
            XCTAssertEqual(try count(db), 1, label)
        }
    }

    /// An SQL error midway (a UNIQUE violation) rolls back the rows inserted before it, too.
    func testSQLErrorRollsBackEarlierChanges() throws {
        try onMemoryAndFile { db, label in
            try makeTable(db)
            let error = assertSQLiteError(try db.write { db in
                try db.execute("INSERT INTO t(name) VALUES (?)", ["x"])
                try db.execute("INSERT INTO t(name) VALUES (?)", ["x"])
            })
            XCTAssertEqual(error?.isUniqueViolation, true, label)
            XCTAssertEqual(try count(db), 0, label)
        }
    }

    /// Nested write is refused (misuse); the outer transaction is unharmed and can still commit if it catches.
    func testNestedWriteIsMisuse() throws {
        try onMemoryAndFile { db, label in
            try makeTable(db)
            try db.write { db in
                try db.execute("INSERT INTO t(name) VALUES (?)", ["outer"])
                let error = assertSQLiteError(try db.write { db in
                    try db.execute("INSERT INTO t(name) VALUES (?)", ["inner"])
                })
                XCTAssertEqual(error?.isMisuse, true, label)
                XCTAssertTrue(error?.message.contains("already open") ?? false, label)
            }
            XCTAssertEqual(try db.query("SELECT name FROM t").map { $0["name"] as String? }, ["outer"], label)
            // Uncaught, the nested error rolls the outer transaction back.
            XCTAssertThrowsError(try db.write { db in
                try db.execute("INSERT INTO t(name) VALUES (?)", ["outer2"])
                try db.write { _ in }
            })
            XCTAssertEqual(try count(db), 1, label)
        }
    }

    /// A transaction opened by hand also blocks write, instead of write committing someone else's work.
    func testWriteInsideManualTransactionIsMisuse() throws {
        let db = try Database.inMemory()
        try makeTable(db)
        try db.execute("BEGIN")
        XCTAssertEqual(assertSQLiteError(try db.write { _ in })?.isMisuse, true)
        try db.execute("ROLLBACK")
        try db.write { _ in }
    }

    /// BEGIN IMMEDIATE takes the write lock before the body does anything: while connection A is inside
    /// write (not having written yet), connection B's write waits busyTimeout and fails with a clear
    /// "locked" error. After A commits, B writes and sees A's row.
    func testSecondConnectionWaitsThenFailsBusy() throws {
        let file = path("shared.sqlite")
        let a = try Database(path: file)
        try makeTable(a)
        let timeout = 0.3
        let b = try Database(path: file, busyTimeout: timeout)

        try a.write { a in
            let start = Date()
            let error = assertSQLiteError(try b.write { b in try b.execute("INSERT INTO t(name) VALUES ('b')") })
            let waited = Date().timeIntervalSince(start)
            XCTAssertEqual(error?.isBusy, true)
            XCTAssertEqual(error?.code, 5)   // SQLITE_BUSY
            XCTAssertTrue(error?.message.contains("locked") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.description.contains("another capfilt process") ?? false)
            XCTAssertTrue(error?.description.contains("BEGIN IMMEDIATE") ?? false)
            XCTAssertGreaterThanOrEqual(waited, timeout * 0.8, "B should wait for the busy timeout")
            XCTAssertFalse(b.isInTransaction)
            try a.execute("INSERT INTO t(name) VALUES ('a')")
        }
        try b.write { b in try b.execute("INSERT INTO t(name) VALUES ('b')") }
        XCTAssertEqual(try a.query("SELECT name FROM t ORDER BY id").map { $0["name"] as String? }, ["a", "b"])
    }

    /// Readers are not blocked by a writer in WAL mode: B reads the last committed state during A's write.
    func testReaderSeesCommittedStateDuringWrite() throws {
        let file = path("wal-read.sqlite")
        let a = try Database(path: file)
        try makeTable(a)
        try a.execute("INSERT INTO t(name) VALUES ('committed')")
        let b = try Database(path: file, busyTimeout: 0.1)
        try a.write { a in
            try a.execute("INSERT INTO t(name) VALUES ('pending')")
            XCTAssertEqual(try b.query("SELECT name FROM t").map { $0["name"] as String? }, ["committed"])
        }
        XCTAssertEqual(try count(b), 2)
    }
}
