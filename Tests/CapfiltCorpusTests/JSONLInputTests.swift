// JSONL lists as users write them: image paths relative to the list (".." allowed), absolute or file:// URLs,
// captions of any JSON string, extra columns kept as written, and malformed lines as problem samples.

@testable import CapfiltCorpus
import Foundation
import XCTest

final class JSONLInputTests: XCTestCase {
    func testAListFromAStrangerCannotPullOtherFilesOfTheMachineIn() throws {
        let folder = try TempFolder(self)
        try folder.write("scrape/img/ok.jpg", [0xFF, 0xD8, 0xFF])
        try folder.write("secret/key.pem", Array("private".utf8))
        try folder.symlink("scrape/img/evil.jpg", to: "../../secret/key.pem")
        let lines = [
            #"{"image": "img/ok.jpg"}"#,
            #"{"image": "/etc/passwd"}"#,
            #"{"image": "../../../../../../etc/passwd"}"#,
            #"{"image": "file:///etc/passwd"}"#,
            #"{"image": "img/evil.jpg"}"#,
            #"{"image": "../secret/key.pem"}"#,
            #"{"image": "../nothing-there.jpg"}"#,
            #"{"image": "img/../img/ok.jpg"}"#,
        ]
        try folder.write("scrape/list.jsonl", lines.joined(separator: "\n") + "\n")
        try folder.write("scrape/list.csv", "image,caption\n/etc/passwd,x\nimg/ok.jpg,y\n")
        let samples = try read(CorpusSpec(kind: .jsonl, paths: ["scrape/list.jsonl"]), in: folder)
        XCTAssertEqual(samples.map(\.image.refusal), [nil, .pathOutsideRoot, .pathOutsideRoot, .pathOutsideRoot,
                                                      .pathOutsideRoot, .pathOutsideRoot, .pathOutsideRoot, nil])
        for sample in samples where sample.image.refusal != nil {
            // Nothing outside is ever opened: the payload carries no path to read.
            XCTAssertNil(sample.image.fileURL)
            guard case .failure(let failure) = CorpusReader.readImage(sample.image, maxBytes: 1 << 20) else {
                return XCTFail("\(sample.location) was readable")
            }
            XCTAssertEqual(failure.code, "path_outside_root")
        }
        let real = FileSystem.realPath(folder.path + "/scrape/img/ok.jpg")
        XCTAssertEqual(samples[7].image.fileURL?.path, real, "'..' that stays inside is fine")
        let csv = try read(CorpusSpec(kind: .csv, paths: ["scrape/list.csv"]), in: folder)
        XCTAssertEqual(csv.map(\.image.refusal), [.pathOutsideRoot, nil], "the same rule for every list format")
        // The explicit opt-out reads what it names.
        var trusted = CorpusSpec(kind: .jsonl, paths: ["scrape/list.jsonl"])
        trusted.allowAnyPath = true
        XCTAssertEqual(try read(trusted, in: folder).compactMap(\.image.refusal), [])
    }

    func testPathsCaptionsAndExtraColumns() throws {
        let folder = try TempFolder(self)
        let lines = [
            #"{"image": "img/a.jpg", "caption": "a dog", "width": 640, "ratio": 1.50, "nsfw": false, "tags": ["x", {"y": 1}], "note": null, "src": "web"}"#,
            "",
            #"{"image": "../shared/b.png", "caption": "caf\u00e9 \ud83d\udc36 日本", "n": 1e3, "bad": NaN}"#,
            "   ",
            #"{"image": "\#(folder.path)/abs/c.webp", "caption": ""}"#,
            #"{"image": "file://\#(folder.path)/abs/d.jpg"}"#,
            #"{"image": "https://example.com/e.jpg", "caption": "remote"}"#,
            #"{"image": "f.jpg", "caption": 42}"#,
            #"{"image": "g.jpg", "caption": null, "image_id": 7}"#,
            #"{"image": 5, "caption": "image is a number"}"#,
            #"{"caption": "no image column"}"#,
        ]
        try folder.write("lists/part.jsonl", lines.joined(separator: "\n") + "\n")
        var trusting = CorpusSpec(kind: .jsonl, paths: ["lists/part.jsonl"])
        trusting.allowAnyPath = true
        let samples = try read(trusting, in: folder)
        XCTAssertEqual(samples.count, 9, "blank and whitespace-only lines are skipped")
        XCTAssertEqual(samples.map(\.location.position), ["line 1", "line 3", "line 5", "line 6", "line 7", "line 8",
                                                          "line 9", "line 10", "line 11"],
                       "positions are physical line numbers")
        XCTAssertEqual(samples.map(\.sourceKey), (0..<9).map { String(format: "%09d", $0) },
                       "no key column: img2dataset-style keys from the ordinal")

        let lists = folder.url("lists")
        XCTAssertEqual(samples[0].image, .file(lists.appendingPathComponent("img/a.jpg")))
        XCTAssertEqual(samples[0].text, .text("a dog"))
        XCTAssertEqual(samples[0].metadata, ["width": "640", "ratio": "1.50", "nsfw": "false",
                                             "tags": #"["x", {"y": 1}]"#, "src": "web"],
                       "scalars as written, nested values as their JSON text, null omitted")
        XCTAssertEqual(samples[0].problems, [])
        XCTAssertEqual(samples[1].image, .file(lists.appendingPathComponent("../shared/b.png")),
                       "with allow_any_path, '..' leaves the list's folder; the pipeline reads and checks the file later")
        XCTAssertEqual(samples[1].text, .text("café 🐶 日本"), "escapes, surrogate pairs and raw UTF-8")
        XCTAssertEqual(samples[1].metadata, ["n": "1e3", "bad": "NaN"], "Python's json writes NaN")
        XCTAssertEqual(samples[2].image, .file(URL(fileURLWithPath: folder.path + "/abs/c.webp")))
        XCTAssertEqual(samples[2].text, .text(""), "an empty JSON string is an (empty) caption")
        XCTAssertEqual(samples[3].image, .file(URL(fileURLWithPath: folder.path + "/abs/d.jpg")))
        XCTAssertEqual(samples[3].text, .missing)
        XCTAssertEqual(samples[4].image.missingReason, "line 7: column \"image\" is a URL (https://...); capfilt "
            + "reads local files only: download the list first (e.g. img2dataset) and point capfilt at the shards")
        XCTAssertEqual(samples[4].image.refusal, .imageIsURL)

        // By default a list names files under its own folder only: '..', absolute paths and file:// URLs that
        // leave it are refused per sample (a stranger's list must not pull /etc/shadow into a dataset).
        let confined = try read(CorpusSpec(kind: .jsonl, paths: ["lists/part.jsonl"]), in: folder)
        XCTAssertEqual(confined[0].image, samples[0].image, "inside the folder: read as before")
        for i in [1, 2, 3] {
            XCTAssertEqual(confined[i].image.refusal, .pathOutsideRoot, "\(confined[i].location)")
            XCTAssertTrue(confined[i].image.missingReason?.contains("outside the list's folder") == true)
        }
        // input.root widens the allowed folder to one the spec names.
        var rooted = CorpusSpec(kind: .jsonl, paths: ["lists/part.jsonl"])
        rooted.root = "."
        let widened = try read(rooted, in: folder)
        XCTAssertNil(widened[1].image.refusal, "../shared is inside the root")
        XCTAssertNil(widened[2].image.refusal, "an absolute path inside the root")
        XCTAssertEqual(samples[5].text, .missing)
        XCTAssertEqual(samples[5].problems,
                       ["line 8: column \"caption\" is a number, not a string; caption treated as missing"])
        XCTAssertEqual(samples[6].text, .missing)
        XCTAssertEqual(samples[6].problems, [])
        XCTAssertEqual(samples[6].metadata, ["image_id": "7"])
        XCTAssertEqual(samples[7].image.missingReason, "line 10: column \"image\" is a number, not a path")
        XCTAssertEqual(samples[8].image.missingReason, "line 11 has no column \"image\"")
        XCTAssertEqual(samples[8].text, .text("no image column"))
    }

    func testMalformedLinesBecomeProblemSamplesAndReadingGoesOn() throws {
        let folder = try TempFolder(self)
        var bytes = Array(#"{"image": "a.jpg", "caption": "ok"}"#.utf8) + [10]
        bytes += Array(#"{"image": "b.jpg", "caption": "unterminated}"#.utf8) + [10]
        bytes += Array(#"["image", "c.jpg"]"#.utf8) + [10]
        bytes += Array(#"{"image": "d.jpg" "caption": "no comma"}"#.utf8) + [10]
        bytes += Array(#"{"image": "e.jpg", "caption": "bad \x escape"}"#.utf8) + [10]
        bytes += Array(#"{"image": "f.jpg", "caption": "x"} trailing"#.utf8) + [10]
        bytes += Array(#"{"image": "g.jpg", "caption": "\#u{1}raw control"}"#.utf8) + [10]
        bytes += Array(#"{"image": "h.jpg", "caption": "caf"#.utf8) + [0xe9] + Array(#"", "k": "v"#.utf8) + [0xff]
            + Array(#""}"#.utf8) + [10]
        bytes += Array(#"{"image": "i.jpg", "caption": "lone \udc00 surrogate"}"#.utf8) + [10]
        bytes += Array(#"{"image": "j.jpg", "caption": "last, no newline"}"#.utf8)
        try folder.write("l.jsonl", bytes)
        let samples = try read(CorpusSpec(kind: .jsonl, paths: ["l.jsonl"]), in: folder)
        XCTAssertEqual(samples.count, 10)
        XCTAssertEqual(samples[0].text, .text("ok"))
        let expected = [
            (1, "line 2: not valid JSON (a string is not closed at column 45)"),
            (2, "line 3: not valid JSON (expected a JSON object ('{'), found an array at column 1)"),
            (3, "line 4: not valid JSON (expected ',' or '}' after the value of \"image\" at column 19)"),
            (4, "line 5: not valid JSON ('\\x' is not a JSON escape at column 36)"),
            (5, "line 6: not valid JSON (unexpected text after the object at column 36)"),
            (6, "line 7: not valid JSON (a control character (0x1) inside a string must be escaped at column 32)"),
        ]
        for (index, problem) in expected {
            let sample = samples[index]
            XCTAssertEqual(sample.problems, [problem])
            XCTAssertEqual(sample.image.missingReason, "line \(index + 1) could not be read (see problems)")
            XCTAssertEqual(sample.text, .missing)
            XCTAssertEqual(sample.location.position, "line \(index + 1)")
        }
        XCTAssertEqual(samples[7].text, .invalidUTF8(byteCount: 4), "invalid UTF-8 is reported, not repaired")
        XCTAssertEqual(samples[7].metadata, ["k": "v\u{FFFD}"])
        XCTAssertEqual(samples[7].problems, ["line 8: column \"k\" is not valid UTF-8; invalid bytes replaced by "
            + "U+FFFD in metadata"])
        XCTAssertEqual(samples[8].text, .text("lone \u{FFFD} surrogate"))
        XCTAssertEqual(samples[8].problems, ["line 9: column \"caption\" has 1 lone UTF-16 surrogate escape(s), "
            + "replaced by U+FFFD"])
        XCTAssertEqual(samples[9].text, .text("last, no newline"))
        XCTAssertEqual(samples.map(\.ordinal), Array(0..<10))
    }

    func testKeyColumnCustomColumnsBOMAndCRLF() throws {
        let folder = try TempFolder(self)
        let text = "\u{FEFF}" + [
            #"{"url": "a.jpg", "text": "first", "key": "000010005"}"#,
            #"{"url": "b.jpg", "text": "second", "key": 12}"#,
            #"{"url": "c.jpg", "text": "third"}"#,
        ].joined(separator: "\r\n") + "\r\n"
        try folder.write("k.jsonl", text)
        let spec = CorpusSpec(kind: .jsonl, paths: ["k.jsonl"], imageColumn: "url", captionColumn: "text",
                              keyColumn: "key")
        let samples = try read(spec, in: folder)
        XCTAssertEqual(samples.map(\.sourceKey), ["000010005", "12", "000000002"])
        XCTAssertEqual(samples.map(\.text), [.text("first"), .text("second"), .text("third")],
                       "a BOM at the start and CRLF line ends are not part of the JSON")
        XCTAssertEqual(samples[0].metadata, [:], "the key column is the key, not metadata")
        XCTAssertEqual(samples[2].problems, ["line 3: key column \"key\" is absent, empty, null or not text; key "
            + "000000002 derived from the ordinal"])
    }

    func testListFolderIsItsJSONLFilesSortedAndOrdinalsRunAcrossThem() throws {
        let folder = try TempFolder(self)
        try folder.write("lists/b.jsonl", #"{"image": "b1.jpg"}"# + "\n" + #"{"image": "b2.jpg"}"#)
        try folder.write("lists/a.jsonl", #"{"image": "a1.jpg"}"#)
        try folder.write("lists/c.JSONL", #"{"image": "c1.jpg"}"#)
        try folder.write("lists/notes.txt", "ignored")
        try folder.write("more.jsonl", #"{"image": "m1.jpg"}"#)
        try folder.symlink("lists/d.jsonl", to: "../more.jsonl")
        let reader = try CorpusReader(spec: CorpusSpec(kind: .jsonl, paths: ["lists", "more.jsonl"]),
                                      baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["lists/a.jsonl", "lists/b.jsonl", "lists/c.JSONL", "lists/d.jsonl",
                                        "more.jsonl"])
        XCTAssertEqual(reader.sourceCount, 5)
        let samples = try drain(reader)
        XCTAssertEqual(samples.map { $0.image.fileURL?.lastPathComponent }, ["a1.jpg", "b1.jpg", "b2.jpg", "c1.jpg",
                                                                             nil, "m1.jpg"])
        XCTAssertEqual(samples[4].location, SampleLocation(source: "lists/d.jsonl", position: "line 1"))
        XCTAssertTrue(samples[4].image.missingReason?.hasPrefix("symbolic link leading outside lists/") == true,
                      "a link out of a list folder is refused like one out of an image folder")
        XCTAssertEqual(samples.map(\.ordinal), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(reader.sourcesDone, 5)
    }

    func testOverlongLineIsSkippedWithoutStoppingTheList() throws {
        let folder = try TempFolder(self)
        let long = #"{"image": "x.jpg", "caption": ""# + String(repeating: "y", count: (8 << 20) + 10) + #""}"#
        try folder.write("long.jsonl", #"{"image": "a.jpg"}"# + "\n" + long + "\n" + #"{"image": "b.jpg"}"# + "\n")
        let samples = try read(CorpusSpec(kind: .jsonl, paths: ["long.jsonl"]), in: folder)
        XCTAssertEqual(samples.count, 3)
        XCTAssertEqual(samples[1].location.position, "line 2")
        XCTAssertTrue(samples[1].problems.first?.hasPrefix("line 2: line of 8388651 bytes is longer than the "
            + "8388608-byte limit") == true, "\(samples[1].problems)")
        XCTAssertEqual(samples[2].image.fileURL?.lastPathComponent, "b.jpg")
        XCTAssertEqual(samples[2].location.position, "line 3")
    }
}
