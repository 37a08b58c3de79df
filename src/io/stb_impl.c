/* stb_impl.c — the stb_image / stb_image_write implementation, from the system's stb headers, for builds without a
 * libstb to link (mingw cross builds; the fuzzers, so that stb is instrumented too). Only PNG is decoded: image.c
 * gives stb nothing else (JPEG goes to libjpeg-turbo). Built without warnings (third-party code); see meson.build. */
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
