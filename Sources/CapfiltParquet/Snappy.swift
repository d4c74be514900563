// The one file that imports libsnappy (pyarrow's default Parquet codec). Pointers and status codes stay here.

import CSnappy

enum Snappy {
    /// A snappy element never expands more than this: a 3-byte copy yields at most 64 bytes.
    static let maxExpansion = 22

    /// Decompresses `input`, which must expand to exactly `expectedSize` bytes.
    static func decompress(_ input: ArraySlice<UInt8>, expectedSize: Int) throws -> [UInt8] {
        try input.withUnsafeBufferPointer { source -> [UInt8] in
            guard let base = source.baseAddress else {
                guard expectedSize == 0 else { throw FormatError(.decompression, "an empty SNAPPY page claims \(expectedSize) bytes") }
                return []
            }
            return try base.withMemoryRebound(to: CChar.self, capacity: source.count) { compressed -> [UInt8] in
                var claimed = 0
                guard snappy_uncompressed_length(compressed, source.count, &claimed) == SNAPPY_OK else {
                    throw FormatError(.decompression, "the SNAPPY preamble is damaged")
                }
                guard claimed == expectedSize else {
                    throw FormatError(.decompression, "SNAPPY data expands to \(claimed) bytes where the page header says \(expectedSize)")
                }
                guard claimed <= source.count * maxExpansion + 32 else {
                    throw FormatError(.decompression, "SNAPPY data of \(source.count) bytes cannot expand to \(claimed) bytes")
                }
                var output = [UInt8](repeating: 0, count: claimed)
                var produced = claimed
                let status = output.withUnsafeMutableBufferPointer { target -> snappy_status in
                    guard let out = target.baseAddress else { return SNAPPY_OK }
                    return out.withMemoryRebound(to: CChar.self, capacity: claimed) {
                        snappy_uncompress(compressed, source.count, $0, &produced)
                    }
                }
                guard status == SNAPPY_OK, produced == claimed else {
                    throw FormatError(.decompression, "SNAPPY data is damaged (snappy status \(status.rawValue))")
                }
                return output
            }
        }
    }

    /// Compresses `input` (deterministic: same bytes in, same bytes out).
    static func compress(_ input: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: snappy_max_compressed_length(input.count))
        var produced = output.count
        let status = input.withUnsafeBufferPointer { source -> snappy_status in
            output.withUnsafeMutableBufferPointer { target -> snappy_status in
                guard let out = target.baseAddress else { return SNAPPY_BUFFER_TOO_SMALL }
                return out.withMemoryRebound(to: CChar.self, capacity: target.count) { outChars in
                    // An empty input has no base address; snappy reads nothing from it.
                    let empty: [CChar] = [0]
                    return empty.withUnsafeBufferPointer { emptyChars in
                        guard let base = source.baseAddress else {
                            return snappy_compress(emptyChars.baseAddress, 0, outChars, &produced)
                        }
                        return base.withMemoryRebound(to: CChar.self, capacity: source.count) {
                            snappy_compress($0, source.count, outChars, &produced)
                        }
                    }
                }
            }
        }
        // snappy_compress fails only on a too-small buffer, and the buffer is snappy's own maximum.
        precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of snappy_max_compressed_length")
        output.removeSubrange(produced...)
        return output
    }
}
