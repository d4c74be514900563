// `capfilt calibrate RUN`: a threshold for `filter.threshold` from the run's stored ITM scores, by keep fraction
// or by a precision target on labels, with a table of what each threshold would keep.
import ArgumentParser
import CapfiltPipeline
import Foundation

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Choose filter.threshold from a finished run's ITM scores, without running the models.",
        discussion: """
            --keep-fraction F: the threshold that keeps the fraction F of the run's web texts (DataComp's rule: the
            P(match) at rank n·F from the top), and with --synthetic of its synthetic captions too.
            --labels FILE --precision P: the lowest threshold (the most recall) at which the labelled web texts kept
            reach precision P, with the precision and recall it expects. Labels as for `capfilt eval`:
              {"key": "000000042", "web_text_matches": true}
            Either way a table shows, per threshold, how many web texts, synthetic captions and samples would be
            kept. Scores are those of samples the filter judged (not failed, not duplicates) in the merged dataset.
            """)

    @Argument(help: "The run's output folder.")
    var runFolder: String

    @Option(name: .customLong("keep-fraction"), help: "Keep this fraction of web texts, 0 < F ≤ 1.")
    var keepFraction: Double?

    @Flag(help: "With --keep-fraction, also give the threshold that keeps that fraction of synthetic captions.")
    var synthetic = false

    @Option(help: "Ground-truth labels (JSON Lines with key and web_text_matches).")
    var labels: String?

    @Option(help: "With --labels: the precision to reach, 0 < P ≤ 1.")
    var precision: Double?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if let keepFraction, !(keepFraction > 0 && keepFraction <= 1) { throw ValidationError("--keep-fraction must be in (0, 1]") }
        if let precision, !(precision > 0 && precision <= 1) { throw ValidationError("--precision must be in (0, 1]") }
        if (labels == nil) != (precision == nil) { throw ValidationError("--labels and --precision go together") }
        if synthetic && keepFraction == nil { throw ValidationError("--synthetic needs --keep-fraction") }
    }

    func run() throws {
        let pool = try ScorePool.read(runFolder: URL(fileURLWithPath: runFolder))
        var result: [String: JSON] = [
            "run_threshold": .float(pool.runThreshold), "samples_judged": .int(pool.samples.count),
            "web_texts_scored": .int(pool.webScores.count), "synthetic_captions_scored": .int(pool.syntheticScores.count),
        ]
        var lines: [String] = ["\(pool.samples.count) samples judged: \(pool.webScores.count) web texts and \(pool.syntheticScores.count) synthetic captions scored; the run's threshold is \(format(pool.runThreshold))"]
        var extra: [(Float, String)] = []

        if let keepFraction {
            var object: [String: JSON] = ["fraction": .float(Float(keepFraction))]
            for (name, scores, wanted) in [("web", pool.webScores, true), ("synthetic", pool.syntheticScores, synthetic)] where wanted {
                guard let (t, kept) = Calibration.threshold(keeping: keepFraction, of: scores) else {
                    lines.append("keep \(percent(keepFraction)) of \(name) texts: the run has none scored")
                    object[name] = .null
                    continue
                }
                object[name] = .object(["threshold": .float(t), "kept": .int(kept), "of": .int(scores.count)])
                lines.append("keep \(percent(keepFraction)) of \(name == "web" ? "web texts" : "synthetic captions"): threshold \(format(t)) keeps \(kept) of \(scores.count)")
                extra.append((t, "keep-fraction \(name)"))
            }
            result["keep_fraction"] = .object(object)
        }

        if let labels, let precision {
            let (choice, labelled) = try Calibration.choose(precision: precision, pool: pool,
                                                            labels: try Evaluation.loadLabels(path: labels), labelsPath: labels)
            result["precision_target"] = .object([
                "precision": .float(Float(precision)), "threshold": .float(choice.threshold),
                "expected_precision": .float(Float(choice.precision)), "expected_recall": .float(Float(choice.recall)),
                "labelled": .int(labelled), "kept": .int(choice.kept), "kept_matching": .int(choice.keptMatching),
            ])
            lines.append("precision ≥ \(percent(precision)) on \(labelled) labelled web texts: threshold \(format(choice.threshold)), expected precision \(percent(choice.precision)), recall \(percent(choice.recall)) (\(choice.keptMatching) of \(choice.kept) kept match)")
            extra.append((choice.threshold, "precision"))
        }

        let rows = Calibration.table(pool, extra: extra)
        result["table"] = .array(rows.map {
            .object(["threshold": .float($0.threshold), "web_texts_kept": .int($0.webKept),
                     "synthetic_captions_kept": .int($0.syntheticKept), "samples_kept": .int($0.samplesKept),
                     "note": $0.note.map { .string($0) } ?? .null])
        })
        if json {
            print(JSON.object(result).text)
            return
        }
        lines.append("")
        lines.append("threshold  web texts kept  synthetic kept  samples kept")
        for r in rows {
            let cells = [format(r.threshold).padding(9), "\(r.webKept)".padding(14, left: true), "\(r.syntheticKept)".padding(14, left: true),
                         "\(r.samplesKept)".padding(12, left: true)]
            lines.append(cells.joined(separator: "  ") + (r.note.map { "   ← \($0)" } ?? ""))
        }
        lines.append("")
        lines.append("Apply one as filter.threshold in the spec.")
        print(lines.joined(separator: "\n"))
    }

    private func format(_ t: Float) -> String { String(format: "%.4f", t) }
    private func percent(_ v: Double) -> String { String(format: "%.1f%%", 100 * v) }
}

private extension String {
    func padding(_ width: Int, left: Bool = false) -> String {
        let pad = String(repeating: " ", count: max(0, width - count))
        return left ? pad + self : self + pad
    }
}
