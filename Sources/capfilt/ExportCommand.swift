// `capfilt export RUN`: writes again, from the ledger, every shard that is missing or damaged (same bytes).
import ArgumentParser
import CapfiltPipeline
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Verify a finished run's shards against its ledger and rewrite any that are missing or damaged.",
        discussion: """
            Every shard file is checked against the SHA-256 in the ledger; what is missing or different is written \
            again (the same bytes), each file replaced only by a rename of its complete new version. The input must \
            still be as the run read it: images are copied from there, and a changed input is refused before \
            anything is written.
            """)

    @Argument(help: "The run's output folder.")
    var runFolder: String

    func run() throws {
        let folder = URL(fileURLWithPath: runFolder)
        guard try Exporter.reexport(runFolder: folder, stop: StopFlag()) else { throw ExitCode(130) }
        try StatusCommand.printSummary(folder: folder)
    }
}
