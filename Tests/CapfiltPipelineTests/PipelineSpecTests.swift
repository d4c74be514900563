// Pipeline specs: the shipped one parses, defaults follow the paper, and every invalid field is refused with
// a message naming it.
import CapfiltPipeline
import Foundation
import XCTest

final class PipelineSpecTests: XCTestCase {
    let minimal = """
        input: {kind: jsonl, paths: [list.jsonl]}
        output: {folder: out}
        captioner: {model: cap}
        filter: {model: itm}
        """

    func testShippedSpecParsesWithThePapersDefaults() throws {
        let spec = try PipelineSpec.load(path: repoRoot.appendingPathComponent("Pipelines/capfilt-base.yaml").path)
        XCTAssertEqual(spec.captioner.decoding, .nucleus)
        XCTAssertEqual(spec.captioner.topP, 0.9)
        XCTAssertEqual(spec.captioner.captionsPerImage, 1)
        XCTAssertEqual(spec.filter.threshold, 0.5)
        XCTAssertEqual(spec.input.kind, .webdataset)
        XCTAssertTrue(spec.generationOptions.doSample)
    }

    /// Every spec shipped in Pipelines/ parses; the bf16 demo differs from the demo only in its precisions and
    /// output folder.
    func testEveryShippedSpecParses() throws {
        let folder = repoRoot.appendingPathComponent("Pipelines")
        let specs = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(specs.contains("demo-bf16.yaml"), "\(specs)")
        for name in specs { XCTAssertNoThrow(try PipelineSpec.load(path: folder.appendingPathComponent(name).path), name) }
        let demo = try PipelineSpec.load(path: folder.appendingPathComponent("demo.yaml").path)
        var bf16 = try PipelineSpec.load(path: folder.appendingPathComponent("demo-bf16.yaml").path)
        XCTAssertEqual([bf16.captioner.precision, bf16.filter.precision], [.bf16, .bf16])
        bf16.captioner.precision = .fp32; bf16.filter.precision = .fp32; bf16.output = demo.output
        XCTAssertEqual(bf16, demo)
    }

    func testMinimalSpecTakesDefaults() throws {
        let spec = try PipelineSpec(yaml: minimal, path: "/tmp/x/spec.yaml")
        XCTAssertEqual(spec.output.samplesPerShard, 10_000)
        XCTAssertEqual(spec.captioner.prompt, "a picture of")
        XCTAssertEqual(spec.filter.mainCaption, .webFirst)
        XCTAssertEqual(spec.duplicates, .drop)
        XCTAssertEqual(spec.resolve("out").path, "/tmp/x/out")
    }

    func testInvalidFieldsAreNamed() {
        let cases: [(String, String)] = [
            (minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, topp: 0.9}"), "captioner.topp"),
            (minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, top_p: 1.5}"), "captioner.top_p"),
            (minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, decoding: sampling}"), "captioner.decoding"),
            (minimal.replacingOccurrences(of: "kind: jsonl", with: "kind: arrow"), "use one of webdataset, jsonl, csv, tsv, folder, parquet"),
            (minimal.replacingOccurrences(of: "output: {folder: out}", with: "output: {folder: out, samples_per_shard: 0}"), "output.samples_per_shard"),
            (minimal.replacingOccurrences(of: "filter: {model: itm}", with: "filter: {model: itm, threshold: high}"), "filter.threshold"),
            (minimal.replacingOccurrences(of: "filter: {model: itm}", with: "filter: {}"), "filter.model"),
            (minimal + "\nduplicates: maybe", "duplicates"),
            (minimal + "\nversion: 2", "version"),
            ("input: [1, 2", "not valid YAML"),
            // A repeated key is refused: YAML parsers keep the last one without a word.
            (minimal.replacingOccurrences(of: "filter: {model: itm}", with: "filter: {model: itm, threshold: 0.3, threshold: 0.9}"), "filter.threshold appears twice"),
            (minimal + "\nduplicates: keep\nduplicates: drop", "duplicates appears twice"),
            (minimal.replacingOccurrences(of: "kind: jsonl", with: "kind: jsonl, root: imgs, allow_any_path: true"), "input.allow_any_path"),
            ("", "empty"),
            (minimal.replacingOccurrences(of: "output: {folder: out}", with: "output: {folder: out, additional_columns: [url]}"),
             "output.additional_columns has \"url\", which the manifests already have"),
            (minimal.replacingOccurrences(of: "output: {folder: out}", with: "output: {folder: out, additional_columns: [a.b]}"),
             "output.additional_columns has \"a.b\""),
            (minimal.replacingOccurrences(of: "output: {folder: out}", with: "output: {folder: out, additional_columns: [x, x]}"),
             "output.additional_columns names a column twice"),
        ]
        for (yaml, needle) in cases {
            XCTAssertThrowsError(try PipelineSpec(yaml: yaml, path: "spec.yaml"), needle) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(error) should name \(needle)")
            }
        }
        XCTAssertThrowsError(try PipelineSpec(yaml: minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, topp: 0.9}"), path: "s")) {
            XCTAssertTrue("\($0)".contains("did you mean captioner.top_p"), "\($0)")
        }
    }

    /// limits.max_image_bytes above the tar reader's default member cap is honoured for shard members too.
    func testImageByteLimitAppliesToShardMembers() throws {
        let big = try PipelineSpec(yaml: minimal + "\nlimits: {max_image_bytes: 209715200}", path: "spec.yaml")
        XCTAssertEqual(big.maxMemberBytes, 200 << 20)
        let small = try PipelineSpec(yaml: minimal + "\nlimits: {max_image_bytes: 1000}", path: "spec.yaml")
        XCTAssertEqual(small.maxMemberBytes, 16 << 20, "captions and metadata members still fit")
    }

    func testFingerprintChangesWithEverySetting() throws {
        let base = try PipelineSpec(yaml: minimal, path: "/a/spec.yaml")
        let moved = try PipelineSpec(yaml: minimal, path: "/b/spec.yaml")
        XCTAssertEqual(base.fingerprint, moved.fingerprint, "moving the spec file keeps the run")
        for change in ["captioner: {model: cap, seed: 1}", "captioner: {model: cap, batch_size: 4}", "captioner: {model: cap, prompt: \"\"}"] {
            let other = try PipelineSpec(yaml: minimal.replacingOccurrences(of: "captioner: {model: cap}", with: change), path: "/a/spec.yaml")
            XCTAssertNotEqual(base.fingerprint, other.fingerprint, change)
        }
        let columns = try PipelineSpec(yaml: minimal.replacingOccurrences(of: "output: {folder: out}", with: "output: {folder: out, additional_columns: [similarity]}"),
                                       path: "/a/spec.yaml")
        XCTAssertEqual(columns.output.additionalColumns, ["similarity"])
        XCTAssertNotEqual(base.fingerprint, columns.fingerprint, "additional columns change the manifests")
    }

    /// captioner.precision / filter.precision: fp32 by default (an older run's fingerprint is unchanged), bf16
    /// and int8 change the run, unknown names are refused with what to use instead.
    func testPrecisionPerModel() throws {
        let base = try PipelineSpec(yaml: minimal, path: "/a/spec.yaml")
        XCTAssertEqual(base.captioner.precision, .fp32)
        XCTAssertEqual(base.filter.precision, .fp32)
        let explicit = try PipelineSpec(yaml: minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, precision: fp32}"), path: "/a/spec.yaml")
        XCTAssertEqual(base.fingerprint, explicit.fingerprint, "fp32 written out is the default")
        let int8 = try PipelineSpec(yaml: minimal.replacingOccurrences(of: "filter: {model: itm}", with: "filter: {model: itm, precision: int8}"), path: "/a/spec.yaml")
        XCTAssertEqual(int8.filter.precision, .int8)
        XCTAssertEqual(int8.captioner.precision, .fp32)
        XCTAssertNotEqual(base.fingerprint, int8.fingerprint, "int8 gives other scores: another run")
        let bf16 = try PipelineSpec(yaml: minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, precision: bf16}"), path: "/a/spec.yaml")
        XCTAssertEqual(bf16.captioner.precision, .bf16)
        XCTAssertEqual(Set([base.fingerprint, int8.fingerprint, bf16.fingerprint]).count, 3, "three precisions, three runs")
        for (value, needle) in [("fp16", "use fp32 (exact), bf16 or int8"), ("BF16", "use fp32 (exact), bf16 or int8")] {
            XCTAssertThrowsError(try PipelineSpec(yaml: minimal.replacingOccurrences(of: "captioner: {model: cap}", with: "captioner: {model: cap, precision: \(value)}"), path: "s")) {
                XCTAssertTrue("\($0)".contains("captioner.precision") && "\($0)".contains(needle), "\($0)")
            }
        }
    }
}
