// The CapFilt job end to end with the tiny fixture models: every input sample accounted for exactly once,
// every bad input a status and a reason, shards that tar and webdataset read, resume and re-export giving
// the same bytes.
import CapfiltDigest
import CapfiltImage
import CapfiltParquet
import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

final class PipelineTests: XCTestCase {
    private func run(_ corpus: TestCorpus, newRun: Bool = false, stopAfterBatches: Int? = nil) throws -> RunOutcome {
        try CapfiltPipelineSpecLoader.load(corpus).run(newRun: newRun, stopAfterBatches: stopAfterBatches)
    }

    private func ledgerRows(_ corpus: TestCorpus) throws -> [SampleRecord] {
        let rows = try Merge.unitRecords(folder: corpus.output)
        return rows
    }

    /// Every input sample has exactly one ledger row, with the expected status and reason.
    private func checkLedger(_ corpus: TestCorpus) throws {
        let rows = try ledgerRows(corpus)
        XCTAssertEqual(rows.map(\.ordinal), Array(0..<corpus.expectations.count), "one row per input sample, in order")
        XCTAssertEqual(Set(rows.map(\.key)).count, rows.count, "keys are unique")
        for (row, expected) in zip(rows, corpus.expectations) {
            XCTAssertEqual(row.sourceKey, expected.sourceKey)
            XCTAssertEqual(row.stage, .done, row.key)
            XCTAssertFalse(row.key.contains("."), "keys have no dots")
            if let failure = expected.failure {
                XCTAssertEqual(row.reason, failure, "\(expected.sourceKey): \(row.detail ?? "")")
                XCTAssertTrue([.failed, .duplicate].contains(row.status), expected.sourceKey)
                XCTAssertTrue(row.captions.isEmpty, "\(expected.sourceKey) must not be captioned")
            } else {
                XCTAssertTrue([.kept, .filtered].contains(row.status), "\(expected.sourceKey): \(row.status) \(row.reason ?? "") \(row.detail ?? "")")
                XCTAssertEqual(row.captions.count, 1, expected.sourceKey)
                XCTAssertNotNil(row.captions.first?.itm, "synthetic caption scored")
                if row.status == .kept { XCTAssertNotNil(row.mainCaption) }
            }
            XCTAssertEqual(row.webTextProblem, expected.webTextProblem, expected.sourceKey)
            if expected.webTextProblem == nil && expected.failure == nil { XCTAssertNotNil(row.webScore, "web text scored: \(expected.sourceKey)") }
        }
    }

    /// The shards: tar members per sample, stats last, manifests covering every input sample once.
    private func checkShards(_ corpus: TestCorpus) throws {
        let rows = try ledgerRows(corpus)
        let kept = rows.filter { $0.status == .kept }
        let shardFolder = corpus.output.appendingPathComponent("shards")
        let names = try FileManager.default.contentsOfDirectory(atPath: shardFolder.path).sorted()
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "no temporary files left: \(names)")
        let tars = names.filter { $0.hasSuffix(".tar") }
        XCTAssertEqual(tars.count, max(1, (kept.count + 3) / 4), "4 kept samples per shard")
        var exportedKeys: [String] = [], manifestKeys: [String] = []
        for (i, tar) in tars.enumerated() {
            let reader = try WebDatasetReader(url: shardFolder.appendingPathComponent(tar))
            var count = 0
            while let sample = try reader.nextSample() {
                count += 1
                exportedKeys.append(sample.key)
                XCTAssertEqual(Set(sample.members.keys).subtracting(["jpg", "png", "webp"]), ["json", "txt"], sample.key)
                XCTAssertEqual(sample.members.count, 3, sample.key)
                let json = try JSONSerialization.jsonObject(with: Data(sample.members["json"] ?? [])) as? [String: Any]
                XCTAssertEqual(json?["key"] as? String, sample.key)
                XCTAssertEqual(json?["main_caption"] as? String, String(decoding: sample.members["txt"] ?? [], as: UTF8.self))
                XCTAssertTrue(sample.problems.isEmpty)
            }
            XCTAssertEqual(count, i < tars.count - 1 ? 4 : kept.count - 4 * (tars.count - 1), tar)
            let base = String(tar.dropLast(4))
            let manifest = try String(contentsOf: shardFolder.appendingPathComponent(base + ".jsonl"), encoding: .utf8)
            for line in manifest.split(separator: "\n") {
                let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                manifestKeys.append(row?["key"] as? String ?? "")
            }
            let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: shardFolder.appendingPathComponent(base + "_stats.json"))) as? [String: Any]
            XCTAssertEqual(stats?["kept"] as? Int, count)
            XCTAssertEqual(stats?["schema_version"] as? Int, outputSchemaVersion)
        }
        XCTAssertEqual(exportedKeys, kept.map(\.key), "every kept sample exported once, in input order")
        XCTAssertEqual(manifestKeys, rows.map(\.key), "every input sample in exactly one manifest line")
        let runManifest = try JSONSerialization.jsonObject(with: Data(contentsOf: corpus.output.appendingPathComponent("capfilt_run.json"))) as? [String: Any]
        let listed = runManifest?["shards"] as? [[String: Any]] ?? []
        XCTAssertEqual(listed.map { $0["tar"] as? String }, tars)
        for shard in listed {
            let data = try Data(contentsOf: shardFolder.appendingPathComponent(shard["tar"] as? String ?? ""))
            XCTAssertEqual(shard["bytes"] as? Int, data.count)
        }
    }

    func testWebDatasetEndToEnd() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        try checkLedger(corpus)
        try checkShards(corpus)
        let rows = try ledgerRows(corpus)
        XCTAssertGreaterThan(rows.filter { $0.status == .kept }.count, 0, "the tiny filter keeps some samples")
    }

    func testJSONLListEndToEnd() throws {
        let corpus = try TestCorpus.make(kind: "jsonl")
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        let rows = try ledgerRows(corpus)
        // The list has no sample without an image member ("noimage" has no image file to list), and ends with a
        // line whose image file does not exist.
        let expected = corpus.expectations.filter { $0.sourceKey != "noimage" }
            + [Expectation(sourceKey: "gone", failure: "image_missing", webTextProblem: nil)]
        XCTAssertEqual(rows.map(\.sourceKey), expected.map(\.sourceKey))
        for (row, e) in zip(rows, expected) where e.failure != nil {
            XCTAssertEqual(row.reason, e.failure, e.sourceKey)
        }
        try checkShards(corpus)
    }

    /// What the input says about each sample reaches the outputs: img2dataset's `KEY.json` fields (url, original
    /// sizes, exif, its sha256) and list columns, in the JSONL and Parquet manifests and in each `KEY.json`, with
    /// the spec's `output.additional_columns` copied as text ("" or null where the input lacks one).
    func testInputFieldsReachTheManifests() throws {
        let shard = try TestCorpus.make(), list = try TestCorpus.make(kind: "jsonl")
        defer { shard.remove(); list.remove() }
        // img2dataset's KEY.json for every sample of the shard (in place of the scrape's own).
        let tar = shard.folder.appendingPathComponent("data/00000.tar")
        let reader = try WebDatasetReader(url: tar)
        var samples: [WebDatasetSample] = []
        while let sample = try reader.nextSample() { samples.append(sample) }
        let writer = try TarWriter(url: tar)
        // Per key (the scrape repeats a key): a made-up img2dataset hash and original width.
        func hash(_ key: String) -> String { String(repeating: String(key.count % 10), count: 64) }
        func width(_ key: String) -> Int { 1000 + key.unicodeScalars.reduce(0) { $0 + Int($1.value) } }
        for sample in samples {
            for ext in sample.members.keys.sorted() where ext != "json" { try writer.add(name: "\(sample.key).\(ext)", bytes: sample.members[ext] ?? []) }
            let json = #"{"url": "https://example.com/\#(sample.key).jpg", "original_width": \#(width(sample.key)), "original_height": 700, "#
                + #""exif": "{\"Image Make\": \"Acme\"}", "sha256": "\#(hash(sample.key))", "similarity": 0.31, "status": "success"}"#
            try writer.add(name: "\(sample.key).json", bytes: Array(json.utf8))
        }
        try writer.finish()
        // A list with a url and an extra column.
        let listURL = list.folder.appendingPathComponent("list.jsonl")
        let lines = try String(contentsOf: listURL, encoding: .utf8).split(separator: "\n").map { line in
            line.replacingOccurrences(of: #"{"key": ""#, with: #"{"similarity": 0.5, "url": "https://example.org/x", "key": ""#)
        }
        try (lines.joined(separator: "\n") + "\n").write(to: listURL, atomically: true, encoding: .utf8)
        for corpus in [shard, list] {
            let yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
            try yaml.replacingOccurrences(of: "  samples_per_shard: 4", with: "  samples_per_shard: 4\n  additional_columns: [similarity, license]")
                .write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
            XCTAssertEqual(try run(corpus), .completed)
        }

        let shards = shard.output.appendingPathComponent("shards")
        let inputKeys = Set(samples.map(\.key))
        var rows = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: shards.path).sorted() where name.hasSuffix(".jsonl") {
            for line in try String(contentsOf: shards.appendingPathComponent(name), encoding: .utf8).split(separator: "\n") {
                let row = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let key = try XCTUnwrap(row["source_key"] as? String)
                guard inputKeys.contains(key) else { continue }
                XCTAssertEqual(row["url"] as? String, "https://example.com/\(key).jpg")
                XCTAssertEqual(row["original_width"] as? Int, width(key), key)
                XCTAssertEqual(row["original_height"] as? Int, 700, key)
                XCTAssertEqual(row["exif"] as? String, #"{"Image Make": "Acme"}"#)
                XCTAssertEqual(row["sha256"] as? String, hash(key), "img2dataset's hash is kept")
                XCTAssertEqual(row["similarity"] as? String, "0.31")
                XCTAssertEqual(row["license"] as? String, "", "a column the input lacks is empty")
                if row["status"] as? String == "kept" {
                    XCTAssertNotEqual(row["image_sha256"] as? String, hash(key), "image_sha256 is ours")
                }
                rows += 1
            }
        }
        XCTAssertEqual(rows, samples.count)
        // KEY.json has them too; the Parquet manifest has the input's nulls as nulls.
        let kept = try WebDatasetReader(url: shards.appendingPathComponent("00000.tar"))
        let first = try XCTUnwrap(try kept.nextSample())
        let sample = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.members["json"] ?? [])) as? [String: Any])
        XCTAssertEqual(sample["url"] as? String, "https://example.com/\(sample["source"].flatMap { ($0 as? [String: Any])?["key"] as? String } ?? "").jpg")
        XCTAssertEqual(sample["similarity"] as? String, "0.31")
        let parquet = try ParquetFile(path: shards.appendingPathComponent("00000.parquet").path)
        let columns = try parquet.readRowGroup(0, columns: ["url", "similarity", "license"])
        XCTAssertEqual(columns["similarity"]?.string(at: 0), "0.31")
        XCTAssertEqual(columns["license"]?.row(0), .null)

        let listRows = try String(contentsOf: list.output.appendingPathComponent("shards/00000.jsonl"), encoding: .utf8).split(separator: "\n")
        let listRow = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listRows[0].utf8)) as? [String: Any])
        XCTAssertEqual(listRow["url"] as? String, "https://example.org/x", "a list's url column")
        XCTAssertEqual(listRow["similarity"] as? String, "0.5")
        XCTAssertEqual(listRow["original_width"] as? Int, listRow["width"] as? Int, "no original size in the input: the decoded one")
    }

    /// output.image_format: every image member of a mixed JPEG/PNG scrape comes out as one format; images already
    /// in it keep their bytes, the others are re-encoded with the same size; KEY.json says the member's format.
    func testImageFormatGivesOneExtensionPerShard() throws {
        for (setting, format, ext) in [("jpg", ImageFormat.jpeg, "jpg"), ("webp", .webp, "webp")] {
            let corpus = try TestCorpus.make()
            defer { corpus.remove() }
            let yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
            try yaml.replacingOccurrences(of: "  samples_per_shard: 4", with: "  samples_per_shard: 4\n  image_format: \(setting)")
                .write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
            XCTAssertEqual(try run(corpus), .completed)
            let records = Dictionary(try ledgerRows(corpus).map { ($0.imageSHA256 ?? "", $0) }) { a, _ in a }
            var members = 0, reencoded = 0
            let shards = corpus.output.appendingPathComponent("shards")
            for name in try FileManager.default.contentsOfDirectory(atPath: shards.path).sorted() where name.hasSuffix(".tar") {
                let reader = try WebDatasetReader(url: shards.appendingPathComponent(name))
                while let sample = try reader.nextSample() {
                    let images = sample.members.keys.filter { !["json", "txt"].contains($0) }
                    XCTAssertEqual(images, [ext], "\(setting): \(sample.key) has \(images)")
                    let bytes = try XCTUnwrap(sample.members[ext])
                    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(sample.members["json"] ?? [])) as? [String: Any])
                    XCTAssertEqual(json["image_format"] as? String, ext)
                    XCTAssertEqual(ImageDecoder.sniff(bytes), format)
                    let decoded = try ImageDecoder.decodeRGB(bytes)
                    XCTAssertEqual([decoded.width, decoded.height], [json["width"] as? Int, json["height"] as? Int])
                    let original = try XCTUnwrap(records[json["image_sha256"] as? String ?? ""])
                    if original.imageFormat == format.rawValue {
                        XCTAssertEqual(SHA256.hex(SHA256.hash(bytes)), original.imageSHA256, "an image already in the format keeps its bytes")
                    } else {
                        reencoded += 1
                    }
                    members += 1
                }
            }
            XCTAssertGreaterThan(members, 0)
            XCTAssertGreaterThan(reencoded, 0, "\(setting): the scrape has images of another format")
        }
    }

    /// The scrape as a Hugging Face Parquet dataset gives, sample for sample, what the webdataset shard gives
    /// (one unit each, so the same batches and seeds); with block_size 4 its units are runs of whole row groups
    /// (3 rows each here: one row group a unit, as two would pass 4 rows).
    func testParquetEndToEndMatchesTheShard() throws {
        let shard = try TestCorpus.make()
        let table = try TestCorpus.make(kind: "parquet")
        let blocks = try TestCorpus.make(kind: "parquet", blockSize: 4)
        defer { shard.remove(); table.remove(); blocks.remove() }
        XCTAssertEqual(try run(shard), .completed)
        XCTAssertEqual(try run(table), .completed)
        XCTAssertEqual(try run(blocks), .completed)
        let plan = try JobPlan.open(folder: blocks.output)
        let n = shard.expectations.count
        XCTAssertEqual(plan.units.map(\.first), Array(stride(from: 0, to: n, by: 3)), "one row group a unit")
        XCTAssertEqual(plan.units.compactMap(\.count), stride(from: 0, to: n, by: 3).map { min(3, n - $0) })
        XCTAssertEqual(try ledgerRows(blocks).map(\.sourceKey), shard.expectations.map(\.sourceKey))
        XCTAssertEqual(try JobPlan.open(folder: table.output).units.count, 1)
        let a = try ledgerRows(shard), b = try ledgerRows(table)
        XCTAssertEqual(b.map(\.sourceKey), a.map(\.sourceKey))
        for (row, (x, y)) in zip(a, b).enumerated() {
            XCTAssertEqual(y.position, "row \(row)")
            // Parquet text is UTF-8 by definition: the shard's Latin-1 caption went in with U+FFFD replacements.
            if x.sourceKey == "latin1" { continue }
            XCTAssertEqual(y.status, x.status, x.sourceKey)
            XCTAssertEqual(y.reason, x.reason, x.sourceKey)
            XCTAssertEqual(y.webText, x.webText, x.sourceKey)
            XCTAssertEqual(y.captions.map(\.text), x.captions.map(\.text), x.sourceKey)
            XCTAssertEqual(y.webScore, x.webScore, x.sourceKey)
            XCTAssertEqual(y.mainCaption, x.mainCaption, x.sourceKey)
        }
        XCTAssertGreaterThan(b.filter { $0.status == .kept }.count, 0)
    }

    /// Stopped after each of several batches and resumed: the same bytes as one uninterrupted run.
    func testResumeAfterStopIsByteIdentical() throws {
        let reference = try TestCorpus.make()
        defer { reference.remove() }
        XCTAssertEqual(try run(reference), .completed)
        let expected = try reference.outputFiles()

        let resumed = try TestCorpus.make()
        defer { resumed.remove() }
        var attempts = 0
        while try run(resumed, stopAfterBatches: 2) == .interrupted { attempts += 1 }
        XCTAssertGreaterThan(attempts, 2, "the run was really interrupted several times")
        let got = try resumed.outputFiles()
        XCTAssertEqual(got.keys.sorted(), expected.keys.sorted())
        for (name, bytes) in expected {
            XCTAssertEqual(got[name], bytes, "\(name) differs after resume")
        }
        try checkLedger(resumed)
    }

    func testExportAgainReproducesTheSameBytes() throws {
        let corpus = try TestCorpus.make(decoding: "beam")
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        let first = try corpus.outputFiles()
        try FileManager.default.removeItem(at: corpus.output.appendingPathComponent("shards"))
        try FileManager.default.removeItem(at: corpus.output.appendingPathComponent("capfilt_run.json"))
        XCTAssertTrue(try Merge(folder: corpus.output).merge(stop: StopFlag()))
        XCTAssertEqual(try corpus.outputFiles(), first)
    }

    /// duplicates: keep — a repeated image is exported with its own web text and the first occurrence's
    /// captions, without being captioned again.
    func testDuplicatesKeptReuseTheFirstCaptions() throws {
        let corpus = try TestCorpus.make(duplicates: "keep")
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        let rows = try ledgerRows(corpus)
        let duplicates = rows.filter { $0.duplicateOf != nil }
        XCTAssertEqual(duplicates.map(\.sourceKey), ["spaces", "latin1"])
        for d in duplicates {
            let first = try XCTUnwrap(rows.first { $0.ordinal == d.duplicateOf })
            XCTAssertTrue([.kept, .filtered].contains(d.status), d.sourceKey)
            XCTAssertEqual(d.captions.map(\.text), first.captions.map(\.text), "captions reused, not regenerated")
            XCTAssertEqual(d.captions.map(\.tokenIDs), first.captions.map(\.tokenIDs))
            XCTAssertNotNil(d.captions.first?.itm, "the duplicate's texts are still scored")
        }
    }

    /// A shard closes before its samples pass max_shard_bytes, whatever samples_per_shard says.
    func testByteCapSplitsShards() throws {
        let corpus = try TestCorpus.make(samplesPerShard: 1000, maxShardBytes: 20_000)
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        let shards = corpus.output.appendingPathComponent("shards")
        let tars = try FileManager.default.contentsOfDirectory(atPath: shards.path).filter { $0.hasSuffix(".tar") }.sorted()
        XCTAssertGreaterThan(tars.count, 1, "the byte cap split the output")
        var exported = 0
        for tar in tars {
            let reader = try WebDatasetReader(url: shards.appendingPathComponent(tar))
            var payload = 0, samples = 0
            while let sample = try reader.nextSample() { samples += 1; payload += sample.members.values.map(\.count).reduce(0, +) }
            exported += samples
            XCTAssertTrue(samples == 1 || payload <= 20_000, "\(tar): \(samples) samples, \(payload) bytes")
        }
        XCTAssertEqual(exported, try ledgerRows(corpus).filter { $0.status == .kept }.count)
    }

    /// Other weights under the same model path: refused, naming which model changed.
    func testChangedWeightsAreRefused() throws {
        let model = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-itm-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: blipFixtures.appendingPathComponent("itm-st"), to: model)
        defer { try? FileManager.default.removeItem(at: model) }
        let corpus = try TestCorpus.make(filterModel: model)
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus, stopAfterBatches: 1), .interrupted)
        // Change one weight (the last byte of the file is inside the data section).
        let weights = model.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: weights)
        XCTAssertThrowsError(try run(corpus)) { XCTAssertTrue("\($0)".contains("the filter weights"), "\($0)") }
    }

    func testChangedSpecIsRefusedUnlessNewRun() throws {
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus, stopAfterBatches: 1), .interrupted)
        var yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        // A field that changes captions (a change of decisions alone re-filters instead: RefilterTests).
        yaml = yaml.replacingOccurrences(of: "max_new_tokens: 8", with: "max_new_tokens: 7")
        try yaml.write(toFile: corpus.specPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try run(corpus)) { error in
            XCTAssertTrue("\(error)".contains("--new-run"), "\(error)")
            XCTAssertTrue("\(error)".contains("captioner.max_new_tokens changed"), "\(error)")
        }
        XCTAssertEqual(try run(corpus, newRun: true), .completed)
    }

    /// filter.precision reaches the model (captioner.precision takes the same path): an int8 run accounts for
    /// every sample as the fp32 run does, scores the same web texts within int8's error, and is not fp32.
    func testInt8PrecisionReachesBothModels() throws {
        let exact = try TestCorpus.make(), int8 = try TestCorpus.make()
        defer { exact.remove(); int8.remove() }
        var yaml = try String(contentsOfFile: int8.specPath, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  seed: 7\n", with: "  seed: 7\n  precision: int8\n")
            .replacingOccurrences(of: "  threshold: 0.5\n", with: "  threshold: 0.5\n  precision: int8\n")
        try yaml.write(toFile: int8.specPath, atomically: true, encoding: .utf8)
        let spec = try PipelineSpec.load(path: int8.specPath)
        XCTAssertEqual([spec.captioner.precision, spec.filter.precision], [.int8, .int8])
        XCTAssertEqual(try run(exact), .completed)
        XCTAssertEqual(try run(int8), .completed)
        try checkLedger(int8)
        let a = try ledgerRows(exact), b = try ledgerRows(int8)
        XCTAssertEqual(a.map(\.key), b.map(\.key))
        func inputFailures(_ rows: [SampleRecord]) -> [String] {
            rows.compactMap { (row: SampleRecord) -> String? in row.reason == "no_text_matched" ? nil : row.reason }
        }
        XCTAssertEqual(inputFailures(a), inputFailures(b), "input failures do not depend on precision")
        var worst: Float = 0, differing = 0
        for (x, y) in zip(a, b) {
            guard let sx = x.webScore, let sy = y.webScore else { XCTAssertEqual(x.webScore == nil, y.webScore == nil, x.key); continue }
            worst = max(worst, abs(sx.itm - sy.itm))
            if sx.itm != sy.itm { differing += 1 }
        }
        XCTAssertGreaterThan(differing, 0, "int8 scores are not fp32's: the setting reached the filter")
        XCTAssertLessThan(worst, 0.05, "same web texts, ITM P(match) within int8's error")
    }

    /// Python's tarfile reads every shard, and the webdataset key rule groups members into our samples.
    func testPythonTarfileReadsTheShards() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/python3")
            || ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/python3") }) == true
        else { throw XCTSkip("python3 not available") }
        let corpus = try TestCorpus.make()
        defer { corpus.remove() }
        XCTAssertEqual(try run(corpus), .completed)
        let script = """
            import glob, json, re, sys, tarfile
            keys = []
            for path in sorted(glob.glob(sys.argv[1] + "/*.tar")):
                with tarfile.open(path) as t:
                    samples = {}
                    order = []
                    for m in t.getmembers():
                        assert m.isfile(), m.name
                        # webdataset's rule: the key ends at the first dot of the base name
                        key, ext = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", m.name).groups()
                        if key not in samples: samples[key] = {}; order.append(key)
                        samples[key][ext] = t.extractfile(m).read()
                    for key in order:
                        s = samples[key]
                        assert set(s) - {"jpg", "png", "webp"} == {"json", "txt"}, (key, set(s))
                        meta = json.loads(s["json"])
                        assert meta["key"] == key and meta["main_caption"] == s["txt"].decode()
                        keys.append(key)
            print(json.dumps(keys))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, corpus.output.appendingPathComponent("shards").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let keys = try JSONSerialization.jsonObject(with: out) as? [String]
        XCTAssertEqual(keys, try ledgerRows(corpus).filter { $0.status == .kept }.map(\.key))
    }
}
