// The lane-by-lane math both kernel files inline into their baseline and AVX-512 builds: VectorMath's
// expNonPositive and erf, the same operations in the same order.
#ifndef CAPFILT_KERNELS_MATH_H
#define CAPFILT_KERNELS_MATH_H

#include <stdint.h>
#include <string.h>

// No contraction into FMA: the baseline build has none, and both builds must round alike.
#pragma clang fp contract(off)

static inline float bits_to_float(int32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline int32_t float_to_bits(float f) { int32_t b; memcpy(&b, &f, 4); return b; }

// VectorMath.expNonPositive, lane by lane.
static inline float exp_nonpositive(float x) {
    int underflow = x < -87.33654f;
    float xc = underflow ? -87.33654f : x;
    float shifted = xc * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = float_to_bits(shifted) - 0x4B400000;
    float scale = bits_to_float((int32_t)((uint32_t)(bits + 127) << 23));
    return underflow ? 0.0f : p * scale;
}

// VectorMath.erf, lane by lane.
static inline float erf_lane(float x) {
    float a = x < 0 ? -x : x;
    float u = a * a;
    float p = -9.67359392234357e-06f;
    p = p * u + 0.00011268258094787598f;
    p = p * u + -0.0008484397549182177f;
    p = p * u + 0.005221053492277861f;
    p = p * u + -0.026865437626838684f;
    p = p * u + 0.11283782869577408f;
    p = p * u + -0.37612637877464294f;
    p = p * u + 0.12837916612625122f;
    float small = a + a * p;
    float s = ((a > 4 ? 4.0f : a) - 2.5f) * (float)(1.0 / 1.5);
    float q = 1.3819321793562267e-05f;
    q = q * s + -3.692937389132567e-05f;
    q = q * s + 5.494660581462085e-05f;
    q = q * s + -0.00014394696336239576f;
    q = q * s + 0.0004145087441429496f;
    q = q * s + -0.0010171192698180676f;
    q = q * s + 0.002401701407507062f;
    q = q * s + -0.00556733226403594f;
    q = q * s + 0.012489703483879566f;
    q = q * s + -0.027005724608898163f;
    q = q * s + 0.05611047148704529f;
    q = q * s + -0.11152100563049316f;
    q = q * s + 0.21080636978149414f;
    float large = 1.0f - exp_nonpositive(-u) * q;
    float magnitude = a >= 1 ? large : small;
    return x < 0 ? -magnitude : magnitude;
}

#endif
