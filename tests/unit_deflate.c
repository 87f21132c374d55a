/* tests/unit_deflate.c - layer 1 deflate: the RFC 1951 codec (issue 18).
   Hand-built streams for the three block types and for every error class,
   streaming a byte at a time, the 32 KiB window edge, the output limit
   against a 1 GiB zip bomb, and round trips for every level and window size
   over varied data, whole and sync-flushed in messages with and without
   context takeover. Interop with zlib is tests/interop_zlib.sh. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

/* --- a bit writer for hand-built streams --------------------------------- */
typedef struct {
    uint8_t *p;
    size_t cap, n; /* bytes */
    unsigned bits; /* bits used in p[n] */
} bw;
static void bw_put(bw *w, unsigned v, unsigned n) { /* n bits of v, LSB first */
    while (n--) {
        if (w->bits == 0) w->p[w->n] = 0;
        w->p[w->n] = (uint8_t)(w->p[w->n] | (v & 1) << w->bits);
        v >>= 1;
        if (++w->bits == 8) {
            w->bits = 0;
            w->n++;
        }
    }
}
static void bw_code(bw *w, unsigned code, unsigned len) { /* a Huffman code, MSB first */
    while (len--) bw_put(w, code >> len & 1, 1);
}
static size_t bw_end(bw *w) { return w->n + (w->bits ? 1 : 0); }
static void bw_init(bw *w, uint8_t *p, size_t cap) {
    w->p = p;
    w->cap = cap;
    w->n = 0;
    w->bits = 0;
}
/* RFC 1951 §3.2.6 fixed codes */
static void fixed_lit(bw *w, unsigned sym) {
    if (sym < 144) bw_code(w, 0x30 + sym, 8);
    else if (sym < 256) bw_code(w, 0x190 + sym - 144, 9);
    else if (sym < 280) bw_code(w, sym - 256, 7);
    else bw_code(w, 0xC0 + sym - 280, 8);
}
/* length 3..258 and distance 1..32768 with the fixed code */
static const unsigned lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const unsigned lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned dbase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                   33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                   1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const unsigned dext[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                  6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static void fixed_match(bw *w, unsigned len, unsigned dist) {
    unsigned l = 28, d = 29;
    while (lbase[l] > len) l--;
    if (len == 258) l = 28;
    else if (l == 28) l = 27;
    fixed_lit(w, 257 + l);
    bw_put(w, len - lbase[l], lext[l]);
    while (dbase[d] > dist) d--;
    bw_code(w, d, 5);
    bw_put(w, dist - dbase[d], dext[d]);
}

/* --- helpers ------------------------------------------------------------- */
static rtws_z_config cfg_of(unsigned wbits, int level, uint64_t max_output) {
    rtws_z_config c;
    memset(&c, 0, sizeof c);
    c.window_bits = wbits;
    c.level = level;
    c.max_output = max_output;
    return c;
}

/* Inflates all of in with a fresh inflater into out; returns the status and
   the output length in *olen, *used the input consumed. */
static rtws_z_err inflate_all(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *olen,
                              size_t *used, unsigned wbits) {
    rtws_inflate z;
    rtws_z_config c = cfg_of(wbits, 0, 0);
    rtws_z_err e;
    if (rtws_inflate_init(&z, &c, NULL, 0) != RTWS_Z_OK) return RTWS_Z_ERR_NOMEM;
    e = rtws_inflate_feed(&z, in, n, used, out, cap, olen);
    rtws_inflate_free(&z);
    return e;
}
static rtws_z_err inflate_err(const uint8_t *in, size_t n) {
    uint8_t out[4096];
    size_t olen, used;
    return inflate_all(in, n, out, sizeof out, &olen, &used, 15);
}

/* deterministic data */
static uint32_t rng = 1;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}
static void gen_text(uint8_t *p, size_t n) {
    static const char *w[] = {"the ",     "socket ", "frame ", "message ", "channel ",
                              "presence ", "a ",      "of ",    "deflate ", "window\n"};
    size_t i = 0;
    while (i < n) {
        const char *s = w[rnd() % 10];
        while (*s && i < n) p[i++] = (uint8_t)*s++;
    }
}
static void gen_json(uint8_t *p, size_t n) {
    size_t i = 0;
    unsigned k = 0;
    while (i < n) {
        char buf[200];
        int m = snprintf(buf, sizeof buf,
                         "{\"type\":\"publish\",\"channel\":\"room-%u\",\"id\":%u,\"data\":"
                         "{\"user\":\"u%u\",\"text\":\"hi %u\",\"ts\":%u}}\n",
                         rnd() % 16, k, rnd() % 100, rnd() % 1000, 1700000000u + k);
        int j;
        for (j = 0; j < m && i < n; j++) p[i++] = (uint8_t)buf[j];
        k++;
    }
}
static void gen_random(uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}
static void gen_repeat(uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = (uint8_t)("abcabcabd"[i % 9]);
}

/* Compresses in whole with one FINISH; returns the compressed size (0: failure). */
static size_t deflate_all(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level,
                          unsigned wbits) {
    rtws_deflate d;
    rtws_z_config c = cfg_of(wbits, level, 0);
    size_t used = 0, olen = 0;
    rtws_z_err e;
    if (rtws_deflate_init(&d, &c, NULL, 0) != RTWS_Z_OK) return 0;
    e = rtws_deflate_compress(&d, in, n, &used, out, cap, &olen, RTWS_Z_FINISH);
    rtws_deflate_free(&d);
    return e == RTWS_Z_END && used == n ? olen : 0;
}

/* --- RFC 1951 block types, hand-built ------------------------------------ */
static void test_stored(void) {
    static const uint8_t s[] = {0x01, 0x05, 0x00, 0xFA, 0xFF, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t two[] = {0x00, 0x02, 0x00, 0xFD, 0xFF, 'a', 'b',
                                  0x01, 0x00, 0x00, 0xFF, 0xFF}; /* then an empty final one */
    uint8_t out[64];
    size_t olen, used;
    CHECK_EQ(inflate_all(s, sizeof s, out, sizeof out, &olen, &used, 15), RTWS_Z_END);
    CHECK(olen == 5 && memcmp(out, "hello", 5) == 0 && used == sizeof s);
    CHECK_EQ(inflate_all(two, sizeof two, out, sizeof out, &olen, &used, 15), RTWS_Z_END);
    CHECK(olen == 2 && memcmp(out, "ab", 2) == 0 && used == sizeof two);
}

static void test_fixed(void) {
    uint8_t buf[64], out[64];
    size_t n, olen, used;
    bw w;
    bw_init(&w, buf, sizeof buf);
    bw_put(&w, 1, 1); /* BFINAL */
    bw_put(&w, 1, 2); /* fixed */
    fixed_lit(&w, 'a');
    fixed_lit(&w, 'b');
    fixed_lit(&w, 0xE9); /* a 9-bit literal */
    fixed_match(&w, 7, 3); /* overlapping copy (fuzz_inflate found its index arithmetic
                              wrapping below the buffer: UB that clang's UBSan reports here) */
    fixed_lit(&w, 256);
    n = bw_end(&w);
    buf[n] = 0x55; /* trailing byte: not part of the stream */
    CHECK_EQ(inflate_all(buf, n + 1, out, sizeof out, &olen, &used, 15), RTWS_Z_END);
    CHECK(olen == 10 && memcmp(out, "ab\xE9" "ab\xE9" "ab\xE9" "a", 10) == 0);
    CHECK_EQ(used, n); /* stops right after the final block */
}

/* A dynamic block: literals 'a', 'b', end of block and length 3 get 2-bit
   codes; distances 1 and 2 get 1-bit codes; the code-length code uses 18
   (1 bit) and lengths 1 and 2 (2 bits). Writes "ababab". */
static size_t build_dynamic(uint8_t *buf, size_t cap) {
    static const unsigned order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    unsigned cl[19] = {0}, i;
    bw w;
    cl[18] = 1;
    cl[1] = 2;
    cl[2] = 2;
    bw_init(&w, buf, cap);
    bw_put(&w, 1, 1);
    bw_put(&w, 2, 2);  /* dynamic */
    bw_put(&w, 1, 5);  /* HLIT: 258 */
    bw_put(&w, 1, 5);  /* HDIST: 2 */
    bw_put(&w, 14, 4); /* HCLEN: 18 */
    for (i = 0; i < 18; i++) bw_put(&w, cl[order[i]], 3);
    /* canonical code-length code: 18 -> 0, 1 -> 10, 2 -> 11 */
    bw_code(&w, 0, 1);
    bw_put(&w, 97 - 11, 7); /* 0..96 zero */
    bw_code(&w, 3, 2);
    bw_code(&w, 3, 2); /* 97, 98: 2 */
    bw_code(&w, 0, 1);
    bw_put(&w, 138 - 11, 7); /* 99..236 zero (18 repeats at most 138) */
    bw_code(&w, 0, 1);
    bw_put(&w, 19 - 11, 7); /* 237..255 zero */
    bw_code(&w, 3, 2);
    bw_code(&w, 3, 2); /* 256, 257: 2 */
    bw_code(&w, 2, 2);
    bw_code(&w, 2, 2); /* distances 0, 1: 1 */
    /* literal/length code: 97 -> 00, 98 -> 01, 256 -> 10, 257 -> 11 */
    bw_code(&w, 0, 2);
    bw_code(&w, 1, 2);
    bw_code(&w, 3, 2); /* length 3 */
    bw_code(&w, 1, 1); /* distance 2 */
    bw_code(&w, 1, 2); /* 'b' */
    bw_code(&w, 2, 2); /* end */
    return bw_end(&w);
}

static void test_dynamic(void) {
    uint8_t buf[128], out[64];
    size_t n = build_dynamic(buf, sizeof buf), olen, used;
    CHECK_EQ(inflate_all(buf, n, out, sizeof out, &olen, &used, 15), RTWS_Z_END);
    CHECK(olen == 6 && memcmp(out, "ababab", 6) == 0 && used == n);
}

/* --- every error class ---------------------------------------------------- */
static size_t dyn_header(bw *w, unsigned hlit, unsigned hdist, unsigned hclen) {
    bw_put(w, 1, 1);
    bw_put(w, 2, 2);
    bw_put(w, hlit - 257, 5);
    bw_put(w, hdist - 1, 5);
    bw_put(w, hclen - 4, 4);
    return 0;
}

static void test_errors(void) {
    uint8_t buf[256];
    bw w;
    static const uint8_t type3[] = {0x07, 0, 0, 0};
    static const uint8_t badlen[] = {0x01, 0x05, 0x00, 0x00, 0x00, 'x'};
    unsigned i;

    CHECK_EQ(inflate_err(type3, sizeof type3), RTWS_Z_ERR_BLOCK_TYPE);
    CHECK_EQ(inflate_err(badlen, sizeof badlen), RTWS_Z_ERR_STORED_LEN);

    bw_init(&w, buf, sizeof buf); /* HLIT 287 */
    dyn_header(&w, 287, 1, 4);
    bw_put(&w, 0, 12);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_TABLE_SIZE);
    bw_init(&w, buf, sizeof buf); /* HDIST 31 */
    dyn_header(&w, 257, 31, 4);
    bw_put(&w, 0, 12);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_TABLE_SIZE);

    /* code-length code with three 1-bit codes: oversubscribed */
    bw_init(&w, buf, sizeof buf);
    dyn_header(&w, 257, 1, 4);
    bw_put(&w, 1, 3); /* 16 */
    bw_put(&w, 1, 3); /* 17 */
    bw_put(&w, 1, 3); /* 18 */
    bw_put(&w, 0, 3);
    bw_put(&w, 0, 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_TREE_OVER);
    /* one 2-bit code: incomplete */
    bw_init(&w, buf, sizeof buf);
    dyn_header(&w, 257, 1, 4);
    bw_put(&w, 0, 3);
    bw_put(&w, 0, 3);
    bw_put(&w, 2, 3); /* 18: 2 bits */
    bw_put(&w, 0, 3);
    bw_put(&w, 0, 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_TREE_INCOMPLETE);

    /* code lengths: 16 (repeat) first, and a run past the end */
    bw_init(&w, buf, sizeof buf);
    dyn_header(&w, 257, 1, 4);
    bw_put(&w, 1, 3); /* 16: 1 bit (code 0) */
    bw_put(&w, 0, 3);
    bw_put(&w, 1, 3); /* 18: 1 bit (code 1) */
    bw_put(&w, 0, 3);
    bw_code(&w, 0, 1); /* 16 with nothing before */
    bw_put(&w, 0, 2 + 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_CODE_LENGTHS);
    bw_init(&w, buf, sizeof buf);
    dyn_header(&w, 257, 1, 4);
    bw_put(&w, 0, 3);
    bw_put(&w, 0, 3);
    bw_put(&w, 1, 3); /* 18: the only... plus 0: 1 bit */
    bw_put(&w, 1, 3); /* 0: 1 bit */
    for (i = 0; i < 3; i++) { /* 3 * 138 zeros > 258 lengths */
        bw_code(&w, 1, 1);
        bw_put(&w, 127, 7);
    }
    bw_put(&w, 0, 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_CODE_LENGTHS);

    /* no code for end of block: 258 lengths of zeros via 18 and 0, then lengths 1 for 0 and 1 */
    bw_init(&w, buf, sizeof buf);
    dyn_header(&w, 257, 1, 18);
    {
        static const unsigned order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
        unsigned cl[19] = {0};
        cl[18] = 1; /* 0 */
        cl[1] = 2;  /* 10 */
        cl[0] = 2;  /* 11 ... canonical by symbol: 0 -> 10, 1 -> 11 */
        for (i = 0; i < 18; i++) bw_put(&w, cl[order[i]], 3);
        bw_code(&w, 3, 2);      /* lit 0: length 1 */
        bw_code(&w, 3, 2);      /* lit 1: length 1 */
        bw_code(&w, 0, 1);
        bw_put(&w, 138 - 11, 7); /* 2..139 */
        bw_code(&w, 0, 1);
        bw_put(&w, 117 - 11, 7); /* 140..256: 256 is zero */
        bw_code(&w, 2, 2);      /* distance 0: zero */
        bw_put(&w, 0, 16);
    }
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_NO_END);

    /* fixed code symbols that are never valid: length 286, distance 30 */
    bw_init(&w, buf, sizeof buf);
    bw_put(&w, 3, 3);
    fixed_lit(&w, 286);
    bw_put(&w, 0, 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_SYMBOL);
    bw_init(&w, buf, sizeof buf);
    bw_put(&w, 3, 3);
    fixed_lit(&w, 'a');
    fixed_lit(&w, 257);
    bw_code(&w, 30, 5);
    bw_put(&w, 0, 16);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_SYMBOL);

    /* distance before the start of the data */
    bw_init(&w, buf, sizeof buf);
    bw_put(&w, 3, 3);
    fixed_lit(&w, 'a');
    fixed_match(&w, 3, 2);
    fixed_lit(&w, 256);
    CHECK_EQ(inflate_err(buf, bw_end(&w)), RTWS_Z_ERR_DISTANCE);

    /* errors are sticky until a reset; bad arguments */
    {
        rtws_inflate z;
        rtws_deflate d;
        rtws_z_config c = cfg_of(7, 0, 0);
        uint8_t out[16], mem[64];
        size_t used, olen;
        CHECK_EQ(rtws_inflate_init(&z, &c, NULL, 0), RTWS_Z_ERR_INVALID);
        c.window_bits = 16;
        CHECK_EQ(rtws_deflate_init(&d, &c, NULL, 0), RTWS_Z_ERR_INVALID);
        c = cfg_of(15, 10, 0);
        CHECK_EQ(rtws_deflate_init(&d, &c, NULL, 0), RTWS_Z_ERR_INVALID);
        CHECK_EQ(rtws_inflate_init(&z, NULL, mem, sizeof mem), RTWS_Z_ERR_INVALID);
        CHECK_EQ(rtws_inflate_init(&z, NULL, NULL, 0), RTWS_Z_OK);
        CHECK_EQ(rtws_inflate_feed(&z, type3, sizeof type3, &used, out, sizeof out, &olen),
                 RTWS_Z_ERR_BLOCK_TYPE);
        CHECK_EQ(rtws_inflate_feed(&z, badlen, sizeof badlen, &used, out, sizeof out, &olen),
                 RTWS_Z_ERR_BLOCK_TYPE);
        rtws_inflate_reset(&z, 0);
        CHECK_EQ(rtws_inflate_feed(&z, badlen, sizeof badlen, &used, out, sizeof out, &olen),
                 RTWS_Z_ERR_STORED_LEN);
        rtws_inflate_reset(&z, 0); /* NULL with length 0 is no input / no room */
        CHECK_EQ(rtws_inflate_feed(&z, NULL, 0, &used, NULL, 0, &olen), RTWS_Z_OK);
        CHECK_EQ(rtws_inflate_feed(&z, NULL, 1, &used, NULL, 0, &olen), RTWS_Z_ERR_INVALID);
        {
            static const uint8_t hello[] = {0x01, 0x05, 0x00, 0xFA, 0xFF, 'h'};
            CHECK_EQ(rtws_inflate_feed(&z, hello, 1, &used, NULL, 0, &olen), RTWS_Z_OK);
            CHECK_EQ(rtws_inflate_feed(&z, hello + 1, 5, &used, NULL, 0, &olen), RTWS_Z_FULL);
        }
        CHECK(used == 4 && olen == 0); /* the header, then no room for 'x' */
        rtws_inflate_free(&z);
        CHECK_EQ(rtws_deflate_init(&d, NULL, NULL, 0), RTWS_Z_OK);
        CHECK_EQ(rtws_deflate_compress(&d, NULL, 0, &used, NULL, 0, &olen, RTWS_Z_NO_FLUSH),
                 RTWS_Z_OK);
        CHECK_EQ(rtws_deflate_compress(&d, NULL, 0, &used, NULL, 0, &olen, RTWS_Z_SYNC_FLUSH),
                 RTWS_Z_FULL);
        CHECK_EQ(rtws_deflate_compress(&d, NULL, 0, &used, out, sizeof out, &olen,
                                       RTWS_Z_SYNC_FLUSH), RTWS_Z_OK);
        CHECK(olen == 5 && memcmp(out, "\0\0\0\377\377", 5) == 0); /* an empty message */
        CHECK_EQ(rtws_deflate_compress(&d, NULL, 0, &used, out, sizeof out, &olen,
                                       (rtws_z_flush)3), RTWS_Z_ERR_INVALID);
        rtws_deflate_free(&d);
    }
    /* every status has its own text */
    {
        int a, b;
        for (a = RTWS_Z_ERR_LAST_ + 1; a <= RTWS_Z_END; a++)
            for (b = a + 1; b <= RTWS_Z_END; b++)
                CHECK(strcmp(rtws_z_err_str(a), rtws_z_err_str(b)) != 0);
        CHECK(strcmp(rtws_z_err_str(99), "unknown deflate status") == 0);
    }
}

/* --- streaming: one byte in, one byte out --------------------------------- */
static void test_one_byte_at_a_time(void) {
    enum { N = 70000 };
    uint8_t *src = (uint8_t *)malloc(N), *comp = (uint8_t *)malloc(N * 2), *out = (uint8_t *)malloc(N);
    size_t clen, i, o = 0, used, olen;
    rtws_inflate z;
    rtws_z_err e = RTWS_Z_OK;
    gen_text(src, N / 2);
    gen_random(src + N / 2, N / 4);
    gen_json(src + N / 2 + N / 4, N - N / 2 - N / 4);
    clen = deflate_all(src, N, comp, N * 2, 6, 15);
    CHECK(clen > 0);
    CHECK_EQ(rtws_inflate_init(&z, NULL, NULL, 0), RTWS_Z_OK);
    for (i = 0; i < clen && e != RTWS_Z_END; i++) {
        size_t off = 0;
        do { /* one input byte; drain it one output byte at a time */
            e = rtws_inflate_feed(&z, comp + i + off, 1 - off, &used, out + o, o < N ? 1 : 0, &olen);
            off += used;
            o += olen;
        } while (e == RTWS_Z_FULL && o < N);
        if (e < 0) break;
    }
    CHECK_EQ(e, RTWS_Z_END);
    CHECK_EQ(i, clen);
    CHECK(o == N && memcmp(out, src, N) == 0);
    rtws_inflate_free(&z);

    /* the compressor, a byte in and a byte out, gives a stream that inflates */
    {
        rtws_deflate d;
        size_t c = 0, ci;
        uint8_t b;
        CHECK_EQ(rtws_deflate_init(&d, NULL, NULL, 0), RTWS_Z_OK);
        for (i = 0; i <= N && e >= 0; i++) {
            int last = i == N;
            do {
                e = rtws_deflate_compress(&d, src + (last ? 0 : i), last ? 0 : 1, &used, &b, 1,
                                          &olen, last ? RTWS_Z_FINISH : RTWS_Z_NO_FLUSH);
                if (olen) comp[c++] = b;
                if (!last && used) break;
            } while (e == RTWS_Z_FULL);
        }
        CHECK_EQ(e, RTWS_Z_END);
        rtws_deflate_free(&d);
        ci = 0;
        e = inflate_all(comp, c, out, N, &o, &ci, 15);
        CHECK_EQ(e, RTWS_Z_END);
        CHECK(o == N && memcmp(out, src, N) == 0);
    }
    free(src);
    free(comp);
    free(out);
}

/* --- the window edge ------------------------------------------------------- */
/* stored block of n random bytes, then a fixed block: one match (len, dist) */
static size_t window_stream(uint8_t *buf, const uint8_t *data, size_t n, unsigned len,
                            unsigned dist) {
    bw w;
    buf[0] = 0x00;
    buf[1] = (uint8_t)n;
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)~n;
    buf[4] = (uint8_t)(~n >> 8);
    memcpy(buf + 5, data, n);
    bw_init(&w, buf + 5 + n, 64);
    bw_put(&w, 3, 3);
    fixed_match(&w, len, dist);
    fixed_lit(&w, 256);
    return 5 + n + bw_end(&w);
}

static void test_window_edge(void) {
    enum { W = 32768 };
    uint8_t *data = (uint8_t *)malloc(W), *buf = (uint8_t *)malloc(W + 128),
            *out = (uint8_t *)malloc(W + 512);
    size_t n, olen, used;
    rtws_inflate z;
    gen_random(data, W);
    n = window_stream(buf, data, W, 258, 32768);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 15), RTWS_Z_END);
    CHECK(olen == W + 258 && memcmp(out + W, data, 258) == 0);
    /* the same stream in two calls: the match comes from the kept window */
    CHECK_EQ(rtws_inflate_init(&z, NULL, NULL, 0), RTWS_Z_OK);
    CHECK_EQ(rtws_inflate_feed(&z, buf, 5 + W, &used, out, W + 512, &olen), RTWS_Z_OK);
    CHECK_EQ(olen, W);
    CHECK_EQ(rtws_inflate_feed(&z, buf + 5 + W, n - 5 - W, &used, out, W + 512, &olen), RTWS_Z_END);
    CHECK(olen == 258 && memcmp(out, data, 258) == 0);
    rtws_inflate_free(&z);
    /* window_bits 14: 16384 back is fine, 16385 is too far */
    n = window_stream(buf, data, 20000, 10, 16384);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 14), RTWS_Z_END);
    CHECK(olen == 20010 && memcmp(out + 20000, out + 20000 - 16384, 10) == 0);
    n = window_stream(buf, data, 20000, 10, 16385);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 14), RTWS_Z_ERR_DISTANCE);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 15), RTWS_Z_END);
    /* window_bits 8 */
    n = window_stream(buf, data, 300, 3, 256);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 8), RTWS_Z_END);
    n = window_stream(buf, data, 300, 3, 257);
    CHECK_EQ(inflate_all(buf, n, out, W + 512, &olen, &used, 8), RTWS_Z_ERR_DISTANCE);
    /* across a reset: kept with context takeover, gone without */
    {
        bw w;
        uint8_t s2[16];
        size_t n2;
        CHECK_EQ(rtws_inflate_init(&z, NULL, NULL, 0), RTWS_Z_OK);
        n = window_stream(buf, data, 1000, 3, 1);
        CHECK_EQ(rtws_inflate_feed(&z, buf, n, &used, out, W, &olen), RTWS_Z_END);
        bw_init(&w, s2, sizeof s2);
        bw_put(&w, 3, 3);
        fixed_match(&w, 5, 1003); /* the last 5 bytes + ... of the previous stream */
        fixed_lit(&w, 256);
        n2 = bw_end(&w);
        rtws_inflate_reset(&z, 1);
        CHECK_EQ(rtws_inflate_feed(&z, s2, n2, &used, out, W, &olen), RTWS_Z_END);
        CHECK(olen == 5 && memcmp(out, data, 5) == 0);
        rtws_inflate_reset(&z, 0);
        CHECK_EQ(rtws_inflate_feed(&z, s2, n2, &used, out, W, &olen), RTWS_Z_ERR_DISTANCE);
        rtws_inflate_free(&z);
    }
    free(data);
    free(buf);
    free(out);
}

/* --- the output limit: a 1 GiB zip bomb ---------------------------------- */
static void test_zip_bomb(void) {
    /* one literal 0, then matches of 258 at distance 1: 1 GiB in about 6.8 MB */
    const uint64_t total = (uint64_t)1 << 30;
    size_t cap = 7u << 20, n, off = 0, used, olen, got = 0;
    uint8_t *buf = (uint8_t *)malloc(cap), *out = (uint8_t *)malloc(65536);
    uint64_t made = 1;
    rtws_inflate z;
    rtws_z_config c = cfg_of(15, 0, 1u << 20);
    rtws_z_err e = RTWS_Z_OK;
    bw w;
    bw_init(&w, buf, cap);
    bw_put(&w, 3, 3);
    fixed_lit(&w, 0);
    for (; made + 258 <= total; made += 258) fixed_match(&w, 258, 1);
    fixed_lit(&w, 256);
    n = bw_end(&w);
    CHECK(n < cap);
    CHECK_EQ(rtws_inflate_init(&z, &c, NULL, 0), RTWS_Z_OK);
    while (off < n) {
        e = rtws_inflate_feed(&z, buf + off, RTWS__MIN(n - off, (size_t)4096), &used, out, 65536,
                              &olen);
        off += used;
        got += olen;
        if (e < 0 || e == RTWS_Z_END) break;
    }
    CHECK_EQ(e, RTWS_Z_ERR_LIMIT);
    CHECK_EQ(got, 1u << 20); /* stopped at the limit, not past it */
    CHECK(off < n / 100);    /* and read little of the bomb */
    /* sticky */
    CHECK_EQ(rtws_inflate_feed(&z, buf + off, 16, &used, out, 65536, &olen), RTWS_Z_ERR_LIMIT);
    /* a stream of exactly the limit passes */
    {
        uint8_t small[64];
        bw_init(&w, small, sizeof small);
        bw_put(&w, 3, 3);
        fixed_lit(&w, 'x');
        fixed_match(&w, 9, 1);
        fixed_lit(&w, 256);
        c = cfg_of(15, 0, 10);
        rtws_inflate_free(&z);
        CHECK_EQ(rtws_inflate_init(&z, &c, NULL, 0), RTWS_Z_OK);
        CHECK_EQ(rtws_inflate_feed(&z, small, bw_end(&w), &used, out, 65536, &olen), RTWS_Z_END);
        CHECK_EQ(olen, 10);
        c = cfg_of(15, 0, 9);
        rtws_inflate_free(&z);
        CHECK_EQ(rtws_inflate_init(&z, &c, NULL, 0), RTWS_Z_OK);
        CHECK_EQ(rtws_inflate_feed(&z, small, bw_end(&w), &used, out, 65536, &olen),
                 RTWS_Z_ERR_LIMIT);
        CHECK_EQ(olen, 9);
    }
    rtws_inflate_free(&z);
    free(buf);
    free(out);
}

/* --- round trips ------------------------------------------------------------ */
static int round_trip(const uint8_t *src, size_t n, int level, unsigned wbits, size_t *clen_out) {
    size_t cap = n + n / 8 + 1024, olen, used, clen;
    uint8_t *comp = (uint8_t *)malloc(cap), *out = (uint8_t *)malloc(n + 1);
    int ok;
    clen = deflate_all(src, n, comp, cap, level, wbits);
    ok = clen > 0 && inflate_all(comp, clen, out, n + 1, &olen, &used, wbits) == RTWS_Z_END &&
         olen == n && used == clen && memcmp(out, src, n) == 0;
    if (clen_out) *clen_out = clen;
    free(comp);
    free(out);
    return ok;
}

static void test_round_trips(void) {
    enum { BIG = 1 << 20 };
    uint8_t *big = (uint8_t *)malloc(BIG), *d = (uint8_t *)malloc(70000);
    void (*gens[4])(uint8_t *, size_t) = {gen_text, gen_json, gen_random, gen_repeat};
    int level, g;
    unsigned wb;
    size_t clen;
    for (level = 1; level <= 9; level++)
        for (wb = 8; wb <= 15; wb++) {
            int ok = 1;
            for (g = 0; g < 4; g++) {
                gens[g](d, 70000);
                ok &= round_trip(d, 70000, level, wb, NULL);
            }
            ok &= round_trip(d, 0, level, wb, NULL);
            ok &= round_trip((const uint8_t *)"x", 1, level, wb, NULL);
            if (!ok) fprintf(stderr, "round trip failed: level %d window_bits %u\n", level, wb);
            CHECK(ok);
        }
    /* 1 MiB of mixed data */
    gen_text(big, BIG / 4);
    gen_json(big + BIG / 4, BIG / 4);
    gen_random(big + BIG / 2, BIG / 8);
    gen_repeat(big + BIG / 2 + BIG / 8, BIG / 8);
    memset(big + 3 * (BIG / 4), 0, BIG / 8);
    gen_text(big + 7 * (BIG / 8), BIG / 8);
    for (level = 1; level <= 9; level += 4) {
        CHECK(round_trip(big, BIG, level, 15, &clen));
        CHECK(clen < BIG / 2);
        CHECK(round_trip(big, BIG, level, 9, NULL));
    }
    /* incompressible data grows by stored-block overhead only */
    gen_random(big, BIG);
    CHECK(round_trip(big, BIG, 6, 15, &clen));
    CHECK(clen <= BIG + 5 * (BIG / 8192) + 16); /* 5 bytes a block of 8192 */
    /* empty input: a final empty fixed block, 2 bytes */
    CHECK(round_trip(big, 0, 1, 15, &clen));
    CHECK_EQ(clen, 2);
    free(big);
    free(d);
}

/* caller-given memory, odd chunks in and out, and a state size check */
static void test_chunked(void) {
    enum { N = 200000 };
    uint8_t *src = (uint8_t *)malloc(N), *comp = (uint8_t *)malloc(N * 2), *out = (uint8_t *)malloc(N);
    rtws_z_config c = cfg_of(12, RTWS_Z_FAST, 0);
    size_t msize = rtws_deflate_mem_size(&c), ip = 0, cl = 0, used, olen;
    void *mem = malloc(msize);
    rtws_deflate d;
    rtws_z_err e = RTWS_Z_OK;
    gen_json(src, N);
    CHECK(rtws_deflate_mem_size(NULL) == 254992);
    CHECK(rtws_inflate_mem_size(NULL) == 12832 + 32768);
    CHECK(msize < rtws_deflate_mem_size(NULL));
    CHECK_EQ(rtws_deflate_init(&d, &c, mem, msize - 1), RTWS_Z_ERR_INVALID);
    CHECK_EQ(rtws_deflate_init(&d, &c, mem, msize), RTWS_Z_OK);
    while (e != RTWS_Z_END && e >= 0) {
        size_t in_n = RTWS__MIN((size_t)(rnd() % 5000), N - ip);
        size_t out_n = 1 + rnd() % 3000;
        e = rtws_deflate_compress(&d, src + ip, in_n, &used, comp + cl, out_n, &olen,
                                  ip + in_n == N ? RTWS_Z_FINISH : RTWS_Z_NO_FLUSH);
        ip += used;
        cl += olen;
    }
    CHECK_EQ(e, RTWS_Z_END);
    CHECK_EQ(rtws_deflate_compress(&d, src, 1, &used, comp, 1, &olen, RTWS_Z_FINISH), RTWS_Z_END);
    rtws_deflate_free(&d);
    free(mem);
    CHECK(inflate_all(comp, cl, out, N, &olen, &used, 12) == RTWS_Z_END && olen == N &&
          memcmp(out, src, N) == 0);
    {
        rtws_inflate z;
        size_t ci = 0, o = 0;
        c.window_bits = 12;
        mem = malloc(rtws_inflate_mem_size(&c));
        CHECK_EQ(rtws_inflate_init(&z, &c, mem, rtws_inflate_mem_size(&c)), RTWS_Z_OK);
        e = RTWS_Z_OK;
        while (e != RTWS_Z_END && e >= 0) {
            size_t in_n = RTWS__MIN((size_t)(rnd() % 700), cl - ci);
            size_t out_n = RTWS__MIN((size_t)(rnd() % 4000), N - o);
            e = rtws_inflate_feed(&z, comp + ci, in_n, &used, out + o, out_n, &olen);
            ci += used;
            o += olen;
        }
        CHECK_EQ(e, RTWS_Z_END);
        CHECK(ci == cl && o == N && memcmp(out, src, N) == 0);
        rtws_inflate_free(&z);
        free(mem);
    }
    free(src);
    free(comp);
    free(out);
}

/* permessage-deflate's shape: messages sync-flushed, 00 00 ff ff removed by
   the sender and put back by the receiver, with and without context takeover */
static void test_messages(void) {
    int takeover, level;
    for (takeover = 0; takeover <= 1; takeover++)
        for (level = 1; level <= 9; level += 5) {
            rtws_deflate d;
            rtws_inflate z;
            rtws_z_config c = cfg_of(10, level, 4096);
            unsigned m;
            size_t total = 0, first = 0;
            int ok = 1;
            CHECK_EQ(rtws_deflate_init(&d, &c, NULL, 0), RTWS_Z_OK);
            CHECK_EQ(rtws_inflate_init(&z, &c, NULL, 0), RTWS_Z_OK);
            for (m = 0; m < 50; m++) {
                uint8_t msg[600], comp[1024], out[700];
                size_t n = m == 7 ? 0 : 100 + rnd() % 500, used, clen, olen;
                static const uint8_t tail[4] = {0, 0, 0xFF, 0xFF};
                gen_json(msg, n);
                ok &= rtws_deflate_compress(&d, msg, n, &used, comp, sizeof comp, &clen,
                                            RTWS_Z_SYNC_FLUSH) == RTWS_Z_OK;
                ok &= used == n && clen >= 5 && memcmp(comp + clen - 4, tail, 4) == 0;
                clen -= 4;
                total += clen;
                if (m == 1) first = clen;
                rtws_deflate_reset(&d, takeover);
                rtws_inflate_reset(&z, takeover);
                ok &= rtws_inflate_feed(&z, comp, clen, &used, out, sizeof out, &olen) ==
                      RTWS_Z_OK && used == clen;
                {
                    size_t o2 = 0, u2 = 0;
                    ok &= rtws_inflate_feed(&z, tail, 4, &u2, out + olen, sizeof out - olen, &o2) ==
                          RTWS_Z_OK && u2 == 4 && o2 == 0;
                }
                ok &= olen == n && memcmp(out, msg, n) == 0;
                if (!takeover) { /* each message stands alone: a fresh inflater reads it */
                    size_t u3, o3;
                    uint8_t out2[700];
                    ok &= inflate_all(comp, clen, out2, sizeof out2, &o3, &u3, 10) == RTWS_Z_OK &&
                          o3 == n && memcmp(out2, msg, n) == 0;
                }
            }
            if (!ok) fprintf(stderr, "messages failed: takeover %d level %d\n", takeover, level);
            CHECK(ok);
            CHECK(first > 0 && total > 0);
            rtws_deflate_free(&d);
            rtws_inflate_free(&z);
        }
}

/* --- RFC 7692 §7 parameters ------------------------------------------------ */
static rtws_err pmd(const char *v, int resp, rtws_pmd_offer *o, size_t max, size_t *count,
                    size_t *off) {
    return rtws_pmd_parse(v, strlen(v), resp, o, max, count, off);
}
static void test_pmd(void) {
    rtws_pmd_offer o[4];
    size_t n, off;
    CHECK_EQ(pmd("permessage-deflate", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_OK && !o[0].server_no_context_takeover &&
          !o[0].client_no_context_takeover && !o[0].server_max_window_bits &&
          !o[0].client_max_window_bits);
    CHECK_EQ(pmd("permessage-deflate; client_max_window_bits", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_OK && o[0].client_max_window_bits == RTWS_PMD_BITS_ANY);
    /* the same in a response: a value is required there */
    CHECK_EQ(pmd("permessage-deflate; client_max_window_bits", 1, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_BAD_VALUE);
    CHECK_EQ(pmd("permessage-deflate; server_max_window_bits=10; client_max_window_bits=15; "
                 "server_no_context_takeover; client_no_context_takeover, permessage-deflate",
                 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 2 && o[0].status == RTWS_PMD_OK && o[0].server_max_window_bits == 10 &&
          o[0].client_max_window_bits == 15 && o[0].server_no_context_takeover == 1 &&
          o[0].client_no_context_takeover == 1 && o[1].status == RTWS_PMD_OK &&
          !o[1].server_max_window_bits);
    CHECK_EQ(pmd("permessage-deflate; server_max_window_bits=\"12\"", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_OK && o[0].server_max_window_bits == 12);
    CHECK_EQ(pmd("permessage-deflate; server_max_window_bits=\"1\\5\"", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].server_max_window_bits == 15);
    /* values: 8..15 without leading zeros; none for the takeover flags */
    {
        static const char *bad[] = {
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=1a",
            "permessage-deflate; client_max_window_bits=0015",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits=123456789012345678901234"};
        size_t k;
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            CHECK_EQ(pmd(bad[k], 0, o, 4, &n, &off), RTWS_OK);
            CHECK(n == 1 && o[0].status == RTWS_PMD_BAD_VALUE);
        }
    }
    CHECK_EQ(pmd("permessage-deflate; server_max_window_bits=9; server_max_window_bits=9", 0, o, 4,
                 &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_DUPLICATE);
    CHECK_EQ(pmd("permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover", 0, o,
                 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_DUPLICATE);
    CHECK_EQ(pmd("permessage-deflate; mux=1, permessage-deflate", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 2 && o[0].status == RTWS_PMD_UNKNOWN_PARAM && o[1].status == RTWS_PMD_OK);
    /* other extensions are checked and skipped; names are case-insensitive */
    CHECK_EQ(pmd("x-webkit-deflate-frame; max_window_bits=3, PerMessage-Deflate; "
                 "Server_No_Context_Takeover", 0, o, 4, &n, &off), RTWS_OK);
    CHECK(n == 1 && o[0].status == RTWS_PMD_OK && o[0].server_no_context_takeover == 1);
    CHECK_EQ(pmd(" ,permessage-deflate ;\tclient_no_context_takeover , ,permessage-deflate ", 0, o,
                 4, &n, &off), RTWS_OK);
    CHECK(n == 2 && o[0].client_no_context_takeover == 1);
    CHECK_EQ(pmd("", 0, o, 4, &n, &off), RTWS_OK);
    CHECK_EQ(n, 0);
    /* more offers than room: counted, the first ones kept */
    CHECK_EQ(pmd("permessage-deflate; server_max_window_bits=8, permessage-deflate, "
                 "permessage-deflate", 0, o, 1, &n, &off), RTWS_OK);
    CHECK(n == 3 && o[0].server_max_window_bits == 8);
    CHECK_EQ(pmd("permessage-deflate, permessage-deflate", 0, NULL, 0, &n, &off), RTWS_OK);
    CHECK_EQ(n, 2);
    /* grammar errors, with where they are */
    CHECK_EQ(pmd("permessage-deflate;", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(off, 19);
    CHECK_EQ(pmd("permessage-deflate; a=", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(off, 22);
    CHECK_EQ(pmd("permessage-deflate; a=\"x y\"", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(off, 24);
    CHECK_EQ(pmd("permessage-deflate; a=\"xy", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(pmd("permessage-deflate; a=\"\"", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(pmd("per message", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(off, 4);
    CHECK_EQ(pmd("permessage-deflate; a b", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(pmd("; a", 0, o, 4, &n, &off), RTWS_ERR_SYNTAX);
    CHECK_EQ(off, 0);
    CHECK_EQ(n, 0);
}

int main(void) {
    test_stored();
    test_fixed();
    test_dynamic();
    test_errors();
    test_one_byte_at_a_time();
    test_window_edge();
    test_zip_bomb();
    test_chunked();
    test_messages();
    test_round_trips();
    test_pmd();
    return T_END();
}
