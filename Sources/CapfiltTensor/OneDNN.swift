// The only file that imports oneDNN (libdnnl 2.6 from Debian, `Scripts/install-deps.sh`). capfilt uses its
// BLAS-like GEMMs, row-major like `BLAS.gemm`: `dnnl_sgemm` in fp32, `dnnl_gemm_s8s8s32` (AVX-512 VNNI) in
// int8, and in bf16 its matmul primitive (2.6 has no BLAS-like bf16 call), one piece per call on the calling
// thread, never oneDNN's own threads.
import CDNNL
import Synchronization

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

    /// Row-major `C = A · Bᵀ` in bf16 with fp32 sums and output: A `(m, k)` bf16, B `(n, k)` bf16 (a linear
    /// layer's weight), C `(m, n)` fp32.
    ///
    /// One matmul primitive per piece shape and leading dimensions, made on first use and kept (a product has
    /// at most four piece shapes, and every row count a model meets adds its own: decoding's 1–24 rows, text
    /// passes of each padded length; a primitive with a run-time M would need fewer); each call brings its own
    /// scratch memory and stream, so threads can run the same primitive at once (oneDNN's rule for concurrent
    /// execution).
    static func gemmBF16(
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<UInt16>, _ lda: Int, _ b: UnsafePointer<UInt16>, _ ldb: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        singleThreaded()
        let matmul = BF16Matmul.cached(MatmulShape(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc))
        let stream = Streams.take()
        defer { Streams.give(stream) }
        Scratch.shared.with(bytes: matmul.scratchBytes) { scratch in
            var memories: [dnnl_memory_t?] = [nil, nil, nil, nil]
            let d = matmul.descriptors
            check(dnnl_memory_create(&memories[0], d + 0, engine, UnsafeMutableRawPointer(mutating: a)), "memory")
            check(dnnl_memory_create(&memories[1], d + 1, engine, UnsafeMutableRawPointer(mutating: b)), "memory")
            check(dnnl_memory_create(&memories[2], d + 2, engine, UnsafeMutableRawPointer(c)), "memory")
            check(dnnl_memory_create(&memories[3], d + 3, engine, scratch), "memory")
            defer { for memory in memories { dnnl_memory_destroy(memory) } }
            var arguments = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: memories[0]),
                             dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: memories[1]),
                             dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: memories[2]),
                             dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: memories[3])]
            check(dnnl_primitive_execute(matmul.primitive, stream.value, Int32(arguments.count), &arguments),
                  "bf16 matmul \(m)×\(n)×\(k)")
        }
    }

    /// The CPU engine every primitive runs on.
    nonisolated(unsafe) private static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        return engine!
    }()

    fileprivate static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        precondition(status == dnnl_success, "oneDNN \(what()): status \(status.rawValue)")
    }

    /// A piece's shape and leading dimensions: what a matmul primitive is made for.
    fileprivate struct MatmulShape: Hashable { let m, n, k, lda, ldb, ldc: Int }

    /// A bf16 × bf16 → fp32 matmul primitive with plain strided operands and user-provided scratch memory.
    fileprivate final class BF16Matmul: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        /// A, B, C and scratch memory descriptors, written once in init and only read after: heap memory, so
        /// threads pass pointers to them without Swift inout accesses to a shared property.
        let descriptors = UnsafeMutablePointer<dnnl_memory_desc_t>.allocate(capacity: 4)
        let scratchBytes: Int

        private static let cache = Mutex<[MatmulShape: BF16Matmul]>([:])

        static func cached(_ shape: MatmulShape) -> BF16Matmul {
            if let hit = cache.withLock({ $0[shape] }) { return hit }
            let made = BF16Matmul(shape)  // outside the lock: making one takes a while; a duplicate is harmless
            return cache.withLock { cache in
                if let hit = cache[shape] { return hit }
                cache[shape] = made
                return made
            }
        }

        private init(_ s: MatmulShape) {
            /// A 2-D descriptor; dims and strides pass as whole `dnnl_dims_t` arrays (C arrays of DNNL_MAX_NDIMS).
            func describe(_ rows: Int, _ columns: Int, strides: (Int, Int), _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
                var descriptor = dnnl_memory_desc_t()
                var dims: dnnl_dims_t = (dnnl_dim_t(rows), dnnl_dim_t(columns), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                var steps: dnnl_dims_t = (dnnl_dim_t(strides.0), dnnl_dim_t(strides.1), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                withUnsafeBytes(of: &dims) { d in withUnsafeBytes(of: &steps) { t in
                    check(dnnl_memory_desc_init_by_strides(&descriptor, 2, d.bindMemory(to: dnnl_dim_t.self).baseAddress,
                                                           type, t.bindMemory(to: dnnl_dim_t.self).baseAddress),
                          "memory descriptor \(rows)×\(columns)")
                } }
                return descriptor
            }
            descriptors.initialize(to: describe(s.m, s.k, strides: (s.lda, 1), dnnl_bf16))
            (descriptors + 1).initialize(to: describe(s.k, s.n, strides: (1, s.ldb), dnnl_bf16))  // Bᵀ: (k, n) seen through B's (n, k) rows
            (descriptors + 2).initialize(to: describe(s.m, s.n, strides: (s.ldc, 1), dnnl_f32))
            var operation = dnnl_matmul_desc_t()
            check(dnnl_matmul_desc_init(&operation, descriptors, descriptors + 1, nil, descriptors + 2), "matmul descriptor")
            var attributes: dnnl_primitive_attr_t?
            check(dnnl_primitive_attr_create(&attributes), "attributes")
            defer { dnnl_primitive_attr_destroy(attributes) }
            check(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "scratchpad mode")
            var descriptor: dnnl_primitive_desc_t?
            check(dnnl_primitive_desc_create(&descriptor, &operation, attributes, OneDNN.engine, nil),
                  "bf16 matmul \(s.m)×\(s.n)×\(s.k)")
            defer { dnnl_primitive_desc_destroy(descriptor) }
            (descriptors + 3).initialize(to: dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0).pointee)
            scratchBytes = dnnl_memory_desc_get_size(descriptors + 3)
            var made: dnnl_primitive_t?
            check(dnnl_primitive_create(&made, descriptor), "bf16 matmul primitive")
            primitive = made!
        }
    }

    /// CPU streams for concurrent calls (a stream is not thread-safe; making one per call costs more than this).
    fileprivate enum Streams {
        struct Stream: @unchecked Sendable { let value: dnnl_stream_t }
        private static let idle = Mutex<[Stream]>([])

        static func take() -> Stream {
            if let stream = idle.withLock({ $0.popLast() }) { return stream }
            var made: dnnl_stream_t?
            check(dnnl_stream_create(&made, OneDNN.engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
            return Stream(value: made!)
        }

        static func give(_ stream: Stream) { idle.withLock { $0.append(stream) } }
    }
}
