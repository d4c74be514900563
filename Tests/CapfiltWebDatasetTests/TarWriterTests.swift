// TarWriter is deterministic, reads back through our reader, and is read (and re-encoded byte for byte) by
// Python's tarfile.

import Foundation
import XCTest
@testable import CapfiltWebDataset

final class TarWriterTests: XCTestCase {
    /// Names that exercise every header path: plain, exactly 100 bytes, ustar prefix split, too long to split,
    /// no slash to split at, non-ASCII.
    static let members: [(String, [UInt8])] = {
        func bytes(_ count: Int, _ seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 * 31 + seed) } }
        return [
            ("000000000.jpg", bytes(1500, 1)),
            ("000000000.txt", Array("a caption".utf8)),
            ("000000000.json", Array("{\"key\":\"000000000\"}".utf8)),
            ("empty.bin", []),
            ("block.bin", bytes(512, 2)),
            ("block-plus-one.bin", bytes(513, 3)),
            (String(repeating: "n", count: 96) + ".txt", bytes(10, 4)),  // exactly 100 bytes
            ("train/" + String(repeating: "d", count: 70) + "/" + String(repeating: "f", count: 90) + ".jpg", bytes(20, 5)),
            ("deep/" + String(repeating: "p/", count: 100) + String(repeating: "q", count: 40) + ".txt", bytes(30, 6)),
            (String(repeating: "s", count: 120) + ".txt", bytes(40, 7)),
            ("caf\u{e9}/\u{65e5}\u{672c}\u{8a9e}.txt", Array("\u{65e5}\u{672c}\u{8a9e}".utf8)),
            ("big.bin", bytes(3 << 20, 8)),  // larger than the writer's and reader's 1 MiB chunks
        ]
    }()

    private func write(_ url: URL, mtime: Int = 0) throws -> Int64 {
        let writer = try TarWriter(url: url, mtime: mtime)
        for (name, bytes) in Self.members { try writer.add(name: name, bytes: bytes) }
        try writer.finish()
        try writer.finish()  // a second finish does nothing
        return writer.bytesWritten
    }

    func testOutputIsByteIdenticalAcrossRuns() throws {
        let directory = try temporaryDirectory(self)
        let first = directory.appendingPathComponent("a.tar")
        let second = directory.appendingPathComponent("b.tar")
        let written = try write(first)
        _ = try write(second)
        let bytes = try Data(contentsOf: first)
        XCTAssertEqual(bytes, try Data(contentsOf: second))
        XCTAssertEqual(Int64(bytes.count), written, "bytesWritten is the file size after finish")
        XCTAssertEqual(bytes.count % TarHeader.recordSize, 0, "padded to whole 10240-byte records")
        XCTAssertTrue(bytes.suffix(1024).allSatisfy { $0 == 0 }, "ends with two zero blocks")

        let stamped = directory.appendingPathComponent("c.tar")
        _ = try write(stamped, mtime: 1_700_000_000)
        XCTAssertNotEqual(try Data(contentsOf: stamped), bytes, "mtime is part of the output")
    }

    func testOutputReadsBackThroughOurReader() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("out.tar")
        _ = try write(url, mtime: 1_234_567)
        let read = try readAll(url)
        XCTAssertEqual(read.map(\.entry.name), Self.members.map(\.0))
        for (got, (name, bytes)) in zip(read, Self.members) {
            XCTAssertEqual(got.entry.kind, .file, name)
            XCTAssertEqual(got.data, bytes, name)
            XCTAssertEqual(got.entry.mode, 0o644, name)
            XCTAssertEqual(got.entry.mtime, 1_234_567, name)
            XCTAssertNil(got.problem, name)
        }
        let samples = try readSamples(url)
        XCTAssertEqual(samples.first?.key, "000000000")
        XCTAssertEqual(Set(samples.first?.members.keys ?? [:].keys), ["jpg", "txt", "json"])
    }

    func testPythonTarfileReadsOutputAndEncodesTheSameBytes() throws {
        guard let python = python3() else { throw XCTSkip("python3 is not on PATH") }
        let url = try temporaryDirectory(self).appendingPathComponent("out.tar")
        _ = try write(url, mtime: 1_700_000_000)
        // tarfile lists the archive, then re-encodes each member with TarInfo.tobuf (ustar where the name fits,
        // PAX otherwise, the writer's rule) to check our headers byte for byte.
        let script = """
        import json, sys, tarfile, zlib
        path = sys.argv[1]
        raw = open(path, "rb").read()
        out, rebuilt = [], b""
        with tarfile.open(path, "r:") as tar:
            for m in tar.getmembers():
                data = tar.extractfile(m).read()
                out.append({"name": m.name, "size": m.size, "crc": zlib.crc32(data),
                            "mode": m.mode, "mtime": m.mtime, "uid": m.uid, "gid": m.gid, "uname": m.uname,
                            "gname": m.gname, "type": m.type.decode(), "isreg": m.isreg()})
                info = tarfile.TarInfo(m.name)
                info.size, info.mtime, info.mode = len(data), m.mtime, 0o644
                fmt = tarfile.USTAR_FORMAT
                try:
                    info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")
                except (ValueError, UnicodeEncodeError):
                    fmt = tarfile.PAX_FORMAT
                rebuilt += info.tobuf(fmt, "utf-8", "surrogateescape") + data + bytes(-len(data) % 512)
        rebuilt += bytes(1024)
        rebuilt += bytes(-len(rebuilt) % 10240)
        print(json.dumps({"members": out, "identical": rebuilt == raw, "size": len(raw)}))
        """
        let output = try runPython(python, script: script, arguments: [url.path])
        struct Listing: Decodable {
            struct Member: Decodable {
                let name: String, size: Int, crc: UInt32, mode: Int, mtime: Int, uid: Int, gid: Int
                let uname: String, gname: String, type: String, isreg: Bool
            }
            let members: [Member]
            let identical: Bool
        }
        let listing = try JSONDecoder().decode(Listing.self, from: output)
        XCTAssertEqual(listing.members.map(\.name), Self.members.map(\.0))
        for (got, (name, bytes)) in zip(listing.members, Self.members) {
            XCTAssertEqual(got.size, bytes.count, name)
            XCTAssertEqual(got.crc, crc32(bytes), name)
            XCTAssertEqual([got.mode, got.mtime, got.uid, got.gid], [0o644, 1_700_000_000, 0, 0], name)
            XCTAssertEqual([got.uname, got.gname, got.type], ["", "", "0"], name)
            XCTAssertTrue(got.isreg, name)
        }
        XCTAssertTrue(listing.identical, "our bytes equal tarfile's own encoding of the same members")
    }

    func testRejectsNamesReadersWouldRefuse() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("out.tar")
        let writer = try TarWriter(url: url)
        for name in ["", "../x.txt", "/abs.txt", "a/../../b.txt", "dir/", "x\0y.txt", "a\\b.txt"] {
            XCTAssertThrowsError(try writer.add(name: name, bytes: [1]), name.debugDescription) { error in
                XCTAssertEqual((error as? TarError)?.kind, .invalidMemberName, name.debugDescription)
            }
        }
        try writer.add(name: "ok.txt", bytes: [1])
        try writer.finish()
        XCTAssertThrowsError(try writer.add(name: "late.txt", bytes: [])) { error in
            XCTAssertEqual((error as? TarError)?.kind, .writerFinished)
        }
        XCTAssertEqual(try readAll(url).map(\.entry.name), ["ok.txt"], "refused names leave no trace")
        XCTAssertThrowsError(try TarWriter(url: url, mtime: -1)) { error in
            XCTAssertEqual((error as? TarError)?.kind, .invalidArgument)
        }
    }

    func testUstarSplitMatchesPythonsRule() {
        func split(_ name: String) -> [String]? {
            TarWriter.ustarSplit(Array(name.utf8)).map {
                [String(decoding: $0.prefix, as: UTF8.self), String(decoding: $0.name, as: UTF8.self)]
            }
        }
        XCTAssertEqual(split("short.txt"), ["", "short.txt"])
        let a = String(repeating: "a", count: 60), b = String(repeating: "b", count: 60)
        XCTAssertEqual(split("\(a)/\(b)/c.txt"), [a, "\(b)/c.txt"], "shortest prefix that fits")
        XCTAssertNil(split(String(repeating: "x", count: 101)), "no slash")
        XCTAssertNil(split(String(repeating: "x", count: 156) + "/y.txt"), "prefix too long")
    }

    func testPaxRecordLengthsCountTheirOwnDigits() {
        // Around the 1->2 and 2->3 digit boundaries a naive length is off by one.
        for valueLength in 0..<1100 {
            let value = [UInt8](repeating: UInt8(ascii: "v"), count: valueLength)
            let body = TarWriter.paxBody([("path", value)])
            let parsed = TarReader.parsePaxRecords(body)
            XCTAssertNil(parsed.problem, "value length \(valueLength)")
            XCTAssertEqual(parsed.records["path"], value, "value length \(valueLength)")
        }
    }
}
