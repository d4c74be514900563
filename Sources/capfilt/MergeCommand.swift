// `capfilt merge OUT` (and its older name `capfilt export OUT`): the dataset from the finished units, checked
// first; writes nothing when the dataset on disk already is what the units give (every file's SHA-256 checked).
import ArgumentParser
import CapfiltPipeline
import Foundation

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Write the dataset (shards, manifests, stats, run manifest) from a job's finished units.",
        discussion: """
            The last worker to finish runs this by itself; run it by hand after fixing a unit, or to repair a damaged \
            dataset. Every unit must be done with the job's spec and weights (the units that are not are named). \
            Exact-duplicate images are dropped across units, keys made unique, and shards written 00000.tar, \
            00001.tar, ... each replaced only by a rename of its complete new version: a killed merge run again \
            gives the same bytes. When the dataset on disk already matches the units (SHA-256 of every file), \
            nothing is written. Exit status: 0 done; 1 units missing or different, or an error; 130 interrupted.
            """,
        aliases: ["export"])

    @Argument(help: "The job's output folder.")
    var runFolder: String

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let folder = URL(fileURLWithPath: runFolder)
        let stop = StopFlag()
        let reporter = ProgressReporter(quiet: quiet)
        let signals = stopOnSignals(stop, reporter: reporter)
        defer { signals.forEach { $0.cancel() } }
        guard try Merge.run(folder: folder, stop: stop, verification: .full, log: reporter.log) else {
            reporter.log("interrupted; run `capfilt merge \(runFolder)` again")
            throw ExitCode(130)
        }
        try StatusCommand.printSummary(folder: folder)
    }
}
