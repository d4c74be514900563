// Can a bf16 mode pay on this CPU? oneDNN's matmul primitive (the only oneDNN 2.6 API with bf16 brgemm kernels)
// on capfilt's whole products and on row blocks of them × all columns, weights reordered once into the layout it
// picks, bf16 activations converted from fp32 in the timed loop or not, fp32 sums and output; against the same
// primitive in fp32. Each configuration runs once per round, in turn, best round kept, so both share the
// machine's state. Then the instruction ceilings: independent `vdpbf16ps` and `vfmadd231ps` chains.
// Built and run by Scripts/bench_bf16_matmul.sh; figures in BENCHMARKS.md ("bf16").
#include <oneapi/dnnl/dnnl.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void omp_set_num_threads(int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)
static dnnl_engine_t engine;
static dnnl_stream_t stream;

// fp32 → bf16, round to nearest even: 32 values per `vcvtne2ps2bf16`.
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
static void to_bf16(const float *x, uint16_t *y, long n) {
    long i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512(y + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
    for (; i < n; i++) { uint32_t u; memcpy(&u, x + i, 4); y[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
}

// y (m, n) = x (m, k) · Wᵀ, W (n, k) as capfilt's linear layers store it: oneDNN's weights are W viewed as
// (k, n) with strides (1, k).
typedef struct { dnnl_primitive_t p; dnnl_memory_desc_t a, b, c, s; void *scratch; const char *impl; } matmul;

// `weights`: NULL lets oneDNN pick the layout (format `any`); else the layout another primitive picked, so
// row blocks of one product share one packed copy of W.
static matmul make(int m, int n, int k, dnnl_data_type_t src, dnnl_data_type_t wei, const dnnl_memory_desc_t *weights) {
    matmul r; memset(&r, 0, sizeof r);
    dnnl_dims_t ad = {m, k}, as = {k, 1}, bd = {k, n}, cd = {m, n}, cs = {n, 1};
    CHECK(dnnl_memory_desc_init_by_strides(&r.a, 2, ad, src, as));
    if (weights) r.b = *weights; else CHECK(dnnl_memory_desc_init_by_tag(&r.b, 2, bd, wei, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&r.c, 2, cd, dnnl_f32, cs));
    dnnl_matmul_desc_t d; CHECK(dnnl_matmul_desc_init(&d, &r.a, &r.b, NULL, &r.c));
    dnnl_primitive_attr_t attr; CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL) != dnnl_success) { r.impl = "unsupported"; return r; }
    r.b = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    r.s = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    r.scratch = aligned_alloc(64, dnnl_memory_desc_get_size(&r.s) + 64);
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &r.impl);
    CHECK(dnnl_primitive_create(&r.p, pd));
    return r;
}

static void run(const matmul *r, const void *a, const void *b, float *c) {
    dnnl_memory_t ma, mb, mc, ms;
    CHECK(dnnl_memory_create(&ma, &r->a, engine, (void *)a)); CHECK(dnnl_memory_create(&mb, &r->b, engine, (void *)b));
    CHECK(dnnl_memory_create(&mc, &r->c, engine, c)); CHECK(dnnl_memory_create(&ms, &r->s, engine, r->scratch));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
    CHECK(dnnl_primitive_execute(r->p, stream, 4, args));
    dnnl_memory_destroy(ma); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc); dnnl_memory_destroy(ms);
}

// W (n, k) of `type`, reordered once into the primitive's layout, as a model would at load.
static void *pack(const matmul *r, const void *w, dnnl_data_type_t type, int n, int k) {
    dnnl_dims_t bd = {k, n}, bs = {1, k};
    dnnl_memory_desc_t plain; CHECK(dnnl_memory_desc_init_by_strides(&plain, 2, bd, type, bs));
    void *out = aligned_alloc(64, dnnl_memory_desc_get_size(&r->b) + 64);
    dnnl_primitive_desc_t pd; CHECK(dnnl_reorder_primitive_desc_create(&pd, &plain, engine, &r->b, engine, NULL));
    dnnl_primitive_t reorder; CHECK(dnnl_primitive_create(&reorder, pd));
    dnnl_memory_t from, to;
    CHECK(dnnl_memory_create(&from, &plain, engine, (void *)w)); CHECK(dnnl_memory_create(&to, &r->b, engine, out));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, args));
    return out;
}

// One configuration: the fp32 primitive on the whole product, or bf16 in row blocks of `rows` (0: whole),
// the last block of m % rows rows its own primitive on the same packed weights.
typedef struct { int rows; int convert; matmul full, rest; void *w; double best; } config;

static void run_config(config *g, int m, int k, const float *a, uint16_t *ah, float *c, int n) {
    int rows = g->rows ? g->rows : m, rest = m % rows;
    for (int r = 0; r + rows <= m; r += rows) {
        if (g->convert) to_bf16(a + (long)r * k, ah + (long)r * k, (long)rows * k);
        run(&g->full, ah + (long)r * k, g->w, c + (long)r * n);
    }
    if (rest) {
        if (g->convert) to_bf16(a + (long)(m - rest) * k, ah + (long)(m - rest) * k, (long)rest * k);
        run(&g->rest, ah + (long)(m - rest) * k, g->w, c + (long)(m - rest) * n);
    }
}

#define CHAINS 12
// `chains` independent accumulators of each instruction, distinct starting values so the compiler keeps them.
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
static double ceiling_bf16(long iterations) {
    __m512 acc[CHAINS]; for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);
    double start = now();
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_dpbf16_ps(acc[j], x, x);
        __asm__ volatile("" : "+v"(x));
    }
    double seconds = now() - start;
    float sink[16]; __m512 t = acc[0]; for (int j = 1; j < CHAINS; j++) t = _mm512_add_ps(t, acc[j]);
    _mm512_storeu_ps(sink, t); if (sink[0] == 0.5f) puts("");
    return iterations * (double)CHAINS * 64 / seconds / 1e9;  // 32 bf16 pairs, a multiply and an add each
}
__attribute__((target("avx512f")))
static double ceiling_fp32(long iterations) {
    __m512 acc[CHAINS]; for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
    __m512 x = _mm512_set1_ps(1e-3f);
    double start = now();
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(x, x, acc[j]);
        __asm__ volatile("" : "+v"(x));
    }
    double seconds = now() - start;
    float sink[16]; __m512 t = acc[0]; for (int j = 1; j < CHAINS; j++) t = _mm512_add_ps(t, acc[j]);
    _mm512_storeu_ps(sink, t); if (sink[0] == 0.5f) puts("");
    return iterations * (double)CHAINS * 32 / seconds / 1e9;  // 16 fp32 lanes, a multiply and an add each
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s threads [m n k]...\n", argv[0]); return 2; }
    int threads = atoi(argv[1]);
    omp_set_num_threads(threads);
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    printf("# oneDNN matmul on %d thread(s), G(FL)OP/s of the whole product, best round\n", threads);
    for (int i = 2; i + 2 < argc; i += 3) {
        int m = atoi(argv[i]), n = atoi(argv[i + 1]), k = atoi(argv[i + 2]);
        float *a = malloc(4L * m * k), *w = malloc(4L * n * k), *c = malloc(4L * m * n);
        uint16_t *ah = malloc(2L * m * k), *wh = malloc(2L * n * k);
        srand(1);
        for (long x = 0; x < (long)m * k; x++) a[x] = rand() / (float)RAND_MAX - 0.5f;
        for (long x = 0; x < (long)n * k; x++) w[x] = rand() / (float)RAND_MAX - 0.5f;
        to_bf16(w, wh, (long)n * k);
        to_bf16(a, ah, (long)m * k);
        matmul mixed = make(m, n, k, dnnl_f32, dnnl_bf16, NULL);
        matmul f32 = make(m, n, k, dnnl_f32, dnnl_f32, NULL);
        void *wf = pack(&f32, w, dnnl_f32, n, k);
        int blocks[] = {0, 64, 128, 256, 512};
        config g[11]; int count = 0;
        for (int q = 0; q < 5; q++) {
            if (blocks[q] >= m) continue;
            for (int convert = 0; convert < 2; convert++) {
                config *x = &g[count++]; memset(x, 0, sizeof *x);
                x->rows = blocks[q]; x->convert = convert; x->best = 1e30;
                int rows = x->rows ? x->rows : m;
                x->full = make(rows, n, k, dnnl_bf16, dnnl_bf16, NULL);
                if (m % rows) x->rest = make(m % rows, n, k, dnnl_bf16, dnnl_bf16, &x->full.b);
                x->w = pack(&x->full, wh, dnnl_bf16, n, k);
            }
        }
        double flops = 2.0 * m * n * k, best_f32 = 1e30, best_convert = 1e30;
        int rounds = flops > 1e10 ? 4 : 10;
        for (int r = 0; r <= rounds; r++) {  // round 0 warms every kernel up and is not counted
            double s = now(); run(&f32, a, wf, c); double e = now() - s; if (r && e < best_f32) best_f32 = e;
            s = now(); to_bf16(a, ah, (long)m * k); e = now() - s; if (r && e < best_convert) best_convert = e;
            for (int q = 0; q < count; q++) {
                s = now(); run_config(&g[q], m, k, a, ah, c, n); e = now() - s; if (r && e < g[q].best) g[q].best = e;
            }
        }
        printf("%d×%d×%d: fp32 %s %.0f; converting x to bf16 %.2f ms (%.1f GB/s of fp32); f32 x with bf16 W: %s\n",
               m, n, k, f32.impl, flops / best_f32 / 1e9, best_convert * 1e3, 4.0 * m * k / best_convert / 1e9, mixed.impl);
        for (int q = 0; q < count; q += 2) {
            char rows[32];
            if (g[q].rows) snprintf(rows, sizeof rows, "%d-row blocks%s", g[q].rows, m % g[q].rows ? " + rest" : "");
            else snprintf(rows, sizeof rows, "whole");
            printf("   bf16 %-20s %s %.0f (%.2fx fp32), with the conversion %.0f (%.2fx)\n", rows, g[q].full.impl,
                   flops / g[q].best / 1e9, best_f32 / g[q].best, flops / g[q + 1].best / 1e9, best_f32 / g[q + 1].best);
        }
        fflush(stdout);
    }
    double bf = 0, fp = 0;
    for (int r = 0; r < 3; r++) { double x = ceiling_bf16(50000000), y = ceiling_fp32(50000000); if (x > bf) bf = x; if (y > fp) fp = y; }
    printf("# instruction ceilings, this thread, %d independent chains: vdpbf16ps %.0f, vfmadd231ps %.0f G(FL)OP/s\n", CHAINS, bf, fp);
    return 0;
}
