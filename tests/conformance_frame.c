/* tests/conformance_frame.c - RFC 6455 §5 frames: the §5.7 examples, the
   three length forms, UTF-8 (RFC 3629, Autobahn section 6 / Markus Kuhn
   stress-test categories) and close codes (§7.4 + IANA registry). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

/* Parses one whole frame from a copy of wire[0..n) with rtws_frame_parser
   (fed whole) and returns its header and unmasked payload. */
static rtws_err parse_one(rtws_role role, const uint8_t *wire, size_t n, rtws_frame_header *h,
                          uint8_t *payload, size_t *plen, size_t *used_total) {
    rtws_frame_parser p;
    uint8_t *buf = (uint8_t *)malloc(n ? n : 1);
    size_t off = 0;
    rtws_err e = RTWS_EAGAIN;
    *plen = 0;
    memcpy(buf, wire, n);
    rtws_frame_parser_init(&p, role, 0);
    while (off < n) {
        rtws_frame_piece piece;
        size_t used;
        e = rtws_frame_parser_feed(&p, buf + off, n - off, &used, &piece);
        off += used;
        if (e != RTWS_OK) break;
        memcpy(payload + *plen, piece.data, piece.len);
        *plen += piece.len;
        if (piece.frame_end) {
            *h = *piece.h;
            break;
        }
    }
    *used_total = off;
    free(buf);
    return e;
}

static void test_rfc_examples(void) {
    static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    static const uint8_t frag2[] = {0x80, 0x02, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t bin256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t bin64k[] = {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    rtws_frame_header h;
    uint8_t out[RTWS_FRAME_HEADER_MAX], payload[64];
    size_t plen, used;

    /* decoding */
    CHECK_EQ(parse_one(RTWS_CLIENT, hello_unmasked, sizeof hello_unmasked, &h, payload, &plen,
                       &used),
             RTWS_OK);
    CHECK(h.fin == 1 && h.opcode == RTWS_OP_TEXT && h.masked == 0 && h.len == 5);
    CHECK(plen == 5 && memcmp(payload, "Hello", 5) == 0 && used == sizeof hello_unmasked);
    CHECK_EQ(parse_one(RTWS_SERVER, hello_masked, sizeof hello_masked, &h, payload, &plen, &used),
             RTWS_OK);
    CHECK(h.fin == 1 && h.opcode == RTWS_OP_TEXT && h.masked == 1 && h.len == 5);
    CHECK_MEM(h.mask, key, 4);
    CHECK(plen == 5 && memcmp(payload, "Hello", 5) == 0 && used == sizeof hello_masked);
    CHECK_EQ(parse_one(RTWS_CLIENT, ping, sizeof ping, &h, payload, &plen, &used), RTWS_OK);
    CHECK(h.fin && h.opcode == RTWS_OP_PING && plen == 5 && memcmp(payload, "Hello", 5) == 0);
    CHECK_EQ(parse_one(RTWS_SERVER, pong_masked, sizeof pong_masked, &h, payload, &plen, &used),
             RTWS_OK);
    CHECK(h.fin && h.opcode == RTWS_OP_PONG && plen == 5 && memcmp(payload, "Hello", 5) == 0);
    CHECK_EQ(rtws_frame_header_decode(frag1, sizeof frag1, &h), RTWS_OK);
    CHECK(h.fin == 0 && h.opcode == RTWS_OP_TEXT && h.len == 3 && h.header_len == 2);
    CHECK_EQ(rtws_frame_header_check(&h, RTWS_CLIENT, 0, 0), RTWS_OK);
    CHECK_EQ(rtws_frame_header_decode(frag2, sizeof frag2, &h), RTWS_OK);
    CHECK(h.fin == 1 && h.opcode == RTWS_OP_CONT && h.len == 2);
    CHECK_EQ(rtws_frame_header_check(&h, RTWS_CLIENT, 1, 0), RTWS_OK);
    CHECK_EQ(rtws_frame_header_decode(bin256, sizeof bin256, &h), RTWS_OK);
    CHECK(h.fin && h.opcode == RTWS_OP_BINARY && h.len == 256 && h.header_len == 4);
    CHECK_EQ(rtws_frame_header_decode(bin64k, sizeof bin64k, &h), RTWS_OK);
    CHECK(h.fin && h.opcode == RTWS_OP_BINARY && h.len == 65536 && h.header_len == 10);

    /* encoding gives the same bytes */
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_TEXT, 5, NULL), 2);
    CHECK_MEM(out, hello_unmasked, 2);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_TEXT, 5, key), 6);
    CHECK_MEM(out, hello_masked, 6);
    {
        uint8_t p[5];
        memcpy(p, "Hello", 5);
        CHECK_EQ(rtws_frame_mask(p, 5, key, 0), 1);
        CHECK_MEM(p, hello_masked + 6, 5);
    }
    CHECK_EQ(rtws_frame_header_encode(out, 0, RTWS_OP_TEXT, 3, NULL), 2);
    CHECK_MEM(out, frag1, 2);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_CONT, 2, NULL), 2);
    CHECK_MEM(out, frag2, 2);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_PING, 5, NULL), 2);
    CHECK_MEM(out, ping, 2);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_PONG, 5, key), 6);
    CHECK_MEM(out, pong_masked, 6);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_BINARY, 256, NULL), 4);
    CHECK_MEM(out, bin256, 4);
    CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_BINARY, 65536, NULL), 10);
    CHECK_MEM(out, bin64k, 10);
}

/* decode of a header whose 7-bit length field is l7, with ext[0..next) after it */
static rtws_err dec_len(uint8_t l7, const uint8_t *ext, size_t next, int masked,
                        rtws_frame_header *h) {
    uint8_t b[RTWS_FRAME_HEADER_MAX];
    b[0] = 0x82;
    b[1] = (uint8_t)(l7 | (masked ? 0x80 : 0));
    memcpy(b + 2, ext, next);
    if (masked) memcpy(b + 2 + next, "\x01\x02\x03\x04", 4);
    return rtws_frame_header_decode(b, 2 + next + (masked ? 4u : 0u), h);
}

static void test_lengths(void) {
    rtws_frame_header h;
    uint8_t e[8];
    unsigned v;
    int masked;
    for (masked = 0; masked <= 1; masked++) {
        size_t mk = masked ? 4u : 0u;
        /* 7-bit form: 0..125 */
        for (v = 0; v <= 125; v++) {
            CHECK_EQ(dec_len((uint8_t)v, e, 0, masked, &h), RTWS_OK);
            CHECK(h.len == v && h.header_len == 2 + mk);
        }
        /* 16-bit form: 126..65535; 0..125 there is not minimal (§5.2) */
        e[0] = 0;
        e[1] = 126;
        CHECK_EQ(dec_len(126, e, 2, masked, &h), RTWS_OK);
        CHECK(h.len == 126 && h.header_len == 4 + mk);
        e[0] = 0xFF;
        e[1] = 0xFF;
        CHECK_EQ(dec_len(126, e, 2, masked, &h), RTWS_OK);
        CHECK(h.len == 65535 && h.header_len == 4 + mk);
        e[0] = 0x01;
        e[1] = 0x00;
        CHECK_EQ(dec_len(126, e, 2, masked, &h), RTWS_OK);
        CHECK(h.len == 256);
        for (v = 0; v <= 125; v++) {
            e[0] = 0;
            e[1] = (uint8_t)v;
            CHECK_EQ(dec_len(126, e, 2, masked, &h), RTWS_ERR_PROTOCOL);
        }
        /* 64-bit form: 65536 and up; below is not minimal; top bit must be 0 */
        memcpy(e, "\x00\x00\x00\x00\x00\x01\x00\x00", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_OK);
        CHECK(h.len == 65536 && h.header_len == 10 + mk);
        memcpy(e, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_OK);
        CHECK(h.len == 0x7FFFFFFFFFFFFFFFull);
        memcpy(e, "\x00\x00\x00\x01\x00\x00\x00\x00", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_OK);
        CHECK(h.len == 0x100000000ull);
        memcpy(e, "\x80\x00\x00\x00\x00\x00\x00\x00", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\x80\x00\x00\x00\x00\x00\x00\x05", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\x00\x00\x00\x00\x00\x00\xff\xff", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\x00\x00\x00\x00\x00\x00\x00\x7e", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\x00\x00\x00\x00\x00\x00\x00\x05", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
        memcpy(e, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
        CHECK_EQ(dec_len(127, e, 8, masked, &h), RTWS_ERR_PROTOCOL);
    }
    /* the encoder picks the minimal form at each boundary */
    {
        static const struct {
            uint64_t len;
            size_t n;
        } b[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {0x7FFFFFFFFFFFFFFFull, 10}};
        uint8_t out[RTWS_FRAME_HEADER_MAX];
        size_t i;
        for (i = 0; i < sizeof b / sizeof b[0]; i++) {
            CHECK_EQ(rtws_frame_header_encode(out, 1, RTWS_OP_BINARY, b[i].len, NULL), b[i].n);
            CHECK_EQ(rtws_frame_header_decode(out, b[i].n, &h), RTWS_OK);
            CHECK(h.len == b[i].len && h.header_len == b[i].n);
        }
    }
    /* every proper prefix of a header is RTWS_EAGAIN, whatever it holds */
    {
        static const uint8_t full[] = {0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x01, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44};
        static const uint8_t bad[] = {0x82, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44};
        size_t k;
        for (k = 0; k < sizeof full; k++) {
            CHECK_EQ(rtws_frame_header_decode(full, k, &h), RTWS_EAGAIN);
            CHECK_EQ(rtws_frame_header_decode(bad, k, &h), RTWS_EAGAIN);
        }
        CHECK_EQ(rtws_frame_header_decode(full, sizeof full, &h), RTWS_OK);
        CHECK(h.len == 65536 && h.header_len == 14 && h.masked);
        CHECK_MEM(h.mask, full + 10, 4);
        CHECK_EQ(rtws_frame_header_decode(bad, sizeof bad, &h), RTWS_ERR_PROTOCOL);
        CHECK_EQ(rtws_frame_header_decode(full, 2, &h), RTWS_EAGAIN);
        CHECK_EQ(rtws_frame_header_decode((const uint8_t *)"\x81\x7e\x00", 3, &h), RTWS_EAGAIN);
        CHECK_EQ(rtws_frame_header_decode((const uint8_t *)"\x81\x85\x00\x00\x00", 5, &h),
                 RTWS_EAGAIN);
    }
    /* the first byte's fields */
    CHECK_EQ(rtws_frame_header_decode((const uint8_t *)"\xf3\x00", 2, &h), RTWS_OK);
    CHECK(h.fin == 1 && h.rsv == 7 && h.opcode == 3 && h.masked == 0 && h.len == 0);
    CHECK_EQ(rtws_frame_header_decode((const uint8_t *)"\x4f\x00", 2, &h), RTWS_OK);
    CHECK(h.fin == 0 && h.rsv == 4 && h.opcode == 15);
    CHECK_EQ(rtws_frame_header_decode((const uint8_t *)"\x10\x00", 2, &h), RTWS_OK);
    CHECK(h.fin == 0 && h.rsv == 1 && h.opcode == 0);
}

/* ---- UTF-8 --------------------------------------------------------------- */

typedef struct utf8_case {
    const char *name;
    const char *s;
    size_t len;    /* 0: strlen(s) */
    int ok;        /* 1 valid, 0 invalid, 2 valid prefix that ends truncated */
    size_t bad;    /* invalid: offset of the first byte that makes it impossible */
} utf8_case;

#define V(name, s) {name, s, 0, 1, 0}
#define BAD(name, s, off) {name, s, 0, 0, off}
#define TRUNC(name, s) {name, s, 0, 2, 0}

static const utf8_case utf8_cases[] = {
    V("empty", ""),
    V("kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    V("ascii", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"),
    {"U+0000", "\x00", 1, 1, 0},
    {"NULs", "a\x00\x00\x00\x00\x00\x00\x00\x00\x00b", 11, 1, 0},
    V("U+007F", "\x7f"),
    V("U+0080", "\xc2\x80"),
    V("U+07FF", "\xdf\xbf"),
    V("U+0800", "\xe0\xa0\x80"),
    V("U+D7FF", "\xed\x9f\xbf"),
    V("U+E000", "\xee\x80\x80"),
    V("U+FFFD", "\xef\xbf\xbd"),
    V("U+FFFE", "\xef\xbf\xbe"),
    V("U+FFFF", "\xef\xbf\xbf"),
    V("U+10000", "\xf0\x90\x80\x80"),
    V("U+3FFFF", "\xf0\xbf\xbf\xbf"),
    V("U+40000", "\xf1\x80\x80\x80"),
    V("U+FFFFF", "\xf3\xbf\xbf\xbf"),
    V("U+100000", "\xf4\x80\x80\x80"),
    V("U+10FFFF", "\xf4\x8f\xbf\xbf"),
    V("long ascii then 4-byte", "0123456789abcdefghij\xf0\x9f\x98\x80xyz"),
    /* 5- and 6-byte forms (RFC 2279, gone since RFC 3629) */
    BAD("5-byte U+200000", "\xf8\x88\x80\x80\x80", 0),
    BAD("6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", 0),
    BAD("5-byte max", "\xfb\xbf\xbf\xbf\xbf", 0),
    BAD("6-byte max", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* above U+10FFFF */
    BAD("U+110000", "\xf4\x90\x80\x80", 1),
    BAD("U+13FFFF", "\xf4\xbf\xbf\xbf", 1),
    BAD("F5", "\xf5\x80\x80\x80", 0),
    BAD("F7", "\xf7\xbf\xbf\xbf", 0),
    BAD("after valid", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64", 12),
    /* overlong '/' and NUL, and the largest overlongs */
    BAD("overlong / 2", "\xc0\xaf", 0),
    BAD("overlong / 3", "\xe0\x80\xaf", 1),
    BAD("overlong / 4", "\xf0\x80\x80\xaf", 1),
    BAD("overlong / 5", "\xf8\x80\x80\x80\xaf", 0),
    BAD("overlong / 6", "\xfc\x80\x80\x80\x80\xaf", 0),
    {"overlong NUL 2", "\xc0\x80", 2, 0, 0},
    {"overlong NUL 3", "\xe0\x80\x80", 3, 0, 1},
    {"overlong NUL 4", "\xf0\x80\x80\x80", 4, 0, 1},
    BAD("overlong max 2", "\xc1\xbf", 0),
    BAD("overlong max 3", "\xe0\x9f\xbf", 1),
    BAD("overlong max 4", "\xf0\x8f\xbf\xbf", 1),
    /* UTF-16 surrogates, single and paired */
    BAD("U+D800", "\xed\xa0\x80", 1),
    BAD("U+DB7F", "\xed\xad\xbf", 1),
    BAD("U+DB80", "\xed\xae\x80", 1),
    BAD("U+DBFF", "\xed\xaf\xbf", 1),
    BAD("U+DC00", "\xed\xb0\x80", 1),
    BAD("U+DF80", "\xed\xbe\x80", 1),
    BAD("U+DFFF", "\xed\xbf\xbf", 1),
    BAD("pair D800 DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("pair DBFF DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    BAD("pair after text", "ab\xed\xa0\x80\xed\xb0\x80", 3),
    /* unexpected continuation bytes */
    BAD("lone 80", "\x80", 0),
    BAD("lone BF", "\xbf", 0),
    BAD("80 BF", "\x80\xbf", 0),
    BAD("a 80", "a\x80", 1),
    BAD("2-byte + extra", "\xc2\x80\x80", 2),
    BAD("3-byte + extra", "\xe0\xa0\x80\x80", 3),
    BAD("4-byte + extra", "\xf0\x90\x80\x80\x80", 4),
    /* start bytes followed by a space, truncated sequences followed by text */
    BAD("C2 space", "\xc2 ", 1),
    BAD("DF space", "\xdf ", 1),
    BAD("E0 space", "\xe0 ", 1),
    BAD("EF BF space", "\xef\xbf ", 2),
    BAD("F0 90 80 space", "\xf0\x90\x80 ", 3),
    BAD("F4 space", "\xf4 ", 1),
    BAD("C2 C2", "\xc2\xc2\x80", 1),
    BAD("E1 then start", "\xe1\x80\xe1\x80\x80", 2),
    BAD("truncated run", "\xc2\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf", 1),
    /* FE and FF never appear */
    BAD("FE", "\xfe", 0),
    BAD("FF", "\xff", 0),
    BAD("FE FE FF FF", "\xfe\xfe\xff\xff", 0),
    BAD("ascii FF", "0123456789abcdef\xff", 16),
    BAD("ascii 7 FF", "0123456\xff", 7),
    BAD("ascii 9 80", "012345678\x80", 9),
    /* valid prefixes that end before the code point does */
    TRUNC("C2", "\xc2"),
    TRUNC("DF", "\xdf"),
    TRUNC("E0 A0", "\xe0\xa0"),
    TRUNC("E1", "\xe1"),
    TRUNC("ED 9F", "\xed\x9f"),
    TRUNC("EF BF", "\xef\xbf"),
    TRUNC("F0", "\xf0"),
    TRUNC("F0 90 80", "\xf0\x90\x80"),
    TRUNC("F4 8F BF", "\xf4\x8f\xbf"),
    TRUNC("kosme + CE", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xce"),
};

/* Validates c split into pieces at the offsets cuts[0..ncuts) and checks the
   verdict, the failing piece and the offset inside it. */
static int utf8_split_ok(const utf8_case *c, size_t len, const size_t *cuts, size_t ncuts) {
    uint32_t st = 0;
    size_t k, start = 0;
    for (k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len, bad = (size_t)-1;
        rtws_err e = rtws_utf8_validate(&st, (const uint8_t *)c->s + start, end - start, &bad);
        if (c->ok == 0 && c->bad >= start && c->bad < end) {
            if (e != RTWS_ERR_UTF8 || bad != c->bad - start) {
                fprintf(stderr, "utf8 %s: split %lu..%lu: err %d bad %lu, want offset %lu\n",
                        c->name, (unsigned long)start, (unsigned long)end, (int)e,
                        (unsigned long)bad, (unsigned long)(c->bad - start));
                return 0;
            }
            return 1;
        }
        if (e != RTWS_OK) {
            fprintf(stderr, "utf8 %s: split %lu..%lu: unexpected err %d at %lu\n", c->name,
                    (unsigned long)start, (unsigned long)end, (int)e, (unsigned long)bad);
            return 0;
        }
        start = end;
    }
    if (c->ok == 0) {
        fprintf(stderr, "utf8 %s: accepted\n", c->name);
        return 0;
    }
    if ((c->ok == 1) != (st == 0)) {
        fprintf(stderr, "utf8 %s: final state %lx\n", c->name, (unsigned long)st);
        return 0;
    }
    return 1;
}

static void test_utf8(void) {
    size_t i;
    for (i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const utf8_case *c = &utf8_cases[i];
        size_t len = c->len ? c->len : strlen(c->s), k, cuts[64];
        int ok = 1;
        /* whole */
        CHECK(utf8_split_ok(c, len, cuts, 0));
        /* one byte per call */
        for (k = 1; k < len; k++) cuts[k - 1] = k;
        CHECK(utf8_split_ok(c, len, cuts, len ? len - 1 : 0));
        /* in two at every position, including empty pieces at both ends */
        for (k = 0; k <= len; k++) {
            cuts[0] = k;
            if (!utf8_split_ok(c, len, cuts, 1)) ok = 0;
        }
        CHECK(ok);
    }
    /* every lone continuation byte, and every start byte followed by a space */
    {
        unsigned b;
        int bad_cont = 0, bad_start = 0;
        for (b = 0x80; b <= 0xFF; b++) {
            uint8_t s[2];
            uint32_t st = 0;
            size_t off = 99;
            rtws_err e;
            s[0] = (uint8_t)b;
            s[1] = ' ';
            e = rtws_utf8_validate(&st, s, 2, &off);
            if (b <= 0xBF || b == 0xC0 || b == 0xC1 || b >= 0xF5) {
                if (e != RTWS_ERR_UTF8 || off != 0) bad_cont++;
            } else if (e != RTWS_ERR_UTF8 || off != 1) {
                bad_start++;
            }
            /* and a start byte alone leaves the state nonzero */
            if (b >= 0xC2 && b <= 0xF4) {
                st = 0;
                if (rtws_utf8_validate(&st, s, 1, &off) != RTWS_OK || st == 0) bad_start++;
            }
        }
        CHECK_EQ(bad_cont, 0);
        CHECK_EQ(bad_start, 0);
    }
    /* every code point U+0000..U+10FFFF, encoded by hand, is valid; every
       surrogate is not */
    {
        uint32_t cp;
        unsigned long wrong = 0;
        for (cp = 0; cp <= 0x10FFFF; cp++) {
            uint8_t s[4];
            size_t n, off = 0;
            uint32_t st = 0;
            rtws_err e;
            if (cp < 0x80) {
                s[0] = (uint8_t)cp;
                n = 1;
            } else if (cp < 0x800) {
                s[0] = (uint8_t)(0xC0 | cp >> 6);
                s[1] = (uint8_t)(0x80 | (cp & 63));
                n = 2;
            } else if (cp < 0x10000) {
                s[0] = (uint8_t)(0xE0 | cp >> 12);
                s[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
                s[2] = (uint8_t)(0x80 | (cp & 63));
                n = 3;
            } else {
                s[0] = (uint8_t)(0xF0 | cp >> 18);
                s[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
                s[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
                s[3] = (uint8_t)(0x80 | (cp & 63));
                n = 4;
            }
            e = rtws_utf8_validate(&st, s, n, &off);
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                if (e != RTWS_ERR_UTF8 || off != 1) wrong++;
            } else if (e != RTWS_OK || st != 0) {
                wrong++;
            }
        }
        CHECK_EQ(wrong, 0);
    }
    /* bad_off may be NULL */
    {
        uint32_t st = 0;
        CHECK_EQ(rtws_utf8_validate(&st, (const uint8_t *)"\xff", 1, NULL), RTWS_ERR_UTF8);
    }
}

/* ---- close codes --------------------------------------------------------- */

/* RFC 6455 §7.4.1-7.4.2 and the IANA "WebSocket Close Code Number" registry:
   what may be sent in a close frame. */
static int ref_close_valid(unsigned c) {
    static const struct {
        unsigned lo, hi;
        int valid;
    } ranges[] = {
        {0, 999, 0},       /* §7.4.2: not used */
        {1000, 1000, 1},   /* normal closure */
        {1001, 1001, 1},   /* going away */
        {1002, 1002, 1},   /* protocol error */
        {1003, 1003, 1},   /* unsupported data */
        {1004, 1004, 0},   /* reserved */
        {1005, 1005, 0},   /* no status received: never on the wire */
        {1006, 1006, 0},   /* abnormal closure: never on the wire */
        {1007, 1007, 1},   /* invalid frame payload data */
        {1008, 1008, 1},   /* policy violation */
        {1009, 1009, 1},   /* message too big */
        {1010, 1010, 1},   /* mandatory extension */
        {1011, 1011, 1},   /* internal error */
        {1012, 1012, 1},   /* service restart (IANA) */
        {1013, 1013, 1},   /* try again later (IANA) */
        {1014, 1014, 1},   /* bad gateway (IANA) */
        {1015, 1015, 0},   /* TLS handshake: never on the wire */
        {1016, 2999, 0},   /* reserved for this and future RFCs */
        {3000, 3999, 1},   /* registered with IANA: libraries, frameworks */
        {4000, 4999, 1},   /* private use */
        {5000, 65535, 0},  /* outside every range */
    };
    size_t i;
    for (i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (c >= ranges[i].lo && c <= ranges[i].hi) return ranges[i].valid;
    return 0;
}

static void test_close_codes(void) {
    unsigned c;
    unsigned long wrong = 0;
    for (c = 0; c <= 65535; c++) {
        if (!!rtws_close_code_valid(c) != ref_close_valid(c)) {
            if (wrong < 5) fprintf(stderr, "close code %u: got %d\n", c, rtws_close_code_valid(c));
            wrong++;
        }
    }
    CHECK_EQ(wrong, 0);
    CHECK(rtws_close_code_valid(RTWS_CLOSE_NORMAL));
    CHECK(rtws_close_code_valid(RTWS_CLOSE_TRY_AGAIN));
    CHECK(!rtws_close_code_valid(RTWS_CLOSE_NO_STATUS));
    CHECK(!rtws_close_code_valid(RTWS_CLOSE_ABNORMAL));
    CHECK(!rtws_close_code_valid(65536 + 1000));
    CHECK(!rtws_close_code_valid(0xFFFFFFFFu));
    CHECK_EQ(RTWS_CLOSE_PROTOCOL_ERROR, 1002);
    CHECK_EQ(RTWS_CLOSE_INVALID_DATA, 1007);
    CHECK_EQ(RTWS_CLOSE_TOO_BIG, 1009);
}

int main(void) {
    test_rfc_examples();
    test_lengths();
    test_utf8();
    test_close_codes();
    return T_END();
}
