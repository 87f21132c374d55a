/* tests/unit_base.c - layer 0: sha1, base64, errors, clock helpers, random,
   allocator hooks. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <limits.h>
#include <stdlib.h>

static void hex(const uint8_t *p, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sha1_is(const void *data, size_t len, const char *want) {
    uint8_t dig[20];
    char h[41];
    rtws_sha1(data, len, dig);
    hex(dig, 20, h);
    if (strcmp(h, want) != 0) {
        fprintf(stderr, "sha1 of %lu bytes: %s, want %s\n", (unsigned long)len, h, want);
        return 0;
    }
    return 1;
}

static void test_sha1(void) {
    /* FIPS 180-2 appendix A examples and the usual extras */
    static const struct {
        size_t len;
        const char *hex;
    } lens[] = {
        /* message bytes (7i+1) mod 256 around the padding boundaries */
        {55, "04bb34aef4880b625e6b1564a014abd25fc02bfe"},
        {56, "83b9fcb6d3e3b20f376ab989a1b6353bcc6c0f44"},
        {63, "ab15090e8dbe512f3733350f9623ab11f9b5165b"},
        {64, "54305ee7e4c7bc5a96afc6d1994fc52d9bcb665f"},
        {65, "5985422a25357371ebd2a7f6ecd7eebed43db42c"},
        {119, "6839d6c27f22ed884ac43ae6bd3bfcee9e04b938"},
        {120, "8c40517a14ab8b78fd4b8958f4e31254a34c3fb0"},
        {127, "776f9728c5649329e5db4bb60a25ea903925a112"},
        {128, "22485dc0d1e1d6e9e93e4a2a4667b8e979456379"},
    };
    uint8_t msg[128];
    char *million;
    size_t i;
    CHECK(sha1_is("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    CHECK(sha1_is("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d"));
    CHECK(sha1_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                  "84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
    CHECK(sha1_is("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopq"
                  "rlmnopqrsmnopqrstnopqrstu",
                  112, "a49b2446a02c645bf419f995b67091253a04a259"));
    million = (char *)malloc(1000000);
    CHECK(million != NULL);
    if (million) {
        memset(million, 'a', 1000000);
        CHECK(sha1_is(million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
        free(million);
    }
    for (i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7 + 1);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) CHECK(sha1_is(msg, lens[i].len, lens[i].hex));
    {
        /* the input is only read: an unaligned const buffer is fine and unchanged */
        uint8_t copy[130], dig1[20], dig2[20];
        memcpy(copy + 1, msg, 64);
        rtws_sha1(copy + 1, 64, dig1);
        rtws_sha1(msg, 64, dig2);
        CHECK_MEM(dig1, dig2, 20);
        CHECK_MEM(copy + 1, msg, 64);
    }
}

static int b64_enc_is(const char *in, const char *want) {
    char out[64];
    size_t n;
    memset(out, '#', sizeof out);
    n = rtws_base64_encode((const uint8_t *)in, strlen(in), out, sizeof out);
    return n == strlen(want) && strcmp(out, want) == 0;
}

static int b64_dec_is(const char *in, const char *want) {
    uint8_t out[64];
    size_t n = rtws_base64_decode(in, strlen(in), out, sizeof out);
    return n == strlen(want) && memcmp(out, want, n) == 0;
}

static int b64_bad(const char *in) {
    uint8_t out[64];
    return rtws_base64_decode(in, strlen(in), out, sizeof out) == (size_t)-1;
}

static void test_base64(void) {
    /* RFC 4648 §10 */
    static const char *const v[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                       {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
    size_t i, len;
    char enc[401];
    uint8_t raw[300], back[300];
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        CHECK(b64_enc_is(v[i][0], v[i][1]));
        CHECK(b64_dec_is(v[i][1], v[i][0]));
    }
    /* the whole alphabet, including '+' and '/' */
    {
        const uint8_t all[3] = {0xFB, 0xFF, 0xBF};
        CHECK_EQ(rtws_base64_encode(all, 3, enc, sizeof enc), 4);
        CHECK(strcmp(enc, "+/+/") == 0);
        CHECK_EQ(rtws_base64_decode("+/+/", 4, raw, sizeof raw), 3);
        CHECK_MEM(raw, all, 3);
    }
    /* encode: cap counts the NUL; too small gives 0 and a NUL-free buffer untouched */
    memset(enc, '#', sizeof enc);
    CHECK_EQ(rtws_base64_encode((const uint8_t *)"foo", 3, enc, 4), 0);
    CHECK_EQ(enc[0], '#');
    CHECK_EQ(rtws_base64_encode((const uint8_t *)"foo", 3, enc, 5), 4);
    CHECK_EQ(enc[4], '\0');
    CHECK_EQ(rtws_base64_encode((const uint8_t *)"f", 1, enc, 4), 0);
    CHECK_EQ(rtws_base64_encode((const uint8_t *)"", 0, enc, 1), 0);
    CHECK_EQ(enc[0], '\0');
    /* strict decoding: alphabet */
    CHECK(b64_bad("Zm9v!A=="));
    CHECK(b64_bad("Zm9 v"));
    CHECK(b64_bad("Zm9v\n"));
    CHECK(b64_bad("Zm9vYg==\r\n"));
    CHECK(b64_bad("-_-_"));   /* base64url is a different alphabet */
    CHECK(b64_bad("Zm9\x80"));
    CHECK(rtws_base64_decode("Zg\0=", 4, raw, sizeof raw) == (size_t)-1);
    /* padding */
    CHECK(b64_bad("Zg"));
    CHECK(b64_bad("Zg="));
    CHECK(b64_bad("Zg==="));
    CHECK(b64_bad("Z==="));
    CHECK(b64_bad("===="));
    CHECK(b64_bad("=Zg="));
    CHECK(b64_bad("Zm=v"));
    CHECK(b64_bad("Zg==Zg=="));
    CHECK(b64_bad("Zm8=Zm9v"));
    /* non-zero bits after the last byte: one encoding per value */
    CHECK(b64_bad("Zh=="));
    CHECK(b64_bad("Zm9="));
    CHECK(b64_dec_is("Zm//", "fo\xff"));
    CHECK(b64_dec_is("Zm8=", "fo"));
    /* cap */
    CHECK_EQ(rtws_base64_decode("Zm9v", 4, raw, 2), (size_t)-1);
    CHECK_EQ(rtws_base64_decode("Zm9v", 4, raw, 3), 3);
    CHECK_EQ(rtws_base64_decode("Zm8=", 4, raw, 1), (size_t)-1);
    CHECK_EQ(rtws_base64_decode("Zm8=", 4, raw, 2), 2);
    CHECK_EQ(rtws_base64_decode("Zg==", 4, raw, 0), (size_t)-1);
    CHECK_EQ(rtws_base64_decode("Zg==", 4, raw, 1), 1);
    CHECK_EQ(rtws_base64_decode("", 0, raw, 0), 0);
    /* round trips of every length up to 300 with every byte value */
    {
        int ok = 1;
        for (i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 151 + 7);
        for (len = 0; len <= sizeof raw; len++) {
            size_t e = rtws_base64_encode(raw, len, enc, sizeof enc), dl;
            if (e != (len + 2) / 3 * 4 || enc[e] != '\0') ok = 0;
            dl = rtws_base64_decode(enc, e, back, sizeof back);
            if (dl != len || memcmp(back, raw, len) != 0) ok = 0;
            /* and an exact cap works */
            if (rtws_base64_decode(enc, e, back, len) != len) ok = 0;
        }
        CHECK(ok);
    }
}

static void test_strerror(void) {
    static const struct {
        int code;
        const char *must_contain;
    } codes[] = {
        {RTWS_OK, "ok"},
        {RTWS_EAGAIN, "need more"},
        {RTWS_ERR_INVALID, "invalid"},
        {RTWS_ERR_NOMEM, "rtws_config.allocator"},
        {RTWS_ERR_PROTOCOL, "RFC 6455"},
        {RTWS_ERR_TOO_BIG, "max_message"},
        {RTWS_ERR_UTF8, "UTF-8"},
        {RTWS_ERR_HANDSHAKE, "handshake"},
        {RTWS_ERR_TIMEOUT, "timeout_ms"},
        {RTWS_ERR_CLOSED, "clos"},
        {RTWS_ERR_LIMIT, "max_send_queue"},
        {RTWS_ERR_RANDOM, "rtws_config.random"},
        {RTWS_ERR_SYNTAX, "malformed"},
        {RTWS_ERR_DEPTH, "nesting"},
        {RTWS_ERR_NOSPACE, "too small"},
        {RTWS_ERR_RANGE, "range"},
        {RTWS_ERR_IO, "socket"},
        {RTWS_ERR_RESOLVE, "resolve"},
        {RTWS_ERR_URL, "URL"},
        {RTWS_ERR_TLS, "TLS"},
        {RTWS_ERR_ABNORMAL, "close handshake"},
        {RTWS_ERR_MESSAGE_TIMEOUT, "message_timeout_ms"},
        {RTWS_ERR_PROXY, "proxy"},
        {RTWS_ERR_REDIRECTS, "max_redirects"},
        {RTWS_ERR_REDIRECT_LOOP, "already asked"},
        {RTWS_ERR_DOWNGRADE, "allow_downgrade"},
    };
    size_t i, j;
    const size_t n = sizeof codes / sizeof codes[0];
    CHECK_EQ(n, -(int)RTWS_ERR_LAST_);
    for (i = 0; i < n; i++) {
        const char *s = rtws_err_str(codes[i].code);
        CHECK_EQ(codes[i].code, -(int)i); /* the table is dense from 0 down */
        CHECK(s != NULL && s[0] != '\0');
        CHECK(strcmp(s, "unknown error") != 0);
        CHECK(strstr(s, codes[i].must_contain) != NULL);
        for (j = 0; j < i; j++) CHECK(strcmp(s, rtws_err_str(codes[j].code)) != 0);
    }
    CHECK(strcmp(rtws_err_str(RTWS_ERR_LAST_), "unknown error") == 0);
    CHECK(strcmp(rtws_err_str(1), "unknown error") == 0);
    CHECK(strcmp(rtws_err_str(-1000), "unknown error") == 0);
    CHECK(strcmp(rtws_err_str(INT_MIN), "unknown error") == 0);
    CHECK(strcmp(rtws_err_str(INT_MAX), "unknown error") == 0);
    CHECK(strcmp(rtws_version(), RTWS_VERSION_STRING) == 0);
}

static void test_time(void) {
    uint64_t a, b;
    CHECK_EQ(rtws_time_until_ms(UINT64_MAX, 0), -1);
    CHECK_EQ(rtws_time_until_ms(UINT64_MAX, UINT64_MAX), -1);
    CHECK_EQ(rtws_time_until_ms(5, 10), 0);
    CHECK_EQ(rtws_time_until_ms(10, 10), 0);
    CHECK_EQ(rtws_time_until_ms(0, UINT64_MAX - 1), 0);
    CHECK_EQ(rtws_time_until_ms(15, 10), 5);
    CHECK_EQ(rtws_time_until_ms(1001, 1000), 1);
    CHECK_EQ(rtws_time_until_ms(1000 + (uint64_t)INT32_MAX, 1000), INT32_MAX);
    CHECK_EQ(rtws_time_until_ms(999 + (uint64_t)INT32_MAX, 1000), INT32_MAX - 1);
    CHECK_EQ(rtws_time_until_ms(1001 + (uint64_t)INT32_MAX, 1000), INT32_MAX);
    CHECK_EQ(rtws_time_until_ms(UINT64_MAX - 1, 0), INT32_MAX);
    a = rtws_time_now_ms();
    b = rtws_time_now_ms();
    CHECK(b >= a);
    CHECK(a > 0);
}

static void test_random(void) {
    uint8_t a[4096], b[4096];
    unsigned hist[256];
    size_t i, ones = 0, same = 0, len;
    double chi = 0;
    memset(hist, 0, sizeof hist);
    CHECK_EQ(rtws_random_system(a, sizeof a, NULL), 0);
    CHECK_EQ(rtws_random_system(b, sizeof b, NULL), 0);
    for (i = 0; i < sizeof a; i++) {
        unsigned v = a[i];
        hist[v]++;
        while (v) {
            ones += v & 1;
            v >>= 1;
        }
        same += a[i] == b[i];
    }
    for (i = 0; i < 256; i++) {
        double dlt = (double)hist[i] - 16.0;
        chi += dlt * dlt / 16.0;
    }
    /* 255 degrees of freedom: mean 255, sd 22.6; 420 is > 7 sd */
    CHECK(chi < 420.0);
    /* 32768 bits: mean 16384, sd 90.5 */
    CHECK(ones > 16384 - 700 && ones < 16384 + 700);
    /* two fills agree at about 16 positions */
    CHECK(same < 60);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* every requested byte is written, nothing after it */
    for (len = 0; len <= 40; len++) {
        uint8_t x[48], y[48];
        int untouched = 0;
        memset(x, 0x00, sizeof x);
        memset(y, 0xFF, sizeof y);
        CHECK_EQ(rtws_random_system(x, len, NULL), 0);
        CHECK_EQ(rtws_random_system(y, len, NULL), 0);
        for (i = 0; i < len; i++) untouched += x[i] == 0x00 && y[i] == 0xFF;
        CHECK(untouched <= 1); /* each position has a 1/65536 chance */
        for (i = len; i < sizeof x; i++) {
            if (x[i] != 0x00 || y[i] != 0xFF) untouched = 100;
        }
        CHECK(untouched <= 1);
    }
}

typedef struct counting {
    int allocs, reallocs, frees;
} counting;
static void *c_alloc(size_t n, void *u) {
    ((counting *)u)->allocs++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *u) {
    ((counting *)u)->reallocs++;
    return realloc(p, n);
}
static void c_free(void *p, void *u) {
    ((counting *)u)->frees++;
    free(p);
}

static void test_allocator(void) {
    counting cnt = {0, 0, 0};
    rtws_allocator a, zero;
    uint8_t *p;
    memset(&zero, 0, sizeof zero);
    a.alloc = c_alloc;
    a.realloc = c_realloc;
    a.free = c_free;
    a.user = &cnt;
    p = (uint8_t *)rtws__alloc(&a, 16);
    CHECK(p != NULL);
    if (p) memset(p, 1, 16);
    p = (uint8_t *)rtws__realloc(&a, p, 64);
    CHECK(p != NULL && p[15] == 1);
    rtws__free(&a, p);
    rtws__free(&a, NULL); /* NULL is not passed on */
    CHECK_EQ(cnt.allocs, 1);
    CHECK_EQ(cnt.reallocs, 1);
    CHECK_EQ(cnt.frees, 1);
    p = (uint8_t *)rtws__alloc(&zero, 8);
    CHECK(p != NULL);
    p = (uint8_t *)rtws__realloc(&zero, p, 4096);
    CHECK(p != NULL);
    rtws__free(&zero, p);
    rtws__free(&zero, NULL);
}

static void *no_alloc(size_t n, void *u) {
    (void)n;
    ((counting *)u)->allocs++;
    return NULL;
}
static void *no_realloc(void *p, size_t n, void *u) {
    (void)p;
    (void)n;
    ((counting *)u)->reallocs++;
    return NULL;
}

/* rtws__grow: doubling, at least 16, at least need, at most max; the cap and
   the size_t overflow are checked before the allocator is called. */
static void test_grow(void) {
    counting cnt = {0, 0, 0};
    rtws_allocator a;
    void *p = NULL;
    size_t cap = 0;
    a.alloc = c_alloc;
    a.realloc = c_realloc;
    a.free = c_free;
    a.user = &cnt;
    CHECK_EQ(rtws__grow(&a, &p, &cap, 0, 4, 100), RTWS_OK); /* nothing needed */
    CHECK(p == NULL && cap == 0 && cnt.allocs == 0);
    CHECK_EQ(rtws__grow(&a, &p, &cap, 1, 4, 100), RTWS_OK); /* first block: alloc, 16 */
    CHECK(p != NULL);
    CHECK_EQ(cap, 16);
    CHECK_EQ(cnt.allocs, 1);
    CHECK_EQ(cnt.reallocs, 0);
    if (p) memset(p, 7, 16 * 4);
    CHECK_EQ(rtws__grow(&a, &p, &cap, 16, 4, 100), RTWS_OK); /* fits: no call */
    CHECK_EQ(cnt.allocs + cnt.reallocs, 1);
    CHECK_EQ(rtws__grow(&a, &p, &cap, 17, 4, 100), RTWS_OK); /* doubles */
    CHECK_EQ(cap, 32);
    CHECK_EQ(cnt.reallocs, 1);
    CHECK(((uint8_t *)p)[16 * 4 - 1] == 7); /* contents kept */
    CHECK_EQ(rtws__grow(&a, &p, &cap, 70, 4, 100), RTWS_OK); /* more than double: need */
    CHECK_EQ(cap, 70);
    CHECK_EQ(rtws__grow(&a, &p, &cap, 71, 4, 100), RTWS_OK); /* double clamped to max */
    CHECK_EQ(cap, 100);
    CHECK_EQ(rtws__grow(&a, &p, &cap, 101, 4, 100), RTWS_ERR_TOO_BIG);
    CHECK_EQ(cap, 100);
    CHECK_EQ(cnt.reallocs, 3);
    /* need * elem would wrap around: refused before allocating */
    CHECK_EQ(rtws__grow(&a, &p, &cap, SIZE_MAX / 8 + 1, 8, SIZE_MAX), RTWS_ERR_TOO_BIG);
    CHECK_EQ(rtws__grow(&a, &p, &cap, SIZE_MAX, 1, SIZE_MAX - 1), RTWS_ERR_TOO_BIG);
    CHECK_EQ(cnt.allocs + cnt.reallocs, 4);
    rtws__free(&a, p);
    p = NULL;
    cap = 0;
    CHECK_EQ(rtws__grow(&a, &p, &cap, 1, 1, 5), RTWS_OK); /* max below 16 */
    CHECK_EQ(cap, 5);
    rtws__free(&a, p);
    /* a failing allocator: RTWS_ERR_NOMEM, block and capacity untouched */
    {
        uint8_t blk[8];
        p = blk;
        cap = 8;
        a.alloc = no_alloc;
        a.realloc = no_realloc;
        CHECK_EQ(rtws__grow(&a, &p, &cap, 9, 1, 64), RTWS_ERR_NOMEM);
        CHECK(p == blk && cap == 8);
        p = NULL;
        cap = 0;
        CHECK_EQ(rtws__grow(&a, &p, &cap, 1, 1, 64), RTWS_ERR_NOMEM);
        CHECK(p == NULL && cap == 0);
    }
}

int main(void) {
    test_sha1();
    test_base64();
    test_strerror();
    test_time();
    test_random();
    test_allocator();
    test_grow();
    return T_END();
}
