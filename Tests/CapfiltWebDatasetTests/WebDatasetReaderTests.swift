// Sample grouping follows webdataset's key rule, and hostile members are refused per sample with a reason while
// the rest of the shard still reads.

import Foundation
import XCTest
@testable import CapfiltWebDataset

final class WebDatasetReaderTests: XCTestCase {
    func testImg2datasetShardGroupsIntoSamples() throws {
        let samples = try readSamples(Fixture.url("shard.tar"))
        XCTAssertEqual(samples.map(\.key), ["000000000", "000000001", "000000003", "000000004"])
        let members = try XCTUnwrap(try Fixture.expectations().archives["shard.tar"])
        for sample in samples {
            XCTAssertEqual(Set(sample.members.keys), ["jpg", "txt", "json"], sample.key)
            XCTAssertEqual(sample.problems, [], sample.key)
            XCTAssertEqual(sample.shard, Fixture.url("shard.tar").path)
            let jpg = try XCTUnwrap(members.first { $0.name == sample.key + ".jpg" })
            XCTAssertEqual(sample.firstHeaderOffset, jpg.headerOffset)
            XCTAssertEqual(fnv1a64(sample.members["jpg"] ?? []), jpg.fnv1a64)
            XCTAssertEqual(Array(sample.members["jpg"]?.prefix(2) ?? []), [0xff, 0xd8])
        }
        XCTAssertEqual(samples[2].members["txt"], Array("caption number 3".utf8))
    }

    func testGroupingFollowsTheWebDatasetKeyRule() throws {
        let reader = try WebDatasetReader(url: Fixture.url("layout.tar"))
        var samples: [WebDatasetSample] = []
        while let sample = try reader.nextSample() { samples.append(sample) }
        XCTAssertEqual(samples.map(\.key),
                       ["train/part.1/000010", "000011", "000012", "000013", "000012", "./000015"],
                       "a key ends at the first dot of the base name; a key seen again later starts a new sample")
        XCTAssertEqual(samples[0].members, ["jpg": Array("jpg 10".utf8), "txt": Array("txt 10".utf8)])
        XCTAssertEqual(samples[1].members,
                       ["seg.png": Array("png 11".utf8), "jpg": Array("jpg 11".utf8), "txt": Array("txt 11".utf8)],
                       "extensions lowercased, multi-dot kept, keyless README does not end the sample")
        XCTAssertEqual(samples[2].members, ["jpg": Array("jpg 12".utf8)])
        XCTAssertEqual(samples[4].members, ["txt": Array("txt 12 again".utf8)])
        XCTAssertTrue(samples.allSatisfy { $0.problems.isEmpty })
        XCTAssertEqual(reader.ignoredMemberCount, 1, "README")
    }

    func testKeySplitting() {
        func split(_ name: String) -> [String]? { WebDatasetKey.split(name).map { [$0.key, $0.extension] } }
        XCTAssertEqual(split("000123.jpg"), ["000123", "jpg"])
        XCTAssertEqual(split("a/b.c.d"), ["a/b", "c.d"])
        XCTAssertEqual(split("a.b/c.d"), ["a.b/c", "d"], "dots in directories do not count")
        XCTAssertEqual(split("./000015.jpg"), ["./000015", "jpg"])
        XCTAssertEqual(split("x."), ["x", ""])
        XCTAssertEqual(split("\u{65e5}\u{672c}.txt"), ["\u{65e5}\u{672c}", "txt"])
        XCTAssertNil(split("README"))
        XCTAssertNil(split("a.b/c"))
        XCTAssertNil(split(".hidden"))
        XCTAssertNil(split("dir/.hidden"))
        XCTAssertNil(split("dir/"))
    }

    func testHostileMembersAreRefusedPerSampleAndTheShardStillReads() throws {
        let samples = try readSamples(Fixture.url("hostile.tar"))
        // "/etc/passwd" and "..\\evil.txt" have no webdataset key (no dot after the last slash, or a leading dot),
        // so their problem-only samples are keyed by the full name.
        XCTAssertEqual(samples.map(\.key), [
            "000001", "../evil", "/etc/passwd", "a/../../b", "..\\evil.txt", "000002", "000003", "dev/null0", "000004",
            "nul\0name", "000005", "000006",
        ])
        func sample(_ key: String) throws -> WebDatasetSample { try XCTUnwrap(samples.first { $0.key == key }, key) }

        XCTAssertEqual(try sample("000001").members, ["jpg": Array("jpg 1".utf8), "txt": Array("txt 1".utf8)])
        XCTAssertEqual(try sample("000006").members, ["jpg": Array("jpg 6".utf8), "txt": Array("txt 6".utf8)])
        XCTAssertEqual(try sample("000001").problems, [])
        XCTAssertEqual(try sample("000006").problems, [])

        let reasons: [(String, String)] = [
            ("../evil", "'..' component"), ("/etc/passwd", "absolute path"), ("a/../../b", "'..' component"),
            ("..\\evil.txt", "backslash"), ("000003", "hard link to '000001.txt'"), ("dev/null0", "character device"),
            ("000004", "fifo"), ("nul\0name", "NUL byte"),
        ]
        for (key, reason) in reasons {
            let refused = try sample(key)
            XCTAssertEqual(refused.members, [:], "nothing extracted from \(key.debugDescription)")
            XCTAssertEqual(refused.problems.count, 1, key.debugDescription)
            XCTAssertTrue(refused.problems.first?.contains(reason) == true,
                          "\(key.debugDescription): \(refused.problems)")
            XCTAssertTrue(refused.problems.first?.hasSuffix("refused") == true)
        }

        let linked = try sample("000002")
        XCTAssertEqual(linked.members, ["txt": Array("txt 2".utf8)], "the symlinked jpg is refused, the txt kept")
        XCTAssertEqual(linked.problems.count, 1)
        XCTAssertTrue(linked.problems[0].contains("symbolic link to '/etc/shadow'"), "\(linked.problems)")
        XCTAssertEqual(linked.firstHeaderOffset, 6144, "starts at the refused symlink")

        let duplicated = try sample("000005")
        XCTAssertEqual(duplicated.members, ["txt": Array("first txt 5".utf8), "jpg": Array("jpg 5".utf8)])
        XCTAssertEqual(duplicated.problems.count, 2, "a second .txt and a .TXT")
        XCTAssertTrue(duplicated.problems.allSatisfy { $0.contains("duplicate '.txt'") }, "\(duplicated.problems)")
    }

    func testOversizeMembersBecomeSampleProblems() throws {
        let samples = try readSamples(Fixture.url("shard.tar"), maxMemberSize: 100)
        XCTAssertEqual(samples.count, 4)
        for sample in samples {
            XCTAssertEqual(Set(sample.members.keys), ["txt", "json"])
            XCTAssertEqual(sample.problems.count, 1)
            XCTAssertTrue(sample.problems[0].contains(".jpg") && sample.problems[0].contains("limit"))
        }
    }

    func testDamagedShardsThrowAfterTheirIntactSamples() throws {
        // The first sample's .json is where each archive is damaged: the sample comes back with its intact members
        // (as Python's tarfile reads them) and a problem saying that what followed is lost; then the error.
        for archive in ["truncated-data.tar", "truncated-header.tar", "bad-checksum.tar"] {
            let reader = try WebDatasetReader(url: Fixture.url(archive))
            let first = try reader.nextSample()
            XCTAssertEqual(first.map { Set($0.members.keys) }, ["jpg", "txt"], archive)
            XCTAssertEqual(first?.problems.count, 1, archive)
            XCTAssertTrue(first?.problems.first?.contains("damaged at byte 3072") == true, "\(archive): \(first?.problems ?? [])")
            XCTAssertThrowsError(try reader.nextSample(), archive) { error in
                XCTAssertEqual((error as? TarError)?.offset, 3072, archive)
            }
            XCTAssertNil(try reader.nextSample(), "finished after the error: \(archive)")
        }
        let reader = try WebDatasetReader(url: Fixture.url("huge.tar"))
        XCTAssertEqual(try reader.nextSample()?.members, ["txt": Array("small".utf8)])
        let oversize = try reader.nextSample()
        XCTAssertEqual(oversize?.members, [:], "the 8 GiB claim is refused, not loaded")
        XCTAssertThrowsError(try reader.nextSample()) { error in
            XCTAssertEqual((error as? TarError)?.kind, .truncated)
        }
    }

    func testMemberNameSafety() {
        let unsafe = [
            "", "/etc/passwd", "../x", "a/../../b", "a/..", "..", ".", "./", "./.", "a\\..\\b", "C:/x", "c:x.txt",
            "nul\0x", "line\nbreak", "bell\u{7}", String(repeating: "a", count: 4097),
        ]
        for name in unsafe {
            XCTAssertNotNil(MemberName.unsafeReason(name), name.debugDescription)
        }
        let safe = ["000001.jpg", "./000001.jpg", "train/part.1/x.txt", "a..b.txt", "...txt", "caf\u{e9}.jpg",
                    "a//b.txt", String(repeating: "a", count: 4096)]
        for name in safe {
            XCTAssertNil(MemberName.unsafeReason(name), name.debugDescription)
        }
    }

    func testProblemsPerSampleAreBounded() {
        var sample = WebDatasetSample(key: "k", members: [:], problems: [], shard: "s", firstHeaderOffset: 0)
        for index in 0..<250 { sample.record("problem \(index)") }
        XCTAssertEqual(sample.problems.count, WebDatasetReader.maxProblemsPerSample + 1)
        XCTAssertEqual(sample.problems.last, "150 more problems omitted")
    }
}
