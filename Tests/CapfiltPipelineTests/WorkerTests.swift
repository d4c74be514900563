// Many workers on one output folder: the dataset must be byte-identical to one worker's, whatever the number of
// workers and the claim order, with workers killed by SIGKILL at random instants and started again, and with a
// stalled worker's lease left to expire and its unit taken over. Workers are real `capfilt run` processes
// claiming units concurrently on this machine's file system.
import CapfiltPipeline
import CapfiltStore
import Foundation
import XCTest

final class WorkerTests: XCTestCase {
    /// The test scrape as a list cut into units of 5 rows: 7 units, with an image repeated across units and a
    /// key repeated, so the merge's cross-unit rules are exercised.
    private func multiUnitCorpus() throws -> TestCorpus {
        try TestCorpus.make(kind: "jsonl", samplesPerShard: 4, blockSize: 5)
    }

    private func startWorker(_ corpus: TestCorpus, _ index: Int, of count: Int, lease: Double = 1,
                             log: URL? = nil, extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = try capfiltBinary()
        p.arguments = ["run", corpus.specPath, "--threads", "1", "--worker", "\(index)", "--workers", "\(count)",
                       "--lease-seconds", "\(lease)"] + extra + (log == nil ? ["--quiet"] : [])
        p.standardOutput = FileHandle.nullDevice
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: log)
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        return p
    }

    /// One worker's dataset for `corpus` (then removed, for the next run in the same folder: messages about
    /// missing files name absolute paths, so every run of a comparison uses one corpus folder).
    private func reference(_ corpus: TestCorpus) throws -> (files: [String: Data], seconds: Double) {
        let started = Date()
        let run = try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let files = try corpus.outputFiles()
        XCTAssertGreaterThan(files.keys.filter { $0.hasSuffix(".tar") }.count, 1, "several shards")
        try FileManager.default.removeItem(at: corpus.output)
        return (files, Date().timeIntervalSince(started))
    }

    private func assertSame(_ got: [String: Data], _ expected: [String: Data], _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(got.keys), Set(expected.keys), what, file: file, line: line)
        let differing = expected.keys.filter { got[$0] != expected[$0] }.sorted()
        XCTAssertEqual(differing, [], "\(what): files differ from one worker's dataset", file: file, line: line)
    }

    /// 1, 2, 3 and 4 concurrent workers, each worker SIGKILLed at random instants and started again until the
    /// job is done: the same bytes every time.
    func testAnyNumberOfWorkersWithKillsGivesTheSameBytes() throws {
        let corpus = try multiUnitCorpus()
        defer { corpus.remove() }
        let (expected, seconds) = try reference(corpus)
        var generator = SystemRandomNumberGenerator()
        var killed = 0
        for count in 1...4 {
            try? FileManager.default.removeItem(at: corpus.output)
            var workers = try (0..<count).map { try startWorker(corpus, $0, of: count) }
            // Kill a random worker at a random instant, a few times, restarting it each time.
            for _ in 0..<3 {
                Thread.sleep(forTimeInterval: Double.random(in: 0.1...max(seconds / 2, 0.3), using: &generator))
                let victim = Int.random(in: 0..<count, using: &generator)
                if workers[victim].isRunning {
                    kill(workers[victim].processIdentifier, SIGKILL)
                    workers[victim].waitUntilExit()
                    killed += 1
                    workers[victim] = try startWorker(corpus, victim, of: count)
                }
            }
            for w in workers { w.waitUntilExit() }
            XCTAssertTrue(workers.allSatisfy { $0.terminationStatus == 0 }, "\(count) workers: exit statuses \(workers.map(\.terminationStatus))")
            // A worker that exits while another merges leaves the merge to it; make sure it ran.
            let merge = try runCapfilt(["merge", corpus.output.path])
            XCTAssertEqual(merge.status, 0, merge.stderr)
            assertSame(try corpus.outputFiles(), expected, "\(count) workers")
            let rows = try Merge.unitRecords(folder: corpus.output)
            XCTAssertEqual(rows.count, corpus.expectations.count, "every input sample exactly once")
        }
        print("[workers] 1-4 workers identical, \(killed) workers killed and restarted")
    }

    /// A worker stopped (SIGSTOP) while it holds a unit: its lease expires, another worker takes the unit over
    /// and finishes the job; the stalled worker, woken, finds its unit gone and leaves. Same bytes.
    func testAStalledWorkersUnitIsTakenOver() throws {
        let corpus = try multiUnitCorpus()
        defer { corpus.remove() }
        let (expected, _) = try reference(corpus)
        let stalled = try startWorker(corpus, 0, of: 2, lease: 1)
        // Freeze it while it holds a unit (a lease file with no done.json beside it).
        func heldUnit() -> String? {
            let units = corpus.output.appendingPathComponent("units")
            return ((try? FileManager.default.contentsOfDirectory(atPath: units.path)) ?? []).sorted().first { name in
                let folder = units.appendingPathComponent(name)
                return FileManager.default.fileExists(atPath: folder.appendingPathComponent("lease.1").path)
                    && !FileManager.default.fileExists(atPath: folder.appendingPathComponent("done.json").path)
            }
        }
        var held: String?
        let deadline = Date().addingTimeInterval(120)
        while held == nil && Date() < deadline && stalled.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            kill(stalled.processIdentifier, SIGSTOP)
            held = heldUnit()
            if held == nil { kill(stalled.processIdentifier, SIGCONT) }
        }
        let unit = try XCTUnwrap(held, "worker 0 was stopped while holding a unit")
        let log = corpus.folder.appendingPathComponent("worker1.log")
        let other = try startWorker(corpus, 1, of: 2, lease: 1, log: log)
        other.waitUntilExit()
        let messages = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(other.terminationStatus, 0, messages)
        XCTAssertTrue(messages.contains("taking over unit \(unit)"), messages)
        kill(stalled.processIdentifier, SIGCONT)
        stalled.waitUntilExit()
        XCTAssertEqual(stalled.terminationStatus, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: corpus.output.appendingPathComponent("units/\(unit)/lease.2").path))
        assertSame(try corpus.outputFiles(), expected, "after a take-over")
        print("[workers] stalled worker's unit \(unit) taken over (lease.2), bytes identical")
    }

    /// Merging before every unit is done names the units missing and who holds them; status shows the job.
    func testMergeNamesMissingUnitsAndStatusShowsTheJob() throws {
        let corpus = try multiUnitCorpus()
        defer { corpus.remove() }
        XCTAssertEqual(try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"]).status, 0)
        let done = corpus.output.appendingPathComponent("units/00003/done.json")
        try FileManager.default.removeItem(at: done)
        let merge = try runCapfilt(["merge", corpus.output.path])
        XCTAssertEqual(merge.status, 1)
        XCTAssertTrue(merge.stderr.contains("1 of 7 units") && merge.stderr.contains("00003 (attempt 1, worker 0"), merge.stderr)

        let status = try runCapfilt(["status", corpus.output.path, "--json"])
        XCTAssertEqual(status.status, 0, status.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let units = json?["units"] as? [String: Any]
        XCTAssertEqual(units?["total"] as? Int, 7)
        XCTAssertEqual(units?["done"] as? Int, 6)
        XCTAssertEqual(units?["claimed"] as? Int, 1)
        XCTAssertEqual(units?["stale"] as? Int, 1, "its holder is a dead process of this host")
        XCTAssertEqual((json?["workers"] as? [[String: Any]])?.first?["worker"] as? Int, 0)
        // Worker 0 again: resumes the unit (its ledger is gone with the finished unit, so it redoes it) and merges.
        XCTAssertEqual(try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"]).status, 0)
        XCTAssertEqual(try runCapfilt(["merge", corpus.output.path]).status, 0)
    }

    /// Worker index and count from Slurm's array variables and from a Kubernetes Indexed Job's completion index.
    func testSchedulerEnvironmentGivesTheWorkerSlot() throws {
        let corpus = try multiUnitCorpus()
        defer { corpus.remove() }
        let slurm = try runCapfilt(["run", corpus.specPath, "--threads", "1", "--no-wait"],
                                   environment: ["SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3"])
        XCTAssertEqual(slurm.status, 0, slurm.stderr)
        XCTAssertTrue(slurm.stderr.contains("worker 1 of 3 done"), slurm.stderr)
        let holder = try JSONSerialization.jsonObject(with: Data(contentsOf: corpus.output.appendingPathComponent("units/00001/lease.1"))) as? [String: Any]
        XCTAssertEqual(holder?["worker"] as? Int, 1, "worker 1 of 3 claims its own share first: units 1, 4")
        let k8s = try runCapfilt(["run", corpus.specPath, "--threads", "1", "--no-wait", "--workers", "3"],
                                 environment: ["JOB_COMPLETION_INDEX": "2"])
        XCTAssertEqual(k8s.status, 0, k8s.stderr)
        XCTAssertTrue(k8s.stderr.contains("worker 2 of 3 done"), k8s.stderr)
        let bad = try runCapfilt(["run", corpus.specPath, "--quiet"], environment: ["JOB_COMPLETION_INDEX": "2"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("not below the worker count 1"), bad.stderr)
    }

    /// No statement a batch runs scans a table: a batch costs the same at the first sample and the millionth.
    func testLedgerStatementsUseIndexes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-plans-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let ledger = try Ledger(path: folder.appendingPathComponent("ledger.1.sqlite").path)
        let plans = try ledger.queryPlans()
        XCTAssertEqual(plans.count, 5)
        for (statement, steps) in plans {
            XCTAssertFalse(steps.isEmpty, statement)
            for step in steps {
                XCTAssertFalse(step.hasPrefix("SCAN"), "\(statement): \(step)")
            }
        }
    }
}
