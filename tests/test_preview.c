/* test_preview.c — taesd_preview_*: a sampler-speed producer never blocks, the consumer ends on the newest latent,
 * images match taesd_decode + the PNG writer's rounding byte for byte, drops are counted, downscale, every_n,
 * submit errors, size changes, destroy during a decode. Built for ThreadSanitizer too (.ci/run). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taesd.h"
#include "io/image.h"
#include "testutil.h"

#define CH 4   /* synth_sd_decoder: SD architecture, 4 latent channels, 8x */

static taesd_context *ctx;
static taesd_model *model;
static double decode_ms;       /* steady-state decode of an 8x8 latent, measured in setup */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void sleep_ms(double ms)
{
    struct timespec t = { (time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6) };
    nanosleep(&t, NULL);
}

static float *make_latent(int h, int w, uint32_t seed)
{
    float *l = malloc(sizeof(float) * CH * (size_t)h * (size_t)w);
    assert_non_null(l);
    fill_random(l, (size_t)CH * (size_t)h * (size_t)w, seed, -2.5f, 2.5f);
    return l;
}

/* taesd_decode into a new array (the model must not belong to a live preview). */
static float *decode(const float *latent, int h, int w, int *oh, int *ow)
{
    assert_int_equal(taesd_output_size(model, TAESD_PART_DECODER, h, w, oh, ow), 1);
    float *rgb = malloc(sizeof(float) * 3 * (size_t)*oh * (size_t)*ow);
    assert_non_null(rgb);
    taesd_result r = taesd_decode(model, latent, CH, h, w, rgb);
    if (r != TAESD_OK)
        fail_msg("decode: %s", taesd_context_last_error(ctx));
    return rgb;
}

/* A plain box filter: every input pixel adds into its output pixel (sums in double), then each sum is divided by
 * its count. */
static float *box(const float *chw, int h, int w, int f, int *dh, int *dw)
{
    *dh = (h + f - 1) / f;
    *dw = (w + f - 1) / f;
    size_t n = (size_t)*dh * (size_t)*dw;
    double *sum = calloc(3 * n, sizeof *sum);
    int *cnt = calloc(n, sizeof *cnt);
    float *out = malloc(3 * n * sizeof *out);
    assert_true(sum && cnt && out);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t o = (size_t)(y / f) * (size_t)*dw + (size_t)(x / f);
                sum[(size_t)c * n + o] += chw[((size_t)c * (size_t)h + (size_t)y) * (size_t)w + (size_t)x];
                if (c == 0)
                    cnt[o]++;
            }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++)
            out[(size_t)c * n + i] = (float)(sum[(size_t)c * n + i] / cnt[i]);
    free(sum);
    free(cnt);
    return out;
}

/* RGB8 (HWC) of a float CHW image as the PNG writer stores it: written with image_write_png and read back. */
static uint8_t *png_bytes(const float *chw, int h, int w)
{
    const char *path = write_temp(".png", NULL, 0);
    char err[256];
    assert_non_null(path);
    if (image_write_png(path, chw, 3, w, h, 1.0f, 0.0f, err, sizeof err) != 0)
        fail_msg("%s", err);
    float *back = NULL;
    int rw, rh, fc;
    if (image_read_file(path, 3, &back, &rw, &rh, &fc, err, sizeof err) != 0)
        fail_msg("%s", err);
    remove(path);
    assert_int_equal(rw, w);
    assert_int_equal(rh, h);
    size_t plane = (size_t)h * (size_t)w;
    uint8_t *out = malloc(3 * plane);
    assert_non_null(out);
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            out[i * 3 + (size_t)c] = (uint8_t)lrintf(back[(size_t)c * plane + i] * 255.0f);
    free(back);
    return out;
}

/* What a preview with max_side must show for this latent: decode, box filter, the PNG writer's rounding. */
typedef struct expected {
    int w, h;
    uint8_t *rgb;
} expected;

static expected expect_for(const float *latent, int h, int w, int max_side)
{
    int oh, ow;
    float *rgb = decode(latent, h, w, &oh, &ow);
    int longer = oh > ow ? oh : ow, f = 1;
    if (max_side > 0 && longer > max_side)
        f = (longer + max_side - 1) / max_side;
    expected e;
    if (f > 1) {
        float *small = box(rgb, oh, ow, f, &e.h, &e.w);
        e.rgb = png_bytes(small, e.h, e.w);
        free(small);
    } else {
        e.h = oh;
        e.w = ow;
        e.rgb = png_bytes(rgb, oh, ow);
    }
    free(rgb);
    return e;
}

/* A copy of a published image, kept past the next get/wait. */
typedef struct shot {
    uint64_t seq;
    taesd_result status;
    int w, h;
    uint8_t *rgb;
} shot;

static shot keep(const taesd_preview_image *img)
{
    shot s = { img->seq, img->status, img->width, img->height, NULL };
    if (img->rgb) {
        size_t n = 3 * (size_t)img->width * (size_t)img->height;
        s.rgb = malloc(n);
        assert_non_null(s.rgb);
        memcpy(s.rgb, img->rgb, n);
    }
    return s;
}

static void assert_same(const shot *s, const expected *e)
{
    assert_int_equal(s->status, TAESD_OK);
    assert_int_equal(s->w, e->w);
    assert_int_equal(s->h, e->h);
    size_t n = 3 * (size_t)e->w * (size_t)e->h, bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (s->rgb[i] != e->rgb[i] && !bad++)
            first = i;
    if (bad)
        fail_msg("seq %llu: %zu of %zu bytes differ (first at %zu: %d vs %d)", (unsigned long long)s->seq, bad, n,
                 first, s->rgb[first], e->rgb[first]);
}

/* Waits until the image of `seq` is published (every older one may be skipped). */
static shot wait_for(taesd_preview *p, uint64_t seq)
{
    taesd_preview_image img = { 0 };
    uint64_t have = 0;
    while (have < seq) {
        if (taesd_preview_wait(p, have, 60000, &img) != 1)
            fail_msg("no image newer than %llu within 60 s (waiting for %llu)", (unsigned long long)have,
                     (unsigned long long)seq);
        assert_true(img.seq > have);
        have = img.seq;
    }
    assert_int_equal(have, seq);
    return keep(&img);
}

static taesd_preview *make(int max_side, int every_n, taesd_latent_format format)
{
    taesd_preview_desc d = { .max_side = max_side, .every_n = every_n, .latent_format = format };
    taesd_preview *p = NULL;
    assert_int_equal(taesd_preview_create(model, &d, &p), TAESD_OK);
    assert_non_null(p);
    return p;
}

static int setup(void **state)
{
    (void)state;
    taesd_context_desc cd = { .enable_validation = true };
    if (!shared_available() || taesd_context_create(&cd, &ctx) != TAESD_OK)
        return -1;
    taesd_model_desc md = { .path = shared_path("weights/synth_sd_decoder_f16.safetensors") };
    if (taesd_model_load(ctx, &md, &model) != TAESD_OK) {
        fprintf(stderr, "load: %s\n", taesd_context_last_error(ctx));
        return -1;
    }
    /* One decode's time at the stream's size: the plan is built by the first call, then the fastest of three. */
    float lat[CH * 8 * 8], rgb[3 * 64 * 64];
    fill_random(lat, CH * 8 * 8, 1, -2.0f, 2.0f);
    decode_ms = 1e9;
    for (int i = 0; i < 4; i++) {
        double t0 = now_ms();
        if (taesd_decode(model, lat, CH, 8, 8, rgb) != TAESD_OK)
            return -1;
        if (i > 0 && now_ms() - t0 < decode_ms)
            decode_ms = now_ms() - t0;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uint32_t msgs = taesd_context_validation_messages(ctx);
    taesd_model_destroy(model);
    taesd_context_destroy(ctx);
    return msgs ? -1 : 0;
}

/* ---- (1)-(3): a sampler-speed producer against a slow decoder ---- */

typedef struct producer {
    taesd_preview *p;
    atomic_bool stop;
    double max_submit_ms, sum_submit_ms;
    uint64_t count, last_seq;
    int errors;
} producer;

static void *produce(void *arg)
{
    producer *pr = arg;
    float *lat = malloc(sizeof(float) * CH * 8 * 8);
    if (!lat) {
        pr->errors++;
        return NULL;
    }
    while (!atomic_load(&pr->stop)) {
        fill_random(lat, CH * 8 * 8, (uint32_t)pr->count + 1000u, -2.5f, 2.5f);
        uint64_t seq = 0;
        double t0 = now_ms();
        taesd_result r = taesd_preview_submit(pr->p, lat, CH, 8, 8, &seq);
        double dt = now_ms() - t0;
        pr->count++;
        if (r != TAESD_OK || seq != pr->count)
            pr->errors++;
        pr->last_seq = seq;
        pr->sum_submit_ms += dt;
        if (dt > pr->max_submit_ms)
            pr->max_submit_ms = dt;
        sleep_ms(2.0);   /* ~400 latents per second */
    }
    free(lat);
    return NULL;
}

static void test_stream(void **state)
{
    (void)state;
    taesd_preview *p = make(0, 0, TAESD_LATENT_DIFFUSION);
    producer pr = { .p = p };
    atomic_init(&pr.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce, &pr), 0);

    /* A UI loop meanwhile, for 2 s and at least until the hold below is done: ~60 polls per second; every image
     * newer than the last, and consistent. */
    enum { KEEP = 3 };
    shot kept[KEEP];
    int nkept = 0, polls = 0, images = 0;
    uint64_t seen = 0;
    bool held = false;
    taesd_preview_image cur = { 0 };
    double start = now_ms();
    while (now_ms() - start < 2000.0 || (!held && now_ms() - start < 60000.0)) {
        if (images == 1 && !held) {
            /* The image from the last get stays intact while several newer ones are decoded and published. */
            shot copy = keep(&cur);
            sleep_ms(4 * decode_ms);
            assert_memory_equal(cur.rgb, copy.rgb, 3 * 64 * 64);
            free(copy.rgb);
            held = true;
        }
        int r = taesd_preview_get(p, seen, &cur);
        assert_true(r == 0 || r == 1);
        if (r == 1) {
            assert_true(cur.seq > seen);
            assert_int_equal(cur.status, TAESD_OK);
            assert_int_equal(cur.width, 64);
            assert_int_equal(cur.height, 64);
            assert_true(cur.seq <= cur.submitted);
            assert_true(cur.decoded + cur.dropped <= cur.submitted);
            if (nkept < KEEP && images % 2 == 0)
                kept[nkept++] = keep(&cur);
            seen = cur.seq;
            images++;
        }
        polls++;
        sleep_ms(16.0);
    }
    double run_ms = now_ms() - start;
    atomic_store(&pr.stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pr.errors, 0);
    assert_true(held);

    /* (1) No submit waited for a decode: the slowest is far below one decode (taken without load, in setup; a
     * submit that waited for the in-flight decode would take up to a whole one). */
    print_message("submit: max %.3f ms, mean %.4f ms; one decode %.1f ms\n", pr.max_submit_ms,
                  pr.sum_submit_ms / (double)pr.count, decode_ms);
    assert_true(pr.max_submit_ms < decode_ms / 2);
    assert_true(pr.count >= 200);

    /* (2) After the producer stops, the consumer reaches exactly the last seq, within a few images: one published
     * but not taken, the one in flight, then the last (none when the last was decoded already). */
    taesd_preview_image img;
    assert_int_equal(taesd_preview_get(p, 0, &img), 1);
    assert_true(img.seq >= seen);
    int after = img.seq > seen;
    seen = img.seq;
    while (seen < pr.last_seq) {
        assert_int_equal(taesd_preview_wait(p, seen, 60000, &img), 1);
        assert_true(img.seq > seen);
        seen = img.seq;
        after++;
    }
    assert_int_equal(seen, pr.last_seq);
    assert_in_range(after, 0, 3);
    shot last = keep(&img);
    /* Nothing newer comes. */
    assert_int_equal(taesd_preview_wait(p, seen, 50, &img), 0);
    assert_int_equal(taesd_preview_get(p, seen, &img), 0);
    assert_int_equal(taesd_preview_get(p, 0, &img), 1);
    assert_int_equal(img.seq, pr.last_seq);

    /* (3) Every submit is either decoded or dropped, and the producer outran the decoder. */
    assert_int_equal(img.submitted, pr.count);
    assert_int_equal(img.decoded + img.dropped, img.submitted);
    assert_true(img.dropped > 0);
    assert_true(img.decoded >= 2);
    print_message("stream: %llu submits in %.0f ms, %llu decoded, %llu dropped, %d images seen in %d polls\n",
                  (unsigned long long)pr.count, run_ms, (unsigned long long)img.decoded,
                  (unsigned long long)img.dropped, images, polls);
    taesd_preview_destroy(p);

    /* (2) The pixels: taesd_decode of the same latents, rounded by the PNG writer. */
    float *lat = make_latent(8, 8, 0);
    fill_random(lat, CH * 8 * 8, (uint32_t)(pr.last_seq - 1) + 1000u, -2.5f, 2.5f);
    expected e = expect_for(lat, 8, 8, 0);
    assert_same(&last, &e);
    free(e.rgb);
    for (int i = 0; i < nkept; i++) {
        fill_random(lat, CH * 8 * 8, (uint32_t)(kept[i].seq - 1) + 1000u, -2.5f, 2.5f);
        e = expect_for(lat, 8, 8, 0);
        assert_same(&kept[i], &e);
        free(e.rgb);
        free(kept[i].rgb);
    }
    free(lat);
    free(last.rgb);
}

/* ---- (4) max_side: a box filter on the float output, then the PNG rounding ---- */

static void test_downscale(void **state)
{
    (void)state;
    float *lat = make_latent(12, 16, 7);     /* decodes to 96x128 */
    /* f = 3 (blocks clipped at the right edge: 128 = 42*3 + 2), f = 4 (exact), f = 128 (one pixel), f = 1. */
    const int sides[] = { 50, 40, 1, 128, 512 };
    const int want_w[] = { 43, 32, 1, 128, 128 }, want_h[] = { 32, 24, 1, 96, 96 };
    for (int i = 0; i < 5; i++) {
        expected e = expect_for(lat, 12, 16, sides[i]);
        assert_int_equal(e.w, want_w[i]);
        assert_int_equal(e.h, want_h[i]);
        taesd_preview *p = make(sides[i], 0, TAESD_LATENT_DIFFUSION);
        uint64_t seq;
        assert_int_equal(taesd_preview_submit(p, lat, CH, 12, 16, &seq), TAESD_OK);
        assert_int_equal(seq, 1);
        shot s = wait_for(p, 1);
        taesd_preview_destroy(p);
        assert_same(&s, &e);
        free(s.rgb);
        free(e.rgb);
    }
    free(lat);
}

/* ---- (5) every_n: only the 1st, N+1-th, ... submits are decoded ---- */

static void test_every_n(void **state)
{
    (void)state;
    taesd_preview *p = make(0, 3, TAESD_LATENT_DIFFUSION);
    float *lat = make_latent(8, 8, 3);
    uint64_t have = 0;
    for (uint64_t i = 1; i <= 10; i++) {
        uint64_t seq;
        lat[0] = (float)i * 0.1f;
        assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, &seq), TAESD_OK);
        assert_int_equal(seq, i);
        if ((i - 1) % 3 != 0)
            continue;
        /* Skipped ones (2, 3, 5, ...) never show up: the next image is this one. */
        taesd_preview_image img;
        assert_int_equal(taesd_preview_wait(p, have, 60000, &img), 1);
        assert_int_equal(img.seq, i);
        assert_int_equal(img.submitted, i);
        assert_int_equal(img.decoded, (i - 1) / 3 + 1);
        assert_int_equal(img.dropped, i - img.decoded);
        have = img.seq;
    }
    /* Two more skipped submits: counted, no decode. */
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, NULL), TAESD_OK);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, NULL), TAESD_OK);
    taesd_preview_image img;
    assert_int_equal(taesd_preview_wait(p, have, 300, &img), 0);
    taesd_preview_destroy(p);

    /* every_n = 1 decodes each one when the consumer keeps up. */
    p = make(0, 1, TAESD_LATENT_DIFFUSION);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, NULL), TAESD_OK);
        assert_int_equal(taesd_preview_wait(p, i - 1, 60000, &img), 1);
        assert_int_equal(img.seq, i);
        assert_int_equal(img.dropped, 0);
    }
    taesd_preview_destroy(p);
    free(lat);
}

/* ---- (6) create and submit errors ---- */

static void test_errors(void **state)
{
    (void)state;
    taesd_preview *p = (taesd_preview *)1;
    assert_int_equal(taesd_preview_create(NULL, NULL, &p), TAESD_ERROR_INVALID_ARGUMENT);
    assert_null(p);
    assert_int_equal(taesd_preview_create(model, NULL, NULL), TAESD_ERROR_INVALID_ARGUMENT);
    taesd_preview_desc bad[] = { { .max_side = -1 }, { .every_n = -2 }, { .latent_format = (taesd_latent_format)99 } };
    for (int i = 0; i < 3; i++) {
        p = (taesd_preview *)1;
        assert_int_equal(taesd_preview_create(model, &bad[i], &p), TAESD_ERROR_INVALID_ARGUMENT);
        assert_null(p);
    }
    taesd_model *enc = NULL;
    taesd_model_desc md = { .path = shared_path("weights/synth_sd_encoder_f16.safetensors") };
    assert_int_equal(taesd_model_load(ctx, &md, &enc), TAESD_OK);
    assert_int_equal(taesd_preview_create(enc, NULL, &p), TAESD_ERROR_UNSUPPORTED);
    assert_null(p);
    taesd_model_destroy(enc);
    taesd_preview_destroy(NULL);

    assert_int_equal(taesd_preview_create(model, NULL, &p), TAESD_OK);
    float *lat = make_latent(8, 8, 5);
    uint64_t seq = 99;
    assert_int_equal(taesd_preview_submit(NULL, lat, CH, 8, 8, &seq), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(seq, 0);
    assert_int_equal(taesd_preview_submit(p, NULL, CH, 8, 8, &seq), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 0, 8, &seq), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, -1, &seq), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_preview_submit(p, lat, 0, 8, 8, &seq), TAESD_ERROR_INVALID_ARGUMENT);
    assert_int_equal(taesd_preview_submit(p, lat, 3, 8, 8, &seq), TAESD_ERROR_SHAPE);
    assert_int_equal(taesd_preview_submit(p, lat, 16, 2, 2, &seq), TAESD_ERROR_SHAPE);
    /* Far too large: refused before the array (8x8 here) is read. */
    assert_int_equal(taesd_preview_submit(p, lat, CH, 1 << 20, 1 << 20, &seq), TAESD_ERROR_SHAPE);
    lat[77] = NAN;
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, &seq), TAESD_ERROR_NOT_FINITE);
    lat[77] = -INFINITY;
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, &seq), TAESD_ERROR_NOT_FINITE);
    assert_int_equal(seq, 0);
    taesd_preview_image img;
    assert_int_equal(taesd_preview_get(NULL, 0, &img), -1);
    assert_int_equal(taesd_preview_get(p, 0, NULL), -1);
    assert_int_equal(taesd_preview_wait(NULL, 0, 10, &img), -1);
    assert_int_equal(taesd_preview_wait(p, 0, 10, NULL), -1);
    /* No image yet; failed submits took no number. */
    assert_int_equal(taesd_preview_get(p, 0, &img), 0);
    assert_int_equal(taesd_preview_wait(p, 0, 0, &img), 0);
    lat[77] = 0.5f;
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, &seq), TAESD_OK);
    assert_int_equal(seq, 1);
    shot s = wait_for(p, 1);
    assert_int_equal(s.status, TAESD_OK);
    free(s.rgb);
    taesd_preview_destroy(p);

    /* Shape rules of the latent format; NaN/Inf judged after the conversion. */
    p = make(0, 0, TAESD_LATENT_FLUX1_PACKED);
    assert_int_equal(taesd_preview_submit(p, lat, 6, 4, 4, &seq), TAESD_ERROR_SHAPE);   /* not 4 per channel */
    assert_int_equal(taesd_preview_submit(p, lat, 8, 4, 4, &seq), TAESD_ERROR_SHAPE);   /* 2 channels */
    assert_int_equal(taesd_preview_submit(p, lat, 16, 2, 2, &seq), TAESD_OK);           /* 4 x 4 x 4 */
    taesd_preview_destroy(p);
    p = make(0, 0, TAESD_LATENT_SD3_RAW);
    lat[5] = 3e38f;                    /* finite, but (x - shift) * 1.5305 is not */
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, &seq), TAESD_ERROR_NOT_FINITE);
    taesd_preview_destroy(p);
    free(lat);
}

/* Latents in another format are converted before the decode. */
static void test_latent_format(void **state)
{
    (void)state;
    float *lat = make_latent(8, 8, 9), *raw = make_latent(8, 8, 9);
    for (int i = 0; i < CH * 8 * 8; i++)
        raw[i] = lat[i] / 0.18215f;
    float *conv = make_latent(8, 8, 0);
    assert_int_equal(taesd_latent_to_diffusion(TAESD_LATENT_SD1_RAW, raw, CH, 8, 8, conv), TAESD_OK);
    expected e = expect_for(conv, 8, 8, 0);
    taesd_preview *p = make(0, 0, TAESD_LATENT_SD1_RAW);
    assert_int_equal(taesd_preview_submit(p, raw, CH, 8, 8, NULL), TAESD_OK);
    shot s = wait_for(p, 1);
    taesd_preview_destroy(p);
    assert_same(&s, &e);
    free(s.rgb);
    free(e.rgb);
    free(lat);
    free(raw);
    free(conv);
}

/* ---- (7) the latent size changes mid-stream ---- */

static void test_size_change(void **state)
{
    (void)state;
    float *a = make_latent(12, 16, 21), *b = make_latent(8, 8, 22), *c = make_latent(16, 8, 23);
    expected ea = expect_for(a, 12, 16, 0), eb = expect_for(b, 8, 8, 0), ec = expect_for(c, 16, 8, 0);
    taesd_preview *p = make(0, 0, TAESD_LATENT_DIFFUSION);
    const float *lats[] = { a, b, a, c };
    const int hs[] = { 12, 8, 12, 16 }, ws[] = { 16, 8, 16, 8 };
    const expected *es[] = { &ea, &eb, &ea, &ec };
    for (int i = 0; i < 4; i++) {
        uint64_t seq;
        assert_int_equal(taesd_preview_submit(p, lats[i], CH, hs[i], ws[i], &seq), TAESD_OK);
        shot s = wait_for(p, seq);
        assert_same(&s, es[i]);
        free(s.rgb);
    }
    /* A burst alternating sizes: the last one wins. */
    uint64_t seq = 0;
    for (int i = 0; i < 40; i++)
        assert_int_equal(taesd_preview_submit(p, lats[i % 4], CH, hs[i % 4], ws[i % 4], &seq), TAESD_OK);
    shot s = wait_for(p, seq);
    assert_same(&s, es[39 % 4]);
    free(s.rgb);
    taesd_preview_destroy(p);
    free(ea.rgb);
    free(eb.rgb);
    free(ec.rgb);
    free(a);
    free(b);
    free(c);
}

/* ---- (8) destroy while a decode is in flight, or with a latent pending ---- */

static void test_destroy_in_flight(void **state)
{
    (void)state;
    float *lat = make_latent(12, 16, 31);
    expected e = expect_for(lat, 12, 16, 0);

    /* Nothing ever submitted. */
    taesd_preview_destroy(make(0, 0, TAESD_LATENT_DIFFUSION));

    /* Submitted, destroyed at once: pending or just started. */
    taesd_preview *p = make(0, 0, TAESD_LATENT_DIFFUSION);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 12, 16, NULL), TAESD_OK);
    taesd_preview_destroy(p);

    /* The worker is idle after the first image; the second latent starts at once and is mid-decode when destroy
     * comes (a 12x16 decode takes several times the sleep). The consumer still holds an image. */
    p = make(0, 0, TAESD_LATENT_DIFFUSION);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 12, 16, NULL), TAESD_OK);
    shot s = wait_for(p, 1);
    taesd_preview_image img;
    assert_int_equal(taesd_preview_get(p, 0, &img), 1);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 12, 16, NULL), TAESD_OK);
    assert_int_equal(taesd_preview_submit(p, lat, CH, 8, 8, NULL), TAESD_OK);
    sleep_ms(decode_ms / 4);
    double t0 = now_ms();
    taesd_preview_destroy(p);
    print_message("destroy during a decode took %.1f ms\n", now_ms() - t0);
    assert_same(&s, &e);
    free(s.rgb);

    /* The model is the caller's again and works. */
    expected again = expect_for(lat, 12, 16, 0);
    assert_memory_equal(again.rgb, e.rgb, 3 * (size_t)e.w * (size_t)e.h);
    free(again.rgb);
    free(e.rgb);
    free(lat);
}

int main(void)
{
    alarm(600);     /* a preview that hangs (a lost wakeup, a join that never returns) fails instead of stalling */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_downscale),
        cmocka_unit_test(test_every_n),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_latent_format),
        cmocka_unit_test(test_size_change),
        cmocka_unit_test(test_destroy_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
