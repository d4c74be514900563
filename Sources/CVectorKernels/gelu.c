// GELU with VectorMath.erf's polynomials, written as plain loops over lanes with selects, which clang
// vectorises: once for baseline x86-64 and once for AVX-512 (16 lanes in one register).
#include "CVectorKernels.h"
#include "kernels_math.h"

#pragma clang fp contract(off)

#define GELU_BODY                                                   \
    for (size_t i = 0; i < count; i++) {                            \
        float v = x[i];                                             \
        x[i] = v * 0.5f * (1.0f + erf_lane(v * 0.70710678118654752440f)); \
    }

void capfilt_gelu_baseline(float *x, size_t count) { GELU_BODY }

__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
static void gelu_avx512(float *x, size_t count) { GELU_BODY }

int capfilt_vector_kernels_use_avx512(void) {
    static int cached = -1;
    if (cached < 0) { __builtin_cpu_init(); cached = __builtin_cpu_supports("avx512f") ? 1 : 0; }
    return cached;
}

void capfilt_gelu(float *x, size_t count) {
    if (capfilt_vector_kernels_use_avx512()) gelu_avx512(x, count); else capfilt_gelu_baseline(x, count);
}
