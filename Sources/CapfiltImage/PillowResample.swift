// Port of Pillow 13.0.0's 8-bit convolution resampler (libImaging/Resample.c), bit-exact: coefficients in
// double, 22-bit fixed point taps, uint8 intermediate, and Pillow 13's rule for which pass runs first.
// transformers' PIL backend resizes with `Image.resize(size, BICUBIC)`, so this decides every pixel BLIP sees.
import Foundation

/// Pillow's `Image.resize` for RGB images, bit for bit.
public enum PillowResample {
    /// Pillow's convolution filters, numbered like `PIL.Image.Resampling`.
    public enum Filter: Int, Sendable, CaseIterable {
        case lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5

        /// Half-width of the kernel in source pixels at scale 1.
        var support: Double {
            switch self {
            case .box: return 0.5
            case .bilinear, .hamming: return 1
            case .bicubic: return 2
            case .lanczos: return 3
            }
        }

        /// The kernel, written with the same operation order as Resample.c so the doubles round alike.
        func weight(_ x: Double) -> Double {
            switch self {
            case .box:
                return x > -0.5 && x <= 0.5 ? 1 : 0
            case .bilinear:
                let x = abs(x)
                return x < 1 ? 1 - x : 0
            case .hamming:
                var x = abs(x)
                if x == 0 { return 1 }
                if x >= 1 { return 0 }
                x = x * Double.pi
                // Resample.c writes 0.54f and 0.46f: float constants widened to double.
                return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
            case .bicubic:
                let a = -0.5
                let x = abs(x)
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            case .lanczos:
                guard -3 <= x && x < 3 else { return 0 }
                return Self.sinc(x) * Self.sinc(x / 3)
            }
        }

        private static func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let y = x * Double.pi
            return sin(y) / y
        }
    }

    /// `Image.resize((width, height), Image.BICUBIC)` in Pillow 13.0.0.
    public static func bicubic(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        resize(image, width: width, height: height, filter: .bicubic)
    }

    /// `Image.resize((width, height), filter)` in Pillow 13.0.0 for an RGB image (no box, no reducing_gap).
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter) -> RGBImage {
        precondition(width > 0 && height > 0, "target size \(width)x\(height) must be positive")
        let (inW, inH) = (image.width, image.height)
        let needHorizontal = width != inW
        let needVertical = height != inH
        if !needHorizontal && !needVertical {
            return image // Pillow returns a copy; value semantics make this one.
        }
        // Pillow 13: when the height shrinks by more than twice what the width shrinks by, the vertical pass
        // runs first (fewer rows for the horizontal pass). The order changes the uint8 rounding in between.
        let horizontalFirst = !((inH - height) > 0 && (inH - height) > (inW - width) * 2)

        if horizontalFirst {
            guard needHorizontal else {
                return verticalPass(image, rowOffset: 0, coefficients: Coefficients(inH, height, filter))
            }
            let horizontal = Coefficients(inW, width, filter)
            guard needVertical else {
                return horizontalPass(image, firstRow: 0, rows: inH, coefficients: horizontal)
            }
            // Only the source rows the vertical pass reads are resampled horizontally, as in Pillow.
            let vertical = Coefficients(inH, height, filter)
            let firstRow = vertical.firstSource
            let rows = vertical.endSource - firstRow
            let temp = horizontalPass(image, firstRow: firstRow, rows: rows, coefficients: horizontal)
            return verticalPass(temp, rowOffset: firstRow, coefficients: vertical)
        } else {
            let temp = verticalPass(image, rowOffset: 0, coefficients: Coefficients(inH, height, filter))
            guard needHorizontal else { return temp }
            return horizontalPass(temp, firstRow: 0, rows: height, coefficients: Coefficients(inW, width, filter))
        }
    }

    /// Per-output-index source window and fixed-point taps for one axis (Resample.c precompute_coeffs +
    /// normalize_coeffs_8bpc).
    struct Coefficients {
        /// Taps stored per output index (the longest window).
        let stride: Int
        /// `2 * outSize` values: first source index and tap count for each output index.
        let bounds: [Int32]
        /// `outSize * stride` taps in 1/2^22 units; unused tail entries are 0.
        let taps: [Int32]

        static let precisionBits = 22

        init(_ inSize: Int, _ outSize: Int, _ filter: Filter) {
            // Pillow passes the box as floats; for integer sizes below 2^24 they convert exactly.
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = filter.support * filterScale
            let stride = Int(support.rounded(.up)) * 2 + 1
            let inverseFilterScale = 1 / filterScale
            var bounds = [Int32](repeating: 0, count: 2 * outSize)
            var taps = [Int32](repeating: 0, count: outSize * stride)
            var weights = [Double](repeating: 0, count: stride)
            let one = Double(1 << Self.precisionBits)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                let xmin = max(0, Int(center - support + 0.5))
                let xmax = min(inSize, Int(center + support + 0.5))
                let count = xmax - xmin
                var sum = 0.0
                for x in 0..<count {
                    let w = filter.weight((Double(x + xmin) - center + 0.5) * inverseFilterScale)
                    weights[x] = w
                    sum += w
                }
                for x in 0..<count {
                    let k = sum != 0 ? weights[x] / sum : weights[x]
                    taps[xx * stride + x] = k < 0 ? Int32(-0.5 + k * one) : Int32(0.5 + k * one)
                }
                bounds[2 * xx] = Int32(xmin)
                bounds[2 * xx + 1] = Int32(count)
            }
            self.stride = stride
            self.bounds = bounds
            self.taps = taps
        }

        /// First source index any output reads.
        var firstSource: Int { Int(bounds[0]) }
        /// One past the last source index the final output reads (Pillow's ybox_last).
        var endSource: Int { Int(bounds[bounds.count - 2] + bounds[bounds.count - 1]) }
    }

    /// Fixed-point rounding offset every sum starts from (0.5 in 1/2^22 units).
    static let half = Int32(1) << 21

    /// Pillow's clip8: drop the fixed-point fraction (arithmetic shift, so it floors) and clamp to a byte.
    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum &>> 22
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }

    /// Resamples rows `firstRow ..< firstRow + rows` of `image` along x to `coefficients.bounds.count / 2`
    /// columns. Sums stay well inside Int32 (|taps| sum below 1.3 * 2^22, times 255), hence wrapping ops.
    /// Plain scalar loops: explicit SIMD types would be faster in release builds but run ~100x slower in
    /// the unoptimised builds the tests use.
    static func horizontalPass(_ image: RGBImage, firstRow: Int, rows: Int, coefficients: Coefficients) -> RGBImage {
        let outW = coefficients.bounds.count / 2
        let inRowBytes = image.width * 3
        let stride = coefficients.stride
        let start = half
        let pixels = [UInt8](unsafeUninitializedCapacity: outW * rows * 3) { out, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                coefficients.bounds.withUnsafeBufferPointer { bounds in
                    coefficients.taps.withUnsafeBufferPointer { taps in
                        var o = 0
                        for y in 0..<rows {
                            let rowStart = (firstRow + y) * inRowBytes
                            for xx in 0..<outW {
                                var p = rowStart + Int(bounds[2 * xx]) * 3
                                let k = xx * stride
                                var s0 = start, s1 = start, s2 = start
                                for t in k..<(k + Int(bounds[2 * xx + 1])) {
                                    let w = taps[t]
                                    s0 &+= Int32(src[p]) &* w
                                    s1 &+= Int32(src[p + 1]) &* w
                                    s2 &+= Int32(src[p + 2]) &* w
                                    p += 3
                                }
                                out[o] = clip8(s0)
                                out[o + 1] = clip8(s1)
                                out[o + 2] = clip8(s2)
                                o += 3
                            }
                        }
                    }
                }
            }
            initialized = outW * rows * 3
        }
        return RGBImage(width: outW, height: rows, pixels: pixels)
    }

    /// Resamples `image` along y; window starts in `coefficients` are shifted down by `rowOffset` because
    /// `image` starts at that source row. Accumulates a whole output row at a time so the inner loop runs
    /// over contiguous bytes (and vectorises in release builds); integer sums do not depend on their order.
    static func verticalPass(_ image: RGBImage, rowOffset: Int, coefficients: Coefficients) -> RGBImage {
        let outH = coefficients.bounds.count / 2
        let rowBytes = image.width * 3
        let stride = coefficients.stride
        let start = half
        var accumulator = [Int32](repeating: 0, count: rowBytes)
        let pixels = [UInt8](unsafeUninitializedCapacity: rowBytes * outH) { out, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                coefficients.bounds.withUnsafeBufferPointer { bounds in
                    coefficients.taps.withUnsafeBufferPointer { taps in
                        accumulator.withUnsafeMutableBufferPointer { acc in
                            for yy in 0..<outH {
                                let ymin = Int(bounds[2 * yy]) - rowOffset
                                let k = yy * stride
                                for i in 0..<rowBytes { acc[i] = start }
                                for t in 0..<Int(bounds[2 * yy + 1]) {
                                    let w = taps[k + t]
                                    let row = (ymin + t) * rowBytes
                                    for i in 0..<rowBytes { acc[i] &+= Int32(src[row + i]) &* w }
                                }
                                let outRow = yy * rowBytes
                                for i in 0..<rowBytes { out[outRow + i] = clip8(acc[i]) }
                            }
                        }
                    }
                }
            }
            initialized = rowBytes * outH
        }
        return RGBImage(width: image.width, height: outH, pixels: pixels)
    }
}
