/* preview.c — taesd_preview_*: latest-wins decoding of a stream of latents on a worker thread.
 *
 * Built on the public API only. Three parties share one mutex, held only for counter updates and pointer swaps:
 * - producers convert a latent into `staging` (under submit_lock, which only serialises producers), then swap it
 *   with the single pending slot; an unstarted pending latent is thereby dropped;
 * - the worker swaps the pending latent into `work`, decodes without the lock into the back image slot and
 *   publishes it by swapping back and ready;
 * - the consumer swaps ready into front when it is fresh; front is the consumer's alone until its next call.
 * Every buffer is reused and grows only when a larger size arrives: memory stays at three latents, one float
 * image and three RGB8 images. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taesd.h"

typedef struct latent_buf {
    float *p;
    size_t cap;             /* floats */
    int h, w;               /* diffusion-space dims */
    uint64_t seq;
} latent_buf;

typedef struct image_slot {
    uint8_t *rgb;
    size_t cap;             /* bytes */
    taesd_preview_image img;
} image_slot;

struct taesd_preview {
    taesd_model *model;
    int channels;           /* latent channels the decoder takes */
    int max_side, every_n;
    taesd_latent_format format;
    clockid_t clock;        /* clock of image_cv's timed waits */
    pthread_t thread;

    /* Producers, one at a time (submit_lock). */
    pthread_mutex_t submit_lock;
    latent_buf staging;
    int ok_c, ok_h, ok_w;   /* input dims that last passed the size check */

    /* Shared (lock). */
    pthread_mutex_t lock;
    pthread_cond_t work_cv, image_cv;
    latent_buf pending;
    bool has_pending, stop;
    uint64_t submitted, decoded, dropped;
    int ready;              /* slot of the newest published image */
    bool fresh;             /* ready holds an image the consumer has not taken yet */

    /* Worker only. */
    latent_buf work;
    float *rgbf;
    size_t rgbf_cap;
    int back;

    /* Consumer only. */
    int front;

    image_slot slots[3];
};

static void swap_latent(latent_buf *a, latent_buf *b)
{
    latent_buf t = *a;
    *a = *b;
    *b = t;
}

/* Grows *buf to at least n elements of `size` bytes; the old contents are not kept. 0 on success. */
static int grow(void **buf, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    void *p = malloc(n * size);
    if (!p)
        return -1;
    free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* The PNG writer's rounding (src/io/image.c), so that a preview matches a decoded PNG byte for byte. */
static uint8_t to_u8(float x)
{
    if (!(x > 0.0f))        /* also NaN */
        x = 0.0f;
    if (x > 1.0f)
        x = 1.0f;
    return (uint8_t)lrintf(x * 255.0f);
}

/* CHW float (3×h×w) -> RGB8 HWC of ceil(h/f)×ceil(w/f): each pixel the mean of its f×f block (clipped at the
 * right and bottom edges), summed in double, then rounded like the PNG writer. */
static void to_rgb8(const float *chw, int h, int w, int f, uint8_t *out)
{
    size_t plane = (size_t)h * (size_t)w;
    int oh = (h + f - 1) / f, ow = (w + f - 1) / f;
    for (int y = 0; y < oh; y++) {
        int y1 = y * f + f < h ? y * f + f : h;
        for (int x = 0; x < ow; x++) {
            int x1 = x * f + f < w ? x * f + f : w;
            uint8_t *px = out + ((size_t)y * (size_t)ow + (size_t)x) * 3;
            for (int c = 0; c < 3; c++) {
                const float *src = chw + (size_t)c * plane;
                double sum = 0.0;
                for (int yy = y * f; yy < y1; yy++)
                    for (int xx = x * f; xx < x1; xx++)
                        sum += src[(size_t)yy * (size_t)w + (size_t)xx];
                px[c] = to_u8((float)(sum / ((double)(y1 - y * f) * (double)(x1 - x * f))));
            }
        }
    }
}

/* Decodes p->work into slot s (worker thread, without the lock). Fills everything but the counters. */
static void decode_into(taesd_preview *p, image_slot *s)
{
    double t0 = now_ms();
    const latent_buf *l = &p->work;
    taesd_preview_image *img = &s->img;
    memset(img, 0, sizeof *img);
    img->seq = l->seq;
    int oh = 0, ow = 0;
    taesd_result r = TAESD_OK;
    if (!taesd_output_size(p->model, TAESD_PART_DECODER, l->h, l->w, &oh, &ow))
        r = TAESD_ERROR_SHAPE;     /* submit checked this already */
    else if (grow((void **)&p->rgbf, &p->rgbf_cap, 3 * (size_t)oh * (size_t)ow, sizeof(float)) != 0)
        r = TAESD_ERROR_OUT_OF_MEMORY;
    else
        r = taesd_decode(p->model, l->p, p->channels, l->h, l->w, p->rgbf);
    int f = 1, longer = oh > ow ? oh : ow;
    if (r == TAESD_OK && p->max_side > 0 && longer > p->max_side)
        f = (longer + p->max_side - 1) / p->max_side;
    int dh = r == TAESD_OK ? (oh + f - 1) / f : 0, dw = r == TAESD_OK ? (ow + f - 1) / f : 0;
    if (r == TAESD_OK && grow((void **)&s->rgb, &s->cap, 3 * (size_t)dh * (size_t)dw, 1) != 0)
        r = TAESD_ERROR_OUT_OF_MEMORY;
    if (r == TAESD_OK) {
        to_rgb8(p->rgbf, oh, ow, f, s->rgb);
        img->width = dw;
        img->height = dh;
        img->rgb = s->rgb;
    }
    img->status = r;
    img->decode_ms = now_ms() - t0;
}

static void *worker(void *arg)
{
    taesd_preview *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && !p->has_pending)
            pthread_cond_wait(&p->work_cv, &p->lock);
        if (p->stop)
            break;
        swap_latent(&p->pending, &p->work);
        p->has_pending = false;
        pthread_mutex_unlock(&p->lock);

        image_slot *s = &p->slots[p->back];
        decode_into(p, s);

        pthread_mutex_lock(&p->lock);
        p->decoded++;
        s->img.submitted = p->submitted;
        s->img.decoded = p->decoded;
        s->img.dropped = p->dropped;
        int t = p->ready;
        p->ready = p->back;
        p->back = t;
        p->fresh = true;
        pthread_cond_broadcast(&p->image_cv);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void free_all(taesd_preview *p)
{
    free(p->staging.p);
    free(p->pending.p);
    free(p->work.p);
    free(p->rgbf);
    for (int i = 0; i < 3; i++)
        free(p->slots[i].rgb);
    free(p);
}

taesd_result taesd_preview_create(taesd_model *model, const taesd_preview_desc *desc, taesd_preview **out)
{
    if (out)
        *out = NULL;
    if (!model || !out)
        return TAESD_ERROR_INVALID_ARGUMENT;
    taesd_preview_desc d = { 0 };
    if (desc)
        d = *desc;
    if (d.max_side < 0 || d.every_n < 0 || !taesd_latent_format_name(d.latent_format))
        return TAESD_ERROR_INVALID_ARGUMENT;
    taesd_model_info info;
    taesd_model_get_info(model, &info);
    if (!info.has_decoder)
        return TAESD_ERROR_UNSUPPORTED;

    taesd_preview *p = calloc(1, sizeof *p);
    if (!p)
        return TAESD_ERROR_OUT_OF_MEMORY;
    p->model = model;
    p->channels = info.latent_channels;
    p->max_side = d.max_side;
    p->every_n = d.every_n;
    p->format = d.latent_format;
    p->ready = 1;
    p->back = 2;

    /* Timed waits on the monotonic clock where the condattr allows it, so a clock change cannot stretch them. */
    pthread_condattr_t ca;
    bool ca_ok = pthread_condattr_init(&ca) == 0;
    p->clock = CLOCK_REALTIME;
    if (ca_ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0)
        p->clock = CLOCK_MONOTONIC;
    if (pthread_mutex_init(&p->submit_lock, NULL) != 0)
        goto fail_submit_lock;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        goto fail_lock;
    if (pthread_cond_init(&p->work_cv, NULL) != 0)
        goto fail_work_cv;
    if (pthread_cond_init(&p->image_cv, ca_ok ? &ca : NULL) != 0)
        goto fail_image_cv;
    if (pthread_create(&p->thread, NULL, worker, p) != 0)
        goto fail_thread;
    if (ca_ok)
        pthread_condattr_destroy(&ca);
    *out = p;
    return TAESD_OK;

fail_thread:
    pthread_cond_destroy(&p->image_cv);
fail_image_cv:
    pthread_cond_destroy(&p->work_cv);
fail_work_cv:
    pthread_mutex_destroy(&p->lock);
fail_lock:
    pthread_mutex_destroy(&p->submit_lock);
fail_submit_lock:
    if (ca_ok)
        pthread_condattr_destroy(&ca);
    free_all(p);
    return TAESD_ERROR_OUT_OF_MEMORY;
}
void taesd_preview_destroy(taesd_preview *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->image_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->submit_lock);
    free_all(p);
}

/* Checks a latent and converts it into p->staging (producer side, under submit_lock). */
static taesd_result stage(taesd_preview *p, const float *latent, int c, int h, int w)
{
    int dc, dh, dw;
    taesd_result r = taesd_latent_shape(p->format, true, c, h, w, &dc, &dh, &dw);
    if (r != TAESD_OK)
        return r;
    if (dc != p->channels)
        return TAESD_ERROR_SHAPE;
    /* taesd_output_size only reads what taesd_model_load fixed, so it is safe beside the worker's decode. */
    if (c != p->ok_c || h != p->ok_h || w != p->ok_w) {
        if (!taesd_output_size(p->model, TAESD_PART_DECODER, dh, dw, NULL, NULL))
            return TAESD_ERROR_SHAPE;
        p->ok_c = c;
        p->ok_h = h;
        p->ok_w = w;
    }
    size_t n = (size_t)dc * (size_t)dh * (size_t)dw;
    if (grow((void **)&p->staging.p, &p->staging.cap, n, sizeof(float)) != 0)
        return TAESD_ERROR_OUT_OF_MEMORY;
    r = taesd_latent_to_diffusion(p->format, latent, c, h, w, p->staging.p);
    if (r != TAESD_OK)
        return r;
    /* After the conversion: what the decoder gets must be finite (a scale can overflow a huge raw value). */
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p->staging.p[i]))
            return TAESD_ERROR_NOT_FINITE;
    p->staging.h = dh;
    p->staging.w = dw;
    return TAESD_OK;
}

taesd_result taesd_preview_submit(taesd_preview *p, const float *latent, int channels, int h, int w,
                                  uint64_t *out_seq)
{
    if (out_seq)
        *out_seq = 0;
    if (!p || !latent || channels < 1 || h < 1 || w < 1)
        return TAESD_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&p->submit_lock);
    taesd_result r = stage(p, latent, channels, h, w);
    if (r == TAESD_OK) {
        pthread_mutex_lock(&p->lock);
        uint64_t seq = ++p->submitted;
        if (p->every_n > 1 && (seq - 1) % (uint64_t)p->every_n != 0) {
            p->dropped++;
        } else {
            if (p->has_pending)
                p->dropped++;
            p->staging.seq = seq;
            swap_latent(&p->staging, &p->pending);
            p->has_pending = true;
            pthread_cond_signal(&p->work_cv);
        }
        pthread_mutex_unlock(&p->lock);
        if (out_seq)
            *out_seq = seq;
    }
    pthread_mutex_unlock(&p->submit_lock);
    return r;
}

/* Under the lock: moves a freshly published image to the consumer's side. */
static void take_fresh(taesd_preview *p)
{
    if (p->fresh) {
        int t = p->front;
        p->front = p->ready;
        p->ready = t;
        p->fresh = false;
    }
}

int taesd_preview_get(taesd_preview *p, uint64_t newer_than, taesd_preview_image *out)
{
    if (!p || !out)
        return -1;
    pthread_mutex_lock(&p->lock);
    take_fresh(p);
    pthread_mutex_unlock(&p->lock);
    const taesd_preview_image *img = &p->slots[p->front].img;
    if (img->seq <= newer_than)
        return 0;
    *out = *img;
    return 1;
}

int taesd_preview_wait(taesd_preview *p, uint64_t newer_than, int timeout_ms, taesd_preview_image *out)
{
    if (!p || !out)
        return -1;
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(p->clock, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        take_fresh(p);
        if (p->slots[p->front].img.seq > newer_than || timeout_ms == 0)
            break;
        int e = timeout_ms < 0 ? pthread_cond_wait(&p->image_cv, &p->lock)
                               : pthread_cond_timedwait(&p->image_cv, &p->lock, &deadline);
        if (e != 0) {       /* ETIMEDOUT (or a failed wait: never spin on it) */
            take_fresh(p);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    const taesd_preview_image *img = &p->slots[p->front].img;
    if (img->seq <= newer_than)
        return 0;
    *out = *img;
    return 1;
}
