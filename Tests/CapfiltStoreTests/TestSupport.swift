// Shared fixtures: a temporary directory per test, and the same check run on `:memory:` and on a file.
import Foundation
import XCTest
@testable import CapfiltStore

class StoreTestCase: XCTestCase {
    /// A fresh directory, removed after the test.
    private(set) var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("capfilt-store-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A path inside the test's directory.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs `check` on a new in-memory database and on a new file database; failures name which one.
    func onMemoryAndFile(_ check: (Database, String) throws -> Void) throws {
        try check(try Database.inMemory(), ":memory:")
        try check(try Database(path: path("both-\(UUID().uuidString).sqlite")), "file")
    }

    /// Size of the file at `path`, or nil if it does not exist.
    func fileSize(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
    }
}

/// An error of the test's own, to check that `write` rethrows exactly what its body threw.
struct TestAbort: Error, Equatable { let reason: String }

/// Asserts that `body` throws an `SQLiteError` and returns it for further checks.
@discardableResult
func assertSQLiteError<T>(
    _ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line
) -> SQLiteError? {
    do {
        _ = try body()
        XCTFail("expected an SQLiteError, got success", file: file, line: line)
    } catch let error as SQLiteError {
        return error
    } catch {
        XCTFail("expected an SQLiteError, got \(error)", file: file, line: line)
    }
    return nil
}
