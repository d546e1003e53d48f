/* imageio.h — C surface over libjpeg(-turbo) and libpng.
 *
 * Rules (the same as the libtorch shim's):
 *  - Every fallible function returns 0 on success and non-zero on failure. Results go through out-parameters; on
 *    failure they are left empty and `err` (errlen bytes, always NUL-terminated) holds a one-line message.
 *  - Both libraries report fatal errors by longjmp; every setjmp/longjmp pair lives inside one function of
 *    imageio.c, so no longjmp ever crosses into Swift.
 *  - The caller owns every returned buffer: free a decoded image with imageio_image_free and an encoded buffer
 *    with imageio_free.
 *  - Decoders never trust the header: images with more than `max_pixels` pixels are refused before any pixel
 *    buffer is allocated, and premature end of data is an error ("truncated ..."), not a grey-filled image. */
#ifndef IMAGEIO_H
#define IMAGEIO_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pixel layouts of a decoded image (row-major, rows tightly packed). */
enum {
  IMAGEIO_GRAY8 = 1,       /* 1 byte per pixel */
  IMAGEIO_GRAY_ALPHA8 = 2, /* 2 bytes: gray, alpha */
  IMAGEIO_RGB8 = 3,        /* 3 bytes */
  IMAGEIO_RGBA8 = 4,       /* 4 bytes */
  IMAGEIO_GRAY16 = 5       /* 2 bytes, native-endian uint16 (16-bit grayscale PNG, kept at full depth) */
};

/* Decoder flags. */
enum {
  /* PNG: turn tRNS transparency (palette alpha table, gray or RGB colour key) into an alpha channel, comparing
   * keys at the file's own bit depth. Without it, palettes expand to RGB and colour keys are only reported. */
  IMAGEIO_PNG_EXPAND_TRNS = 1
};

typedef struct {
  int32_t width;
  int32_t height;
  int32_t layout;            /* IMAGEIO_GRAY8 ... IMAGEIO_GRAY16 */
  uint8_t *pixels;           /* width * height * bytes-per-pixel bytes */
  size_t pixels_len;

  /* Where the pixels came from. */
  int32_t bit_depth;         /* bits per sample in the file (JPEG: 8; PNG: 1, 2, 4, 8, 16) */
  int32_t color_type;        /* PNG colour type (0, 2, 3, 4, 6); JPEG: number of components (1, 3, 4) */
  int32_t progressive;       /* JPEG: progressive (or multi-scan) file; PNG: Adam7-interlaced */
  int32_t cmyk;              /* JPEG: CMYK/YCCK file, converted to RGB as Pillow's convert("RGB") does */

  /* PNG tRNS, as stored in the file (reported whether or not IMAGEIO_PNG_EXPAND_TRNS was set). */
  int32_t trns_kind;         /* 0 none, 1 gray key, 2 RGB key, 3 palette alpha table */
  uint16_t trns_key[3];      /* the raw key sample(s) at the file's bit depth (kind 1: trns_key[0]) */
  uint8_t *trns_table;       /* kind 3: the raw tRNS bytes (one alpha per palette entry, maybe fewer) */
  size_t trns_table_len;
  uint8_t *palette;          /* palette images: the PLTE entries, 3 bytes each */
  int32_t palette_len;       /* number of entries */

  /* Metadata used for orientation: EXIF payload(s) with the "Exif\0\0" prefix removed (JPEG: every APP1 Exif
   * segment's payload, concatenated, as Pillow does; PNG: the eXIf chunk) and the last XMP packet (JPEG APP1
   * "http://ns.adobe.com/xap/1.0/"). NULL when absent. */
  uint8_t *exif;
  size_t exif_len;
  uint8_t *xmp;
  size_t xmp_len;
} imageio_image;

/* What the decoders return besides 0 (decoded) and 1 (not a valid image): the header names more pixels than
 * `max_pixels`; nothing of the pixel data was allocated. */
#define IMAGEIO_TOO_LARGE 2

/* Decode a JPEG held in memory. Grayscale stays IMAGEIO_GRAY8, YCbCr/RGB becomes IMAGEIO_RGB8, CMYK/YCCK is
 * converted to IMAGEIO_RGB8 (Adobe's inverted polarity, as Pillow assumes). At most `max_scans` progressive scans
 * are accepted (a defence against pathological files; 0 means 1000). */
int imageio_decode_jpeg(const uint8_t *data, size_t len, uint64_t max_pixels, int32_t max_scans,
                        imageio_image *out, char *err, size_t errlen);

/* Decode a PNG held in memory (every colour type and bit depth, interlaced or not). 16-bit samples are reduced
 * to their high byte except 16-bit grayscale without alpha, which comes back as IMAGEIO_GRAY16; 1/2/4-bit gray
 * is scaled to 0..255. */
int imageio_decode_png(const uint8_t *data, size_t len, uint64_t max_pixels, int32_t flags,
                       imageio_image *out, char *err, size_t errlen);

/* Release everything a decoder returned in `img` (safe on a zeroed struct). */
void imageio_image_free(imageio_image *img);

/* Encode 8-bit pixels (channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; rows tightly packed) as a PNG in memory.
 * compression_level: 0..9, or -1 for zlib's default. *out is freed with imageio_free. */
int imageio_encode_png(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                       int32_t compression_level, uint8_t **out, size_t *out_len, char *err, size_t errlen);

void imageio_free(void *p);

/* Library versions, for `realign doctor`. */
int imageio_jpeg_version(void);
const char *imageio_png_version(void);

#ifdef __cplusplus
}
#endif
#endif
