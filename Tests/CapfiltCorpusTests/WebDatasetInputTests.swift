// webdataset shards as img2dataset writes them: samples in tar order, image/caption/json picked by extension,
// hostile members and damage reported per sample, and a damaged shard never costing the shards after it.

import CapfiltCorpus
import CapfiltWebDataset
import Foundation
import XCTest

final class WebDatasetInputTests: XCTestCase {
    func testImg2datasetShardReadsInTarOrder() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("shards/00000.tar"), img2datasetMembers(["000000000", "000000001", "000000002"]))
        let samples = try read(CorpusSpec(kind: .webdataset, paths: ["shards/00000.tar"]), in: folder)

        XCTAssertEqual(samples.map(\.sourceKey), ["000000000", "000000001", "000000002"])
        XCTAssertEqual(samples.map(\.ordinal), [0, 1, 2])
        XCTAssertEqual(samples.map(\.location), [0, 3072, 6144].map {
            SampleLocation(source: "shards/00000.tar", position: "offset \($0)")
        }, "source as the spec names it; position = header offset of the sample's first member")
        for sample in samples {
            XCTAssertEqual(sample.image, .bytes(jpeg(sample.sourceKey), fileExtension: "jpg"))
            XCTAssertEqual(sample.text, .text("caption \(sample.sourceKey)"))
            XCTAssertEqual(sample.metadata, ["json": "{\"key\": \"\(sample.sourceKey)\", \"status\": \"success\"}"])
            XCTAssertEqual(sample.problems, [])
        }
    }

    func testImageChoiceCaptionAndMissingMembers() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("a.tar"), [
            ("both.PNG", png("both")), ("both.jpg", jpeg("both")), ("both.txt", Array("two images".utf8)),
            ("noimage.txt", Array("text only".utf8)), ("noimage.json", Array("{}".utf8)),
            ("badtext.webp", Array("RIFFwebp".utf8)), ("badtext.txt", [0x63, 0xff, 0xfe, 0x61]),
            ("badjson.jpg", jpeg("j")), ("badjson.json", [0x7b, 0xc3, 0x7d]),
            ("seg.jpeg", jpeg("seg")), ("seg.seg.png", png("mask")),
        ])
        let samples = try read(CorpusSpec(kind: .webdataset, paths: ["a.tar"]), in: folder)
        XCTAssertEqual(samples.map(\.sourceKey), ["both", "noimage", "badtext", "badjson", "seg"])

        XCTAssertEqual(samples[0].image, .bytes(jpeg("both"), fileExtension: "jpg"),
                       "the first extension of imageExtensions present wins; member extensions are lowercased")
        XCTAssertEqual(samples[1].image.missingReason,
                       "no image member (found .json, .txt); expected one of .jpg, .jpeg, .png, .webp")
        XCTAssertEqual(samples[1].text, .text("text only"))
        XCTAssertEqual(samples[2].image.fileExtension, "webp")
        XCTAssertEqual(samples[2].text, .invalidUTF8(byteCount: 4))
        XCTAssertEqual(samples[3].text, .missing)
        XCTAssertNil(samples[3].metadata["json"])
        XCTAssertEqual(samples[3].problems, [".json member is not valid UTF-8 (3 bytes); metadata dropped"])
        XCTAssertEqual(samples[4].image.fileExtension, "jpeg", "'seg.png' is not 'png'")

        let preferPNG = CorpusSpec(kind: .webdataset, paths: ["a.tar"], captionExtension: ".TXT",
                                   imageExtensions: ["PNG", "jpg"])
        XCTAssertEqual(try read(preferPNG, in: folder).first?.image, .bytes(png("both"), fileExtension: "png"),
                       "preference follows the spec's order; extensions normalized")
    }

    func testHostileMembersAreProblemsAndTheShardContinues() throws {
        let folder = try TempFolder(self)
        var bytes = RawTar.member("000001.jpg", jpeg("1")) + RawTar.member("000001.txt", Array("one".utf8))
        bytes += RawTar.member("../evil.txt", Array("escape".utf8))
        bytes += RawTar.member("000002.jpg", type: "2", link: "/etc/passwd")
        bytes += RawTar.member("000002.txt", Array("linked".utf8))
        bytes += RawTar.member("000003.jpg", jpeg("3")) + RawTar.member("000003.txt", Array("three".utf8))
        try folder.write("hostile.tar", bytes + RawTar.end)
        let samples = try read(CorpusSpec(kind: .webdataset, paths: ["hostile.tar"]), in: folder)

        XCTAssertEqual(samples.map(\.sourceKey), ["000001", "../evil", "000002", "000003"])
        XCTAssertEqual(samples[0].problems, [])
        XCTAssertEqual(samples[1].image.missingReason, "no member of this sample was accepted (see problems)")
        XCTAssertEqual(samples[1].image.refusal, .memberRefused)
        XCTAssertEqual(samples[1].problems.count, 1)
        guard samples[1].problems.count == 1 else { return }
        XCTAssertTrue(samples[1].problems[0].contains("'..' component"), samples[1].problems[0])
        XCTAssertEqual(samples[2].image.missingReason, "its image member was refused (see problems)",
                       "a symlinked image is never followed")
        XCTAssertEqual(samples[2].image.refusal, .memberRefused)
        XCTAssertEqual(samples[2].text, .text("linked"))
        XCTAssertTrue(samples[2].problems.first?.contains("symbolic link to '/etc/passwd'") == true,
                      "\(samples[2].problems)")
        XCTAssertEqual(samples[3].image, .bytes(jpeg("3"), fileExtension: "jpg"))
    }

    func testOversizeMemberIsRefusedNotLoaded() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("big.tar"), [("a.jpg", [UInt8](repeating: 7, count: 5000)), ("a.txt", [0x61]),
                                               ("b.jpg", jpeg("b"))])
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["big.tar"]),
                                      baseDirectory: folder.url, maxMemberSize: 4096)
        let samples = try drain(reader)
        XCTAssertEqual(samples.count, 2)
        XCTAssertNotNil(samples[0].image.missingReason)
        XCTAssertEqual(samples[0].image.refusal, .memberTooLarge, "its own reason, image_too_many_bytes")
        XCTAssertEqual(samples[0].text, .text("a"))
        XCTAssertEqual(samples[0].problems.count, 1)
        XCTAssertEqual(samples[1].image.bytes, jpeg("b"))
    }

    func testTruncatedShardIsAProblemSampleAndTheNextShardStillReads() throws {
        let folder = try TempFolder(self)
        let whole = try Data(contentsOf: writeShard(folder.url("tmp.tar"), img2datasetMembers(["a0", "a1", "a2"])))
        try FileManager.default.removeItem(at: folder.url("tmp.tar"))
        // Cut inside a1.json's data (a1 starts at 3072; a1.json's header is at 5120, its data at 5632).
        try folder.write("shards/00000.tar", Array(whole.prefix(5640)))
        try writeShard(folder.url("shards/00001.tar"), img2datasetMembers(["b0", "b1"]))
        try folder.write("shards/00002.tar", [])

        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["shards/{00000..00002}.tar"]),
                                      baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["shards/00000.tar", "shards/00001.tar", "shards/00002.tar"])
        var samples: [InputSample] = []
        var doneAfter: [Int] = []
        while let sample = try reader.next() {
            samples.append(sample)
            doneAfter.append(reader.sourcesDone)
        }
        XCTAssertEqual(samples.map(\.sourceKey),
                       ["a0", "a1", "(damaged shard at byte 5120)", "b0", "b1", "(damaged shard at byte 0)"])
        XCTAssertEqual(samples.map(\.ordinal), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(doneAfter, [0, 0, 0, 1, 1, 2])
        XCTAssertEqual(reader.sourcesDone, 3)

        // a1's image and caption are intact before the cut: they are read, as Python's tarfile reads them.
        XCTAssertEqual(samples[1].image.bytes, jpeg("a1"))
        XCTAssertEqual(samples[1].text, .text("caption a1"))
        XCTAssertTrue(samples[1].problems.first?.contains("damaged at byte 5120") == true, "\(samples[1].problems)")

        let damage = samples[2]
        XCTAssertEqual(damage.location, SampleLocation(source: "shards/00000.tar", position: "offset 5120"))
        XCTAssertEqual(damage.image.refusal, .shardDamaged)
        XCTAssertEqual(damage.image.missingReason,
                       "the shard is damaged at byte 5120; samples from there on were not read")
        XCTAssertEqual(damage.text, .missing)
        XCTAssertEqual(damage.problems.count, 1)
        guard damage.problems.count == 1 else { return }
        XCTAssertTrue(damage.problems[0].hasPrefix("shards/00000.tar at byte 5120: "), damage.problems[0])
        XCTAssertTrue(damage.problems[0].contains("cut short"), damage.problems[0])
        XCTAssertEqual(samples[5].image.missingReason, "the shard is empty (0 bytes); none of its samples were read")
        XCTAssertEqual(samples[3].image.bytes, jpeg("b0"))
    }

    func testShardFolderIsItsTarFilesSortedByName() throws {
        let folder = try TempFolder(self)
        for (index, name) in ["00002", "00000", "00010", "00001"].enumerated() {
            try writeShard(folder.url("out/\(name).tar"), img2datasetMembers(["\(name)-\(index)"]))
        }
        try folder.write("out/00000_stats.json", "{}")
        try folder.write("out/00000.parquet", "PAR1")
        try folder.write("out/.00003.tar", "hidden, e.g. a partial download")
        try writeShard(folder.url("elsewhere/x.tar"), img2datasetMembers(["x"]))
        try folder.symlink("out/00005.tar", to: folder.path + "/elsewhere/x.tar")
        try folder.symlink("out/00006.tar", to: "00001.tar")

        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["out/"]), baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["out/00000.tar", "out/00001.tar", "out/00002.tar", "out/00005.tar",
                                        "out/00006.tar", "out/00010.tar"])
        let samples = try drain(reader)
        XCTAssertEqual(samples.map(\.sourceKey), ["00000-1", "00001-3", "00002-0", "(refused source)", "00001-3",
                                                  "00010-2"])
        XCTAssertTrue(samples[3].image.missingReason?.contains("symbolic link leading outside out/") == true,
                      "links out of a shard folder are refused: \(samples[3].image)")
        XCTAssertEqual(samples[3].location.source, "out/00005.tar")
        XCTAssertEqual(samples[4].image.bytes, jpeg("00001-3"), "a link inside the folder is read")

        try folder.mkdir("empty")
        try folder.write("empty/notes.txt", "no shards here")
        let error = corpusError { _ = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["empty"]),
                                                       baseDirectory: folder.url) }
        XCTAssertEqual(error?.kind, .noInputFiles)
        XCTAssertEqual(error?.description, "empty: the folder has no .tar files for input kind 'webdataset' "
            + "(1 other entries). Check the folder and the input kind in the spec, or list the files explicitly.")
    }

    func testBracePatternsAndMissingShards() throws {
        let folder = try TempFolder(self)
        for name in ["train-0", "train-1", "val-0"] {
            try writeShard(folder.url("d/\(name).tar"), img2datasetMembers([name]))
        }
        let spec = CorpusSpec(kind: .webdataset,
                              paths: ["d/{val-0,train-{0..1}}.tar", folder.path + "/d/val-{0..0}.tar"])
        let reader = try CorpusReader(spec: spec, baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["d/val-0.tar", "d/train-0.tar", "d/train-1.tar", folder.path + "/d/val-0.tar"],
                       "patterns expand left to right; absolute paths stay absolute")
        XCTAssertEqual(try drain(reader).map(\.sourceKey), ["val-0", "train-0", "train-1", "val-0"])

        let missing = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["d/{val,train}-{0..1}.tar"]),
                                 baseDirectory: folder.url)
        }
        XCTAssertEqual(missing?.kind, .pathNotFound)
        XCTAssertEqual(missing?.path, "d/val-1.tar")
        XCTAssertEqual(missing?.description, "d/val-1.tar: no such file or folder (resolved to "
            + "\(folder.path)/d/val-1.tar). "
            + "Check the path (relative paths are resolved against the pipeline spec's folder) and that the volume "
            + "is mounted.")

        let malformed = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["d/{0..1.tar"]), baseDirectory: folder.url)
        }
        XCTAssertEqual(malformed?.kind, .badPattern)
        XCTAssertTrue(malformed?.description.hasPrefix("d/{0..1.tar: character 2 of the pattern: '{' has no "
            + "matching '}'.") == true, malformed?.description ?? "")
    }
}
