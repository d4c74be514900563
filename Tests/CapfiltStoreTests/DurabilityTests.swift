// Crash safety: a child process commits transactions in a loop on a WAL database and is killed with SIGKILL
// mid-way, several times; every transaction it reported committed is there in full, none is there in part,
// the file passes integrity_check, and the run resumes where it stopped.
import Foundation
import XCTest
@testable import CapfiltStore

final class DurabilityTests: StoreTestCase {
    /// Rows per transaction: a half-applied transaction would show as a batch with fewer.
    private static let batchSize = 25

    /// The writer: Python's stdlib sqlite3, WAL + synchronous=FULL like `Database`. It resumes after the
    /// highest committed batch, and prints each batch number only after COMMIT returned.
    private static let childScript = """
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
        assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        batch = (db.execute("SELECT max(batch) FROM batches").fetchone()[0] or 0)
        while True:
            batch += 1
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO batches(batch, size) VALUES (?, ?)", (batch, \(batchSize)))
            db.executemany("INSERT INTO items(batch, idx, payload) VALUES (?, ?, ?)",
                           [(batch, i, "payload-%d-%d-" % (batch, i) + "x" * ((batch * 31 + i) % 700))
                            for i in range(\(batchSize))])
            db.execute("COMMIT")
            print(batch, flush=True)
        """

    private static let schema = [
        Migration("0001_batches", """
            CREATE TABLE batches(batch INTEGER PRIMARY KEY, size INTEGER NOT NULL);
            CREATE TABLE items(batch INTEGER NOT NULL REFERENCES batches(batch), idx INTEGER NOT NULL,
                               payload TEXT NOT NULL, PRIMARY KEY (batch, idx));
            """),
    ]

    /// Whether `python3` with its sqlite3 module can be run here.
    private func pythonAvailable() -> Bool {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import sqlite3"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do { try probe.run() } catch { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }

    /// Runs the writer until it has reported `commits` batches, SIGKILLs it, and returns every batch it reported.
    private func runWriterAndKill(database: String, afterCommits commits: Int) throws -> [Int] {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", "-c", Self.childScript, database]
        let stdout = Pipe(), stderr = Pipe()
        child.standardOutput = stdout
        child.standardError = stderr
        try child.run()

        var buffer = Data()
        func lines() -> [Int] {
            String(decoding: buffer, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        }
        while lines().count < commits {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty {   // EOF: the writer died on its own
                child.waitUntilExit()
                let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                XCTFail("writer exited early (status \(child.terminationStatus)): \(message)")
                return lines()
            }
            buffer.append(chunk)
        }
        // Killed right after a report, i.e. somewhere inside the next transaction (or its commit).
        XCTAssertEqual(kill(child.processIdentifier, SIGKILL), 0)
        buffer.append(stdout.fileHandleForReading.readDataToEndOfFile())   // reports made before the kill
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        XCTAssertEqual(child.terminationStatus, SIGKILL)
        return lines()
    }

    func testCommittedTransactionsSurviveSIGKILL() throws {
        try XCTSkipUnless(pythonAvailable(), "python3 with sqlite3 is needed to run a writer that can be killed")
        let file = path("killed.sqlite")
        try Database(path: file).migrate(Self.schema)

        var reported: Set<Int> = []
        var ourBatches: Set<Int> = []
        for round in 0..<4 {
            let committed = try runWriterAndKill(database: file, afterCommits: 60 + 37 * round)
            XCTAssertFalse(committed.isEmpty)
            reported.formUnion(committed)

            let db = try Database(path: file)
            XCTAssertEqual(try db.scalar("PRAGMA integrity_check", as: String.self), "ok", "round \(round)")
            XCTAssertEqual(try db.query("PRAGMA foreign_key_check").count, 0, "round \(round)")
            let sizes = try db.query("""
                SELECT b.batch, b.size, count(i.idx) AS items
                FROM batches b LEFT JOIN items i ON i.batch = b.batch GROUP BY b.batch
                """)
            var present: Set<Int> = []
            for row in sizes {
                let batch = try row.value("batch", as: Int.self)
                present.insert(batch)
                // All or nothing: no transaction is visible in part.
                XCTAssertEqual(try row.value("items", as: Int.self), try row.value("size", as: Int.self),
                               "batch \(batch) is partial")
            }
            XCTAssertTrue(reported.isSubset(of: present),
                          "lost committed batches: \(reported.subtracting(present).sorted())")
            XCTAssertEqual(try db.scalar("SELECT count(*) FROM items WHERE batch NOT IN (SELECT batch FROM batches)",
                                         as: Int.self), 0)

            // Resume with Database itself between kills: the next batch number follows the last committed one.
            let next = (try db.scalar("SELECT max(batch) FROM batches", as: Int.self) ?? 0) + 1
            try db.write { db in
                try db.execute("INSERT INTO batches VALUES (?, 1)", [.integer(Int64(next))])
                try db.execute("INSERT INTO items VALUES (?, 0, 'from swift')", [.integer(Int64(next))])
            }
            ourBatches.insert(next)
        }
        let db = try Database(path: file)
        XCTAssertEqual(try db.scalar("PRAGMA integrity_check", as: String.self), "ok")
        let all = Set(try db.query("SELECT batch FROM batches").map { try $0.value("batch", as: Int.self) })
        XCTAssertTrue(reported.union(ourBatches).isSubset(of: all))
        print("SIGKILL test: \(reported.count) reported commits in 4 kills, \(all.count) batches on disk")
    }
}
