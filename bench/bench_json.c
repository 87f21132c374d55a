/* Parse throughput of rtws_json_parse against cJSON and jsmn, on the same
   inputs in the same run: realtime envelopes and generated ~1 MB documents.
   A batch repeats one parse for >= 20 ms (the first, sizing batches are the
   warm-up); the parsers take turns batch by batch, and each result is the
   median MB/s of 31 batches. Every parse result is
   checked (the token count; for cJSON its first child), so nothing is optimised away.
   Prints a markdown table. Build and run: bench/json.sh */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int jsmn_plain_count(const char *text, size_t len, void *toks, unsigned cap);
int jsmn_strict_count(const char *text, size_t len, void *toks, unsigned cap);

/* jsmntok_t without JSMN_PARENT_LINKS is 16 bytes, with them 20; the
   buffer is sized for the larger one. */
#define JSMN_TOK_BYTES 20

typedef struct input {
    const char *name;
    char *text;
    size_t len;
    int ntok;       /* rtws tokens: the check */
    int jsmn_ntok;  /* jsmn tokens (it gives no token to a key/value pair) */
} input;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static rtws_json_tok *rtoks;
static size_t rcap;
static void *jtoks;
static unsigned jcap;
static volatile long sink;

static void die(const char *what, const input *in) {
    fprintf(stderr, "bench_json: %s failed on %s\n", what, in->name);
    exit(1);
}

static void run_rtws(const input *in) {
    rtws_json d;
    if (rtws_json_parse(&d, in->text, in->len, rtoks, rcap, 0) != RTWS_OK ||
        (int)d.count != in->ntok)
        die("rtws", in);
    sink += (long)d.count;
}
static void run_jsmn(const input *in) {
    int n = jsmn_plain_count(in->text, in->len, jtoks, jcap);
    if (n != in->jsmn_ntok) die("jsmn", in);
    sink += n;
}
static void run_jsmn_strict(const input *in) {
    int n = jsmn_strict_count(in->text, in->len, jtoks, jcap);
    if (n != in->jsmn_ntok) die("jsmn strict", in);
    sink += n;
}
static void run_cjson(const input *in) {
    cJSON *root = cJSON_ParseWithLength(in->text, in->len);
    if (!root || !root->child) die("cJSON", in);
    sink += root->child->type;
    cJSON_Delete(root);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define NPEER 4
#define NBATCH 31

/* Batch size per parser: repeats that take >= 20 ms (this is the warm-up). */
static long batch_reps(void (*fn)(const input *), const input *in) {
    long reps = 1, i;
    double t0;
    for (;;) {
        t0 = now();
        for (i = 0; i < reps; i++) fn(in);
        if (now() - t0 >= 0.02) return reps;
        reps *= 2;
    }
}

/* Median MB/s of NBATCH batches per parser. The parsers take turns batch by
   batch, so a noisy neighbour or a clock change hits all of them alike. */
static void measure(void (*const fn[NPEER])(const input *), const input *in,
                    double out[NPEER]) {
    static double rates[NPEER][NBATCH];
    long reps[NPEER], i;
    double t0, t;
    int b, k;
    for (k = 0; k < NPEER; k++) reps[k] = batch_reps(fn[k], in);
    for (b = 0; b < NBATCH; b++) {
        for (k = 0; k < NPEER; k++) {
            t0 = now();
            for (i = 0; i < reps[k]; i++) fn[k](in);
            t = now() - t0;
            rates[k][b] = (double)in->len * (double)reps[k] / t / 1e6;
        }
    }
    for (k = 0; k < NPEER; k++) {
        qsort(rates[k], NBATCH, sizeof rates[k][0], cmp);
        out[k] = rates[k][NBATCH / 2];
    }
}

/* --- inputs ------------------------------------------------------------ */

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

typedef struct sb {
    char *p;
    size_t len, cap;
} sb;
static void add(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void add(sb *b, const char *fmt, ...) {
    va_list ap;
    int n;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) break;
        b->cap = b->cap * 2 + (size_t)n + 64;
        b->p = (char *)realloc(b->p, b->cap);
    }
    b->len += (size_t)n;
}

static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo",
                                    "foxtrot", "golf", "hotel", "india", "juliett"};

/* Objects, arrays, strings with escapes and UTF-8, numbers of every kind. */
static void mixed(sb *b, size_t target) {
    unsigned id = 0;
    add(b, "[");
    while (b->len < target) {
        unsigned i, n = 1 + rnd(6);
        if (id) add(b, ",");
        add(b, "\n  {\"id\":%u,\"type\":\"%s\",\"user\":\"user-%u\",\"score\":%d.%02u,"
               "\"ratio\":%ue-%u,\"active\":%s,\"ref\":null,",
            id, words[rnd(10)], rnd(100000), (int)rnd(20000) - 10000, rnd(100), rnd(99999),
            rnd(20), rnd(2) ? "true" : "false");
        add(b, "\"text\":\"%s \\\"%s\\\" caf\xc3\xa9 \\u00e9\\t%s \xe2\x82\xac line\\nbreak\",",
            words[rnd(10)], words[rnd(10)], words[rnd(10)]);
        add(b, "\"tags\":[");
        for (i = 0; i < n; i++) add(b, "%s\"%s\"", i ? "," : "", words[rnd(10)]);
        add(b, "],\"pos\":{\"x\":%d,\"y\":%d,\"path\":[", (int)rnd(2000) - 1000,
            (int)rnd(2000) - 1000);
        for (i = 0; i < n; i++) add(b, "%s%u", i ? "," : "", rnd(1000000));
        add(b, "]}}");
        id++;
    }
    add(b, "\n]\n");
}

/* Fewer, longer strings: mostly the string scanner. */
static void strings(sb *b, size_t target) {
    unsigned id = 0, i;
    add(b, "{\"type\":\"history\",\"messages\":[");
    while (b->len < target) {
        add(b, "%s{\"seq\":%u,\"body\":\"", id ? "," : "", id);
        for (i = 0; i < 40; i++) add(b, "%s ", words[rnd(10)]);
        add(b, "\\\"quoted\\\" and more text to read through\"}");
        id++;
    }
    add(b, "]}");
}

static input make(const char *name, char *text, size_t len) {
    input in;
    rtws_json d;
    in.name = name;
    in.text = text;
    in.len = len;
    if (rtws_json_parse(&d, text, len, NULL, 0, 0) != RTWS_OK) {
        fprintf(stderr, "bench_json: %s is not valid: %s at %zu\n", name, d.err, d.err_off);
        exit(1);
    }
    in.ntok = (int)d.count;
    if (d.count > rcap) {
        rcap = d.count;
        rtoks = (rtws_json_tok *)realloc(rtoks, rcap * sizeof *rtoks);
    }
    if (d.count + 16 > jcap) {
        jcap = (unsigned)d.count + 16;
        jtoks = realloc(jtoks, (size_t)jcap * JSMN_TOK_BYTES);
    }
    in.jsmn_ntok = jsmn_plain_count(text, len, jtoks, jcap);
    if (in.jsmn_ntok <= 0 || jsmn_strict_count(text, len, jtoks, jcap) != in.jsmn_ntok) {
        fprintf(stderr, "bench_json: jsmn disagrees on %s\n", name);
        exit(1);
    }
    return in;
}

static char *copy(const char *s) {
    size_t n = strlen(s);
    char *p = (char *)malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

int main(void) {
    input in[4];
    sb b1 = {NULL, 0, 0}, b2 = {NULL, 0, 0};
    int i, n = 0;
    const char *pub = "{\"type\":\"publish\",\"channel\":\"chat:42\",\"event\":\"message\","
                      "\"data\":{\"text\":\"hi\",\"n\":1},\"id\":\"c-9\"}";
    const char *msg = "{\"type\":\"message\",\"channel\":\"chat:42\",\"event\":\"message\","
                      "\"data\":{\"text\":\"caf\\u00e9 \\\"ok\\\"\",\"n\":[1,2.5,-3e2]},"
                      "\"seq\":18,\"from\":\"u1\",\"ts\":1732200000000}";
    mixed(&b1, 1 << 20);
    strings(&b2, 1 << 20);
    in[n++] = make("publish envelope", copy(pub), strlen(pub));
    in[n++] = make("message envelope", copy(msg), strlen(msg));
    in[n++] = make("mixed document", b1.p, b1.len);
    in[n++] = make("long strings", b2.p, b2.len);
    printf("| input | bytes | rtws MB/s | cJSON MB/s | jsmn MB/s | jsmn strict+parent MB/s |"
           " rtws/cJSON | rtws/jsmn | rtws/jsmn strict |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < n; i++) {
        static void (*const fn[NPEER])(const input *) = {run_rtws, run_cjson, run_jsmn,
                                                         run_jsmn_strict};
        double res[NPEER], r, c, j, js;
        measure(fn, in + i, res);
        r = res[0];
        c = res[1];
        j = res[2];
        js = res[3];
        printf("| %s | %zu | %.0f | %.0f | %.0f | %.0f | %.2fx | %.2fx | %.2fx |\n", in[i].name,
               in[i].len, r, c, j, js, r / c, r / j, r / js);
        fflush(stdout);
    }
    for (i = 0; i < n; i++) free(in[i].text);
    free(rtoks);
    free(jtoks);
    return sink == 42 ? 2 : 0;
}
