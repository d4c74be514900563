// Copies stored elements (any float type, either byte order, any strides) into a dense fp32 tensor.
// The conversions are exact: F16 and BF16 widen bit-for-bit (NaN payloads kept, as torch does), F64
// rounds to nearest even like torch's `.float()`.

/// Element-wise conversion from raw storage into fp32.
enum ElementConversion {
    /// IEEE half (binary16) to single, exactly, including subnormals, infinities and NaN payloads.
    @inline(__always)
    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1f
        var mantissa = UInt32(h & 0x3ff)
        if exponent == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
        if exponent != 0 { return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13)) }
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal half: normalise; each shift lowers the single-precision exponent by one.
        var singleExponent: UInt32 = 113
        while mantissa & 0x400 == 0 {
            mantissa <<= 1
            singleExponent -= 1
        }
        return Float(bitPattern: sign | (singleExponent << 23) | ((mantissa & 0x3ff) << 13))
    }

    /// Converts `count` contiguous elements at `source` into `destination`.
    static func convert(_ source: UnsafeRawPointer, type: ElementType, bigEndian: Bool, count: Int,
                        into destination: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        switch type {
        case .float32:
            if bigEndian {
                for i in 0..<count {
                    let bits = UInt32(bigEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    destination[i] = Float(bitPattern: bits)
                }
            } else {
                // memcpy: the map may leave the data unaligned, and this is the hot path for fp32 files.
                UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
                #if _endian(big)
                for i in 0..<count { destination[i] = Float(bitPattern: UInt32(littleEndian: destination[i].bitPattern)) }
                #endif
            }
        case .float16:
            for i in 0..<count {
                let raw = source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                destination[i] = floatFromHalf(bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw))
            }
        case .bfloat16:
            for i in 0..<count {
                let raw = source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                let bits = bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)
                destination[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .float64:
            for i in 0..<count {
                let raw = source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                destination[i] = Float(Double(bitPattern: bigEndian ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw)))
            }
        case .int64, .int32, .int16, .int8, .uint8, .bool:
            // Callers reject these before converting; zeros keep this total without trapping.
            destination.update(repeating: 0, count: count)
        }
    }

    /// Gathers the strided view (`shape`, `strides` and `offset` in elements) of the storage at `storage`
    /// into the dense row-major `destination`. The caller has checked that every index lies in the storage.
    static func gather(_ storage: UnsafeRawPointer, type: ElementType, bigEndian: Bool,
                       shape: [Int], strides: [Int], offset: Int, into destination: UnsafeMutablePointer<Float>) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        let size = type.byteSize
        // Dimensions of size 1 have meaningless strides; drop them, so "contiguous" is judged on the rest.
        var dims: [(size: Int, stride: Int)] = zip(shape, strides).filter { $0.0 != 1 }.map { ($0.0, $0.1) }
        // Merge adjacent dimensions that are contiguous with each other, to lengthen the inner runs.
        var merged: [(size: Int, stride: Int)] = []
        for dim in dims {
            if let last = merged.last, last.stride == dim.size * dim.stride {
                merged[merged.count - 1] = (last.size * dim.size, dim.stride)
            } else {
                merged.append(dim)
            }
        }
        dims = merged
        guard let inner = dims.last else {
            convert(storage + offset * size, type: type, bigEndian: bigEndian, count: 1, into: destination)
            return
        }
        let outer = Array(dims.dropLast())
        var index = [Int](repeating: 0, count: outer.count)
        var written = 0
        var base = offset
        while written < count {
            if inner.stride == 1 {
                convert(storage + base * size, type: type, bigEndian: bigEndian, count: inner.size,
                        into: destination + written)
            } else {
                for j in 0..<inner.size {
                    convert(storage + (base + j * inner.stride) * size, type: type, bigEndian: bigEndian,
                            count: 1, into: destination + written + j)
                }
            }
            written += inner.size
            // Odometer over the outer dimensions, innermost first.
            var d = outer.count - 1
            while d >= 0 {
                index[d] += 1
                base += outer[d].stride
                if index[d] < outer[d].size { break }
                base -= outer[d].stride * outer[d].size
                index[d] = 0
                d -= 1
            }
        }
    }
}
