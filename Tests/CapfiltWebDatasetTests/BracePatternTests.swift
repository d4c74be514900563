// Brace expansion matches Python's braceexpand (what webdataset and img2dataset use) on the shard-list shapes
// users write, and malformed patterns fail with a position instead of silently naming the wrong shards.

import XCTest
@testable import CapfiltWebDataset

final class BracePatternTests: XCTestCase {
    func testExpansions() throws {
        let cases: [(String, [String])] = [
            ("data/{00000..00003}.tar", ["data/00000.tar", "data/00001.tar", "data/00002.tar", "data/00003.tar"]),
            ("{9..11}", ["9", "10", "11"]),
            ("{09..11}", ["09", "10", "11"]),
            ("{8..011}", ["008", "009", "010", "011"]),
            ("{3..1}", ["3", "2", "1"]),
            ("{0..10..5}", ["0", "5", "10"]),
            ("{10..0..-5}", ["10", "5", "0"]),
            ("{-1..1}", ["-1", "0", "1"]),
            ("{-01..1}", ["-01", "000", "001"]),
            ("{a..c}", ["a", "b", "c"]),
            ("{Y..b}", ["Y", "Z", "a", "b"]),
            ("s3://bucket/{train,val}/{0..1}.tar", ["s3://bucket/train/0.tar", "s3://bucket/train/1.tar",
                                                    "s3://bucket/val/0.tar", "s3://bucket/val/1.tar"]),
            ("{a,b{1..2},c}", ["a", "b1", "b2", "c"]),
            ("{,x}y", ["y", "xy"]),
            ("plain.tar", ["plain.tar"]),
            ("", [""]),
            ("{single}.tar", ["{single}.tar"]),
            ("\\{a,b\\}", ["{a,b}"]),
            ("{a\\,b,c}", ["a,b", "c"]),
        ]
        for (pattern, expected) in cases {
            XCTAssertEqual(try BracePattern.expand(pattern), expected, pattern)
        }
        let shards = try BracePattern.expand("data/{00000..00099}.tar")
        XCTAssertEqual(shards.count, 100)
        XCTAssertEqual(shards.last, "data/00099.tar")
    }

    func testMalformedPatternsThrowWithPosition() {
        let cases: [(String, Int)] = [
            ("data/{0..3.tar", 5), ("data/0..3}.tar", 9), ("x{}", 1), ("{1..}", 0), ("{..2}", 0), ("{a..5}", 0),
            ("{1..5..0}", 0), ("{1..2..x}", 0), ("{1...3}", 0), ("x\\", 1), ("{0..99999999}", 0),
            ("{0..9999}{0..9999}", 0),
        ]
        for (pattern, position) in cases {
            XCTAssertThrowsError(try BracePattern.expand(pattern), pattern) { error in
                guard let error = error as? BracePatternError else { return XCTFail("\(pattern): \(error)") }
                XCTAssertEqual(error.position, position, "\(pattern): \(error)")
                XCTAssertTrue(error.description.contains("{START..END}"), "says how to fix: \(error)")
            }
        }
    }
}
