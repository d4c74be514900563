// The only file that imports OpenBLAS. Raw pointers and CBLAS enums stay here; the rest of the
// code calls `BLAS.gemm` with row-major semantics spelled out, and `gemm` picks OpenBLAS or oneDNN
// (OneDNN.swift) per product shape.
//
// Threads: capfilt owns them. The libraries run single-threaded inside each call and `gemm` cuts a large
// product into pieces, blocks of output rows × columns whose sizes depend on the product's shape alone
// (`tiling`), that the engine's threads take one at a time. Nothing spins between GEMMs (OpenBLAS's own pool
// busy-waits, competing with the row-parallel ops and the attention heads for the same cores), and because
// every piece is one library call of the same shape whatever the number of threads, the results do not
// depend on it.
import COpenBLAS
import Foundation

/// How `BLAS.gemm` cuts `C (m, n)` into pieces: blocks of `rowBlock` rows × `columnBlock` columns (the last
/// ones in each direction may be shorter), each computed by one GEMM call over the full K. A pure function
/// of the shape (`BLAS.tiling`), so the pieces, and with them the results, are the same on any thread count.
public struct GemmTiling: Equatable, Sendable, CustomStringConvertible {
    public let m: Int, n: Int
    public let rowBlock: Int, columnBlock: Int

    public var rowBlocks: Int { (m + rowBlock - 1) / rowBlock }
    public var columnBlocks: Int { (n + columnBlock - 1) / columnBlock }
    /// Pieces the threads can share.
    public var pieces: Int { rowBlocks * columnBlocks }

    /// The rows and columns of C that piece `p` computes, row-block-major: consecutive pieces share a block of
    /// A's rows, which stays in cache between them.
    public func piece(_ p: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let r = p / columnBlocks, c = p % columnBlocks
        return (r * rowBlock..<min(m, (r + 1) * rowBlock), c * columnBlock..<min(n, (c + 1) * columnBlock))
    }

    public var description: String { "\(rowBlocks)×\(columnBlocks) blocks of \(rowBlock)×\(columnBlock)" }
}

/// The library that computes an fp32 product's pieces.
public enum GemmBackend: String, Sendable, CaseIterable {
    /// OpenBLAS `cblas_sgemm`: the reference path.
    case openBLAS = "openblas"
    /// oneDNN `dnnl_sgemm`.
    case oneDNN = "onednn"
}

public enum BLAS {
    nonisolated(unsafe) private static var engineThreads: Int = {
        kernelChoice = chooseKernels()
        let cores = Int(openblas_get_num_threads())  // OpenBLAS's default: the cores it can use
        openblas_set_num_threads(1)
        return max(1, cores)
    }()

    /// What `chooseKernels` did, for `configuration`.
    nonisolated(unsafe) private static var kernelChoice: String?

    /// OpenBLAS 0.3.21 (Debian 12's) does not know CPUs released after it (Sapphire and Emerald Rapids, for
    /// one) and then falls back to its Prescott kernels, SSE3 only: 4–5x slower sgemm on an AVX-512 machine
    /// (OpenBLAS fixed this in 0.3.25, PR 4268). When that happened and the user did not choose a core with
    /// OPENBLAS_CORETYPE, pick the newest kernels the CPU's instruction sets allow, the way OPENBLAS_CORETYPE
    /// would have, through OpenBLAS's own re-initialisation, before any BLAS call. Returns what it did.
    private static func chooseKernels() -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let current = openblas_get_corename().map({ String(cString: $0) }), current.lowercased() == "prescott",
              let quit = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),  // RTLD_DEFAULT
              let initialise = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init"),
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        let avx512: Set = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        let core: String
        if flags.isSuperset(of: avx512.union(["avx512_bf16"])) { core = "Cooperlake" }
        else if flags.isSuperset(of: avx512) { core = "SkylakeX" }
        else if flags.isSuperset(of: ["avx2", "fma"]) { core = "Haswell" }
        else { return nil }
        typealias Hook = @convention(c) () -> Void
        setenv("OPENBLAS_CORETYPE", core, 1)
        unsafeBitCast(quit, to: Hook.self)()
        unsafeBitCast(initialise, to: Hook.self)()
        unsetenv("OPENBLAS_CORETYPE")
        let now = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "OpenBLAS chose \(current) for this CPU; capfilt selected \(now)"
    }

    /// Threads the engine computes on (GEMM pieces, attention heads, row-parallel ops). Set it once at
    /// start-up, before any model work; the default is every core OpenBLAS sees. Results do not depend on it.
    public static var threads: Int {
        get { engineThreads }
        set { engineThreads = max(1, newValue); openblas_set_num_threads(1) }
    }

    /// OpenBLAS's own description of its build and kernel, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell".
    public static var configuration: String {
        _ = engineThreads
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return String(cString: c) + " (core: \(core))" + (kernelChoice.map { "; \($0)" } ?? "")
    }

    /// The fp32 backend for every product, or nil for the choice by shape (`backend(m:n:k:)`). Read from
    /// `CAPFILT_FP32_GEMM` (`openblas`, `onednn`, `auto`) at start-up; tests set it. Set it before model work:
    /// which library computes a product changes its last bits (the thread count still does not).
    nonisolated(unsafe) public static var fp32Backend: GemmBackend? =
        ProcessInfo.processInfo.environment["CAPFILT_FP32_GEMM"].flatMap { GemmBackend(rawValue: $0.lowercased()) }

    /// Which library computes the fp32 product `(m, n, k)`, by measurement on this project's development
    /// machine (BENCHMARKS.md, "GEMM backends"): oneDNN for products of more than `thinRows` rows, whose pieces
    /// (and attention's per-head Q·Kᵀ) it runs 1.1–1.8x faster than OpenBLAS, which re-packs more per call;
    /// OpenBLAS for the thin products of decoding, where its small-matrix kernels are 1.3–1.7x faster. A pure
    /// function of the shape, so a run computes the same bytes every time.
    public static func backend(m: Int, n: Int, k: Int) -> GemmBackend {
        if let fp32Backend { return fp32Backend }
        return m > thinRows ? .oneDNN : .openBLAS
    }

    /// Products below this many multiply-adds run as one call on the calling thread. A tuning knob (tests set
    /// it to 0 to split even the tiny fixture models); where a product splits never changes its result.
    nonisolated(unsafe) public static var splitThreshold = 1 << 21
    /// A split product offers at least this many pieces (where its shape allows blocks of 4 × 4), so a
    /// machine with that many cores has work for all of them.
    public static let minimumPieces = 64
    /// Largest blocks of a product with more than `thinRows` rows: bigger products get more pieces, not
    /// bigger ones. About 0.1 GFLOP at K = 768, so the re-packing of A's and B's blocks that the libraries do
    /// in every call stays a few percent of the arithmetic.
    public static let maximumBlock = (rows: 288, columns: 384)
    /// Products with at most this many rows (decoding: batch × beams) are cut by columns only (each weight is
    /// read once), at most
    /// `thinColumnBlock` wide: A is a few rows, cheap to re-pack, and narrow calls stream B's rows from memory
    /// faster than wide ones (one row: 26 GB/s in 64-column calls against 7 GB/s in one call, on this
    /// project's development machine).
    public static let thinRows = 32
    public static let thinColumnBlock = 64

    /// The pieces `gemm` cuts `C (m, n)` into for a product with inner dimension `k`. Depends on the shape and
    /// `splitThreshold` only, never on the thread count.
    ///
    /// Blocks start at the largest size (`maximumBlock`, or `thinColumnBlock` columns of every row for a thin
    /// product) and, while there are fewer than `minimumPieces`, the longer side of the block is cut into one
    /// more part, which keeps blocks square-ish: that is the least re-packing for a given number of pieces.
    /// Sides are multiples of 4 rows and of 16 columns (4 once a block is narrower than 32), the units of the
    /// kernels' register tiles.
    public static func tiling(m: Int, n: Int, k: Int) -> GemmTiling {
        let whole = GemmTiling(m: m, n: n, rowBlock: max(m, 1), columnBlock: max(n, 1))
        guard m > 0, n > 0, m * n * k >= max(splitThreshold, 1), m * n > 1 else { return whole }
        func side(_ length: Int, _ parts: Int, unit: Int) -> Int {
            let even = (length + parts - 1) / parts
            return min(length, (even + unit - 1) / unit * unit)
        }
        func columns(_ parts: Int) -> Int { let c = side(n, parts, unit: 16); return c >= 32 ? c : side(n, parts, unit: 4) }
        let thin = m <= thinRows
        var rowParts = thin ? 1 : (m + maximumBlock.rows - 1) / maximumBlock.rows
        var columnParts = (n + (thin ? thinColumnBlock : maximumBlock.columns) - 1) / (thin ? thinColumnBlock : maximumBlock.columns)
        var tiling = GemmTiling(m: m, n: n, rowBlock: side(m, rowParts, unit: 4), columnBlock: columns(columnParts))
        while tiling.pieces < minimumPieces {
            let canCutColumns = tiling.columnBlock > 4, canCutRows = !thin && tiling.rowBlock > 4
            if canCutColumns && (tiling.columnBlock >= tiling.rowBlock || !canCutRows) {
                columnParts += 1
            } else if canCutRows {
                rowParts += 1
            } else {
                break
            }
            tiling = GemmTiling(m: m, n: n, rowBlock: side(m, rowParts, unit: 4), columnBlock: columns(columnParts))
        }
        return tiling
    }

    /// Row-major `C = alpha · op(A) · op(B) + beta · C`, with `op(X) = Xᵀ` when the flag is set.
    ///
    /// - `a`: `(m, k)` if not transposed, else `(k, m)`; leading dimension `lda`.
    /// - `b`: `(k, n)` if not transposed, else `(n, k)`; leading dimension `ldb`.
    /// - `c`: `(m, n)`; leading dimension `ldc`.
    /// - parallel: false inside work that is already spread over the threads (one attention head).
    /// - epilogue: called on the same thread right after each piece with the rows and columns of C it wrote,
    ///   while they are in cache (bias, activation, residual); it must touch only those elements.
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool = true,
        epilogue: ((_ rows: Range<Int>, _ columns: Range<Int>) -> Void)? = nil
    ) {
        let threads = engineThreads  // first touch also makes OpenBLAS single-threaded
        let tiling = parallel ? tiling(m: m, n: n, k: k) : GemmTiling(m: m, n: n, rowBlock: max(m, 1), columnBlock: max(n, 1))
        let oneDNN = backend(m: m, n: n, k: k) == .oneDNN
        Parallel.forEachPiece(tiling.pieces, workers: threads) { p, _ in
            let (rows, columns) = tiling.piece(p)
            let r = rows.lowerBound, j = columns.lowerBound
            let pa = a + (transA ? r : r * lda), pb = b + (transB ? j * ldb : j), pc = c + r * ldc + j
            if oneDNN {
                OneDNN.sgemm(transA, transB, rows.count, columns.count, k, alpha, pa, lda, pb, ldb, beta, pc, ldc)
            } else {
                call(transA, transB, rows.count, columns.count, k, alpha, pa, lda, pb, ldb, beta, pc, ldc)
            }
            epilogue?(rows, columns)
        }
    }

    /// Row-major `C = A · Bᵀ` in int8 with int32 sums (oneDNN, AVX-512 VNNI), cut into the same pieces as an
    /// fp32 product of its shape.
    ///
    /// - a: `(m, k)`; b: `(n, k)`, a linear layer's weight; c: `(m, n)` with leading dimension `ldc`.
    /// - epilogue: as for `gemm`, called with each piece's rows and columns right after it.
    static func gemmInt8(
        m: Int, n: Int, k: Int, a: UnsafePointer<Int8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
        c: UnsafeMutablePointer<Int32>, ldc: Int, epilogue: (_ rows: Range<Int>, _ columns: Range<Int>) -> Void
    ) {
        let tiling = tiling(m: m, n: n, k: k)
        Parallel.forEachPiece(tiling.pieces, workers: engineThreads) { p, _ in
            let (rows, columns) = tiling.piece(p)
            let r = rows.lowerBound, j = columns.lowerBound
            OneDNN.gemmInt8(rows.count, columns.count, k, a + r * lda, lda, b + j * ldb, ldb, c + r * ldc + j, ldc)
            epilogue(rows, columns)
        }
    }

    /// Row-major `C = A · Bᵀ` in bf16 with fp32 sums and output (oneDNN, AVX-512 BF16), cut into the same
    /// pieces as an fp32 product of its shape.
    ///
    /// - a: `(m, k)` bf16; b: `(n, k)` bf16, a linear layer's weight; c: `(m, n)` with leading dimension `ldc`.
    /// - epilogue: as for `gemm`, called with each piece's rows and columns right after it.
    static func gemmBF16(
        m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: ((_ rows: Range<Int>, _ columns: Range<Int>) -> Void)?
    ) {
        let tiling = tiling(m: m, n: n, k: k)
        Parallel.forEachPiece(tiling.pieces, workers: engineThreads) { p, _ in
            let (rows, columns) = tiling.piece(p)
            let r = rows.lowerBound, j = columns.lowerBound
            OneDNN.gemmBF16(rows.count, columns.count, k, a + r * lda, lda, b + j * ldb, ldb, c + r * ldc + j, ldc)
            epilogue?(rows, columns)
        }
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
        _ = engineThreads  // the kernels are chosen on first touch
        call(false, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
    }
}
