// `capfilt run SPEC`: the CapFilt job. Resumes by itself: the same command after a kill continues from the
// last committed batch.
import ArgumentParser
import CapfiltPipeline
import CapfiltTensor
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Caption, filter and export a corpus as a pipeline spec describes.",
        discussion: """
            Every stage is checkpointed in OUTPUT/capfilt.sqlite. Run the same command again after a crash, a kill or
            Ctrl-C and it continues where it stopped; the output is byte-identical to an uninterrupted run.
            Exit status: 0 done; 1 error (bad spec, unreadable model, changed input); 130 interrupted (resume with the
            same command); 64 bad command line.
            """)

    @Argument(help: "The pipeline spec (YAML), e.g. Pipelines/capfilt-base.yaml.")
    var spec: String

    @Flag(name: .customLong("new-run"), help: "Discard an existing run in the output folder and start over.")
    var newRun = false

    @Option(help: "OpenBLAS threads for the models (default: all cores).")
    var threads: Int?

    @Flag(help: "No progress output.")
    var quiet = false

    @Flag(help: "Check every finished shard against its SHA-256 in the ledger before trusting it (by default sizes always, hashes when the shards total at most 1 GiB).")
    var verify = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        BLAS.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let parsed = try PipelineSpec.load(path: spec)
        let yaml = (try? String(contentsOfFile: spec, encoding: .utf8)) ?? ""
        let reporter = ProgressReporter(quiet: quiet)
        let stop = StopFlag()
        // Handlers first: a signal while the models load must end with 130 too, not kill the process.
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                reporter.log("stopping after the current transaction (signal \(sig))")
                stop.set()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let pipeline: PipelineRun
        do {
            pipeline = try PipelineRun(spec: parsed, specYAML: yaml, specPath: spec, newRun: newRun, stop: stop, log: reporter.log)
        } catch is CancellationError {
            reporter.log("interrupted before any work; nothing is lost. Resume with: capfilt run \(spec)")
            throw ExitCode(130)
        }
        let outcome = try pipeline.run(stop: stop, verification: verify ? .full : .automatic, progress: reporter.update)
        reporter.finish()
        switch outcome {
        case .completed:
            reporter.log("done: \(pipeline.outputFolder.path)/\(PipelineRun.runManifestName)")
            try StatusCommand.printSummary(folder: pipeline.outputFolder)
        case .interrupted:
            reporter.log("interrupted; nothing committed is lost. Resume with: capfilt run \(spec)")
            throw ExitCode(130)
        }
    }
}

/// RunProgress on stderr: a line rewritten in place on a terminal, a plain line every 10 s otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) == 1
    private let start = Date()
    private var lastLine = Date.distantPast
    private var lastLength = 0
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
        let now = Date()
        guard now.timeIntervalSince(lastLine) >= (terminal ? 0.2 : 10) else { return }
        lastLine = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(p.finished) / elapsed
        let keep = p.finished > 0 ? 100 * Double(p.kept) / Double(p.finished) : 0
        let eta = p.estimatedSecondsLeft.map { s in s >= 3600 ? String(format: "  ETA %dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60)
                                                                  : String(format: "  ETA %dm%02ds", Int(s) / 60, Int(s) % 60) } ?? ""
        let text = String(format: "[%@] read %d  captioned %d  filtered %d  kept %d (%.1f%%)  failed %d  resumed past %d  %.1f samples/s",
                          p.stage, p.read, p.captioned, p.finished, p.kept, keep, p.failed, p.skipped, rate) + eta
        if terminal {
            clearLine()
            FileHandle.standardError.write(Data(("\r" + text).utf8))
            lastLength = text.count
        } else {
            FileHandle.standardError.write(Data(("capfilt: " + text + "\n").utf8))
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        clearLine()
    }

    private func clearLine() {
        if terminal && lastLength > 0 {
            FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastLength) + "\r").utf8))
            lastLength = 0
        }
    }
}
