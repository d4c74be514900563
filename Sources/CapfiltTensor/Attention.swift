// Multi-head scaled dot-product attention over strided Q/K/V slices, one (query block, head) at a time,
// so the fused QKV buffer of the ViT and the KV caches of the decoder are used in place.
import Dispatch
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
    /// Multiply-adds below which the heads run one after another on the calling thread (a tuning knob, like
    /// `BLAS.splitThreshold`).
    nonisolated(unsafe) public static var parallelThreshold = 1 << 18

    /// Floats of `scores` workspace `multiHead` needs: one `(Tq, Tk)` block per thread.
    public static func scoresCount(queries tq: Int, keys tk: Int) -> Int { BLAS.threads * tq * tk }

    /// `out[:, h] = softmax(scale(Q_h · K_hᵀ) + mask) · V_h` for every head `h`, the heads spread over the
    /// engine's threads (each head's GEMMs single-threaded), so every head is computed the same way whatever
    /// the thread count.
    ///
    /// - q: `(Tq, H·hd)` with leading dimension `ldq`.
    /// - k, v: `(Tk, H·hd)` with leading dimensions `ldk`, `ldv`.
    /// - causalOffset: if set, query `i` sees keys `j ≤ causalOffset + i` (decoder self-attention with a cache).
    /// - validKeys: if set, only keys `0..<validKeys` are visible (right padding).
    /// - scores: workspace of at least `scoresCount(queries: Tq, keys: Tk)` floats.
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
        // The scale goes into the GEMM's alpha when that is exact: OpenBLAS rounds `alpha · Σ` once, the same
        // value as scaling the stored scores (PyTorch's order), and dividing by a power of two is exact too.
        let alpha: Float?
        switch scaling {
        case .multiply(let s): alpha = s
        case .divide(let s): alpha = s.significandWidth == 0 ? 1 / s : nil
        }
        let masked = causalOffset != nil || (validKeys ?? tk) < tk
        let shared = UncheckedSendable((q, k, v, scores, out))

        @Sendable func head(_ h: Int, _ scores: UnsafeMutablePointer<Float>) {
            let (q, k, v, _, out) = shared.value
            let off = h * hd
            // S (Tq, Tk) = Q_h (Tq, hd) · K_hᵀ: K_h is (Tk, hd) row-major with stride ldk, so transB.
            BLAS.gemm(transB: true, m: tq, n: tk, k: hd, alpha: alpha ?? 1,
                      a: q + off, lda: ldq, b: k + off, ldb: ldk, c: scores, ldc: tk, parallel: false)
            for i in 0..<tq {
                let row = scores + i * tk
                if alpha == nil, case .divide(let s) = scaling { for j in 0..<tk { row[j] /= s } }
                if masked {
                    let limit = min(causalOffset.map { $0 + i + 1 } ?? tk, validKeys ?? tk)
                    for j in limit..<tk { row[j] = -.infinity }
                }
                Ops.softmaxRow(row, width: tk)
            }
            // ctx_h (Tq, hd) = P (Tq, Tk) · V_h (Tk, hd, stride ldv), written into its head's columns of out.
            BLAS.gemm(m: tq, n: hd, k: tk, a: scores, lda: tk, b: v + off, ldb: ldv, c: out + off, ldc: ldo, parallel: false)
        }

        let workers = min(BLAS.threads, heads)
        if workers <= 1 || 2 * tq * tk * hd * heads < parallelThreshold {
            for h in 0..<heads { head(h, scores) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for h in stride(from: w, to: heads, by: workers) { head(h, shared.value.3 + w * tq * tk) }
        }
    }
}
