/* taesd_cli.c — the `taesd` command-line tool: decode, encode, roundtrip, info, --list-devices.
 *
 * Exit codes: 0 success; 1 runtime error (exactly one line "taesd: FILE: problem" on stderr); 2 usage error.
 * Outputs are written only after the whole computation succeeded, atomically (npy_write_file, image_write_png),
 * so a failed run never leaves a partial or stale-looking output file. Uses only the public API plus src/io.
 */
#include "taesd.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/tensors.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef TAESD_VERSION
#define TAESD_VERSION "0.1.0"
#endif

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };
enum { MAX_DIM = 1 << 16 };          /* sanity bound on an input's height/width before any int arithmetic */
enum { MAX_DEVICES = 16 };

/* Latent PNGs store clamp(x / 6 + 0.5, 0, 1). */
#define LATENT_PNG_SCALE (1.0f / 6.0f)
#define LATENT_PNG_OFFSET 0.5f

typedef enum command { CMD_NONE, CMD_DECODE, CMD_ENCODE, CMD_ROUNDTRIP, CMD_INFO, CMD_BENCH } command;

typedef struct options {
    command cmd;
    const char *cmd_name;
    const char *model[2];
    int nmodel;
    const char *in;
    const char *out;
    taesd_precision precision;
    taesd_variant variant;
    int device;
    bool validation;
    bool verbose;
    int tile;                   /* --tile N: tiles of N latent pixels; 0: only where needed */
    int max_memory_mb;          /* --max-memory MB: device memory budget of one run; 0: none */
    taesd_latent_format latent_format;  /* decode input / encode output; 0: diffusion */
    const char *tensor;         /* decode: tensor name in a .safetensors input (NULL: the first) */
    int shape[3], nshape;       /* decode: --shape C,H,W (raw inputs) or H,W (flux1-packed) */
    /* bench */
    int size_w, size_h;         /* image size in pixels */
    int part;                   /* taesd_part, 0: the decoder if present, else the encoder */
    int runs, warmup;
    bool layers, json;
} options;

/* Passed to the library's log callback as its user pointer (no global state). */
typedef struct log_state {
    bool print;                 /* -v or validation: print WARNING/ERROR messages as they come */
    bool info;                  /* -v: also INFO messages (how a run was tiled) */
    char last[512];             /* the last ERROR-level message, for failures that happen before a context exists */
} log_state;

static const char usage_main[] =
    "usage: taesd COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  decode     -m WEIGHTS [-m WEIGHTS2] IN.npy|.safetensors|.raw|.png -o OUT.png|OUT.npy   latent -> image\n"
    "  encode     -m WEIGHTS [-m WEIGHTS2] IN.png|IN.jpg|IN.npy -o OUT.npy|OUT.png   image -> latent\n"
    "  roundtrip  -m ENC [-m DEC] IN.png|IN.jpg|IN.npy -o OUT.png|OUT.npy       encode, then decode\n"
    "  info       -m WEIGHTS [-m WEIGHTS2]                                   describe a weights file\n"
    "  bench      -m WEIGHTS --size WxH [--part decoder|encoder] [--runs N]   time runs (see bench --help)\n"
    "\n"
    "Options (decode, encode, roundtrip, info):\n"
    "  -m, --model FILE        weights (.pth or .safetensors); give twice for separate encoder and decoder files\n"
    "  -o, --output FILE       output file (.png or .npy)\n"
    "  --precision P           auto (default), fp32 or fp16\n"
    "  --variant V             auto (default), taesd, taesd3, taef2 or taesana\n"
    "  --device N              Vulkan device N (1-based, see --list-devices); 0 or absent: the best one\n"
    "  --validation            enable Vulkan validation (also TAESD_VALIDATION=1); any message fails the run\n"
    "  -v, --verbose           print library warnings and timings to stderr\n"
    "  -h, --help              this help\n"
    "\n"
    "Tiling (decode, encode, roundtrip, bench; exact: see docs/tiling.md):\n"
    "  --tile N                run in tiles of N latent pixels (N >= 1); default: only where needed\n"
    "  --max-memory MB         device memory budget of a run's activations; larger runs go in tiles\n"
    "\n"
    "Latent inputs and outputs (decode, encode):\n"
    "  --latent-format F       layout of the latent file: diffusion (default), sd1-raw, sdxl-raw, sd3-raw,\n"
    "                          flux1-raw, flux1-packed, flux2-patchified (see docs/latent-formats.md)\n"
    "  --tensor NAME           decode: the tensor of a .safetensors input (default: the first)\n"
    "  --shape C,H,W | H,W     decode: dims of a raw float32 input (.raw/.f32/.bin); H,W: the latent size of\n"
    "                          flux1-packed tokens (default: a square grid)\n"
    "\n"
    "Other:\n"
    "  taesd --list-devices    list Vulkan devices\n"
    "  taesd --version         print the version\n"
    "  taesd --help            this help\n"
    "\n"
    "Latents are diffusion-space (as the diffusion model sees them). Images are RGB in [0,1].\n"
    "Latent PNGs store clamp(x/6 + 0.5, 0, 1) per channel (RGBA for 4 channels, RGB for 3).\n"
    "Exit status: 0 success, 1 runtime error, 2 usage error.\n";

static const char usage_decode[] =
    "usage: taesd decode -m WEIGHTS [-m WEIGHTS2] IN -o OUT [OPTIONS]\n"
    "\n"
    "Decodes a latent into an image.\n"
    "  IN   .npy: float32 or float16, shape (1,C,H,W) or (C,H,W), C = the model's latent channels\n"
    "       .safetensors: the first tensor (or --tensor NAME), f32/f16/bf16, same shapes\n"
    "       .raw/.f32/.bin: little-endian float32, C*H*W values, needs --shape C,H,W\n"
    "       .png: 8-bit latent PNG (RGBA: 4 channels, RGB: 3), values clamp(x/6 + 0.5, 0, 1)\n"
    "  OUT  .png: 8-bit RGB of clamp(x, 0, 1); .npy: raw float32 (1,3,H*s,W*s), not clamped\n"
    "\n"
    "  --latent-format F   the input's layout, converted to diffusion space before decoding:\n"
    "                      diffusion (default), sd1-raw, sdxl-raw, sd3-raw, flux1-raw (VAE latents),\n"
    "                      flux1-packed ((1,N,64) or (N,64) tokens; --shape H,W, else a square grid),\n"
    "                      flux2-patchified ((1,128,H/2,W/2))\n"
    "  --tensor NAME       the tensor of a .safetensors input\n"
    "  --shape C,H,W       dims of a raw input (H,W for flux1-packed)\n"
    "\n"
    "Options: --precision auto|fp32|fp16, --variant auto|taesd|taesd3|taef2|taesana, --device N,\n"
    "         --tile N, --max-memory MB, --validation, -v/--verbose (see taesd --help)\n";

static const char usage_encode[] =
    "usage: taesd encode -m WEIGHTS [-m WEIGHTS2] IN -o OUT [OPTIONS]\n"
    "\n"
    "Encodes an image into a latent.\n"
    "  IN   .png/.jpg/.jpeg: 8-bit image (alpha dropped, grey expanded), scaled to [0,1]\n"
    "       .npy: float32 or float16 image in [0,1], shape (1,3,H,W) or (3,H,W)\n"
    "  OUT  .npy: raw float32 latent (1,C,ceil(H/s),ceil(W/s))\n"
    "       .png: latent PNG clamp(x/6 + 0.5, 0, 1), RGBA; only for 4-channel models\n"
    "\n"
    "  --latent-format F   write the latent in this layout (.npy only): diffusion (default), sd1-raw,\n"
    "                      sdxl-raw, sd3-raw, flux1-raw, flux1-packed (1,N,64), flux2-patchified\n"
    "\n"
    "Options: --precision auto|fp32|fp16, --variant auto|taesd|taesd3|taef2|taesana, --device N,\n"
    "         --tile N, --max-memory MB, --validation, -v/--verbose (see taesd --help)\n";

static const char usage_roundtrip[] =
    "usage: taesd roundtrip -m ENC [-m DEC] IN -o OUT [OPTIONS]\n"
    "\n"
    "Encodes an image and decodes the latent again. A file holding both encoder and decoder\n"
    "(diffusers or ComfyUI combined) may be given once.\n"
    "  IN   .png/.jpg/.jpeg or .npy image, as for encode\n"
    "  OUT  .png or .npy, as for decode\n"
    "\n"
    "Options: --precision auto|fp32|fp16, --variant auto|taesd|taesd3|taef2|taesana, --device N,\n"
    "         --tile N, --max-memory MB, --validation, -v/--verbose (see taesd --help)\n";

static const char usage_bench[] =
    "usage: taesd bench -m WEIGHTS --size WxH [OPTIONS]\n"
    "\n"
    "Times decodes or encodes of an image size on the device: the first call (builds the plan: buffers,\n"
    "descriptor sets, the recorded command buffer; lavapipe also compiles its shaders here), then steady-state\n"
    "runs (upload, submit, wait, download). Prints min/median/max, GFLOP/s and device memory.\n"
    "  --size WxH              image size in pixels (decoder output / encoder input); a multiple of the\n"
    "                          spatial scale for the decoder\n"
    "  --part decoder|encoder  default: the decoder if the weights hold one\n"
    "  --runs N                steady-state runs (default 5), --warmup N: untimed runs after the first (default 1)\n"
    "  --layers                GPU time of every op from timestamp queries (last run)\n"
    "  --json                  one JSON object on stdout instead of text\n"
    "\n"
    "Options: --precision auto|fp32|fp16, --variant, --device N, --tile N, --max-memory MB, --validation, -v\n"
    "         (see taesd --help)\n";

static const char usage_info[] =
    "usage: taesd info -m WEIGHTS [-m WEIGHTS2] [OPTIONS]\n"
    "\n"
    "Prints the variant, parts, latent channels, spatial scale, parameter counts, dtype, key scheme,\n"
    "vae_scale/vae_shift (ComfyUI files) and the device and precision a run would use.\n"
    "\n"
    "Options: --precision auto|fp32|fp16, --variant auto|taesd|taesd3|taef2|taesana, --device N,\n"
    "         --validation, -v/--verbose (see taesd --help)\n";

/* ---- small helpers ---------------------------------------------------------------------------------------- */

#if defined(__GNUC__)
#define PRINTF_LIKE __attribute__((format(printf, 1, 2)))
#else
#define PRINTF_LIKE
#endif

static int usage_error(const char *fmt, ...) PRINTF_LIKE;
static int fail(const char *fmt, ...) PRINTF_LIKE;

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("taesd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\ntry 'taesd --help'\n", stderr);
    return EXIT_USAGE;
}

/* One line "taesd: ..." on stderr; returns the runtime-error exit code. */
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("taesd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

static bool has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

static bool is_npy(const char *p) { return has_ext(p, ".npy"); }
static bool is_png(const char *p) { return has_ext(p, ".png"); }
static bool is_image(const char *p) { return is_png(p) || has_ext(p, ".jpg") || has_ext(p, ".jpeg"); }
static bool is_safetensors(const char *p) { return has_ext(p, ".safetensors"); }
static bool is_raw(const char *p) { return has_ext(p, ".raw") || has_ext(p, ".f32") || has_ext(p, ".bin"); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static const char *precision_name(taesd_precision p)
{
    switch (p) {
    case TAESD_PRECISION_FP32: return "fp32";
    case TAESD_PRECISION_FP16: return "fp16";
    default: return "auto";
    }
}

static const char *device_type_name(int type)
{
    switch (type) {     /* VkPhysicalDeviceType */
    case 1: return "integrated";
    case 2: return "discrete";
    case 3: return "virtual";
    case 4: return "cpu";
    default: return "other";
    }
}

static void log_cb(taesd_log_level level, int id, const char *msg, void *user)
{
    log_state *ls = user;
    (void)id;
    if (level == TAESD_LOG_ERROR && msg != NULL)
        snprintf(ls->last, sizeof ls->last, "%s", msg);
    if (ls->print && level <= TAESD_LOG_WARNING)
        fprintf(stderr, "taesd: %s: %s\n", level == TAESD_LOG_ERROR ? "error" : "warning", msg ? msg : "");
    else if (ls->info && level == TAESD_LOG_INFO)
        fprintf(stderr, "taesd: %s\n", msg ? msg : "");
}

/* ---- argument parsing --------------------------------------------------------------------------------------- */

/* Value of an option given as "--opt VALUE" or "--opt=VALUE". Returns NULL (after a usage message) if missing. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, size_t namelen)
{
    if (arg[namelen] == '=')
        return arg + namelen + 1;
    if (*i + 1 >= argc) {
        usage_error("option %.*s needs a value", (int)namelen, arg);
        return NULL;
    }
    return argv[++*i];
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* "C,H,W" or "H,W": 2 or 3 positive numbers (each at most MAX_DIM). */
static int parse_shape(const char *s, int dims[3], int *n)
{
    *n = 0;
    for (;;) {
        char *end;
        long v;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || v < 1 || v > MAX_DIM || *n == 3)
            return -1;
        dims[(*n)++] = (int)v;
        if (*end == '\0')
            break;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
    return *n >= 2 ? 0 : -1;
}

/* The latent options against the input/output types; -1 to go on, else EXIT_USAGE. */
static int check_latent_options(const options *o)
{
    bool packed = o->latent_format == TAESD_LATENT_FLUX1_PACKED;
    const char *fmt = taesd_latent_format_name(o->latent_format);
    if (o->latent_format != TAESD_LATENT_DIFFUSION &&
        ((o->cmd == CMD_DECODE && is_png(o->in)) || (o->cmd == CMD_ENCODE && is_png(o->out))))
        return usage_error("%s: latent PNGs are diffusion space only, not --latent-format %s", o->cmd_name, fmt);
    if (o->tensor != NULL && !is_safetensors(o->in))
        return usage_error("decode: --tensor needs a .safetensors input, not '%s'", o->in);
    if (o->nshape > 0 && is_png(o->in))
        return usage_error("decode: --shape does not apply to a PNG input");
    if (o->nshape > 0 && o->nshape != (packed ? 2 : 3))
        return usage_error("decode: --shape takes %s with --latent-format %s", packed ? "H,W" : "C,H,W", fmt);
    if (o->cmd == CMD_DECODE && is_raw(o->in) && o->nshape == 0)
        return usage_error("decode: raw input '%s' needs --shape %s", o->in, packed ? "H,W" : "C,H,W");
    return -1;
}

/* Returns -1 to go on, else an exit code (0 after --help). */
static int parse_command_args(int argc, char **argv, int first, options *o)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        size_t len;
        if (a[0] != '-' || a[1] == '\0') {
            if (o->in != NULL)
                return usage_error("%s: unexpected argument '%s'", o->cmd_name, a);
            o->in = a;
            continue;
        }
        len = strcspn(a, "=");
#define IS(name) (len == strlen(name) && strncmp(a, name, len) == 0)
        if (IS("-h") || IS("--help")) {
            const char *text = o->cmd == CMD_DECODE ? usage_decode
                             : o->cmd == CMD_ENCODE ? usage_encode
                             : o->cmd == CMD_ROUNDTRIP ? usage_roundtrip
                             : o->cmd == CMD_BENCH ? usage_bench : usage_info;
            fputs(text, stdout);
            return 0;
        } else if (IS("-m") || IS("--model")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (o->nmodel == 2)
                return usage_error("-m given more than twice");
            o->model[o->nmodel++] = v;
        } else if (IS("-o") || IS("--output")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (o->out != NULL)
                return usage_error("-o given more than once");
            o->out = v;
        } else if (IS("--precision")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (strcmp(v, "auto") == 0) o->precision = TAESD_PRECISION_AUTO;
            else if (strcmp(v, "fp32") == 0) o->precision = TAESD_PRECISION_FP32;
            else if (strcmp(v, "fp16") == 0) o->precision = TAESD_PRECISION_FP16;
            else return usage_error("--precision must be auto, fp32 or fp16, not '%s'", v);
        } else if (IS("--variant")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (strcmp(v, "auto") == 0) o->variant = TAESD_VARIANT_AUTO;
            else if (strcmp(v, "taesd") == 0) o->variant = TAESD_VARIANT_TAESD;
            else if (strcmp(v, "taesd3") == 0) o->variant = TAESD_VARIANT_TAESD3;
            else if (strcmp(v, "taef2") == 0) o->variant = TAESD_VARIANT_TAEF2;
            else if (strcmp(v, "taesana") == 0) o->variant = TAESD_VARIANT_TAESANA;
            else return usage_error("--variant must be auto, taesd, taesd3, taef2 or taesana, not '%s'", v);
        } else if (IS("--device")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (parse_int(v, &o->device) != 0)
                return usage_error("--device needs a device number (1, 2, ...), not '%s'", v);
        } else if (IS("--validation") && a[len] == '\0') {
            o->validation = true;
        } else if ((IS("-v") || IS("--verbose")) && a[len] == '\0') {
            o->verbose = true;
        } else if (o->cmd != CMD_INFO && IS("--tile")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (parse_int(v, &o->tile) != 0 || o->tile < 1 || o->tile > MAX_DIM)
                return usage_error("--tile needs a tile size in latent pixels (1 to %d), not '%s'", MAX_DIM, v);
        } else if (o->cmd != CMD_INFO && IS("--max-memory")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (parse_int(v, &o->max_memory_mb) != 0 || o->max_memory_mb < 1 || o->max_memory_mb > (1 << 24))
                return usage_error("--max-memory needs a budget in MiB (1 or more), not '%s'", v);
        } else if ((o->cmd == CMD_DECODE || o->cmd == CMD_ENCODE) && IS("--latent-format")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (taesd_latent_format_parse(v, &o->latent_format) != TAESD_OK)
                return usage_error("--latent-format must be diffusion, sd1-raw, sdxl-raw, sd3-raw, flux1-raw, "
                                   "flux1-packed or flux2-patchified, not '%s'", v);
        } else if (o->cmd == CMD_DECODE && IS("--tensor")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            o->tensor = v;
        } else if (o->cmd == CMD_DECODE && IS("--shape")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (parse_shape(v, o->shape, &o->nshape) != 0)
                return usage_error("decode: --shape needs C,H,W or H,W (positive numbers), not '%s'", v);
        } else if (o->cmd == CMD_BENCH && IS("--size")) {
            char tail;
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (sscanf(v, "%dx%d%c", &o->size_w, &o->size_h, &tail) != 2 || o->size_w < 1 || o->size_h < 1 ||
                o->size_w > 65536 || o->size_h > 65536)
                return usage_error("bench: --size needs WxH in pixels, e.g. 512x512, not '%s'", v);
        } else if (o->cmd == CMD_BENCH && IS("--part")) {
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (strcmp(v, "decoder") == 0) o->part = TAESD_PART_DECODER;
            else if (strcmp(v, "encoder") == 0) o->part = TAESD_PART_ENCODER;
            else return usage_error("bench: --part must be decoder or encoder, not '%s'", v);
        } else if (o->cmd == CMD_BENCH && (IS("--runs") || IS("--warmup"))) {
            bool runs = IS("--runs");
            int n;
            if ((v = option_value(argc, argv, &i, a, len)) == NULL)
                return EXIT_USAGE;
            if (parse_int(v, &n) != 0 || n < (runs ? 1 : 0) || n > 100000)
                return usage_error("bench: %s needs a count, not '%s'", runs ? "--runs" : "--warmup", v);
            *(runs ? &o->runs : &o->warmup) = n;
        } else if (o->cmd == CMD_BENCH && IS("--layers") && a[len] == '\0') {
            o->layers = true;
        } else if (o->cmd == CMD_BENCH && IS("--json") && a[len] == '\0') {
            o->json = true;
        } else {
            return usage_error("%s: unknown option '%s'", o->cmd_name, a);
        }
#undef IS
    }

    if (o->nmodel == 0)
        return usage_error("%s: missing -m WEIGHTS", o->cmd_name);
    if (o->cmd == CMD_INFO || o->cmd == CMD_BENCH) {
        if (o->in != NULL)
            return usage_error("%s: unexpected argument '%s'", o->cmd_name, o->in);
        if (o->out != NULL)
            return usage_error("%s takes no -o", o->cmd_name);
        if (o->cmd == CMD_BENCH && o->size_w == 0)
            return usage_error("bench: missing --size WxH");
        return -1;
    }
    if (o->in == NULL)
        return usage_error("%s: missing input file", o->cmd_name);
    if (o->out == NULL)
        return usage_error("%s: missing -o OUT", o->cmd_name);
    if (o->cmd == CMD_DECODE) {
        if (!is_npy(o->in) && !is_png(o->in) && !is_safetensors(o->in) && !is_raw(o->in))
            return usage_error("decode: input '%s' must be .npy, .safetensors, .raw/.f32/.bin or .png", o->in);
    } else if (!is_npy(o->in) && !is_image(o->in)) {
        return usage_error("%s: input '%s' must be .png, .jpg, .jpeg or .npy", o->cmd_name, o->in);
    }
    if (!is_npy(o->out) && !is_png(o->out))
        return usage_error("%s: output '%s' must be .png or .npy", o->cmd_name, o->out);
    return check_latent_options(o);
}

/* ---- inputs ----------------------------------------------------------------------------------------------- */

/* A CHW float tensor owned by the CLI. */
typedef struct tensor {
    float *data;
    int c, h, w;
} tensor;

/* Reads a .npy of shape (1,C,H,W) or (C,H,W). `what`: "latent" or "image" for messages. */
static int read_npy_chw(const char *path, const char *what, tensor *t)
{
    npy_array a;
    char err[256];
    const int64_t *s;
    memset(&a, 0, sizeof a);
    if (npy_read_file(path, &a, err, sizeof err) != 0)
        return fail("%s: %s", path, err);
    if (a.ndim == 4 && a.shape[0] != 1) {
        int64_t n = a.shape[0];
        npy_free(&a);
        return fail("%s: batch of %lld; only one %s (N=1) is supported", path, (long long)n, what);
    }
    if (a.ndim != 4 && a.ndim != 3) {
        npy_free(&a);
        return fail("%s: %s must have shape (1,C,H,W) or (C,H,W), got %d dimensions", path, what, a.ndim);
    }
    s = a.shape + (a.ndim - 3);
    if (s[0] < 1 || s[0] > 1024 || s[1] < 1 || s[1] > MAX_DIM || s[2] < 1 || s[2] > MAX_DIM) {
        long long c = (long long)s[0], h = (long long)s[1], w = (long long)s[2];
        npy_free(&a);
        return fail("%s: %s shape %lldx%lldx%lld is out of range", path, what, c, h, w);
    }
    t->c = (int)s[0];
    t->h = (int)s[1];
    t->w = (int)s[2];
    t->data = a.data;           /* ownership moves to t */
    return 0;
}

/* Reads an 8-bit latent PNG (RGBA: 4 channels, RGB: 3) and undoes x/6 + 0.5. */
static int read_latent_png(const char *path, tensor *t)
{
    char err[256];
    int w = 0, h = 0, fc = 0;
    float *px = NULL;
    size_t n;
    if (image_read_file(path, 4, &px, &w, &h, &fc, err, sizeof err) != 0)
        return fail("%s: %s", path, err);
    if (fc != 3 && fc != 4) {
        free(px);
        return fail("%s: a latent PNG must be RGB or RGBA, this one has %d channel%s", path, fc, fc == 1 ? "" : "s");
    }
    if (w > MAX_DIM || h > MAX_DIM) {
        free(px);
        return fail("%s: latent size %dx%d is out of range", path, h, w);
    }
    n = (size_t)fc * (size_t)w * (size_t)h;      /* RGB: the first three planes; the alpha plane is dropped */
    for (size_t i = 0; i < n; i++)
        px[i] = (px[i] - LATENT_PNG_OFFSET) / LATENT_PNG_SCALE;
    t->data = px;
    t->c = fc;
    t->h = h;
    t->w = w;
    return 0;
}

/* An input array as read from a file, before it is interpreted as a latent. */
typedef struct array_in {
    float *data;
    int ndim;
    int64_t shape[4];
} array_in;

/* One tensor of a .safetensors file (by name, else the first of its header) as float32. */
static int read_safetensors_array(const char *path, const char *name, array_in *a)
{
    tt_table t;
    char err[256];
    const tt_tensor *x;
    if (tt_load_file(path, &t, err, sizeof err) != 0)
        return fail("%s: %s", path, err);
    x = name != NULL ? tt_find(&t, name) : (t.count > 0 ? &t.tensors[0] : NULL);
    if (x == NULL) {
        tt_free(&t);
        return name != NULL ? fail("%s: no tensor named '%s'", path, name) : fail("%s: holds no tensor", path);
    }
    if (x->ndim < 1 || x->numel < 1) {
        tt_free(&t);
        return fail("%s: tensor '%s' is empty or a scalar", path, x->name);
    }
    a->data = malloc(sizeof(float) * (size_t)x->numel);
    if (a->data == NULL) {
        tt_free(&t);
        return fail("%s: out of memory", path);
    }
    for (int64_t i = 0; i < x->numel; i++)
        a->data[i] = tt_get(x, i);
    a->ndim = x->ndim;
    memcpy(a->shape, x->shape, sizeof a->shape);
    tt_free(&t);
    return 0;
}

/* A raw little-endian float32 file; its size must match --shape exactly. flux1-packed (--shape H,W): the file
 * holds H/2*W/2 tokens, the token width follows from the size. */
static int read_raw_array(const char *path, const options *o, array_in *a)
{
    uint8_t *bytes = NULL;
    size_t size = 0;
    char err[256];
    if (file_read_all(path, (size_t)1 << 31, &bytes, &size, err, sizeof err) != 0)
        return fail("%s: %s", path, err);
    if (o->latent_format == TAESD_LATENT_FLUX1_PACKED) {
        uint64_t tokens = (uint64_t)(o->shape[0] / 2) * (uint64_t)(o->shape[1] / 2);
        if (o->shape[0] % 2 != 0 || o->shape[1] % 2 != 0 || size % (tokens * 4u * sizeof(float)) != 0 || size == 0) {
            free(bytes);
            return fail("%s: %zu bytes are not %llu tokens of 4*C float32 values (--shape %d,%d)", path, size,
                        (unsigned long long)tokens, o->shape[0], o->shape[1]);
        }
        a->ndim = 2;
        a->shape[0] = (int64_t)tokens;
        a->shape[1] = (int64_t)(size / sizeof(float) / tokens);
    } else {
        uint64_t want = (uint64_t)o->shape[0] * (uint64_t)o->shape[1] * (uint64_t)o->shape[2] * sizeof(float);
        if ((uint64_t)size != want) {
            free(bytes);
            return fail("%s: %zu bytes, but --shape %d,%d,%d needs %llu (float32)", path, size, o->shape[0],
                        o->shape[1], o->shape[2], (unsigned long long)want);
        }
        a->ndim = 3;
        for (int i = 0; i < 3; i++)
            a->shape[i] = o->shape[i];
    }
    a->data = malloc(size);
    if (a->data == NULL) {
        free(bytes);
        return fail("%s: out of memory", path);
    }
    memcpy(a->data, bytes, size);
    free(bytes);
    return 0;
}

/* Reads a decode input (.npy, .safetensors, raw) in --latent-format and converts it to a diffusion-space latent. */
static int read_latent(const char *path, const options *o, tensor *t)
{
    array_in a;
    char err[256];
    int rc, c, h, w, dc, dh, dw;
    const int64_t *s;
    taesd_latent_format f = o->latent_format;
    const char *fmt = taesd_latent_format_name(f);
    memset(&a, 0, sizeof a);
    if (is_npy(path)) {
        npy_array n;
        memset(&n, 0, sizeof n);
        if (npy_read_file(path, &n, err, sizeof err) != 0)
            return fail("%s: %s", path, err);
        a.data = n.data;
        a.ndim = n.ndim;
        memcpy(a.shape, n.shape, sizeof a.shape);
        rc = 0;
    } else if (is_safetensors(path)) {
        rc = read_safetensors_array(path, o->tensor, &a);
    } else {
        rc = read_raw_array(path, o, &a);
    }
    if (rc != 0)
        return rc;

    if (f == TAESD_LATENT_FLUX1_PACKED) {       /* (1,N,D) or (N,D) tokens */
        int64_t n, d, th, tw;
        if (!(a.ndim == 2 || (a.ndim == 3 && a.shape[0] == 1))) {
            free(a.data);
            return fail("%s: flux1-packed tokens must have shape (1,N,D) or (N,D), got %d dimensions", path, a.ndim);
        }
        n = a.shape[a.ndim - 2];
        d = a.shape[a.ndim - 1];
        if (o->nshape == 2) {
            th = o->shape[0] / 2;
            tw = o->shape[1] / 2;
            if (o->shape[0] % 2 != 0 || o->shape[1] % 2 != 0 || th * tw != n) {
                free(a.data);
                return fail("%s: %lld tokens do not fill a %dx%d latent (needs even sizes, H/2*W/2 tokens)", path,
                            (long long)n, o->shape[0], o->shape[1]);
            }
        } else {
            th = (int64_t)llround(sqrt((double)n));
            if (th * th != n) {
                free(a.data);
                return fail("%s: %lld tokens are not a square grid; give --shape H,W", path, (long long)n);
            }
            tw = th;
        }
        if (d < 4 || d > 4096 || th > MAX_DIM || tw > MAX_DIM) {
            free(a.data);
            return fail("%s: flux1-packed shape %lldx%lld is out of range", path, (long long)n, (long long)d);
        }
        c = (int)d;
        h = (int)th;
        w = (int)tw;
    } else {                                    /* (1,C,H,W) or (C,H,W) */
        if (a.ndim == 4 && a.shape[0] != 1) {
            long long b = (long long)a.shape[0];
            free(a.data);
            return fail("%s: batch of %lld; only one latent (N=1) is supported", path, b);
        }
        if (a.ndim != 4 && a.ndim != 3) {
            free(a.data);
            return fail("%s: latent must have shape (1,C,H,W) or (C,H,W), got %d dimensions", path, a.ndim);
        }
        s = a.shape + (a.ndim - 3);
        if (s[0] < 1 || s[0] > 1024 || s[1] < 1 || s[1] > MAX_DIM || s[2] < 1 || s[2] > MAX_DIM) {
            long long sc = (long long)s[0], sh = (long long)s[1], sw = (long long)s[2];
            free(a.data);
            return fail("%s: latent shape %lldx%lldx%lld is out of range", path, sc, sh, sw);
        }
        c = (int)s[0];
        h = (int)s[1];
        w = (int)s[2];
        if (o->nshape == 3 && (o->shape[0] != c || o->shape[1] != h || o->shape[2] != w)) {
            free(a.data);
            return fail("%s: latent shape %dx%dx%d differs from --shape %d,%d,%d", path, c, h, w, o->shape[0],
                        o->shape[1], o->shape[2]);
        }
    }
    if (taesd_latent_shape(f, true, c, h, w, &dc, &dh, &dw) != TAESD_OK) {
        free(a.data);
        return fail("%s: shape %dx%dx%d does not fit --latent-format %s (channels must be a multiple of 4)", path, c,
                    h, w, fmt);
    }
    t->data = malloc(sizeof(float) * (size_t)dc * (size_t)dh * (size_t)dw);
    if (t->data == NULL) {
        free(a.data);
        return fail("%s: out of memory", path);
    }
    taesd_latent_to_diffusion(f, a.data, c, h, w, t->data);
    free(a.data);
    t->c = dc;
    t->h = dh;
    t->w = dw;
    return 0;
}

static int read_image(const char *path, tensor *t)
{
    char err[256];
    int fc = 0;
    if (is_npy(path)) {
        int rc = read_npy_chw(path, "image", t);
        if (rc == 0 && t->c != 3) {
            int c = t->c;
            free(t->data);
            t->data = NULL;
            return fail("%s: image has %d channels, expected 3", path, c);
        }
        return rc;
    }
    if (image_read_file(path, 3, &t->data, &t->w, &t->h, &fc, err, sizeof err) != 0)
        return fail("%s: %s", path, err);
    t->c = 3;
    return 0;
}

/* ---- the run ---------------------------------------------------------------------------------------------- */

typedef struct session {
    const options *o;
    log_state log;
    taesd_context *ctx;
    taesd_model *model;
    taesd_model_info info;
} session;

/* "PATH" or "PATH, PATH2": the weights file(s) concerned. */
static void models_label(const options *o, char *buf, size_t len)
{
    if (o->nmodel == 2)
        snprintf(buf, len, "%s, %s", o->model[0], o->model[1]);
    else
        snprintf(buf, len, "%s", o->model[0]);
}

static int open_session(session *s)
{
    const options *o = s->o;
    taesd_context_desc cd;
    taesd_model_desc md;
    taesd_result r;

    memset(&cd, 0, sizeof cd);
    cd.device_index = o->device;
    cd.enable_validation = o->validation;
    cd.log = log_cb;
    cd.log_user = &s->log;
    r = taesd_context_create(&cd, &s->ctx);
    if (r != TAESD_OK) {
        s->ctx = NULL;
        return fail("Vulkan: %s", s->log.last[0] ? s->log.last : taesd_result_string(r));
    }

    memset(&md, 0, sizeof md);
    md.path = o->model[0];
    md.path2 = o->nmodel == 2 ? o->model[1] : NULL;
    md.variant = o->variant;
    md.precision = o->precision;
    md.profile = o->layers;
    md.tile = o->tile;
    md.max_memory = (uint64_t)o->max_memory_mb << 20;
    r = taesd_model_load(s->ctx, &md, &s->model);
    if (r != TAESD_OK) {
        const char *e = taesd_context_last_error(s->ctx);
        s->model = NULL;
        if (e == NULL || e[0] == '\0')
            e = taesd_result_string(r);
        /* The library's load errors read "PATH: problem"; name the file(s) ourselves if one does not. */
        if (strstr(e, o->model[0]) != NULL || (md.path2 != NULL && strstr(e, md.path2) != NULL))
            return fail("%s", e);
        char label[1024];
        models_label(o, label, sizeof label);
        return fail("%s: %s", label, e);
    }
    taesd_model_get_info(s->model, &s->info);
    return 0;
}

static int need_parts(const session *s, bool encoder, bool decoder)
{
    char label[1024];
    const char *has = s->info.has_encoder ? "an encoder" : s->info.has_decoder ? "a decoder" : "nothing";
    models_label(s->o, label, sizeof label);
    if (encoder && !s->info.has_encoder)
        return fail("%s: no encoder in the weights (they hold %s only)", label, has);
    if (decoder && !s->info.has_decoder)
        return fail("%s: no decoder in the weights (they hold %s only)", label, has);
    return 0;
}

static void close_session(session *s)
{
    if (s->model != NULL)
        taesd_model_destroy(s->model);
    s->model = NULL;
    if (s->ctx != NULL)
        taesd_context_destroy(s->ctx);
    s->ctx = NULL;
}

/* Reports an encode/decode failure against the input file. */
static int run_error(const session *s, taesd_result r, const char *in)
{
    const char *e;
    if (r == TAESD_ERROR_NOT_FINITE)
        return fail("%s: input holds NaN or Inf", in);
    e = taesd_context_last_error(s->ctx);
    return fail("%s: %s", in, e != NULL && e[0] != '\0' ? e : taesd_result_string(r));
}

static int do_decode_latent(session *s, const tensor *lat, const char *in, tensor *rgb)
{
    int oh = 0, ow = 0;
    taesd_result r;
    double t0;
    if (lat->c != s->info.latent_channels)
        return fail("%s: latent has %d channels, model expects %d", in, lat->c, s->info.latent_channels);
    if (!taesd_output_size(s->model, TAESD_PART_DECODER, lat->h, lat->w, &oh, &ow) || oh <= 0 || ow <= 0)
        return fail("%s: latent size %dx%d is not supported", in, lat->h, lat->w);
    rgb->data = malloc(sizeof(float) * 3 * (size_t)oh * (size_t)ow);
    if (rgb->data == NULL)
        return fail("%s: out of memory for a %dx%d image", in, oh, ow);
    rgb->c = 3;
    rgb->h = oh;
    rgb->w = ow;
    t0 = now_s();
    r = taesd_decode(s->model, lat->data, lat->c, lat->h, lat->w, rgb->data);
    if (r != TAESD_OK)
        return run_error(s, r, in);
    if (s->o->verbose)
        fprintf(stderr, "taesd: decoded %dx%dx%d -> 3x%dx%d in %.3f s\n", lat->c, lat->h, lat->w, oh, ow,
                now_s() - t0);
    return 0;
}

static int do_encode_image(session *s, const tensor *img, const char *in, tensor *lat)
{
    int lh = 0, lw = 0;
    taesd_result r;
    double t0;
    if (!taesd_output_size(s->model, TAESD_PART_ENCODER, img->h, img->w, &lh, &lw) || lh <= 0 || lw <= 0)
        return fail("%s: image size %dx%d is not supported", in, img->h, img->w);
    lat->c = s->info.latent_channels;
    lat->h = lh;
    lat->w = lw;
    lat->data = malloc(sizeof(float) * (size_t)lat->c * (size_t)lh * (size_t)lw);
    if (lat->data == NULL)
        return fail("%s: out of memory for a %dx%dx%d latent", in, lat->c, lh, lw);
    t0 = now_s();
    r = taesd_encode(s->model, img->data, img->h, img->w, lat->data);
    if (r != TAESD_OK)
        return run_error(s, r, in);
    if (s->o->verbose)
        fprintf(stderr, "taesd: encoded 3x%dx%d -> %dx%dx%d in %.3f s\n", img->h, img->w, lat->c, lh, lw,
                now_s() - t0);
    return 0;
}

/* Writes a CHW tensor: .npy as raw float32 (1,C,H,W); .png as an image (RGB, or a latent PNG). */
static int write_output(const char *out, const tensor *t, bool latent)
{
    char err[256];
    int rc;
    if (is_npy(out)) {
        int64_t shape[4] = { 1, t->c, t->h, t->w };
        rc = npy_write_file(out, t->data, 4, shape, err, sizeof err);
    } else if (latent) {
        rc = image_write_png(out, t->data, t->c, t->w, t->h, LATENT_PNG_SCALE, LATENT_PNG_OFFSET, err, sizeof err);
    } else {
        rc = image_write_png(out, t->data, 3, t->w, t->h, 1.0f, 0.0f, err, sizeof err);
    }
    return rc != 0 ? fail("%s: %s", out, err) : 0;
}

/* Encode output in --latent-format (.npy): CHW formats as (1,C,H,W), flux1-packed tokens as (1,N,D). */
static int write_latent_formatted(const options *o, const tensor *lat)
{
    char err[256];
    int c, h, w, rc;
    float *buf;
    taesd_latent_format f = o->latent_format;
    if (taesd_latent_shape(f, false, lat->c, lat->h, lat->w, &c, &h, &w) != TAESD_OK)
        return fail("%s: --latent-format %s needs an even latent height and width; this image gives %dx%d", o->in,
                    taesd_latent_format_name(f), lat->h, lat->w);
    buf = malloc(sizeof(float) * (size_t)c * (size_t)h * (size_t)w);
    if (buf == NULL)
        return fail("%s: out of memory", o->out);
    taesd_latent_from_diffusion(f, lat->data, lat->c, lat->h, lat->w, buf);
    if (f == TAESD_LATENT_FLUX1_PACKED) {
        int64_t shape[3] = { 1, (int64_t)h * w, c };
        rc = npy_write_file(o->out, buf, 3, shape, err, sizeof err);
    } else {
        int64_t shape[4] = { 1, c, h, w };
        rc = npy_write_file(o->out, buf, 4, shape, err, sizeof err);
    }
    free(buf);
    return rc != 0 ? fail("%s: %s", o->out, err) : 0;
}

/* With validation on, any validation message fails the run; checked before an output is written and at exit. */
static int check_validation(const session *s)
{
    uint32_t n = s->ctx != NULL ? taesd_context_validation_messages(s->ctx) : 0;
    return n > 0 ? fail("%u Vulkan validation message%s", n, n == 1 ? "" : "s") : 0;
}

static int cmd_run(session *s)
{
    const options *o = s->o;
    tensor in = { 0 }, mid = { 0 }, res = { 0 };
    int rc;

    if (o->cmd == CMD_DECODE)
        rc = is_png(o->in) ? read_latent_png(o->in, &in) : read_latent(o->in, o, &in);
    else
        rc = read_image(o->in, &in);
    if (rc != 0)
        goto done;
    if ((rc = open_session(s)) != 0)
        goto done;
    if ((rc = need_parts(s, o->cmd != CMD_DECODE, o->cmd != CMD_ENCODE)) != 0)
        goto done;

    if (o->cmd == CMD_DECODE) {
        if ((rc = do_decode_latent(s, &in, o->in, &res)) != 0)
            goto done;
    } else if (o->cmd == CMD_ENCODE) {
        if (is_png(o->out) && s->info.latent_channels != 4) {
            rc = fail("%s: latent PNG needs 4 channels, model has %d", o->out, s->info.latent_channels);
            goto done;
        }
        if ((rc = do_encode_image(s, &in, o->in, &res)) != 0)
            goto done;
        if (o->latent_format != TAESD_LATENT_DIFFUSION) {
            if ((rc = check_validation(s)) == 0)
                rc = write_latent_formatted(o, &res);
            goto done;
        }
    } else {
        if ((rc = do_encode_image(s, &in, o->in, &mid)) != 0)
            goto done;
        if ((rc = do_decode_latent(s, &mid, o->in, &res)) != 0)
            goto done;
    }
    if ((rc = check_validation(s)) == 0)
        rc = write_output(o->out, &res, o->cmd == CMD_ENCODE);

done:
    free(in.data);
    free(mid.data);
    free(res.data);
    return rc;
}

static int cmd_info(session *s)
{
    const options *o = s->o;
    const taesd_model_info *mi = &s->info;
    taesd_device_info dev;
    int rc = open_session(s);
    if (rc != 0)
        return rc;
    memset(&dev, 0, sizeof dev);
    taesd_context_device_info(s->ctx, &dev);

    printf("file:            %s\n", o->model[0]);
    if (o->nmodel == 2)
        printf("file 2:          %s\n", o->model[1]);
    printf("variant:         %s\n", mi->variant_name ? mi->variant_name : taesd_variant_name(mi->variant));
    printf("parts:           %s\n", mi->has_encoder && mi->has_decoder ? "encoder, decoder"
                                    : mi->has_encoder ? "encoder" : mi->has_decoder ? "decoder" : "none");
    printf("latent channels: %d\n", mi->latent_channels);
    printf("spatial scale:   %d\n", mi->scale);
    if (mi->has_encoder)
        printf("encoder params:  %llu\n", (unsigned long long)mi->encoder_params);
    if (mi->has_decoder)
        printf("decoder params:  %llu\n", (unsigned long long)mi->decoder_params);
    printf("dtype:           %s\n", mi->dtype ? mi->dtype : "?");
    printf("key scheme:      %s\n", mi->key_scheme ? mi->key_scheme : "?");
    if (mi->has_vae_scale) {
        printf("vae_scale:       %g\n", (double)mi->vae_scale);
        printf("vae_shift:       %g\n", (double)mi->vae_shift);
    }
    printf("device:          %s (%s)\n", dev.name, device_type_name(dev.type));
    printf("precision:       %s\n", precision_name(mi->precision));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_bench(session *s)
{
    options *o = (options *)s->o;
    int rc = open_session(s);
    if (rc != 0)
        return rc;
    const taesd_model_info *mi = &s->info;
    taesd_part part = o->part ? (taesd_part)o->part : mi->has_decoder ? TAESD_PART_DECODER : TAESD_PART_ENCODER;
    if ((rc = need_parts(s, part == TAESD_PART_ENCODER, part == TAESD_PART_DECODER)) != 0)
        return rc;
    const bool dec = part == TAESD_PART_DECODER;
    const int scale = mi->scale;
    if (dec && (o->size_w % scale || o->size_h % scale))
        return usage_error("bench: --size %dx%d is not a multiple of the decoder's scale %d", o->size_w, o->size_h,
                           scale);
    /* Input size of the part: a latent for the decoder, the image for the encoder. */
    const int ih = dec ? o->size_h / scale : o->size_h, iw = dec ? o->size_w / scale : o->size_w;
    const int ic = dec ? mi->latent_channels : 3;
    int oh = 0, ow = 0;
    if (!taesd_output_size(s->model, part, ih, iw, &oh, &ow))
        return fail("bench: size %dx%d is not supported", o->size_w, o->size_h);
    const int oc = dec ? 3 : mi->latent_channels;
    const int runs = o->runs ? o->runs : 5, warmup = o->warmup;

    float *in = malloc((size_t)ic * ih * iw * sizeof(float));
    float *out = malloc((size_t)oc * oh * ow * sizeof(float));
    double *t = malloc((size_t)runs * sizeof(double));
    taesd_op_time *ops = NULL;
    int nops = 0;
    if (!in || !out || !t) {
        rc = fail("bench: out of memory");
        goto done;
    }
    /* Deterministic smooth input: latents ~ N(0,1)-sized, images in [0,1]. */
    for (int c = 0; c < ic; c++)
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                float v = sinf(0.11f * (float)x + 0.7f * (float)c) * cosf(0.07f * (float)y - 0.3f * (float)c);
                in[((size_t)c * ih + y) * iw + x] = dec ? 1.5f * v : 0.5f + 0.5f * v;
            }
    taesd_run_cost cost;
    taesd_result r;
#define RUN() (dec ? taesd_decode(s->model, in, ic, ih, iw, out) : taesd_encode(s->model, in, ih, iw, out))
    double t0 = now_s();
    r = RUN();
    const double first_ms = (now_s() - t0) * 1e3;
    if (r != TAESD_OK) {
        rc = run_error(s, r, "bench");
        goto done;
    }
    for (int i = 0; i < warmup && r == TAESD_OK; i++)
        r = RUN();
    for (int i = 0; i < runs && r == TAESD_OK; i++) {
        t0 = now_s();
        r = RUN();
        t[i] = (now_s() - t0) * 1e3;
    }
#undef RUN
    if (r == TAESD_OK)
        r = taesd_model_run_cost(s->model, part, ih, iw, &cost);
    if (r != TAESD_OK) {
        rc = run_error(s, r, "bench");
        goto done;
    }
    if (o->layers) {
        nops = taesd_model_op_times(s->model, part, ih, iw, NULL, 0);
        if (nops > 0 && (ops = calloc((size_t)nops, sizeof *ops)) != NULL)
            nops = taesd_model_op_times(s->model, part, ih, iw, ops, nops);
        if (nops <= 0 || !ops) {
            rc = fail("bench: --layers: no per-op times (the device has no compute timestamps, or the run went in "
                      "tiles)");
            goto done;
        }
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    const double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    const double gflop = cost.flops * 1e-9, mib = 1.0 / (1024.0 * 1024.0);
    taesd_device_info dev;
    taesd_context_device_info(s->ctx, &dev);
    const char *pname = precision_name(mi->precision), *partname = dec ? "decoder" : "encoder";
    if (o->json) {
        printf("{\"variant\": \"%s\", \"part\": \"%s\", \"precision\": \"%s\", \"device\": \"%s\", "
               "\"input\": [%d, %d, %d], \"output\": [%d, %d, %d], \"gflop\": %.3f, \"first_ms\": %.3f, "
               "\"runs\": %d, \"min_ms\": %.3f, \"median_ms\": %.3f, \"max_ms\": %.3f, \"gflops\": %.2f, "
               "\"device_bytes\": %llu, \"weight_bytes\": %llu",
               mi->variant_name, partname, pname, dev.name, ic, ih, iw, oc, oh, ow, gflop, first_ms, runs, t[0], med,
               t[runs - 1], gflop / (med * 1e-3), (unsigned long long)(cost.plan_bytes + cost.weight_bytes),
               (unsigned long long)cost.weight_bytes);
        if (o->layers) {
            printf(", \"layers\": [");
            for (int i = 0; i < nops; i++)
                printf("%s{\"name\": \"%s\", \"kind\": \"%s\", \"cin\": %d, \"cout\": %d, \"out\": [%d, %d], "
                       "\"gflop\": %.4f, \"ms\": %.4f}",
                       i ? ", " : "", ops[i].name, ops[i].kind, ops[i].cin, ops[i].cout, ops[i].out_h, ops[i].out_w,
                       ops[i].flops * 1e-9, ops[i].ms);
            printf("]");
        }
        printf("}\n");
    } else {
        printf("%s %s, %s, %s (%s)\n", mi->variant_name, partname, pname, dev.name, device_type_name(dev.type));
        printf("input %dx%dx%d -> output %dx%dx%d, %.2f GFLOP per run\n", ic, ih, iw, oc, oh, ow, gflop);
        printf("first call (plan build + run): %10.2f ms\n", first_ms);
        printf("steady state, %d runs:          min %.2f ms, median %.2f ms, max %.2f ms\n", runs, t[0], med,
               t[runs - 1]);
        printf("throughput (median):           %.2f GFLOP/s\n", gflop / (med * 1e-3));
        printf("device memory:                 %.1f MiB (weights %.1f MiB, buffers %.1f MiB)\n",
               (double)(cost.plan_bytes + cost.weight_bytes) * mib, (double)cost.weight_bytes * mib,
               (double)cost.plan_bytes * mib);
        if (o->layers) {
            double total = 0;
            for (int i = 0; i < nops; i++)
                total += ops[i].ms;
            printf("\n%-4s %-12s %-9s %9s %11s %9s %10s %6s\n", "op", "name", "kind", "cin>cout", "out", "ms",
                   "GFLOP/s", "share");
            for (int i = 0; i < nops; i++) {
                char io[24], sz[24];
                snprintf(io, sizeof io, "%d>%d", ops[i].cin, ops[i].cout);
                snprintf(sz, sizeof sz, "%dx%d", ops[i].out_w, ops[i].out_h);
                printf("%-4d %-12s %-9s %9s %11s %9.3f %10.2f %5.1f%%\n", i, ops[i].name, ops[i].kind, io, sz,
                       ops[i].ms, ops[i].ms > 0 ? ops[i].flops * 1e-6 / ops[i].ms : 0.0,
                       total > 0 ? 100.0 * ops[i].ms / total : 0.0);
            }
            printf("GPU total %.2f ms\n", total);
        }
    }
done:
    free(in);
    free(out);
    free(t);
    free(ops);
    return rc;
}

static int list_devices(void)
{
    taesd_device_info devs[MAX_DEVICES];
    int count = MAX_DEVICES;
    taesd_result r;
    memset(devs, 0, sizeof devs);
    r = taesd_list_devices(devs, &count);
    if (r != TAESD_OK)
        return fail("Vulkan: %s", taesd_result_string(r));
    if (count <= 0)
        return fail("Vulkan: no device found");
    for (int i = 0; i < count && i < MAX_DEVICES; i++) {
        const taesd_device_info *d = &devs[i];
        printf("%d: %s  type=%s  api=%u.%u.%u  fp16=%s\n", i + 1, d->name, device_type_name(d->type),
               (d->api_version >> 22) & 0x7Fu, (d->api_version >> 12) & 0x3FFu, d->api_version & 0xFFFu,
               d->fp16 ? "yes" : "no");
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    session s;
    int rc;
    const char *c;

    memset(&o, 0, sizeof o);
    if (argc < 2)
        return usage_error("no command given");
    c = argv[1];
    if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0 || strcmp(c, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0) {
        printf("taesd %s\n", TAESD_VERSION);
        return 0;
    }
    if (strcmp(c, "--list-devices") == 0) {
        if (argc > 2)
            return usage_error("--list-devices takes no arguments");
        return list_devices();
    }
    if (strcmp(c, "decode") == 0) o.cmd = CMD_DECODE;
    else if (strcmp(c, "encode") == 0) o.cmd = CMD_ENCODE;
    else if (strcmp(c, "roundtrip") == 0) o.cmd = CMD_ROUNDTRIP;
    else if (strcmp(c, "info") == 0) o.cmd = CMD_INFO;
    else if (strcmp(c, "bench") == 0) o.cmd = CMD_BENCH;
    else if (c[0] == '-') return usage_error("unknown option '%s'", c);
    else return usage_error("unknown command '%s'", c);
    o.cmd_name = c;

    rc = parse_command_args(argc, argv, 2, &o);
    if (rc >= 0)
        return rc;
    if (env_flag("TAESD_VALIDATION"))
        o.validation = true;

    memset(&s, 0, sizeof s);
    s.o = &o;
    s.log.print = o.verbose || o.validation;
    s.log.info = o.verbose;
    rc = o.cmd == CMD_INFO ? cmd_info(&s) : o.cmd == CMD_BENCH ? cmd_bench(&s) : cmd_run(&s);

    if (rc == 0)
        rc = check_validation(&s);
    close_session(&s);
    if (rc == 0 && fflush(stdout) != 0)
        rc = fail("stdout: write error");
    return rc;
}
