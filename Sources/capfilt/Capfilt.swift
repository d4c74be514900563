// The command line. One subcommand per type and file.
import ArgumentParser

@main
struct Capfilt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capfilt",
        abstract: "BLIP CapFilt for image-text corpora: caption, filter, merge, on one machine or many.",
        subcommands: [RunCommand.self, StatusCommand.self, MergeCommand.self, EvalCommand.self, CalibrateCommand.self, ReportCommand.self, CaptionCommand.self, ScoreCommand.self, BenchCommand.self]
    )
}
