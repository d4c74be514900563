// The one file that imports zlib, for GZIP pages (gzip framing, as parquet-format specifies; zlib framing is
// accepted too). Pointers and return codes stay here.

import CZlib

enum Zlib {
    /// Inflates `input` into exactly `expectedSize` bytes, growing the buffer with what is actually produced.
    static func decompress(_ input: ArraySlice<UInt8>, expectedSize: Int) throws -> [UInt8] {
        var stream = z_stream()
        // 15 + 32: the largest window, and detect gzip or zlib framing from the header.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError(.decompression, "inflateInit2 failed (out of memory)")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: min(expectedSize, max(input.count * 4, 1 << 16)))
        var produced = 0
        var finished = false
        var source = Array(input)
        try source.withUnsafeMutableBufferPointer { inBytes in
            stream.next_in = inBytes.baseAddress
            stream.avail_in = UInt32(inBytes.count)
            while !finished {
                if produced == output.count && produced < expectedSize {
                    output.append(contentsOf: repeatElement(0, count: min(expectedSize - produced, max(output.count, 1 << 16))))
                }
                // With the output full, inflate still reads the gzip trailer and reports the stream's end.
                let code = output.withUnsafeMutableBufferPointer { outBytes -> Int32 in
                    stream.next_out = outBytes.baseAddress.map { $0 + produced }
                    stream.avail_out = UInt32(outBytes.count - produced)
                    let code = inflate(&stream, Z_NO_FLUSH)
                    produced = outBytes.count - Int(stream.avail_out)
                    return code
                }
                switch code {
                case Z_STREAM_END:
                    // Several gzip members may follow each other; pyarrow writes one.
                    if stream.avail_in > 0 {
                        guard inflateReset(&stream) == Z_OK else {
                            throw FormatError(.decompression, "GZIP data is damaged (inflateReset failed)")
                        }
                    } else {
                        finished = true
                    }
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw FormatError(.decompression, "GZIP data ends early after \(produced) of \(expectedSize) bytes")
                case Z_BUF_ERROR:
                    throw FormatError(.decompression, "GZIP data expands past the \(expectedSize) bytes the page header says")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib code \(code)"
                    throw FormatError(.decompression, "GZIP data is damaged (\(message))")
                }
            }
        }
        guard finished, produced == expectedSize else {
            throw FormatError(.decompression, "GZIP data expands to \(produced) bytes where the page header says \(expectedSize)")
        }
        return output
    }
}
