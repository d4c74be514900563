// Re-filtering without the models: a spec that changes only decisions (the threshold, the main caption rule,
// the sharding) re-decides a finished run from its stored captions and scores, in the same folder or into
// another, byte-identical to a fresh run with the new spec; a change that needs the models names the field.
import CapfiltPipeline
import Foundation
import XCTest

final class RefilterTests: XCTestCase {
    private func write(_ text: String, _ corpus: TestCorpus) throws {
        try text.write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
    }

    /// The original spec, and one with another threshold, main caption rule and shard size.
    private func specs(_ corpus: TestCorpus) throws -> (original: String, decisions: String) {
        let original = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        XCTAssertTrue(original.contains("  threshold: 0.5\n") && original.contains("  samples_per_shard: 4\n"))
        let decisions = original.replacingOccurrences(of: "  threshold: 0.5\n", with: "  threshold: 0.7\n  main_caption: best_itm\n")
            .replacingOccurrences(of: "  samples_per_shard: 4\n", with: "  samples_per_shard: 3\n")
        return (original, decisions)
    }

    private func run(_ corpus: TestCorpus, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCapfilt(["run", corpus.specPath, "--threads", "1"] + extra)
    }

    func testAChangedThresholdReDecidesFromTheStoredScores() throws {
        let corpus = try TestCorpus.make(batchSize: 2)
        defer { corpus.remove() }
        let (original, decisions) = try specs(corpus)

        // What a fresh run with the new decisions writes.
        try write(decisions, corpus)
        let fresh = try run(corpus, ["--quiet"])
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        let expected = try corpus.outputFiles()
        try FileManager.default.removeItem(at: corpus.output)

        // The original run, then the new spec on its folder: no model work, the fresh run's bytes.
        try write(original, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        let before = try corpus.outputFiles()
        XCTAssertNotEqual(before, expected, "the decisions change the dataset")
        try write(decisions, corpus)
        var last: RunProgress?
        var logs: [String] = []
        let spec = try PipelineSpec.load(path: corpus.specPath)
        let pipeline = try PipelineRun(spec: spec, specYAML: decisions, specPath: corpus.specPath, newRun: false,
                                       log: { logs.append($0) })
        let outcome = try pipeline.run(stop: StopFlag()) { last = $0 }
        pipeline.close()
        XCTAssertEqual(outcome, .completed)
        let progress = try XCTUnwrap(last)
        XCTAssertEqual(progress.captioned, 0, "the models captioned nothing")
        XCTAssertGreaterThan(progress.reused, 10)
        XCTAssertEqual(progress.reused, progress.kept + progress.filtered, "every judged sample took its stored scores")
        XCTAssertTrue(logs.contains { $0.contains("the spec changes only output.samples_per_shard, filter.threshold, filter.main_caption") }, "\(logs)")
        XCTAssertTrue(logs.contains { $0.contains("re-used stored captions and scores for \(progress.reused) samples; the models captioned 0") }, "\(logs)")
        let got = try corpus.outputFiles()
        XCTAssertEqual(Set(got.keys), Set(expected.keys))
        XCTAssertEqual(expected.keys.filter { got[$0] != expected[$0] }.sorted(), [], "byte-identical to the fresh run")
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.output.appendingPathComponent(PipelineRun.storedRunName).path),
                       "the store goes once the dataset is whole")

        // Back to the original decisions: the same again, from the re-filtered run's own units.
        try write(original, corpus)
        let back = try run(corpus)
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertTrue(back.stderr.contains("the models captioned 0"), back.stderr)
        XCTAssertEqual(try corpus.outputFiles(), before)
    }

    /// SIGKILLed while the store is made, in the middle of the re-decided units and while merging, and started
    /// again each time: still no model work and a fresh run's bytes.
    func testARefilterKilledAnywhereResumes() throws {
        let corpus = try TestCorpus.make(batchSize: 2, blockSize: 10_000)
        defer { corpus.remove() }
        let (original, decisions) = try specs(corpus)
        try write(decisions, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        let expected = try corpus.outputFiles()
        try FileManager.default.removeItem(at: corpus.output)
        try write(original, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        try write(decisions, corpus)
        for point in ["refilter-outputs-removed#1", "refilter-units-stored#1", "after-filter-commit#3", "export-tar-renamed#1"] {
            let killed = try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"], environment: ["CAPFILT_KILL_AT": point])
            XCTAssertEqual(killed.status, 9, "\(point): killed (\(killed.stderr))")
        }
        let last = try run(corpus)
        XCTAssertEqual(last.status, 0, last.stderr)
        XCTAssertTrue(last.stderr.contains("the models captioned 0"), last.stderr)
        XCTAssertEqual(try corpus.outputFiles(), expected)
    }

    /// duplicates: drop never captioned the duplicates that `keep` needs: the batches holding them run the models
    /// (whole, as a fresh run's batches), the others re-use, and the bytes are still a fresh run's.
    func testKeepingDuplicatesRunsTheModelsOnlyWhereNothingIsStored() throws {
        let corpus = try TestCorpus.make(batchSize: 2)
        defer { corpus.remove() }
        let original = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        let keep = original.replacingOccurrences(of: "duplicates: drop", with: "duplicates: keep")
        XCTAssertNotEqual(keep, original)
        try write(keep, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        let expected = try corpus.outputFiles()
        try FileManager.default.removeItem(at: corpus.output)
        try write(original, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        try write(keep, corpus)
        let refiltered = try run(corpus)
        XCTAssertEqual(refiltered.status, 0, refiltered.stderr)
        let line = refiltered.stderr.split(separator: "\n").first { $0.contains("re-used stored captions and scores for") } ?? ""
        XCTAssertFalse(line.contains("the models captioned 0"), String(line))
        XCTAssertFalse(line.contains("for 0 samples"), String(line))
        XCTAssertEqual(try corpus.outputFiles(), expected)
    }

    func testAnotherFolderKeepsTheOriginalAndAModelChangeNamesTheField() throws {
        let corpus = try TestCorpus.make(batchSize: 2)
        defer { corpus.remove() }
        let (original, decisions) = try specs(corpus)
        let other = corpus.folder.appendingPathComponent("out-0.7")
        try write(decisions, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet", "--output", other.path]).status, 0)
        let expected = try corpus.outputFiles(of: other)
        try FileManager.default.removeItem(at: other)

        try write(original, corpus)
        XCTAssertEqual(try run(corpus, ["--quiet"]).status, 0)
        let before = try corpus.outputFiles()
        try write(decisions, corpus)
        let refiltered = try run(corpus, ["--output", other.path])
        XCTAssertEqual(refiltered.status, 0, refiltered.stderr)
        XCTAssertTrue(refiltered.stderr.contains("re-using the captions and scores of \(corpus.output.path)"), refiltered.stderr)
        XCTAssertTrue(refiltered.stderr.contains("the models captioned 0"), refiltered.stderr)
        XCTAssertEqual(try corpus.outputFiles(of: other), expected, "byte-identical to a fresh run into that folder")
        XCTAssertEqual(try corpus.outputFiles(), before, "the original run is left as it was")

        // Captions would change: the models must run, and the message says which field forced it.
        try write(decisions.replacingOccurrences(of: "  max_new_tokens: 8\n", with: "  max_new_tokens: 6\n"), corpus)
        let refused = try run(corpus, ["--quiet"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("captioner.max_new_tokens changed, and that changes captions or scores"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--new-run"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("output.samples_per_shard, filter.threshold, filter.main_caption alone would re-use"), refused.stderr)
        XCTAssertEqual(try corpus.outputFiles(), before, "a refused start changes nothing")
    }
}
