// Multi-head scaled dot-product attention over strided Q/K/V slices, one (query block, head) at a time,
// so the fused QKV buffer of the ViT and the KV caches of the decoder are used in place.
import Foundation

/// How the raw scores are scaled: the ViT multiplies by `head_dim^-0.5`, BERT divides by `sqrt(head_dim)`.
/// Both are kept distinct so fp32 rounding matches PyTorch for head sizes that are not powers of four.
public enum AttentionScaling: Sendable {
    case multiply(Float)
    case divide(Float)

    public static func vision(headDim: Int) -> AttentionScaling { .multiply(Float(pow(Double(headDim), -0.5))) }
    public static func text(headDim: Int) -> AttentionScaling { .divide(Float(Double(headDim).squareRoot())) }
}

public enum Attention {
    /// `out[:, h] = softmax(scale(Q_h · K_hᵀ) + mask) · V_h` for every head `h`.
    ///
    /// - q: `(Tq, H·hd)` with leading dimension `ldq`.
    /// - k, v: `(Tk, H·hd)` with leading dimensions `ldk`, `ldv`.
    /// - causalOffset: if set, query `i` sees keys `j ≤ causalOffset + i` (decoder self-attention with a cache).
    /// - validKeys: if set, only keys `0..<validKeys` are visible (right padding).
    /// - scores: workspace of at least `Tq · Tk` floats.
    /// - out: `(Tq, H·hd)` with leading dimension `ldo`.
    public static func multiHead(
        q: UnsafePointer<Float>, ldq: Int,
        k: UnsafePointer<Float>, ldk: Int,
        v: UnsafePointer<Float>, ldv: Int,
        queries tq: Int, keys tk: Int, heads: Int, headDim hd: Int,
        scaling: AttentionScaling, causalOffset: Int? = nil, validKeys: Int? = nil,
        scores: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>, ldo: Int
    ) {
        for h in 0..<heads {
            let off = h * hd
            // S (Tq, Tk) = Q_h (Tq, hd) · K_hᵀ: K_h is (Tk, hd) row-major with stride ldk, so transB.
            BLAS.gemm(transB: true, m: tq, n: tk, k: hd,
                      a: q + off, lda: ldq, b: k + off, ldb: ldk, c: scores, ldc: tk)
            // Scale, mask and softmax each score row (one pass per row, rows in parallel).
            Parallel.rows(tq, work: tq * tk * 4) { range in
                for i in range {
                    let row = scores + i * tk
                    switch scaling {
                    case .multiply(let s): for j in 0..<tk { row[j] *= s }
                    case .divide(let s): for j in 0..<tk { row[j] /= s }
                    }
                    let limit = min(causalOffset.map { $0 + i + 1 } ?? tk, validKeys ?? tk)
                    for j in limit..<tk { row[j] = -.infinity }
                    Ops.softmaxRow(row, width: tk)
                }
            }
            // ctx_h (Tq, hd) = P (Tq, Tk) · V_h (Tk, hd, stride ldv), written into its head's columns of out.
            BLAS.gemm(m: tq, n: hd, k: tk, a: scores, lda: tk, b: v + off, ldb: ldv, c: out + off, ldc: ldo)
        }
    }
}
