// The 512-byte tar header block: field layout, number codecs and checksums, shared by the reader and the writer.
// Layout follows POSIX ustar (IEEE 1003.1-2008, pax) with GNU's base-256 numbers; v7 headers are ustar without magic.

/// Byte ranges and helpers for one 512-byte header block.
enum TarHeader {
    static let blockSize = 512
    /// tar(1) and Python's tarfile pad archives to a whole record of 20 blocks.
    static let recordSize = 10_240

    static let name = 0..<100
    static let mode = 100..<108
    static let uid = 108..<116
    static let gid = 116..<124
    static let size = 124..<136
    static let mtime = 136..<148
    static let checksum = 148..<156
    static let typeflag = 156
    static let linkName = 157..<257
    static let magic = 257..<263
    static let version = 263..<265
    static let uname = 265..<297
    static let gname = 297..<329
    static let devMajor = 329..<337
    static let devMinor = 337..<345
    static let prefix = 345..<500
    /// Old GNU sparse headers: "more sparse headers follow" flag.
    static let gnuSparseIsExtended = 482
    /// Old GNU sparse extension blocks: same flag, at the end of the block.
    static let gnuSparseExtensionIsExtended = 504

    /// Which header dialect the magic field announces; it decides whether the prefix field is a path prefix.
    enum Dialect: Equatable {
        case posix   // "ustar\0" "00": prefix holds the leading path
        case gnu     // "ustar " " \0": bytes 345... hold atime/ctime, not a prefix
        case v7      // no magic: no prefix field at all
    }

    static func dialect(of block: [UInt8]) -> Dialect {
        let magicBytes = Array(block[magic])
        if magicBytes == Array("ustar\0".utf8) { return .posix }
        if magicBytes == Array("ustar ".utf8) { return .gnu }
        return .v7
    }

    /// Rounds a byte count up to whole blocks.
    static func padded(_ count: Int64) -> Int64 {
        (count + Int64(blockSize) - 1) / Int64(blockSize) * Int64(blockSize)
    }

    // MARK: Reading

    /// Bytes up to the first NUL, as C strings are stored in fixed-width fields.
    static func cString(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if let end = bytes.firstIndex(of: 0) { return bytes[bytes.startIndex..<end] }
        return bytes
    }

    /// Parses a numeric field: octal ASCII (spaces/NULs around it allowed) or GNU base-256 (high bit set on the
    /// first byte; 0xff marks a negative two's-complement number). Returns nil when the field is not a number.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            return base256(field)
        }
        var value: Int64 = 0
        var sawDigit = false
        var index = field.startIndex
        // Leading spaces are common in old writers ("    644 ").
        while index < field.endIndex, field[index] == 0x20 { index += 1 }
        while index < field.endIndex {
            let byte = field[index]
            if byte >= 0x30 && byte <= 0x37 {
                let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
                if overflow { return nil }
                value = shifted + Int64(byte - 0x30)
                sawDigit = true
                index += 1
            } else {
                break
            }
        }
        // Whatever follows the digits must be terminators only.
        while index < field.endIndex {
            let byte = field[index]
            if byte != 0 && byte != 0x20 { return nil }
            index += 1
        }
        // An all-blank field means zero, as in Python's tarfile.
        return sawDigit ? value : 0
    }

    private static func base256(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        let negative = first == 0xff
        // The first byte contributes its low 7 bits for positive numbers (0x80 marker), all 8 for negatives.
        var value: Int64 = negative ? -1 : Int64(first & 0x7f)
        for byte in field.dropFirst() {
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 256)
            if overflow { return nil }
            value = shifted | Int64(byte)
        }
        return value
    }

    /// The two checksums tar writers have used: unsigned and signed byte sums, with the checksum field as spaces.
    static func checksums(_ block: [UInt8]) -> (unsigned: Int64, signed: Int64) {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in block.enumerated() {
            let value: UInt8 = checksum.contains(index) ? 0x20 : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        return (unsigned, signed)
    }

    // MARK: Writing

    /// Writes `value` as zero-padded octal filling `range` minus one terminating NUL, as GNU tar and Python do.
    /// Returns false when the value does not fit (the caller then moves it to a PAX record).
    @discardableResult
    static func putOctal(_ value: Int64, into block: inout [UInt8], at range: Range<Int>) -> Bool {
        let digits = range.count - 1
        guard value >= 0 else { return false }
        var text = Array(String(value, radix: 8).utf8)
        guard text.count <= digits else { return false }
        text.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits - text.count), at: 0)
        block.replaceSubrange(range.lowerBound..<(range.lowerBound + digits), with: text)
        block[range.upperBound - 1] = 0
        return true
    }

    /// Copies bytes into a field, NUL-padding the rest. The caller has checked that they fit.
    static func putBytes<Bytes: Collection>(_ bytes: Bytes, into block: inout [UInt8], at range: Range<Int>)
    where Bytes.Element == UInt8 {
        precondition(bytes.count <= range.count, "field overflow: caller must check the length")
        var index = range.lowerBound
        for byte in bytes {
            block[index] = byte
            index += 1
        }
        while index < range.upperBound {
            block[index] = 0
            index += 1
        }
    }

    /// Fills in the checksum field the way GNU tar does: six octal digits, NUL, space.
    static func seal(_ block: inout [UInt8]) {
        let sum = checksums(block).unsigned
        var text = Array(String(sum, radix: 8).utf8)
        text.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, 6 - text.count)), at: 0)
        block.replaceSubrange(checksum.lowerBound..<(checksum.lowerBound + 6), with: text.suffix(6))
        block[checksum.lowerBound + 6] = 0
        block[checksum.lowerBound + 7] = 0x20
    }
}
