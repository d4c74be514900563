// `capfilt run SPEC [--worker I --workers N]`: a worker of the CapFilt job (one worker is the whole job).
// Resumes by itself: the same command after a kill continues from the last committed batch. The worker index
// and count also come from Slurm job arrays and Kubernetes Indexed Jobs.
import ArgumentParser
import CapfiltPipeline
import CapfiltTensor
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Caption, filter and merge a corpus as a pipeline spec describes (one worker of the job).",
        discussion: """
            The job is split into units (one per input shard, one per input.block_size samples of a list or folder).
            Workers sharing the output folder claim units with leases, checkpoint every stage of a unit in its own
            SQLite ledger, and the last to finish merges the dataset. Run the same command again after a crash, a
            kill or Ctrl-C and it continues where it stopped; the dataset is byte-identical to an uninterrupted
            single-worker run, whatever the number of workers.
            Worker index and count: --worker/--workers, else SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) and
            SLURM_ARRAY_TASK_COUNT, else JOB_COMPLETION_INDEX (Kubernetes Indexed Job; count from --workers or the
            spec's job.workers), else worker 0 of 1.
            Changing only decisions in the spec (filter.threshold, filter.main_caption, duplicates, output sharding
            and image format) and running again re-decides from the stored captions and scores with no model work,
            in the same folder or, with --output DIR, into a new one; the dataset is byte-identical to a fresh run.
            Exit status: 0 done (or, with --no-wait, nothing left to claim); 1 error (bad spec, unreadable model,
            changed input) or units failed (a pipe: input's command failed; the others are done, run again to
            retry); 130 interrupted (resume with the same command); 64 bad command line.
            """)

    @Argument(help: "The pipeline spec (YAML), e.g. Pipelines/capfilt-base.yaml.")
    var spec: String

    @Flag(name: .customLong("new-run"), help: "Discard an existing run in the output folder and start over.")
    var newRun = false

    @Option(help: "Write the job to this folder instead of the spec's output.folder; a run there whose spec differs only in decisions (filter.threshold, filter.main_caption, duplicates, output sharding) lends its captions and scores, so no model work is redone and it is left as it is.")
    var output: String?

    @Option(help: "OpenBLAS threads for the models (default: all cores).")
    var threads: Int?

    @Flag(help: "No progress output.")
    var quiet = false

    @Flag(help: "At the end, print the job's summary as JSON on stdout (what `capfilt status OUT --json` prints, plus \"outcome\", \"worker\" and \"workers\").")
    var json = false

    @Option(help: "This worker's index, 0 ..< --workers (default: from the scheduler's environment, else 0).")
    var worker: Int?

    @Option(help: "How many workers share the output folder (default: from the scheduler's environment or the spec's job.workers, else 1).")
    var workers: Int?

    @Option(name: .customLong("lease-seconds"), help: "A unit's lease expires this long after its holder last renewed it (default: the spec's job.lease_seconds, 120).")
    var leaseSeconds: Double?

    @Flag(name: .customLong("no-wait"), help: "Exit once no unit is left to claim, instead of waiting for the units other workers hold.")
    var noWait = false

    @Flag(help: "Check every finished shard against its SHA-256 in the ledger before trusting it (by default sizes always, hashes when the shards total at most 1 GiB).")
    var verify = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let worker, worker < 0 { throw ValidationError("--worker must be 0 or more") }
        if let leaseSeconds, !(leaseSeconds >= 0.2) { throw ValidationError("--lease-seconds must be at least 0.2") }
    }

    /// (index, count) from the flags, then Slurm's array variables, then Kubernetes' completion index.
    static func slot(worker: Int?, workers: Int?, specWorkers: Int?, environment: [String: String]) throws -> (Int, Int) {
        func number(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let n = Int(text), n >= 0 else { throw ValidationError("\(name)=\(text) is not a worker number") }
            return n
        }
        var index = worker, count = workers
        if index == nil, let task = try number("SLURM_ARRAY_TASK_ID") {
            index = task - (try number("SLURM_ARRAY_TASK_MIN") ?? 0)
            if count == nil { count = try number("SLURM_ARRAY_TASK_COUNT") }
        }
        if index == nil, let completion = try number("JOB_COMPLETION_INDEX") { index = completion }
        let resolvedCount = count ?? specWorkers ?? 1
        let resolvedIndex = index ?? 0
        guard resolvedIndex < resolvedCount else {
            throw ValidationError("worker \(resolvedIndex) is not below the worker count \(resolvedCount): give --workers (or job.workers in the spec) as the number of tasks")
        }
        return (resolvedIndex, resolvedCount)
    }

    func run() throws {
        BLAS.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        var parsed = try PipelineSpec.load(path: spec)
        var reuseFrom: URL?
        if let output {
            reuseFrom = parsed.resolve(parsed.output.folder)
            // Relative to where the command runs, as any path on a command line.
            parsed.output.folder = URL(fileURLWithPath: output).standardizedFileURL.path
            if parsed.resolve(parsed.output.folder).standardizedFileURL == reuseFrom?.standardizedFileURL { reuseFrom = nil }
        }
        let yaml = (try? String(contentsOfFile: spec, encoding: .utf8)) ?? ""
        let reporter = ProgressReporter(quiet: quiet)
        let stop = StopFlag()
        // Handlers first: a signal while the models load must end with 130 too, not kill the process.
        let signals = stopOnSignals(stop, reporter: reporter)
        defer { signals.forEach { $0.cancel() } }
        let (index, count) = try Self.slot(worker: worker, workers: workers, specWorkers: parsed.job.workers,
                                           environment: ProcessInfo.processInfo.environment)
        let pipeline: PipelineRun
        do {
            pipeline = try PipelineRun(spec: parsed, specYAML: yaml, specPath: spec, newRun: newRun, worker: index, workers: count,
                                       leaseSeconds: leaseSeconds, reuseFrom: reuseFrom, stop: stop, log: reporter.log)
        } catch is CancellationError {
            reporter.log("interrupted before any work; nothing is lost. Resume with: capfilt run \(spec)")
            throw ExitCode(130)
        }
        let outcome = try pipeline.run(stop: stop, verification: verify ? .full : .automatic, wait: !noWait, progress: reporter.update)
        reporter.finish()
        if json {
            var summary: [String: JSON] = ["worker": .int(index), "workers": .int(count)]
            switch outcome {
            case .completed: summary["outcome"] = .string("completed")
            case .interrupted: summary["outcome"] = .string("interrupted")
            case .unitsFailed(let failures):
                summary["outcome"] = .string("units_failed")
                summary["units_failed"] = .array(failures.map {
                    .object(["unit": .string(JobPlan.unitName($0.unit)), "source": .string($0.source), "reason": .string($0.reason)])
                })
            }
            if case .object(let job) = try StatusCommand.summary(folder: pipeline.outputFolder) {
                summary.merge(job) { ours, _ in ours }
            }
            print(JSON.object(summary).text)
        }
        switch outcome {
        case .completed:
            reporter.log("worker \(index) of \(count) done: \(pipeline.outputFolder.path)")
            if !json { try StatusCommand.printSummary(folder: pipeline.outputFolder) }
        case .interrupted:
            reporter.log("interrupted; nothing committed is lost. Resume with: capfilt run \(spec)")
            throw ExitCode(130)
        case .unitsFailed(let failures):
            // Said even with --quiet: the exit status alone does not say which input to look at.
            let names = failures.map { "\(JobPlan.unitName($0.unit)) (\($0.source))" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("capfilt: \(failures.count) unit\(failures.count == 1 ? "" : "s") failed, so the dataset is not merged: \(names). \(failures.first.map { "First failure: \($0.reason) " } ?? "")Every other unit is done and nothing committed is lost; run the same command again to retry: capfilt run \(spec)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// RunProgress on stderr: a line rewritten in place on a terminal; otherwise (a log file, a scheduler's output) a
/// plain line every 10 s, whenever a unit finishes, and once at the end, so a short run's log ends with its counts.
final class ProgressReporter: @unchecked Sendable {
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) == 1
    private let start = Date()
    private var lastLine = Date.distantPast
    private var lastLength = 0
    /// The latest progress, and whether it was printed.
    private var latest: RunProgress?
    private var latestShown = true
    private let lock = NSLock()

    init(quiet: Bool) { self.quiet = quiet }

    func log(_ message: String) {
        guard !quiet else { return }
        lock.lock(); defer { lock.unlock() }
        clearLine()
        FileHandle.standardError.write(Data(("capfilt: " + message + "\n").utf8))
    }

    func update(_ p: RunProgress) {
        guard !quiet else { return }
        lock.lock(); defer { lock.unlock() }
        let milestone = latest.map { $0.unitsDone != p.unitsDone || $0.stage != p.stage && p.stage == "merge" } ?? true
        latest = p
        latestShown = false
        let now = Date()
        guard now.timeIntervalSince(lastLine) >= (terminal ? 0.2 : 10) || (!terminal && milestone) else { return }
        show(p, now: now)
    }

    /// The progress line: one vocabulary with `capfilt status` (kept, filtered = dropped by the filter, duplicate,
    /// failed), the keep share over the samples finished.
    static func line(_ p: RunProgress, elapsed: Double) -> String {
        let rate = Double(p.finished - p.skipped) / max(elapsed, 0.001)
        let keep = p.finished > 0 ? 100 * Double(p.kept) / Double(p.finished) : 0
        let eta = p.estimatedSecondsLeft.map { s in s >= 3600 ? String(format: "  ETA %dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60)
                                                                  : String(format: "  ETA %dm%02ds", Int(s) / 60, Int(s) % 60) } ?? ""
        let unit = p.unit.map { "unit \(JobPlan.unitName($0)) " } ?? ""
        let counts = String(format: "units %d/%d  read %d  captioned %d  scored %d  finished %d: kept %d (%.1f%%) filtered %d duplicate %d failed %d",
                            p.unitsDone, p.unitCount, p.read, p.captioned, p.scored, p.finished, p.kept, keep, p.filtered,
                            p.duplicate, p.failed)
        let resumed = p.skipped > 0 ? "  resumed past \(p.skipped)" : ""
        return "[\(unit)\(p.stage)] " + counts + resumed + String(format: "  %.1f samples/s", rate) + eta
    }

    private func show(_ p: RunProgress, now: Date) {
        lastLine = now
        latestShown = true
        let text = Self.line(p, elapsed: now.timeIntervalSince(start))
        if terminal {
            clearLine()
            FileHandle.standardError.write(Data(("\r" + text).utf8))
            lastLength = text.count
        } else {
            FileHandle.standardError.write(Data(("capfilt: " + text + "\n").utf8))
        }
    }

    /// Ends the live line; when not on a terminal, prints the last counts if they were not printed yet.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if !quiet && !terminal && !latestShown, let latest { show(latest, now: Date()) }
        clearLine()
    }

    private func clearLine() {
        if terminal && lastLength > 0 {
            FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastLength) + "\r").utf8))
            lastLength = 0
        }
    }
}

/// Ctrl-C and SIGTERM set `stop` (the work in hand finishes its transaction) instead of killing the process.
func stopOnSignals(_ stop: StopFlag, reporter: ProgressReporter) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            reporter.log("stopping after the current transaction (signal \(sig))")
            stop.set()
        }
        source.resume()
        return source
    }
}
