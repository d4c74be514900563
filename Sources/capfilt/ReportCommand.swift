// `capfilt report RUN`: RUN/report/index.html, a page a person reads to see what the filter did (funnel,
// reasons, score histograms against the threshold, keep rate per unit, captions, chosen samples with their
// thumbnails), from the finished run alone: no models.
import ArgumentParser
import CapfiltPipeline
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of a finished run (RUN/report/index.html), without running the models.",
        discussion: """
            The report folder is self-contained (one HTML file with inline CSS and SVG charts, and small JPEG \
            thumbnails; no script, nothing from the network): open it from disk, or copy it anywhere. It shows the \
            funnel from input to kept samples, the reasons samples left, ITM P(match) histograms of web texts and \
            synthetic captions with the threshold, ITC beside them, the keep rate per unit, where main captions came \
            from, caption lengths and repeated-phrase captions, and samples in sections: kept as is, web text \
            replaced, dropped, near the threshold (±0.05), failed, degenerate captions. Samples are chosen by a \
            seeded hash of their keys: the same run and seed give the same report. Images of dropped and failed \
            samples are read again from the input (kept ones from the run). Exit status: 0 written; 1 the run is \
            not finished and merged, or an error.
            """)

    @Argument(help: "The run's output folder (finished and merged).")
    var runFolder: String

    @Option(help: "Write the report folder here instead of RUN/report.")
    var output: String?

    @Option(help: "Seed of the sample choice.")
    var seed: UInt64 = 0

    @Option(name: .customLong("per-section"), help: "Samples shown per section.")
    var perSection: Int = RunReport.defaultPerSection

    @Flag(help: "No progress output.")
    var quiet = false

    func validate() throws {
        if !(0...500).contains(perSection) { throw ValidationError("--per-section must be in 0...500") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: runFolder)
        let target = output.map { URL(fileURLWithPath: $0) } ?? folder.appendingPathComponent(PipelineRun.reportFolderName)
        let start = Date()
        var report = try RunReport.gather(runFolder: folder, seed: seed, perSection: perSection)
        let thumbnails = try Thumbnails.make(&report, runFolder: folder)
        try report.write(to: target, thumbnails: thumbnails)
        if !quiet {
            let seconds = Date().timeIntervalSince(start)
            FileHandle.standardError.write(Data("report: \(target.appendingPathComponent("index.html").path) (\(report.input) samples, \(thumbnails.count) thumbnails, \(String(format: "%.1f", seconds)) s)\n".utf8))
        }
    }
}
