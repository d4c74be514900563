// `capfilt calibrate`: thresholds from a finished run's stored ITM scores, by keep fraction (DataComp's rank rule)
// and by a precision target on labels, checked by hand on small score sets and against a real run's manifests.
import CapfiltPipeline
import Foundation
import XCTest

final class CalibrationTests: XCTestCase {
    func testKeepFractionIsTheScoreAtRankNF() throws {
        let scores: [Float] = [0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.95]
        XCTAssertEqual(Calibration.threshold(keeping: 0.3, of: scores)?.threshold, 0.8, "the 3rd highest of 10")
        XCTAssertEqual(Calibration.threshold(keeping: 0.3, of: scores)?.kept, 3)
        XCTAssertEqual(Calibration.threshold(keeping: 0.25, of: scores)?.threshold, 0.8, "rank ⌈2.5⌉ = 3")
        XCTAssertEqual(Calibration.threshold(keeping: 1, of: scores)?.threshold, 0.1, "everything")
        XCTAssertEqual(Calibration.threshold(keeping: 0.01, of: scores)?.threshold, 0.95, "at least one")
        // Ties at the threshold are all kept (the filter keeps itm >= threshold).
        let tied: [Float] = [0.9, 0.6, 0.6, 0.6, 0.1]
        XCTAssertEqual(Calibration.threshold(keeping: 0.4, of: tied)?.threshold, 0.6)
        XCTAssertEqual(Calibration.threshold(keeping: 0.4, of: tied)?.kept, 4)
        XCTAssertNil(Calibration.threshold(keeping: 0.5, of: []))
    }

    func testPrecisionTargetTakesTheLowestThresholdThatReachesIt() throws {
        // Scores high to low: T T F T F T F F.
        let labelled: [(score: Float, matches: Bool)] = [(0.95, true), (0.9, true), (0.8, false), (0.7, true),
                                                         (0.6, false), (0.5, true), (0.4, false), (0.3, false)]
        let perfect = try XCTUnwrap(Calibration.threshold(forPrecision: 1, labelled: labelled))
        XCTAssertEqual(perfect.threshold, 0.9)
        XCTAssertEqual(perfect.recall, 0.5, "2 of 4 matching texts")
        let three = try XCTUnwrap(Calibration.threshold(forPrecision: 0.75, labelled: labelled))
        XCTAssertEqual(three.threshold, 0.7, "T T F T: 3/4 = 0.75, recall 3/4")
        XCTAssertEqual(three.precision, 0.75)
        XCTAssertEqual(three.recall, 0.75)
        let lower = try XCTUnwrap(Calibration.threshold(forPrecision: 0.6, labelled: labelled))
        XCTAssertEqual(lower.threshold, 0.5, "4/6 ≥ 0.6 with all the recall")
        XCTAssertEqual(lower.recall, 1)
        XCTAssertNil(Calibration.threshold(forPrecision: 1, labelled: [(0.9, false), (0.5, true)]))
        XCTAssertEqual(Calibration.bestPrecision([(0.9, false), (0.5, true)]), 0.5)
    }

    /// On a real run: the table's counts are the manifests' own (texts at or above each threshold), the run's
    /// threshold reproduces the run's decisions, and the CLI's thresholds keep what they say.
    func testARunsScoresGiveTheTableAndTheThresholds() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        let run = try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        // The manifests, read independently of ScorePool.
        var web: [Float] = [], synthetic: [Float] = [], keptAtRun = 0, judged = 0
        var keys: [String: Float] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus.output.appendingPathComponent("shards").path) where name.hasSuffix(".jsonl") {
            let text = try String(contentsOf: corpus.output.appendingPathComponent("shards/\(name)"), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let row = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                guard ["kept", "filtered"].contains(row["status"] as? String) else { continue }
                judged += 1
                if row["status"] as? String == "kept" { keptAtRun += 1 }
                if row["web_text_scored"] as? Bool == true, let itm = (row["web_text_itm"] as? NSNumber)?.floatValue {
                    web.append(itm)
                    keys[row["source_key"] as? String ?? ""] = itm
                }
                let captions = row["synthetic_captions"] as? [String] ?? []
                for (i, s) in (row["synthetic_itm"] as? [NSNumber] ?? []).enumerated() where !captions[i].isEmpty { synthetic.append(s.floatValue) }
            }
        }
        XCTAssertGreaterThan(web.count, 4)

        let out = try runCapfilt(["calibrate", corpus.output.path, "--keep-fraction", "0.5", "--synthetic", "--json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["samples_judged"] as? Int, judged)
        XCTAssertEqual(result["web_texts_scored"] as? Int, web.count)
        XCTAssertEqual(result["synthetic_captions_scored"] as? Int, synthetic.count)
        let fraction = try XCTUnwrap(result["keep_fraction"] as? [String: Any])
        let webChoice = try XCTUnwrap(fraction["web"] as? [String: Any])
        let t = try XCTUnwrap((webChoice["threshold"] as? NSNumber)?.floatValue)
        XCTAssertEqual(webChoice["kept"] as? Int, web.filter { $0 >= t }.count)
        XCTAssertGreaterThanOrEqual(web.filter { $0 >= t }.count * 2, web.count, "at least half kept")
        XCTAssertNotNil(fraction["synthetic"] as? [String: Any])
        let table = try XCTUnwrap(result["table"] as? [[String: Any]])
        for row in table {
            let threshold = try XCTUnwrap((row["threshold"] as? NSNumber)?.floatValue)
            XCTAssertEqual(row["web_texts_kept"] as? Int, web.filter { $0 >= threshold }.count, "at \(threshold)")
            XCTAssertEqual(row["synthetic_captions_kept"] as? Int, synthetic.filter { $0 >= threshold }.count, "at \(threshold)")
        }
        let atRun = try XCTUnwrap(table.first { $0["note"] as? String == "run" })
        XCTAssertEqual(atRun["samples_kept"] as? Int, keptAtRun, "the run's threshold gives the run's kept samples")

        // Labels: matching = above the median score. Precision 1 then needs exactly those above it.
        let median = web.sorted()[web.count / 2]
        let labels = keys.map { #"{"key": "\#($0.key)", "web_text_matches": \#($0.value >= median)}"# }.joined(separator: "\n")
        let labelsURL = corpus.folder.appendingPathComponent("labels.jsonl")
        try labels.write(to: labelsURL, atomically: true, encoding: .utf8)
        let labelled = try runCapfilt(["calibrate", corpus.output.path, "--labels", labelsURL.path, "--precision", "1", "--json"])
        XCTAssertEqual(labelled.status, 0, labelled.stderr)
        let target = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(labelled.stdout.utf8)) as? [String: Any])?["precision_target"] as? [String: Any])
        XCTAssertEqual((target["threshold"] as? NSNumber)?.floatValue, median)
        XCTAssertEqual((target["expected_recall"] as? NSNumber)?.doubleValue, 1)
        // A text file for people, and a target no threshold reaches is an error that says the best there is.
        let human = try runCapfilt(["calibrate", corpus.output.path, "--keep-fraction", "0.5"])
        XCTAssertTrue(human.stdout.contains("threshold  web texts kept"), human.stdout)
        let inverted = keys.map { #"{"key": "\#($0.key)", "web_text_matches": \#($0.value < median)}"# }.joined(separator: "\n")
        try inverted.write(to: labelsURL, atomically: true, encoding: .utf8)
        let impossible = try runCapfilt(["calibrate", corpus.output.path, "--labels", labelsURL.path, "--precision", "1"])
        XCTAssertEqual(impossible.status, 1)
        XCTAssertTrue(impossible.stderr.contains("no threshold reaches precision 100.0%"), impossible.stderr)
    }
}
