// A job over `pipe:` inputs (shards streamed from an object store's command line): a command that fails is its
// unit's failure alone, the run says which and exits 1 without merging, and running again re-reads the stream,
// skips what was committed and ends with the bytes of a run where the command never failed.
import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

final class PipeRunTests: XCTestCase {
    /// The test scrape's shard streamed by `cat`, and a second shard whose command fails (a reset connection)
    /// after its first four samples unless the file `ok` exists.
    private func pipeCorpus() throws -> TestCorpus {
        let corpus = try TestCorpus.make(batchSize: 2)
        var cut = 0, samples = 0
        let writer = try TarWriter(url: corpus.folder.appendingPathComponent("data/00001.tar"))
        for sample in TestCorpus.samples().prefix(7) {
            for (ext, bytes) in sample.members {
                // Other bytes after the image's end: other images, the same pixels.
                let payload = ["png", "jpg"].contains(ext) ? bytes + [9, 9] : bytes
                try writer.add(name: "t\(sample.key).\(ext)", bytes: payload)
                if samples < 4 { cut += 512 + (payload.count + 511) / 512 * 512 }
            }
            samples += 1
        }
        try writer.finish()
        let failing = "if [ -e ok ]; then cat data/00001.tar; else head -c \(cut + 700) data/00001.tar; "
            + "echo 'curl: (56) Recv failure: Connection reset by peer' >&2; exit 56; fi"
        var spec = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        spec = spec.replacingOccurrences(of: #"paths: ["data/{00000..00000}.tar"]"#,
                                         with: #"paths: ["pipe:cat data/00000.tar", "pipe:\#(failing)"]"#)
        try spec.write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
        return corpus
    }

    func testAFailedCommandFailsItsUnitAndARetryKeepsWhatWasCommitted() throws {
        let corpus = try pipeCorpus()
        defer { corpus.remove() }
        let ok = corpus.folder.appendingPathComponent("ok").path

        // The reference: the commands never fail.
        FileManager.default.createFile(atPath: ok, contents: nil)
        let clean = try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        let expected = try corpus.outputFiles()
        XCTAssertFalse(expected.isEmpty)
        try FileManager.default.removeItem(at: corpus.output)
        try FileManager.default.removeItem(atPath: ok)

        // The second command fails: that unit alone. Exit status 1, which unit, the command's own words, no merge.
        let failed = try runCapfilt(["run", corpus.specPath, "--quiet", "--threads", "1", "--json"])
        XCTAssertEqual(failed.status, 1, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("1 unit failed, so the dataset is not merged: 00001 (pipe:if [ -e ok ]"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("exited with status 56"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("Connection reset by peer"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("run the same command again to retry"), failed.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(failed.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(summary?["outcome"] as? String, "units_failed")
        let failures = summary?["units_failed"] as? [[String: Any]]
        XCTAssertEqual(failures?.map { $0["unit"] as? String }, ["00001"])
        XCTAssertEqual((summary?["units"] as? [String: Any])?["done"] as? Int, 1, "the other unit is done")
        XCTAssertEqual((summary?["units"] as? [String: Any])?["failed"] as? Int, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.output.appendingPathComponent("capfilt_run.json").path))
        let status = try runCapfilt(["status", corpus.output.path])
        XCTAssertTrue(status.stderr.contains("FAILED: pipe:if [ -e ok ]"), status.stderr)

        // Fixed, run again: the stream is read from its start, the samples committed before the failure are
        // skipped, and the dataset is the clean run's, byte for byte. (Three samples came whole before the
        // failure, the fourth was being read; batches are of 2, so the first batch was committed.)
        FileManager.default.createFile(atPath: ok, contents: nil)
        var skipped = 0
        let outcome = try withPipeline(corpus) { pipeline in
            try pipeline.run(stop: StopFlag()) { skipped = max(skipped, $0.skipped) }
        }
        XCTAssertEqual(outcome, .completed)
        XCTAssertEqual(skipped, 2, "the batch committed before the failure is not redone")
        let got = try corpus.outputFiles()
        XCTAssertEqual(Set(got.keys), Set(expected.keys))
        XCTAssertEqual(expected.keys.filter { got[$0] != expected[$0] }.sorted(), [])
        let manifest = String(decoding: got["capfilt_run.json"] ?? Data(), as: UTF8.self)
        XCTAssertTrue(manifest.contains("pipe:cat data/00000.tar"), "sources are named as the spec writes them")
    }

    private func withPipeline<T>(_ corpus: TestCorpus, _ body: (PipelineRun) throws -> T) throws -> T {
        let spec = try PipelineSpec.load(path: corpus.specPath)
        let yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        let pipeline = try PipelineRun(spec: spec, specYAML: yaml, specPath: corpus.specPath, newRun: false)
        defer { pipeline.close() }
        return try body(pipeline)
    }
}
