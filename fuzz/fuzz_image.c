/* fuzz_image.c — libFuzzer target: images and latent PNGs (PNG/JPEG through stb_image) via image_read_memory,
 * read as RGB (encode's input) and as RGBA (decode's latent PNG). stb is compiled into this target, instrumented. */
#include "io/image.h"

#include "fuzz_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int channels = 3; channels <= 4; channels++) {
        float *px = NULL;
        int w = 0, h = 0, fc = 0;
        char err[256];
        memset(err, 0, sizeof err);
        if (image_read_memory(data, size, channels, &px, &w, &h, &fc, err, sizeof err) != 0) {
            fuzz_check_err(err, sizeof err);
            if (px)
                abort();
            return 0;                          /* RGBA fails exactly when RGB does */
        }
        if (!px || w < 1 || h < 1 || fc < 1 || fc > 4)
            abort();
        size_t n = (size_t)w * (size_t)h * (size_t)channels;
        for (size_t i = 0; i < n; i++)
            if (!(px[i] >= 0.0f && px[i] <= 1.0f))
                abort();
        free(px);
    }
    return 0;
}
