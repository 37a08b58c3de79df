/* image.h — PNG/JPEG in (stb_image, libjpeg-turbo), PNG out (stb_image_write). Pure C. */
#ifndef TAESD_IO_IMAGE_H
#define TAESD_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Loads an 8-bit image as float32 CHW in [0,1] with `channels` planes (3: RGB, alpha dropped / grey expanded;
 * 4: RGBA). *out is malloc'ed. Returns 0 on success; else one line into err. */
int image_read_file(const char *path, int channels, float **out, int *w, int *h, int *file_channels,
                    char *err, size_t errlen);
/* Same, from a PNG or JPEG held in memory (other formats are refused). */
int image_read_memory(const uint8_t *data, size_t size, int channels, float **out, int *w, int *h,
                      int *file_channels, char *err, size_t errlen);
/* Writes CHW float planes as an 8-bit PNG with `channels` (3 or 4) channels: round(clamp(v*scale+offset,0,1)*255).
 * Written atomically (temp file + rename). */
int image_write_png(const char *path, const float *chw, int channels, int w, int h, float scale, float offset,
                    char *err, size_t errlen);

#endif
