// The bundled demo, end to end, held to issue 4's quality bar: the filter keeps ≥ 95% of correct web texts and
// drops ≥ 95% of wrong ones, ≥ 90% of synthetic captions equal the true caption, ≥ 97% of exported pairs are
// correct and ≥ 95% of decodable images are kept. Runs Pipelines/demo.yaml (trained demo models, committed
// corpus) into a temporary folder and measures it with the same code as `capfilt eval`.
import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

final class DemoQualityTests: XCTestCase {
    func testDemoMeetsTheQualityBar() throws {
        let specPath = repoRoot.appendingPathComponent("Pipelines/demo.yaml").path
        var spec = try PipelineSpec.load(path: specPath)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        spec.output.folder = output.path
        let pipeline = try PipelineRun(spec: spec, specYAML: try String(contentsOfFile: specPath, encoding: .utf8),
                                       specPath: specPath, newRun: true)
        XCTAssertEqual(try pipeline.run(stop: StopFlag()), .completed)
        let labels = try Evaluation.loadLabels(path: repoRoot.appendingPathComponent("Pipelines/demo/corpus/labels.jsonl").path)
        let e = try Evaluation.evaluate(runFolder: pipeline.outputFolder, labels: labels)
        print("[demo]\n" + e.report)
        XCTAssertEqual(e.unlabelled, 0, "every demo sample has a label")
        XCTAssertGreaterThanOrEqual(e.webRecall ?? 0, 0.95, "correct web texts kept")
        XCTAssertGreaterThanOrEqual(e.webDropRate ?? 0, 0.95, "wrong web texts dropped")
        XCTAssertGreaterThanOrEqual(e.syntheticExactShare ?? 0, 0.90, "synthetic captions equal to the truth")
        XCTAssertGreaterThanOrEqual(e.exportedCorrectShare ?? 0, 0.97, "correct pairs in the export")
        XCTAssertGreaterThanOrEqual(e.keptShareOfDecodable ?? 0, 0.95, "decodable images kept")
        XCTAssertLessThan(e.inputCorrectShare ?? 1, 0.7, "the demo starts from a noisy corpus")

        // The same figure read back from the exported bytes, as a loader sees them: each sample's .txt is its
        // caption; it is correct when it equals the reference caption (compared as `capfilt eval` compares) or is a
        // web text labelled as matching.
        let shards = output.appendingPathComponent("shards")
        var exported = 0, correct = 0
        for tar in try FileManager.default.contentsOfDirectory(atPath: shards.path).filter({ $0.hasSuffix(".tar") }).sorted() {
            let reader = try WebDatasetReader(url: shards.appendingPathComponent(tar))
            while let sample = try reader.nextSample() {
                let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try XCTUnwrap(sample.members["json"]))) as? [String: Any])
                let sourceKey = try XCTUnwrap((meta["source"] as? [String: Any])?["key"] as? String)
                let text = String(decoding: try XCTUnwrap(sample.members["txt"]), as: UTF8.self)
                let label = try XCTUnwrap(labels[sourceKey], "exported sample \(sourceKey) has a label")
                let web = (meta["web_text"] as? [String: Any])?["text"] as? String
                exported += 1
                if Evaluation.normalize(text) == label.referenceCaption.map(Evaluation.normalize) || (text == web && label.webTextMatches == true) {
                    correct += 1
                }
            }
        }
        XCTAssertEqual(exported, e.kept, "every kept sample is in the export once")
        XCTAssertGreaterThanOrEqual(Double(correct) / Double(max(exported, 1)), 0.97, "correct pairs in the exported shards")
    }
}
