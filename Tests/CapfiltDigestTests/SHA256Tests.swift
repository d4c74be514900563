// SHA-256 against the FIPS 180-4 / NIST example vectors, chunked updates, and file hashing.
import Foundation
import XCTest
@testable import CapfiltDigest

final class SHA256Tests: XCTestCase {
    private func digest(_ s: String) -> String { SHA256.hex(SHA256.hash(Array(s.utf8))) }

    /// The standard vectors: empty, "abc", the 448- and 896-bit two-block messages.
    func testStandardVectors() {
        XCTAssertEqual(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(digest("The quick brown fox jumps over the lazy dog"),
                       "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592")
    }

    /// One million 'a', fed in one call and in irregular chunks that straddle block boundaries.
    func testMillionA() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(SHA256.hex(SHA256.hash(message)), expected)
        var h = SHA256()
        var i = 0, step = 1
        message.withUnsafeBytes { raw in
            while i < message.count {
                let n = min(step, message.count - i)
                h.update(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)]))
                i += n
                step = step * 7 % 1013 + 1  // 1..1013 bytes: every offset within a block gets hit
            }
        }
        XCTAssertEqual(SHA256.hex(h.finalize()), expected)
    }

    /// Every message length around the padding boundaries (55, 56, 63, 64, 119, 120 ...) hashed whole and
    /// byte by byte gives the same digest; finalize resets the hasher.
    func testChunkingIsInvisibleAtPaddingBoundaries() {
        for length in 0...200 {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let whole = SHA256.hash(message)
            var h = SHA256()
            for b in message { h.update([b]) }
            XCTAssertEqual(h.finalize(), whole, "length \(length)")
            h.update(message)
            XCTAssertEqual(h.finalize(), whole, "reuse after finalize, length \(length)")
        }
        // Two known lengths pin the padding logic to real values (checked with Python's hashlib).
        XCTAssertEqual(SHA256.hex(SHA256.hash([UInt8](repeating: 0, count: 55))),
                       "02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7")
        XCTAssertEqual(SHA256.hex(SHA256.hash([UInt8](repeating: 0, count: 64))),
                       "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
    }

    /// File hashing matches hashing the same bytes in memory, across the 4 MiB read chunk; an empty file
    /// hashes like the empty message; a missing file is a DigestError naming it.
    func testHashFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = (0..<((4 << 20) + 12345)).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 13) }
        let file = dir.appendingPathComponent("blob.bin")
        try Data(bytes).write(to: file)
        XCTAssertEqual(try SHA256.hash(file: file), SHA256.hex(SHA256.hash(bytes)))
        let empty = dir.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        XCTAssertEqual(try SHA256.hash(file: empty), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertThrowsError(try SHA256.hash(file: dir.appendingPathComponent("nope.bin"))) { error in
            XCTAssertTrue("\(error)".contains("nope.bin"), "\(error)")
        }
    }
}
