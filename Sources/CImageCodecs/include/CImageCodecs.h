// C layer over libjpeg-turbo, libpng and libwebp for CapfiltImage.
// libjpeg and libpng report fatal errors with longjmp, which Swift cannot catch, so every call here
// catches them itself and returns a status code plus a message. Nothing here prints or exits.
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Container formats recognised by `cic_sniff`.
enum {
    CIC_FORMAT_UNKNOWN = 0,
    CIC_FORMAT_JPEG = 1,
    CIC_FORMAT_PNG = 2,
    CIC_FORMAT_WEBP = 3,
};

/// Status codes returned by every function below.
enum {
    CIC_OK = 0,
    /// The data is malformed (bad marker, bad CRC, bad Huffman code, ...). `message` says what.
    CIC_CORRUPT = 1,
    /// The data ends before the image does.
    CIC_TRUNCATED = 2,
    /// A valid file of a kind that Pillow cannot open either, or that this layer refuses (12-bit JPEG, ...).
    CIC_UNSUPPORTED = 3,
    /// An allocation failed.
    CIC_NO_MEMORY = 4,
    /// Not a JPEG, PNG or WebP file.
    CIC_UNKNOWN_FORMAT = 5,
};

/// What `cic_read_header` and `cic_decode_rgb` report back.
typedef struct cic_info {
    int format;        ///< CIC_FORMAT_*
    int width;         ///< pixels; for animated WebP, the canvas
    int height;        ///< pixels
    char message[256]; ///< NUL-terminated reason when the status is not CIC_OK
} cic_info;

/// Recognises the format from the first bytes, with the same magic numbers Pillow's plugins accept.
int cic_sniff(const uint8_t *data, size_t size);

/// Reads the image dimensions from the header only (no pixel data is decoded).
int cic_read_header(const uint8_t *data, size_t size, cic_info *info);

/// Decodes the image and converts it to 8-bit RGB exactly as Pillow 13 + transformers' convert_to_rgb do:
/// the file is opened in Pillow's mode (L, 1, I;16, P, LA, RGB, RGBA, CMYK), images with an alpha band or a
/// tRNS colour are alpha-composited onto opaque white, everything else goes through Pillow's convert("RGB").
/// `rgb` must hold width*height*3 bytes; width and height must be what `cic_read_header` returned.
int cic_decode_rgb(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, cic_info *info);

/// Encodes 8-bit RGB (`width*height*3` bytes) as a baseline JPEG (libjpeg's defaults, 4:2:0) or a lossy WebP
/// at `quality` (1-100). On CIC_OK, `*out` holds `*out_size` bytes that the caller frees with free().
int cic_jpeg_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *out_size,
                    cic_info *info);
int cic_webp_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *out_size,
                    cic_info *info);

#ifdef __cplusplus
}
#endif

#endif
