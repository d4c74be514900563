// PNG through libpng, converted the way Pillow 13 opens and converts each PNG mode.
// Pillow has its own PNG reader, so the chunk rules it applies before the image data (CRC checks, tRNS
// parsing) are re-done here in a pre-pass; libpng then only inflates, unfilters and de-interlaces.
#include "internal.h"

#include <setjmp.h>
#include <stdlib.h>

#include <png.h>

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/// CRC-32 (PNG / zlib polynomial), nibble-table form to keep the table tiny and constant.
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    static const uint32_t table[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
        0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return crc ^ 0xffffffffu;
}

int cic_png_header(const uint8_t *d, size_t n, cic_info *info) {
    if (n < 8 + 8 + 8) {
        return cic_fail(info, CIC_TRUNCATED, "PNG data ends inside the IHDR header");
    }
    if (memcmp(d + 12, "IHDR", 4) != 0) {
        return cic_fail(info, CIC_CORRUPT, "PNG does not start with an IHDR chunk");
    }
    uint32_t w = be32(d + 16), h = be32(d + 20);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu) {
        return cic_fail(info, CIC_CORRUPT, "PNG header gives an invalid size %ux%u", w, h);
    }
    info->width = (int)w;
    info->height = (int)h;
    return CIC_OK;
}

/// What the chunks before the first IDAT say, read the way Pillow's PngImagePlugin reads them.
typedef struct {
    int bit_depth;
    int color_type;
    int animated;           // an acTL chunk came before IDAT (APNG)
    const uint8_t *palette; // PLTE payload (RGB triples), or NULL
    size_t palette_length;
    const uint8_t *trns;    // last tRNS payload before IDAT, or NULL
    size_t trns_length;
} png_chunks;

static int is_chunk_letter(uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int walk_chunks(const uint8_t *d, size_t n, png_chunks *chunks, cic_info *info) {
    size_t pos = 8;
    int first = 1;
    memset(chunks, 0, sizeof(*chunks));
    for (;;) {
        if (n - pos < 8) {
            return cic_fail(info, CIC_TRUNCATED, "PNG data ends before the image data (IDAT chunk)");
        }
        uint32_t length = be32(d + pos);
        const uint8_t *type = d + pos + 4;
        if (!is_chunk_letter(type[0]) || !is_chunk_letter(type[1]) || !is_chunk_letter(type[2]) ||
            !is_chunk_letter(type[3])) {
            return cic_fail(info, CIC_CORRUPT, "broken PNG file: invalid chunk name at byte %zu", pos);
        }
        if (length > 0x7fffffffu) {
            return cic_fail(info, CIC_CORRUPT, "broken PNG file: chunk %.4s has length %u", (const char *)type,
                            length);
        }
        if (first && memcmp(type, "IHDR", 4) != 0) {
            return cic_fail(info, CIC_CORRUPT, "PNG does not start with an IHDR chunk");
        }
        if (memcmp(type, "IDAT", 4) == 0) {
            return CIC_OK; // Pillow stops reading chunks here; so do we.
        }
        if (memcmp(type, "IEND", 4) == 0) {
            return cic_fail(info, CIC_CORRUPT, "PNG has no image data (IEND before IDAT)");
        }
        if (n - pos - 8 < (size_t)length + 4) {
            return cic_fail(info, CIC_TRUNCATED, "PNG data ends inside the %.4s chunk", (const char *)type);
        }
        const uint8_t *payload = d + pos + 8;
        // Pillow verifies the CRC of every chunk before the image data and refuses the file on a mismatch.
        if (crc32_png(type, (size_t)length + 4) != be32(payload + length)) {
            return cic_fail(info, CIC_CORRUPT, "broken PNG file: bad CRC in the %.4s chunk", (const char *)type);
        }
        if (memcmp(type, "IHDR", 4) == 0) {
            if (length < 13) {
                return cic_fail(info, CIC_CORRUPT, "PNG IHDR chunk is cut short");
            }
            chunks->bit_depth = payload[8];
            chunks->color_type = payload[9];
        } else if (memcmp(type, "PLTE", 4) == 0) {
            chunks->palette = payload;
            chunks->palette_length = length;
        } else if (memcmp(type, "tRNS", 4) == 0) {
            chunks->trns = payload;
            chunks->trns_length = length;
        } else if (memcmp(type, "acTL", 4) == 0) {
            chunks->animated = 1;
        }
        pos += 12 + (size_t)length;
        first = 0;
    }
}

static int is_word_char(uint8_t c) {
    return is_chunk_letter(c) || (c >= '0' && c <= '9') || c == '_';
}

/// Pillow's PngImageFile.load_end: after the image data it reads every following chunk up to IEND and
/// fails ("Truncated File Read") if one is cut short, while stopping quietly at the end of the file, at
/// a malformed chunk name, or (APNG) at the next frame's fcTL. `pos` is where libpng stopped, the end
/// of the IDAT chunk holding the end of the image data.
static int check_trailing_chunks(const uint8_t *d, size_t n, size_t pos, int animated, cic_info *info) {
    while (pos <= n && n - pos >= 8) {
        uint32_t length = be32(d + pos);
        const uint8_t *type = d + pos + 4;
        if (!is_word_char(type[0]) || !is_word_char(type[1]) || !is_word_char(type[2]) ||
            !is_word_char(type[3]) || memcmp(type, "IEND", 4) == 0 ||
            (animated && memcmp(type, "fcTL", 4) == 0)) {
            return CIC_OK;
        }
        if ((size_t)length > n - pos - 8) {
            return cic_fail(info, CIC_TRUNCATED, "PNG chunk %.4s after the image data is cut short",
                            (const char *)type);
        }
        pos += 12 + (size_t)length; // a missing CRC at the very end is tolerated, as in Pillow
    }
    return CIC_OK;
}

/// How a decoded row becomes RGB: Pillow's mode plus its transparency information.
typedef struct {
    int bit_depth;
    int color_type;
    int has_trns;          // Pillow's info["transparency"] is set, so the image is composited on white
    uint8_t key[3];        // L / RGB transparent colour, as Pillow compares it (low byte of the tRNS value)
    uint8_t palette[256 * 3];
    uint8_t alpha[256];
} row_converter;

static int make_converter(const png_chunks *chunks, row_converter *conv, cic_info *info) {
    memset(conv, 0, sizeof(*conv));
    conv->bit_depth = chunks->bit_depth;
    conv->color_type = chunks->color_type;
    memset(conv->alpha, 255, sizeof(conv->alpha));
    if (conv->color_type == PNG_COLOR_TYPE_PALETTE) {
        // Entries past the PLTE length stay black, as in Pillow's freshly allocated palette.
        size_t entries = chunks->palette_length / 3;
        if (entries > 256) {
            entries = 256;
        }
        if (chunks->palette != NULL) {
            memcpy(conv->palette, chunks->palette, entries * 3);
        }
    }
    if (chunks->trns == NULL) {
        return CIC_OK;
    }
    switch (conv->color_type) {
        case PNG_COLOR_TYPE_PALETTE:
            if (chunks->trns_length > 256) {
                return cic_fail(info, CIC_CORRUPT, "PNG tRNS chunk has %zu entries, more than a palette can hold",
                                chunks->trns_length);
            }
            memcpy(conv->alpha, chunks->trns, chunks->trns_length);
            conv->has_trns = 1;
            break;
        case PNG_COLOR_TYPE_GRAY: {
            if (chunks->trns_length < 2) {
                return cic_fail(info, CIC_CORRUPT, "PNG tRNS chunk is cut short");
            }
            unsigned value = ((unsigned)chunks->trns[0] << 8) | chunks->trns[1];
            // Pillow: mode "1" stores 255 for any non-zero value; L and I;16 keep the raw sample, which
            // convert_transparent then compares (low byte only) with the already-scaled pixel value.
            if (conv->bit_depth == 1) {
                value = value ? 255 : 0;
            }
            conv->key[0] = conv->key[1] = conv->key[2] = (uint8_t)(value & 0xff);
            conv->has_trns = 1;
            break;
        }
        case PNG_COLOR_TYPE_RGB:
            if (chunks->trns_length < 6) {
                return cic_fail(info, CIC_CORRUPT, "PNG tRNS chunk is cut short");
            }
            conv->key[0] = chunks->trns[1];
            conv->key[1] = chunks->trns[3];
            conv->key[2] = chunks->trns[5];
            conv->has_trns = 1;
            break;
        default:
            break; // Pillow ignores tRNS on images that already have alpha.
    }
    return CIC_OK;
}

static inline void put_keyed(uint8_t *out, const row_converter *conv, uint8_t r, uint8_t g, uint8_t b) {
    if (conv->has_trns && r == conv->key[0] && g == conv->key[1] && b == conv->key[2]) {
        out[0] = out[1] = out[2] = 255; // alpha 0 composited on white
    } else {
        out[0] = r; // alpha 255: compositing is the identity
        out[1] = g;
        out[2] = b;
    }
}

static inline void put_alpha(uint8_t *out, uint8_t r, uint8_t g, uint8_t b, uint8_t a) {
    cic_composite_on_white(out, r, g, b, a);
}

/// Converts one row as libpng delivers it (samples unpacked to one byte below 8 bits, 16-bit big-endian).
static void convert_row(uint8_t *out, const uint8_t *row, int width, const row_converter *conv) {
    int depth = conv->bit_depth;
    switch (conv->color_type) {
        case PNG_COLOR_TYPE_GRAY:
            for (int x = 0; x < width; x++, out += 3) {
                uint8_t v;
                switch (depth) {
                    case 1: v = row[x] ? 255 : 0; break;            // mode "1"
                    case 2: v = (uint8_t)(row[x] * 85); break;      // rawmode L;2
                    case 4: v = (uint8_t)(row[x] * 17); break;      // rawmode L;4
                    case 16: v = row[2 * x] == 0 ? row[2 * x + 1] : 255; break; // I;16 -> RGB clips at 255
                    default: v = row[x]; break;
                }
                put_keyed(out, conv, v, v, v);
            }
            break;
        case PNG_COLOR_TYPE_RGB:
            for (int x = 0; x < width; x++, out += 3) {
                const uint8_t *p = depth == 16 ? row + 6 * x : row + 3 * x;
                int step = depth == 16 ? 2 : 1; // RGB;16B keeps the most significant byte
                put_keyed(out, conv, p[0], p[step], p[2 * step]);
            }
            break;
        case PNG_COLOR_TYPE_PALETTE:
            for (int x = 0; x < width; x++, out += 3) {
                const uint8_t *c = conv->palette + 3 * row[x];
                if (conv->has_trns) {
                    put_alpha(out, c[0], c[1], c[2], conv->alpha[row[x]]);
                } else {
                    out[0] = c[0];
                    out[1] = c[1];
                    out[2] = c[2];
                }
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            for (int x = 0; x < width; x++, out += 3) {
                const uint8_t *p = depth == 16 ? row + 4 * x : row + 2 * x;
                uint8_t a = depth == 16 ? p[2] : p[1];
                put_alpha(out, p[0], p[0], p[0], a);
            }
            break;
        case PNG_COLOR_TYPE_RGB_ALPHA:
            for (int x = 0; x < width; x++, out += 3) {
                const uint8_t *p = depth == 16 ? row + 8 * x : row + 4 * x;
                int step = depth == 16 ? 2 : 1;
                put_alpha(out, p[0], p[step], p[2 * step], p[3 * step]);
            }
            break;
        default:
            break;
    }
}

/// libpng state shared with the callbacks.
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    int ran_out;
    char message[200];
} png_source;

static void read_data(png_structp png, png_bytep out, size_t length) {
    png_source *src = (png_source *)png_get_io_ptr(png);
    if (length > src->size - src->pos) {
        src->ran_out = 1;
        png_error(png, "PNG data ends early");
    }
    memcpy(out, src->data + src->pos, length);
    src->pos += length;
}

static void on_error(png_structp png, png_const_charp message) {
    png_source *src = (png_source *)png_get_error_ptr(png);
    snprintf(src->message, sizeof(src->message), "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    // Warnings (bad ICC profile, odd ancillary chunks, extra data) leave the pixels intact.
    (void)png;
    (void)message;
}

int cic_png_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info) {
    png_chunks chunks;
    int status = walk_chunks(data, size, &chunks, info);
    if (status != CIC_OK) {
        return status;
    }
    row_converter *conv = malloc(sizeof(row_converter));
    if (conv == NULL) {
        return cic_fail(info, CIC_NO_MEMORY, "out of memory");
    }
    status = make_converter(&chunks, conv, info);
    if (status != CIC_OK) {
        free(conv);
        return status;
    }

    png_source src = {data, size, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    png_infop pinfo = png ? png_create_info_struct(png) : NULL;
    if (pinfo == NULL) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(conv);
        return cic_fail(info, CIC_NO_MEMORY, "out of memory creating the PNG decoder");
    }
    // Buffers are reached through volatile pointers so the longjmp path sees their current values.
    uint8_t *volatile buffer = NULL;
    png_bytepp volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        free(buffer);
        free(rows);
        free(conv);
        return cic_fail(info, src.ran_out ? CIC_TRUNCATED : CIC_CORRUPT, "%s", src.message);
    }
    png_set_read_fn(png, &src, read_data);
    // CRCs before IDAT were checked in the pre-pass; Pillow never checks IDAT's or later chunks' CRCs.
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_set_benign_errors(png, 1);
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    // Metadata chunks do not affect the pixels; skipping them saves work and avoids their size limits.
    static const png_byte ignored[] =
        "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored, (int)(sizeof(ignored) / 5));
    png_read_info(png, pinfo);

    png_uint_32 w = 0, h = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, pinfo, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((int)w != width || (int)h != height || bit_depth != conv->bit_depth || color_type != conv->color_type) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        free(conv);
        return cic_fail(info, CIC_CORRUPT, "PNG decoder sees %ux%u but the header said %dx%d", w, h, width, height);
    }
    if (bit_depth < 8) {
        png_set_packing(png); // one byte per sample, unscaled: Pillow's L;2 / L;4 scaling happens in convert_row
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    size_t rowbytes = png_get_rowbytes(png, pinfo);

    if (passes > 1) {
        // Adam7 needs the whole image before any row is final.
        buffer = malloc(rowbytes * (size_t)height);
        rows = malloc(sizeof(png_bytep) * (size_t)height);
        if (buffer == NULL || rows == NULL) {
            png_error(png, "out of memory for the de-interlacing buffer");
        }
        for (int y = 0; y < height; y++) {
            rows[y] = buffer + rowbytes * (size_t)y;
        }
        png_read_image(png, rows);
        for (int y = 0; y < height; y++) {
            convert_row(rgb + (size_t)y * (size_t)width * 3, rows[y], width, conv);
        }
    } else {
        buffer = malloc(rowbytes);
        if (buffer == NULL) {
            png_error(png, "out of memory for a PNG row");
        }
        for (int y = 0; y < height; y++) {
            png_read_row(png, buffer, NULL);
            convert_row(rgb + (size_t)y * (size_t)width * 3, buffer, width, conv);
        }
    }
    // No png_read_end (it would insist on IEND and CRCs); Pillow's own rules for what follows instead.
    size_t end_of_image = src.pos;
    png_destroy_read_struct(&png, &pinfo, NULL);
    free(buffer);
    free(rows);
    int animated = chunks.animated;
    free(conv);
    return check_trailing_chunks(data, size, end_of_image, animated, info);
}
