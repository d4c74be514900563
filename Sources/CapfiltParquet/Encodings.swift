// Value and level decoders for the encodings pyarrow and datasets write (PLAIN, RLE/bit-packed hybrid, dictionary
// indices, DELTA_*, BYTE_STREAM_SPLIT). Each reads from a bounded window and never produces more values than asked
// for, so a hostile run length cannot make it allocate more than the page's declared count.

/// A read cursor over `bytes[position..<end]`.
struct ByteCursor {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - position }

    mutating func take(_ n: Int, _ what: String) throws -> Range<Int> {
        guard n >= 0, n <= remaining else {
            throw FormatError(.corrupt, "\(what) needs \(n) bytes but only \(remaining) remain in the page")
        }
        defer { position += n }
        return position..<position + n
    }

    mutating func byte(_ what: String) throws -> UInt8 {
        bytes[try take(1, what).lowerBound]
    }

    mutating func uint32LE(_ what: String) throws -> UInt32 {
        let r = try take(4, what)
        return UInt32(bytes[r.lowerBound]) | UInt32(bytes[r.lowerBound + 1]) << 8
            | UInt32(bytes[r.lowerBound + 2]) << 16 | UInt32(bytes[r.lowerBound + 3]) << 24
    }

    mutating func uint64LE(_ what: String) throws -> UInt64 {
        let r = try take(8, what)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[r.lowerBound + i]) << (8 * UInt64(i)) }
        return v
    }

    mutating func uleb128(_ what: String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte(what)
            guard shift < 64 else { throw FormatError(.corrupt, "\(what): a varint is longer than 10 bytes") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func zigzag(_ what: String) throws -> Int64 {
        let v = try uleb128(what)
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }
}

/// Reads `bitWidth`-bit little-endian-packed values (LSB first), as RLE bit-packed runs and DELTA miniblocks do.
private func unpack<T: FixedWidthInteger & UnsignedInteger>(_ bytes: [UInt8], at start: Int, bitWidth: Int, count: Int,
                                                             into out: inout [T]) {
    guard bitWidth > 0 else {
        out.append(contentsOf: repeatElement(0, count: count))
        return
    }
    let mask: UInt64 = bitWidth == 64 ? ~0 : (1 << UInt64(bitWidth)) - 1
    var bitPosition = start * 8
    for _ in 0..<count {
        var value: UInt64 = 0
        var got = 0
        while got < bitWidth {
            let byteIndex = bitPosition >> 3
            let bitOffset = bitPosition & 7
            let available = min(8 - bitOffset, bitWidth - got)
            let bits = (UInt64(bytes[byteIndex]) >> UInt64(bitOffset)) & ((1 << UInt64(available)) - 1)
            value |= bits << UInt64(got)
            got += available
            bitPosition += available
        }
        out.append(T(truncatingIfNeeded: value & mask))
    }
}

/// The RLE / bit-packed hybrid (levels, dictionary indices, RLE booleans): exactly `count` values or an error.
func decodeRLEHybrid(_ cursor: inout ByteCursor, bitWidth: Int, count: Int, what: String) throws -> [UInt32] {
    guard (0...32).contains(bitWidth) else {
        throw FormatError(.corrupt, "\(what): bit width \(bitWidth) is outside 0...32")
    }
    var out: [UInt32] = []
    out.reserveCapacity(count)
    let valueBytes = (bitWidth + 7) / 8
    while out.count < count {
        guard cursor.remaining > 0 else {
            throw FormatError(.corrupt, "\(what): RLE data ends after \(out.count) of \(count) values")
        }
        let header = try cursor.uleb128(what)
        if header & 1 == 1 {
            let groups = header >> 1
            guard groups <= UInt64(cursor.remaining) else {
                throw FormatError(.corrupt, "\(what): a bit-packed run claims \(groups) groups past the page end")
            }
            let values = Int(groups) * 8
            let byteCount = Int(groups) * bitWidth
            let range = try cursor.take(byteCount, what)
            // The last group may be padding past `count`.
            unpack(cursor.bytes, at: range.lowerBound, bitWidth: bitWidth, count: min(values, count - out.count), into: &out)
        } else {
            let run = header >> 1
            let range = try cursor.take(valueBytes, what)
            var value: UInt64 = 0
            for (i, index) in range.enumerated() { value |= UInt64(cursor.bytes[index]) << (8 * UInt64(i)) }
            if bitWidth < 64, value >> UInt64(bitWidth) != 0 {
                throw FormatError(.corrupt, "\(what): an RLE run value \(value) does not fit \(bitWidth) bits")
            }
            let n = Int(min(run, UInt64(count - out.count)))
            out.append(contentsOf: repeatElement(UInt32(value), count: n))
        }
    }
    return out
}

/// Bits needed for values 0...maxValue (levels and dictionary indices).
func bitWidth(forMax maxValue: Int) -> Int {
    maxValue <= 0 ? 0 : Int.bitWidth - maxValue.leadingZeroBitCount
}

/// DELTA_BINARY_PACKED: exactly `count` values as Int64 (callers narrow INT32 columns).
func decodeDeltaBinaryPacked(_ cursor: inout ByteCursor, count: Int, what: String) throws -> [Int64] {
    let blockSize = try cursor.uleb128(what)
    let miniblocks = try cursor.uleb128(what)
    let total = try cursor.uleb128(what)
    var previous = try cursor.zigzag(what)
    guard blockSize > 0, blockSize % 128 == 0, blockSize <= 1 << 20, miniblocks > 0, blockSize % miniblocks == 0,
          (blockSize / miniblocks) % 32 == 0 else {
        throw FormatError(.corrupt, "\(what): DELTA_BINARY_PACKED block size \(blockSize) / miniblocks \(miniblocks) is invalid")
    }
    // The page's count was checked against the read limits; the encoded total must agree with it.
    guard total == UInt64(count) else {
        throw FormatError(.corrupt, "\(what): DELTA_BINARY_PACKED holds \(total) values where the page has \(count)")
    }
    let n = Int(total)
    let perMiniblock = Int(blockSize / miniblocks)
    var out: [Int64] = []
    out.reserveCapacity(n)
    if n > 0 { out.append(previous) }
    var deltas: [UInt64] = []
    while out.count < n {
        let minDelta = try cursor.zigzag(what)
        let widths = try cursor.take(Int(miniblocks), what).map { Int(cursor.bytes[$0]) }
        for width in widths {
            guard out.count < n else { break }
            guard width <= 64 else { throw FormatError(.corrupt, "\(what): miniblock bit width \(width) exceeds 64") }
            let range = try cursor.take(perMiniblock * width / 8, what)
            deltas.removeAll(keepingCapacity: true)
            unpack(cursor.bytes, at: range.lowerBound, bitWidth: width, count: perMiniblock, into: &deltas)
            for delta in deltas where out.count < n {
                previous = previous &+ minDelta &+ Int64(bitPattern: delta)
                out.append(previous)
            }
        }
    }
    return out
}

/// PLAIN-encoded byte arrays: 4-byte little-endian length then the bytes, `count` times.
func decodePlainByteArrays(_ cursor: inout ByteCursor, count: Int, into out: inout ParquetByteArrays, what: String) throws {
    out.reserve(values: count, bytes: min(cursor.remaining, max(0, cursor.remaining - 4 * count)))
    for _ in 0..<count {
        let length = Int(try cursor.uint32LE(what))
        out.append(cursor.bytes[try cursor.take(length, what)])
    }
}

/// DELTA_LENGTH_BYTE_ARRAY: delta-packed lengths, then the concatenated bytes.
func decodeDeltaLengthByteArrays(_ cursor: inout ByteCursor, count: Int, into out: inout ParquetByteArrays,
                                 what: String) throws {
    let lengths = try decodeDeltaBinaryPacked(&cursor, count: count, what: what)
    for length in lengths {
        guard length >= 0, length <= Int64(cursor.remaining) else {
            throw FormatError(.corrupt, "\(what): a DELTA_LENGTH_BYTE_ARRAY length \(length) runs past the page")
        }
        out.append(cursor.bytes[try cursor.take(Int(length), what)])
    }
}

/// DELTA_BYTE_ARRAY: prefix lengths (shared with the previous value), then suffixes as DELTA_LENGTH_BYTE_ARRAY.
func decodeDeltaByteArrays(_ cursor: inout ByteCursor, count: Int, into out: inout ParquetByteArrays,
                           what: String) throws {
    let prefixes = try decodeDeltaBinaryPacked(&cursor, count: count, what: what)
    var suffixes = ParquetByteArrays()
    try decodeDeltaLengthByteArrays(&cursor, count: count, into: &suffixes, what: what)
    var previous: [UInt8] = []
    for i in 0..<count {
        let prefix = prefixes[i]
        guard prefix >= 0, prefix <= Int64(previous.count) else {
            throw FormatError(.corrupt, "\(what): a DELTA_BYTE_ARRAY prefix \(prefix) is longer than the previous value")
        }
        var value = Array(previous[0..<Int(prefix)])
        value.append(contentsOf: suffixes[i])
        out.append(value)
        previous = value
    }
}

/// BYTE_STREAM_SPLIT: byte `b` of value `i` sits at `b * count + i`.
func decodeByteStreamSplit(_ cursor: inout ByteCursor, count: Int, width: Int, what: String) throws -> [UInt64] {
    let range = try cursor.take(count * width, what)
    var out = [UInt64](repeating: 0, count: count)
    for b in 0..<width {
        let stream = range.lowerBound + b * count
        for i in 0..<count { out[i] |= UInt64(cursor.bytes[stream + i]) << (8 * UInt64(b)) }
    }
    return out
}

/// Encodes `values` (each below 2^bitWidth) in the RLE / bit-packed hybrid: groups of 8 equal values become RLE
/// runs, the rest bit-packed runs; only the final group may be short (padded with zeros, which readers ignore).
func encodeRLEHybrid<T: FixedWidthInteger & UnsignedInteger>(_ values: [T], bitWidth: Int) -> [UInt8] {
    var out: [UInt8] = []
    func uleb(_ value: Int) {
        var v = UInt64(value)
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
    let valueBytes = (bitWidth + 7) / 8
    func run(_ value: T, _ count: Int) {
        uleb(count << 1)
        for i in 0..<valueBytes { out.append(UInt8(truncatingIfNeeded: UInt64(value) >> (8 * UInt64(i)))) }
    }
    func packed(_ group: ArraySlice<T>) {
        let groups = (group.count + 7) / 8
        uleb(groups << 1 | 1)
        var packedBytes = [UInt8](repeating: 0, count: groups * bitWidth)
        for (i, value) in group.enumerated() {
            for bit in 0..<bitWidth where UInt64(value) >> UInt64(bit) & 1 == 1 {
                let position = i * bitWidth + bit
                packedBytes[position >> 3] |= 1 << UInt8(position & 7)
            }
        }
        out.append(contentsOf: packedBytes)
    }
    var start = 0
    var pendingPacked: Int?  // start of a bit-packed stretch not yet written
    while start < values.count {
        let end = min(start + 8, values.count)
        let first = values[start]
        var runEnd = start
        while runEnd < values.count && values[runEnd] == first { runEnd += 1 }
        // A run that covers at least one whole group (or the whole tail) is worth an RLE run.
        if runEnd - start >= 8 || runEnd == values.count {
            if let p = pendingPacked {
                packed(values[p..<start])
                pendingPacked = nil
            }
            let length = runEnd == values.count ? runEnd - start : (runEnd - start) / 8 * 8
            run(first, length)
            start += length
        } else {
            if pendingPacked == nil { pendingPacked = start }
            start = end
        }
    }
    if let p = pendingPacked { packed(values[p..<values.count]) }
    return out
}
