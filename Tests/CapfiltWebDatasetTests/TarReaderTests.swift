// TarReader against Python's tarfile: every well-formed fixture reads member for member as tarfile reads it, and
// damaged ones throw at the right offset after yielding their intact members.

import Foundation
import XCTest
@testable import CapfiltWebDataset

final class TarReaderTests: XCTestCase {
    func testEveryWellFormedArchiveReadsAsPythonTarfileReadsIt() throws {
        let expected = try Fixture.expectations()
        XCTAssertEqual(Set(expected.archives.keys),
                       ["ustar.tar", "gnu.tar", "pax.tar", "v7.tar", "shard.tar", "layout.tar", "hostile.tar",
                        "zeros.tar"])
        for (archive, members) in expected.archives.sorted(by: { $0.key < $1.key }) {
            let read = try readAll(Fixture.url(archive))
            XCTAssertEqual(read.count, members.count, archive)
            for (got, want) in zip(read, members) {
                let context = "\(archive): \(want.name.debugDescription)"
                XCTAssertEqual(got.entry.name, want.name, context)
                XCTAssertEqual(got.entry.kind, Fixture.kind(want.kind), context)
                XCTAssertEqual(got.entry.size, want.size, context)
                XCTAssertEqual(got.entry.mode, want.mode, context)
                XCTAssertEqual(got.entry.mtime, want.mtime, context)
                XCTAssertEqual(got.entry.linkName, want.linkName, context)
                XCTAssertEqual(got.entry.headerOffset, want.headerOffset, context)
                XCTAssertNil(got.problem, context)
                if let hash = want.fnv1a64 {
                    XCTAssertEqual(got.data.count, want.size, context)
                    XCTAssertEqual(fnv1a64(got.data), hash, context)
                } else {
                    XCTAssertTrue(got.data.isEmpty, "non-files carry no data: \(context)")
                }
                if let base64 = want.base64 {
                    XCTAssertEqual(Data(got.data), Data(base64Encoded: base64), context)
                }
            }
        }
    }

    func testLongNamesInEachDialect() throws {
        let ustar = try readAll(Fixture.url("ustar.tar")).map(\.entry.name)
        XCTAssertTrue(ustar.contains("images/" + String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 40)
            + "/" + String(repeating: "f", count: 80) + ".jpg"), "ustar prefix field joined with a slash")

        let gnu = try readAll(Fixture.url("gnu.tar"))
        let longest = "gnu/" + String(repeating: String(repeating: "x", count: 50) + "/", count: 5)
            + String(repeating: "y", count: 60) + ".txt"
        XCTAssertGreaterThan(longest.utf8.count, 255)
        XCTAssertEqual(gnu[1].entry.name, longest, "GNU 'L' long name")
        XCTAssertEqual(gnu[2].entry.linkName, String(repeating: "t", count: 150), "GNU 'K' long link")
        XCTAssertEqual(gnu[4].entry.mtime, -86400, "base-256 negative mtime")
        XCTAssertEqual(gnu[5].entry.name, "gnu/caf\u{e9}.txt", "raw UTF-8 in the name field")
        XCTAssertEqual(gnu[6].entry.size, 700, "base-256 size field")

        let pax = try readAll(Fixture.url("pax.tar"))
        XCTAssertGreaterThan(pax[0].entry.name.utf8.count, 255, "PAX path")
        XCTAssertEqual(pax[0].entry.headerOffset, 1024, "the global header is not part of the member")
        XCTAssertEqual(pax[1].entry.name, "pax/\u{65e5}\u{672c}\u{8a9e}/caf\u{e9}-\u{fc}.txt", "non-ASCII PAX path")
        XCTAssertEqual(pax[2].entry.linkName, "pax/" + String(repeating: "l", count: 140), "PAX linkpath")
        XCTAssertEqual(pax[3].entry.mtime, 1_700_000_000, "fractional PAX mtime truncated")

        let v7 = try readAll(Fixture.url("v7.tar"))
        XCTAssertEqual(v7.map(\.entry.kind), [.file, .directory, .file], "v7 directory marked by a trailing slash")
        XCTAssertEqual(v7[1].entry.name, "v7dir")
    }

    func testTruncatedAndCorruptArchivesThrowAtTheDamagedMember() throws {
        let damaged = try Fixture.expectations().damaged
        let cases: [(String, TarError.Kind)] = [
            ("truncated-data.tar", .truncated), ("truncated-header.tar", .truncated), ("bad-checksum.tar", .badChecksum),
        ]
        for (archive, kind) in cases {
            let damage = try XCTUnwrap(damaged[archive])
            let reader = try TarReader(url: Fixture.url(archive))
            for _ in 0..<damage.intactMembers {
                let member = try XCTUnwrap(reader.next(), archive)
                XCTAssertNil(member.problem, archive)
            }
            XCTAssertThrowsError(try reader.next(), archive) { error in
                guard let error = error as? TarError else { return XCTFail("\(archive): \(error)") }
                XCTAssertEqual(error.kind, kind, archive)
                XCTAssertEqual(error.offset, damage.memberHeaderOffset, archive)
                XCTAssertTrue(error.description.contains(archive), "message names the shard: \(error)")
                XCTAssertTrue(error.description.contains("byte \(damage.memberHeaderOffset)"), "\(error)")
                XCTAssertTrue(error.description.contains("regenerate"), "message says what to do: \(error)")
            }
            XCTAssertNil(try reader.next(), "a failed reader stays finished")
        }
    }

    func testHugeSizeClaimIsReportedThenTruncationThrows() throws {
        let damage = try XCTUnwrap(try Fixture.expectations().damaged["huge.tar"])
        let reader = try TarReader(url: Fixture.url("huge.tar"))
        let small = try XCTUnwrap(try reader.next())
        XCTAssertEqual(small.data, Array("small".utf8))
        let huge = try XCTUnwrap(try reader.next())
        XCTAssertEqual(huge.entry.name, "000002.jpg")
        XCTAssertEqual(huge.entry.size, 8 << 30)
        XCTAssertTrue(huge.data.isEmpty, "an 8 GiB claim is never loaded")
        XCTAssertTrue(huge.problem?.contains("exceeds") == true, huge.problem ?? "no problem")
        XCTAssertThrowsError(try reader.next()) { error in
            XCTAssertEqual((error as? TarError)?.kind, .truncated)
            XCTAssertEqual((error as? TarError)?.offset, damage.memberHeaderOffset)
        }
    }

    func testOversizeMembersAreSkippedAndTheRestReads() throws {
        let members = try readAll(Fixture.url("shard.tar"), maxMemberSize: 100)
        XCTAssertEqual(members.count, 12)
        for member in members {
            if member.entry.name.hasSuffix(".jpg") {
                XCTAssertTrue(member.data.isEmpty)
                XCTAssertTrue(member.problem?.contains("100-byte limit") == true, member.problem ?? "none")
            } else {
                XCTAssertNil(member.problem)
                XCTAssertEqual(member.data.count, member.entry.size)
            }
        }
    }

    func testEmptyFileThrowsAndZeroBlocksAreAnEmptyArchive() throws {
        XCTAssertThrowsError(try TarReader(url: Fixture.url("empty.tar")).next()) { error in
            XCTAssertEqual((error as? TarError)?.kind, .emptyArchive)
        }
        XCTAssertNil(try TarReader(url: Fixture.url("zeros.tar")).next())
        XCTAssertThrowsError(try TarReader(url: Fixture.url("no-such-shard.tar"))) { error in
            XCTAssertEqual((error as? TarError)?.kind, .cannotOpen)
        }
    }

    func testNumericFieldsOctalAndBase256() {
        func field(_ bytes: [UInt8]) -> Int64? { TarHeader.number(bytes[...]) }
        XCTAssertEqual(field(Array("0000644\0".utf8)), 0o644)
        XCTAssertEqual(field(Array("   644 \0".utf8)), 0o644, "leading spaces (old writers)")
        XCTAssertEqual(field(Array("00000000012\0".utf8)), 10)
        XCTAssertEqual(field([0, 0, 0, 0]), 0, "an empty field is zero")
        XCTAssertNil(field(Array("0000x44\0".utf8)))
        XCTAssertNil(field(Array("0009\0".utf8)), "9 is not octal")
        XCTAssertEqual(field([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]), 8 << 30)
        XCTAssertEqual(field([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), -2)
        XCTAssertNil(field([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), "overflow")
    }

    func testPaxRecords() {
        let body = Array("18 path=a/b/c.jpg\n11 size=42\n".utf8)
        let parsed = TarReader.parsePaxRecords(body)
        XCTAssertNil(parsed.problem)
        XCTAssertEqual(parsed.records["path"], Array("a/b/c.jpg".utf8))
        XCTAssertEqual(parsed.records["size"], Array("42".utf8))
        XCTAssertNotNil(TarReader.parsePaxRecords(Array("99 path=x\n".utf8)).problem, "length past the end")
        XCTAssertNotNil(TarReader.parsePaxRecords(Array("8 pathx\n".utf8)).problem, "no '='")
        XCTAssertNotNil(TarReader.parsePaxRecords(Array("0 x=\n".utf8)).problem, "zero length")
        XCTAssertNil(TarReader.parsePaxRecords(Array("11 size=42\n\0\0\0".utf8)).problem, "NUL padding is fine")
        XCTAssertEqual(TarReader.seconds(Array("1700000000.75".utf8)), 1_700_000_000)
        XCTAssertEqual(TarReader.seconds(Array("-1.5".utf8)), -2)
        XCTAssertEqual(TarReader.seconds(Array("-3".utf8)), -3)
    }

    /// Reads a synthetic ~100 MB tar and prints MB/s. Opt in: CAPFILT_TAR_BENCH=1 (best with -c release).
    func testReadThroughput() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["CAPFILT_TAR_BENCH"] == "1", "set CAPFILT_TAR_BENCH=1")
        let url = try temporaryDirectory(self).appendingPathComponent("bench.tar")
        let writer = try TarWriter(url: url)
        var payload = [UInt8](repeating: 0, count: 100_000)
        for index in 0..<1000 {
            payload[0] = UInt8(truncatingIfNeeded: index)
            let key = String(format: "%09d", index)
            try writer.add(name: key + ".jpg", bytes: payload)
            try writer.add(name: key + ".txt", bytes: Array("caption \(index)".utf8))
        }
        try writer.finish()
        let start = Date()
        var bytes = 0
        let reader = try TarReader(url: url)
        while let member = try reader.next() { bytes += member.data.count }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "tar read: %.1f MB in %.3f s = %.0f MB/s", Double(writer.bytesWritten) / 1e6, seconds,
                     Double(writer.bytesWritten) / 1e6 / seconds))
        XCTAssertGreaterThan(bytes, 100_000_000)
    }
}
