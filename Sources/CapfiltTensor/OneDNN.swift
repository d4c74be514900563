// The only file that imports oneDNN (libdnnl 2.6 from Debian, `Scripts/install-deps.sh`). capfilt uses its
// BLAS-like GEMMs, row-major like `BLAS.gemm`: `dnnl_sgemm` in fp32 and `dnnl_gemm_s8s8s32` (AVX-512 VNNI) in
// int8, one piece per call on the calling thread, never oneDNN's own threads.
import CDNNL

enum OneDNN {
    /// The instruction set oneDNN's kernels use on this CPU.
    static let isa = dnnl_get_effective_cpu_isa()

    private static func has(_ level: dnnl_cpu_isa_t) -> Bool { isa.rawValue & level.rawValue == level.rawValue }
    /// `vpdpbusd`: int8 dot products in one instruction (AVX-512 VNNI).
    static var hasInt8DotProducts: Bool { has(dnnl_cpu_isa_avx512_core_vnni) }
    /// `vdpbf16ps`: bf16 dot products into fp32 (AVX-512 BF16).
    static var hasBF16DotProducts: Bool { has(dnnl_cpu_isa_avx512_core_bf16) }

    /// oneDNN's name for the instruction set, as its verbose log prints it.
    static var isaName: String {
        switch isa {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        default: return "isa 0x" + String(isa.rawValue, radix: 16)
        }
    }

    @inline(__always)
    private static func singleThreaded() {
        if omp_get_max_threads() != 1 { omp_set_num_threads(1) }
    }

    private static let noTranspose = CChar(UInt8(ascii: "N")), transpose = CChar(UInt8(ascii: "T"))

    /// Row-major `C = alpha · op(A) · op(B) + beta · C` in fp32, as `BLAS.gemm`'s OpenBLAS call.
    static func sgemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        singleThreaded()
        let status = dnnl_sgemm(transA ? transpose : noTranspose, transB ? transpose : noTranspose,
                                dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha, a, dnnl_dim_t(lda),
                                b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm \(m)×\(n)×\(k): status \(status.rawValue)")
    }

    /// Row-major `C = A · Bᵀ` in int8 with int32 sums: A `(m, k)`, B `(n, k)` (a linear layer's weight), C
    /// `(m, n)`, no offsets.
    static func gemmInt8(
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Int8>, _ lda: Int, _ b: UnsafePointer<Int8>, _ ldb: Int,
        _ c: UnsafeMutablePointer<Int32>, _ ldc: Int
    ) {
        singleThreaded()
        var zero: Int32 = 0
        let status = dnnl_gemm_s8s8s32(noTranspose, transpose, CChar(UInt8(ascii: "F")),
                                       dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), 1, a, dnnl_dim_t(lda), 0,
                                       b, dnnl_dim_t(ldb), 0, 0, c, dnnl_dim_t(ldc), &zero)
        precondition(status == dnnl_success, "dnnl_gemm_s8s8s32 \(m)×\(n)×\(k): status \(status.rawValue)")
    }
}
