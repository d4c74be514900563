// The crash test: `capfilt run` killed with SIGKILL many times, at every commit boundary of every stage
// (export included) and at random instants, resumed each time with the same command. The output must be
// byte-identical to an uninterrupted run and every input sample must be in the ledger exactly once.
import CapfiltPipeline
import Foundation
import XCTest

/// The capfilt binary of the same build.
func capfiltBinary() throws -> URL {
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("capfilt")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    for config in ["debug", "release"] {
        let candidate = repoRoot.appendingPathComponent(".build/\(config)/capfilt")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw XCTSkip("capfilt binary not found; build it first (swift build)")
}

final class CrashTests: XCTestCase {
    /// Starts `capfilt run`; returns the process (running).
    private func start(_ corpus: TestCorpus, killAt: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = try capfiltBinary()
        p.arguments = ["run", corpus.specPath, "--quiet", "--threads", "1"]
        var env = ProcessInfo.processInfo.environment
        env["CAPFILT_KILL_AT"] = killAt
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    private func runToEnd(_ corpus: TestCorpus) throws -> Int32 {
        let p = try start(corpus)
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// SIGINT finishes the current transaction and exits 130 with a resume hint; the same command resumes.
    func testSIGINTStopsCleanlyAndResumes() throws {
        let reference = try TestCorpus.make()
        defer { reference.remove() }
        XCTAssertEqual(try runToEnd(reference), 0)
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        for point in ["after-caption-commit#2:INT", "export-tar-renamed#1:INT"] {
            let p = Process()
            p.executableURL = try capfiltBinary()
            p.arguments = ["run", corpus.specPath, "--threads", "1"]
            var env = ProcessInfo.processInfo.environment
            env["CAPFILT_KILL_AT"] = point
            p.environment = env
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit, point)
            XCTAssertEqual(p.terminationStatus, 130, "\(point): \(message)")
            XCTAssertTrue(message.contains("Resume with: capfilt run"), message)
        }
        XCTAssertEqual(try runToEnd(corpus), 0)
        XCTAssertEqual(try corpus.outputFiles(), try reference.outputFiles())
    }

    func testSurvivesSIGKILLAtEveryStageAndAtRandomInstants() throws {
        // Reference: one uninterrupted run.
        let reference = try TestCorpus.make(samplesPerShard: 2, batchSize: 3)
        defer { reference.remove() }
        let t0 = Date()
        XCTAssertEqual(try runToEnd(reference), 0)
        let referenceSeconds = Date().timeIntervalSince(t0)
        let expected = try reference.outputFiles()
        XCTAssertGreaterThan(expected.count, 6)

        let corpus = try TestCorpus.make(samplesPerShard: 2, batchSize: 3)
        defer { corpus.remove() }
        var kills: [String] = []
        // 1. Injected kills at every commit boundary, at the first and a later pass.
        let points = ["before-ingest-commit#1", "after-ingest-commit#2", "before-caption-commit#1", "after-caption-commit#2",
                      "before-filter-commit#1", "after-filter-commit#3", "export-tar-written#1", "export-tar-renamed#2",
                      "export-manifest-written#1", "export-parquet-written#2", "export-stats-written#2", "before-run-manifest#1", "after-run-manifest#1",
                      "unit-images-written#1", "unit-records-written#1", "unit-done-written#1"]
        for point in points {
            let p = try start(corpus, killAt: point)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL { kills.append(point) }
        }
        // 2. Random instants: SIGKILL from outside at a uniform time within a full run's duration.
        var generator = SystemRandomNumberGenerator()
        try? FileManager.default.removeItem(at: corpus.output.appendingPathComponent("capfilt_run.json"))
        for _ in 0..<150 where kills.count < 24 {
            // Once a run got to the end, restart its export so random kills keep landing in real work.
            try? FileManager.default.removeItem(at: corpus.output.appendingPathComponent("capfilt_run.json"))
            let p = try start(corpus)
            let delay = Double.random(in: 0...max(referenceSeconds, 0.2), using: &generator)
            Thread.sleep(forTimeInterval: delay)
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                kills.append("random@\(String(format: "%.2f", delay))s")
            } else {
                p.waitUntilExit()
            }
        }
        print("[crash] \(kills.count) SIGKILLs survived: \(kills.joined(separator: ", "))")
        XCTAssertGreaterThanOrEqual(kills.count, 20)
        XCTAssertTrue(kills.contains { $0.hasPrefix("export") }, "kills during export")
        XCTAssertTrue(kills.contains { $0.contains("caption") }, "kills during captioning")

        // Resume to the end and compare.
        XCTAssertEqual(try runToEnd(corpus), 0)
        let got = try corpus.outputFiles()
        XCTAssertEqual(got.keys.sorted(), expected.keys.sorted())
        var differing: [String] = []
        for (name, bytes) in expected where got[name] != bytes { differing.append(name) }
        XCTAssertEqual(differing, [], "files differ from the uninterrupted run")

        var ordinals: [Int] = []
        for r in try Merge.unitRecords(folder: corpus.output) { ordinals.append(r.ordinal); XCTAssertEqual(r.stage, .done) }
        XCTAssertEqual(ordinals, Array(0..<corpus.expectations.count), "every input sample exactly once")
        print("[crash] samples lost: \(corpus.expectations.count - Set(ordinals).count), duplicated: \(ordinals.count - Set(ordinals).count)")
    }
}
