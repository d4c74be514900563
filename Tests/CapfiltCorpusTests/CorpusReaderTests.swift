// The reader as the pipeline sees it: the spec checked up front with errors that say how to fix, ordinals
// consecutive across sources, and the same sequence from every reader of the same input.

import CapfiltCorpus
import CapfiltWebDataset
import Foundation
import XCTest

final class CorpusReaderTests: XCTestCase {
    func testOrdinalsRunAcrossSourcesAndSourcesDoneCounts() throws {
        let folder = try TempFolder(self)
        try folder.write("p1/a.jpg", jpeg("a"))
        try folder.write("p1/b.jpg", jpeg("b"))
        try folder.mkdir("p2")
        try folder.write("p3/c.png", png("c"))
        let reader = try CorpusReader(spec: CorpusSpec(kind: .folder, paths: ["p{1..3}"]), baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["p1", "p2", "p3"])
        var seen: [(Int, String, Int)] = []
        while let sample = try reader.next() {
            seen.append((sample.ordinal, sample.location.description, reader.sourcesDone))
        }
        XCTAssertEqual(seen.map(\.0), [0, 1, 2])
        XCTAssertEqual(seen.map(\.1), ["p1, a.jpg", "p1, b.jpg", "p3, c.png"])
        XCTAssertEqual(seen.map(\.2), [0, 0, 2], "an empty folder is a source done without samples")
        XCTAssertEqual(reader.sourcesDone, 3)
        XCTAssertNil(try reader.next(), "stays exhausted")
    }

    func testTwoReadersGiveIdenticalSequences() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s/00000.tar"), img2datasetMembers(["k0", "k1"]))
        let good = try Data(contentsOf: writeShard(folder.url("s/00001.tar"), img2datasetMembers(["k2", "k3"])))
        try folder.write("s/00002.tar", Array(good.prefix(3600)))
        try folder.write("s/00003.tar", RawTar.member("k9.jpg", type: "2", link: "/etc/passwd")
            + RawTar.member("k9.txt", Array("nine".utf8)) + RawTar.end)
        let spec = CorpusSpec(kind: .webdataset, paths: ["s"])
        let first = try drain(CorpusReader(spec: spec, baseDirectory: folder.url))
        let second = try drain(CorpusReader(spec: spec, baseDirectory: folder.url))
        XCTAssertEqual(first.count, 7)
        XCTAssertEqual(first, second)

        try folder.write("f/b/1.jpg", jpeg("1"))
        try folder.write("f/a.jpg", jpeg("a"))
        try folder.write("f/a.txt", "a")
        try folder.write("l.jsonl", "{\"image\": \"f/a.jpg\"}\nnot json\n{\"image\": \"f/b/1.jpg\", \"caption\": 1}\n")
        for spec in [CorpusSpec(kind: .folder, paths: ["f"]), CorpusSpec(kind: .jsonl, paths: ["l.jsonl"])] {
            XCTAssertEqual(try read(spec, in: folder), try read(spec, in: folder), "\(spec.kind)")
        }
    }

    func testSourcesVanishingAfterInitAreProblemSamples() throws {
        let folder = try TempFolder(self)
        try folder.write("a.jsonl", #"{"image": "x.jpg"}"#)
        try folder.write("b.jsonl", #"{"image": "y.jpg"}"#)
        try folder.write("c.csv", "image,caption\nz.jpg,zed\n")
        try writeShard(folder.url("s.tar"), img2datasetMembers(["k"]))
        try folder.write("p/i.jpg", jpeg("i"))
        let lists = try CorpusReader(spec: CorpusSpec(kind: .jsonl, paths: ["a.jsonl", "b.jsonl"]),
                                     baseDirectory: folder.url)
        let csv = try CorpusReader(spec: CorpusSpec(kind: .csv, paths: ["c.csv"]), baseDirectory: folder.url)
        let shard = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["s.tar"]), baseDirectory: folder.url)
        let images = try CorpusReader(spec: CorpusSpec(kind: .folder, paths: ["p"]), baseDirectory: folder.url)
        for name in ["a.jsonl", "c.csv", "s.tar", "p/i.jpg", "p"] {
            try FileManager.default.removeItem(at: folder.url(name))
        }

        let listSamples = try drain(lists)
        XCTAssertEqual(listSamples.map(\.sourceKey), ["(unreadable list)", "000000001"])
        XCTAssertEqual(listSamples[0].location, SampleLocation(source: "a.jsonl", position: "line 1"))
        XCTAssertEqual(listSamples[0].problems.first?.hasPrefix("a.jsonl: cannot be read ("), true)
        XCTAssertEqual(lists.sourcesDone, 2)
        XCTAssertEqual(try drain(csv).map(\.sourceKey), ["(unreadable list)"])
        let shardSamples = try drain(shard)
        XCTAssertEqual(shardSamples.map(\.image.missingReason),
                       ["the shard cannot be opened; none of its samples were read"])
        let folderSamples = try drain(images)
        XCTAssertEqual(folderSamples.map(\.sourceKey), ["(unreadable folder)"])
        XCTAssertEqual(folderSamples.first?.location, SampleLocation(source: "p", position: "."))
    }

    func testLocationsDoNotDependOnWhereTheInputIsMounted() throws {
        let one = try TempFolder(self)
        let two = try TempFolder(self)
        for folder in [one, two] {
            let data = try Data(contentsOf: writeShard(folder.url("d/0.tar"), img2datasetMembers(["a", "b"])))
            try folder.write("d/1.tar", Array(data.prefix(2000)))
        }
        let spec = CorpusSpec(kind: .webdataset, paths: ["d/{0..1}.tar"])
        let first = try read(spec, in: one)
        let second = try read(spec, in: two)
        XCTAssertEqual(first.map(\.location), second.map(\.location))
        XCTAssertEqual(first.map(\.problems), second.map(\.problems), "problem text names the spec's path too")
        XCTAssertEqual(first.count, 4, "d/0's two samples; d/1's first sample with its intact first member; the damage")
    }

    func testSpecErrorsSayHowToFix() throws {
        let folder = try TempFolder(self)
        try folder.write("a.jsonl", "{}")
        func error(_ spec: CorpusSpec) -> CorpusError? {
            corpusError { _ = try CorpusReader(spec: spec, baseDirectory: folder.url) }
        }
        XCTAssertEqual(error(CorpusSpec(kind: .jsonl, paths: []))?.kind, .invalidSpec)
        XCTAssertEqual(error(CorpusSpec(kind: .jsonl, paths: ["a.jsonl"], imageExtensions: []))?.kind, .invalidSpec)
        XCTAssertEqual(error(CorpusSpec(kind: .jsonl, paths: ["a.jsonl"], captionExtension: "jpg"))?.kind,
                       .invalidSpec)
        XCTAssertEqual(error(CorpusSpec(kind: .jsonl, paths: ["a.jsonl"], imageColumn: "x", captionColumn: "x"))?
            .description, "input.image_column \"x\", input.caption_column \"x\" and input.key_column nil must name "
            + "different columns. "
            + "Fix the input section of the pipeline spec.")
        let missing = error(CorpusSpec(kind: .jsonl, paths: ["a.jsonl", "b.jsonl"]))
        XCTAssertEqual(missing?.kind, .pathNotFound)
        XCTAssertEqual(missing?.path, "b.jsonl")
        XCTAssertEqual(error(CorpusSpec(kind: .jsonl, paths: ["/dev/null"]))?.kind, .wrongPathType)
        XCTAssertEqual(error(CorpusSpec(kind: .webdataset, paths: [""]))?.kind, .invalidSpec)
    }

    /// Throughput on a 10k-line JSONL list and a 10k-sample shard. Off by default (it is a measurement, not a
    /// check); run with CAPFILT_CORPUS_BENCH=1.
    func testThroughput() throws {
        guard ProcessInfo.processInfo.environment["CAPFILT_CORPUS_BENCH"] != nil else {
            throw XCTSkip("set CAPFILT_CORPUS_BENCH=1 to measure")
        }
        let folder = try TempFolder(self)
        let count = 10_000
        var jsonl = ""
        for index in 0..<count {
            jsonl += #"{"image": "images/\#(index).jpg", "caption": "a photo of thing number \#(index) on a table", "#
                + #""width": 640, "height": 480, "url": "https://example.com/\#(index).jpg"}"# + "\n"
        }
        try folder.write("bench.jsonl", jsonl)
        let keys = (0..<count).map { String(format: "%09d", $0) }
        let writer = try TarWriter(url: folder.url("bench.tar"))
        let image = [UInt8](repeating: 0xab, count: 8_000)
        for key in keys {
            try writer.add(name: key + ".jpg", bytes: image)
            try writer.add(name: key + ".txt", bytes: Array("a photo of thing \(key)".utf8))
            try writer.add(name: key + ".json", bytes: Array("{\"key\": \"\(key)\", \"status\": \"success\"}".utf8))
        }
        try writer.finish()
        for (name, spec) in [("jsonl", CorpusSpec(kind: .jsonl, paths: ["bench.jsonl"])),
                             ("webdataset (8 KB images)", CorpusSpec(kind: .webdataset, paths: ["bench.tar"]))] {
            let start = Date()
            let reader = try CorpusReader(spec: spec, baseDirectory: folder.url)
            var read = 0
            while try reader.next() != nil { read += 1 }
            let seconds = Date().timeIntervalSince(start)
            XCTAssertEqual(read, count)
            print("corpus throughput \(name): \(count) samples in \(String(format: "%.3f", seconds)) s = "
                + "\(Int(Double(count) / seconds)) samples/s")
        }
    }
}
