/* Layer 6a (resp): every reply type, every error with its offset, the
   limits, input fed whole, one byte at a time and split at every offset
   (each input at the end of a page followed by a PROT_NONE page), and the
   command encoder's exact bytes. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "guard.h"

static rtws_resp_config g_cfg;

/* Parses s whole; returns the result and keeps the parser for inspection. */
static rtws_err parse_whole(rtws_resp_parser *p, const char *s, size_t n, size_t *used) {
    rtws_resp_init(p, &g_cfg);
    return rtws_resp_parse(p, s, n, used);
}

/* Feeds prefixes of s growing by step bytes (the contract: the unconsumed
   bytes come again with more); every shorter prefix must say EAGAIN, and the
   outcome must equal the whole-input one. */
static int same_in_pieces(const char *s, size_t n, size_t step) {
    rtws_resp_parser a, b;
    size_t ua = 0, ub = 0, k;
    rtws_err ea = parse_whole(&a, s, n, &ua), eb = RTWS_EAGAIN;
    guard g;
    int ok = 1;
    rtws_resp_init(&b, &g_cfg);
    for (k = step < n ? step : n;; k = k + step < n ? k + step : n) {
        const char *c = (const char *)guard_copy(&g, s, k); /* only k bytes readable */
        eb = rtws_resp_parse(&b, c, k, &ub);
        guard_free(&g);
        if (eb != RTWS_EAGAIN || k == n) break;
    }
    if (ea != eb || ua != ub) ok = 0;
    if (ea != RTWS_OK && rtws_resp_get_error(&a) != rtws_resp_get_error(&b)) ok = 0;
    if (ea != RTWS_OK && rtws_resp_get_error_offset(&a) != rtws_resp_get_error_offset(&b)) ok = 0;
    rtws_resp_free(&a);
    rtws_resp_free(&b);
    return ok;
}

/* Every way: whole, byte by byte, and two pieces split at every offset. */
static int all_ways(const char *s) {
    size_t n = strlen(s), i;
    rtws_resp_parser p;
    size_t u;
    rtws_err e;
    int ok = same_in_pieces(s, n, 1);
    for (i = 1; i < n && ok; i++) {
        /* split at i: first i bytes, then all */
        rtws_resp_parser q;
        size_t uq = 0;
        rtws_err eq;
        rtws_resp_init(&q, &g_cfg);
        eq = rtws_resp_parse(&q, s, i, &uq);
        if (eq == RTWS_EAGAIN) eq = rtws_resp_parse(&q, s, n, &uq);
        e = parse_whole(&p, s, n, &u);
        if (e == RTWS_OK && eq == RTWS_EAGAIN) ok = 0;
        if (e == RTWS_OK && eq == RTWS_OK && u != uq) ok = 0;
        rtws_resp_free(&p);
        rtws_resp_free(&q);
    }
    return ok;
}

static const rtws_resp_reply *ok1(rtws_resp_parser *p, const char *s) {
    size_t used = 0;
    rtws_err e = parse_whole(p, s, strlen(s), &used);
    CHECK(all_ways(s));
    if (e != RTWS_OK || used != strlen(s)) {
        fprintf(stderr, "  input %s: %s (%s) used %zu\n", s, rtws_err_str(e),
                rtws_resp_error_str(rtws_resp_get_error(p)), used);
        CHECK(0);
        return NULL;
    }
    return rtws_resp_get_reply(p);
}

static void bad(const char *s, rtws_err want, rtws_resp_error why, size_t off) {
    rtws_resp_parser p;
    size_t used = 99;
    rtws_err e = parse_whole(&p, s, strlen(s), &used);
    if (e != want || rtws_resp_get_error(&p) != why)
        fprintf(stderr, "  input %s: got %s\n", s, rtws_resp_error_str(rtws_resp_get_error(&p)));
    CHECK_EQ(e, want);
    CHECK_EQ(rtws_resp_get_error(&p), why);
    CHECK_EQ(rtws_resp_get_error_offset(&p), off);
    CHECK_EQ(used, 0);
    CHECK(all_ways(s));
    /* sticky until reset */
    CHECK_EQ(rtws_resp_parse(&p, "+OK\r\n", 5, &used), want);
    rtws_resp_reset(&p);
    CHECK_EQ(rtws_resp_parse(&p, "+OK\r\n", 5, &used), RTWS_OK);
    rtws_resp_free(&p);
}

static int str_is(const rtws_resp_reply *r, rtws_resp_type t, const char *s) {
    return r && r->type == t && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

static void test_scalars(void) {
    rtws_resp_parser p;
    const rtws_resp_reply *r;
    r = ok1(&p, "+OK\r\n");
    CHECK(str_is(r, RTWS_RESP_STRING, "OK"));
    rtws_resp_free(&p);
    r = ok1(&p, "+\r\n");
    CHECK(str_is(r, RTWS_RESP_STRING, ""));
    rtws_resp_free(&p);
    r = ok1(&p, "-WRONGTYPE Operation against a key\r\n");
    CHECK(str_is(r, RTWS_RESP_ERROR, "WRONGTYPE Operation against a key"));
    rtws_resp_free(&p);
    r = ok1(&p, ":1000\r\n");
    CHECK(r && r->type == RTWS_RESP_INTEGER && r->integer == 1000);
    rtws_resp_free(&p);
    r = ok1(&p, ":-9223372036854775808\r\n");
    CHECK(r && r->type == RTWS_RESP_INTEGER && r->integer == INT64_MIN);
    rtws_resp_free(&p);
    r = ok1(&p, ":+9223372036854775807\r\n");
    CHECK(r && r->integer == INT64_MAX);
    rtws_resp_free(&p);
    r = ok1(&p, "$5\r\nhe\r\no\r\n"); /* binary: CR LF inside a bulk */
    CHECK(str_is(r, RTWS_RESP_BULK, "he\r\no"));
    rtws_resp_free(&p);
    r = ok1(&p, "$0\r\n\r\n");
    CHECK(str_is(r, RTWS_RESP_BULK, ""));
    rtws_resp_free(&p);
    r = ok1(&p, "$-1\r\n");
    CHECK(r && r->type == RTWS_RESP_NIL);
    rtws_resp_free(&p);
    r = ok1(&p, "*-1\r\n");
    CHECK(r && r->type == RTWS_RESP_NIL);
    rtws_resp_free(&p);
    r = ok1(&p, "_\r\n");
    CHECK(r && r->type == RTWS_RESP_NIL);
    rtws_resp_free(&p);
    r = ok1(&p, "#t\r\n");
    CHECK(r && r->type == RTWS_RESP_BOOL && r->integer == 1);
    rtws_resp_free(&p);
    r = ok1(&p, "#f\r\n");
    CHECK(r && r->type == RTWS_RESP_BOOL && r->integer == 0);
    rtws_resp_free(&p);
    r = ok1(&p, ",1.5e-3\r\n");
    CHECK(str_is(r, RTWS_RESP_DOUBLE, "1.5e-3"));
    rtws_resp_free(&p);
    r = ok1(&p, ",-inf\r\n");
    CHECK(str_is(r, RTWS_RESP_DOUBLE, "-inf"));
    rtws_resp_free(&p);
    r = ok1(&p, ",nan\r\n");
    CHECK(str_is(r, RTWS_RESP_DOUBLE, "nan"));
    rtws_resp_free(&p);
    r = ok1(&p, ",10\r\n");
    CHECK(str_is(r, RTWS_RESP_DOUBLE, "10"));
    rtws_resp_free(&p);
    r = ok1(&p, "(-3492890328409238509324850943850943825024385\r\n");
    CHECK(str_is(r, RTWS_RESP_BIGNUM, "-3492890328409238509324850943850943825024385"));
    rtws_resp_free(&p);
    r = ok1(&p, "=15\r\ntxt:Some string\r\n");
    CHECK(str_is(r, RTWS_RESP_VERBATIM, "Some string") && strcmp(r->format, "txt") == 0);
    rtws_resp_free(&p);
    r = ok1(&p, "!21\r\nSYNTAX invalid syntax\r\n");
    CHECK(str_is(r, RTWS_RESP_ERROR, "SYNTAX invalid syntax"));
    rtws_resp_free(&p);
}

static void test_aggregates(void) {
    rtws_resp_parser p;
    const rtws_resp_reply *r;
    r = ok1(&p, "*0\r\n");
    CHECK(r && r->type == RTWS_RESP_ARRAY && r->n == 0 && r->elem == NULL);
    rtws_resp_free(&p);
    r = ok1(&p, "*3\r\n$3\r\nfoo\r\n:7\r\n*2\r\n+a\r\n$-1\r\n");
    CHECK(r && r->type == RTWS_RESP_ARRAY && r->n == 3);
    if (r && r->n == 3) {
        CHECK(str_is(&r->elem[0], RTWS_RESP_BULK, "foo"));
        CHECK(r->elem[1].type == RTWS_RESP_INTEGER && r->elem[1].integer == 7);
        CHECK(r->elem[2].type == RTWS_RESP_ARRAY && r->elem[2].n == 2);
        CHECK(str_is(&r->elem[2].elem[0], RTWS_RESP_STRING, "a"));
        CHECK(r->elem[2].elem[1].type == RTWS_RESP_NIL);
    }
    rtws_resp_free(&p);
    r = ok1(&p, "%2\r\n+first\r\n:1\r\n+second\r\n#t\r\n");
    CHECK(r && r->type == RTWS_RESP_MAP && r->n == 2);
    if (r && r->n == 2) {
        CHECK(str_is(&r->elem[0], RTWS_RESP_STRING, "first"));
        CHECK(r->elem[1].integer == 1);
        CHECK(str_is(&r->elem[2], RTWS_RESP_STRING, "second"));
        CHECK(r->elem[3].type == RTWS_RESP_BOOL);
    }
    rtws_resp_free(&p);
    r = ok1(&p, "~2\r\n+x\r\n+y\r\n");
    CHECK(r && r->type == RTWS_RESP_SET && r->n == 2 && str_is(&r->elem[1], RTWS_RESP_STRING, "y"));
    rtws_resp_free(&p);
    r = ok1(&p, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    CHECK(r && r->type == RTWS_RESP_PUSH && r->n == 3 && str_is(&r->elem[2], RTWS_RESP_BULK, "hi"));
    rtws_resp_free(&p);
    /* an attribute describes the value after it and is dropped */
    r = ok1(&p, "|1\r\n+ttl\r\n:3600\r\n*2\r\n:1\r\n|1\r\n+k\r\n+v\r\n:2\r\n");
    CHECK(r && r->type == RTWS_RESP_ARRAY && r->n == 2);
    if (r && r->n == 2) CHECK(r->elem[0].integer == 1 && r->elem[1].integer == 2);
    rtws_resp_free(&p);
    /* nesting to the limit */
    {
        char buf[512];
        size_t i, n = 0;
        for (i = 0; i < 32; i++) n += (size_t)sprintf(buf + n, "*1\r\n");
        sprintf(buf + n, ":5\r\n");
        r = ok1(&p, buf);
        for (i = 0; r && i < 32; i++) r = r->type == RTWS_RESP_ARRAY && r->n == 1 ? r->elem : NULL;
        CHECK(r && r->type == RTWS_RESP_INTEGER && r->integer == 5);
        rtws_resp_free(&p);
        buf[0] = '*'; /* one more level: 33 */
        memmove(buf + 4, buf, strlen(buf) + 1);
        memcpy(buf, "*1\r\n", 4);
        bad(buf, RTWS_ERR_DEPTH, RTWS_RESP_E_DEPTH, 128);
    }
}

/* Two replies back to back, then a partial third: consumed one at a time. */
static void test_stream(void) {
    const char *s = "+OK\r\n:1\r\n$3\r\nab";
    rtws_resp_parser p;
    size_t used = 0, off = 0;
    rtws_resp_init(&p, NULL);
    CHECK_EQ(rtws_resp_parse(&p, s, strlen(s), &used), RTWS_OK);
    CHECK_EQ(used, 5);
    off += used;
    CHECK_EQ(rtws_resp_parse(&p, s + off, strlen(s) - off, &used), RTWS_OK);
    CHECK_EQ(used, 4);
    CHECK(rtws_resp_get_reply(&p)->integer == 1);
    off += used;
    CHECK_EQ(rtws_resp_parse(&p, s + off, strlen(s) - off, &used), RTWS_EAGAIN);
    CHECK(rtws_resp_get_reply(&p) == NULL);
    CHECK_EQ(rtws_resp_parse(&p, "$3\r\nabc\r\n", 9, &used), RTWS_OK);
    CHECK(str_is(rtws_resp_get_reply(&p), RTWS_RESP_BULK, "abc"));
    CHECK_EQ(rtws_resp_parse(&p, "", 0, &used), RTWS_EAGAIN);
    rtws_resp_free(&p);
}

static void test_errors(void) {
    bad("?x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_TYPE, 0);
    bad("?", RTWS_ERR_SYNTAX, RTWS_RESP_E_TYPE, 0); /* without waiting for the line */
    bad("*2\r\n+a\r\nXb\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_TYPE, 8);
    bad("+OK\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_CRLF, 3);
    bad("+OK\rX", RTWS_ERR_SYNTAX, RTWS_RESP_E_CRLF, 4);
    bad("$3\r\nfooX\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_CRLF, 7);
    bad("$3\r\nfoo\rX", RTWS_ERR_SYNTAX, RTWS_RESP_E_CRLF, 8);
    bad("$\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_LENGTH, 1);
    bad("$+3\r\nfoo\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_LENGTH, 1);
    bad("*1x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_LENGTH, 1);
    bad("$99999999999999999999999\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_LENGTH, 1);
    bad("$-2\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_NEGATIVE, 1);
    bad("*-5\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_NEGATIVE, 1);
    bad("%-1\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_NEGATIVE, 1);
    bad("=-1\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_NEGATIVE, 1);
    bad(":12a\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_INTEGER, 1);
    bad(":\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_INTEGER, 1);
    bad(":9223372036854775808\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_INTEGER, 1);
    bad("#x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_BOOL, 1);
    bad("#tt\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_BOOL, 1);
    bad(",1.\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_DOUBLE, 1);
    bad(",abc\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_DOUBLE, 1);
    bad(",1e\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_DOUBLE, 1);
    bad("(12x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_BIGNUM, 1);
    bad("(-\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_BIGNUM, 1);
    bad("_x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_NULL, 1);
    bad("=3\r\ntxt\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_VERBATIM, 4);
    bad("=5\r\ntxt-x\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_VERBATIM, 4);
    bad("$?\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_STREAMED, 1);
    bad("*?\r\n", RTWS_ERR_SYNTAX, RTWS_RESP_E_STREAMED, 1);
    /* every error has its own text */
    {
        int i, j, distinct = 1;
        for (i = 0; i <= RTWS_RESP_E_NOMEM; i++)
            for (j = 0; j < i; j++)
                if (strcmp(rtws_resp_error_str((rtws_resp_error)i),
                           rtws_resp_error_str((rtws_resp_error)j)) == 0)
                    distinct = 0;
        CHECK(distinct);
        CHECK(strcmp(rtws_resp_type_str(RTWS_RESP_VERBATIM), "verbatim") == 0);
    }
}

static void test_limits(void) {
    rtws_resp_config keep = g_cfg;
    g_cfg.max_line = 4;
    bad("+12345\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_LINE, 5); /* the fifth byte */
    bad("+1234567", RTWS_ERR_TOO_BIG, RTWS_RESP_E_LINE, 5);
    /* fuzz finding: a line over the limit that ends the input was reported
       one past its last byte; the offset is the first byte over the limit */
    g_cfg.max_line = 2;
    bad("+mmm", RTWS_ERR_TOO_BIG, RTWS_RESP_E_LINE, 3);
    bad("Mmmm", RTWS_ERR_SYNTAX, RTWS_RESP_E_TYPE, 0); /* a bad type byte: at once */
    g_cfg.max_line = 4; /* before the CR LF arrives */
    {
        rtws_resp_parser p;
        size_t u;
        rtws_resp_init(&p, &g_cfg);
        CHECK_EQ(rtws_resp_parse(&p, "+1234\r\n", 7, &u), RTWS_OK); /* exactly max_line */
        CHECK_EQ(rtws_resp_parse(&p, "+1234", 5, &u), RTWS_EAGAIN);
        rtws_resp_free(&p);
    }
    g_cfg = keep;
    g_cfg.max_bulk = 3;
    bad("$4\r\nabcd\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_BULK, 1);
    bad("$4\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_BULK, 1); /* refused before the payload */
    g_cfg = keep;
    g_cfg.max_elements = 3;
    bad("*4\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_AGGREGATE, 1);
    bad("%2\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_AGGREGATE, 1); /* 2 pairs: 4 elements */
    bad("*2\r\n*1\r\n:1\r\n:2\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_ELEMENTS, 12);
    g_cfg = keep;
    g_cfg.max_reply = 10;
    bad("$8\r\n12345678\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_SIZE, 10);
    bad("*3\r\n:1\r\n:2\r\n", RTWS_ERR_TOO_BIG, RTWS_RESP_E_SIZE, 10);
    g_cfg = keep;
    g_cfg.max_depth = 2;
    bad("*1\r\n*1\r\n*1\r\n:1\r\n", RTWS_ERR_DEPTH, RTWS_RESP_E_DEPTH, 8);
    /* fuzz finding: an empty aggregate one level too deep was let through */
    bad("*1\r\n*1\r\n*0\r\n", RTWS_ERR_DEPTH, RTWS_RESP_E_DEPTH, 8);
    bad("*1\r\n*1\r\n%0\r\n", RTWS_ERR_DEPTH, RTWS_RESP_E_DEPTH, 8);
    g_cfg = keep;
    {
        rtws_resp_parser p;
        rtws_resp_config c;
        memset(&c, 0, sizeof c);
        c.max_depth = RTWS_RESP_MAX_DEPTH + 1;
        CHECK_EQ(rtws_resp_init(&p, &c), RTWS_ERR_INVALID);
    }
}

/* A reply of 100,000 elements in 1,000-byte pieces: scanned once (the
   parser resumes), with no allocation after the first reply of that size. */
static void test_big(void) {
    size_t n = 100000, len = 0, i, used = 0, k;
    char *s = (char *)malloc(n * 12 + 32);
    rtws_resp_parser p;
    rtws_err e = RTWS_EAGAIN;
    len += (size_t)sprintf(s, "*%zu\r\n", n);
    for (i = 0; i < n; i++) len += (size_t)sprintf(s + len, ":%zu\r\n", i);
    rtws_resp_init(&p, NULL);
    for (k = 1000; e == RTWS_EAGAIN; k = k + 1000 < len ? k + 1000 : len) e = rtws_resp_parse(&p, s, k, &used);
    CHECK_EQ(e, RTWS_OK);
    CHECK_EQ(used, len);
    CHECK(rtws_resp_get_reply(&p)->n == n && rtws_resp_get_reply(&p)->elem[n - 1].integer == (int64_t)n - 1);
    rtws_resp_free(&p);
    free(s);
}

static void test_encode(void) {
    const char *argv[] = {"SET", "key", "va\0l"};
    size_t lens[] = {3, 3, 4};
    char buf[64];
    const char *want = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\nva\0l\r\n";
    size_t wl = 32, n;
    CHECK_EQ(rtws_resp_encode_command(NULL, 0, 3, argv, lens), wl);
    CHECK_EQ(rtws_resp_encode_command(buf, wl - 1, 3, argv, lens), wl); /* too small: nothing */
    n = rtws_resp_encode_command(buf, sizeof buf, 3, argv, lens);
    CHECK_EQ(n, wl);
    CHECK_MEM(buf, want, wl);
    {
        const char *ping[] = {"PING"};
        n = rtws_resp_encode_command(buf, sizeof buf, 1, ping, NULL);
        CHECK_EQ(n, 14);
        CHECK_MEM(buf, "*1\r\n$4\r\nPING\r\n", 14);
    }
    {
        const char *e[] = {""};
        n = rtws_resp_encode_command(buf, sizeof buf, 1, e, NULL);
        CHECK_EQ(n, 10);
        CHECK_MEM(buf, "*1\r\n$0\r\n\r\n", 10);
    }
    CHECK_EQ(rtws_resp_encode_command(buf, sizeof buf, 0, argv, lens), 0);
    { /* and it parses back */
        rtws_resp_parser p;
        size_t u;
        n = rtws_resp_encode_command(buf, sizeof buf, 3, argv, lens);
        rtws_resp_init(&p, NULL);
        CHECK_EQ(rtws_resp_parse(&p, buf, n, &u), RTWS_OK);
        CHECK(rtws_resp_get_reply(&p)->n == 3 && rtws_resp_get_reply(&p)->elem[2].len == 4 &&
              memcmp(rtws_resp_get_reply(&p)->elem[2].str, "va\0l", 4) == 0);
        rtws_resp_free(&p);
    }
}

int main(void) {
    memset(&g_cfg, 0, sizeof g_cfg);
    test_scalars();
    test_aggregates();
    test_stream();
    test_errors();
    test_limits();
    test_big();
    test_encode();
    return T_END();
}
