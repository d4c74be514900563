// The non-GEMM ops of a transformer, each a plain loop over rows, written to reproduce PyTorch's fp32
// results (statistics accumulated in Double so the rounding is at least as good as torch's).
import CVectorKernels
import Foundation

public enum Ops {
    /// What `linear` does to each block of its output right after computing it, while it is in cache.
    public enum Epilogue {
        case none
        /// `y = gelu(y)` (exact erf GELU, as `gelu`).
        case gelu
        /// `r += y` into `r (M, N)` with leading dimension `ld`, `y` kept too: a residual connection, added
        /// after the sub-block as PyTorch does.
        case residual(UnsafeMutablePointer<Float>, ld: Int)
    }

    /// `y = x · Wᵀ + b`, the PyTorch `nn.Linear` layout, then the epilogue.
    ///
    /// - x: `(M, K)` rows with leading dimension `ldx` (≥ K), so column slices of a wider buffer work.
    /// - weight: `(N, K)`, stored [out, in] as PyTorch does.
    /// - bias: `(N)` or nil.
    /// - y: `(M, N)` with leading dimension `ldy`.
    /// - accumulate: add into `y` (a fused residual) instead of overwriting it.
    ///
    /// Rounding is that of the unfused steps (product, then `+ b`, then the epilogue), so fusing changes no bit.
    /// A weight with a reduced-precision copy (`Tensor.reduce(to:)`) runs in that precision instead.
    public static func linear(
        _ x: UnsafePointer<Float>, rows m: Int, ldx: Int,
        weight: Tensor, bias: Tensor?,
        into y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false,
        then epilogue: Epilogue = .none
    ) {
        let n = weight.dim(0), k = weight.dim(1)
        precondition(ldx >= k && ldy >= n, "linear: leading dimensions too small")
        precondition(bias.map { $0.count == n } ?? true, "linear: bias \(bias?.shape ?? []) for \(n) outputs")
        let b = bias?.data
        let finish: ((Range<Int>, Range<Int>) -> Void)?
        if b == nil, case .none = epilogue {
            finish = nil
        } else {
            finish = { rows, columns in
                for i in rows {
                    let row = y + i * ldy + columns.lowerBound, width = columns.count
                    if let b { let bias = b + columns.lowerBound; for j in 0..<width { row[j] += bias[j] } }
                    switch epilogue {
                    case .none: break
                    case .gelu: geluRow(row, count: width)
                    case .residual(let r, let ld):
                        let target = r + i * ld + columns.lowerBound
                        for j in 0..<width { target[j] += row[j] }
                    }
                }
            }
        }
        if let reduced = weight.reduced {
            precondition(!accumulate, "linear: a reduced-precision weight cannot accumulate into y")
            switch reduced.precision {
            case .bf16: linearBF16(x, rows: m, ldx: ldx, weight: reduced, into: y, ldy: ldy, then: finish)
            case .int8: linearInt8(x, rows: m, ldx: ldx, weight: reduced, into: y, ldy: ldy, then: finish)
            case .fp32: preconditionFailure("an fp32 weight has no reduced copy")
            }
            return
        }
        // W is (N, K) row-major; we need x · Wᵀ, so B = W with transB.
        BLAS.gemm(transB: true, m: m, n: n, k: k,
                  a: x, lda: ldx, b: weight.data, ldb: k,
                  beta: accumulate ? 1 : 0, c: y, ldc: ldy, epilogue: finish)
    }

    /// `y = (x · Wᵀ)` with `x` rounded to bf16 row by row into scratch memory and fp32 sums, then `finish`.
    private static func linearBF16(
        _ x: UnsafePointer<Float>, rows m: Int, ldx: Int, weight: ReducedWeight,
        into y: UnsafeMutablePointer<Float>, ldy: Int, then finish: ((Range<Int>, Range<Int>) -> Void)?
    ) {
        let n = weight.rows, k = weight.columns
        Scratch.shared.with(bytes: m * k * 2) { raw in
            let h = raw.bindMemory(to: UInt16.self, capacity: m * k)
            Parallel.rows(m, work: m * k) { range in
                for i in range { BFloat16.round(x + i * ldx, count: k, into: h + i * k) }
            }
            BLAS.gemmBF16(m: m, n: n, k: k, a: h, lda: k, b: weight.bf16Values, ldb: k, c: y, ldc: ldy, epilogue: finish)
        }
    }

    /// `y = (x · Wᵀ)` with `x` quantized per row and `W` per output channel, int32 sums written into `y`'s own
    /// memory and turned into fp32 piece by piece (`int · rowScale · columnScale`), then `finish`.
    private static func linearInt8(
        _ x: UnsafePointer<Float>, rows m: Int, ldx: Int, weight: ReducedWeight,
        into y: UnsafeMutablePointer<Float>, ldy: Int, then finish: ((Range<Int>, Range<Int>) -> Void)?
    ) {
        let n = weight.rows, k = weight.columns
        Scratch.shared.with(bytes: m * k + 4 * m) { raw in
            let q = raw.bindMemory(to: Int8.self, capacity: m * k)
            let rowScales = (raw + m * k).bindMemory(to: Float.self, capacity: m)
            Parallel.rows(m, work: m * k * 2) { range in
                for i in range { rowScales[i] = Quantize.row(x + i * ldx, count: k, into: q + i * k) }
            }
            let sums = UnsafeMutableRawPointer(y), columnScales = weight.scales!
            BLAS.gemmInt8(m: m, n: n, k: k, a: q, lda: k, b: weight.values, ldb: k,
                          c: sums.assumingMemoryBound(to: Int32.self), ldc: ldy) { rows, columns in
                for i in rows {
                    let row = sums + i * ldy * 4, s = rowScales[i], lanes = VectorMath.Lanes(repeating: s)
                    var j = columns.lowerBound
                    while j + VectorMath.width <= columns.upperBound {
                        let ints = row.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Int32>.self)
                        let scales = UnsafeRawPointer(columnScales + j).loadUnaligned(as: VectorMath.Lanes.self)
                        row.storeBytes(of: VectorMath.Lanes(ints) * (lanes * scales), toByteOffset: j * 4, as: VectorMath.Lanes.self)
                        j += VectorMath.width
                    }
                    while j < columns.upperBound {
                        let sum = row.load(fromByteOffset: j * 4, as: Int32.self)
                        row.storeBytes(of: Float(sum) * (s * columnScales[j]), toByteOffset: j * 4, as: Float.self)
                        j += 1
                    }
                }
                finish?(rows, columns)
            }
        }
    }

    /// Row-wise LayerNorm with biased variance, as `torch.nn.LayerNorm`: `(x − μ) / sqrt(σ² + eps) · γ + β`.
    /// - x, y: `(M, C)`, may alias.
    public static func layerNorm(
        _ x: UnsafePointer<Float>, rows m: Int, width c: Int,
        gamma: Tensor, beta: Tensor, eps: Float, into y: UnsafeMutablePointer<Float>
    ) {
        precondition(gamma.count == c && beta.count == c, "layerNorm: parameters for width \(gamma.count), rows \(c)")
        Parallel.rows(m, work: m * c * 4) { range in for i in range {
            let src = x + i * c, dst = y + i * c
            var sum = 0.0
            for j in 0..<c { sum += Double(src[j]) }
            let mean = sum / Double(c)
            var sq = 0.0
            for j in 0..<c { let d = Double(src[j]) - mean; sq += d * d }
            let variance = Float(sq / Double(c))
            let meanF = Float(mean)
            let rstd = 1 / (variance + eps).squareRoot()
            for j in 0..<c { dst[j] = (src[j] - meanF) * rstd * gamma.data[j] + beta.data[j] }
        } }
    }

    /// Exact (erf) GELU in place, `x · 0.5 · (1 + erf(x / √2))` in PyTorch's order (its default `nn.GELU()`),
    /// 16 lanes at a time.
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let chunk = 4096
        Parallel.rows((count + chunk - 1) / chunk, work: count * 8) { range in
            let start = range.lowerBound * chunk
            geluRow(x + start, count: min(count, range.upperBound * chunk) - start)
        }
    }

    /// GELU of `count` consecutive floats in place on this thread: `geluReference`'s arithmetic in C
    /// (CVectorKernels), with AVX-512 where the CPU has it, bit-identical to it. Lanes are independent, so each
    /// element gets the same value wherever it falls in a vector.
    @inline(__always)
    static func geluRow(_ x: UnsafeMutablePointer<Float>, count: Int) {
        capfilt_gelu(x, count)
    }

    /// GELU in Swift, 16 lanes at a time: the definition `geluRow`'s C kernel follows (tests compare them).
    static func geluReference(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let lanes = min(VectorMath.width, count - i)
            let v = VectorMath.load(x + i, count: lanes)
            let erf = VectorMath.erf(v * 0.70710678118654752440)
            VectorMath.store(v * 0.5 * (1 + erf), x + i, count: lanes)
            i += lanes
        }
    }

    /// Softmax over each row of `(M, N)` in place, with leading dimension `ld`.
    /// Entries equal to `-Float.infinity` get probability exactly 0.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows m: Int, width n: Int, ld: Int) {
        Parallel.rows(m, work: m * n * 4) { range in for i in range { softmaxRow(x + i * ld, width: n) } }
    }

    /// Softmax of one row of `n` floats in place: `softmaxReference`'s arithmetic in C (CVectorKernels), with
    /// AVX-512 where the CPU has it, bit-identical to it. Entries equal to `-Float.infinity` get exactly 0.
    public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, width n: Int) {
        capfilt_softmax_row(row, n)
    }

    /// Softmax of one row of `n` floats in place, 16 lanes at a time (sums per lane, then across lanes, as
    /// PyTorch's vectorised kernel does): the definition `softmaxRow`'s C kernel follows (tests compare them).
    static func softmaxReference(_ row: UnsafeMutablePointer<Float>, width n: Int) {
        let w = VectorMath.width
        var maxLanes = VectorMath.Lanes(repeating: -.infinity)
        var j = 0
        while j < n {
            let lanes = min(w, n - j)
            let v = VectorMath.load(row + j, count: lanes, fill: -.infinity)
            maxLanes.replace(with: v, where: v .> maxLanes)  // a compare and a blend (pointwiseMax goes lane by lane)
            j += lanes
        }
        let maxV = maxLanes.max()
        var sumLanes = VectorMath.Lanes()
        j = 0
        while j < n {
            let lanes = min(w, n - j)
            let e = VectorMath.expNonPositive(VectorMath.load(row + j, count: lanes, fill: -.infinity) - maxV)
            VectorMath.store(e, row + j, count: lanes)
            sumLanes += e
            j += lanes
        }
        let inv = 1 / sumLanes.sum()
        j = 0
        while j < n {
            let lanes = min(w, n - j)
            VectorMath.store(VectorMath.load(row + j, count: lanes) * inv, row + j, count: lanes)
            j += lanes
        }
    }

    /// Log-softmax of one row into `y`: `x − max − log Σ exp(x − max)`, as `torch.log_softmax`.
    public static func logSoftmax(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>) {
        var maxV = -Float.infinity
        for j in 0..<n where x[j] > maxV { maxV = x[j] }
        var sum: Float = 0
        for j in 0..<n { sum += expf(x[j] - maxV) }
        let logSum = logf(sum)
        for j in 0..<n { y[j] = x[j] - maxV - logSum }
    }

    /// `v / max(‖v‖₂, eps)`, as `torch.nn.functional.normalize` with its default eps 1e-12.
    public static func l2Normalize(_ v: [Float], eps: Float = 1e-12) -> [Float] {
        var sq: Float = 0
        for x in v { sq += x * x }
        let norm = max(sq.squareRoot(), eps)
        return v.map { $0 / norm }
    }
}
