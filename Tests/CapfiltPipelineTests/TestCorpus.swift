// A small scrape with every kind of bad input, written as an img2dataset-like webdataset shard and as a
// JSONL list, plus a spec using the tiny fixture models.
import CapfiltParquet
import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let blipFixtures = repoRoot.appendingPathComponent("Tests/Fixtures/blip")

/// What a test expects of one input sample.
struct Expectation {
    let sourceKey: String
    /// nil: decodable and pending the models (kept or filtered depends on the model).
    let failure: String?
    let webTextProblem: String?
}

struct TestCorpus {
    let folder: URL
    let expectations: [Expectation]

    static func image(_ name: String) -> [UInt8] {
        [UInt8]((try? Data(contentsOf: blipFixtures.appendingPathComponent("images/\(name)"))) ?? Data())
    }

    /// A PNG whose header claims `width × height` (valid signature, IHDR and CRC; no pixel data).
    static func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        var ihdr: [UInt8] = Array("IHDR".utf8)
        for v in [width, height] { ihdr += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        ihdr += [8, 2, 0, 0, 0]
        let crc = crc32(ihdr)
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr
            + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// Members of each sample: (key, [(extension, bytes)]) in tar order.
    static func samples() -> [(key: String, members: [(String, [UInt8])], expectation: Expectation)] {
        let good = ["rgb_80x60.png", "rgb_100x75.jpg", "gray_50x50.png", "rgba_64x48.png", "gray_70x90.jpg", "rgb_64x64.png", "rgb_30x200.png"]
        var out: [(String, [(String, [UInt8])], Expectation)] = []
        func add(_ key: String, _ members: [(String, [UInt8])], failure: String? = nil, problem: String? = nil) {
            out.append((key, members, Expectation(sourceKey: key, failure: failure, webTextProblem: problem)))
        }
        let texts = ["a woman sitting on the beach with her dog", "IMG_2041.JPG", "click to enlarge",
                     "two dogs and a cat", "stock photo", "a red circle on a white background"]
        for round in 0..<3 {
            for (i, name) in good.enumerated() {
                let ext = name.hasSuffix(".jpg") ? "jpg" : "png"
                let text = texts[(i + round) % texts.count] + (round > 0 ? " \(round)" : "")
                // Bytes after the end marker make each round's image distinct without changing its pixels.
                add("s\(round)\(i)", [(ext, image(name) + Array(repeating: 0, count: round)), ("txt", Array(text.utf8)), ("json", Array(#"{"url": "http://x/\#(i)"}"#.utf8))])
            }
        }
        let jpeg = image("rgb_100x75.jpg"), png = image("rgb_80x60.png")
        add("corrupt", [("jpg", Array(jpeg.prefix(20)) + Array(repeating: 0x55, count: 200)), ("txt", Array("a corrupt jpeg".utf8))], failure: "image_corrupt")
        add("truncated", [("png", Array(png.prefix(png.count / 2))), ("txt", Array("a truncated png".utf8))], failure: "image_corrupt")
        add("zero", [("jpg", []), ("txt", Array("zero bytes".utf8))], failure: "image_empty")
        add("gif", [("jpg", Array("GIF89a".utf8) + Array(repeating: 0, count: 30)), ("txt", Array("a gif".utf8))], failure: "image_unsupported_format")
        add("huge", [("png", pngHeader(width: 100_000, height: 100_000)), ("txt", Array("huge".utf8))], failure: "image_too_large")
        add("noimage", [("txt", Array("only a caption".utf8))], failure: "image_missing")
        add("emptytext", [("jpg", jpeg + [0, 0, 0, 0]), ("txt", [])], problem: "empty")
        add("spaces", [("jpg", image("gray_70x90.jpg")), ("txt", Array(" \t \n ".utf8))], failure: "duplicate_image", problem: "whitespace_only")
        add("latin1", [("png", image("rgb_30x200.png")), ("txt", [0x63, 0x61, 0x66, 0xE9])], failure: "duplicate_image", problem: "invalid_utf8")
        add("long", [("jpg", jpeg + [0, 0, 0, 0, 0]), ("txt", Array(String(repeating: "very long alt text ", count: 200).utf8))], problem: "too_long")
        add("s00", [("png", image("rgba_64x48.png")), ("txt", Array("a repeated key".utf8))], failure: "duplicate_key")
        return out
    }

    /// Writes `data/00000.tar` (the scrape), `list.jsonl` + `images/` (the same as a list) and `spec.yaml`.
    static func make(kind: String = "webdataset", samplesPerShard: Int = 4, decoding: String = "nucleus",
                     batchSize: Int = 4, maxShardBytes: Int = 1 << 30, filterModel: URL? = nil,
                     duplicates: String = "drop", blockSize: Int = 10_000) throws -> TestCorpus {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-pipeline-\(UUID().uuidString)")
        let data = folder.appendingPathComponent("data"), images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let all = samples()
        let writer = try TarWriter(url: data.appendingPathComponent("00000.tar"))
        var lines: [String] = []
        for sample in all {
            for (ext, bytes) in sample.members { try writer.add(name: "\(sample.key).\(ext)", bytes: bytes) }
            if let (ext, bytes) = sample.members.first(where: { ["jpg", "png"].contains($0.0) }) {
                try Data(bytes).write(to: images.appendingPathComponent("\(sample.key).\(ext)"))
                let text = sample.members.first { $0.0 == "txt" }.map { String(decoding: $0.1, as: UTF8.self) } ?? ""
                let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
                lines.append(#"{"key": "\#(sample.key)", "image": "images/\#(sample.key).\#(ext)", "caption": "\#(escaped)"}"#)
            }
        }
        try writer.finish()
        // A list line whose image file is not there.
        lines.append(#"{"key": "gone", "image": "images/gone.jpg", "caption": "a picture that was never downloaded"}"#)
        try (lines.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("list.jsonl"), atomically: true, encoding: .utf8)
        // The same scrape as a Hugging Face image dataset (image struct {bytes, path}), 3 rows per row group.
        let parquet = try ParquetWriter(path: folder.appendingPathComponent("data.parquet").path, columns: [
            ParquetWriterColumn("key", .string), ParquetWriterColumn("image", .image), ParquetWriterColumn("caption", .string)])
        for group in stride(from: 0, to: all.count, by: 3).map({ Array(all[$0..<min(all.count, $0 + 3)]) }) {
            let images = group.map { sample in
                sample.members.first { ["jpg", "png"].contains($0.0) }.map { ParquetImage(bytes: $0.1, path: "\(sample.key).\($0.0)") }
            }
            let captions = group.map { sample in sample.members.first { $0.0 == "txt" }.map { String(decoding: $0.1, as: UTF8.self) } }
            try parquet.writeRowGroup([.string(group.map(\.key)), .image(images), .string(captions)])
        }
        try parquet.close()
        let inputs = ["webdataset": "  kind: webdataset\n  paths: [\"data/{00000..00000}.tar\"]",
                      "jsonl": "  kind: jsonl\n  paths: [list.jsonl]\n  key_column: key",
                      "parquet": "  kind: parquet\n  paths: [data.parquet]\n  key_column: key"]
        let input = (inputs[kind] ?? "") + "\n  block_size: \(blockSize)"
        let spec = """
            version: 1
            input:
            \(input)
            output:
              folder: out
              samples_per_shard: \(samplesPerShard)
              max_shard_bytes: \(maxShardBytes)
            captioner:
              model: \(blipFixtures.appendingPathComponent("caption-st").path)
              decoding: \(decoding)
              max_new_tokens: 8
              min_new_tokens: 2
              batch_size: \(batchSize)
              seed: 7
            filter:
              model: \((filterModel ?? blipFixtures.appendingPathComponent("itm-st")).path)
              threshold: 0.5
            duplicates: \(duplicates)
            """
        try spec.write(to: folder.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        return TestCorpus(folder: folder, expectations: all.map(\.expectation))
    }

    var specPath: String { folder.appendingPathComponent("spec.yaml").path }
    var output: URL { folder.appendingPathComponent("out") }

    /// The dataset: every file under shards/ and the run manifest, with its bytes (what "byte-identical"
    /// compares; units/, leases and locks are job state, not output).
    func outputFiles(of folder: URL? = nil) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let root = (folder ?? output).standardizedFileURL.path
        guard let e = FileManager.default.enumerator(atPath: root) else { return [:] }
        for case let relative as String in e where relative.hasPrefix("shards/") || relative == "capfilt_run.json" {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue { files[relative] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)) }
        }
        return files
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// Runs the pipeline of a test corpus in-process.
struct CapfiltPipelineSpecLoader {
    let corpus: TestCorpus
    static func load(_ corpus: TestCorpus) throws -> CapfiltPipelineSpecLoader { CapfiltPipelineSpecLoader(corpus: corpus) }

    func run(newRun: Bool = false, stopAfterBatches: Int? = nil) throws -> RunOutcome {
        let spec = try PipelineSpec.load(path: corpus.specPath)
        let yaml = try String(contentsOfFile: corpus.specPath, encoding: .utf8)
        let pipeline = try PipelineRun(spec: spec, specYAML: yaml, specPath: corpus.specPath, newRun: newRun)
        defer { pipeline.close() }
        let stop = StopFlag()
        // Counts the reports that finished new samples: a resume's reports of samples done before do not count,
        // or a run stopped after N batches would never get past them.
        var batches = 0, finishedNew = 0
        return try pipeline.run(stop: stop) { p in
            guard p.finished - p.skipped > finishedNew else { return }
            finishedNew = p.finished - p.skipped
            batches += 1
            if let limit = stopAfterBatches, batches >= limit { stop.set() }
        }
    }
}

/// Runs the capfilt binary of this build to the end: exit status and both outputs.
func runCapfilt(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = try capfiltBinary()
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Our copies of the write ends must go, or the reads below never see the end of the file.
    try? out.fileHandleForWriting.close()
    try? err.fileHandleForWriting.close()
    // Read both pipes at once: one filling up while the other is read would block the child.
    let stdoutData = Locked<Data>(Data())
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        stdoutData.set(out.fileHandleForReading.readDataToEndOfFile())
        group.leave()
    }
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: stdoutData.get(), as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// A value shared with a background reader.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ new: Value) { lock.lock(); value = new; lock.unlock() }
    func update(_ body: (inout Value) -> Void) { lock.lock(); body(&value); lock.unlock() }
}
