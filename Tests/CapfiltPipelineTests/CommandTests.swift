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

    /// Input of the wrong kind, a typo in a path, a folder of Parquet files given as an image folder: exit status 1
    /// and one message naming the file and what it looks like; and nothing left behind that blocks the corrected spec.
    func testWrongInputExitsOneAndLeavesNothingBlocking() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        let original = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        let shardInput = "kind: webdataset\n  paths: [\"data/{00000..00000}.tar\"]"
        XCTAssertTrue(original.contains(shardInput))
        try FileManager.default.createDirectory(at: corpus.folder.appendingPathComponent("tables"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: corpus.folder.appendingPathComponent("data.parquet"),
                                         to: corpus.folder.appendingPathComponent("tables/train-00000.parquet"))
        let wrong: [(String, String)] = [
            ("kind: webdataset\n  paths: [data.parquet]", "data.parquet: input.kind is 'webdataset' but this looks like a Parquet file"),
            ("kind: jsonl\n  paths: [data.parquet]", "data.parquet: input.kind is 'jsonl' but this looks like a Parquet file"),
            ("kind: csv\n  paths: [data/00000.tar]", "data/00000.tar: input.kind is 'csv' but this looks like a tar archive"),
            ("kind: folder\n  paths: [tables]", "tables: the folder tree holds no images"),
            ("kind: webdataset\n  paths: [\"data/{00000..00001}.tar\"]", "data/00001.tar: no such file or folder"),
            ("kind: parquet\n  paths: [data.parquet]\n  caption_column: text", "no column \"text\" for input.caption_column"),
        ]
        for (input, message) in wrong {
            try original.replacingOccurrences(of: shardInput, with: input).write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
            let run = try capfilt(["run", corpus.specPath])
            XCTAssertEqual(run.status, 1, input)
            XCTAssertTrue(run.stderr.contains(message), "\(input): \(run.stderr)")
            XCTAssertFalse(run.stderr.contains("PAR1"), "no binary bytes in the message")
            XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.output.appendingPathComponent("capfilt_job.json").path))
        }
        try original.write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
        let fixed = try capfilt(["run", corpus.specPath])
        XCTAssertEqual(fixed.status, 0, "the corrected spec runs in the same folder: \(fixed.stderr)")
    }

    /// Progress without a terminal (a log file): the last line printed is the run's final counts, in `status`'s
    /// vocabulary, with failed and duplicate samples counted and the keep share over the samples finished; and
    /// `--json` puts the job's summary on stdout.
    func testProgressLogEndsWithTheSummaryCountsAndJSONIsMachineReadable() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        let run = try capfilt(["run", corpus.specPath, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
                                    "stdout is one JSON object: \(run.stdout)")
        XCTAssertEqual(summary["outcome"] as? String, "completed")
        XCTAssertEqual(summary["samples"] as? Int, corpus.expectations.count)
        let statuses = try XCTUnwrap(summary["statuses"] as? [String: Int])
        XCTAssertGreaterThan(statuses["failed"] ?? 0, 0, "the test scrape has undecodable images")
        XCTAssertGreaterThan(statuses["duplicate"] ?? 0, 0, "the test scrape repeats an image")

        let last = try XCTUnwrap(run.stderr.split(separator: "\n").last { $0.contains("] units ") }.map(String.init),
                                 "a progress line is logged: \(run.stderr)")
        func count(_ word: String) -> Int? {
            guard let range = last.range(of: #"\b"# + word + #" (\d+)"#, options: .regularExpression) else { return nil }
            return Int(last[range].split(separator: " ").last ?? "")
        }
        for status in ["kept", "filtered", "duplicate", "failed"] {
            XCTAssertEqual(count(status), statuses[status] ?? 0, "\(status) in \(last)")
        }
        XCTAssertEqual(count("finished"), corpus.expectations.count, last)
        let share = String(format: "(%.1f%%)", 100 * Double(statuses["kept"] ?? 0) / Double(corpus.expectations.count))
        XCTAssertTrue(last.contains(share), "keep share over the finished samples, \(share): \(last)")
    }

    /// A model folder without its files: the message names the spec field to fix, not a command-line flag.
    func testMissingModelNamesTheSpecField() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-empty-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let corpus = try TestCorpus.make(filterModel: empty)
        defer { corpus.remove() }
        let run = try capfilt(["run", corpus.specPath])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("Point filter.model in the spec at a BLIP folder"), run.stderr)
        XCTAssertFalse(run.stderr.contains("--model"), run.stderr)
    }
}
