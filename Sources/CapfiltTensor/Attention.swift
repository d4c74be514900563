// Multi-head scaled dot-product attention over strided Q/K/V slices, one (sequence, head) piece at a time,
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

/// One sequence's operands for `Attention.multiHead(_:...)`: its queries, keys, values and output, all with
/// the heads side by side in the feature dimension (leading dimensions given to `multiHead`).
public struct AttentionSequence {
    /// `(Tq, H·hd)`.
    public var q: UnsafePointer<Float>
    /// `(Tk, H·hd)` each.
    public var k: UnsafePointer<Float>, v: UnsafePointer<Float>
    /// `(Tq, H·hd)`.
    public var out: UnsafeMutablePointer<Float>
    /// If set, only keys `0..<validKeys` are visible (right padding).
    public var validKeys: Int?

    public init(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                out: UnsafeMutablePointer<Float>, validKeys: Int? = nil) {
        self.q = q; self.k = k; self.v = v; self.out = out; self.validKeys = validKeys
    }
}

public enum Attention {
    /// Multiply-adds below which the pieces run one after another on the calling thread (a tuning knob, like
    /// `BLAS.splitThreshold`).
    nonisolated(unsafe) public static var parallelThreshold = 1 << 18

    /// Floats of `scores` workspace `multiHead` needs: one `(Tq, Tk)` block per thread.
    public static func scoresCount(queries tq: Int, keys tk: Int) -> Int { BLAS.threads * tq * tk }

    /// The pieces `multiHead` spreads over the threads: one per (sequence, head).
    public static func pieces(sequences: Int, heads: Int) -> Int { sequences * heads }

    /// `out[:, h] = softmax(scale(Q_h · K_hᵀ) + mask) · V_h` for every head `h` of one sequence.
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
        multiHead([AttentionSequence(q: q, k: k, v: v, out: out, validKeys: validKeys)],
                  ldq: ldq, ldk: ldk, ldv: ldv, ldo: ldo, queries: tq, keys: tk, heads: heads, headDim: hd,
                  scaling: scaling, causalOffset: causalOffset, scores: scores)
    }

    /// Multi-head attention of several sequences of the same shape (the images of a batch, the rows of a
    /// decoding step), their (sequence, head) pieces spread over the engine's threads, each piece's GEMMs
    /// single-threaded: every head is computed the same way whatever the thread count.
    ///
    /// - sequences: per sequence, its Q, K, V, output and padding (see `AttentionSequence`).
    /// - causalOffset: if set, query `i` sees keys `j ≤ causalOffset + i` in every sequence.
    /// - scores: workspace of at least `scoresCount(queries: Tq, keys: Tk)` floats.
    public static func multiHead(
        _ sequences: [AttentionSequence], ldq: Int, ldk: Int, ldv: Int, ldo: Int,
        queries tq: Int, keys tk: Int, heads: Int, headDim hd: Int,
        scaling: AttentionScaling, causalOffset: Int? = nil,
        scores: UnsafeMutablePointer<Float>
    ) {
        // The scale goes into the GEMM's alpha when that is exact: OpenBLAS rounds `alpha · Σ` once, the same
        // value as scaling the stored scores (PyTorch's order), and dividing by a power of two is exact too.
        let alpha: Float?
        switch scaling {
        case .multiply(let s): alpha = s
        case .divide(let s): alpha = s.significandWidth == 0 ? 1 / s : nil
        }
        func piece(_ p: Int, _ scores: UnsafeMutablePointer<Float>) {
            let sequence = sequences[p / heads], off = (p % heads) * hd
            let validKeys = sequence.validKeys ?? tk
            let masked = causalOffset != nil || validKeys < tk
            // S (Tq, Tk) = Q_h (Tq, hd) · K_hᵀ: K_h is (Tk, hd) row-major with stride ldk, so transB.
            BLAS.gemm(transB: true, m: tq, n: tk, k: hd, alpha: alpha ?? 1,
                      a: sequence.q + off, lda: ldq, b: sequence.k + off, ldb: ldk, c: scores, ldc: tk, parallel: false)
            for i in 0..<tq {
                let row = scores + i * tk
                if alpha == nil, case .divide(let s) = scaling { for j in 0..<tk { row[j] /= s } }
                if masked {
                    let limit = min(causalOffset.map { $0 + i + 1 } ?? tk, validKeys)
                    for j in limit..<tk { row[j] = -.infinity }
                }
                Ops.softmaxRow(row, width: tk)
            }
            // ctx_h (Tq, hd) = P (Tq, Tk) · V_h (Tk, hd, stride ldv), written into its head's columns of out.
            BLAS.gemm(m: tq, n: hd, k: tk, a: scores, lda: tk, b: sequence.v + off, ldb: ldv,
                      c: sequence.out + off, ldc: ldo, parallel: false)
        }

        let pieces = pieces(sequences: sequences.count, heads: heads)
        let workers = 2 * tq * tk * hd * pieces < parallelThreshold ? 1 : BLAS.threads
        Parallel.forEachPiece(pieces, workers: workers) { p, w in piece(p, scores + w * tq * tk) }
    }
}
