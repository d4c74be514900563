// A shard cut short anywhere loses exactly the members the cut reaches, never one before it, and is never read
// as complete. The model of what must survive is Python's tarfile's: a member is intact when its header, data
// and padding all lie before the cut; the archive is whole only if its end-of-archive block is there.
import Foundation
import XCTest
@testable import CapfiltWebDataset

final class DamagedShardTests: XCTestCase {
    /// The demo's first shard, as make_corpus.py writes it the way img2dataset does (150 samples, 450 members).
    private let demoShard = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Pipelines/demo/corpus/data/00000.tar")

    private struct Layout {
        /// (name, header offset, end of its padding) of every member, in order.
        var members: [(name: String, start: Int64, end: Int64)]
        /// Where the end-of-archive marker starts.
        var markerStart: Int64
    }

    private func layout(_ url: URL) throws -> Layout {
        let reader = try TarReader(url: url)
        var members: [(String, Int64, Int64)] = []
        while let m = try reader.next() {
            members.append((m.entry.name, m.entry.headerOffset, m.entry.headerOffset + 512 + TarHeader.padded(Int64(m.entry.size))))
        }
        return Layout(members: members, markerStart: members.last?.2 ?? 0)
    }

    /// Reads a cut copy: the member names of every sample returned, and whether (and where) it threw.
    private func readCut(_ bytes: Data, at cut: Int, in folder: URL) throws -> (names: [String], error: TarError?) {
        let url = folder.appendingPathComponent("cut-\(cut).tar")
        try bytes.prefix(cut).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let reader = try WebDatasetReader(url: url)
        var names: [String] = []
        do {
            while let sample = try reader.nextSample() {
                names += sample.members.keys.sorted().map { sample.key + "." + $0 }
            }
            return (names, nil)
        } catch let error as TarError {
            return (names, error)
        }
    }

    func testEveryIntactMemberBeforeACutIsReadAndTheCutIsReported() throws {
        let bytes = try Data(contentsOf: demoShard)
        let layout = try layout(demoShard)
        XCTAssertEqual(layout.members.count, 450)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-cuts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        // Cuts at random offsets (seeded), plus the edges that broke before: inside a member's padding, exactly at
        // a member boundary (no end-of-archive marker), inside the marker.
        var generator = SeededGenerator(seed: 9)
        var cuts = (0..<60).map { _ in Int.random(in: 1..<Int(layout.markerStart), using: &generator) }
        for m in layout.members.prefix(40).dropFirst(30) {
            cuts += [Int(m.end) - 1, Int(m.end) - 100, Int(m.end)]
        }
        cuts += [Int(layout.markerStart), Int(layout.markerStart) + 100]
        var lostBefore = 0
        for cut in cuts {
            let (names, error) = try readCut(bytes, at: cut, in: folder)
            let intact = layout.members.filter { $0.end <= Int64(cut) }.map(\.name)
            XCTAssertEqual(names.sorted(), intact.sorted(), "cut at \(cut): exactly the intact members")
            if names.count < intact.count { lostBefore += 1 }
            XCTAssertNotNil(error, "cut at \(cut): a shard whose end is missing is never complete")
            XCTAssertEqual(error?.kind, .truncated, "cut at \(cut)")
        }
        print("[damage] \(cuts.count) cuts of the demo shard: \(lostBefore) lost an intact member")
        // The whole shard, and the shard with only its first zero block, read completely and cleanly.
        for cut in [bytes.count, Int(layout.markerStart) + 512] {
            let (names, error) = try readCut(bytes, at: cut, in: folder)
            XCTAssertNil(error, "cut at \(cut)")
            XCTAssertEqual(names.count, 450)
        }
    }

    func testABadChecksumAfterTwoIntactSamplesKeepsBoth() throws {
        // Samples a and b, then c with a header whose checksum is wrong: a and b come back whole.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-checksum-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("s.tar")
        let writer = try TarWriter(url: url, mtime: 0)
        for key in ["a", "b", "c"] {
            try writer.add(name: "\(key).jpg", bytes: Array("jpeg \(key)".utf8))
            try writer.add(name: "\(key).txt", bytes: Array("text \(key)".utf8))
        }
        try writer.finish()
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[4 * 1024 + 148] ^= 0x01  // c.jpg's header checksum field
        try Data(bytes).write(to: url)
        let reader = try WebDatasetReader(url: url)
        XCTAssertEqual(try reader.nextSample()?.members, ["jpg": Array("jpeg a".utf8), "txt": Array("text a".utf8)])
        let b = try reader.nextSample()
        XCTAssertEqual(b?.members, ["jpg": Array("jpeg b".utf8), "txt": Array("text b".utf8)])
        XCTAssertThrowsError(try reader.nextSample()) { error in
            XCTAssertEqual((error as? TarError)?.kind, .badChecksum)
            XCTAssertEqual((error as? TarError)?.offset, 4096)
        }
    }
}

/// SplitMix64: reproducible cut offsets.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
