// Vectorised elementwise math for the non-GEMM ops: 16 lanes at a time (one AVX-512 register, two AVX2 ones),
// written so LLVM keeps every step in vector registers. Accuracy is that of the libm calls they replace
// (about 1 ulp), so results stay within rounding of PyTorch's (which uses its own vectorised libm).
public enum VectorMath {
    public typealias Lanes = SIMD16<Float>
    public static let width = 16

    /// `e^x` for `x ≤ 0`, about 1 ulp; `0` for `x < -87.3` (below the smallest normal float) and for `-inf`.
    ///
    /// Cody–Waite reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, then a degree-7 Taylor polynomial of `e^r`
    /// (truncation error below 6e-9 relative) by Horner, scaled by `2^n` through the exponent bits. Plain
    /// multiply-adds, no FMA: the baseline x86-64 target has none, and an FMA it must emulate is a libm call.
    @inlinable @inline(__always)
    public static func expNonPositive(_ x: Lanes) -> Lanes {
        let underflow = x .< -87.33654
        let xc = x.replacing(with: -87.33654, where: underflow)
        // n = round(x / ln2) by the 1.5·2²³ trick: adding it leaves n in the low mantissa bits (no rounding or
        // conversion instructions needed, which the baseline x86-64 target lacks).
        let shifted = xc * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        var r = xc - n * 0.693359375                       // ln2 split: hi has 10 significant bits, so n·hi is exact
        r = r + n * 2.12194440e-4
        var p = Lanes(repeating: 1.0 / 5040)
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000  // = n
        let scale = unsafeBitCast((bits &+ 127) &<< 23, to: Lanes.self)
        return (p * scale).replacing(with: 0, where: underflow)
    }

    /// `erf(x)` within about 1 ulp (libm's `erff` class; PyTorch's own vectorised erf is within a few ulps of it,
    /// see `VectorMathTests`).
    ///
    /// `|x| < 1`: `x + x·P(x²)`, P a degree-7 fit of `erf(x)/x − 1` (relative error 4e-11 before rounding).
    /// `|x| ≥ 1`: `1 − e^(−x²)·Q(s)`, Q a degree-12 Chebyshev fit of `erfc(x)·e^(x²)` on `[1, 4]` in
    /// `s = (x − 2.5)/1.5` (absolute error 6e-10); past 4 the result rounds to ±1 in fp32 anyway.
    /// Coefficients: least-squares Chebyshev fits in double precision, rounded to fp32.
    @inlinable @inline(__always)
    public static func erf(_ x: Lanes) -> Lanes {
        let a = abs(x)
        let u = a * a
        // Both polynomials are written out with literal coefficients: LLVM keeps each step in vector registers
        // (a loop over a coefficient table, however small, was compiled lane by lane, with scalar adds).
        var p = Lanes(repeating: -9.67359392234357e-06)  // erf(x)/x − 1 in u = x², highest power first
        p = p * u + 0.00011268258094787598
        p = p * u + -0.0008484397549182177
        p = p * u + 0.005221053492277861
        p = p * u + -0.026865437626838684
        p = p * u + 0.11283782869577408
        p = p * u + -0.37612637877464294
        p = p * u + 0.12837916612625122
        let small = a + a * p

        let s = (a.replacing(with: 4, where: a .> 4) - 2.5) * Lanes(repeating: Float(1.0 / 1.5))
        var q = Lanes(repeating: 1.3819321793562267e-05)  // erfc(x)·e^(x²) in s, highest power first
        q = q * s + -3.692937389132567e-05
        q = q * s + 5.494660581462085e-05
        q = q * s + -0.00014394696336239576
        q = q * s + 0.0004145087441429496
        q = q * s + -0.0010171192698180676
        q = q * s + 0.002401701407507062
        q = q * s + -0.00556733226403594
        q = q * s + 0.012489703483879566
        q = q * s + -0.027005724608898163
        q = q * s + 0.05611047148704529
        q = q * s + -0.11152100563049316
        q = q * s + 0.21080636978149414
        let large = 1 - expNonPositive(-u) * q

        let magnitude = small.replacing(with: large, where: a .>= 1)
        return magnitude.replacing(with: -magnitude, where: x .< 0)
    }

    @inlinable @inline(__always)
    static func abs(_ x: Lanes) -> Lanes { x.replacing(with: -x, where: x .< 0) }

    /// Loads `count ≤ 16` floats, the other lanes set to `fill`.
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int = 16, fill: Float = 0) -> Lanes {
        if count == 16 { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
        var v = Lanes(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    /// Stores the first `count ≤ 16` lanes.
    @inlinable @inline(__always)
    public static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, count: Int = 16) {
        if count == 16 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self); return }
        for i in 0..<count { p[i] = v[i] }
    }
}
