/* imageio.c — JPEG (libjpeg-turbo) and PNG (libpng) decoding and PNG encoding for ReAlign.
 *
 * Both libraries report fatal errors by longjmp. Every setjmp lives in the entry point that owns the library
 * object, so a longjmp only ever unwinds C frames of this file. Everything that changes between setjmp and a
 * possible longjmp (library structs, buffers, messages) lives in a heap-allocated context whose address is fixed
 * before setjmp: automatic variables modified after setjmp would be indeterminate after the jump. */
#include "imageio.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

int imageio_jpeg_version(void) { return JPEG_LIB_VERSION; }
const char *imageio_png_version(void) { return PNG_LIBPNG_VER_STRING; }

void imageio_free(void *p) { free(p); }

void imageio_image_free(imageio_image *img) {
  if (!img) return;
  free(img->pixels);
  free(img->trns_table);
  free(img->palette);
  free(img->exif);
  free(img->xmp);
  memset(img, 0, sizeof *img);
}

static void set_error(char *err, size_t errlen, const char *message) {
  if (!err || errlen == 0) return;
  snprintf(err, errlen, "%s", message);
}

/* Appends n bytes to a growable buffer; returns 0 when out of memory. */
static int append_bytes(uint8_t **buf, size_t *len, const uint8_t *src, size_t n) {
  if (n == 0) return 1;
  uint8_t *grown = realloc(*buf, *len + n);
  if (!grown) return 0;
  memcpy(grown + *len, src, n);
  *buf = grown;
  *len += n;
  return 1;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* JPEG                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr jerr;
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  int created;
  int32_t max_scans;
  char message[JMSG_LENGTH_MAX + 64];
  uint8_t *pixels;
  uint8_t *row;  /* CMYK scanline before conversion */
  int over_limit;
  uint8_t *exif;
  size_t exif_len;
  uint8_t *xmp;
  size_t xmp_len;
} jpeg_context;

/* The jpeg_error_mgr is the first thing the library sees; recover our context from it. */
static jpeg_context *jpeg_context_of(j_common_ptr cinfo) {
  return (jpeg_context *)((char *)cinfo->err - offsetof(jpeg_context, jerr));
}

static void jpeg_fail(j_common_ptr cinfo, const char *message) {
  jpeg_context *ctx = jpeg_context_of(cinfo);
  snprintf(ctx->message, sizeof ctx->message, "%s", message);
  longjmp(ctx->jump, 1);
}

static void jpeg_on_error(j_common_ptr cinfo) {
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  jpeg_context *ctx = jpeg_context_of(cinfo);
  snprintf(ctx->message, sizeof ctx->message, "invalid JPEG: %s", text);
  longjmp(ctx->jump, 1);
}

/* Warnings: running out of data is fatal (libjpeg would pad the image with grey; Pillow refuses truncated files
 * too). Other warnings (corrupt entropy data, extraneous bytes) are tolerated, as Pillow tolerates them. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return; /* trace messages */
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo, "truncated JPEG (premature end of data)");
  cinfo->err->num_warnings++;
}

/* A corrupt progressive file can declare thousands of scans, each a full pass over the coefficients. */
static void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  jpeg_context *ctx = jpeg_context_of(cinfo);
  if (d->input_scan_number > ctx->max_scans) {
    char text[96];
    snprintf(text, sizeof text, "invalid JPEG: more than %d scans", (int)ctx->max_scans);
    jpeg_fail(cinfo, text);
  }
}

static void jpeg_collect_markers(jpeg_context *ctx) {
  static const char xmp_id[] = "http://ns.adobe.com/xap/1.0/";
  for (jpeg_saved_marker_ptr m = ctx->cinfo.marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    if (m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
      /* Pillow concatenates the payloads of every Exif segment. */
      if (!append_bytes(&ctx->exif, &ctx->exif_len, m->data + 6, m->data_length - 6))
        jpeg_fail((j_common_ptr)&ctx->cinfo, "out of memory");
    } else if (m->data_length >= sizeof xmp_id && memcmp(m->data, xmp_id, sizeof xmp_id) == 0) {
      /* Pillow keeps the last XMP packet: everything after the identifier's NUL. */
      free(ctx->xmp);
      ctx->xmp = NULL;
      ctx->xmp_len = 0;
      if (!append_bytes(&ctx->xmp, &ctx->xmp_len, m->data + sizeof xmp_id, m->data_length - sizeof xmp_id))
        jpeg_fail((j_common_ptr)&ctx->cinfo, "out of memory");
    }
  }
}

/* Pillow reads CMYK JPEGs with Adobe's inverted polarity ("CMYK;I") and converts to RGB with
 * r = clip(nk - nk*c/255), nk = 255 - k, using its rounded divide-by-255. */
static uint8_t cmyk_channel(unsigned c, unsigned nk) {
  unsigned t = c * nk + 128;
  int v = (int)nk - (int)(((t >> 8) + t) >> 8);
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, size_t width) {
  for (size_t x = 0; x < width; x++) {
    unsigned c = 255u - in[0], m = 255u - in[1], y = 255u - in[2], k = 255u - in[3];
    unsigned nk = 255u - k;
    out[0] = cmyk_channel(c, nk);
    out[1] = cmyk_channel(m, nk);
    out[2] = cmyk_channel(y, nk);
    in += 4;
    out += 3;
  }
}

int imageio_decode_jpeg(const uint8_t *data, size_t len, uint64_t max_pixels, int32_t max_scans,
                        imageio_image *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (err && errlen) err[0] = 0;
  if (!out) {
    set_error(err, errlen, "internal error: no output image");
    return 1;
  }
  if (!data || len < 3 || data[0] != 0xFF || data[1] != 0xD8) {
    set_error(err, errlen, len < 3 ? "truncated JPEG (file too short)" : "not a JPEG image");
    return 1;
  }
  jpeg_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    set_error(err, errlen, "out of memory");
    return 1;
  }
  ctx->max_scans = max_scans > 0 ? max_scans : 1000;

  if (setjmp(ctx->jump)) {
    if (ctx->created) jpeg_destroy_decompress(&ctx->cinfo);
    set_error(err, errlen, ctx->message[0] ? ctx->message : "invalid JPEG");
    const int status = ctx->over_limit ? IMAGEIO_TOO_LARGE : 1;
    free(ctx->pixels);
    free(ctx->row);
    free(ctx->exif);
    free(ctx->xmp);
    free(ctx);
    return status;
  }

  ctx->cinfo.err = jpeg_std_error(&ctx->jerr);
  ctx->jerr.error_exit = jpeg_on_error;
  ctx->jerr.emit_message = jpeg_on_message;
  jpeg_create_decompress(&ctx->cinfo);
  ctx->created = 1;
  ctx->progress.progress_monitor = jpeg_on_progress;
  ctx->cinfo.progress = &ctx->progress;

  jpeg_mem_src(&ctx->cinfo, data, (unsigned long)len);
  jpeg_save_markers(&ctx->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&ctx->cinfo, TRUE);
  jpeg_collect_markers(ctx);

  const int components = ctx->cinfo.num_components;
  int cmyk = 0;
  switch (components) {
    case 1: ctx->cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: ctx->cinfo.out_color_space = JCS_RGB; break;
    case 4: ctx->cinfo.out_color_space = JCS_CMYK; cmyk = 1; break;
    default: {
      char text[96];
      snprintf(text, sizeof text, "unsupported JPEG: %d colour components", components);
      jpeg_fail((j_common_ptr)&ctx->cinfo, text);
    }
  }
  const uint64_t w = ctx->cinfo.image_width, h = ctx->cinfo.image_height;
  if (w == 0 || h == 0) jpeg_fail((j_common_ptr)&ctx->cinfo, "invalid JPEG: empty image");
  if (w * h > max_pixels) {
    char text[160];
    snprintf(text, sizeof text, "image is %llux%llu pixels, more than the limit of %llu",
             (unsigned long long)w, (unsigned long long)h, (unsigned long long)max_pixels);
    ctx->over_limit = 1;
    jpeg_fail((j_common_ptr)&ctx->cinfo, text);
  }

  jpeg_start_decompress(&ctx->cinfo);
  const size_t out_channels = components == 1 ? 1 : 3;
  const size_t row_bytes = (size_t)ctx->cinfo.output_width * out_channels;
  if ((size_t)ctx->cinfo.output_components != (cmyk ? 4 : out_channels))
    jpeg_fail((j_common_ptr)&ctx->cinfo, "invalid JPEG: unexpected number of output components");
  ctx->pixels = malloc(row_bytes * ctx->cinfo.output_height);
  if (!ctx->pixels) jpeg_fail((j_common_ptr)&ctx->cinfo, "out of memory");
  if (cmyk) {
    ctx->row = malloc((size_t)ctx->cinfo.output_width * 4);
    if (!ctx->row) jpeg_fail((j_common_ptr)&ctx->cinfo, "out of memory");
  }
  while (ctx->cinfo.output_scanline < ctx->cinfo.output_height) {
    uint8_t *dest = ctx->pixels + (size_t)ctx->cinfo.output_scanline * row_bytes;
    JSAMPROW row = cmyk ? ctx->row : dest;
    if (jpeg_read_scanlines(&ctx->cinfo, &row, 1) != 1)
      jpeg_fail((j_common_ptr)&ctx->cinfo, "truncated JPEG (premature end of data)");
    if (cmyk) cmyk_row_to_rgb(ctx->row, dest, ctx->cinfo.output_width);
  }
  /* Every scanline is in. Whatever follows (a missing EOI, trailing junk) cannot change the pixels, so the
   * decompressor is dropped without jpeg_finish_decompress. */
  out->width = (int32_t)ctx->cinfo.output_width;
  out->height = (int32_t)ctx->cinfo.output_height;
  out->layout = components == 1 ? IMAGEIO_GRAY8 : IMAGEIO_RGB8;
  out->pixels = ctx->pixels;
  out->pixels_len = row_bytes * ctx->cinfo.output_height;
  out->bit_depth = 8;
  out->color_type = components;
  out->progressive = ctx->cinfo.progressive_mode ? 1 : 0;
  out->cmyk = cmyk;
  out->exif = ctx->exif;
  out->exif_len = ctx->exif_len;
  out->xmp = ctx->xmp;
  out->xmp_len = ctx->xmp_len;
  jpeg_destroy_decompress(&ctx->cinfo);
  free(ctx->row);
  free(ctx);
  return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* PNG decoding                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct {
  png_structp png;
  png_infop info;
  const uint8_t *data;
  size_t len;
  size_t pos;
  int truncated;
  int over_limit;
  char message[256];
  uint8_t *pixels;
  png_bytep *rows;
  imageio_image result;  /* metadata gathered before the pixels */
} png_read_context;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_read_context *ctx = png_get_error_ptr(png);
  if (ctx->truncated)
    snprintf(ctx->message, sizeof ctx->message, "truncated PNG (unexpected end of data)");
  else
    snprintf(ctx->message, sizeof ctx->message, "invalid PNG: %s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

/* libpng's warnings (bad ancillary CRCs, unknown chunks, benign errors) do not stop decoding. */
static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void png_read_bytes(png_structp png, png_bytep dest, size_t n) {
  png_read_context *ctx = png_get_io_ptr(png);
  if (n > ctx->len - ctx->pos) {
    ctx->truncated = 1;
    png_error(png, "unexpected end of data");
  }
  memcpy(dest, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

static void png_collect_metadata(png_read_context *ctx) {
  png_structp png = ctx->png;
  png_infop info = ctx->info;
  imageio_image *r = &ctx->result;
  int color_type = png_get_color_type(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_PLTE)) {
    png_colorp palette = NULL;
    int count = 0;
    if (png_get_PLTE(png, info, &palette, &count) && count > 0) {
      free(r->palette);
      r->palette = malloc((size_t)count * 3);
      if (!r->palette) png_error(png, "out of memory");
      for (int i = 0; i < count; i++) {
        r->palette[3 * i + 0] = palette[i].red;
        r->palette[3 * i + 1] = palette[i].green;
        r->palette[3 * i + 2] = palette[i].blue;
      }
      r->palette_len = count;
    }
  }
  if (png_get_valid(png, info, PNG_INFO_tRNS)) {
    png_bytep alpha = NULL;
    int count = 0;
    png_color_16p key = NULL;
    if (png_get_tRNS(png, info, &alpha, &count, &key)) {
      if (color_type == PNG_COLOR_TYPE_PALETTE && alpha && count > 0) {
        r->trns_kind = 3;
        free(r->trns_table);
        r->trns_table = malloc((size_t)count);
        if (!r->trns_table) png_error(png, "out of memory");
        memcpy(r->trns_table, alpha, (size_t)count);
        r->trns_table_len = (size_t)count;
      } else if (color_type == PNG_COLOR_TYPE_GRAY && key) {
        r->trns_kind = 1;
        r->trns_key[0] = key->gray;
      } else if (color_type == PNG_COLOR_TYPE_RGB && key) {
        r->trns_kind = 2;
        r->trns_key[0] = key->red;
        r->trns_key[1] = key->green;
        r->trns_key[2] = key->blue;
      }
    }
  }
#ifdef PNG_eXIf_SUPPORTED
  if (!r->exif && png_get_valid(png, info, PNG_INFO_eXIf)) {
    png_bytep exif = NULL;
    png_uint_32 count = 0;
    if (png_get_eXIf_1(png, info, &count, &exif) && exif && count > 0) {
      if (!append_bytes(&r->exif, &r->exif_len, exif, count)) png_error(png, "out of memory");
    }
  }
#endif
}

int imageio_decode_png(const uint8_t *data, size_t len, uint64_t max_pixels, int32_t flags,
                       imageio_image *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (err && errlen) err[0] = 0;
  if (!out) {
    set_error(err, errlen, "internal error: no output image");
    return 1;
  }
  if (!data || len < 8 || png_sig_cmp(data, 0, 8) != 0) {
    set_error(err, errlen, len < 8 ? "truncated PNG (file too short)" : "not a PNG image");
    return 1;
  }
  png_read_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    set_error(err, errlen, "out of memory");
    return 1;
  }
  ctx->data = data;
  ctx->len = len;
  ctx->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error, png_on_warning);
  if (ctx->png) ctx->info = png_create_info_struct(ctx->png);
  if (!ctx->png || !ctx->info) {
    if (ctx->png) png_destroy_read_struct(&ctx->png, NULL, NULL);
    free(ctx);
    set_error(err, errlen, "out of memory");
    return 1;
  }

  if (setjmp(png_jmpbuf(ctx->png))) {
    set_error(err, errlen, ctx->message[0] ? ctx->message : "invalid PNG");
    const int status = ctx->over_limit ? IMAGEIO_TOO_LARGE : 1;
    png_destroy_read_struct(&ctx->png, &ctx->info, NULL);
    free(ctx->pixels);
    free(ctx->rows);
    imageio_image_free(&ctx->result);
    free(ctx);
    return status;
  }

  png_set_read_fn(ctx->png, ctx, png_read_bytes);
  png_read_info(ctx->png, ctx->info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(ctx->png, ctx->info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
  if ((uint64_t)width * height > max_pixels) {
    snprintf(ctx->message, sizeof ctx->message, "image is %ux%u pixels, more than the limit of %llu",
             (unsigned)width, (unsigned)height, (unsigned long long)max_pixels);
    ctx->over_limit = 1;
    png_longjmp(ctx->png, 1);
  }
  png_collect_metadata(ctx);

  const int expand_trns = (flags & IMAGEIO_PNG_EXPAND_TRNS) != 0 && ctx->result.trns_kind != 0;
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(ctx->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(ctx->png);
  if (expand_trns) png_set_tRNS_to_alpha(ctx->png);
  const int keep16 = bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY && !expand_trns;
  if (bit_depth == 16) {
    if (keep16) {
      if (host_is_little_endian()) png_set_swap(ctx->png);
    } else {
      png_set_strip_16(ctx->png); /* the high byte, as Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B" unpackers do */
    }
  }
  png_set_interlace_handling(ctx->png);
  png_read_update_info(ctx->png, ctx->info);

  const int channels = png_get_channels(ctx->png, ctx->info);
  const int out_depth = png_get_bit_depth(ctx->png, ctx->info);
  int layout;
  if (keep16 && channels == 1 && out_depth == 16) layout = IMAGEIO_GRAY16;
  else if (out_depth != 8) png_error(ctx->png, "unexpected bit depth after transformation");
  else if (channels == 1) layout = IMAGEIO_GRAY8;
  else if (channels == 2) layout = IMAGEIO_GRAY_ALPHA8;
  else if (channels == 3) layout = IMAGEIO_RGB8;
  else if (channels == 4) layout = IMAGEIO_RGBA8;
  else png_error(ctx->png, "unexpected channel count after transformation");
  const size_t row_bytes = png_get_rowbytes(ctx->png, ctx->info);
  const size_t expected_row = (size_t)width * (size_t)channels * (size_t)(out_depth / 8);
  if (row_bytes != expected_row) png_error(ctx->png, "unexpected row size after transformation");

  ctx->pixels = malloc(row_bytes * height);
  ctx->rows = malloc(sizeof(png_bytep) * height);
  if (!ctx->pixels || !ctx->rows) png_error(ctx->png, "out of memory");
  for (png_uint_32 y = 0; y < height; y++) ctx->rows[y] = ctx->pixels + (size_t)y * row_bytes;
  png_read_image(ctx->png, ctx->rows);

  /* The pixels are complete. Chunks after the image data may hold eXIf; problems there (a missing IEND,
   * trailing garbage) cannot change the pixels, so they are ignored rather than failing the whole file. */
  if (setjmp(png_jmpbuf(ctx->png)) == 0) {
    png_read_end(ctx->png, ctx->info);
    png_collect_metadata(ctx);
  }

  *out = ctx->result;
  out->width = (int32_t)width;
  out->height = (int32_t)height;
  out->layout = layout;
  out->pixels = ctx->pixels;
  out->pixels_len = row_bytes * height;
  out->bit_depth = bit_depth;
  out->color_type = color_type;
  out->progressive = interlace != PNG_INTERLACE_NONE;
  png_destroy_read_struct(&ctx->png, &ctx->info, NULL);
  free(ctx->rows);
  free(ctx);
  return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* PNG encoding                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct {
  png_structp png;
  png_infop info;
  uint8_t *data;
  size_t len;
  size_t cap;
  char message[256];
} png_write_context;

static void png_on_write_error(png_structp png, png_const_charp msg) {
  png_write_context *ctx = png_get_error_ptr(png);
  snprintf(ctx->message, sizeof ctx->message, "PNG encoding failed: %s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

static void png_write_bytes(png_structp png, png_bytep src, size_t n) {
  png_write_context *ctx = png_get_io_ptr(png);
  if (n > ctx->cap - ctx->len) {
    size_t cap = ctx->cap ? ctx->cap : 4096;
    while (cap - ctx->len < n) {
      if (cap > SIZE_MAX / 2) png_error(png, "output too large");
      cap *= 2;
    }
    uint8_t *grown = realloc(ctx->data, cap);
    if (!grown) png_error(png, "out of memory");
    ctx->data = grown;
    ctx->cap = cap;
  }
  memcpy(ctx->data + ctx->len, src, n);
  ctx->len += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

int imageio_encode_png(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                       int32_t compression_level, uint8_t **out, size_t *out_len, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!out || !out_len) {
    set_error(err, errlen, "internal error: no output buffer");
    return 1;
  }
  *out = NULL;
  *out_len = 0;
  if (!pixels || width <= 0 || height <= 0) {
    set_error(err, errlen, "cannot encode an empty image");
    return 1;
  }
  int color_type;
  switch (channels) {
    case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
    case 2: color_type = PNG_COLOR_TYPE_GRAY_ALPHA; break;
    case 3: color_type = PNG_COLOR_TYPE_RGB; break;
    case 4: color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
    default: set_error(err, errlen, "PNG encoding needs 1, 2, 3 or 4 channels"); return 1;
  }
  png_write_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    set_error(err, errlen, "out of memory");
    return 1;
  }
  ctx->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_write_error, png_on_warning);
  if (ctx->png) ctx->info = png_create_info_struct(ctx->png);
  if (!ctx->png || !ctx->info) {
    if (ctx->png) png_destroy_write_struct(&ctx->png, NULL);
    free(ctx);
    set_error(err, errlen, "out of memory");
    return 1;
  }
  if (setjmp(png_jmpbuf(ctx->png))) {
    set_error(err, errlen, ctx->message[0] ? ctx->message : "PNG encoding failed");
    png_destroy_write_struct(&ctx->png, &ctx->info);
    free(ctx->data);
    free(ctx);
    return 1;
  }
  png_set_write_fn(ctx->png, ctx, png_write_bytes, png_flush_nothing);
  png_set_IHDR(ctx->png, ctx->info, (png_uint_32)width, (png_uint_32)height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (compression_level >= 0 && compression_level <= 9) png_set_compression_level(ctx->png, compression_level);
  png_write_info(ctx->png, ctx->info);
  const size_t row_bytes = (size_t)width * (size_t)channels;
  for (int32_t y = 0; y < height; y++) png_write_row(ctx->png, pixels + (size_t)y * row_bytes);
  png_write_end(ctx->png, ctx->info);
  png_destroy_write_struct(&ctx->png, &ctx->info);
  *out = ctx->data;
  *out_len = ctx->len;
  free(ctx);
  return 0;
}
