// Every code point through our character classes and normalizer against the Rust normalizer / pre-tokenizer.
// Guards the generated tables and the parts borrowed from Swift and Foundation (lowercase mappings, NFD).
import Foundation
import XCTest
@testable import CapfiltText

final class UnicodeBehaviourTests: XCTestCase {
    private static let allScalars: [Unicode.Scalar] = (0...0x10FFFF).compactMap { Unicode.Scalar(UInt32($0)) }

    /// Membership per code point, walked in order: an independent check of the binary-searched tables.
    private struct RangeWalker {
        let ranges: [[UInt32]]
        var next = 0

        init(_ ranges: [[UInt32]]) { self.ranges = ranges.sorted { $0[0] < $1[0] } }

        /// Asked for ascending values only.
        mutating func contains(_ v: UInt32) -> Bool {
            while next < ranges.count && ranges[next][1] < v { next += 1 }
            return next < ranges.count && ranges[next][0] <= v
        }
    }

    func testCharacterClasses() throws {
        let oracle = try Fixtures.load(Fixtures.UnicodeBehaviour.self, "unicode.json")
        var dropped = RangeWalker(oracle.dropped), punctuation = RangeWalker(oracle.punctuation)
        var chinese = RangeWalker(oracle.chinese), marks = RangeWalker(oracle.nonspacing_marks)
        let whitespace = Set(oracle.whitespace), splits = Set(oracle.splits)
        var mismatches: [String] = []
        func check(_ name: String, _ v: UInt32, _ ours: Bool, _ theirs: Bool) {
            if ours != theirs { mismatches.append(String(format: "%@ U+%04X ours=%@", name, v, "\(ours)")) }
        }
        for scalar in Self.allScalars {
            let v = scalar.value
            let isDropped = BertCharacters.isDropped(v)
            check("dropped", v, isDropped, dropped.contains(v))
            check("whitespace", v, !isDropped && v != 0x20 && BertCharacters.isCleanTextWhitespace(v),
                  whitespace.contains(v))
            check("punctuation", v, BertCharacters.isPunctuation(v), punctuation.contains(v))
            check("pre-tokenizer whitespace", v, BertCharacters.isRustWhitespace(v), splits.contains(v))
            check("chinese", v, BertCharacters.isChineseIdeograph(v), chinese.contains(v))
            check("nonspacing mark", v, BertCharacters.isNonspacingMark(v), marks.contains(v))
        }
        XCTAssertEqual(mismatches.count, 0, mismatches.prefix(40).joined(separator: "\n"))
    }

    /// NFD + drop Mn + lowercase (BLIP's settings), and lowercase alone, of every scalar.
    func testNormalizationOfEveryScalar() throws {
        let oracle = try Fixtures.load(Fixtures.UnicodeBehaviour.self, "unicode.json")
        let stripping = BasicTokenizer(lowercase: true, stripAccents: nil, splitChineseCharacters: false)
        let lowering = BasicTokenizer(lowercase: true, stripAccents: false, splitChineseCharacters: false)
        var output: [Unicode.Scalar] = [], scratch: [Unicode.Scalar] = []
        var mismatches: [String] = []
        var checked = 0
        for scalar in Self.allScalars {
            let v = scalar.value
            // The goldens keep one Hangul syllable in 37 (they decompose algorithmically).
            if v >= 0xAC00 && v <= 0xD7A3 && v % 37 != 0 { continue }
            // Unassigned and private-use scalars have no mappings in either Unicode version: the goldens must agree,
            // and skipping them spares ~950k Foundation calls.
            switch scalar.properties.generalCategory {
            case .unassigned, .privateUse:
                XCTAssertNil(oracle.strip_and_lowercase[String(v)], String(format: "U+%04X", v))
                continue
            default:
                break
            }
            checked += 1
            for (name, tokenizer, table) in [("strip+lower", stripping, oracle.strip_and_lowercase),
                                             ("lower", lowering, oracle.lowercase)] {
                output.removeAll(keepingCapacity: true)
                tokenizer.normalize([scalar][...], into: &output, scratch: &scratch)
                let expected = table[String(v)].map { Array($0.unicodeScalars) } ?? [scalar]
                if output != expected {
                    mismatches.append(String(format: "%@ U+%04X: ", name, v)
                        + "\(output.map { String($0.value, radix: 16) }) want \(expected.map { String($0.value, radix: 16) })")
                }
            }
        }
        print("[CapfiltText] unicode: \(checked) scalars normalized, \(mismatches.count) differ")
        XCTAssertEqual(mismatches.count, 0, mismatches.prefix(40).joined(separator: "\n"))
    }
}
