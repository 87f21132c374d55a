/* libFuzzer target for layer 6a (resp). Byte 0 picks the limits (defaults
   or small ones), byte 1 seeds the chunk sizes; the rest is a stream of
   replies. It is parsed in one go (reply after reply) and again fed in
   random pieces, as a connection would (the unconsumed bytes again, with
   more): both must give the same replies and the same error at the same
   offset. Every tree is walked: the limits hold, every string lies inside
   the input. The strings of each reply are then encoded as a command, which
   must parse back to the same strings. abort() on any broken invariant. */
#include "fuzz.h"

#define MAXR 256

typedef struct walk {
    const char *lo, *hi;
    const rtws_resp_config *cfg;
    size_t nodes;
    uint64_t hash;
    int nstr;
    const char *argv[64];
    size_t lens[64];
} walk;

static void mix(walk *w, const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    size_t i;
    for (i = 0; i < n; i++) w->hash = (w->hash ^ b[i]) * 1099511628211ull;
}

static void visit(walk *w, const rtws_resp_reply *r, uint32_t depth) {
    size_t i, k;
    w->nodes++;
    FUZZ_CHECK(r->type > RTWS_RESP_NONE && r->type <= RTWS_RESP_VERBATIM);
    mix(w, &r->type, sizeof r->type);
    switch (r->type) {
    case RTWS_RESP_ARRAY:
    case RTWS_RESP_SET:
    case RTWS_RESP_PUSH:
    case RTWS_RESP_MAP:
        FUZZ_CHECK(depth < w->cfg->max_depth);
        k = r->n * (r->type == RTWS_RESP_MAP ? 2u : 1u);
        FUZZ_CHECK(k <= w->cfg->max_elements);
        FUZZ_CHECK((k == 0) == (r->elem == NULL));
        mix(w, &r->n, sizeof r->n);
        for (i = 0; i < k; i++) visit(w, &r->elem[i], depth + 1);
        break;
    case RTWS_RESP_INTEGER:
    case RTWS_RESP_BOOL:
        FUZZ_CHECK(r->type != RTWS_RESP_BOOL || r->integer == 0 || r->integer == 1);
        mix(w, &r->integer, sizeof r->integer);
        break;
    case RTWS_RESP_NIL: break;
    default:
        FUZZ_CHECK(r->str >= w->lo && r->str + r->len <= w->hi);
        if (r->type == RTWS_RESP_BULK || r->type == RTWS_RESP_VERBATIM)
            FUZZ_CHECK(r->len <= w->cfg->max_bulk);
        else if (r->type != RTWS_RESP_ERROR)
            FUZZ_CHECK(r->len <= w->cfg->max_line);
        FUZZ_CHECK(memchr(r->str, '\n', r->len) == NULL || r->type == RTWS_RESP_BULK ||
                   r->type == RTWS_RESP_VERBATIM || r->type == RTWS_RESP_ERROR);
        mix(w, &r->len, sizeof r->len);
        mix(w, r->str, r->len);
        if (w->nstr < 64) {
            w->argv[w->nstr] = r->str;
            w->lens[w->nstr++] = r->len;
        }
    }
}

/* The strings of a reply, encoded as a command, parse back to themselves. */
static void round_trip(const walk *w) {
    static char buf[1 << 16];
    size_t n, used, i;
    rtws_resp_parser p;
    const rtws_resp_reply *r;
    if (w->nstr == 0) return;
    n = rtws_resp_encode_command(buf, sizeof buf, w->nstr, w->argv, w->lens);
    if (n > sizeof buf) return;
    FUZZ_CHECK(rtws_resp_encode_command(NULL, 0, w->nstr, w->argv, w->lens) == n);
    rtws_resp_init(&p, NULL);
    FUZZ_CHECK(rtws_resp_parse(&p, buf, n, &used) == RTWS_OK && used == n);
    r = rtws_resp_get_reply(&p);
    FUZZ_CHECK(r->type == RTWS_RESP_ARRAY && r->n == (size_t)w->nstr);
    for (i = 0; i < r->n; i++)
        FUZZ_CHECK(r->elem[i].type == RTWS_RESP_BULK && r->elem[i].len == w->lens[i] &&
                   memcmp(r->elem[i].str, w->argv[i], w->lens[i]) == 0);
    rtws_resp_free(&p);
}

typedef struct outcome {
    uint64_t hash[MAXR];
    size_t used[MAXR];
    int n;
    rtws_err end;
    rtws_resp_error why;
    size_t err_at; /* absolute offset in the stream */
} outcome;

static void record(outcome *o, rtws_resp_parser *p, const rtws_resp_config *cfg, const char *d,
                   size_t len, size_t used, int check) {
    walk w;
    memset(&w, 0, sizeof w);
    w.lo = d;
    w.hi = d + len;
    w.cfg = cfg;
    w.hash = 1469598103934665603ull;
    FUZZ_CHECK(used > 0 && used <= len && used <= cfg->max_reply);
    visit(&w, rtws_resp_get_reply(p), 0);
    FUZZ_CHECK(w.nodes <= cfg->max_elements);
    if (check) round_trip(&w);
    o->hash[o->n] = w.hash;
    o->used[o->n++] = used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rtws_resp_config cfg;
    rtws_resp_parser p;
    outcome a, b;
    const char *d = (const char *)data + 2;
    size_t n, off, used, have;
    uint32_t rnd;
    rtws_err e = RTWS_OK;
    if (size < 2) return 0;
    n = size - 2;
    memset(&cfg, 0, sizeof cfg);
    if (data[0] & 1) { /* small limits, so fuzzing reaches them */
        cfg.max_bulk = 1u + (data[0] >> 1 & 15u);
        cfg.max_line = 1u + (data[0] >> 5);
        cfg.max_elements = 2u + (data[0] >> 3 & 7u);
        cfg.max_reply = 8u + data[0];
        cfg.max_depth = 1u + (data[0] >> 2 & 3u);
    }
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    /* one shot: reply after reply from the whole input */
    FUZZ_CHECK(rtws_resp_init(&p, &cfg) == RTWS_OK);
    cfg = p.priv_.cfg; /* the effective limits */
    for (off = 0; a.n < MAXR; off += used) {
        e = rtws_resp_parse(&p, d + off, n - off, &used);
        a.end = e;
        if (e != RTWS_OK) break;
        record(&a, &p, &cfg, d + off, n - off, used, 1);
    }
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_EAGAIN || e == RTWS_ERR_SYNTAX || e == RTWS_ERR_TOO_BIG ||
               e == RTWS_ERR_DEPTH);
    FUZZ_CHECK((e == RTWS_OK || e == RTWS_EAGAIN) == (rtws_resp_get_error(&p) == RTWS_RESP_E_NONE));
    a.why = rtws_resp_get_error(&p);
    a.err_at = off + rtws_resp_get_error_offset(&p);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_EAGAIN || a.err_at < n || a.why == RTWS_RESP_E_SIZE);
    rtws_resp_free(&p);
    /* in pieces: the unconsumed bytes again, with a random number more */
    rtws_resp_init(&p, &cfg);
    rnd = data[1] * 2654435761u + 1u;
    for (off = 0, have = 0, e = RTWS_EAGAIN; b.n < MAXR;) {
        rnd = rnd * 1103515245u + 12345u;
        if (have < n) have += 1 + (rnd >> 16) % 17;
        if (have > n) have = n;
        e = rtws_resp_parse(&p, d + off, have - off, &used);
        b.end = e;
        if (e == RTWS_OK) {
            record(&b, &p, &cfg, d + off, have - off, used, 0);
            off += used;
            continue;
        }
        if (e != RTWS_EAGAIN || have == n) break;
    }
    b.why = rtws_resp_get_error(&p);
    b.err_at = off + rtws_resp_get_error_offset(&p);
    rtws_resp_free(&p);
    FUZZ_CHECK(a.n == b.n);
    FUZZ_CHECK(memcmp(a.hash, b.hash, sizeof a.hash) == 0);
    FUZZ_CHECK(memcmp(a.used, b.used, sizeof a.used) == 0);
    if (a.n < MAXR) {
        FUZZ_CHECK(a.end == b.end && a.why == b.why);
        /* an oversized reply is refused by its size alone, its offset
           is the limit; any other error is at the same byte */
        if (a.end != RTWS_OK && a.end != RTWS_EAGAIN) FUZZ_CHECK(a.err_at == b.err_at);
    }
    return 0;
}
