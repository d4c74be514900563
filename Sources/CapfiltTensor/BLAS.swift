// The only file that imports OpenBLAS. Raw pointers and CBLAS enums stay here; the rest of the
// code calls `BLAS.gemm` with row-major semantics spelled out.
import COpenBLAS

public enum BLAS {
    /// Threads OpenBLAS uses for one GEMM. Workers × BLAS threads must not exceed the cores.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// OpenBLAS's own description of its build and kernel, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell".
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return String(cString: c) + " (core: \(core))"
    }

    /// Row-major `C = alpha · op(A) · op(B) + beta · C`, with `op(X) = Xᵀ` when the flag is set.
    ///
    /// - `a`: `(m, k)` if not transposed, else `(k, m)`; leading dimension `lda`.
    /// - `b`: `(k, n)` if not transposed, else `(n, k)`; leading dimension `ldb`.
    /// - `c`: `(m, n)`; leading dimension `ldc`.
    @inlinable
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
}
