// Format sniffing and dispatch for the codec layer.
#include "internal.h"

int cic_fail(cic_info *info, int status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(info->message, sizeof(info->message), format, args);
    va_end(args);
    return status;
}

int cic_sniff(const uint8_t *data, size_t size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (data == NULL) {
        return CIC_FORMAT_UNKNOWN;
    }
    // Pillow's JpegImagePlugin._accept: FF D8 FF.
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
        return CIC_FORMAT_JPEG;
    }
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) {
        return CIC_FORMAT_PNG;
    }
    // Pillow's WebPImagePlugin._accept: RIFF....WEBP followed by one of the three bitstream chunks.
    if (size >= 16 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0 &&
        (memcmp(data + 12, "VP8 ", 4) == 0 || memcmp(data + 12, "VP8L", 4) == 0 ||
         memcmp(data + 12, "VP8X", 4) == 0)) {
        return CIC_FORMAT_WEBP;
    }
    return CIC_FORMAT_UNKNOWN;
}

int cic_read_header(const uint8_t *data, size_t size, cic_info *info) {
    memset(info, 0, sizeof(*info));
    info->format = cic_sniff(data, size);
    switch (info->format) {
        case CIC_FORMAT_JPEG:
            return cic_jpeg_header(data, size, info);
        case CIC_FORMAT_PNG:
            return cic_png_header(data, size, info);
        case CIC_FORMAT_WEBP:
            return cic_webp_header(data, size, info);
        default:
            return cic_fail(info, CIC_UNKNOWN_FORMAT, "not a JPEG, PNG or WebP file");
    }
}

int cic_decode_rgb(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info) {
    memset(info, 0, sizeof(*info));
    info->format = cic_sniff(data, size);
    info->width = width;
    info->height = height;
    if (rgb == NULL || width <= 0 || height <= 0) {
        return cic_fail(info, CIC_CORRUPT, "invalid output buffer or size %dx%d", width, height);
    }
    switch (info->format) {
        case CIC_FORMAT_JPEG:
            return cic_jpeg_decode(data, size, rgb, width, height, info);
        case CIC_FORMAT_PNG:
            return cic_png_decode(data, size, rgb, width, height, info);
        case CIC_FORMAT_WEBP:
            return cic_webp_decode(data, size, rgb, width, height, info);
        default:
            return cic_fail(info, CIC_UNKNOWN_FORMAT, "not a JPEG, PNG or WebP file");
    }
}
