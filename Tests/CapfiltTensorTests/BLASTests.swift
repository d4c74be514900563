import Foundation
import XCTest
@testable import CapfiltTensor

final class BLASTests: XCTestCase {
    /// gemm against a plain triple loop, for every transpose combination.
    func testGemmMatchesNaiveLoops() {
        let m = 5, n = 7, k = 3
        let a = (0..<(m * k)).map { Float(($0 * 7) % 11) - 5 }
        let b = (0..<(k * n)).map { Float(($0 * 5) % 13) - 6 }
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { expected[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        // Transposed copies of a and b.
        var aT = [Float](repeating: 0, count: m * k), bT = [Float](repeating: 0, count: k * n)
        for i in 0..<m { for p in 0..<k { aT[p * m + i] = a[i * k + p] } }
        for p in 0..<k { for j in 0..<n { bT[j * k + p] = b[p * n + j] } }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            var c = [Float](repeating: 0, count: m * n)
            (ta ? aT : a).withUnsafeBufferPointer { ap in
                (tb ? bT : b).withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k,
                                  a: ap.baseAddress!, lda: ta ? m : k,
                                  b: bp.baseAddress!, ldb: tb ? k : n,
                                  c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            XCTAssertEqual(c, expected, "transA=\(ta) transB=\(tb)")
        }
    }

    /// OpenBLAS 0.3.21 falls back to its SSE3 (Prescott) kernels on CPUs newer than it; capfilt then picks the
    /// kernels the CPU's instruction sets allow, unless the user chose with OPENBLAS_CORETYPE.
    func testOpenBLASUsesTheVectorKernelsTheCPUHas() throws {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              flags.split(separator: " ").contains("avx2") else { throw XCTSkip("no AVX2, or OPENBLAS_CORETYPE set") }
        print("[blas] \(BLAS.configuration)")
        XCTAssertFalse(BLAS.configuration.contains("core: Prescott"), BLAS.configuration)
    }
}
