// WebP through libwebp, matching Pillow 13's WebPAnimDecoder path: RGBA (non-premultiplied) when the
// file declares alpha, RGB otherwise; an animation yields its first frame drawn on a transparent canvas.
// libwebpdemux is not linked, so the few RIFF chunks needed for animations are parsed here.
#include "internal.h"

#include <stdlib.h>

#include <webp/decode.h>
#include <webp/encode.h>

static uint32_t le24(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16); }
static uint32_t le32(const uint8_t *p) { return le24(p) | ((uint32_t)p[3] << 24); }

static int status_from_vp8(VP8StatusCode code) {
    switch (code) {
        case VP8_STATUS_OK: return CIC_OK;
        case VP8_STATUS_NOT_ENOUGH_DATA: return CIC_TRUNCATED;
        case VP8_STATUS_UNSUPPORTED_FEATURE: return CIC_UNSUPPORTED;
        case VP8_STATUS_OUT_OF_MEMORY: return CIC_NO_MEMORY;
        default: return CIC_CORRUPT;
    }
}

static const char *describe_vp8(VP8StatusCode code) {
    switch (code) {
        case VP8_STATUS_NOT_ENOUGH_DATA: return "WebP data ends early";
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "WebP uses a feature libwebp does not support";
        case VP8_STATUS_OUT_OF_MEMORY: return "out of memory decoding WebP";
        case VP8_STATUS_INVALID_PARAM: return "invalid WebP parameters";
        case VP8_STATUS_SUSPENDED: return "WebP decoding suspended";
        case VP8_STATUS_USER_ABORT: return "WebP decoding aborted";
        default: return "WebP bitstream error";
    }
}

int cic_webp_header(const uint8_t *data, size_t size, cic_info *info) {
    // Pillow's _get_size: the size straight from the first chunk, so a VP8X canvas is known even when
    // the rest of the file is missing (or never sent, as in a decompression bomb).
    const uint8_t *d = data;
    int width = 0, height = 0, found = 0;
    if (size >= 30 && memcmp(d + 12, "VP8X", 4) == 0) {
        width = 1 + (int)le24(d + 24);
        height = 1 + (int)le24(d + 27);
        found = 1;
    } else if (size >= 30 && memcmp(d + 12, "VP8 ", 4) == 0 && d[23] == 0x9d && d[24] == 0x01 && d[25] == 0x2a) {
        width = (int)((d[26] | (d[27] << 8)) & 0x3fff);
        height = (int)((d[28] | (d[29] << 8)) & 0x3fff);
        found = 1;
    } else if (size >= 25 && memcmp(d + 12, "VP8L", 4) == 0 && d[20] == 0x2f) {
        uint32_t bits = le32(d + 21);
        width = (int)(bits & 0x3fff) + 1;
        height = (int)((bits >> 14) & 0x3fff) + 1;
        found = 1;
    }
    if (found) {
        if (width == 0 || height == 0) {
            return cic_fail(info, CIC_CORRUPT, "WebP header gives an empty size %dx%d", width, height);
        }
        info->width = width;
        info->height = height;
        return CIC_OK;
    }
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(data, size, &features);
    if (code != VP8_STATUS_OK) {
        return cic_fail(info, status_from_vp8(code), "%s (reading the header)", describe_vp8(code));
    }
    info->width = features.width;
    info->height = features.height;
    return CIC_OK;
}

/// Decodes a still image or one frame's bitstream into `rgba` (stride in bytes), as RGBA.
static int decode_rgba(const uint8_t *data, size_t size, uint8_t *rgba, int stride, int rows, cic_info *info) {
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
        return cic_fail(info, CIC_UNSUPPORTED, "libwebp version mismatch");
    }
    // Same options as WebPAnimDecoder's defaults: MODE_RGBA, fancy upsampling, no dithering, one thread.
    config.output.colorspace = MODE_RGBA;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = rgba;
    config.output.u.RGBA.stride = stride;
    config.output.u.RGBA.size = (size_t)stride * (size_t)rows;
    VP8StatusCode code = WebPDecode(data, size, &config);
    WebPFreeDecBuffer(&config.output);
    if (code != VP8_STATUS_OK) {
        return cic_fail(info, status_from_vp8(code), "%s", describe_vp8(code));
    }
    return CIC_OK;
}

/// Finds the first ANMF frame of an animated file and decodes it onto a zeroed canvas, as
/// WebPAnimDecoderGetNext does for frame 1 (a key frame: no blending, no disposal).
static int decode_first_frame(const uint8_t *d, size_t n, uint8_t *canvas, int cw, int ch, cic_info *info) {
    uint32_t riff = le32(d + 4);
    if ((size_t)riff + 8 > n) {
        return cic_fail(info, CIC_TRUNCATED, "WebP data ends early (RIFF size %u, %zu bytes present)", riff, n);
    }
    n = (size_t)riff + 8; // the demuxer ignores bytes past the RIFF payload
    const uint8_t *frame = NULL;
    size_t frame_size = 0;
    size_t pos = 12;
    while (n - pos >= 8) {
        uint32_t length = le32(d + pos + 4);
        if ((size_t)length > n - pos - 8) {
            return cic_fail(info, CIC_TRUNCATED, "WebP data ends inside the %.4s chunk", (const char *)(d + pos));
        }
        const uint8_t *payload = d + pos + 8;
        if (memcmp(d + pos, "ANMF", 4) == 0) {
            if (length < 16) {
                return cic_fail(info, CIC_CORRUPT, "WebP animation frame header is cut short");
            }
            uint32_t x = 2 * le24(payload), y = 2 * le24(payload + 3);
            uint32_t w = 1 + le24(payload + 6), h = 1 + le24(payload + 9);
            // The demuxer rejects the whole file if any frame leaves the canvas.
            if (x + w > (uint32_t)cw || y + h > (uint32_t)ch) {
                return cic_fail(info, CIC_CORRUPT, "WebP animation frame %ux%u at (%u,%u) leaves the %dx%d canvas",
                                w, h, x, y, cw, ch);
            }
            if (frame == NULL) {
                frame = payload;
                frame_size = length;
            }
        }
        pos += 8 + (size_t)length + (length & 1);
    }
    if (frame == NULL) {
        return cic_fail(info, CIC_CORRUPT, "animated WebP has no frames");
    }
    uint32_t x = 2 * le24(frame), y = 2 * le24(frame + 3);
    uint32_t w = 1 + le24(frame + 6), h = 1 + le24(frame + 9);
    // The frame's bitstream: an optional ALPH chunk followed by VP8 or VP8L, after the 16-byte frame header.
    const uint8_t *start = NULL;
    const uint8_t *end = NULL;
    size_t sub = 16;
    while (frame_size - sub >= 8) {
        const uint8_t *chunk = frame + sub;
        uint32_t length = le32(chunk + 4);
        if ((size_t)length > frame_size - sub - 8) {
            return cic_fail(info, CIC_CORRUPT, "WebP animation frame chunk %.4s overruns its frame", (const char *)chunk);
        }
        if (memcmp(chunk, "ALPH", 4) == 0) {
            if (start == NULL) {
                start = chunk;
            }
        } else if (memcmp(chunk, "VP8 ", 4) == 0 || memcmp(chunk, "VP8L", 4) == 0) {
            if (start == NULL) {
                start = chunk;
            }
            end = chunk + 8 + length;
            break;
        }
        sub += 8 + (size_t)length + (length & 1);
    }
    if (start == NULL || end == NULL) {
        return cic_fail(info, CIC_CORRUPT, "WebP animation frame has no image bitstream");
    }
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(start, (size_t)(end - start), &features);
    if (code != VP8_STATUS_OK) {
        return cic_fail(info, status_from_vp8(code), "%s (first animation frame)", describe_vp8(code));
    }
    if ((uint32_t)features.width != w || (uint32_t)features.height != h) {
        return cic_fail(info, CIC_CORRUPT, "WebP animation frame is %dx%d but its header says %ux%u",
                        features.width, features.height, w, h);
    }
    uint8_t *origin = canvas + ((size_t)y * (size_t)cw + x) * 4;
    return decode_rgba(start, (size_t)(end - start), origin, cw * 4, (int)h, info);
}

int cic_webp_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info) {
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(data, size, &features);
    if (code != VP8_STATUS_OK) {
        return cic_fail(info, status_from_vp8(code), "%s (reading the header)", describe_vp8(code));
    }
    if (features.width != width || features.height != height) {
        return cic_fail(info, CIC_CORRUPT, "WebP decoder sees %dx%d but the header said %dx%d", features.width,
                        features.height, width, height);
    }
    size_t pixels = (size_t)width * (size_t)height;
    if (!features.has_animation && !features.has_alpha) {
        // Pillow's RGBX mode: decode straight into the caller's RGB buffer.
        WebPDecoderConfig config;
        if (!WebPInitDecoderConfig(&config)) {
            return cic_fail(info, CIC_UNSUPPORTED, "libwebp version mismatch");
        }
        config.output.colorspace = MODE_RGB;
        config.output.is_external_memory = 1;
        config.output.u.RGBA.rgba = rgb;
        config.output.u.RGBA.stride = width * 3;
        config.output.u.RGBA.size = pixels * 3;
        code = WebPDecode(data, size, &config);
        WebPFreeDecBuffer(&config.output);
        if (code != VP8_STATUS_OK) {
            return cic_fail(info, status_from_vp8(code), "%s", describe_vp8(code));
        }
        return CIC_OK;
    }
    // calloc: an animation's canvas starts transparent black outside the first frame.
    uint8_t *rgba = calloc(pixels, 4);
    if (rgba == NULL) {
        return cic_fail(info, CIC_NO_MEMORY, "out of memory for a %dx%d WebP canvas", width, height);
    }
    int status = features.has_animation ? decode_first_frame(data, size, rgba, width, height, info)
                                        : decode_rgba(data, size, rgba, width * 4, height, info);
    if (status == CIC_OK) {
        if (features.has_alpha) {
            for (int y = 0; y < height; y++) {
                cic_composite_row(rgb + (size_t)y * width * 3, rgba + (size_t)y * width * 4, width);
            }
        } else {
            for (size_t i = 0; i < pixels; i++) {
                rgb[3 * i] = rgba[4 * i];
                rgb[3 * i + 1] = rgba[4 * i + 1];
                rgb[3 * i + 2] = rgba[4 * i + 2];
            }
        }
    }
    free(rgba);
    return status;
}

int cic_webp_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *out_size,
                    cic_info *info) {
    uint8_t *buffer = NULL;
    size_t size = WebPEncodeRGB(rgb, width, height, width * 3, (float)quality, &buffer);
    if (size == 0 || buffer == NULL) {
        return cic_fail(info, CIC_NO_MEMORY, "WebP encoder failed for a %dx%d image", width, height);
    }
    // The caller frees with free(); libwebp's buffer must go back through WebPFree, so copy it.
    *out = malloc(size);
    if (*out == NULL) {
        WebPFree(buffer);
        return cic_fail(info, CIC_NO_MEMORY, "out of memory for a %zu-byte WebP", size);
    }
    memcpy(*out, buffer, size);
    WebPFree(buffer);
    *out_size = size;
    return CIC_OK;
}
