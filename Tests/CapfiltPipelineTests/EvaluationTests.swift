// capfilt eval's figures on hand-built rows whose every count is known.
import CapfiltPipeline
import Foundation
import XCTest

final class EvaluationTests: XCTestCase {
    private func record(_ ordinal: Int, _ sourceKey: String, status: SampleStatus, web: WebTextScore?, problem: String? = nil,
                        captions: [String] = [], main: (String, String)? = nil) -> SampleRecord {
        SampleRecord(ordinal: ordinal, key: String(format: "%09d", ordinal), sourceKey: sourceKey, source: "s", position: "p",
                     webText: web == nil ? nil : "t", webTextProblem: problem, stage: .done, status: status,
                     captions: captions.map { SyntheticCaption(text: $0, tokenIDs: [], itm: 0.9, itc: 0.1, kept: true) },
                     webScore: web, mainCaption: main?.0, mainCaptionSource: main?.1)
    }

    func testFiguresOnAKnownLedger() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let kept = WebTextScore(itm: 0.9, itc: 0.5, kept: true), dropped = WebTextScore(itm: 0.1, itc: 0.1, kept: false)
        let records = [
            // correct web text kept (TP), main = web
            record(0, "a", status: .kept, web: kept, captions: ["a red circle"], main: ("t", "web")),
            // correct web text dropped (FN); synthetic wrong but kept as main
            record(1, "b", status: .kept, web: dropped, captions: ["a blue circle"], main: ("a blue circle", "synthetic")),
            // wrong web text kept (FP)
            record(2, "c", status: .kept, web: kept, captions: ["a green star"], main: ("t", "web")),
            // wrong web text dropped (TN); synthetic right, main = synthetic
            record(3, "d", status: .kept, web: dropped, captions: ["A Green Star."], main: ("A Green Star.", "synthetic")),
            // wrong and unusable (empty), image filtered
            record(4, "e", status: .filtered, web: nil, problem: "empty", captions: ["noise"]),
            // failed image, label present
            record(5, "f", status: .failed, web: nil),
            // no label
            record(6, "g", status: .kept, web: kept, main: ("t", "web")),
        ]
        let labelsURL = folder.appendingPathComponent("labels.jsonl")
        try """
            {"key": "a", "web_text_matches": true, "reference_caption": "a red circle"}
            {"key": "b", "web_text_matches": true, "reference_caption": "a red square"}
            {"key": "c", "web_text_matches": false, "reference_caption": "a green star"}
            {"key": "d", "web_text_matches": false, "reference_caption": "a green star"}
            {"key": "e", "web_text_matches": false, "reference_caption": "a yellow triangle"}
            {"key": "f", "web_text_matches": false}
            """.write(to: labelsURL, atomically: true, encoding: .utf8)
        let e = try Evaluation.evaluate(records: records, labels: try Evaluation.loadLabels(path: labelsURL.path))
        XCTAssertEqual(e.labelled, 6)
        XCTAssertEqual(e.unlabelled, 1)
        XCTAssertEqual([e.webTruePositive, e.webFalseNegative, e.webFalsePositive, e.webTrueNegative, e.webUnusableWrong], [1, 1, 1, 1, 1])
        XCTAssertEqual(e.webRecall, 0.5)
        XCTAssertEqual(e.webDropRate, 0.5)
        XCTAssertEqual(e.syntheticCompared, 5)
        XCTAssertEqual(e.syntheticExact, 3, "a red circle, a green star, A Green Star. (normalized)")
        XCTAssertEqual(e.inputPairs, 6)
        XCTAssertEqual(e.inputCorrect, 2)
        XCTAssertEqual(e.exportedPairs, 4)
        XCTAssertEqual(e.exportedCorrect, 2, "a (web, correct) and d (synthetic, correct)")
        XCTAssertEqual(e.decodable, 5)
        XCTAssertEqual(e.kept, 4)
        XCTAssertTrue(e.report.contains("recall  50.0%"), e.report)
    }

    func testMalformedLabelsNameTheLine() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("labels-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try "{\"key\": \"a\"}\n{\"key\": \"b\", \"web_text_matches\": \"yes\"}\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Evaluation.loadLabels(path: url.path)) { XCTAssertTrue("\($0)".contains("line 2"), "\($0)") }
    }
}
