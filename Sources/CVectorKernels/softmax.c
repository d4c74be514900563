// Softmax of one row with Ops.softmaxRow's arithmetic: 16 lane-wise maxima and sums (j mod 16), the lanes then
// combined in order, e^(x − max) by VectorMath.expNonPositive, one reciprocal. Built twice, as gelu.c.
#include "CVectorKernels.h"
#include "kernels_math.h"
#include <math.h>

#pragma clang fp contract(off)

#define SOFTMAX_BODY                                                                   \
    float peak[16], sum[16];                                                           \
    for (int l = 0; l < 16; l++) { peak[l] = -INFINITY; sum[l] = 0.0f; }               \
    size_t j = 0;                                                                      \
    for (; j + 16 <= n; j += 16)                                                       \
        for (int l = 0; l < 16; l++) { float v = row[j + l]; peak[l] = v > peak[l] ? v : peak[l]; } \
    for (int l = 0; j + l < n; l++) { float v = row[j + l]; peak[l] = v > peak[l] ? v : peak[l]; } \
    float top = peak[0];                                                               \
    for (int l = 1; l < 16; l++) top = peak[l] > top ? peak[l] : top;                  \
    for (j = 0; j + 16 <= n; j += 16)                                                  \
        for (int l = 0; l < 16; l++) {                                                 \
            float e = exp_nonpositive(row[j + l] - top); row[j + l] = e; sum[l] = sum[l] + e;      \
        }                                                                              \
    for (int l = 0; j + l < n; l++) {                                                  \
        float e = exp_nonpositive(row[j + l] - top); row[j + l] = e; sum[l] = sum[l] + e;          \
    }                                                                                  \
    float total = -0.0f;                                                               \
    for (int l = 0; l < 16; l++) total = total + sum[l];                               \
    float inverse = 1.0f / total;                                                      \
    for (j = 0; j < n; j++) row[j] = row[j] * inverse;

void capfilt_softmax_row_baseline(float *row, size_t n) { SOFTMAX_BODY }

__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
static void softmax_row_avx512(float *row, size_t n) { SOFTMAX_BODY }

void capfilt_softmax_row(float *row, size_t n) {
    if (capfilt_vector_kernels_use_avx512()) softmax_row_avx512(row, n); else capfilt_softmax_row_baseline(row, n);
}
