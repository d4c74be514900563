// `capfilt run`, `status` and `export` as a user runs them.
import Foundation
import XCTest

final class CommandTests: XCTestCase {
    private func capfilt(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCapfilt(arguments)
    }

    func testRunStatusAndExport() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        let run = try capfilt(["run", corpus.specPath])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("image_corrupt"), "the run ends with its status summary: \(run.stderr)")

        let status = try capfilt(["status", corpus.output.path, "--json"])
        XCTAssertEqual(status.status, 0, status.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(summary?["samples"] as? Int, corpus.expectations.count)
        XCTAssertEqual((summary?["stages"] as? [String: Int])?["done"], corpus.expectations.count)
        let reasons = summary?["reasons"] as? [String: Int] ?? [:]
        for expected in Set(corpus.expectations.compactMap(\.failure)) { XCTAssertNotNil(reasons[expected], expected) }
        XCTAssertEqual(summary?["merge_complete"] as? Bool, true)

        let before = try corpus.outputFiles()
        try FileManager.default.removeItem(at: corpus.output.appendingPathComponent("shards"))
        let export = try capfilt(["export", corpus.output.path])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertEqual(try corpus.outputFiles(), before, "re-export writes the same bytes")

        let notARun = try capfilt(["status", corpus.folder.path])
        XCTAssertEqual(notARun.status, 1)
        XCTAssertTrue(notARun.stderr.contains("not a capfilt run folder"), notARun.stderr)
    }

    func testInvalidSpecIsOneMessageNamingTheField() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        var yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "threshold: 0.5", with: "threshold: 0.5\n  treshold: 0.4")
        try yaml.write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
        let run = try capfilt(["run", corpus.specPath])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("filter.treshold"), run.stderr)
        XCTAssertTrue(run.stderr.contains("did you mean filter.threshold"), run.stderr)
    }
}
