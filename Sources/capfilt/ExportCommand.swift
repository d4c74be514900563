// `capfilt export RUN`: writes the shards again from the ledger (same bytes), e.g. after deleting them.
import ArgumentParser
import CapfiltPipeline
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Re-export a finished run's shards, manifests and stats from its ledger.",
        discussion: "The input must still be where the run read it: images are copied from there, and checked against the hashes in the ledger.")

    @Argument(help: "The run's output folder.")
    var runFolder: String

    func run() throws {
        let folder = URL(fileURLWithPath: runFolder)
        let ledger = try Ledger.open(runFolder: folder)
        guard let identity = try ledger.identity() else { throw CLIError("\(runFolder) has no recorded run") }
        let spec = try PipelineSpec(yaml: identity.specYAML, path: identity.specPath)
        let pending = try ledger.histogram().filter { $0.stage != "done" }.reduce(0) { $0 + $1.count }
        if pending > 0 {
            throw CLIError("\(pending) samples of this run are not finished; resume it with `capfilt run \(identity.specPath)` first")
        }
        try ledger.clearExport()
        guard try Exporter(spec: spec, ledger: ledger, outputFolder: folder).export(stop: StopFlag()) else { throw ExitCode(130) }
        try StatusCommand.printSummary(folder: folder)
    }
}
