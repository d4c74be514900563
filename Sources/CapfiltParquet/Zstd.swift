// The one file that imports libzstd (Hugging Face and many pyarrow users write ZSTD). Pointers stay here.

import CZstd

enum Zstd {
    /// Decompresses one or more frames in `input` into exactly `expectedSize` bytes. The output buffer grows with
    /// what is actually produced, so a page header that lies about its size costs no memory up front.
    static func decompress(_ input: ArraySlice<UInt8>, expectedSize: Int) throws -> [UInt8] {
        guard let context = ZSTD_createDCtx() else { throw FormatError(.decompression, "ZSTD_createDCtx failed (out of memory)") }
        defer { ZSTD_freeDCtx(context) }
        var output = [UInt8](repeating: 0, count: min(expectedSize, max(input.count * 8, 1 << 16)))
        var produced = 0
        try input.withUnsafeBytes { source in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                if produced == output.count && produced < expectedSize {
                    output.append(contentsOf: repeatElement(0, count: min(expectedSize - produced, max(output.count, 1 << 16))))
                }
                let before = (inBuffer.pos, produced)
                // With the output full, zstd still reads a frame's checksum and reports the frame's end (0).
                let result = output.withUnsafeMutableBytes { target -> Int in
                    var outBuffer = ZSTD_outBuffer(dst: target.baseAddress, size: target.count, pos: produced)
                    let code = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    produced = outBuffer.pos
                    return code
                }
                if ZSTD_isError(result) != 0 {
                    let name = String(cString: ZSTD_getErrorName(result))
                    throw FormatError(.decompression, "ZSTD data is damaged (\(name))")
                }
                if result == 0 && inBuffer.pos == inBuffer.size { break }
                if before == (inBuffer.pos, produced) {
                    if inBuffer.pos == inBuffer.size {
                        throw FormatError(.decompression, "ZSTD data ends early after \(produced) of \(expectedSize) bytes")
                    }
                    throw FormatError(.decompression, "ZSTD data expands past the \(expectedSize) bytes the page header says")
                }
            }
        }
        guard produced == expectedSize else {
            throw FormatError(.decompression, "ZSTD data expands to \(produced) bytes where the page header says \(expectedSize)")
        }
        return output
    }

    /// Compresses `input` at level 3 (deterministic: same bytes in, same bytes out).
    static func compress(_ input: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                ZSTD_compress(target.baseAddress, target.count, source.baseAddress, source.count, 3)
            }
        }
        // ZSTD_compress fails only on a too-small buffer, and the buffer is ZSTD_compressBound.
        precondition(ZSTD_isError(written) == 0, "ZSTD_compress failed with a buffer of ZSTD_compressBound")
        output.removeSubrange(written...)
        return output
    }
}
