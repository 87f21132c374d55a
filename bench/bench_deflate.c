/* bench_deflate - rtws's DEFLATE codec (layer 1) next to zlib and, when
   built with -DHAVE_LIBDEFLATE, libdeflate: same inputs, same machine, same
   run.

   usage: ./bench_deflate [--quick]
   build: gcc -std=c99 -O2 -I. bench/bench_deflate.c -o bench_deflate -lz
          (with libdeflate: add -DHAVE_LIBDEFLATE ... -ldeflate)
   Corpora, made here deterministically:
     json-msgs  2,000 realtime-protocol envelopes (publish, presence, ack,
                history; 90-400 bytes each), compressed as permessage-deflate
                does with context takeover: one stream, each message
                sync-flushed
     json-msgs-nt  the same 2,000 envelopes, each message compressed on its
                own (no context takeover: the compressor is reset before each
                message; rtws's server default, server_no_context_takeover)
     json       the same envelopes as one stream, newline-separated
     mixed-1m   a 1 MiB document: prose, JSON, a CSV table, base64, random
                bytes, runs and zeros, in blocks
   For each corpus and level (rtws RTWS_Z_FAST = 1 vs zlib 1 and libdeflate 1,
   RTWS_Z_DEFAULT = 6 vs zlib 6 and libdeflate 6) it prints the compressed
   size as a ratio of the input and the compression speed in MB/s of input;
   then inflate speed (MB/s of output) of every inflater on the same stream
   (zlib's level 6 output). Raw deflate, window bits 15. Each figure is the
   median of 7 runs of at least 0.2 s (3 of 0.05 s with --quick), the codecs
   taking turns in every round (the order rotating) after a warm-up; every
   output is checked (rtws's streams inflate with zlib and zlib's with rtws,
   to the input; libdeflate's inflate with rtws and rtws's with libdeflate).

   libdeflate compresses and inflates whole buffers only: no streaming, no
   sync flush, no window kept between calls. So on json-msgs (context
   takeover) its compress line is each message compressed alone as one
   complete stream (a final block, no 00 00 ff ff to strip): the same
   measurement as on json-msgs-nt, a ratio not comparable to the takeover
   figures above it, and it has no inflate line there (it cannot inflate a
   message that refers back to earlier ones). On json-msgs-nt it inflates
   each message of zlib's stream as a whole buffer, the message's bytes
   followed by 00 00 ff ff 03 00 (the tail permessage-deflate puts back,
   then an empty final block) laid out before the timing. The compressor
   and decompressor are allocated once per level, outside the timing (as
   rtws's memory blocks are); zlib's deflateInit2/inflateInit2 run inside
   it, once per pass over the corpus (not per message).
   Lines:
     deflate CORPUS compress LEVEL CODEC RATIO MBPS
     deflate CORPUS inflate - CODEC - MBPS */
#define _POSIX_C_SOURCE 200809L
#define RTWS_IMPLEMENTATION
#include "../rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

static int runs = 7;
static double min_time = 0.2;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return (uint32_t)((rs * 2685821657736338717ull) >> 32);
}
static void die(const char *what) {
    fprintf(stderr, "bench_deflate: %s\n", what);
    exit(1);
}

/* ---- corpora ---- */
typedef struct {
    const char *name;
    uint8_t *data;
    size_t len;
    size_t *msg_len; /* NULL: one stream */
    size_t nmsg;
    int takeover; /* messages: 1 keeps the window from message to message */
} corpus;

static const char *users[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"};
static const char *words[] = {"hello", "the", "meeting", "starts", "at", "noon", "see", "you",
                              "there", "ok", "thanks", "great", "deploy", "is", "done", "lunch?"};

static size_t envelope(char *p, size_t cap, unsigned i) {
    unsigned kind = rnd() % 10, ch = rnd() % 12, u = rnd() % 8;
    unsigned long long ts = 1733400000000ull + i * 173ull;
    int n;
    if (kind < 6) {
        char text[160];
        size_t t = 0;
        unsigned w, nw = 2 + rnd() % 12;
        for (w = 0; w < nw; w++)
            t += (size_t)snprintf(text + t, sizeof text - t, "%s%s", w ? " " : "", words[rnd() % 16]);
        n = snprintf(p, cap,
                     "{\"type\":\"message\",\"channel\":\"room:%u\",\"id\":\"%08x-%04x\",\"serial\":%u,"
                     "\"ts\":%llu,\"data\":{\"user\":\"%s\",\"text\":\"%s\"}}",
                     ch, rnd(), rnd() & 0xFFFF, 1000 + i, ts, users[u], text);
    } else if (kind < 8) {
        n = snprintf(p, cap,
                     "{\"type\":\"presence\",\"channel\":\"room:%u\",\"action\":\"%s\",\"member\":"
                     "{\"id\":\"%s\",\"meta\":{\"status\":\"%s\",\"device\":\"web\"}},\"ts\":%llu}",
                     ch, rnd() & 1 ? "join" : "leave", users[u], rnd() & 1 ? "online" : "away", ts);
    } else if (kind < 9) {
        n = snprintf(p, cap, "{\"type\":\"ack\",\"ref\":%u,\"ok\":true}", i);
    } else {
        n = snprintf(p, cap,
                     "{\"type\":\"history\",\"channel\":\"room:%u\",\"since\":%u,\"limit\":50,"
                     "\"cursor\":\"c%08x\"}",
                     ch, 900 + i, rnd());
    }
    return (size_t)n;
}

static void make_json(corpus *msgs, corpus *one) {
    unsigned i, n = 2000;
    size_t cap = n * 512, off = 0;
    uint8_t *p = (uint8_t *)malloc(cap);
    msgs->msg_len = (size_t *)malloc(n * sizeof(size_t));
    for (i = 0; i < n; i++) {
        size_t m = envelope((char *)p + off, cap - off, i);
        msgs->msg_len[i] = m;
        off += m;
    }
    msgs->name = "json-msgs";
    msgs->data = p;
    msgs->len = off;
    msgs->nmsg = n;
    msgs->takeover = 1;
    /* the same envelopes newline-separated, as one stream */
    one->name = "json";
    one->data = (uint8_t *)malloc(off + n);
    one->len = 0;
    for (i = 0, off = 0; i < n; i++) {
        memcpy(one->data + one->len, p + off, msgs->msg_len[i]);
        one->len += msgs->msg_len[i];
        one->data[one->len++] = '\n';
        off += msgs->msg_len[i];
    }
    one->msg_len = NULL;
    one->nmsg = 0;
    one->takeover = 0;
}

static void make_mixed(corpus *c) {
    size_t cap = 1u << 20, off = 0;
    uint8_t *p = (uint8_t *)malloc(cap + 1024);
    unsigned block = 0;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while (off < cap) {
        size_t end = off + 4096 + rnd() % 12288, i;
        if (end > cap) end = cap;
        switch (block++ % 7) {
        case 0: /* prose */
        case 1:
            while (off < end) {
                const char *w = words[rnd() % 16];
                while (*w && off < end) p[off++] = (uint8_t)*w++;
                if (off < end) p[off++] = (uint8_t)(rnd() % 11 ? ' ' : '\n');
            }
            break;
        case 2: /* JSON */
            while (off < end) off += envelope((char *)p + off, cap + 1024 - off, (unsigned)off);
            if (off > end) off = end;
            break;
        case 3: /* CSV */
            while (off < end)
                off += (size_t)snprintf((char *)p + off, cap + 1024 - off, "%u,%s,%u.%02u,%s\n",
                                        (unsigned)off, users[rnd() % 8], rnd() % 1000, rnd() % 100,
                                        rnd() & 1 ? "paid" : "open");
            if (off > end) off = end;
            break;
        case 4: /* base64 */
            for (i = off; i < end; i++) p[i] = (uint8_t)b64[rnd() % 64];
            off = end;
            break;
        case 5: /* random */
            for (i = off; i < end; i++) p[i] = (uint8_t)rnd();
            off = end;
            break;
        default: /* runs and zeros */
            for (i = off; i < end; i++) p[i] = (uint8_t)(i - off < (end - off) / 2 ? 0 : "ab"[(i / 64) & 1]);
            off = end;
        }
    }
    c->name = "mixed-1m";
    c->data = p;
    c->len = cap;
    c->msg_len = NULL;
    c->nmsg = 0;
    c->takeover = 0;
}

/* ---- the codecs: compress a corpus into out, return its size ---- */
static uint8_t *mem_d;
static size_t rtws_compress(const corpus *c, int level, uint8_t *out, size_t cap) {
    rtws_deflate d;
    rtws_z_config cfg;
    size_t used, olen, total = 0, off = 0, i;
    memset(&cfg, 0, sizeof cfg);
    cfg.level = level;
    if (rtws_deflate_init(&d, &cfg, mem_d, rtws_deflate_mem_size(&cfg)) != RTWS_Z_OK) die("init");
    if (!c->msg_len) {
        if (rtws_deflate_compress(&d, c->data, c->len, &used, out, cap, &total, RTWS_Z_FINISH) !=
            RTWS_Z_END)
            die("rtws compress");
    } else {
        for (i = 0; i < c->nmsg; i++) {
            if (rtws_deflate_compress(&d, c->data + off, c->msg_len[i], &used, out + total,
                                      cap - total, &olen, RTWS_Z_SYNC_FLUSH) != RTWS_Z_OK)
                die("rtws compress message");
            total += olen - 4; /* the tail permessage-deflate removes */
            off += c->msg_len[i];
            rtws_deflate_reset(&d, c->takeover);
        }
    }
    rtws_deflate_free(&d);
    return total;
}

static size_t zlib_compress(const corpus *c, int level, uint8_t *out, size_t cap) {
    z_stream s;
    size_t total = 0, off = 0, i;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib init");
    if (!c->msg_len) {
        s.next_in = c->data;
        s.avail_in = (uInt)c->len;
        s.next_out = out;
        s.avail_out = (uInt)cap;
        if (deflate(&s, Z_FINISH) != Z_STREAM_END) die("zlib compress");
        total = s.total_out;
    } else {
        for (i = 0; i < c->nmsg; i++) {
            if (i && !c->takeover && deflateReset(&s) != Z_OK) die("zlib reset");
            s.next_in = c->data + off;
            s.avail_in = (uInt)c->msg_len[i];
            s.next_out = out + total;
            s.avail_out = (uInt)(cap - total);
            if (deflate(&s, Z_SYNC_FLUSH) != Z_OK || s.avail_in) die("zlib compress message");
            total = (size_t)(s.next_out - out) - 4;
            off += c->msg_len[i];
        }
    }
    deflateEnd(&s);
    return total;
}

/* inflate a stream made by compress above (sync tails put back per message) */
static const uint8_t tail[4] = {0, 0, 0xFF, 0xFF};
static uint8_t *mem_i;
static size_t rtws_decompress(const corpus *c, const uint8_t *z, size_t zlen, const size_t *zmsg,
                              uint8_t *out, size_t cap) {
    rtws_inflate s;
    size_t used, olen, total = 0, off = 0, i;
    if (rtws_inflate_init(&s, NULL, mem_i, rtws_inflate_mem_size(NULL)) != RTWS_Z_OK) die("init");
    if (!c->msg_len) {
        if (rtws_inflate_feed(&s, z, zlen, &used, out, cap, &total) != RTWS_Z_END) die("rtws inflate");
    } else {
        for (i = 0; i < c->nmsg; i++) {
            rtws_inflate_reset(&s, c->takeover);
            if (rtws_inflate_feed(&s, z + off, zmsg[i], &used, out + total, cap - total, &olen) !=
                RTWS_Z_OK)
                die("rtws inflate message");
            total += olen;
            if (rtws_inflate_feed(&s, tail, 4, &used, out + total, cap - total, &olen) != RTWS_Z_OK)
                die("rtws inflate tail");
            total += olen;
            off += zmsg[i];
        }
    }
    rtws_inflate_free(&s);
    return total;
}

static size_t zlib_decompress(const corpus *c, const uint8_t *z, size_t zlen, const size_t *zmsg,
                              uint8_t *out, size_t cap) {
    z_stream s;
    size_t off = 0, i;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK) die("zlib inflate init");
    s.next_out = out;
    s.avail_out = (uInt)cap;
    if (!c->msg_len) {
        s.next_in = (Bytef *)(uintptr_t)z;
        s.avail_in = (uInt)zlen;
        if (inflate(&s, Z_FINISH) != Z_STREAM_END) die("zlib inflate");
    } else {
        for (i = 0; i < c->nmsg; i++) {
            if (i && !c->takeover && inflateReset(&s) != Z_OK) die("zlib inflate reset");
            s.next_in = (Bytef *)(uintptr_t)(z + off);
            s.avail_in = (uInt)zmsg[i];
            if (inflate(&s, Z_SYNC_FLUSH) != Z_OK) die("zlib inflate message");
            s.next_in = (Bytef *)(uintptr_t)tail;
            s.avail_in = 4;
            if (inflate(&s, Z_SYNC_FLUSH) != Z_OK && s.avail_in) die("zlib inflate tail");
            off += zmsg[i];
        }
    }
    inflateEnd(&s);
    return (size_t)(s.next_out - out);
}

#ifdef HAVE_LIBDEFLATE
/* libdeflate: whole buffers only. A corpus of messages is compressed message
   by message, each a complete stream of its own (see the top of the file);
   the compressors (one per level) and the decompressor are made once. */
static struct libdeflate_compressor *ld_comp[10];
static struct libdeflate_decompressor *ld_dec;
static size_t ld_compress(const corpus *c, int level, uint8_t *out, size_t cap) {
    size_t total = 0, off = 0, i, n;
    if (!c->msg_len) {
        total = libdeflate_deflate_compress(ld_comp[level], c->data, c->len, out, cap);
        if (!total) die("libdeflate compress");
        return total;
    }
    for (i = 0; i < c->nmsg; i++) {
        n = libdeflate_deflate_compress(ld_comp[level], c->data + off, c->msg_len[i], out + total,
                                        cap - total);
        if (!n) die("libdeflate compress message");
        total += n;
        off += c->msg_len[i];
    }
    return total;
}
/* z: whole streams, one per message (zmsg) or one for the corpus */
static size_t ld_decompress(const corpus *c, const uint8_t *z, size_t zlen, const size_t *zmsg,
                            uint8_t *out, size_t cap) {
    size_t total = 0, off = 0, i, n;
    if (!c->msg_len) {
        if (libdeflate_deflate_decompress(ld_dec, z, zlen, out, cap, &total) != LIBDEFLATE_SUCCESS)
            die("libdeflate inflate");
        return total;
    }
    for (i = 0; i < c->nmsg; i++) {
        if (libdeflate_deflate_decompress(ld_dec, z + off, zmsg[i], out + total, cap - total, &n) !=
            LIBDEFLATE_SUCCESS)
            die("libdeflate inflate message");
        total += n;
        off += zmsg[i];
    }
    return total;
}
/* libdeflate's per-message streams, sizes recorded message by message */
static size_t *ld_split_sizes(const corpus *c, int level) {
    size_t *z = (size_t *)malloc(c->nmsg * sizeof(size_t)), i, off = 0, cap = 65536;
    uint8_t *out = (uint8_t *)malloc(cap);
    for (i = 0; i < c->nmsg; i++) {
        z[i] = libdeflate_deflate_compress(ld_comp[level], c->data + off, c->msg_len[i], out, cap);
        if (!z[i]) die("libdeflate split");
        off += c->msg_len[i];
    }
    free(out);
    return z;
}
/* Whole streams out of permessage-deflate messages (tail removed): each
   message gets 00 00 ff ff back and an empty final fixed block (03 00).
   *zl: their sizes; returns the new buffer. */
static uint8_t *ld_whole(const corpus *c, const uint8_t *z, const size_t *zmsg, size_t **zl,
                         size_t *total) {
    static const uint8_t fin[6] = {0, 0, 0xFF, 0xFF, 3, 0};
    size_t i, in = 0, outn = 0, sum = 0;
    uint8_t *b;
    for (i = 0; i < c->nmsg; i++) sum += zmsg[i] + 6;
    b = (uint8_t *)malloc(sum);
    *zl = (size_t *)malloc(c->nmsg * sizeof(size_t));
    for (i = 0; i < c->nmsg; i++) {
        memcpy(b + outn, z + in, zmsg[i]);
        memcpy(b + outn + zmsg[i], fin, 6);
        (*zl)[i] = zmsg[i] + 6;
        outn += zmsg[i] + 6;
        in += zmsg[i];
    }
    *total = outn;
    return b;
}
#endif

/* The codecs take turns within every round (the machine's load hits them
   alike; who goes first rotates per round); each round times each one for at
   least min_time. Medians of MB/s into res[0..n) (rtws, zlib, libdeflate);
   c->len bytes per call. */
typedef size_t (*comp_fn)(const corpus *, int, uint8_t *, size_t);
typedef size_t (*decomp_fn)(const corpus *, const uint8_t *, size_t, const size_t *, uint8_t *,
                            size_t);
typedef struct {
    comp_fn comp;
    decomp_fn decomp;
    const uint8_t *z; /* decomp: the stream and its message sizes */
    size_t zlen;
    const size_t *zmsg;
} job;
static double once(const job *j, const corpus *c, int level, uint8_t *out, size_t cap) {
    double t0 = now_s(), t;
    size_t bytes = 0;
    do {
        if (j->comp) {
            (void)j->comp(c, level, out, cap);
            bytes += c->len;
        } else {
            bytes += j->decomp(c, j->z, j->zlen, j->zmsg, out, cap);
        }
        t = now_s() - t0;
    } while (t < min_time);
    return (double)bytes / t / 1e6;
}
static void time_n(const job *j, int n, const corpus *c, int level, uint8_t *out, size_t cap,
                   double *res) {
    double r[3][7];
    int k, w;
    for (w = 0; w < n; w++) (void)once(&j[w], c, level, out, cap); /* warm-up */
    for (k = 0; k < runs; k++) /* who goes first rotates per round */
        for (w = 0; w < n; w++) {
            int who = (k + w) % n;
            r[who][k] = once(&j[who], c, level, out, cap);
        }
    for (w = 0; w < n; w++) {
        qsort(r[w], (size_t)runs, sizeof r[w][0], cmp_double);
        res[w] = r[w][runs / 2];
    }
}

/* per-message compressed sizes, recorded while compressing message by message */
static size_t *split_sizes(const corpus *c, int use_rtws, int level) {
    size_t *z = (size_t *)malloc(c->nmsg * sizeof(size_t)), i, off = 0, cap = c->len * 2 + 4096;
    uint8_t *out = (uint8_t *)malloc(cap);
    if (use_rtws) {
        rtws_deflate d;
        rtws_z_config cfg;
        size_t used, olen;
        memset(&cfg, 0, sizeof cfg);
        cfg.level = level;
        if (rtws_deflate_init(&d, &cfg, NULL, 0) != RTWS_Z_OK) die("init");
        for (i = 0; i < c->nmsg; i++) {
            if (rtws_deflate_compress(&d, c->data + off, c->msg_len[i], &used, out, cap, &olen,
                                      RTWS_Z_SYNC_FLUSH) != RTWS_Z_OK)
                die("split");
            z[i] = olen - 4;
            off += c->msg_len[i];
            rtws_deflate_reset(&d, c->takeover);
        }
        rtws_deflate_free(&d);
    } else {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib");
        for (i = 0; i < c->nmsg; i++) {
            if (i && !c->takeover && deflateReset(&s) != Z_OK) die("zlib split reset");
            s.next_in = c->data + off;
            s.avail_in = (uInt)c->msg_len[i];
            s.next_out = out;
            s.avail_out = (uInt)cap;
            if (deflate(&s, Z_SYNC_FLUSH) != Z_OK) die("zlib split");
            z[i] = (size_t)(s.next_out - out) - 4;
            off += c->msg_len[i];
        }
        deflateEnd(&s);
    }
    free(out);
    return z;
}

/* a copy of corpus c that is its messages each compressed on its own */
static corpus no_takeover(const corpus *c) {
    corpus n = *c;
    n.name = "json-msgs-nt";
    n.takeover = 0;
    return n;
}

int main(int argc, char **argv) {
    corpus cs[4];
    size_t cap, k;
    uint8_t *z, *z2, *out;
    static const int levels[2] = {1, 6};
    static const char *const names[3] = {"rtws", "zlib", "libdeflate"};
    int ncodec = 2;
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        runs = 3;
        min_time = 0.05;
    }
    make_json(&cs[0], &cs[2]);
    cs[1] = no_takeover(&cs[0]);
    make_mixed(&cs[3]);
    mem_d = (uint8_t *)malloc(rtws_deflate_mem_size(NULL));
    mem_i = (uint8_t *)malloc(rtws_inflate_mem_size(NULL));
#ifdef HAVE_LIBDEFLATE
    ncodec = 3;
    ld_comp[1] = libdeflate_alloc_compressor(1);
    ld_comp[6] = libdeflate_alloc_compressor(6);
    ld_dec = libdeflate_alloc_decompressor();
    if (!ld_comp[1] || !ld_comp[6] || !ld_dec) die("libdeflate alloc");
    printf("# rtws %s, zlib %s; libdeflate %s; raw deflate, window bits 15; rtws memory: deflate "
           "%zu + %zu B, inflate %zu + %zu B\n",
           rtws_version(), zlibVersion(), LIBDEFLATE_VERSION_STRING, rtws_deflate_mem_size(NULL),
           sizeof(rtws_deflate), rtws_inflate_mem_size(NULL), sizeof(rtws_inflate));
#else
    printf("# rtws %s, zlib %s; raw deflate, window bits 15; rtws memory: deflate %zu + %zu B, "
           "inflate %zu + %zu B\n",
           rtws_version(), zlibVersion(), rtws_deflate_mem_size(NULL), sizeof(rtws_deflate),
           rtws_inflate_mem_size(NULL), sizeof(rtws_inflate));
#endif
    for (k = 0; k < 4; k++) {
        corpus *c = &cs[k];
        int li, w;
        size_t *zm_r = NULL, *zm_z = NULL;
        cap = c->len * 2 + 65536;
        z = (uint8_t *)malloc(cap);
        z2 = (uint8_t *)malloc(cap);
        out = (uint8_t *)malloc(c->len + 65536);
        for (li = 0; li < 2; li++) {
            int lv = levels[li];
            size_t zs[3] = {0, 0, 0};
            job j[3];
            double mbps[3];
            zs[0] = rtws_compress(c, lv, z, cap);
            zs[1] = zlib_compress(c, lv, z2, cap);
            free(zm_r);
            free(zm_z);
            zm_r = c->msg_len ? split_sizes(c, 1, lv) : NULL;
            zm_z = c->msg_len ? split_sizes(c, 0, lv) : NULL;
            /* checks: each codec's stream inflates with the other one */
            if (zlib_decompress(c, z, zs[0], zm_r, out, c->len + 65536) != c->len ||
                memcmp(out, c->data, c->len) != 0)
                die("rtws stream does not inflate with zlib");
            if (rtws_decompress(c, z2, zs[1], zm_z, out, c->len + 65536) != c->len ||
                memcmp(out, c->data, c->len) != 0)
                die("zlib stream does not inflate with rtws");
#ifdef HAVE_LIBDEFLATE
            { /* rtws's stream inflates with libdeflate (not with takeover:
                   libdeflate keeps no window) and libdeflate's with rtws's */
                size_t *zl = NULL, tot = zs[0], *zm_l;
                if (!c->takeover) {
                    uint8_t *whole = c->msg_len ? ld_whole(c, z, zm_r, &zl, &tot) : z;
                    if (ld_decompress(c, whole, tot, zl, out, c->len + 65536) != c->len ||
                        memcmp(out, c->data, c->len) != 0)
                        die("rtws stream does not inflate with libdeflate");
                    if (whole != z) free(whole);
                    free(zl);
                }
                zs[2] = ld_compress(c, lv, z2, cap);
                zm_l = c->msg_len ? ld_split_sizes(c, lv) : NULL;
                /* each of its messages is a whole stream: rtws inflates it
                   as one (no window kept), to RTWS_Z_END */
                if (c->msg_len) {
                    size_t i, off = 0, got = 0, used, olen;
                    rtws_inflate s;
                    if (rtws_inflate_init(&s, NULL, mem_i, rtws_inflate_mem_size(NULL)) != RTWS_Z_OK)
                        die("init");
                    for (i = 0; i < c->nmsg; i++) {
                        rtws_inflate_reset(&s, 0);
                        if (rtws_inflate_feed(&s, z2 + off, zm_l[i], &used, out + got,
                                              c->len + 65536 - got, &olen) != RTWS_Z_END ||
                            used != zm_l[i])
                            die("libdeflate message does not inflate with rtws");
                        got += olen;
                        off += zm_l[i];
                    }
                    rtws_inflate_free(&s);
                    if (got != c->len || memcmp(out, c->data, c->len) != 0)
                        die("libdeflate messages do not inflate with rtws");
                } else if (rtws_decompress(c, z2, zs[2], NULL, out, c->len + 65536) != c->len ||
                           memcmp(out, c->data, c->len) != 0) {
                    die("libdeflate stream does not inflate with rtws");
                }
                free(zm_l);
            }
#endif
            memset(j, 0, sizeof j);
            j[0].comp = rtws_compress;
            j[1].comp = zlib_compress;
#ifdef HAVE_LIBDEFLATE
            j[2].comp = ld_compress;
#endif
            time_n(j, ncodec, c, lv, z, cap, mbps);
            for (w = 0; w < ncodec; w++)
                printf("deflate %s compress %d %s %.4f %.1f\n", c->name, lv, names[w],
                       (double)zs[w] / (double)c->len, mbps[w]);
            fflush(stdout);
        }
        /* inflate: every inflater on zlib's level 6 stream (libdeflate: not
           on json-msgs, whose messages refer back to earlier ones) */
        {
            job j[3];
            double mbps[3];
            int n = ncodec;
            uint8_t *whole = NULL;
            size_t *zl = NULL;
            memset(j, 0, sizeof j);
            j[0].decomp = rtws_decompress;
            j[1].decomp = zlib_decompress;
            j[0].z = j[1].z = z2;
            j[0].zlen = j[1].zlen = zlib_compress(c, 6, z2, cap);
            j[0].zmsg = j[1].zmsg = zm_z;
#ifdef HAVE_LIBDEFLATE
            j[2].decomp = ld_decompress;
            if (c->msg_len && c->takeover) {
                n = 2;
            } else if (c->msg_len) {
                size_t wlen = 0;
                whole = ld_whole(c, z2, zm_z, &zl, &wlen);
                j[2].z = whole;
                j[2].zlen = wlen;
                j[2].zmsg = zl;
                if (ld_decompress(c, whole, wlen, zl, out, c->len + 65536) != c->len ||
                    memcmp(out, c->data, c->len) != 0)
                    die("zlib messages do not inflate with libdeflate");
            } else {
                j[2].z = z2;
                j[2].zlen = j[0].zlen;
                if (ld_decompress(c, z2, j[0].zlen, NULL, out, c->len + 65536) != c->len ||
                    memcmp(out, c->data, c->len) != 0)
                    die("zlib stream does not inflate with libdeflate");
            }
#endif
            time_n(j, n, c, 6, out, c->len + 65536, mbps);
            for (w = 0; w < n; w++) printf("deflate %s inflate - %s - %.1f\n", c->name, names[w], mbps[w]);
            fflush(stdout);
            free(whole);
            free(zl);
        }
        free(zm_r);
        free(zm_z);
        free(z);
        free(z2);
        free(out);
    }
    return 0;
}
