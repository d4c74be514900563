// Throughput sanity: 200k inserts in one transaction through one prepared statement finish and are all there.
// No timing assertion (CI machines vary); the rate is printed for BENCHMARKS.md.
import Foundation
import XCTest
@testable import CapfiltStore

final class BulkInsertTests: StoreTestCase {
    func testTwoHundredThousandInsertsInOneTransaction() throws {
        let rows = 200_000
        let db = try Database(path: path("bulk.sqlite"))
        try db.execute("CREATE TABLE samples(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, score REAL)")
        let insert = try db.prepare("INSERT INTO samples(id, key, score) VALUES (?, ?, ?)")
        let start = Date()
        try db.write { _ in
            for i in 0..<rows {
                try insert.run([.integer(Int64(i)), .text("shard-\(i / 10_000)/sample-\(i)"), .real(Double(i) * 0.5)])
            }
        }
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM samples", as: Int.self), rows)
        XCTAssertEqual(try db.scalar("SELECT sum(id) FROM samples", as: Int.self), rows * (rows - 1) / 2)
        XCTAssertEqual(try db.scalar("SELECT key FROM samples WHERE id = ?", [199_999], as: String.self),
                       "shard-19/sample-199999")
        print("bulk insert: \(rows) rows in \(String(format: "%.2f", seconds)) s = "
              + "\(Int(Double(rows) / seconds)) rows/s")
    }
}
