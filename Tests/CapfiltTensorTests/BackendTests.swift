// The fp32 GEMM backends and the int8 linear layer (issue 11): oneDNN and OpenBLAS agree to fp32 rounding,
// oneDNN's result does not depend on where the operands sit in memory (so a run repeats its bytes), and int8
// stays within its quantization error.
import XCTest
@testable import CapfiltTensor

final class BackendTests: XCTestCase {
    private var seed: UInt64 = 7
    private func random(_ count: Int) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2001) / 1000 - 1
        }
    }

    /// `x · Wᵀ` through `Ops.linear` with the given fp32 backend, `x` starting `offset` floats into its buffer.
    private func linear(_ x: [Float], _ w: Tensor, rows m: Int, backend: GemmBackend?, offset: Int = 0) -> [Float] {
        let saved = BLAS.fp32Backend
        defer { BLAS.fp32Backend = saved }
        BLAS.fp32Backend = backend
        let k = w.dim(1), n = w.dim(0)
        let shifted = [Float](repeating: 0, count: offset) + x
        var y = [Float](repeating: 0, count: m * n)
        shifted.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            Ops.linear(xp.baseAddress! + offset, rows: m, ldx: k, weight: w, bias: nil, into: yp.baseAddress!, ldy: n)
        } }
        return y
    }

    func testOneDNNAgreesWithOpenBLASAndDoesNotDependOnAlignment() {
        let m = 100, n = 96, k = 768
        let x = random(m * k), w = Tensor(shape: [n, k], values: random(n * k))
        let reference = linear(x, w, rows: m, backend: .openBLAS)
        let oneDNN = linear(x, w, rows: m, backend: .oneDNN)
        let scale = reference.map(abs).max() ?? 1
        let worst = zip(reference, oneDNN).map { abs($0 - $1) }.max() ?? 0
        print("[backend] oneDNN vs OpenBLAS, \(m)×\(n)×\(k): max abs diff \(worst) (outputs up to \(scale))")
        XCTAssertLessThan(worst, 1e-5 * scale)
        for offset in [1, 2, 3, 5, 16] {
            XCTAssertEqual(linear(x, w, rows: m, backend: .oneDNN, offset: offset), oneDNN, "x offset by \(offset) floats")
        }
    }

    func testInt8LinearIsWithinItsQuantizationError() throws {
        do { try Precision.int8.requireSupport() } catch { throw XCTSkip("\(error)") }
        let m = 40, n = 64, k = 256
        let x = random(m * k), values = random(n * k)
        let exact = linear(x, Tensor(shape: [n, k], values: values), rows: m, backend: .openBLAS)
        let w = Tensor(shape: [n, k], values: values)
        w.reduce(to: .int8)
        let int8 = linear(x, w, rows: m, backend: nil)
        // Each product term is off by at most half a step of x times |w| plus half a step of w times |x|; the
        // errors are independent, so the sum's error grows like √K, far below the K-fold worst case.
        let step = Float(1) / 127, worst = zip(exact, int8).map { abs($0 - $1) }.max() ?? 0
        print("[backend] int8 linear \(m)×\(n)×\(k): max abs diff \(worst) (outputs up to \(exact.map(abs).max() ?? 0))")
        XCTAssertLessThan(worst, step * Float(k).squareRoot() * 2)
        XCTAssertNotEqual(exact, int8, "the reduced weight was used")
    }

    func testQuantizationRoundsToNearestTiesToEven() {
        // max |x| = 127 makes the scale 1, so the values themselves are rounded.
        let x: [Float] = [127, 0.5, 1.5, 2.5, -0.5, -1.5, 126.4, -127, 3.49, -3.51]
        var q = [Int8](repeating: 0, count: x.count)
        let scale = x.withUnsafeBufferPointer { xp in q.withUnsafeMutableBufferPointer { Quantize.row(xp.baseAddress!, count: x.count, into: $0.baseAddress!) } }
        XCTAssertEqual(scale, 1)
        XCTAssertEqual(q, [127, 0, 2, 2, 0, -2, 126, -127, 3, -4])
        var zeros = [Int8](repeating: 1, count: 3)
        let zeroScale = [Float](repeating: 0, count: 3).withUnsafeBufferPointer { xp in
            zeros.withUnsafeMutableBufferPointer { Quantize.row(xp.baseAddress!, count: 3, into: $0.baseAddress!) }
        }
        XCTAssertEqual(zeroScale, 1)
        XCTAssertEqual(zeros, [0, 0, 0])
    }
}
