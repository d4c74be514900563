// CSV as Python's csv module and pandas read it (RFC 4180 quoting, a BOM from Excel, CRLF), TSV split on tabs
// without quoting, headers checked up front, and a row with the wrong field count reported, never shifted.

import CapfiltCorpus
import Foundation
import XCTest

final class DelimitedInputTests: XCTestCase {
    func testCSVQuotingAsRFC4180() throws {
        let folder = try TempFolder(self)
        let csv = "\u{FEFF}image,caption,source\r\n"
            + "a.jpg,plain caption,web\r\n"
            + "b.jpg,\"a caption, with a comma\",web\r\n"
            + "c.jpg,\"she said \"\"hi\"\"\",\"x\"\r\n"
            + "d.jpg,\"two\r\nlines\nand three\",web\r\n"
            + "\r\n"
            + "e.jpg,,\r\n"
            + "f.jpg,mid\"quote,\"\"\r\n"
            + "\"g.jpg\",\"ab\"c,web\n"
            + "h.jpg,last line without newline,"
        try folder.write("list.csv", csv)
        let samples = try read(CorpusSpec(kind: .csv, paths: ["list.csv"]), in: folder)

        XCTAssertEqual(samples.map { $0.image.fileURL?.lastPathComponent },
                       ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg", "h.jpg"],
                       "the BOM is not part of the first column's name")
        XCTAssertEqual(samples.map(\.text), [
            .text("plain caption"), .text("a caption, with a comma"), .text("she said \"hi\""),
            .text("two\r\nlines\nand three"), .missing, .text("mid\"quote"), .text("abc"),
            .text("last line without newline"),
        ], "embedded separators, doubled quotes and line breaks as written; an empty field is a missing caption")
        XCTAssertEqual(samples.map(\.location.position),
                       ["line 2", "line 3", "line 4", "line 5", "line 9", "line 10", "line 11", "line 12"],
                       "a record's position is the line it starts on; blank lines are skipped but counted")
        XCTAssertEqual(samples[0].metadata, ["source": "web"])
        XCTAssertEqual(samples[2].metadata, ["source": "x"])
        XCTAssertEqual(samples[4].metadata, ["source": ""])
        XCTAssertEqual(samples[0].image, .file(folder.url("list.csv").deletingLastPathComponent()
            .appendingPathComponent("a.jpg")))
        XCTAssertTrue(samples.allSatisfy { $0.problems.isEmpty })
    }

    func testWrongFieldCountAndUnclosedQuoteAreProblemSamples() throws {
        let folder = try TempFolder(self)
        try folder.write("rows.csv", "url,text\n"
            + "a.jpg,ok\n"
            + "b.jpg,an unquoted, comma\n"
            + "c.jpg\n"
            + "d.jpg,\"fine\"\n"
            + "e.jpg,\"never closed\n"
            + "f.jpg,swallowed\n")
        let samples = try read(CorpusSpec(kind: .csv, paths: ["rows.csv"], imageColumn: "url", captionColumn: "text"),
                               in: folder)
        XCTAssertEqual(samples.count, 5)
        XCTAssertEqual(samples[1].problems, ["line 3: 3 field(s) where the header has 2; row skipped (quote fields "
            + "that contain the separator)"])
        XCTAssertEqual(samples[1].image.missingReason, "line 3 could not be read (see problems)")
        XCTAssertEqual(samples[1].text, .missing)
        XCTAssertEqual(samples[2].problems.first?.hasPrefix("line 4: 1 field(s) where the header has 2"), true)
        XCTAssertEqual(samples[3].text, .text("fine"))
        XCTAssertEqual(samples[4].problems, ["line 6: a quoted field opened on line 6 is not closed before the end "
            + "of the file"])
        XCTAssertEqual(samples.map(\.ordinal), [0, 1, 2, 3, 4])
    }

    func testHeaderChecksHappenUpFront() throws {
        let folder = try TempFolder(self)
        try folder.write("a.csv", "image,caption\nx.jpg,fine\n")
        try folder.write("b.csv", "url,caption ,caption\n")
        try folder.write("empty.csv", "\n\n")
        let missing = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .csv, paths: ["a.csv", "b.csv"]), baseDirectory: folder.url)
        }
        XCTAssertEqual(missing?.kind, .missingColumn)
        XCTAssertEqual(missing?.description, "b.csv: the header has no column for input.image_column \"image\"; "
            + "columns found: \"url\", \"caption \", \"caption\". Set input.image_column / input.caption_column / "
            + "input.key_column in the spec to one of the columns found, or fix the header row.")
        let key = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .csv, paths: ["a.csv"], keyColumn: "id"),
                                 baseDirectory: folder.url)
        }
        XCTAssertEqual(key?.kind, .missingColumn)
        XCTAssertTrue(key?.detail.contains("input.key_column \"id\"") == true)
        let empty = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .csv, paths: ["empty.csv"]), baseDirectory: folder.url)
        }
        XCTAssertEqual(empty?.kind, .noHeader)
        XCTAssertEqual(empty?.path, "empty.csv")
    }

    func testDuplicateHeaderNamesAreRenamedAsPandasDoes() throws {
        let folder = try TempFolder(self)
        try folder.write("d.csv", "image,caption,tag,tag,tag\nx.jpg,c,1,2,3\n")
        let samples = try read(CorpusSpec(kind: .csv, paths: ["d.csv"]), in: folder)
        XCTAssertEqual(samples.first?.metadata, ["tag": "1", "tag.1": "2", "tag.2": "3"])
    }

    func testTSVSplitsOnTabsWithoutQuoting() throws {
        let folder = try TempFolder(self)
        try folder.write("cc3m.tsv", "caption\timage\tid\r\n"
            + "a \"quoted\" word\timgs/a.jpg\t1\r\n"
            + "\"starts with a quote\", comma\timgs/b.jpg\t2\r\n"
            + "too\tmany\tfields\there\n"
            + "\timgs/d.jpg\t4\n")
        let samples = try read(CorpusSpec(kind: .tsv, paths: ["cc3m.tsv"], keyColumn: "id"), in: folder)
        XCTAssertEqual(samples.count, 4)
        XCTAssertEqual(samples[0].text, .text("a \"quoted\" word"))
        XCTAssertEqual(samples[1].text, .text("\"starts with a quote\", comma"), "quotes are ordinary in TSV")
        XCTAssertEqual(samples[1].image.fileURL?.path, folder.path + "/imgs/b.jpg")
        XCTAssertEqual(samples.map(\.sourceKey), ["1", "2", "000000002", "4"])
        XCTAssertEqual(samples[2].problems.first?.hasPrefix("line 4: 4 field(s) where the header has 3"), true)
        XCTAssertEqual(samples[3].text, .missing)
        XCTAssertEqual(samples[3].metadata, [:], "the key column is the key, not metadata")
    }
}
