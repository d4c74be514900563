// How products are cut into pieces (issue 10, item 5): enough pieces for a 64-core machine on every product of
// the base-size models at batch 8, a cut that depends on the shape only, and the same bytes on 1, 2 or 64
// threads.
import XCTest
@testable import CapfiltTensor

final class TilingTests: XCTestCase {
    /// Every GEMM of BLIP base (BLIP-SPEC §1.1, §4, §5) at batch 8: (what, M, N, K).
    static let batch8Products: [(String, Int, Int, Int)] = {
        let b = 8, n = 577, d = 768, i = 3072, c = 768, v = 30524
        var list: [(String, Int, Int, Int)] = [
            // ViT-B/16 at 384²: patch embedding (3·16·16 = 768 inputs), then per layer QKV, projection, MLP.
            ("vision patch embedding", b * 576, d, 768),
            ("vision qkv", b * n, 3 * d, d),
            ("vision projection", b * n, d, d),
            ("vision fc1", b * n, i, d),
            ("vision fc2", b * n, d, i),
            // Cross-attention keys and values of 8 images (once per image, for every layer of both text towers).
            ("text cross-attention K/V of the images", b * n, c, d),
        ]
        // Decoding steps: one new token for 8 images × 1 or 3 beams; the prompt step of "a picture of" (4 ids).
        // ITM/ITC text passes: 8 images × 1 or 2 texts of 20 or 35 tokens.
        let rowCounts = [("decode step, greedy", b), ("decode step, beam 3", b * 3), ("prompt step, beam 3", b * 3 * 4),
                         ("ITM/ITC pass, 1 text of 20 tokens", b * 20), ("ITM/ITC pass, 2 texts of 35 tokens", b * 2 * 35)]
        for (what, r) in rowCounts {
            list += [("\(what): Q/K/V/output/cross Q/cross output", r, c, c),
                     ("\(what): FFN intermediate", r, i, c),
                     ("\(what): FFN output", r, c, i)]
        }
        for r in [b, b * 3] {
            list += [("LM head transform, \(r) rows", r, c, c), ("LM head vocabulary, \(r) rows", r, v, c)]
        }
        list.append(("ITC text projection, 16 texts", 2 * b, 256, c))
        return list
    }()

    /// Products too small to split (one call on one thread): the ITM head and the ITC image projection.
    static let batch8SmallProducts: [(String, Int, Int, Int)] = [
        ("ITM head, 16 texts", 16, 2, 768),
        ("ITC image projection, 8 images", 8, 256, 768),
    ]

    func testEveryBaseModelProductAtBatch8OffersAtLeast64Pieces() {
        for (what, m, n, k) in Self.batch8Products {
            let tiling = BLAS.tiling(m: m, n: n, k: k)
            print("[tiling] \(what) (\(m)×\(n)×\(k)): \(tiling), \(tiling.pieces) pieces")
            XCTAssertGreaterThanOrEqual(tiling.pieces, BLAS.minimumPieces, "\(what) (\(m)×\(n)×\(k)): \(tiling)")
        }
        for (what, m, n, k) in Self.batch8SmallProducts {
            XCTAssertLessThan(m * n * k, BLAS.splitThreshold, what)
            XCTAssertEqual(BLAS.tiling(m: m, n: n, k: k).pieces, 1, what)
        }
    }

    /// Attention pieces are (sequence, head) pairs: 8 images × 12 heads in the ViT, 8 × beams rows × 12 heads
    /// in the decoder.
    func testAttentionAtBatch8OffersAtLeast64Pieces() {
        XCTAssertGreaterThanOrEqual(Attention.pieces(sequences: 8, heads: 12), BLAS.minimumPieces)
        XCTAssertGreaterThanOrEqual(Attention.pieces(sequences: 24, heads: 12), BLAS.minimumPieces)
    }

    /// Bigger products get more pieces, never bigger ones: blocks stay within `maximumBlock`.
    func testPiecesGrowWithTheProduct() {
        for images in [8, 16, 32, 64] {
            let m = images * 577, n = 768
            let tiling = BLAS.tiling(m: m, n: n, k: 768)
            XCTAssertLessThanOrEqual(tiling.rowBlock, BLAS.maximumBlock.rows, "\(images) images: \(tiling)")
            XCTAssertLessThanOrEqual(tiling.columnBlock, BLAS.maximumBlock.columns, "\(images) images: \(tiling)")
            let fewest = ((m + BLAS.maximumBlock.rows - 1) / BLAS.maximumBlock.rows) * ((n + BLAS.maximumBlock.columns - 1) / BLAS.maximumBlock.columns)
            XCTAssertGreaterThanOrEqual(tiling.pieces, max(fewest, BLAS.minimumPieces), "\(images) images: \(tiling)")
        }
        // A thin product is cut by columns only, so each weight is read once.
        for rows in [1, 8, 24, 32] { XCTAssertEqual(BLAS.tiling(m: rows, n: 768, k: 768).rowBlocks, 1, "\(rows) rows") }
    }

    /// The pieces cover C exactly once, for shapes of every kind (thin, square, ragged, tiny).
    func testPiecesCoverTheOutputExactlyOnce() {
        let saved = BLAS.splitThreshold
        defer { BLAS.splitThreshold = saved }
        BLAS.splitThreshold = 0
        for (m, n) in [(1, 1), (1, 30524), (3, 7), (8, 768), (24, 770), (33, 100), (577, 577), (4616, 2304), (5, 3)] {
            let tiling = BLAS.tiling(m: m, n: n, k: 64)
            var hits = [UInt8](repeating: 0, count: m * n)
            for p in 0..<tiling.pieces {
                let (rows, columns) = tiling.piece(p)
                XCTAssertFalse(rows.isEmpty || columns.isEmpty, "\(m)×\(n) piece \(p) of \(tiling)")
                for i in rows { for j in columns { hits[i * n + j] += 1 } }
            }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "\(m)×\(n): \(tiling)")
        }
    }

    /// The same bytes on 1, 2 and 64 threads, for every transpose combination, with an epilogue.
    func testGemmGivesTheSameBytesOn1And2And64Threads() {
        let saved = (BLAS.threads, BLAS.splitThreshold)
        defer { (BLAS.threads, BLAS.splitThreshold) = saved }
        BLAS.splitThreshold = 0
        var seed: UInt64 = 1
        func random(_ count: Int) -> [Float] {
            (0..<count).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: seed >> 11) % 2001) / 1000 - 1
            }
        }
        for (m, n, k) in [(577, 768, 96), (24, 3072, 64), (130, 70, 33)] {
            let a = random(m * k), b = random(k * n), bias = random(n)
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                func product(threads: Int) -> [Float] {
                    BLAS.threads = threads
                    var c = [Float](repeating: 0, count: m * n)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                        let out = cp.baseAddress!
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5,
                                  a: ap.baseAddress!, lda: ta ? m : k, b: bp.baseAddress!, ldb: tb ? k : n,
                                  c: out, ldc: n) { rows, columns in
                            for i in rows { for j in columns { out[i * n + j] += bias[j] } }
                        }
                    } } }
                    return c
                }
                let one = product(threads: 1)
                XCTAssertEqual(one, product(threads: 2), "\(m)×\(n)×\(k) transA=\(ta) transB=\(tb), 2 threads")
                XCTAssertEqual(one, product(threads: 64), "\(m)×\(n)×\(k) transA=\(ta) transB=\(tb), 64 threads")
            }
        }
    }
}
