// Shared helpers for the codec files: error reporting and Pillow's pixel arithmetic.
#ifndef CIC_INTERNAL_H
#define CIC_INTERNAL_H

#include "CImageCodecs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/// Writes a status message into `info` and returns `status`, so callers can `return cic_fail(...)`.
int cic_fail(cic_info *info, int status, const char *format, ...) __attribute__((format(printf, 3, 4)));

int cic_jpeg_header(const uint8_t *data, size_t size, cic_info *info);
int cic_png_header(const uint8_t *data, size_t size, cic_info *info);
int cic_webp_header(const uint8_t *data, size_t size, cic_info *info);

int cic_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info);
int cic_png_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info);
int cic_webp_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info);

/// Pillow's SHIFTFORDIV255 (ImagingUtils.h): a rounded division by 255 for the ranges used below.
static inline uint32_t cic_shift_div255(uint32_t a) { return ((a >> 8) + a) >> 8; }

/// Pillow's ImagingAlphaComposite (AlphaComposite.c) of one RGBA pixel over opaque white, keeping RGB.
/// transformers' convert_to_rgb composites every image that has alpha or a tRNS colour this way.
static inline void cic_composite_on_white(uint8_t *out, uint32_t r, uint32_t g, uint32_t b, uint32_t a) {
    if (a == 0) {
        out[0] = out[1] = out[2] = 255;
        return;
    }
    if (a == 255) {
        // The formula below returns the source unchanged for a = 255 (checked for all 256 values).
        out[0] = (uint8_t)r;
        out[1] = (uint8_t)g;
        out[2] = (uint8_t)b;
        return;
    }
    // Same integer steps as Pillow with dst = (255, 255, 255, 255) and 7 extra bits of precision.
    const uint32_t dst_a = 255, dst_c = 255;
    uint32_t blend = dst_a * (255 - a);
    uint32_t outa255 = a * 255 + blend;
    uint32_t coef1 = a * 255 * 255 * (1u << 7) / outa255;
    uint32_t coef2 = 255 * (1u << 7) - coef1;
    out[0] = (uint8_t)(cic_shift_div255(r * coef1 + dst_c * coef2 + (0x80u << 7)) >> 7);
    out[1] = (uint8_t)(cic_shift_div255(g * coef1 + dst_c * coef2 + (0x80u << 7)) >> 7);
    out[2] = (uint8_t)(cic_shift_div255(b * coef1 + dst_c * coef2 + (0x80u << 7)) >> 7);
}

/// Composites a row of non-premultiplied RGBA pixels onto white, writing RGB.
static inline void cic_composite_row(uint8_t *rgb, const uint8_t *rgba, int width) {
    for (int x = 0; x < width; x++, rgba += 4, rgb += 3) {
        cic_composite_on_white(rgb, rgba[0], rgba[1], rgba[2], rgba[3]);
    }
}

#endif
