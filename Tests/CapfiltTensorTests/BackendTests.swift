// The fp32 GEMM backends and the int8 and bf16 linear layers (issue 11): oneDNN and OpenBLAS agree to fp32
// rounding, oneDNN's result does not depend on where the operands sit in memory (so a run repeats its bytes),
// int8 stays within its quantization error and bf16 is the fp32 sum of rounded operands.
import Foundation
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

    /// bf16: the products of bf16-rounded x and W are exact in fp32 and summed in fp32, so the result is the
    /// double-precision sum of the rounded operands to within fp32 summation error, with and without a split
    /// into pieces, and the pieces' results do not depend on where x sits in memory.
    func testBF16LinearIsTheSumOfRoundedOperands() throws {
        do { try Precision.bf16.requireSupport() } catch { throw XCTSkip("\(error)") }
        let saved = BLAS.splitThreshold
        defer { BLAS.splitThreshold = saved }
        let m = 40, n = 72, k = 256
        let x = random(m * k), values = random(n * k)
        func rounded(_ v: Float) -> Double { Double(BFloat16.float(BFloat16.round(v))) }
        var reference = [Double](repeating: 0, count: m * n), magnitude = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for l in 0..<k {
            let term = rounded(x[i * k + l]) * rounded(values[j * k + l])
            reference[i * n + j] += term; magnitude[i * n + j] += abs(term)
        } } }
        let w = Tensor(shape: [n, k], values: values)
        w.reduce(to: .bf16)
        for threshold in [1 << 30, 0] {  // one call, then the smallest pieces
            BLAS.splitThreshold = threshold
            let y = linear(x, w, rows: m, backend: nil)
            for e in 0..<(m * n) {
                XCTAssertLessThanOrEqual(abs(Double(y[e]) - reference[e]), magnitude[e] * Double(k) * 0x1p-24 + 1e-30,
                                         "element \(e), split threshold \(threshold)")
            }
            XCTAssertEqual(linear(x, w, rows: m, backend: nil, offset: 3), y, "x offset by 3 floats")
        }
        let exact = linear(x, Tensor(shape: [n, k], values: values), rows: m, backend: .openBLAS)
        XCTAssertNotEqual(exact, linear(x, w, rows: m, backend: nil), "the reduced weight was used")
    }

    /// A reduced weight mapped from a file gives its fp32 pages back, and they still read the file's values.
    func testReducedWeightFromAFileMappingKeepsItsValues() throws {
        let n = 64, k = 1024  // 256 KiB: whole pages inside
        let values = random(n * k)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-mapped-\(getpid()).bin")
        try values.withUnsafeBytes { Data($0) }.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let fd = open(url.path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let bytes = values.count * 4
        let base = try XCTUnwrap(mmap(nil, bytes, PROT_READ, MAP_PRIVATE, fd, 0))
        close(fd)
        defer { munmap(base, bytes) }
        final class Mapping {}
        let w = Tensor(borrowing: base.assumingMemoryBound(to: Float.self), shape: [n, k], owner: Mapping(), fileMapping: true)
        XCTAssertEqual(w.scalars, values)
        w.reduce(to: .bf16)
        XCTAssertEqual(w.scalars, values, "the released pages are read from the file again")
        XCTAssertEqual(w.reduced?.bf16Values[5], BFloat16.round(values[5]))
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
