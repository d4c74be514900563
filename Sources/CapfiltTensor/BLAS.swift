// The only file that imports OpenBLAS. Raw pointers and CBLAS enums stay here; the rest of the
// code calls `BLAS.gemm` with row-major semantics spelled out.
//
// Threads: capfilt owns them. OpenBLAS runs single-threaded inside each call and `gemm` splits a large product
// into a fixed number of slices of output columns (or rows) that the engine's threads share. Nothing spins
// between GEMMs (OpenBLAS's own pool busy-waits, competing with the row-parallel ops and the attention heads
// for the same cores), and the slices do not depend on the thread count, so neither do the results: every
// slice is one OpenBLAS call of the same shape whatever the number of threads.
import COpenBLAS
import Dispatch

public enum BLAS {
    nonisolated(unsafe) private static var engineThreads: Int = {
        let cores = Int(openblas_get_num_threads())  // OpenBLAS's default: the cores it can use
        openblas_set_num_threads(1)
        return max(1, cores)
    }()

    /// Threads the engine computes on (GEMM blocks, attention heads, row-parallel ops). Set it once at
    /// start-up, before any model work; the default is every core OpenBLAS sees.
    public static var threads: Int {
        get { engineThreads }
        set { engineThreads = max(1, newValue); openblas_set_num_threads(1) }
    }

    /// OpenBLAS's own description of its build and kernel, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell".
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return String(cString: c) + " (core: \(core))"
    }

    /// Products below this many multiply-adds run as one call on the calling thread. A tuning knob (tests set
    /// it to 0 to split even the tiny fixture models); where a product splits never changes its result.
    nonisolated(unsafe) public static var splitThreshold = 1 << 21
    /// A split product is always cut into this many parts (12 divides evenly among 1, 2, 3, 4 or 6 threads),
    /// whatever the thread count: few enough that re-packing the shared operand per part costs under 1%.
    public static let parts = 12

    /// Row-major `C = alpha · op(A) · op(B) + beta · C`, with `op(X) = Xᵀ` when the flag is set.
    ///
    /// - `a`: `(m, k)` if not transposed, else `(k, m)`; leading dimension `lda`.
    /// - `b`: `(k, n)` if not transposed, else `(n, k)`; leading dimension `ldb`.
    /// - `c`: `(m, n)`; leading dimension `ldc`.
    /// - parallel: false inside work that is already spread over the threads (one attention head).
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool = true
    ) {
        let threads = engineThreads  // first touch also makes OpenBLAS single-threaded
        guard parallel, m * n * k >= splitThreshold, max(m, n) > 16 else {
            call(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Cut the longer output side into `parts` slices, multiples of 16 (the kernels' widest unroll).
        let byColumns = n >= m
        let length = byColumns ? n : m
        let slice = ((length + parts - 1) / parts + 15) / 16 * 16
        let shared = UncheckedSendable((a, b, c))
        // Contiguous runs of parts per worker; each part is its own call, so its shape never changes (with one
        // thread too: the same calls, one after another).
        let workers = min(threads, parts)
        let run: @Sendable (Int) -> Void = { w in
            let (a, b, c) = shared.value
            for part in (w * parts / workers)..<((w + 1) * parts / workers) {
                let lo = part * slice, hi = min(length, lo + slice)
                if lo >= hi { continue }
                if byColumns {
                    call(transA, transB, m, hi - lo, k, alpha, a, lda,
                         b + (transB ? lo * ldb : lo), ldb, beta, c + lo, ldc)
                } else {
                    call(transA, transB, hi - lo, n, k, alpha, a + (transA ? lo : lo * lda), lda,
                         b, ldb, beta, c + lo * ldc, ldc)
                }
            }
        }
        if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
    }

    @inline(__always)
    private static func call(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    /// Plain OpenBLAS on `threads` of its own threads, as any program calling sgemm gets it: the reference
    /// `capfilt bench` compares the vision tower with. Restores single-threaded OpenBLAS afterwards.
    public static func withOpenBLASThreading<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
        _ = engineThreads  // read the default from OpenBLAS before anything changes it
        openblas_set_num_threads(Int32(max(1, threads)))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// One OpenBLAS call, whatever its size (for the reference measurement).
    public static func sgemmCall(
        transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        call(false, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
    }
}
