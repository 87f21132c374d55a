/* bench_codec - frame parse + unmask throughput of rtws next to memcpy.

   usage: ./bench_codec [--quick]
   For payloads of 16 B, 1 KiB, 64 KiB and 1 MiB it measures, on the same
   bytes of the same machine:
     memcpy     memcpy of every payload into a second buffer (the reference)
     frame      rtws_frame_header_decode + rtws_frame_header_check + rtws_frame_mask, in
                place, frame after frame over a buffer of masked client frames
     conn-bin   a whole rtws_conn in server role: copy the wire bytes into
                rtws_conn_recv_buf (standing in for recv()'s copy), then
                rtws_conn_recv_commit parses, unmasks and delivers each binary
                message to the event callback
     conn-text  the same with text messages (adds UTF-8 validation)
   Each figure is the median of 7 timed runs of at least 0.2 s (payload bytes
   per second, GB = 1e9 bytes) after a warm-up round; the four methods take
   turns within every round. Every result is
   checked: the unmasked bytes must hash to the plaintext's hash. Prints one
   line per (size, method): "codec SIZE METHOD GBPS PCT_OF_MEMCPY". */
#define _POSIX_C_SOURCE 200809L
#define RTWS_IMPLEMENTATION
#include "../rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* FNV-1a, 64-bit: the reference hash of payload bytes */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
#define FNV0 14695981039346656037ull

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A buffer of nframes masked client frames of len payload bytes each
   (ASCII payload, so the same bytes are valid text), plus the plaintext
   hash over all payloads. */
typedef struct corpus {
    uint8_t *wire;
    size_t wire_len, len, nframes;
    uint8_t *plain; /* all payloads back to back */
    uint64_t hash;
} corpus;

static void corpus_make(corpus *cp, size_t len, size_t nframes, rtws_opcode op) {
    size_t i, j, off = 0;
    cp->len = len;
    cp->nframes = nframes;
    cp->wire = (uint8_t *)malloc(nframes * (len + RTWS_FRAME_HEADER_MAX) + 64);
    cp->plain = (uint8_t *)malloc(nframes * len + 64);
    if (!cp->wire || !cp->plain) {
        fprintf(stderr, "bench_codec: out of memory\n");
        exit(1);
    }
    for (i = 0; i < nframes; i++) {
        uint8_t key[4];
        uint64_t r = rng();
        uint8_t *pl = cp->plain + i * len;
        memcpy(key, &r, 4);
        for (j = 0; j < len; j++) pl[j] = (uint8_t)(' ' + (rng() % 95));
        off += rtws_frame_header_encode(cp->wire + off, 1, op, len, key);
        memcpy(cp->wire + off, pl, len);
        rtws_frame_mask(cp->wire + off, len, key, 0);
        off += len;
    }
    cp->wire_len = off;
    cp->hash = fnv(FNV0, cp->plain, nframes * len);
}

static void corpus_free(corpus *cp) {
    free(cp->wire);
    free(cp->plain);
}

/* ---- frame: decode + check + unmask in place ---- */

/* Walks buf; unmasks every payload in place (a second walk masks it back).
   Returns the number of frames, 0 on a decode error. */
static size_t walk_frames(uint8_t *buf, size_t n) {
    size_t off = 0, frames = 0;
    while (off < n) {
        rtws_frame_header h;
        if (rtws_frame_header_decode(buf + off, n - off, &h) != RTWS_OK) return 0;
        if (rtws_frame_header_check(&h, RTWS_SERVER, 0, 0) != RTWS_OK) return 0;
        off += h.header_len;
        rtws_frame_mask(buf + off, (size_t)h.len, h.mask, 0);
        off += (size_t)h.len;
        frames++;
    }
    return frames;
}

static uint64_t hash_payloads(const uint8_t *buf, size_t n) {
    size_t off = 0;
    uint64_t hh = FNV0;
    while (off < n) {
        rtws_frame_header h;
        if (rtws_frame_header_decode(buf + off, n - off, &h) != RTWS_OK) return 0;
        off += h.header_len;
        hh = fnv(hh, buf + off, (size_t)h.len);
        off += (size_t)h.len;
    }
    return hh;
}

/* ---- conn: rtws_conn in server role ---- */

typedef struct sink {
    size_t msgs;
    uint64_t sample; /* cheap per-message fold, checked against a reference */
    uint64_t hash;   /* full hash, in the verifying run only */
    int full;
    rtws_opcode op;
    int bad;
} sink;

static uint64_t fold(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    memcpy(&a, p, n < 8 ? n : 8);
    if (n >= 8) memcpy(&b, p + n - 8, 8);
    return a * 31 + b + n;
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    sink *s = (sink *)user;
    (void)c;
    if (ev->type == RTWS_EV_MESSAGE) {
        s->msgs++;
        if (ev->message.opcode != s->op) s->bad = 1;
        s->sample += fold(ev->message.data, ev->message.len);
        if (s->full) s->hash = fnv(s->hash, ev->message.data, ev->message.len);
    } else if (ev->type == RTWS_EV_ERROR || ev->type == RTWS_EV_CLOSE) {
        s->bad = 1;
    }
}

static const char request[] = "GET /bench HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

static void conn_open(rtws_conn *c, sink *s) {
    rtws_config cfg;
    const uint8_t *out;
    size_t len;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = s;
    cfg.heartbeat_off = 1;
    rtws_conn_init(c, &cfg);
    rtws_conn_recv(c, request, sizeof request - 1, 1, NULL);
    while ((out = rtws_conn_out(c, &len)) != NULL) rtws_conn_out_done(c, len);
    if (rtws_conn_get_state(c) != RTWS_STATE_OPEN) {
        fprintf(stderr, "bench_codec: handshake failed\n");
        exit(1);
    }
}

/* Feeds the whole corpus, recv()-sized pieces as the connection lends them. */
static void conn_feed(rtws_conn *c, const corpus *cp) {
    size_t off = 0;
    while (off < cp->wire_len) {
        size_t cap, k;
        uint8_t *buf = rtws_conn_recv_buf(c, 0, &cap);
        if (!buf || !cap) {
            fprintf(stderr, "bench_codec: recv_buf failed\n");
            exit(1);
        }
        k = cp->wire_len - off < cap ? cp->wire_len - off : cap;
        memcpy(buf, cp->wire + off, k);
        off += k;
        rtws_conn_recv_commit(c, k, 1);
    }
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static double min_time = 0.2;
static int failures;

static void check(int ok, const char *what, size_t len) {
    if (!ok) {
        fprintf(stderr, "bench_codec: CHECK FAILED: %s at %zu bytes\n", what, len);
        failures++;
    }
}

static void bench_size(size_t len) {
    /* about 1 MiB of payload per buffer (two frames at 1 MiB): a receive
       buffer's worth that stays in cache, as after recv() */
    size_t nframes = len >= ((size_t)1 << 20) ? 2 : ((size_t)1 << 20) / len;
    size_t bytes = nframes * len, i;
    double g_memcpy[RUNS], g_frame[RUNS], g_bin[RUNS], g_text[RUNS], gm, gf, gb, gt;
    corpus cb, ct;
    uint8_t *dst = (uint8_t *)malloc(bytes + 64);
    uint8_t *work;
    int r, k;
    rtws_conn cn[2];
    sink sk[2];
    uint64_t ref_sample[2];
    const corpus *cps[2];
    corpus_make(&cb, len, nframes, RTWS_OP_BINARY);
    corpus_make(&ct, len, nframes, RTWS_OP_TEXT);
    work = (uint8_t *)malloc(cb.wire_len);
    if (!dst || !work) exit(1);
    cps[0] = &cb;
    cps[1] = &ct;

    /* verifying passes, untimed */
    for (i = 0; i < nframes; i++) memcpy(dst + i * len, cb.plain + i * len, len);
    check(fnv(FNV0, dst, bytes) == cb.hash, "memcpy hash", len);
    memcpy(work, cb.wire, cb.wire_len);
    check(walk_frames(work, cb.wire_len) == nframes, "frame count", len);
    check(hash_payloads(work, cb.wire_len) == cb.hash, "unmasked hash", len);
    walk_frames(work, cb.wire_len);
    check(memcmp(work, cb.wire, cb.wire_len) == 0, "re-masked bytes", len);
    for (k = 0; k < 2; k++) {
        memset(&sk[k], 0, sizeof sk[k]);
        sk[k].op = k ? RTWS_OP_TEXT : RTWS_OP_BINARY;
        conn_open(&cn[k], &sk[k]);
        ref_sample[k] = 0;
        for (i = 0; i < nframes; i++) ref_sample[k] += fold(cps[k]->plain + i * len, len);
        sk[k].full = 1;
        sk[k].hash = FNV0;
        conn_feed(&cn[k], cps[k]);
        check(sk[k].msgs == nframes && !sk[k].bad, "conn messages", len);
        check(sk[k].hash == cps[k]->hash, "conn unmasked hash", len);
        sk[k].full = 0;
    }

    /* timed: the four methods take turns in every round, so a change in
       machine load or clock speed hits them alike; round -1 is a warm-up */
    for (r = -1; r < RUNS; r++) {
        size_t reps = 0, frames = 0;
        double t0 = now_s(), t;
        /* memcpy: the same payload bytes, in the same frame-sized pieces */
        do {
            for (i = 0; i < nframes; i++) memcpy(dst + i * len, cb.plain + i * len, len);
            reps++;
            __asm__ __volatile__("" : : "r"(dst) : "memory");
        } while ((t = now_s() - t0) < min_time);
        if (r >= 0) g_memcpy[r] = (double)(reps * bytes) / t / 1e9;
        /* frame: walks in pairs (unmask, re-mask) */
        reps = 0;
        t0 = now_s();
        do {
            frames += walk_frames(work, cb.wire_len);
            frames += walk_frames(work, cb.wire_len);
            reps += 2;
        } while ((t = now_s() - t0) < min_time);
        check(frames == reps * nframes, "frames walked", len);
        if (r >= 0) g_frame[r] = (double)(reps * bytes) / t / 1e9;
        /* conn: binary, then text */
        for (k = 0; k < 2; k++) {
            reps = 0;
            sk[k].msgs = 0;
            sk[k].sample = 0;
            t0 = now_s();
            do {
                conn_feed(&cn[k], cps[k]);
                reps++;
            } while ((t = now_s() - t0) < min_time);
            check(sk[k].msgs == reps * nframes && !sk[k].bad, "conn messages (timed)", len);
            check(sk[k].sample == ref_sample[k] * reps, "conn sample (timed)", len);
            if (r >= 0) (k ? g_text : g_bin)[r] = (double)(reps * bytes) / t / 1e9;
        }
    }
    check(memcmp(dst, cb.plain, bytes) == 0, "memcpy bytes", len);
    check(memcmp(work, cb.wire, cb.wire_len) == 0, "bytes after even walks", len);
    rtws_conn_free(&cn[0]);
    rtws_conn_free(&cn[1]);
    gm = median(g_memcpy, RUNS);
    gf = median(g_frame, RUNS);
    gb = median(g_bin, RUNS);
    gt = median(g_text, RUNS);
    printf("codec %zu memcpy %.3f 100.0\n", len, gm);
    printf("codec %zu frame %.3f %.1f\n", len, gf, 100.0 * gf / gm);
    printf("codec %zu conn-bin %.3f %.1f\n", len, gb, 100.0 * gb / gm);
    printf("codec %zu conn-text %.3f %.1f\n", len, gt, 100.0 * gt / gm);
    fflush(stdout);
    corpus_free(&cb);
    corpus_free(&ct);
    free(dst);
    free(work);
}

int main(int argc, char **argv) {
    static const size_t sizes[] = {16, 1024, 65536, (size_t)1 << 20};
    size_t i;
    if (argc > 1 && !strcmp(argv[1], "--quick")) min_time = 0.05;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) bench_size(sizes[i]);
    if (failures) {
        fprintf(stderr, "bench_codec: %d checks failed\n", failures);
        return 1;
    }
    return 0;
}
