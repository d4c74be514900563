// Elementwise kernels of CapfiltTensor in C, so that they can run with AVX-512 where the CPU has it: Swift has
// no per-function target attribute, and the package is built for baseline x86-64 (SSE2), where one 16-lane
// vector op is four instructions. Each kernel has a baseline and an AVX-512 build of the same C code, chosen
// once at run time; both compute every lane with the same IEEE operations in the same order (no FMA
// contraction), so the results are bit-identical to each other and to VectorMath's Swift versions.
#ifndef CAPFILT_VECTOR_KERNELS_H
#define CAPFILT_VECTOR_KERNELS_H

#include <stddef.h>

/// `x = x · 0.5 · (1 + erf(x / √2))` in place (exact-erf GELU), as `Ops.geluRow`.
void capfilt_gelu(float *x, size_t count);

/// The baseline build of `capfilt_gelu`, whatever the CPU (for tests comparing the two).
void capfilt_gelu_baseline(float *x, size_t count);

/// Softmax of `n` floats in place, as `Ops.softmaxRow` (entries of -inf get exactly 0).
void capfilt_softmax_row(float *row, size_t n);
/// The baseline build of `capfilt_softmax_row`.
void capfilt_softmax_row_baseline(float *row, size_t n);

/// True when the AVX-512 builds run (AVX-512 F on this CPU).
int capfilt_vector_kernels_use_avx512(void);

#endif
