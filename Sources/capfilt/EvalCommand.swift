// `capfilt eval RUN --labels FILE`: the run's cleaning quality against ground truth.
import ArgumentParser
import CapfiltPipeline
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a finished run against ground-truth labels.",
        discussion: """
            Labels are JSON Lines keyed by the input's keys (the webdataset key, or the list's key column):
              {"key": "000000042", "web_text_matches": true, "reference_caption": "a red circle on a white background"}
            Either field may be left out. Prints the filter's recall, drop rate and precision on web texts, the share of
            synthetic captions equal to the reference, and the share of correct pairs in the export versus the input.
            """)

    @Argument(help: "The run's output folder.")
    var runFolder: String

    @Option(help: "The labels file (JSON Lines).")
    var labels: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let evaluation = try Evaluation.evaluate(runFolder: URL(fileURLWithPath: runFolder), labels: try Evaluation.loadLabels(path: labels))
        print(json ? evaluation.json.text : evaluation.report)
    }
}
