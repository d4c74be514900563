// Each op against a plain Double reference loop.
import Foundation
import XCTest
@testable import CapfiltTensor

final class OpsTests: XCTestCase {
    private func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(s >> 40) / Float(1 << 24) - 0.5) * 2 * scale
        }
    }

    func testLinearIsXTimesWTransposedPlusBias() {
        let m = 4, k = 6, n = 5
        let x = random(m * k, seed: 1), w = random(n * k, seed: 2), b = random(n, seed: 3)
        let weight = Tensor(shape: [n, k], values: w), bias = Tensor(shape: [n], values: b)
        var y = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                Ops.linear(xp.baseAddress!, rows: m, ldx: k, weight: weight, bias: bias, into: yp.baseAddress!, ldy: n)
            }
        }
        for i in 0..<m { for j in 0..<n {
            var ref = Double(b[j])
            for p in 0..<k { ref += Double(x[i * k + p]) * Double(w[j * k + p]) }
            XCTAssertEqual(Double(y[i * n + j]), ref, accuracy: 1e-5)
        } }
    }

    func testLayerNormMatchesReference() {
        let m = 3, c = 17
        let x = random(m * c, seed: 4, scale: 5), g = random(c, seed: 5), b = random(c, seed: 6)
        var y = [Float](repeating: 0, count: m * c)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            Ops.layerNorm(xp.baseAddress!, rows: m, width: c, gamma: Tensor(shape: [c], values: g),
                          beta: Tensor(shape: [c], values: b), eps: 1e-5, into: yp.baseAddress!)
        } }
        for i in 0..<m {
            let row = x[(i * c)..<(i * c + c)].map(Double.init)
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            for j in 0..<c {
                let ref = (row[j] - mean) / (variance + 1e-5).squareRoot() * Double(g[j]) + Double(b[j])
                XCTAssertEqual(Double(y[i * c + j]), ref, accuracy: 1e-5)
            }
        }
    }

    func testGeluIsTheErfForm() {
        var x: [Float] = [-5, -1, -0.5, 0, 0.5, 1, 3]
        let expected = x.map { v -> Double in let d = Double(v); return 0.5 * d * (1 + erf(d / 2.0.squareRoot())) }
        x.withUnsafeMutableBufferPointer { Ops.gelu($0.baseAddress!, count: $0.count) }
        for (a, e) in zip(x, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-6) }
        // The tanh approximation differs from erf GELU by about 1.6e-4 at x = 1.5: make sure we are not it.
        var y: [Float] = [1.5]
        y.withUnsafeMutableBufferPointer { Ops.gelu($0.baseAddress!, count: 1) }
        let tanhForm = 0.5 * 1.5 * (1 + tanh((2 / Double.pi).squareRoot() * (1.5 + 0.044715 * pow(1.5, 3))))
        XCTAssertGreaterThan(abs(Double(y[0]) - tanhForm), 1e-5)
    }

    func testSoftmaxAndLogSoftmax() {
        var x: [Float] = [1, 2, 3, -.infinity, 0]
        let logits = x
        x.withUnsafeMutableBufferPointer { Ops.softmaxRows($0.baseAddress!, rows: 1, width: 5, ld: 5) }
        let z = logits.filter(\.isFinite).map { exp(Double($0)) }.reduce(0, +)
        for (p, l) in zip(x, logits) { XCTAssertEqual(Double(p), l.isFinite ? exp(Double(l)) / z : 0, accuracy: 1e-7) }
        XCTAssertEqual(x[3], 0, "a masked entry has probability exactly 0")
        var y = [Float](repeating: 0, count: 5)
        logits.withUnsafeBufferPointer { lp in y.withUnsafeMutableBufferPointer { Ops.logSoftmax(lp.baseAddress!, count: 5, into: $0.baseAddress!) } }
        for (a, l) in zip(y, logits) where l.isFinite { XCTAssertEqual(Double(a), Double(l) - log(z), accuracy: 1e-6) }
    }

    /// Strided multi-head attention with causal and padding masks, against a naive per-head loop.
    func testMultiHeadAttentionMatchesNaive() {
        let tq = 3, tk = 5, heads = 2, hd = 4, width = heads * hd, ld = 3 * width
        let qkv = random(tk * ld, seed: 9)
        for (causal, valid) in [(nil, nil), (2, nil), (nil, 4), (1, 3)] as [(Int?, Int?)] {
            var out = [Float](repeating: 0, count: tq * width)
            var scores = [Float](repeating: 0, count: Attention.scoresCount(queries: tq, keys: tk))
            qkv.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in scores.withUnsafeMutableBufferPointer { s in
                    Attention.multiHead(q: p.baseAddress!, ldq: ld, k: p.baseAddress! + width, ldk: ld, v: p.baseAddress! + 2 * width, ldv: ld,
                                        queries: tq, keys: tk, heads: heads, headDim: hd, scaling: .divide(2),
                                        causalOffset: causal, validKeys: valid, scores: s.baseAddress!, out: o.baseAddress!, ldo: width)
                } }
            }
            for h in 0..<heads { for i in 0..<tq {
                let visible = min(causal.map { $0 + i + 1 } ?? tk, valid ?? tk)
                var logits: [Double] = []
                for j in 0..<visible {
                    var dot = 0.0
                    for d in 0..<hd { dot += Double(qkv[i * ld + h * hd + d]) * Double(qkv[j * ld + width + h * hd + d]) }
                    logits.append(dot / 2)
                }
                let m = logits.max()!, e = logits.map { exp($0 - m) }, z = e.reduce(0, +)
                for d in 0..<hd {
                    var ref = 0.0
                    for j in 0..<visible { ref += e[j] / z * Double(qkv[j * ld + 2 * width + h * hd + d]) }
                    XCTAssertEqual(Double(out[i * width + h * hd + d]), ref, accuracy: 1e-5, "causal \(String(describing: causal)) valid \(String(describing: valid))")
                }
            } }
        }
    }
}
