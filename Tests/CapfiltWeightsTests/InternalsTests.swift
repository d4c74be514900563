// The building blocks on their own: half-float widening, strided gathers, the JSON reader and the
// restricted unpickler on hand-written pickles.
import Foundation
import XCTest
@testable import CapfiltWeights

final class InternalsTests: XCTestCase {
    /// All 65,536 half bit patterns against the platform's Float16 (NaNs: payload kept, bits shifted).
    func testHalfToFloatIsExactForEveryBitPattern() {
        #if !(os(macOS) && arch(x86_64))
        var mismatches = 0
        for bits in 0...UInt16.max {
            let got = ElementConversion.floatFromHalf(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                if !got.isNaN || got.bitPattern != (UInt32(bits & 0x8000) << 16 | 0x7f80_0000 | UInt32(bits & 0x3ff) << 13) {
                    mismatches += 1
                }
            } else if got.bitPattern != reference.bitPattern {
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
        #endif
    }

    /// Random shapes, permutations and offsets: the gather equals a naive index computation.
    func testGatherMatchesNaiveIndexing() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let rank = Int.random(in: 0...4, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 1...4, using: &rng) }
            // Strides of a contiguous tensor of a permuted shape, then permuted back: a general view.
            let order = Array(0..<rank).shuffled(using: &rng)
            var strides = [Int](repeating: 0, count: rank)
            var running = 1
            for d in order.reversed() { strides[d] = running; running *= shape[d] }
            let offset = Int.random(in: 0...5, using: &rng)
            let storageCount = offset + running
            let storage = (0..<storageCount).map { Float($0) * 0.5 - 3 }
            let count = shape.reduce(1, *)
            var out = [Float](repeating: .nan, count: count)
            storage.withUnsafeBytes { raw in
                out.withUnsafeMutableBufferPointer { dst in
                    ElementConversion.gather(raw.baseAddress!, type: .float32, bigEndian: false, shape: shape,
                                             strides: strides, offset: offset, into: dst.baseAddress!)
                }
            }
            var expected: [Float] = []
            for linear in 0..<count {
                var rest = linear, index = offset
                for d in (0..<rank).reversed() { index += (rest % shape[d]) * strides[d]; rest /= shape[d] }
                expected.append(storage[index])
            }
            XCTAssertEqual(out, expected, "shape \(shape) strides \(strides) offset \(offset)")
        }
    }

    func testBigEndianAndBFloat16Conversion() {
        let bytes: [UInt8] = [0x3f, 0x80, 0x00, 0x00, 0xc0, 0x20, 0x00, 0x00]  // 1.0, -2.5 big-endian F32
        var out = [Float](repeating: 0, count: 2)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { ElementConversion.convert(raw.baseAddress!, type: .float32, bigEndian: true, count: 2, into: $0.baseAddress!) }
        }
        XCTAssertEqual(out, [1.0, -2.5])
        let bf: [UInt8] = [0x80, 0x3f, 0x20, 0xc0]  // little-endian BF16 1.0, -2.5
        bf.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { ElementConversion.convert(raw.baseAddress!, type: .bfloat16, bigEndian: false, count: 2, into: $0.baseAddress!) }
        }
        XCTAssertEqual(out, [1.0, -2.5])
    }

    func testJSONReader() throws {
        let value = try JSONParser.parse(Array(#" {"a": [1, -2, 9007199254740993, 1.5e3], "b\u00e9\n": "x\ud83d\ude00", "c": null, "d": true}  "#.utf8))
        XCTAssertEqual(value["a"]?.arrayElements?.compactMap(\.intValue), [1, -2, 9_007_199_254_740_993])
        XCTAssertEqual(value["bé\n"]?.stringValue, "x😀")
        XCTAssertEqual(value["c"], .null)
        XCTAssertEqual(value["d"], .bool(true))
        for bad in [#"{"a": 1, "a": 2}"#, #"{"a": 1,}"#, "[01]", #""\x""#, "[1] x", String(repeating: "[", count: 100)] {
            XCTAssertThrowsError(try JSONParser.parse(Array(bad.utf8)), bad)
        }
    }

    private func unpickle(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { try RestrictedUnpickler.load($0, path: "test", entryName: "data.pkl") }
    }

    /// Data opcodes beyond what torch writes: LONG1 (negative), BINFLOAT, lists, memo, FRAME, STACK_GLOBAL.
    func testUnpicklerDataOpcodes() throws {
        // PROTO 4, FRAME, [LONG1 -2, BINFLOAT 1.5, SHORT_BINUNICODE "hi"] via EMPTY_LIST MEMOIZE MARK ... APPENDS
        let bytes: [UInt8] = [0x80, 4, 0x95] + [UInt8](repeating: 0, count: 8) +
            [0x5d, 0x94, 0x28, 0x8a, 1, 0xfe, 0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x8c, 2, 0x68, 0x69, 0x65,
             0x68, 0, 0x61, 0x2e]  // ... APPENDS, BINGET 0 (the list itself), APPEND, STOP
        guard case let .list(list) = try unpickle(bytes) else { return XCTFail("not a list") }
        XCTAssertEqual(list.items.count, 4)
        if case let .int(n) = list.items[0] { XCTAssertEqual(n, -2) } else { XCTFail("\(list.items[0])") }
        if case let .float(x) = list.items[1] { XCTAssertEqual(x, 1.5) } else { XCTFail("\(list.items[1])") }
        if case let .string(s) = list.items[2] { XCTAssertEqual(s, "hi") } else { XCTFail("\(list.items[2])") }
        if case .list = list.items[3] {} else { XCTFail("memo should hold the same list") }

        // STACK_GLOBAL goes through the same whitelist as GLOBAL.
        let stackGlobal: [UInt8] = [0x80, 4, 0x8c, 8] + Array("builtins".utf8) + [0x8c, 4] + Array("exec".utf8) + [0x93, 0x2e]
        XCTAssertThrowsError(try unpickle(stackGlobal)) { error in
            XCTAssertEqual((error as? WeightsError)?.kind, .forbiddenPickle)
            XCTAssertTrue("\(error)".contains("builtins.exec"), "\(error)")
        }
        // Truncated and unterminated pickles are invalid, not crashes.
        for bad: [UInt8] in [[0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f], [0x80, 2, 0x4e], [0x80, 2, 0x2e], [0x80, 2, 0x68, 9, 0x2e], [0x80, 2, 0x74]] {
            XCTAssertThrowsError(try unpickle(bad)) { error in
                XCTAssertEqual((error as? WeightsError)?.kind, .invalidPickle, "\(bad): \(error)")
            }
        }
    }
}
