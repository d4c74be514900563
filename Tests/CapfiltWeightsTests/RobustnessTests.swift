// Checkpoints are untrusted input: truncated or bit-flipped files (and pickles) must give an error or a
// valid reader, never a crash. Deterministic mutations of the good fixtures, every truncation length,
// fed from memory.
import Foundation
import XCTest
@testable import CapfiltWeights

final class RobustnessTests: XCTestCase {
    /// A small deterministic generator (SplitMix64), so failures reproduce.
    private struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// Opens `bytes` as a file and, if that works, reads every float tensor.
    private func exercise(_ bytes: [UInt8], open: (MappedFile) throws -> TensorSource) throws -> Bool {
        do {
            let source = try open(MappedFile(contents: bytes, path: "mutated"))
            for (name, d) in source.descriptors where d.elementType.isFloatingPoint {
                _ = try source.float32Tensor(named: name)
            }
            return true
        } catch is WeightsError {
            return false
        }
    }

    func testTruncationsAndBitFlipsNeverCrash() throws {
        var rng = SplitMix(state: 42)
        let cases: [(String, (MappedFile) throws -> TensorSource)] = [
            ("good.safetensors", { try SafeTensorsFile(file: $0) }),
            ("good.bin", { try TorchCheckpointFile(file: $0) }),
        ]
        for (name, open) in cases {
            let original = [UInt8](try Data(contentsOf: Fixtures.url(name)))
            var opened = 0, refused = 0
            // Every proper prefix is refused.
            for length in 0..<original.count {
                XCTAssertFalse(try exercise(Array(original[..<length]), open: open), "\(name) cut at \(length)")
            }
            for _ in 0..<2000 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if try exercise(bytes, open: open) { opened += 1 } else { refused += 1 }
            }
            print("\(name): every truncation refused; 2000 mutations, \(opened) opened, \(refused) refused")
        }
    }

    /// Mutated data.pkl bytes straight into the unpickler (the zip CRC would otherwise catch most).
    func testMutatedPicklesNeverCrash() throws {
        let file = try MappedFile(url: Fixtures.url("good.bin"))
        let archive = try ZipArchive(file: file)
        guard let entry = archive.entries.first(where: { $0.name.hasSuffix("/data.pkl") }) else { return XCTFail("no data.pkl") }
        let original = Array(UnsafeRawBufferPointer(rebasing: file.bytes[try archive.dataRange(of: entry)]))
        var rng = SplitMix(state: 7)
        var loaded = 0
        for round in 0..<3000 {
            var bytes = original
            if round % 3 == 0 {
                bytes = Array(bytes[..<Int.random(in: 0..<bytes.count, using: &rng)])
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            do {
                _ = try bytes.withUnsafeBytes { try RestrictedUnpickler.load($0, path: "fuzz", entryName: "data.pkl") }
                loaded += 1
            } catch let error as WeightsError {
                XCTAssertTrue([.invalidPickle, .forbiddenPickle, .unknownElementType].contains(error.kind), "\(error)")
            }
        }
        print("data.pkl: 3000 mutations, \(loaded) still parsed")
    }
}
