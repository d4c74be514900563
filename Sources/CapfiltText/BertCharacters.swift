// Character classes of the Rust BertNormalizer and BertPreTokenizer (tokenizers 0.23), scalar by scalar.
// The tables come from BertUnicodeTables.swift because the Rust crates use older Unicode data than Swift does.
import Foundation

enum BertCharacters {
    /// `clean_text` deletes it: NUL, U+FFFD, control/format/private-use (tab, LF and CR are whitespace instead).
    @inline(__always)
    static func isDropped(_ v: UInt32) -> Bool {
        if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
        if v < 0xA0 { return true }
        return contains(BertUnicodeTables.dropped, v)
    }

    /// `clean_text` maps it to a space. Only asked about scalars that survived `isDropped`.
    @inline(__always)
    static func isCleanTextWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D }
        return BertUnicodeTables.whitespace.contains(v)
    }

    /// Rust `char::is_whitespace` (Unicode White_Space), which the pre-tokenizer splits on and `trim_end` trims.
    @inline(__always)
    static func isRustWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return v == 0x85 || BertUnicodeTables.whitespace.contains(v)
    }

    /// The pre-tokenizer makes it a word of its own: ASCII punctuation or the crate's Unicode P* categories.
    @inline(__always)
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60)
                || (v >= 0x7B && v <= 0x7E)
        }
        return contains(BertUnicodeTables.punctuation, v)
    }

    /// Accent stripping deletes it after NFD (the crate's Mn category).
    @inline(__always)
    static func isNonspacingMark(_ v: UInt32) -> Bool {
        v >= 0x300 && contains(BertUnicodeTables.nonspacingMarks, v)
    }

    /// The normalizer puts spaces around it. Exactly the Rust ranges, which leave out U+2B820...U+2B91F.
    @inline(__always)
    static func isChineseIdeograph(_ v: UInt32) -> Bool {
        if v < 0x3400 { return false }
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Scalars Foundation decomposes under NFD but the Rust normalizer (older Unicode data) leaves alone.
    /// Found by the exhaustive code-point test against unicode.json; all are starters (ccc 0).
    static let decompositionExceptions: Set<UInt32> = [0x11938]

    /// Appends the NFD form of `scalars` to `output`, as the Rust normalizer computes it.
    static func appendNFD(of scalars: ArraySlice<Unicode.Scalar>, to output: inout [Unicode.Scalar]) {
        // Runs between exception scalars are independent: the exceptions are starters.
        var runStart = scalars.startIndex
        for index in scalars.indices where decompositionExceptions.contains(scalars[index].value) {
            appendFoundationNFD(of: scalars[runStart..<index], to: &output)
            output.append(scalars[index])
            runStart = index + 1
        }
        appendFoundationNFD(of: scalars[runStart...], to: &output)
    }

    private static func appendFoundationNFD(of scalars: ArraySlice<Unicode.Scalar>, to output: inout [Unicode.Scalar]) {
        if scalars.isEmpty { return }
        // Below U+00C0 nothing decomposes and nothing reorders (all starters), so skip Foundation.
        if !scalars.contains(where: { $0.value >= 0xC0 }) {
            output.append(contentsOf: scalars)
            return
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        output.append(contentsOf: String(view).decomposedStringWithCanonicalMapping.unicodeScalars)
    }

    /// Appends Rust's `char::to_lowercase` of `scalar`: the full mapping (U+0130 -> "i\u{307}"), no context rules.
    @inline(__always)
    static func appendLowercase(of scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) {
        let v = scalar.value
        if v < 0x80 {
            output.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(UInt8(v + 0x20)) : scalar)
            return
        }
        output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
    }

    /// Appends the UTF-8 encoding of `scalar`.
    @inline(__always)
    static func appendUTF8(of scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        let v = scalar.value
        switch v {
        case 0..<0x80:
            bytes.append(UInt8(v))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | (v >> 6)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | (v >> 12)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        default:
            bytes.append(UInt8(0xF0 | (v >> 18)))
            bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// Binary search in sorted, disjoint ranges.
    @inline(__always)
    static func contains(_ ranges: [ClosedRange<UInt32>], _ v: UInt32) -> Bool {
        var lo = 0
        var hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            let range = ranges[mid]
            if v < range.lowerBound {
                hi = mid
            } else if v > range.upperBound {
                lo = mid + 1
            } else {
                return true
            }
        }
        return false
    }
}
