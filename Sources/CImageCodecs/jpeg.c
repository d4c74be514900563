// JPEG through libjpeg-turbo with Pillow's settings (ISLOW IDCT, fancy upsampling, no scaling), then
// Pillow's mode conversion: L is replicated, RGB is kept, CMYK is read inverted ("CMYK;I") and
// converted with Pillow's cmyk2rgb.
#include "internal.h"

#include <setjmp.h>
#include <stdlib.h>

#include <jpeglib.h>
#include <jerror.h>

static int is_sof_marker(uint8_t m) {
    return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

int cic_jpeg_header(const uint8_t *d, size_t n, cic_info *info) {
    size_t pos = 2; // after SOI
    for (;;) {
        // Bytes other than 0xFF between segments are junk that Pillow and libjpeg both skip.
        while (pos < n && d[pos] != 0xff) {
            pos++;
        }
        while (pos < n && d[pos] == 0xff) {
            pos++;
        }
        if (pos >= n) {
            return cic_fail(info, CIC_TRUNCATED, "JPEG data ends before the frame header (SOF marker)");
        }
        uint8_t m = d[pos++];
        if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
            continue; // stuffed byte or a marker without a length field
        }
        if (m == 0xd9 || m == 0xda) {
            return cic_fail(info, CIC_CORRUPT, "JPEG has no frame header (SOF marker) before its %s",
                            m == 0xd9 ? "end marker" : "scan data");
        }
        if (pos + 2 > n) {
            return cic_fail(info, CIC_TRUNCATED, "JPEG data ends inside marker 0x%02x", m);
        }
        size_t length = ((size_t)d[pos] << 8) | d[pos + 1];
        if (length < 2) {
            return cic_fail(info, CIC_CORRUPT, "JPEG marker 0x%02x has an invalid length %zu", m, length);
        }
        if (is_sof_marker(m)) {
            if (length < 8 || pos + 8 > n) {
                return cic_fail(info, length < 8 ? CIC_CORRUPT : CIC_TRUNCATED,
                                "JPEG frame header (SOF) is cut short");
            }
            int precision = d[pos + 2];
            info->height = (d[pos + 3] << 8) | d[pos + 4];
            info->width = (d[pos + 5] << 8) | d[pos + 6];
            int components = d[pos + 7];
            // libjpeg-turbo (8-bit build) decodes baseline, extended, progressive, and their arithmetic forms.
            if (m != 0xc0 && m != 0xc1 && m != 0xc2 && m != 0xc9 && m != 0xca) {
                return cic_fail(info, CIC_UNSUPPORTED,
                                "JPEG process SOF%d (lossless or hierarchical) is not supported", m - 0xc0);
            }
            if (precision != 8) {
                return cic_fail(info, CIC_UNSUPPORTED, "%d-bit JPEG is not supported (Pillow refuses it too)",
                                precision);
            }
            if (components != 1 && components != 3 && components != 4) {
                return cic_fail(info, CIC_UNSUPPORTED,
                                "JPEG with %d colour components is not supported (Pillow refuses it too)",
                                components);
            }
            if (info->width == 0 || info->height == 0) {
                return cic_fail(info, CIC_CORRUPT, "JPEG frame header gives an empty size %dx%d",
                                info->width, info->height);
            }
            return CIC_OK;
        }
        pos += length;
    }
}

/// libjpeg error manager that turns errors and data-damaging warnings into a longjmp back to the decoder.
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int status;
    /// Set when scan data starts being decoded; junk between header markers cannot touch the pixels.
    int scanning;
    /// Set once every scanline has been read: a missing EOI marker no longer matters then (Pillow's
    /// suspending reader also stops caring once the last row is out).
    int finishing;
    char message[JMSG_LENGTH_MAX];
} jpeg_error;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_error *err = (jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    int code = cinfo->err->msg_code;
    err->status = (code == JERR_INPUT_EOF || code == JERR_INPUT_EMPTY) ? CIC_TRUNCATED : CIC_CORRUPT;
    longjmp(err->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) {
        return; // trace output, not a warning
    }
    jpeg_error *err = (jpeg_error *)cinfo->err;
    int code = cinfo->err->msg_code;
    switch (code) {
        case JWRN_EXTRANEOUS_DATA:
            // A few padding bytes after the entropy data are a known encoder quirk (libjpeg says
            // "1 extraneous bytes before marker 0xd9"); junk between header markers is harmless. Hundreds of
            // bytes left over after a scan mean the Huffman decoder lost sync on damaged data.
            if (!err->scanning || cinfo->err->msg_parm.i[0] <= 16) {
                return;
            }
            err->status = CIC_CORRUPT;
            break;
        // These leave the pixels intact: odd JFIF/Adobe header fields, a bad ICC chunk, or an over-long
        // scanline request.
        case JWRN_ADOBE_XFORM:
        case JWRN_JFIF_MAJOR:
        case JWRN_BOGUS_ICC:
        case JWRN_TOO_MUCH_DATA:
            return;
        case JWRN_JPEG_EOF:
            if (err->finishing) {
                return;
            }
            err->status = CIC_TRUNCATED;
            break;
        default:
            // Corrupt entropy data, premature end of a segment, bad restart markers, bad progression:
            // libjpeg would carry on with made-up pixels; we refuse the image instead.
            err->status = CIC_CORRUPT;
            break;
    }
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void on_output_message(j_common_ptr cinfo) {
    (void)cinfo; // never print
}

/// Pillow's unpack "CMYK;I" (invert every byte) followed by Convert.c cmyk2rgb.
static void cmyk_inverted_to_rgb(uint8_t *rgb, const uint8_t *cmyk, int width) {
    for (int x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int nk = 255 - (255 - cmyk[3]);
        for (int c = 0; c < 3; c++) {
            int tmp = (255 - cmyk[c]) * nk + 128;
            int v = nk - (int)cic_shift_div255((uint32_t)tmp);
            rgb[c] = (uint8_t)(v <= 0 ? 0 : (v < 256 ? v : 255));
        }
    }
}

/// libjpeg's standard error manager with our handlers: errors and damaging warnings longjmp to `err->jump`.
static struct jpeg_error_mgr *error_manager(jpeg_error *err) {
    struct jpeg_error_mgr *manager = jpeg_std_error(&err->pub);
    err->pub.error_exit = on_error_exit;
    err->pub.emit_message = on_emit_message;
    err->pub.output_message = on_output_message;
    return manager;
}

int cic_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error err;
    memset(&err, 0, sizeof(err));
    // Row buffer for grey and CMYK output; allocated before setjmp so the longjmp path can free it.
    uint8_t *row = malloc((size_t)width * 4);
    if (row == NULL) {
        return cic_fail(info, CIC_NO_MEMORY, "out of memory for a JPEG row of width %d", width);
    }

    cinfo.err = error_manager(&err);
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        return cic_fail(info, err.status, "%s", err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    if ((int)cinfo.image_width != width || (int)cinfo.image_height != height) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        return cic_fail(info, CIC_CORRUPT, "JPEG decoder sees %ux%u but the header scan saw %dx%d",
                        cinfo.image_width, cinfo.image_height, width, height);
    }
    int components = cinfo.num_components;
    switch (components) {
        case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
        case 3: cinfo.out_color_space = JCS_RGB; break;
        case 4: cinfo.out_color_space = JCS_CMYK; break;
        default:
            jpeg_destroy_decompress(&cinfo);
            free(row);
            return cic_fail(info, CIC_UNSUPPORTED, "JPEG with %d colour components is not supported", components);
    }
    // Pillow leaves libjpeg's defaults: JDCT_ISLOW, fancy upsampling, block smoothing, no scaling.
    err.scanning = 1;
    jpeg_start_decompress(&cinfo);

    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *out = rgb + (size_t)cinfo.output_scanline * (size_t)width * 3;
        JSAMPROW target = components == 3 ? out : row;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            jpeg_destroy_decompress(&cinfo);
            free(row);
            return cic_fail(info, CIC_TRUNCATED, "JPEG decoder stopped before the last row");
        }
        if (components == 1) {
            for (int x = 0; x < width; x++) {
                out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
            }
        } else if (components == 4) {
            cmyk_inverted_to_rgb(out, row, width);
        }
    }
    err.finishing = 1;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return CIC_OK;
}

int cic_jpeg_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *out_size,
                    cic_info *info) {
    struct jpeg_compress_struct cinfo;
    jpeg_error err;
    memset(&err, 0, sizeof(err));
    unsigned char *buffer = NULL;
    unsigned long size = 0;
    cinfo.err = error_manager(&err);
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return cic_fail(info, err.status == CIC_OK ? CIC_CORRUPT : err.status, "JPEG encoder: %s", err.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    // Pillow's defaults for save("JPEG", quality=q): 4:2:0 subsampling, ISLOW DCT, baseline, optimized off.
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * (size_t)width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = size;
    return CIC_OK;
}
