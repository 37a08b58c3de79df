/* taesd_view.c — taesd-view: a window showing diffusion latents as they arrive, decoded on the GPU by libtaesd.
 *
 * One thread reads latents (latent_source.c) and keeps only the newest; the window thread takes it, records its
 * decode into the next frame's command buffer ahead of the blit to the swapchain (gpu.c), and presents. A latent
 * that arrives is therefore on screen at the next present. Frames are presented when something changed (a new
 * latent, a resize, a key), not continuously. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "latent_source.h"

#include "io/image.h"

#ifndef TAESD_VERSION
#define TAESD_VERSION "unknown"
#endif

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct options {
    const char *model[2];
    int nmodel;
    latent_source_kind kind;
    bool have_source;
    const char *path;                  /* --fifo / --watch path */
    const char *demo_image;
    taesd_latent_format latent_format;
    int packed_h, packed_w;
    int width, height;
    long frames;                       /* 0: run until closed */
    const char *screenshot;
    int device;
    taesd_precision precision;
    bool validation;
    bool verbose;
    bool srgb;
    int demo_steps;
    double demo_rate;                  /* steps per second; 0: one per frame */
} options;

static const char *usage_text =
    "usage: taesd-view -m DECODER (--stdin | --fifo PATH | --watch FILE) [options]\n"
    "       taesd-view --demo IMAGE -m ENCODER -m DECODER [options]   (or -m one file with both)\n"
    "\n"
    "Shows latents decoded by TAESD in a window, as they arrive.\n"
    "\n"
    "sources:\n"
    "  --stdin              a stream of .npy arrays (float32/float16; (1,C,H,W) or (C,H,W)) one after another, as\n"
    "                       numpy.save(sys.stdout.buffer, latent) writes them; the newest wins\n"
    "  --fifo PATH          the same from a named pipe (waits for the next writer after one closes)\n"
    "  --watch FILE         re-decode whenever the .npy FILE is replaced (write a temp file, then rename)\n"
    "  --demo IMAGE         encode IMAGE and play noise fading into its latent, looping\n"
    "options:\n"
    "  -m FILE              weights (.pth / .safetensors); --demo needs an encoder too: -m twice or one file\n"
    "  --latent-format F    layout of the arrays: diffusion (default), sd1-raw, sdxl-raw, sd3-raw, flux1-raw,\n"
    "                       flux1-packed, flux2-patchified (see docs/latent-formats.md)\n"
    "  --shape H,W          flux1-packed: the latent's H,W (default: a square token grid)\n"
    "  --size WxH           window client size (default 640x640)\n"
    "  --frames N           exit after N presented frames showing a latent; with --stdin/--fifo, a stream still\n"
    "                       being read out is shown up to its newest latent first (5 s at most), and the end\n"
    "                       of the stream ends the run once its last latent is on screen\n"
    "  --screenshot OUT.png at exit, save the last presented frame, read back from the swapchain image\n"
    "  --device N           Vulkan device (1-based, as `taesd --list-devices`); default: the best that can present\n"
    "  --precision P        auto (default), fp32, fp16\n"
    "  --validation         VK_LAYER_KHRONOS_validation; any message makes the exit status 1 (TAESD_VALIDATION=1\n"
    "                       too)\n"
    "  -v, --verbose        device, swapchain and present mode at start, each new window title, and frames, fps\n"
    "                       and decode times at exit\n"
    "  --srgb               prefer an _SRGB swapchain format to a UNORM one (the colours stay the same; for tests)\n"
    "  --demo-steps N       steps from noise to the image (default 30)\n"
    "  --demo-rate R        demo steps per second (default 10; 0: one per frame, as fast as decoding allows)\n"
    "keys: S save the decoded image as PNG, F fit / 1:1, Space pause, Q or Esc quit\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("taesd-view: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (taesd-view --help for usage)\n", stderr);
    return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("taesd-view: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_pair(const char *s, char sep, int *a, int *b)
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    char *m = strchr(buf, sep);
    if (!m)
        return false;
    *m = 0;
    long x, y;
    if (!parse_int(buf, 1, 16384, &x) || !parse_int(m + 1, 1, 16384, &y))
        return false;
    *a = (int)x;
    *b = (int)y;
    return true;
}

/* -1: go on; else the exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->width = o->height = 640;
    o->demo_steps = 30;
    o->demo_rate = 10;
    int nsrc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE()                                                                                                \
    do {                                                                                                             \
        if (!v)                                                                                                      \
            return usage_error("%s needs a value", a);                                                              \
        i++;                                                                                                         \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("taesd-view %s\n", TAESD_VERSION);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEEDS_VALUE();
            if (o->nmodel == 2)
                return usage_error("-m given more than twice");
            o->model[o->nmodel++] = v;
        } else if (!strcmp(a, "--stdin")) {
            o->kind = SOURCE_STDIN;
            nsrc++;
        } else if (!strcmp(a, "--fifo") || !strcmp(a, "--watch")) {
            NEEDS_VALUE();
            o->kind = a[2] == 'f' ? SOURCE_FIFO : SOURCE_WATCH;
            o->path = v;
            nsrc++;
        } else if (!strcmp(a, "--demo")) {
            NEEDS_VALUE();
            o->demo_image = v;
            nsrc++;
        } else if (!strcmp(a, "--latent-format")) {
            NEEDS_VALUE();
            if (taesd_latent_format_parse(v, &o->latent_format) != TAESD_OK)
                return usage_error("--latent-format must be diffusion, sd1-raw, sdxl-raw, sd3-raw, flux1-raw, "
                                   "flux1-packed or flux2-patchified, not '%s'", v);
        } else if (!strcmp(a, "--shape")) {
            NEEDS_VALUE();
            if (!parse_pair(v, ',', &o->packed_h, &o->packed_w) || o->packed_h % 2 || o->packed_w % 2)
                return usage_error("--shape takes H,W (even, positive), not '%s'", v);
        } else if (!strcmp(a, "--size")) {
            NEEDS_VALUE();
            if (!parse_pair(v, 'x', &o->width, &o->height))
                return usage_error("--size takes WxH (e.g. 512x512), not '%s'", v);
        } else if (!strcmp(a, "--frames")) {
            NEEDS_VALUE();
            if (!parse_int(v, 1, 1L << 30, &o->frames))
                return usage_error("--frames takes a positive number, not '%s'", v);
        } else if (!strcmp(a, "--screenshot")) {
            NEEDS_VALUE();
            o->screenshot = v;
        } else if (!strcmp(a, "--device")) {
            NEEDS_VALUE();
            long d;
            if (!parse_int(v, 1, 64, &d))
                return usage_error("--device takes a device number (1, 2, ...), not '%s'", v);
            o->device = (int)d;
        } else if (!strcmp(a, "--precision")) {
            NEEDS_VALUE();
            if (!strcmp(v, "auto"))
                o->precision = TAESD_PRECISION_AUTO;
            else if (!strcmp(v, "fp32"))
                o->precision = TAESD_PRECISION_FP32;
            else if (!strcmp(v, "fp16"))
                o->precision = TAESD_PRECISION_FP16;
            else
                return usage_error("--precision must be auto, fp32 or fp16, not '%s'", v);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = true;
        } else if (!strcmp(a, "--srgb")) {
            o->srgb = true;
        } else if (!strcmp(a, "--validation")) {
            o->validation = true;
        } else if (!strcmp(a, "--demo-steps")) {
            NEEDS_VALUE();
            long n;
            if (!parse_int(v, 2, 10000, &n))
                return usage_error("--demo-steps takes a number from 2 to 10000, not '%s'", v);
            o->demo_steps = (int)n;
        } else if (!strcmp(a, "--demo-rate")) {
            NEEDS_VALUE();
            char *end;
            o->demo_rate = strtod(v, &end);
            if (end == v || *end || !(o->demo_rate >= 0) || o->demo_rate > 1e4)
                return usage_error("--demo-rate takes steps per second (0: one per frame), not '%s'", v);
        } else {
            return usage_error("unknown argument '%s'", a);
        }
#undef NEEDS_VALUE
    }
    if (nsrc == 0)
        return usage_error("no latent source: give --stdin, --fifo PATH, --watch FILE or --demo IMAGE");
    if (nsrc > 1)
        return usage_error("give one latent source (--stdin, --fifo, --watch or --demo), not %d", nsrc);
    if (o->nmodel == 0)
        return usage_error("no weights: give -m DECODER%s", o->demo_image ? " (and the encoder)" : "");
    if (o->packed_h && o->latent_format != TAESD_LATENT_FLUX1_PACKED)
        return usage_error("--shape is for --latent-format flux1-packed only");
    if (o->demo_image && o->latent_format != TAESD_LATENT_DIFFUSION)
        return usage_error("--latent-format applies to streamed latents, not to --demo");
    o->have_source = true;
    const char *env = getenv("TAESD_VALIDATION");
    if (env && *env && strcmp(env, "0") != 0)
        o->validation = true;
    return -1;
}

/* ---- demo: noise fading into an image's latent -------------------------------------------------------------- */

typedef struct demo {
    float *target, *noise;
    int c, h, w;
    size_t n;
    int step, steps, hold;
    uint64_t rng;
    double rate, next_time;
} demo;

static double demo_uniform(demo *d)
{
    /* xorshift64*: a fixed seed gives the same trajectory on every run and machine. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return ((double)((d->rng * 0x2545F4914F6CDD1DULL) >> 11) + 0.5) / 9007199254740992.0;
}

static void demo_new_noise(demo *d)
{
    for (size_t i = 0; i < d->n; i += 2) {
        double r = sqrt(-2.0 * log(demo_uniform(d))), t = 2.0 * M_PI * demo_uniform(d);
        d->noise[i] = (float)(r * cos(t));
        if (i + 1 < d->n)
            d->noise[i + 1] = (float)(r * sin(t));
    }
}

/* The next step's latent, when one is due: x = (1 − a)·noise + a·latent, a rising linearly to 1 over `steps`,
 * then the image held for a third of a loop, then new noise. */
static int demo_next(demo *d, double now, latent_frame *out)
{
    if (d->rate > 0 && now < d->next_time)
        return 0;
    if (d->step >= d->steps + d->hold) {
        d->step = 0;
        demo_new_noise(d);
    }
    int s = d->step++;
    d->next_time = (d->rate > 0 ? (d->next_time > 0 && now - d->next_time < 1.0 ? d->next_time : now) : now) +
                   (d->rate > 0 ? 1.0 / d->rate : 0);
    if (s >= d->steps)
        return 0;                      /* holding: the last latent stays on screen */
    memset(out, 0, sizeof *out);
    out->data = malloc(d->n * sizeof(float));
    if (!out->data)
        return 0;
    float a = (float)s / (float)(d->steps - 1), *x = out->data;
    for (size_t i = 0; i < d->n; i++)
        x[i] = (1.0f - a) * d->noise[i] + a * d->target[i];
    out->c = d->c;
    out->h = d->h;
    out->w = d->w;
    out->index = (uint64_t)s + 1;
    return 1;
}

static void demo_free(demo *d)
{
    free(d->target);
    free(d->noise);
    memset(d, 0, sizeof *d);
}

/* ---- the application --------------------------------------------------------------------------------------- */

typedef struct app {
    options o;
    GLFWwindow *win;
    gpu *g;
    taesd_context *ctx;
    taesd_model *model;
    int channels;                      /* the decoder's latent channels */
    taesd_plan *plan;
    int plan_h, plan_w;
    latent_source *src;
    demo demo;
    bool is_demo;
    char label[128];

    latent_frame shown;                /* the latent being (or to be) decoded */
    bool have_shown;
    bool decode_pending, redraw;
    bool paused, one_to_one, save_request;
    bool stream_ended;
    uint64_t content_frames;           /* presented frames showing a decoded latent */
    uint64_t stream_errors;            /* found on this thread (the source counts its own) */
    char error[256];
    double error_until;
    char note[256];                    /* e.g. "saved taesd-view-001.png" */
    double note_until;
    double present_times[16];
    double first_present, last_present;
    unsigned npresent;
    double title_time;
    char title[512];
    double frames_reached;             /* when --frames N was reached */
} app;

static void wake_main(void *user)
{
    (void)user;
    glfwPostEmptyEvent();
}

static char glfw_error[256];
static volatile sig_atomic_t interrupted;

/* Ctrl-C / SIGTERM end the run like closing the window (so --screenshot is still written). */
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_glfw_error(int code, const char *desc)
{
    snprintf(glfw_error, sizeof glfw_error, "%s (GLFW error 0x%x)", desc ? desc : "?", code);
}

static void on_key(GLFWwindow *w, int key, int scancode, int action, int mods)
{
    (void)scancode;
    (void)mods;
    app *a = glfwGetWindowUserPointer(w);
    if (action != GLFW_PRESS)
        return;
    switch (key) {
    case GLFW_KEY_Q:
    case GLFW_KEY_ESCAPE:
        glfwSetWindowShouldClose(w, GLFW_TRUE);
        break;
    case GLFW_KEY_SPACE:
        a->paused = !a->paused;
        a->title_time = -1e9;   /* long ago: the next update_title() refreshes */
        break;
    case GLFW_KEY_F:
        a->one_to_one = !a->one_to_one;
        a->redraw = true;
        break;
    case GLFW_KEY_S:
        a->save_request = true;
        break;
    default:
        break;
    }
}

static void on_framebuffer_size(GLFWwindow *w, int width, int height)
{
    (void)width;
    (void)height;
    app *a = glfwGetWindowUserPointer(w);
    gpu_resized(a->g);
    a->redraw = true;
}

static void on_refresh(GLFWwindow *w)
{
    app *a = glfwGetWindowUserPointer(w);
    a->redraw = true;
}

static void show_error(app *a, const char *msg)
{
    snprintf(a->error, sizeof a->error, "%.*s", (int)sizeof a->error - 1, msg);
    a->error_until = glfwGetTime() + 5.0;
    a->title_time = -1e9;
}

/* A reported problem with one latent: on stderr and in the title; the window goes on. */
static void latent_error(app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void latent_error(app *a, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "taesd-view: %s\n", msg);
    a->stream_errors++;
    show_error(a, msg);
}

/* Takes a latent for display: checks it against the decoder, makes the plan and the image for its size. */
static void accept_latent(app *a, latent_frame *f)
{
    if (f->c != a->channels) {
        latent_error(a, "%s: latent %llu has %d channels, the decoder takes %d; skipped", a->label,
                     (unsigned long long)f->index, f->c, a->channels);
        latent_frame_free(f);
        return;
    }
    if (!a->plan || f->h != a->plan_h || f->w != a->plan_w) {
        taesd_plan *p = NULL;
        taesd_result r = taesd_plan_create(a->model, f->h, f->w, &p);
        if (r != TAESD_OK) {
            latent_error(a, "%s: latent %llu (%dx%d): %s", a->label, (unsigned long long)f->index, f->h, f->w,
                         taesd_context_last_error(a->ctx)[0] ? taesd_context_last_error(a->ctx)
                                                             : taesd_result_string(r));
            latent_frame_free(f);
            return;
        }
        gpu_wait_idle(a->g);           /* frames recorded with the old plan must be done before it goes */
        taesd_plan_destroy(a->plan);
        a->plan = p;
        a->plan_h = f->h;
        a->plan_w = f->w;
        int oh, ow;
        taesd_plan_output_size(p, &oh, &ow);
        char err[256];
        if (gpu_set_image_size(a->g, ow, oh, err, sizeof err) != 0) {
            latent_error(a, "%s", err);
            taesd_plan_destroy(a->plan);
            a->plan = NULL;
            latent_frame_free(f);
            return;
        }
    }
    latent_frame_free(&a->shown);
    a->shown = *f;
    a->have_shown = true;
    a->decode_pending = true;
}

static double fps_now(app *a, double now)
{
    unsigned n = a->npresent < 16 ? a->npresent : 16;
    if (n < 2)
        return 0;
    double newest = a->present_times[(a->npresent - 1) % 16];
    double oldest = a->present_times[(a->npresent - n) % 16];
    if (now - newest > 2.0 || newest <= oldest)
        return 0;                      /* nothing presented lately */
    return (double)(n - 1) / (newest - oldest);
}

static void update_title(app *a, bool force)
{
    double now = glfwGetTime();
    if (!force && now - a->title_time < 0.5)
        return;
    a->title_time = now;
    gpu_poll(a->g);
    char t[512];
    int n;
    if (!a->have_shown) {
        n = snprintf(t, sizeof t, "taesd-view — %s — waiting for a latent", a->label);
    } else {
        double ms = gpu_decode_ms(a->g);
        char dms[32];
        if (ms >= 0)
            snprintf(dms, sizeof dms, "%.1f", ms);
        else
            snprintf(dms, sizeof dms, "–");
        n = snprintf(t, sizeof t, "taesd-view — %s — %dx%dx%d latent — decode %s ms — %.1f fps", a->label,
                     a->shown.c, a->shown.h, a->shown.w, dms, fps_now(a, now));
    }
    if (n < 0)
        n = 0;
    size_t o = (size_t)n < sizeof t ? (size_t)n : sizeof t - 1;
    if (a->paused)
        o += (size_t)snprintf(t + o, sizeof t - o, " — paused");
    if (o < sizeof t && a->stream_ended)
        o += (size_t)snprintf(t + o, sizeof t - o, " — end of stream");
    if (o < sizeof t && now < a->note_until)
        o += (size_t)snprintf(t + o, sizeof t - o, " — %s", a->note);
    if (o < sizeof t && now < a->error_until)
        snprintf(t + o, sizeof t - o, " — error: %s", a->error);
    if (strcmp(t, a->title) != 0) {
        snprintf(a->title, sizeof a->title, "%s", t);
        glfwSetWindowTitle(a->win, t);
        if (a->o.verbose)
            fprintf(stderr, "taesd-view: title: %s\n", t);
    }
}

static void save_decoded(app *a)
{
    char path[64], err[512];
    for (int i = 1; i < 10000; i++) {
        snprintf(path, sizeof path, "taesd-view-%03d.png", i);
        if (access(path, F_OK) != 0)
            break;
    }
    if (gpu_save_decoded(a->g, path, err, sizeof err) != 0) {
        latent_error(a, "save: %s", err);
        return;
    }
    int w, h;
    gpu_image_size(a->g, &w, &h);
    fprintf(stderr, "taesd-view: saved %s (%dx%d)\n", path, w, h);
    snprintf(a->note, sizeof a->note, "saved %s", path);
    a->note_until = glfwGetTime() + 3.0;
    a->title_time = -1e9;
}

static int setup_demo(app *a)
{
    char err[256];
    float *rgb = NULL;
    int w = 0, h = 0, fc = 0;
    if (image_read_file(a->o.demo_image, 3, &rgb, &w, &h, &fc, err, sizeof err) != 0)
        return fail("%s: %s", a->o.demo_image, err);
    int lh = 0, lw = 0;
    if (!taesd_output_size(a->model, TAESD_PART_ENCODER, h, w, &lh, &lw)) {
        free(rgb);
        return fail("%s: cannot encode a %dx%d image with these weights", a->o.demo_image, w, h);
    }
    demo *d = &a->demo;
    d->c = a->channels;
    d->h = lh;
    d->w = lw;
    d->n = (size_t)d->c * (size_t)lh * (size_t)lw;
    d->target = malloc(d->n * sizeof(float));
    d->noise = malloc(d->n * sizeof(float));
    if (!d->target || !d->noise) {
        free(rgb);
        return fail("out of memory");
    }
    /* One blocking encode with a readback: the demo's target, made once before the window shows anything. */
    taesd_result r = taesd_encode(a->model, rgb, h, w, d->target);
    free(rgb);
    if (r != TAESD_OK)
        return fail("%s: encode failed: %s", a->o.demo_image, taesd_context_last_error(a->ctx));
    d->steps = a->o.demo_steps;
    d->hold = a->o.demo_rate > 0 ? (d->steps + 2) / 3 : 0;
    d->rate = a->o.demo_rate;
    d->rng = 0x7AE5D5EEDULL;
    demo_new_noise(d);
    return 0;
}

static int setup_model(app *a)
{
    taesd_vulkan_host host;
    gpu_host(a->g, &host);
    taesd_context_desc cd = { .host = &host };
    taesd_result r = taesd_context_create(&cd, &a->ctx);
    if (r != TAESD_OK)
        return fail("cannot use the window's Vulkan device (%s): %s", gpu_device_name(a->g), taesd_result_string(r));
    taesd_model_desc md = { .path = a->o.model[0], .path2 = a->o.nmodel > 1 ? a->o.model[1] : NULL,
                            .precision = a->o.precision };
    r = taesd_model_load(a->ctx, &md, &a->model);
    if (r != TAESD_OK)
        return fail("%s", taesd_context_last_error(a->ctx));
    taesd_model_info info;
    taesd_model_get_info(a->model, &info);
    if (!info.has_decoder)
        return fail("%s: the weights hold no decoder (give -m DECODER%s)", a->o.model[a->o.nmodel - 1],
                    a->is_demo ? " as well as the encoder" : "");
    if (a->is_demo && !info.has_encoder)
        return fail("--demo needs an encoder too: -m ENCODER -m DECODER, or one file holding both");
    a->channels = info.latent_channels;
    return 0;
}

/* One pass of the main loop's drawing: the pending decode (if any) or a redraw. 0, or an exit status. */
static int draw(app *a)
{
    char err[512];
    gpu_decode dec;
    bool decoding = a->decode_pending && a->plan;
    if (decoding) {
        size_t n = (size_t)a->shown.c * (size_t)a->shown.h * (size_t)a->shown.w;
        dec = (gpu_decode){ .plan = a->plan, .latent = a->shown.data, .bytes = n * (a->shown.f16 ? 2 : 4),
                            .f16 = a->shown.f16 };
    }
    gpu_status s = gpu_draw(a->g, decoding ? &dec : NULL, a->one_to_one, err, sizeof err);
    if (s == GPU_NOT_NOW)
        return 0;                      /* minimised or swapchain out of date: tried again next pass */
    if (s == GPU_FAILED)
        return fail("%s", err);
    a->redraw = false;
    a->decode_pending = false;
    if (s == GPU_DECODE_FAILED) {
        latent_error(a, "%s: latent %llu: %s", a->label, (unsigned long long)a->shown.index, err);
        return 0;
    }
    int iw, ih;
    gpu_image_size(a->g, &iw, &ih);
    if (iw > 0) {
        double now = glfwGetTime();
        if (a->content_frames++ == 0)
            a->first_present = now;
        a->last_present = now;
        a->present_times[a->npresent++ % 16] = now;
    }
    return 0;
}

static int run(app *a)
{
    const options *o = &a->o;
    int rc = 0;
    while (!glfwWindowShouldClose(a->win) && !interrupted) {
        double wait = 0.5;             /* the source's thread wakes us earlier (glfwPostEmptyEvent) */
        if (a->is_demo && !a->paused)
            wait = a->demo.next_time - glfwGetTime();
        if (a->decode_pending || a->redraw || wait <= 0)
            glfwPollEvents();
        else
            glfwWaitEventsTimeout(wait < 0.5 ? wait : 0.5);
        int fw = 0, fh = 0;
        glfwGetFramebufferSize(a->win, &fw, &fh);
        if (fw == 0 || fh == 0) {      /* minimised: nothing to present to; the source keeps the newest latent */
            glfwWaitEventsTimeout(0.1);
            continue;
        }
        char msg[512];
        if (a->src && latent_source_error(a->src, msg, sizeof msg))
            show_error(a, msg);
        /* Wait for a free frame first, then take the newest latent: one that arrives while the GPU is busy is
         * the one recorded next, not one picked up before the wait. */
        bool due = a->is_demo && !a->paused && glfwGetTime() >= a->demo.next_time;
        if (a->redraw || a->decode_pending || due || (!a->paused && a->src && latent_source_pending(a->src)))
            gpu_wait_frame(a->g);
        latent_frame f;
        if (!a->paused && a->src && latent_source_take(a->src, &f))
            accept_latent(a, &f);
        if (!a->paused && a->is_demo && demo_next(&a->demo, glfwGetTime(), &f))
            accept_latent(a, &f);
        if (a->decode_pending || a->redraw)
            if ((rc = draw(a)) != 0)
                return rc;
        if (a->save_request) {
            a->save_request = false;
            save_decoded(a);
        }
        if (a->src && !a->stream_ended && latent_source_ended(a->src)) {
            a->stream_ended = true;
            a->title_time = -1e9;
        }
        update_title(a, false);
        /* A stream still being read out is shown up to its newest latent before the exit (for 5 s at most), so
         * that the last frame of a finite stream is on screen whatever N is. */
        if (o->frames && a->content_frames >= (uint64_t)o->frames) {
            if (a->frames_reached == 0)
                a->frames_reached = glfwGetTime();
            if (!a->src || !latent_source_busy(a->src) || glfwGetTime() - a->frames_reached > 5.0)
                break;
        }
        if (o->frames && a->stream_ended && !a->decode_pending) {
            if (a->content_frames == 0)
                return fail("%s: the stream ended without a latent that could be shown", a->label);
            break;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a.o);
    if (rc >= 0)
        return rc;
    const options *o = &a.o;
    a.is_demo = o->demo_image != NULL;
    /* The files first: a missing one is reported before any window opens. */
    for (int i = 0; i < o->nmodel; i++)
        if (access(o->model[i], R_OK) != 0)
            return fail("%s: %s", o->model[i], strerror(errno));
    if (a.is_demo && access(o->demo_image, R_OK) != 0)
        return fail("%s: %s", o->demo_image, strerror(errno));
    if (a.is_demo)
        snprintf(a.label, sizeof a.label, "demo %s", o->demo_image);
    else
        snprintf(a.label, sizeof a.label, "%s", o->kind == SOURCE_STDIN ? "stdin" : o->path);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    glfwSetErrorCallback(on_glfw_error);
    if (!glfwInit())
        return fail("cannot open a window: %s", glfw_error[0] ? glfw_error : "glfwInit failed");
    if (!glfwVulkanSupported()) {
        glfwTerminate();
        return fail("no Vulkan loader found (Debian: libvulkan1 and a driver such as mesa-vulkan-drivers)");
    }
    glfwWindowHint(GLFW_CLIENT_API, GLFW_NO_API);
    glfwWindowHint(GLFW_RESIZABLE, GLFW_TRUE);
    a.win = glfwCreateWindow(o->width, o->height, "taesd-view", NULL, NULL);
    if (!a.win) {
        glfwTerminate();
        return fail("cannot open a window: %s", glfw_error[0] ? glfw_error : "glfwCreateWindow failed");
    }
    glfwSetWindowUserPointer(a.win, &a);
    glfwSetKeyCallback(a.win, on_key);
    glfwSetFramebufferSizeCallback(a.win, on_framebuffer_size);
    glfwSetWindowRefreshCallback(a.win, on_refresh);

    char err[512];
    gpu_desc gd = { .window = a.win, .device_index = o->device, .validation = o->validation,
                    .capture = o->screenshot != NULL, .prefer_srgb = o->srgb };
    if (gpu_create(&gd, &a.g, err, sizeof err) != 0) {
        rc = fail("%s", err);
        goto done;
    }
    if ((rc = setup_model(&a)) != 0)
        goto done;
    if (a.is_demo) {
        if ((rc = setup_demo(&a)) != 0)
            goto done;
    } else {
        latent_source_desc sd = { .kind = o->kind, .path = o->path, .format = o->latent_format,
                                  .packed_h = o->packed_h, .packed_w = o->packed_w,
                                  .channels = a.channels, .reopen_fifo = o->frames == 0, .wake = wake_main };
        if (latent_source_start(&sd, &a.src, err, sizeof err) != 0) {
            rc = fail("%s", err);
            goto done;
        }
    }
    if (o->verbose) {
        char d[512];
        gpu_describe(a.g, d, sizeof d);
        taesd_model_info info;
        taesd_model_get_info(a.model, &info);
        fprintf(stderr, "taesd-view: %s; %s decoder, %d channels, %s\n", d, info.variant_name, info.latent_channels,
                info.precision == TAESD_PRECISION_FP16 ? "fp16" : "fp32");
    }
    a.redraw = true;
    update_title(&a, true);
    rc = run(&a);
    if (rc == 0)
        update_title(&a, true);        /* the state at the end, however short the run */
    if (o->verbose) {
        gpu_wait_idle(a.g);            /* the last frames' decode times */
        uint64_t n;
        double sum;
        gpu_decode_stats(a.g, &n, &sum);
        double span = a.last_present - a.first_present;
        double fps = a.content_frames > 1 && span > 0 ? (double)(a.content_frames - 1) / span : 0;
        unsigned long long dropped = a.src ? latent_source_dropped(a.src) : 0;
        unsigned long long errors = a.stream_errors + (a.src ? latent_source_errors(a.src) : 0);
        fprintf(stderr, "taesd-view: %llu frames presented, %.2f fps (first to last present), %llu decodes, "
                "mean decode %.1f ms, %llu latents dropped (newer arrived), %llu stream errors\n",
                (unsigned long long)a.content_frames, fps, (unsigned long long)n, n ? sum / (double)n : 0, dropped,
                errors);
    }
    if (rc == 0 && o->screenshot && gpu_save_screenshot(a.g, o->screenshot, err, sizeof err) != 0)
        rc = fail("--screenshot: %s", err);

done:
    latent_source_stop(a.src);
    if (a.g)
        gpu_wait_idle(a.g);
    taesd_plan_destroy(a.plan);
    taesd_model_destroy(a.model);
    taesd_context_destroy(a.ctx);
    latent_frame_free(&a.shown);
    demo_free(&a.demo);
    uint32_t msgs = a.g ? gpu_validation_messages(a.g) : 0;
    gpu_destroy(a.g);
    glfwDestroyWindow(a.win);
    glfwTerminate();
    if (msgs) {
        fprintf(stderr, "taesd-view: %u validation message%s\n", msgs, msgs == 1 ? "" : "s");
        if (rc == 0)
            rc = EXIT_RUNTIME;
    }
    return rc;
}
