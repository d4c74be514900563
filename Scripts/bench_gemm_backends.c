// The GEMM libraries capfilt can use, on the pieces capfilt cuts its products into (BLAS.tiling), one thread:
// OpenBLAS sgemm, oneDNN sgemm, oneDNN bf16 matmul (weights packed once into the layout it picks) and oneDNN
// s8s8s32. The figures behind BLAS.backend and behind the precision modes (BENCHMARKS.md, "GEMM backends").
// Built and run by Scripts/bench_gemm_backends.sh.
#include <oneapi/dnnl/dnnl.h>
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void omp_set_num_threads(int);
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)
static dnnl_engine_t engine;
static dnnl_stream_t stream;

// y (m, n; ld ldc) = x (m, k) · Wᵀ with W (n, k) as capfilt's linear layers; pieces rb × cb, full pieces only.
typedef struct { int m, n, k, rb, cb; } shape;

static double best_of(int reps, void (*body)(void *), void *ctx) {
    double best = 1e30;
    body(ctx);
    for (int r = 0; r < reps; r++) { double s = now(); body(ctx); double e = now() - s; if (e < best) best = e; }
    return best;
}

typedef struct { shape s; float *a, *b, *c; uint16_t *ah, *bh; int8_t *a8, *b8; int32_t *c32;
                 dnnl_primitive_t bf16; dnnl_memory_desc_t amd, bmd, cmd, smd; char *packed; size_t packed_size; void *scratch; } job;

static void run_openblas(void *p) { job *j = p; shape s = j->s;
    for (int r = 0; r + s.rb <= s.m; r += s.rb) for (int c = 0; c + s.cb <= s.n; c += s.cb)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.rb, s.cb, s.k, 1, j->a + (long)r * s.k, s.k,
                    j->b + (long)c * s.k, s.k, 0, j->c + (long)r * s.n + c, s.n); }
static void run_dnnl_sgemm(void *p) { job *j = p; shape s = j->s;
    for (int r = 0; r + s.rb <= s.m; r += s.rb) for (int c = 0; c + s.cb <= s.n; c += s.cb)
        dnnl_sgemm('N', 'T', s.rb, s.cb, s.k, 1, j->a + (long)r * s.k, s.k, j->b + (long)c * s.k, s.k, 0,
                   j->c + (long)r * s.n + c, s.n); }
static void run_s8(void *p) { job *j = p; shape s = j->s; int32_t zero = 0;
    for (int r = 0; r + s.rb <= s.m; r += s.rb) for (int c = 0; c + s.cb <= s.n; c += s.cb)
        dnnl_gemm_s8s8s32('N', 'T', 'F', s.rb, s.cb, s.k, 1, j->a8 + (long)r * s.k, s.k, 0, j->b8 + (long)c * s.k, s.k, 0, 0,
                          j->c32 + (long)r * s.n + c, s.n, &zero); }
static void run_bf16(void *p) { job *j = p; shape s = j->s;
    for (int r = 0; r + s.rb <= s.m; r += s.rb) for (int c = 0, q = 0; c + s.cb <= s.n; c += s.cb, q++) {
        dnnl_memory_t ma, mb, mc, ms;
        CHECK(dnnl_memory_create(&ma, &j->amd, engine, j->ah + (long)r * s.k));
        CHECK(dnnl_memory_create(&mb, &j->bmd, engine, j->packed + j->packed_size * q));
        CHECK(dnnl_memory_create(&mc, &j->cmd, engine, j->c + (long)r * s.n + c));
        CHECK(dnnl_memory_create(&ms, &j->smd, engine, j->scratch));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        CHECK(dnnl_primitive_execute(j->bf16, stream, 4, args));
        dnnl_memory_destroy(ma); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc); dnnl_memory_destroy(ms);
    } }

static void prepare_bf16(job *j) {
    shape s = j->s;
    dnnl_dims_t ad = {s.rb, s.k}, as = {s.k, 1}, bd = {s.k, s.cb}, bs = {1, s.k}, cd = {s.rb, s.cb}, cs = {s.n, 1};
    CHECK(dnnl_memory_desc_init_by_strides(&j->amd, 2, ad, dnnl_bf16, as));
    CHECK(dnnl_memory_desc_init_by_tag(&j->bmd, 2, bd, dnnl_bf16, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&j->cmd, 2, cd, dnnl_f32, cs));
    dnnl_matmul_desc_t d; CHECK(dnnl_matmul_desc_init(&d, &j->amd, &j->bmd, NULL, &j->cmd));
    dnnl_primitive_attr_t attr; CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t pd; CHECK(dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL));
    j->bmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    j->smd = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    j->scratch = malloc(dnnl_memory_desc_get_size(&j->smd) + 64);
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    fprintf(stderr, "  bf16 matmul %dx%dx%d: %s\n", s.rb, s.cb, s.k, impl);
    CHECK(dnnl_primitive_create(&j->bf16, pd));
    // Each column block of W packed once, as a model would at load.
    j->packed_size = dnnl_memory_desc_get_size(&j->bmd);
    j->packed = malloc(j->packed_size * (s.n / s.cb + 1));
    for (int c = 0, q = 0; c + s.cb <= s.n; c += s.cb, q++) {
        dnnl_memory_desc_t plain; CHECK(dnnl_memory_desc_init_by_strides(&plain, 2, bd, dnnl_bf16, bs));
        dnnl_primitive_desc_t rpd; CHECK(dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &j->bmd, engine, NULL));
        dnnl_primitive_t reorder; CHECK(dnnl_primitive_create(&reorder, rpd));
        dnnl_memory_t from, to;
        CHECK(dnnl_memory_create(&from, &plain, engine, j->bh + (long)c * s.k));
        CHECK(dnnl_memory_create(&to, &j->bmd, engine, j->packed + j->packed_size * q));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        CHECK(dnnl_primitive_execute(reorder, stream, 2, args));
    }
}

int main(int argc, char **argv) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    printf("# one thread; OpenBLAS core %s; times of the full pieces, best of the repeats\n", openblas_get_corename());
    printf("%-22s %-9s %10s %10s %10s %10s\n", "product m×n×k", "pieces", "openblas", "dnnl f32", "dnnl bf16", "dnnl s8");
    for (int i = 1; i + 4 < argc; i += 5) {
        job j; memset(&j, 0, sizeof j);
        shape s = {atoi(argv[i]), atoi(argv[i + 1]), atoi(argv[i + 2]), atoi(argv[i + 3]), atoi(argv[i + 4])};
        j.s = s;
        long ak = (long)s.m * s.k, bk = (long)s.n * s.k, mn = (long)s.m * s.n;
        j.a = malloc(4 * ak); j.b = malloc(4 * bk); j.c = malloc(4 * mn); j.c32 = malloc(4 * mn);
        j.ah = malloc(2 * ak); j.bh = malloc(2 * bk); j.a8 = malloc(ak); j.b8 = malloc(bk);
        srand(1);
        for (long x = 0; x < ak; x++) { j.a[x] = rand() / (float)RAND_MAX - 0.5f; uint32_t u; memcpy(&u, &j.a[x], 4); j.ah[x] = u >> 16; j.a8[x] = rand() % 255 - 127; }
        for (long x = 0; x < bk; x++) { j.b[x] = rand() / (float)RAND_MAX - 0.5f; uint32_t u; memcpy(&u, &j.b[x], 4); j.bh[x] = u >> 16; j.b8[x] = rand() % 255 - 127; }
        prepare_bf16(&j);
        double flops = 2.0 * (s.m / s.rb) * s.rb * (double)(s.n / s.cb) * s.cb * s.k;
        int reps = flops > 1e10 ? 2 : flops > 1e9 ? 5 : flops > 1e7 ? 20 : 200;
        double t[4] = {best_of(reps, run_openblas, &j), best_of(reps, run_dnnl_sgemm, &j), best_of(reps, run_bf16, &j), best_of(reps, run_s8, &j)};
        char product[32], pieces[16];
        snprintf(product, sizeof product, "%d×%d×%d", s.m, s.n, s.k);
        snprintf(pieces, sizeof pieces, "%d×%d", s.rb, s.cb);
        printf("%-22s %-9s", product, pieces);
        for (int b = 0; b < 4; b++) printf(" %7.0f G/s", flops / t[b] / 1e9);
        printf("   (oneDNN f32 %.2fx, bf16 %.2fx, s8 %.2fx OpenBLAS)\n", t[0] / t[1], t[0] / t[2], t[0] / t[3]);
        fflush(stdout);
    }
    return 0;
}
