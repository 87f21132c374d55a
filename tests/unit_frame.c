/* tests/unit_frame.c - layer 1: rtws_frame_header_check in both roles,
   rtws_frame_header_encode round trips, rtws_frame_mask against a byte-at-a-time
   reference, and rtws_frame_parser fed whole, one byte per call and split at
   every offset, with inputs ending at a PROT_NONE page. */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "guard.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- rtws_frame_header_check ---------------------------------------------------- */

static rtws_frame_header hdr(int fin, unsigned rsv, unsigned op, int masked, uint64_t len) {
    rtws_frame_header h;
    memset(&h, 0, sizeof h);
    h.fin = (uint8_t)fin;
    h.rsv = (uint8_t)rsv;
    h.opcode = (uint8_t)op;
    h.masked = (uint8_t)masked;
    if (masked) memcpy(h.mask, "\x01\x02\x03\x04", 4);
    h.len = len;
    h.header_len = 2;
    return h;
}

static void test_frame_check(void) {
    int r;
    for (r = 0; r < 2; r++) {
        rtws_role role = r ? RTWS_SERVER : RTWS_CLIENT;
        int m = r;         /* what this role receives: servers get masked frames */
        unsigned op, rsv;
        rtws_frame_header h;
        /* the masking direction, §5.1 */
        h = hdr(1, 0, RTWS_OP_TEXT, m, 5);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
        h = hdr(1, 0, RTWS_OP_TEXT, !m, 5);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
        h = hdr(1, 0, RTWS_OP_PING, !m, 0);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
        h = hdr(0, 0, RTWS_OP_CONT, !m, 1);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
        /* RSV1..3, alone and together, on data and control frames */
        for (rsv = 1; rsv <= 7; rsv++) {
            h = hdr(1, rsv, RTWS_OP_TEXT, m, 1);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            h = hdr(1, rsv, RTWS_OP_PING, m, 1);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            h = hdr(1, rsv, RTWS_OP_CONT, m, 1);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
        }
        /* reserved opcodes 3-7 and 0xB-0xF, in and out of a message */
        for (op = 3; op <= 15; op++) {
            if (op >= 8 && op <= 10) continue;
            h = hdr(1, 0, op, m, 0);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
            h = hdr(0, 0, op, m, 0);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
        }
        /* control frames: <= 125 bytes, never fragmented, allowed inside a message */
        for (op = RTWS_OP_CLOSE; op <= RTWS_OP_PONG; op++) {
            h = hdr(1, 0, op, m, 0);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
            h = hdr(1, 0, op, m, 125);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_OK);
            h = hdr(1, 0, op, m, 126);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            h = hdr(1, 0, op, m, 65536);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            h = hdr(0, 0, op, m, 0);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
        }
        /* continuation only inside a message, a new data frame only outside (§5.4) */
        h = hdr(1, 0, RTWS_OP_CONT, m, 3);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_OK);
        h = hdr(0, 0, RTWS_OP_CONT, m, 3);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_ERR_PROTOCOL);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_OK);
        for (op = RTWS_OP_TEXT; op <= RTWS_OP_BINARY; op++) {
            h = hdr(1, 0, op, m, 3);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
            h = hdr(0, 0, op, m, 3);
            CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
            CHECK_EQ(rtws_frame_header_check(&h, role, 1, 0), RTWS_ERR_PROTOCOL);
        }
        /* max_frame: equal is fine, one more is too big; 0 means no cap */
        h = hdr(1, 0, RTWS_OP_BINARY, m, 1000);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 1000), RTWS_OK);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 999), RTWS_ERR_TOO_BIG);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 1), RTWS_ERR_TOO_BIG);
        h = hdr(0, 0, RTWS_OP_CONT, m, 1001);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 1000), RTWS_ERR_TOO_BIG);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 1001), RTWS_OK);
        h = hdr(1, 0, RTWS_OP_TEXT, m, 0x7FFFFFFFFFFFFFFFull);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 0), RTWS_OK);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, (uint64_t)16 << 20), RTWS_ERR_TOO_BIG);
        /* a protocol error is reported as such even when the frame is also too big */
        h = hdr(1, 0, RTWS_OP_TEXT, m, 5000);
        CHECK_EQ(rtws_frame_header_check(&h, role, 1, 10), RTWS_ERR_PROTOCOL);
        h = hdr(1, 0, RTWS_OP_TEXT, !m, 5000);
        CHECK_EQ(rtws_frame_header_check(&h, role, 0, 10), RTWS_ERR_PROTOCOL);
    }
    {
        /* RTWS_ROLE_DEFAULT is the client */
        rtws_frame_header h = hdr(1, 0, RTWS_OP_TEXT, 0, 1);
        CHECK_EQ(rtws_frame_header_check(&h, RTWS_ROLE_DEFAULT, 0, 0), RTWS_OK);
        h = hdr(1, 0, RTWS_OP_TEXT, 1, 1);
        CHECK_EQ(rtws_frame_header_check(&h, RTWS_ROLE_DEFAULT, 0, 0), RTWS_ERR_PROTOCOL);
    }
}

/* ---- rtws_frame_header_encode -------------------------------------------- */

static void test_header_encode(void) {
    static const uint64_t lens[] = {0,     1,     5,     124,        125,        126,
                                    127,   255,   256,   65534,      65535,      65536,
                                    65537, 1u << 24, 0xFFFFFFFFull, 0x100000000ull,
                                    0x7FFFFFFFFFFFFFFFull};
    static const rtws_opcode ops[] = {RTWS_OP_CONT, RTWS_OP_TEXT, RTWS_OP_BINARY,
                                      RTWS_OP_CLOSE, RTWS_OP_PING, RTWS_OP_PONG};
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    size_t li, oi;
    int fin, masked, bad = 0;
    for (li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (oi = 0; oi < sizeof ops / sizeof ops[0]; oi++)
            for (fin = 0; fin <= 1; fin++)
                for (masked = 0; masked <= 1; masked++) {
                    uint8_t out[RTWS_FRAME_HEADER_MAX + 4];
                    rtws_frame_header h;
                    size_t n, want;
                    memset(out, 0xAA, sizeof out);
                    n = rtws_frame_header_encode(out, fin, ops[oi], lens[li],
                                                 masked ? key : NULL);
                    want = (lens[li] < 126 ? 2u : lens[li] <= 65535 ? 4u : 10u) +
                           (masked ? 4u : 0u);
                    if (n != want || out[n] != 0xAA) bad++;
                    if (rtws_frame_header_decode(out, n, &h) != RTWS_OK) {
                        bad++;
                        continue;
                    }
                    if (h.fin != fin || h.rsv != 0 || h.opcode != ops[oi] || h.masked != masked ||
                        h.len != lens[li] || h.header_len != n)
                        bad++;
                    if (masked && memcmp(h.mask, key, 4) != 0) bad++;
                    /* one byte short is never enough */
                    if (rtws_frame_header_decode(out, n - 1, &h) != RTWS_EAGAIN) bad++;
                }
    CHECK_EQ(bad, 0);
    {
        /* exact bytes of the three forms */
        uint8_t out[RTWS_FRAME_HEADER_MAX];
        CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_CLOSE, 2, NULL), 2);
        CHECK_MEM(out, "\x88\x02", 2);
        CHECK_EQ(rtws_frame_header_encode(out, 0, RTWS_OP_BINARY, 0x1234, key), 8);
        CHECK_MEM(out, "\x02\xfe\x12\x34\xde\xad\xbe\xef", 8);
        CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_TEXT, 0x0102030405060708ull, key), 14);
        CHECK_MEM(out, "\x81\xff\x01\x02\x03\x04\x05\x06\x07\x08\xde\xad\xbe\xef", 14);
    }
}

/* ---- rtws_frame_mask ----------------------------------------------------------- */

static uint32_t rng_state = 0x12345678u;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_mask(void) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    /* 8-byte aligned storage, so "align" is the payload address mod 16 */
    static uint64_t store[(16 + 300 + 16) / 8];
    uint8_t *buf = (uint8_t *)store, base[sizeof store], ref[sizeof store];
    size_t len, align, pos, i;
    unsigned long bad = 0;
    for (i = 0; i < sizeof base; i++) base[i] = (uint8_t)(i * 29 + 3);
    for (len = 0; len <= 300; len++)
        for (align = 0; align < 16; align++)
            for (pos = 0; pos < 4; pos++) {
                size_t ret;
                memcpy(buf, base, sizeof base);
                memcpy(ref, base, sizeof base);
                for (i = 0; i < len; i++) ref[align + i] ^= key[(pos + i) & 3];
                ret = rtws_frame_mask(buf + align, len, key, pos);
                /* the payload is masked, the bytes around it are not touched */
                if (ret != (pos + len) % 4 || memcmp(buf, ref, sizeof ref) != 0) {
                    if (!bad)
                        fprintf(stderr, "rtws_frame_mask: len %lu align %lu pos %lu wrong\n",
                                (unsigned long)len, (unsigned long)align, (unsigned long)pos);
                    bad++;
                }
            }
    CHECK_EQ(bad, 0);
    /* bytes before the payload are untouched too */
    {
        uint8_t b[64];
        memset(b, 0x55, sizeof b);
        rtws_frame_mask(b + 5, 40, key, 2);
        CHECK(b[4] == 0x55 && b[45] == 0x55);
        CHECK_EQ(b[5], 0x55 ^ key[2]);
        CHECK_EQ(b[44], 0x55 ^ key[(2 + 39) & 3]);
    }
    /* pos is taken mod 4 */
    {
        uint8_t a[9] = {0}, b[9] = {0};
        CHECK_EQ(rtws_frame_mask(a, 9, key, 6), 3);
        CHECK_EQ(rtws_frame_mask(b, 9, key, 2), 3);
        CHECK_MEM(a, b, 9);
    }
    /* a payload unmasked in arbitrary pieces equals one unmasked whole, and
       masking twice gives the input back */
    {
        uint8_t whole[2000], pieces[2000], orig[2000];
        int round, bad_split = 0;
        for (round = 0; round < 200; round++) {
            size_t n = rng() % sizeof whole, off = 0, p0 = rng() & 3, p = p0;
            uint8_t k[4];
            for (i = 0; i < 4; i++) k[i] = (uint8_t)rng();
            for (i = 0; i < n; i++) orig[i] = (uint8_t)rng();
            memcpy(whole, orig, n);
            memcpy(pieces, orig, n);
            rtws_frame_mask(whole, n, k, p);
            while (off < n) {
                size_t take = 1 + rng() % (round < 100 ? 17 : 300);
                if (take > n - off) take = n - off;
                p = rtws_frame_mask(pieces + off, take, k, p);
                off += take;
            }
            if (memcmp(whole, pieces, n) != 0) bad_split++;
            if (p != (p0 + n) % 4) bad_split++;
            rtws_frame_mask(whole, n, k, p0);
            if (memcmp(whole, orig, n) != 0) bad_split++;
        }
        CHECK_EQ(bad_split, 0);
    }
}

/* ---- rtws_frame_parser --------------------------------------------------- */

/* A transcript of what the parser reported: for each piece, a start marker
   with the header fields, the payload bytes, an end marker. */
typedef struct transcript {
    uint8_t *b;
    size_t len, cap;
} transcript;

static void tr_put(transcript *t, const void *p, size_t n) {
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 64;
        t->b = (uint8_t *)realloc(t->b, t->cap);
        if (!t->b) exit(2);
    }
    memcpy(t->b + t->len, p, n);
    t->len += n;
}

static void tr_start(transcript *t, int fin, unsigned op, uint64_t len) {
    uint8_t m[11];
    size_t i;
    m[0] = 'S';
    m[1] = (uint8_t)((unsigned)fin << 4 | op);
    for (i = 0; i < 8; i++) m[2 + i] = (uint8_t)(len >> (8 * i));
    m[10] = ':';
    tr_put(t, m, sizeof m);
}

static void tr_end(transcript *t) { tr_put(t, "E", 1); }

typedef struct feed_result {
    rtws_err err;     /* last return */
    size_t consumed;  /* input bytes taken */
    int bad;          /* a contract was broken on the way */
} feed_result;

/* Feeds wire[0..n) to a fresh parser in the pieces given by cuts (each piece
   copied to the end of a guarded page, so reading past it faults). */
static feed_result feed(rtws_role role, uint64_t max_frame, const uint8_t *wire, size_t n,
                        const size_t *cuts, size_t ncuts, transcript *t) {
    rtws_frame_parser p;
    feed_result r;
    size_t k, start = 0;
    r.err = RTWS_EAGAIN;
    r.consumed = 0;
    r.bad = 0;
    rtws_frame_parser_init(&p, role, max_frame);
    for (k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n, off = 0, len = end - start;
        guard g;
        uint8_t *chunk;
        if (len == 0) {
            /* an empty piece changes nothing */
            rtws_frame_piece piece;
            uint8_t none[1];
            size_t used = 999999;
            rtws_err e = rtws_frame_parser_feed(&p, none, 0, &used, &piece);
            if (used != 0 || (e != RTWS_EAGAIN && e != r.err)) r.bad = 1;
            if (e != RTWS_EAGAIN) return r;
            continue;
        }
        chunk = guard_copy(&g, wire + start, len);
        do {
            rtws_frame_piece piece;
            size_t used = 999999;
            rtws_err e = rtws_frame_parser_feed(&p, chunk + off, len - off, &used, &piece);
            r.err = e;
            if (used > len - off) r.bad = 1;
            off += used > len - off ? 0 : used;
            if (e == RTWS_EAGAIN) {
                if (off != len) r.bad = 1;
                break;
            }
            if (e != RTWS_OK) {
                r.consumed += off;
                guard_free(&g);
                return r;
            }
            if (used == 0) {
                r.bad = 1;
                break;
            }
            if (piece.data < chunk || piece.data + piece.len > chunk + off) r.bad = 1;
            if (piece.frame_start) tr_start(t, piece.h->fin, piece.h->opcode, piece.h->len);
            tr_put(t, piece.data, piece.len);
            if (piece.frame_end) tr_end(t);
        } while (off < len);
        r.consumed += len;
        guard_free(&g);
        start = end;
    }
    return r;
}

typedef struct wframe {
    int fin;
    unsigned op;
    const char *payload;
    size_t len; /* 0: strlen(payload); (size_t)-1: empty */
} wframe;

/* builds a wire stream of frames (masked with a rotating key when mask) and
   the transcript a correct parser produces for it */
static size_t build(const wframe *f, size_t nf, int mask, uint8_t *wire, transcript *want) {
    size_t i, n = 0;
    for (i = 0; i < nf; i++) {
        size_t len = f[i].len == (size_t)-1 ? 0 : f[i].len ? f[i].len : strlen(f[i].payload);
        uint8_t key[4];
        key[0] = (uint8_t)(0x11 * (i + 1));
        key[1] = 0xfa;
        key[2] = (uint8_t)(0x21 + i);
        key[3] = 0x3d;
        n += rtws_frame_header_encode(wire + n, f[i].fin, (rtws_opcode)f[i].op, len,
                                      mask ? key : NULL);
        memcpy(wire + n, f[i].payload, len);
        if (mask) rtws_frame_mask(wire + n, len, key, 0);
        n += len;
        tr_start(want, f[i].fin, f[i].op, len);
        tr_put(want, f[i].payload, len);
        tr_end(want);
    }
    return n;
}

/* whole, one byte per call, and in two at every offset: all must give want */
static int same(const transcript *a, const transcript *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->b, b->b, a->len) == 0);
}

static void three_ways(const char *name, rtws_role role, uint64_t max_frame, const uint8_t *wire,
                       size_t n, const transcript *want, rtws_err want_err, size_t want_consumed,
                       size_t split_every) {
    transcript t = {NULL, 0, 0};
    feed_result r;
    size_t *cuts = (size_t *)calloc(n + 1, sizeof *cuts), k;
    int bad_split = 0;
    r = feed(role, max_frame, wire, n, cuts, 0, &t);
    CHECK(!r.bad && r.err == want_err && r.consumed == want_consumed);
    CHECK(same(&t, want));
    t.len = 0;
    for (k = 1; k < n; k++) cuts[k - 1] = k;
    r = feed(role, max_frame, wire, n, cuts, n ? n - 1 : 0, &t);
    CHECK(!r.bad && r.err == want_err && r.consumed == want_consumed);
    CHECK(same(&t, want));
    for (k = 0; k <= n; k += (k < 300 || n - k < 300) ? 1 : split_every) {
        t.len = 0;
        cuts[0] = k;
        r = feed(role, max_frame, wire, n, cuts, 1, &t);
        if (r.bad || r.err != want_err || r.consumed != want_consumed || !same(&t, want)) {
            if (!bad_split)
                fprintf(stderr, "%s: split at %lu: err %d consumed %lu\n", name, (unsigned long)k,
                        (int)r.err, (unsigned long)r.consumed);
            bad_split++;
        }
    }
    if (bad_split) fprintf(stderr, "%s: %d bad splits\n", name, bad_split);
    CHECK_EQ(bad_split, 0);
    free(cuts);
    free(t.b);
}

static void test_parser_streams(void) {
    static uint8_t wire[2 * 65536 + 400];
    static char big[65536];
    char p256[256];
    transcript want = {NULL, 0, 0};
    size_t n, i;
    for (i = 0; i < sizeof p256; i++) p256[i] = (char)i;
    for (i = 0; i < sizeof big; i++) big[i] = (char)(i * 13);
    {
        /* a client receives: text, fragmented text with a ping inside, binary, close */
        const wframe f[] = {
            {1, RTWS_OP_TEXT, "Hello", 0},    {0, RTWS_OP_TEXT, "Hel", 0},
            {1, RTWS_OP_PING, "Hello", 0},    {0, RTWS_OP_CONT, "", (size_t)-1},
            {1, RTWS_OP_CONT, "lo", 0},       {1, RTWS_OP_BINARY, p256, 256},
            {1, RTWS_OP_PONG, "", (size_t)-1}, {1, RTWS_OP_CLOSE, "\x03\xe8" "bye", 5},
        };
        want.len = 0;
        n = build(f, sizeof f / sizeof f[0], 0, wire, &want);
        three_ways("client stream", RTWS_CLIENT, 0, wire, n, &want, RTWS_OK, n, 1);
        /* an incomplete prefix ends in RTWS_EAGAIN: every cut inside a header */
        {
            static const size_t inside_header[] = {1, 8, 13};
            size_t j;
            for (j = 0; j < sizeof inside_header / sizeof inside_header[0]; j++) {
                transcript t = {NULL, 0, 0};
                feed_result r = feed(RTWS_CLIENT, 0, wire, inside_header[j], NULL, 0, &t);
                CHECK(!r.bad && r.err == RTWS_EAGAIN && r.consumed == inside_header[j]);
                free(t.b);
            }
        }
    }
    {
        /* a server receives masked frames with a different key each */
        const wframe f[] = {
            {1, RTWS_OP_TEXT, "Hello", 0},       {1, RTWS_OP_PONG, "Hello", 0},
            {0, RTWS_OP_BINARY, p256, 125},      {0, RTWS_OP_CONT, p256, 126},
            {1, RTWS_OP_CONT, p256, 3},          {1, RTWS_OP_CLOSE, "", (size_t)-1},
        };
        want.len = 0;
        n = build(f, sizeof f / sizeof f[0], 1, wire, &want);
        three_ways("server stream", RTWS_SERVER, 0, wire, n, &want, RTWS_OK, n, 1);
        /* the same stream to a client is a protocol error once the first
           header (with its key) is in */
        want.len = 0;
        three_ways("masked to client", RTWS_CLIENT, 0, wire, n, &want, RTWS_ERR_PROTOCOL, 6, 1);
    }
    {
        /* 65535 and 65536 byte payloads (16-bit and 64-bit lengths), masked */
        const wframe f[] = {{1, RTWS_OP_BINARY, big, 65535}, {1, RTWS_OP_BINARY, big, 65536}};
        want.len = 0;
        n = build(f, 2, 1, wire, &want);
        three_ways("64 KiB", RTWS_SERVER, 0, wire, n, &want, RTWS_OK, n, 997);
        /* max_frame: the second frame is too big; its 14-byte header is consumed */
        want.len = 0;
        tr_start(&want, 1, RTWS_OP_BINARY, 65535);
        tr_put(&want, big, 65535);
        tr_end(&want);
        three_ways("max_frame", RTWS_SERVER, 65535, wire, n, &want, RTWS_ERR_TOO_BIG,
                   4 + 4 + 65535 + 14, 997);
    }
    {
        /* errors are reported after the offending header, and nothing after it */
        const wframe ok[] = {{1, RTWS_OP_TEXT, "ok", 0}};
        static const struct {
            const char *name;
            const char *bytes;
            size_t len;
        } bad[] = {
            {"rsv", "\xc1\x00", 2},
            {"opcode 3", "\x83\x00", 2},
            {"opcode B", "\x8b\x00", 2},
            {"ping not fin", "\x09\x00", 2},
            {"ping 126", "\x89\x7e\x00\x7e", 4},
            {"cont first", "\x80\x00", 2},
            {"non-minimal 16", "\x82\x7e\x00\x7d", 4},
            {"non-minimal 64", "\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff", 10},
            {"top bit", "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 10},
        };
        size_t j;
        for (j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            want.len = 0;
            n = build(ok, 1, 0, wire, &want);
            memcpy(wire + n, bad[j].bytes, bad[j].len);
            memcpy(wire + n + bad[j].len, "\x81\x02ok", 4); /* never reached */
            three_ways(bad[j].name, RTWS_CLIENT, 0, wire, n + bad[j].len + 4, &want,
                       RTWS_ERR_PROTOCOL, n + bad[j].len, 1);
        }
        /* a data frame inside a fragmented message */
        {
            const wframe f[] = {{0, RTWS_OP_TEXT, "a", 0}};
            want.len = 0;
            n = build(f, 1, 0, wire, &want);
            memcpy(wire + n, "\x81\x01" "b", 3);
            three_ways("text in message", RTWS_CLIENT, 0, wire, n + 3, &want, RTWS_ERR_PROTOCOL,
                       n + 2, 1);
        }
    }
    free(want.b);
}

static void test_parser_contract(void) {
    rtws_frame_parser p;
    rtws_frame_piece piece;
    uint8_t buf[32];
    size_t used;
    /* header complete, payload not yet: an empty first piece */
    rtws_frame_parser_init(&p, RTWS_CLIENT, 0);
    memcpy(buf, "\x82\x03xyz", 5);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 2, &used, &piece), RTWS_OK);
    CHECK(used == 2 && piece.frame_start && !piece.frame_end && piece.len == 0);
    CHECK(piece.h && piece.h->len == 3 && piece.h->opcode == RTWS_OP_BINARY);
    /* nothing fed: RTWS_EAGAIN */
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 2, 0, &used, &piece), RTWS_EAGAIN);
    CHECK_EQ(used, 0);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 2, 2, &used, &piece), RTWS_OK);
    CHECK(used == 2 && !piece.frame_start && !piece.frame_end && piece.len == 2);
    CHECK(piece.data == buf + 2);
    /* at most one piece per call: the next frame's bytes are left */
    memcpy(buf + 5, "\x81\x00", 2);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 4, 3, &used, &piece), RTWS_OK);
    CHECK(used == 1 && piece.frame_end && piece.len == 1 && piece.data[0] == 'z');
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 5, 2, &used, &piece), RTWS_OK);
    CHECK(used == 2 && piece.frame_start && piece.frame_end && piece.len == 0);
    CHECK(piece.h->opcode == RTWS_OP_TEXT);
    /* errors are sticky and take nothing */
    memcpy(buf, "\x83\x00\x81\x00", 4);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 4, &used, &piece), RTWS_ERR_PROTOCOL);
    CHECK_EQ(used, 2);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 2, 2, &used, &piece), RTWS_ERR_PROTOCOL);
    CHECK_EQ(used, 0);
    rtws_frame_parser_init(&p, RTWS_CLIENT, 10);
    memcpy(buf, "\x82\x0b", 2);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 2, &used, &piece), RTWS_ERR_TOO_BIG);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 2, &used, &piece), RTWS_ERR_TOO_BIG);
    CHECK_EQ(used, 0);
    /* a role that is not RTWS_SERVER parses as a client */
    rtws_frame_parser_init(&p, RTWS_ROLE_DEFAULT, 0);
    memcpy(buf, "\x81\x80\x00\x00\x00\x00", 6);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 6, &used, &piece), RTWS_ERR_PROTOCOL);
    /* a masked payload is unmasked in place with the key position carried over */
    rtws_frame_parser_init(&p, RTWS_SERVER, 0);
    memcpy(buf, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf, 7, &used, &piece), RTWS_OK);
    CHECK(used == 7 && piece.len == 1 && piece.data[0] == 'H');
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 7, 3, &used, &piece), RTWS_OK);
    CHECK(piece.len == 3 && memcmp(piece.data, "ell", 3) == 0);
    CHECK_EQ(rtws_frame_parser_feed(&p, buf + 10, 1, &used, &piece), RTWS_OK);
    CHECK(piece.len == 1 && piece.data[0] == 'o' && piece.frame_end);
}

int main(void) {
    test_frame_check();
    test_header_encode();
    test_mask();
    test_parser_streams();
    test_parser_contract();
    return T_END();
}
