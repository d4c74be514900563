// Parquet input as users have it: a Hugging Face image dataset saved by `datasets` (image struct {bytes, path}),
// img2dataset's parquet output (a binary `jpg` column and its metadata columns), metadata tables naming image
// files; files of the wrong kind refused up front with the kind they look like; damaged files as problem samples.

import CapfiltCorpus
import CapfiltParquet
import Foundation
import XCTest

final class ParquetInputTests: XCTestCase {
    /// Tests/Fixtures/parquet (written by pyarrow 26 and datasets 5.2; Scripts/fixtures/parquet.py).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/parquet")

    private func copyFixture(_ name: String, into folder: TempFolder, as target: String? = nil) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
        try folder.write(target ?? name, bytes)
    }

    func testHuggingFaceImageDatasetWrittenByDatasets() throws {
        let folder = try TempFolder(self)
        try copyFixture("hf_images.parquet", into: folder)
        let samples = try read(CorpusSpec(kind: .parquet, paths: ["hf_images.parquet"], captionColumn: "text"),
                               in: folder)
        XCTAssertEqual(samples.count, 7)
        for (i, sample) in samples.prefix(5).enumerated() {
            guard case .bytes(let bytes, let ext) = sample.image else { return XCTFail("row \(i): \(sample.image)") }
            XCTAssertEqual(ext, i % 2 == 0 ? "png" : "jpeg", "the extension of the struct's path")
            XCTAssertEqual(Array(bytes.prefix(2)), i % 2 == 0 ? [0x89, 0x50] : [0xFF, 0xD8])
            XCTAssertEqual(sample.text, .text("a small picture number \(i)"))
            XCTAssertEqual(sample.location, SampleLocation(source: "hf_images.parquet", position: "row \(i)"))
            XCTAssertEqual(sample.metadata, ["idx": "\(i)"])
        }
        guard case .missing(let reason) = samples[5].image else { return XCTFail("\(samples[5].image)") }
        XCTAssertEqual(reason, "row 5: column \"image\" is null")
        XCTAssertEqual(samples[5].text, .missing)
        // The image given by path only: a file next to the Parquet file.
        XCTAssertEqual(samples[6].image, .file(URL(fileURLWithPath: FileSystem_realPath(folder.path) + "/images/on_disk.jpg")))
        XCTAssertEqual(samples[6].text, .text("an image on disk"))
    }

    func testImg2datasetParquetKeepsKeysAndMetadata() throws {
        let folder = try TempFolder(self)
        try copyFixture("img2dataset.parquet", into: folder)
        var spec = CorpusSpec(kind: .parquet, paths: ["img2dataset.parquet"], imageColumn: "jpg", keyColumn: "key")
        let samples = try read(spec, in: folder)
        XCTAssertEqual(samples.count, 12)
        for (i, sample) in samples.enumerated() {
            XCTAssertEqual(sample.sourceKey, String(format: "%09d", i))
            XCTAssertEqual(sample.metadata["url"], "https://example.com/images/\(i).jpg")
            XCTAssertEqual(sample.text, i % 5 == 0 ? .missing : .text("caption \(i)"))
            if i % 4 == 2 {
                XCTAssertEqual(sample.image, .missing(reason: "row \(i): column \"jpg\" is null"))
                XCTAssertEqual(sample.metadata["status"], "failed_to_download")
                XCTAssertEqual(sample.metadata["error_message"], "HTTP Error 404: Not Found")
            } else {
                XCTAssertEqual(sample.image.bytes.map { Array($0.prefix(3)) }, [0xFF, 0xD8, 0xFF])
                XCTAssertEqual(sample.metadata["width"], "256")
                XCTAssertEqual(sample.metadata["original_width"], "\(1024 + i)")
                XCTAssertEqual(sample.metadata["sha256"]?.count, 64)
            }
        }
        // Without image_column the message names the binary column to use.
        spec.imageColumn = "image"
        let error = corpusError { _ = try CorpusReader(spec: spec, baseDirectory: folder.url) }
        XCTAssertEqual(error?.kind, .missingColumn)
        XCTAssertTrue(error?.description.contains("set input.image_column: jpg") == true, error?.description ?? "")
        spec.imageColumn = "jpg"
        spec.captionColumn = "txt"
        let caption = corpusError { _ = try CorpusReader(spec: spec, baseDirectory: folder.url) }
        XCTAssertTrue(caption?.description.contains("no column \"txt\" for input.caption_column; text columns: key, url, "
            + "caption") == true, caption?.description ?? "")
    }

    /// Row groups and units: skipping whole row groups reads none of them, and lands on the right row.
    func testSkipLandsOnTheRowAfterWholeRowGroups() throws {
        let folder = try TempFolder(self)
        let writer = try ParquetWriter(path: folder.url("many.parquet").path,
                                       columns: [ParquetWriterColumn("image", .image), ParquetWriterColumn("caption", .string)])
        for g in 0..<4 {
            let rows = (0..<5).map { g * 5 + $0 }
            try writer.writeRowGroup([.image(rows.map { ParquetImage(bytes: jpeg("\($0)"), path: nil) }),
                                      .string(rows.map { "caption \($0)" })])
        }
        try writer.close()
        let reader = try CorpusReader(spec: CorpusSpec(kind: .parquet, paths: ["many.parquet"]), baseDirectory: folder.url)
        XCTAssertEqual(reader.parquetRowGroups(ofSource: 0), [5, 5, 5, 5])
        for start in [0, 3, 5, 10, 12, 20] {
            let stream = reader.openSource(0)
            XCTAssertEqual(stream.skip(start), min(start, 20))
            let next = stream.next()
            XCTAssertEqual(next?.text, start < 20 ? .text("caption \(start)") : nil)
            XCTAssertEqual(next?.image.bytes, start < 20 ? jpeg("\(start)") : nil)
            XCTAssertEqual(next?.location.position, start < 20 ? "row \(start)" : nil)
        }
        XCTAssertEqual(reader.openSource(0).skip(Int.max), 20)
    }

    /// A metadata table whose image column holds URLs: one clear message saying to download first.
    func testURLColumnSaysHowToDownloadFirst() throws {
        let folder = try TempFolder(self)
        let writer = try ParquetWriter(path: folder.url("laion.parquet").path,
                                       columns: [ParquetWriterColumn("url", .string), ParquetWriterColumn("caption", .string)])
        try writer.writeRowGroup([.string(["https://example.com/a.jpg", "https://example.com/b.jpg"]), .string(["a", "b"])])
        try writer.close()
        let asURL = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .parquet, paths: ["laion.parquet"], imageColumn: "url"),
                                 baseDirectory: folder.url)
        }
        XCTAssertEqual(asURL?.kind, .imagesNotDownloaded)
        XCTAssertTrue(asURL?.description.contains("img2dataset --url_list FILE.parquet --input_format parquet --url_col url")
            == true, asURL?.description ?? "")
        let asDefault = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .parquet, paths: ["laion.parquet"]), baseDirectory: folder.url)
        }
        XCTAssertEqual(asDefault?.kind, .missingColumn)
        XCTAssertTrue(asDefault?.description.contains("URL column \"url\" but no images") == true,
                      asDefault?.description ?? "")
    }

    /// Metadata Parquet naming image files: resolved against the file's folder and confined to it.
    func testPathColumnIsConfinedLikeAList() throws {
        let folder = try TempFolder(self)
        try folder.write("data/img/a.jpg", jpeg("a"))
        let writer = try ParquetWriter(path: folder.url("data/meta.parquet").path,
                                       columns: [ParquetWriterColumn("image", .string), ParquetWriterColumn("caption", .string)])
        try writer.writeRowGroup([.string(["img/a.jpg", "../../etc/passwd", nil]), .string(["a", "b", "c"])])
        try writer.close()
        let samples = try read(CorpusSpec(kind: .parquet, paths: ["data/meta.parquet"]), in: folder)
        XCTAssertEqual(samples.count, 3)
        XCTAssertEqual(samples[0].image, .file(URL(fileURLWithPath: FileSystem_realPath(folder.path) + "/data/img/a.jpg")))
        guard case .refused(_, .pathOutsideRoot) = samples[1].image else { return XCTFail("\(samples[1].image)") }
        guard case .missing = samples[2].image else { return XCTFail("\(samples[2].image)") }
    }

    /// Damage: a truncated file is one problem sample and the next file follows; a row group whose pages are
    /// corrupt is one problem sample per row, and the other row groups read as usual.
    func testDamagedFilesAreProblemSamples() throws {
        let folder = try TempFolder(self)
        let good = folder.url("b.parquet").path
        let writer = try ParquetWriter(path: good, columns: [ParquetWriterColumn("image", .binary),
                                                             ParquetWriterColumn("caption", .string)])
        for g in 0..<3 {
            try writer.writeRowGroup([.binary([jpeg("g\(g)r0"), jpeg("g\(g)r1")]), .string(["g\(g) 0", "g\(g) 1"])])
        }
        try writer.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        try folder.write("a.parquet", Array(bytes.prefix(bytes.count - 9)))  // cut short: no footer
        // Corrupt the second row group's image chunk: the length prefix of its first value.
        let file = try ParquetFile(path: good)
        XCTAssertEqual(file.rowGroups.count, 3)
        var damaged = bytes
        let marker = Array("g1r0".utf8)
        let at = (0..<damaged.count - marker.count).first { Array(damaged[$0..<$0 + marker.count]) == marker }!
        for i in (at - 8)..<(at - 4) { damaged[i] = 0xFF }  // the 4 bytes before the JPEG signature
        try folder.write("c.parquet", damaged)
        let samples = try read(CorpusSpec(kind: .parquet, paths: ["a.parquet", "b.parquet", "c.parquet"]), in: folder)
        XCTAssertEqual(samples.count, 1 + 6 + 6)
        guard case .refused(let why, .sourceRefused) = samples[0].image else { return XCTFail("\(samples[0].image)") }
        XCTAssertTrue(why.hasPrefix("cannot be read as Parquet"), why)
        XCTAssertEqual(samples[1...6].map(\.text), (0..<3).flatMap { g in [.text("g\(g) 0"), .text("g\(g) 1")] })
        XCTAssertEqual(samples[7].text, .text("g0 0"))
        for s in samples[9...10] {
            guard case .refused(let why, .shardDamaged) = s.image else { return XCTFail("\(s.image)") }
            XCTAssertTrue(why.contains("row group 1 cannot be decoded"), why)
        }
        XCTAssertEqual(samples[11].text, .text("g2 0"))
        XCTAssertEqual(samples[12].location.position, "row 5")
    }

    /// A file of another kind than the spec says is refused before any work, naming the kind it looks like.
    func testWrongFileKindIsRefusedNamingWhatItLooksLike() throws {
        let folder = try TempFolder(self)
        try copyFixture("hf_images.parquet", into: folder, as: "data.parquet")
        try writeShard(folder.url("shard.tar"), img2datasetMembers(["a"]))
        try folder.write("coco.json", #"{"info": {}, "images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}"#)
        try folder.write("array.json", "[{\"image\": \"a.jpg\"}]\n")
        try folder.write("pretty.json", "{\n  \"image\": \"a.jpg\",\n  \"caption\": \"x\"\n}\n")
        try folder.write("photo.csv", jpeg("not a list"))
        let cases: [(CorpusSpec.Kind, String, String)] = [
            (.webdataset, "data.parquet", "a Parquet file (use input.kind: parquet)"),
            (.jsonl, "data.parquet", "a Parquet file"),
            (.csv, "data.parquet", "a Parquet file"),
            (.tsv, "data.parquet", "a Parquet file"),
            (.parquet, "shard.tar", "a tar archive"),
            (.jsonl, "coco.json", "a COCO-style captions file"),
            (.jsonl, "array.json", "a JSON array, not JSON Lines"),
            (.jsonl, "pretty.json", "one JSON document spread over several lines"),
            (.csv, "photo.csv", "an image"),
        ]
        for (kind, name, looks) in cases {
            let error = corpusError {
                _ = try CorpusReader(spec: CorpusSpec(kind: kind, paths: [name]), baseDirectory: folder.url)
            }
            XCTAssertEqual(error?.kind, .wrongFileKind, "\(kind) \(name)")
            XCTAssertEqual(error?.path, name)
            XCTAssertTrue(error?.description.contains("input.kind is '\(kind.rawValue)' but this looks like \(looks)") == true,
                          error?.description ?? "")
            XCTAssertFalse(error?.description.contains("PAR1") == true, "no binary header in the message")
        }
        // What still reads: a list whose first line is damaged (that line is a problem sample, not the file).
        try folder.write("bad-first.jsonl", "not json\n{\"image\": \"a.jpg\", \"caption\": \"x\"}\n")
        XCTAssertEqual(try read(CorpusSpec(kind: .jsonl, paths: ["bad-first.jsonl"]), in: folder).count, 2)
    }

    func testFolderContentsHintNamesTheKind() throws {
        let folder = try TempFolder(self)
        try copyFixture("hf_images.parquet", into: folder, as: "data/train-00000-of-00002.parquet")
        try copyFixture("hf_images.parquet", into: folder, as: "data/train-00001-of-00002.parquet")
        try folder.write("README.md", "# a dataset card")
        XCTAssertEqual(FolderContents.hint(folder.path),
                       "; it holds 2 .parquet, 1 .md files: it looks like .parquet input, use input.kind: parquet")
    }
}

/// The real path of a folder (temporary folders sit behind a link on some systems).
func FileSystem_realPath(_ path: String) -> String {
    URL(fileURLWithPath: path).resolvingSymlinksInPath().path
}
