/* Layer 6 (json): parser rejects with offsets, access, unescape, numbers,
   writer, round-trip properties, and the big inputs (depth bomb, 100 MB
   number, a million keys). Inputs sit at the end of a page followed by an
   inaccessible page, so reading one byte too far crashes. */
/* rtws.h first: it asks for POSIX before any system header. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <locale.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------ */

typedef struct guarded {
    char *map, *p;
    size_t maplen;
} guarded;

/* A copy of s[0..n) ending right before a PROT_NONE page. */
static const char *guard(guarded *g, const char *s, size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n + pg - 1) / pg * pg;
    if (data == 0) data = pg;
    g->maplen = data + pg;
    g->map = (char *)mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
    if (g->map == MAP_FAILED) abort();
    mprotect(g->map + data, pg, PROT_NONE);
    g->p = g->map + data - n;
    if (n) memcpy(g->p, s, n);
    return g->p;
}
static void unguard(guarded *g) { munmap(g->map, g->maplen); }

static rtws_json_tok toks[4096];

static rtws_err parse_n(rtws_json *d, const char *s, size_t n) {
    guarded g;
    rtws_err e;
    const char *p = guard(&g, s, n);
    e = rtws_json_parse(d, p, n, toks, 4096, 0);
    /* count-only mode agrees on validity */
    {
        rtws_json c;
        rtws_err e2 = rtws_json_parse(&c, p, n, NULL, 0, 0);
        CHECK(e2 == e || (e == RTWS_ERR_NOSPACE && e2 == RTWS_OK));
        if (e == RTWS_OK) CHECK(c.count == d->count);
        if (e != RTWS_OK) CHECK(c.err_off == d->err_off);
    }
    unguard(&g);
    /* keep the tokens usable: parse again from a normal copy that lives on */
    return e;
}

static char keep[1 << 16];
/* Parses s (a copy that outlives the call, for the access tests). */
static rtws_err parse(rtws_json *d, const char *s) {
    size_t n = strlen(s);
    rtws_err e = parse_n(d, s, n);
    memcpy(keep, s, n);
    if (e == RTWS_OK) CHECK(rtws_json_parse(d, keep, n, toks, 4096, 0) == RTWS_OK);
    return e;
}

typedef struct reject {
    const char *in;
    size_t len; /* 0: strlen(in) */
    rtws_err err;
    size_t off;
} reject;

/* --- tests -------------------------------------------------------------- */

static void test_rejects(void) {
    static const reject r[] = {
        /* empty and unterminated */
        {"", 0, RTWS_ERR_SYNTAX, 0},
        {"   \n", 0, RTWS_ERR_SYNTAX, 4},
        {"[1,2", 0, RTWS_ERR_SYNTAX, 4},
        {"[", 0, RTWS_ERR_SYNTAX, 1},
        {"{\"a\":", 0, RTWS_ERR_SYNTAX, 5},
        {"{\"a\"", 0, RTWS_ERR_SYNTAX, 4},
        {"{\"a", 0, RTWS_ERR_SYNTAX, 3},
        {"\"abc", 0, RTWS_ERR_SYNTAX, 4},
        {"\"abcdefghijklmnop", 0, RTWS_ERR_SYNTAX, 17},
        {"\"ab\\", 0, RTWS_ERR_SYNTAX, 3},
        {"\"\\u12", 0, RTWS_ERR_SYNTAX, 1},
        /* trailing commas */
        {"[1,]", 0, RTWS_ERR_SYNTAX, 3},
        {"{\"a\":1,}", 0, RTWS_ERR_SYNTAX, 7},
        {"[,]", 0, RTWS_ERR_SYNTAX, 1},
        {"[1,,2]", 0, RTWS_ERR_SYNTAX, 3},
        /* numbers */
        {"01", 0, RTWS_ERR_SYNTAX, 0},
        {"[-012]", 0, RTWS_ERR_SYNTAX, 2},
        {"00", 0, RTWS_ERR_SYNTAX, 0},
        {"1.", 0, RTWS_ERR_SYNTAX, 2},
        {".5", 0, RTWS_ERR_SYNTAX, 0},
        {"1e", 0, RTWS_ERR_SYNTAX, 2},
        {"1e+", 0, RTWS_ERR_SYNTAX, 3},
        {"-", 0, RTWS_ERR_SYNTAX, 1},
        {"+1", 0, RTWS_ERR_SYNTAX, 0},
        {"0x10", 0, RTWS_ERR_SYNTAX, 1},
        {"1.5.2", 0, RTWS_ERR_SYNTAX, 3},
        {"NaN", 0, RTWS_ERR_SYNTAX, 0},
        {"Infinity", 0, RTWS_ERR_SYNTAX, 0},
        {"-Infinity", 0, RTWS_ERR_SYNTAX, 1},
        {"[nan]", 0, RTWS_ERR_SYNTAX, 1},
        /* literals */
        {"tru", 0, RTWS_ERR_SYNTAX, 0},
        {"nul", 0, RTWS_ERR_SYNTAX, 0},
        {"True", 0, RTWS_ERR_SYNTAX, 0},
        {"falsey", 0, RTWS_ERR_SYNTAX, 5},
        /* trailing garbage */
        {"{} x", 0, RTWS_ERR_SYNTAX, 3},
        {"1 2", 0, RTWS_ERR_SYNTAX, 2},
        {"[]]", 0, RTWS_ERR_SYNTAX, 2},
        {"\"a\"\"b\"", 0, RTWS_ERR_SYNTAX, 3},
        {"1\0", 2, RTWS_ERR_SYNTAX, 1},
        /* structure */
        {"[1}", 0, RTWS_ERR_SYNTAX, 2},
        {"{1:2}", 0, RTWS_ERR_SYNTAX, 1},
        {"{\"a\" 1}", 0, RTWS_ERR_SYNTAX, 5},
        {"{\"a\":1 \"b\":2}", 0, RTWS_ERR_SYNTAX, 7},
        {"['a']", 0, RTWS_ERR_SYNTAX, 1},
        {"\xEF\xBB\xBF{}", 0, RTWS_ERR_SYNTAX, 0},
        {"[1]\f", 0, RTWS_ERR_SYNTAX, 3},
        /* escapes */
        {"\"\\x\"", 0, RTWS_ERR_SYNTAX, 1},
        {"\"\\u12G4\"", 0, RTWS_ERR_SYNTAX, 1},
        {"\"\\U0041\"", 0, RTWS_ERR_SYNTAX, 1},
        {"\"\\'\"", 0, RTWS_ERR_SYNTAX, 1},
        /* lone surrogates */
        {"\"\\uD800\"", 0, RTWS_ERR_UTF8, 1},
        {"\"ab\\uDBFF\"", 0, RTWS_ERR_UTF8, 3},
        {"\"\\uDC00\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uDFFF\\uD800\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uD800\\u0041\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uD800\\uD800\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uD800x\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uD800\\n\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\\uD800\"", 0, RTWS_ERR_UTF8, 1},
        /* invalid UTF-8 */
        {"\"\xC0\x80\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xC1\xBF\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xE0\x9F\xBF\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xED\xA0\x80\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xF0\x8F\xBF\xBF\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xF4\x90\x80\x80\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xF5\x80\x80\x80\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xFF\"", 0, RTWS_ERR_UTF8, 1},
        {"\"a\x80\"", 0, RTWS_ERR_UTF8, 2},
        {"\"\xE2\x82\"", 0, RTWS_ERR_UTF8, 1},
        {"\"\xE2\x82", 0, RTWS_ERR_UTF8, 1},
        {"\"abcdefgh\xC3\x28\"", 0, RTWS_ERR_UTF8, 9},
        {"\xC3\xA9", 0, RTWS_ERR_SYNTAX, 0},
        /* control characters */
        {"\"a\x01\"", 0, RTWS_ERR_SYNTAX, 2},
        {"\"\t\"", 0, RTWS_ERR_SYNTAX, 1},
        {"\"abcdefghij\n\"", 0, RTWS_ERR_SYNTAX, 11},
        {"\"\0\"", 3, RTWS_ERR_SYNTAX, 1},
        {"[\"\x1f\"]", 0, RTWS_ERR_SYNTAX, 2},
    };
    size_t i;
    for (i = 0; i < sizeof r / sizeof r[0]; i++) {
        rtws_json d;
        size_t n = r[i].len ? r[i].len : strlen(r[i].in);
        rtws_err e = parse_n(&d, r[i].in, n);
        if (e != r[i].err || d.err_off != r[i].off || !d.err || !d.err[0] || d.count != 0)
            fprintf(stderr, "reject #%zu (%s): err %d off %zu (%s), want err %d off %zu\n", i,
                    r[i].in, e, d.err_off, d.err, r[i].err, r[i].off);
        CHECK_EQ(e, r[i].err);
        CHECK_EQ(d.err_off, r[i].off);
        CHECK(d.err && d.err[0]);
    }
}

static void test_accepts(void) {
    static const char *const ok[] = {
        "0", "-0", "1", "-1.5e-3", "1E+2", "0.0e0", "\"x\"", "\"\"", "true", "false", "null",
        " \t\r\n[ ] ", "{}", "[[],{}]", "{\"a\":{\"a\":[1,{\"b\":null}]}}", "\"\x7f\"",
        "\"\\u0000\"", "\"\\uD83D\\uDE00\"", "\"\xF0\x9F\x98\x80\"", "\"\xEF\xBF\xBF\"",
        "\"\xF4\x8F\xBF\xBF\"", "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"", "{\"a\":1,\"a\":2}",
        "123456789012345678901234567890"};
    size_t i;
    rtws_json d;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rtws_err e = parse(&d, ok[i]);
        if (e != RTWS_OK) fprintf(stderr, "accept %s: %s at %zu\n", ok[i], d.err, d.err_off);
        CHECK_EQ(e, RTWS_OK);
        CHECK(d.err && !d.err[0]);
    }
    /* not NUL-terminated: only len bytes count */
    CHECK_EQ(parse_n(&d, "[1]9", 3), RTWS_OK);
    CHECK_EQ(parse_n(&d, "12", 1), RTWS_OK);
    CHECK(d.count == 1 && toks[0].len == 1);
    CHECK_EQ(parse_n(&d, "\"ab\"", 3), RTWS_ERR_SYNTAX);
    CHECK_EQ(parse_n(&d, "true", 3), RTWS_ERR_SYNTAX);
    /* NULL text with length 0 is the empty input */
    CHECK_EQ(rtws_json_parse(&d, NULL, 0, toks, 4, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(d.err_off, 0);
}

static void test_tokens(void) {
    rtws_json d;
    const char *s = "{\"a\":[1,\"x\\n\",{}],\"b\":true,\"c\":{\"d\":null}} ";
    CHECK_EQ(parse(&d, s), RTWS_OK);
    CHECK_EQ(d.count, 12);
    CHECK(toks[0].type == RTWS_JSON_OBJECT && toks[0].size == 3 && toks[0].next == 12 &&
          toks[0].parent == -1 && toks[0].start == 0 && toks[0].len == strlen(s) - 1);
    CHECK(toks[1].type == RTWS_JSON_STRING && toks[1].flags == RTWS_JSON_KEY &&
          toks[1].start == 2 && toks[1].len == 1 && toks[1].next == 2 && toks[1].parent == 0);
    CHECK(toks[2].type == RTWS_JSON_ARRAY && toks[2].size == 3 && toks[2].next == 6 &&
          toks[2].parent == 0 && toks[2].start == 5 && toks[2].len == 12);
    CHECK(toks[3].type == RTWS_JSON_NUMBER && toks[3].parent == 2 && toks[3].len == 1);
    CHECK(toks[4].type == RTWS_JSON_STRING && toks[4].flags == RTWS_JSON_ESCAPED &&
          toks[4].len == 3);
    CHECK(toks[5].type == RTWS_JSON_OBJECT && toks[5].size == 0 && toks[5].next == 6 &&
          toks[5].len == 2);
    CHECK(toks[7].type == RTWS_JSON_TRUE && toks[7].parent == 0);
    CHECK(toks[9].type == RTWS_JSON_OBJECT && toks[9].size == 1 && toks[9].next == 12);
    CHECK(toks[11].type == RTWS_JSON_NULL && toks[11].parent == 9);

    /* tokens run out: NOSPACE, count says how many are needed, at every cap */
    {
        size_t cap;
        for (cap = 0; cap < 12; cap++) {
            CHECK_EQ(rtws_json_parse(&d, s, strlen(s), toks, cap, 0), RTWS_ERR_NOSPACE);
            CHECK_EQ(d.count, 12);
            CHECK(d.err[0] != '\0');
        }
        CHECK_EQ(rtws_json_parse(&d, s, strlen(s), NULL, 0, 0), RTWS_OK);
        CHECK_EQ(d.count, 12);
        /* an error after the tokens ran out is still reported as itself */
        CHECK_EQ(rtws_json_parse(&d, "[1,2,3,]", 8, toks, 2, 0), RTWS_ERR_SYNTAX);
        CHECK_EQ(d.err_off, 7);
        CHECK_EQ(rtws_json_parse(&d, "[[1],{\"a\":[}]]", 14, toks, 2, 0), RTWS_ERR_SYNTAX);
        CHECK_EQ(d.err_off, 11);
        CHECK_EQ(rtws_json_parse(&d, "[[1],{\"a\":[]}]", 14, toks, 2, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(d.count, 6);
        CHECK_EQ(d.err_off, 2); /* the first value without a token: the 1 */
    }
    /* after NOSPACE, access stays within the filled tokens */
    {
        rtws_json_tok few[5];
        const char *m = "{\"a\":[1,2],\"b\":3,\"c\":4}";
        int k;
        CHECK_EQ(rtws_json_parse(&d, m, strlen(m), few, 5, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(d.count, 9);
        CHECK_EQ(rtws_json_get(&d, 0, "a"), 2);
        CHECK_EQ(rtws_json_get(&d, 0, "b"), -1);
        CHECK_EQ(rtws_json_get(&d, 0, "c"), -1);
        CHECK_EQ(rtws_json_next(&d, 1), -1); /* key b would be token 5 */
        CHECK_EQ(rtws_json_at(&d, 2, 1), 4);
        CHECK(rtws_json_tok_at(&d, 5) == NULL);
        for (k = rtws_json_child(&d, 0); k >= 0; k = rtws_json_next(&d, k)) CHECK(k < 5);
        /* the array's first element is the last filled token; an object's
           first key just past the end is not handed out */
        CHECK_EQ(rtws_json_parse(&d, m, strlen(m), few, 3, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_child(&d, 2), -1);
        CHECK_EQ(rtws_json_at(&d, 2, 0), -1);
        CHECK_EQ(rtws_json_parse(&d, m, strlen(m), few, 4, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_child(&d, 2), 3);
        CHECK_EQ(rtws_json_at(&d, 2, 0), 3);
        CHECK_EQ(rtws_json_parse(&d, m, strlen(m), few, 1, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_child(&d, 0), -1);
    }
    /* depth limit */
    CHECK_EQ(rtws_json_parse(&d, "[[1]]", 5, toks, 10, 2), RTWS_OK);
    CHECK_EQ(rtws_json_parse(&d, "[[1]]", 5, toks, 10, 1), RTWS_ERR_DEPTH);
    CHECK_EQ(d.err_off, 1);
    CHECK_EQ(rtws_json_parse(&d, "[{\"a\":[]}]", 10, NULL, 0, 2), RTWS_ERR_DEPTH);
    CHECK_EQ(d.err_off, 6);
    CHECK_EQ(rtws_json_parse(&d, "1", 1, toks, 10, 1), RTWS_OK);
}

static void test_access(void) {
    rtws_json d;
    int o, k, v, n;
    size_t len;
    const char *raw;
    CHECK_EQ(parse(&d, "{\"type\":\"publish\",\"data\":{\"t\":[1,2,3]},\"type\":\"x\","
                       "\"\\u0061b\":5,\"\\ud83d\\ude00\":6,\"e\":\"\"}"),
             RTWS_OK);
    o = 0;
    CHECK(rtws_json_eq(&d, rtws_json_get(&d, o, "type"), "publish")); /* first duplicate */
    CHECK_EQ(rtws_json_get(&d, o, "nope"), -1);
    CHECK_EQ(rtws_json_get(&d, o, "typ"), -1);
    CHECK_EQ(rtws_json_get(&d, o, "types"), -1);
    v = rtws_json_get(&d, o, "ab");
    CHECK(v > 0 && d.toks[v].type == RTWS_JSON_NUMBER);
    v = rtws_json_get(&d, o, "\xF0\x9F\x98\x80");
    CHECK(v > 0 && keep[d.toks[v].start] == '6');
    v = rtws_json_get(&d, o, "e");
    CHECK(v > 0 && rtws_json_eq(&d, v, "") && !rtws_json_eq(&d, v, "x"));
    CHECK_EQ(rtws_json_get(&d, 1, "type"), -1); /* not an object */
    CHECK_EQ(rtws_json_get(&d, 999, "type"), -1);
    CHECK_EQ(rtws_json_get(&d, -1, "type"), -1);
    /* iterate the keys */
    n = 0;
    for (k = rtws_json_child(&d, o); k >= 0; k = rtws_json_next(&d, k)) {
        CHECK(d.toks[k].flags & RTWS_JSON_KEY);
        CHECK(d.toks[k + 1].parent == o);
        n++;
    }
    CHECK_EQ(n, 6);
    /* the array */
    v = rtws_json_get(&d, rtws_json_get(&d, o, "data"), "t");
    CHECK(v > 0 && d.toks[v].type == RTWS_JSON_ARRAY);
    n = 0;
    for (k = rtws_json_child(&d, v); k >= 0; k = rtws_json_next(&d, k)) {
        int64_t x = 0;
        CHECK_EQ(rtws_json_int64(&d, k, &x), RTWS_OK);
        CHECK_EQ(x, ++n);
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(rtws_json_at(&d, v, 2), v + 3);
    CHECK_EQ(rtws_json_at(&d, v, 3), -1);
    CHECK_EQ(rtws_json_at(&d, o, 0), -1);
    CHECK_EQ(rtws_json_child(&d, v + 1), -1);
    CHECK_EQ(rtws_json_next(&d, 0), -1);
    /* raw: for forwarding */
    raw = rtws_json_raw(&d, rtws_json_get(&d, o, "data"), &len);
    CHECK(len == strlen("{\"t\":[1,2,3]}") && memcmp(raw, "{\"t\":[1,2,3]}", len) == 0);
    raw = rtws_json_raw(&d, 2, &len);
    CHECK(len == 9 && memcmp(raw, "\"publish\"", 9) == 0);
    CHECK(rtws_json_raw(&d, 1000, &len) == NULL && len == 0);

    /* eq without unescaping */
    CHECK_EQ(parse(&d, "[\"\\u0061\",\"a\\/b\",\"\\ud83d\\ude00x\",\"\\\"q\\\\\",\"\\u00e9\",1]"),
             RTWS_OK);
    CHECK(rtws_json_eq(&d, 1, "a"));
    CHECK(!rtws_json_eq(&d, 1, "b"));
    CHECK(!rtws_json_eq(&d, 1, "aa"));
    CHECK(!rtws_json_eq(&d, 1, ""));
    CHECK(rtws_json_eq(&d, 2, "a/b"));
    CHECK(!rtws_json_eq(&d, 2, "a\\/b"));
    CHECK(rtws_json_eq(&d, 3, "\xF0\x9F\x98\x80x"));
    CHECK(!rtws_json_eq(&d, 3, "\xF0\x9F\x98\x80"));
    CHECK(!rtws_json_eq(&d, 3, "\xF0\x9F\x98"));
    CHECK(rtws_json_eq(&d, 4, "\"q\\"));
    CHECK(rtws_json_eq(&d, 5, "\xC3\xA9"));
    CHECK(rtws_json_eqn(&d, 5, "\xC3\xA9zz", 2));
    CHECK(!rtws_json_eq(&d, 6, "1")); /* a number is not a string */
    CHECK(rtws_json_tok_at(&d, 7) == NULL);
    CHECK(rtws_json_tok_at(&d, 6) != NULL);
}

static void test_unescape(void) {
    rtws_json d;
    char buf[64];
    size_t len = 99;
    CHECK_EQ(parse(&d, "[\"a\\u0000b\\n\\ud83d\\ude00\\u20ac\\/\",\"plain\",\"\",3]"), RTWS_OK);
    CHECK_EQ(rtws_json_unescape(&d, 1, buf, sizeof buf, &len), RTWS_OK);
    CHECK_EQ(len, 3 + 1 + 4 + 3 + 1);
    CHECK(memcmp(buf, "a\0b\n\xF0\x9F\x98\x80\xE2\x82\xAC/", 12) == 0 && buf[12] == '\0');
    CHECK_EQ(rtws_json_unescape(&d, 1, buf, 12, &len), RTWS_ERR_NOSPACE);
    CHECK_EQ(len, 12);
    CHECK_EQ(rtws_json_unescape(&d, 1, buf, 13, &len), RTWS_OK);
    CHECK_EQ(rtws_json_unescape(&d, 1, buf, d.toks[1].len + 1, &len), RTWS_OK);
    CHECK_EQ(rtws_json_unescape(&d, 2, buf, sizeof buf, &len), RTWS_OK);
    CHECK(len == 5 && strcmp(buf, "plain") == 0);
    CHECK_EQ(rtws_json_unescape(&d, 2, buf, 5, &len), RTWS_ERR_NOSPACE);
    CHECK_EQ(len, 5);
    CHECK_EQ(rtws_json_unescape(&d, 3, buf, 1, &len), RTWS_OK);
    CHECK(len == 0 && buf[0] == '\0');
    CHECK_EQ(rtws_json_unescape(&d, 3, NULL, 0, &len), RTWS_ERR_NOSPACE);
    CHECK_EQ(rtws_json_unescape(&d, 4, buf, sizeof buf, &len), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_unescape(&d, 0, buf, sizeof buf, &len), RTWS_ERR_INVALID);
    /* surrogate pairs at the edges of the range */
    CHECK_EQ(parse(&d, "\"\\uD800\\uDC00\\uDBFF\\uDFFF\\uFFFF\\u0080\\u07FF\\u0800\""), RTWS_OK);
    CHECK_EQ(rtws_json_unescape(&d, 0, buf, sizeof buf, &len), RTWS_OK);
    CHECK_EQ(len, 4 + 4 + 3 + 2 + 2 + 3);
    CHECK(memcmp(buf, "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xC2\x80\xDF\xBF\xE0\xA0\x80",
                 len) == 0);
    CHECK(rtws_json_eq(&d, 0, buf) == 1);
}

static rtws_err i64(const char *s, int64_t *v) {
    rtws_json d;
    rtws_err e = parse(&d, s);
    if (e != RTWS_OK) return RTWS_ERR_SYNTAX;
    return rtws_json_int64(&d, 0, v);
}

/* a == b with both rounded to double: where FLT_EVAL_METHOD is 2 (x87, i686)
   a constant such as 0.1 or 7.0 / 9.0 is otherwise kept in long double */
static int deq(double a, double b) { return a == b; }

static rtws_err dbl(const char *s, double *v) {
    rtws_json d;
    rtws_err e = parse(&d, s);
    if (e != RTWS_OK) return RTWS_ERR_SYNTAX;
    return rtws_json_double(&d, 0, v);
}

static void test_numbers(void) {
    int64_t v = 0;
    double x = 0;
    rtws_json d;
    CHECK(i64("9223372036854775807", &v) == RTWS_OK && v == INT64_MAX);
    CHECK(i64("-9223372036854775808", &v) == RTWS_OK && v == INT64_MIN);
    v = 7;
    CHECK(i64("9223372036854775808", &v) == RTWS_ERR_RANGE && v == 7);
    CHECK(i64("-9223372036854775809", &v) == RTWS_ERR_RANGE && v == 7);
    CHECK(i64("18446744073709551616", &v) == RTWS_ERR_RANGE);
    CHECK(i64("99999999999999999999", &v) == RTWS_ERR_RANGE);
    CHECK(i64("9223372036854775806", &v) == RTWS_OK && v == INT64_MAX - 1);
    CHECK(i64("0", &v) == RTWS_OK && v == 0);
    CHECK(i64("-0", &v) == RTWS_OK && v == 0);
    CHECK(i64("-0.0e5", &v) == RTWS_OK && v == 0);
    CHECK(i64("0e999999999999999999999", &v) == RTWS_OK && v == 0);
    CHECK(i64("1e3", &v) == RTWS_OK && v == 1000);
    CHECK(i64("1.2e1", &v) == RTWS_OK && v == 12);
    CHECK(i64("1200e-2", &v) == RTWS_OK && v == 12);
    CHECK(i64("0.1e1", &v) == RTWS_OK && v == 1);
    CHECK(i64("1.0", &v) == RTWS_OK && v == 1);
    CHECK(i64("9.223372036854775807e18", &v) == RTWS_OK && v == INT64_MAX);
    CHECK(i64("-9223372036854775808000e-3", &v) == RTWS_OK && v == INT64_MIN);
    CHECK(i64("1e18", &v) == RTWS_OK && v == 1000000000000000000);
    CHECK(i64("1e19", &v) == RTWS_ERR_RANGE);
    CHECK(i64("1e999999999999999999999", &v) == RTWS_ERR_RANGE);
    CHECK(i64("1.5", &v) == RTWS_ERR_RANGE);
    CHECK(i64("1e-1", &v) == RTWS_ERR_RANGE);
    CHECK(i64("-0.5", &v) == RTWS_ERR_RANGE);
    CHECK(i64("12.00000000000000000000000000000000000000000000001", &v) == RTWS_ERR_RANGE);
    CHECK(i64("\"1\"", &v) == RTWS_ERR_INVALID);
    CHECK_EQ(parse(&d, "[1]"), RTWS_OK);
    CHECK_EQ(rtws_json_int64(&d, 0, &v), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_double(&d, 0, &x), RTWS_ERR_INVALID);

    CHECK(dbl("1.5", &x) == RTWS_OK && x == 1.5);
    CHECK(dbl("0.1", &x) == RTWS_OK && deq(x, 0.1));
    CHECK(dbl("-0.0", &x) == RTWS_OK && x == 0.0 && 1.0 / x < 0);
    CHECK(dbl("-0", &x) == RTWS_OK && x == 0.0 && 1.0 / x < 0);
    CHECK(dbl("1e308", &x) == RTWS_OK && deq(x, 1e308));
    CHECK(dbl("1.7976931348623157e308", &x) == RTWS_OK && deq(x, 1.7976931348623157e308));
    CHECK(dbl("1e309", &x) == RTWS_ERR_RANGE && x > 1e308);
    CHECK(dbl("-1e309", &x) == RTWS_ERR_RANGE && x < -1e308);
    CHECK(dbl("4.9e-324", &x) == RTWS_OK && deq(x, 4.9e-324));
    CHECK(dbl("2.2250738585072011e-308", &x) == RTWS_OK && deq(x, 2.2250738585072011e-308));
    CHECK(dbl("1e-400", &x) == RTWS_OK && x == 0.0);
    CHECK(dbl("123456789012345678901234567890", &x) == RTWS_OK &&
          deq(x, 123456789012345678901234567890.0));
    CHECK(dbl("0.000001234e-300", &x) == RTWS_OK && deq(x, 1.234e-306));
    CHECK(dbl("9007199254740993", &x) == RTWS_OK && x == 9007199254740992.0);
    {
        /* a tie broken only by a digit past the 780th */
        static char s[1200];
        size_t o = 0, i;
        memcpy(s, "9007199254740993.", 17);
        o = 17;
        for (i = 0; i < 1000; i++) s[o++] = '0';
        s[o++] = '1';
        s[o] = '\0';
        CHECK(dbl(s, &x) == RTWS_OK && x == 9007199254740994.0);
        s[o - 1] = '0';
        CHECK(dbl(s, &x) == RTWS_OK && x == 9007199254740992.0);
    }
}

static size_t wr_str(char *buf, size_t cap, const char *s, size_t n, rtws_err *err) {
    rtws_json_writer w;
    size_t len = 0;
    rtws_json_writer_init(&w, buf, cap);
    rtws_json_write_string(&w, s, n);
    *err = rtws_json_writer_finish(&w, &len);
    return len;
}

static void test_writer(void) {
    char buf[512], in[40];
    rtws_json_writer w;
    rtws_json d;
    rtws_err e;
    size_t len, i;
    /* every control character, '"' and '\\' */
    for (i = 0; i < 32; i++) in[i] = (char)i;
    in[32] = '"';
    in[33] = '\\';
    in[34] = '/';
    in[35] = 0x7f;
    len = wr_str(buf, sizeof buf, in, 36, &e);
    CHECK_EQ(e, RTWS_OK);
    {
        const char *want = "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
                           "\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015"
                           "\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e"
                           "\\u001f\\\"\\\\/\x7f\"";
        CHECK_EQ(len, strlen(want));
        CHECK(strcmp(buf, want) == 0);
    }
    CHECK_EQ(rtws_json_parse(&d, buf, len, toks, 10, 0), RTWS_OK);
    {
        char out[64];
        size_t n;
        CHECK_EQ(rtws_json_unescape(&d, 0, out, sizeof out, &n), RTWS_OK);
        CHECK(n == 36 && memcmp(out, in, 36) == 0);
        CHECK(rtws_json_eqn(&d, 0, in, 36));
    }
    /* each control byte alone, inside plain text longer than 8 bytes */
    for (i = 0; i < 32; i++) {
        char s[20], out[20];
        size_t n;
        memcpy(s, "abcdefghijklmnop", 16);
        s[9] = (char)i;
        len = wr_str(buf, sizeof buf, s, 16, &e);
        CHECK_EQ(e, RTWS_OK);
        CHECK_EQ(rtws_json_parse(&d, buf, len, toks, 10, 0), RTWS_OK);
        CHECK(rtws_json_unescape(&d, 0, out, sizeof out, &n) == RTWS_OK && n == 16 &&
              memcmp(out, s, 16) == 0);
    }
    /* UTF-8 is copied; invalid UTF-8 is refused */
    len = wr_str(buf, sizeof buf, "\xC3\xA9\xF0\x9F\x98\x80", 6, &e);
    CHECK(e == RTWS_OK && len == 8 && memcmp(buf, "\"\xC3\xA9\xF0\x9F\x98\x80\"", 8) == 0);
    wr_str(buf, sizeof buf, "abc\xC0\x80", 5, &e);
    CHECK_EQ(e, RTWS_ERR_UTF8);
    wr_str(buf, sizeof buf, "\xED\xA0\x80", 3, &e);
    CHECK_EQ(e, RTWS_ERR_UTF8);
    wr_str(buf, sizeof buf, "abcdefghijk\xE2\x82", 13, &e);
    CHECK_EQ(e, RTWS_ERR_UTF8);
    wr_str(buf, sizeof buf, NULL, 0, &e);
    CHECK_EQ(e, RTWS_OK);

    /* a whole message */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_object(&w), RTWS_OK);
    rtws_json_write_key(&w, "type", 4);
    rtws_json_write_string(&w, "message", 7);
    rtws_json_write_key(&w, "seq", 3);
    rtws_json_write_int64(&w, INT64_MIN);
    rtws_json_write_key(&w, "max", 3);
    rtws_json_write_int64(&w, INT64_MAX);
    rtws_json_write_key(&w, "a", 1);
    rtws_json_write_array(&w);
    rtws_json_write_bool(&w, 1);
    rtws_json_write_bool(&w, 0);
    rtws_json_write_null(&w);
    rtws_json_write_double(&w, 0.1);
    rtws_json_write_double(&w, -0.0);
    rtws_json_write_double(&w, 1e21);
    rtws_json_write_double(&w, 5e-324);
    rtws_json_write_array(&w);
    rtws_json_write_array_end(&w);
    rtws_json_write_object(&w);
    rtws_json_write_object_end(&w);
    rtws_json_write_raw(&w, " {\"x\": [1, 2]} ", 15);
    rtws_json_write_array_end(&w);
    CHECK_EQ(rtws_json_write_object_end(&w), RTWS_OK);
    CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_OK);
    {
        const char *want = "{\"type\":\"message\",\"seq\":-9223372036854775808,"
                           "\"max\":9223372036854775807,\"a\":[true,false,null,0.1,-0,1e+21,"
                           "4.94065645841247e-324,[],{}, {\"x\": [1, 2]} ]}";
        CHECK(strcmp(buf, want) == 0);
        CHECK_EQ(len, strlen(want));
        if (strcmp(buf, want) != 0) fprintf(stderr, "got  %s\nwant %s\n", buf, want);
    }
    /* forwarding a parsed value */
    {
        char fwd[128];
        const char *msg = "{\"type\":\"publish\",\"data\":{\"text\":\"h\\u00e9\",\"n\":[1]}}";
        CHECK_EQ(rtws_json_parse(&d, msg, strlen(msg), toks, 100, 0), RTWS_OK);
        rtws_json_writer_init(&w, fwd, sizeof fwd);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "data", 4);
        rtws_json_write_tok(&w, &d, rtws_json_get(&d, 0, "data"));
        rtws_json_write_key(&w, "t", 1);
        rtws_json_write_tok(&w, &d, rtws_json_get(&d, 0, "type"));
        rtws_json_write_object_end(&w);
        CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_OK);
        CHECK(strcmp(fwd, "{\"data\":{\"text\":\"h\\u00e9\",\"n\":[1]},\"t\":\"publish\"}") == 0);
        rtws_json_writer_init(&w, fwd, sizeof fwd);
        rtws_json_write_array(&w);
        CHECK_EQ(rtws_json_write_tok(&w, &d, 1), RTWS_ERR_INVALID); /* a key */
        rtws_json_writer_init(&w, fwd, sizeof fwd);
        CHECK_EQ(rtws_json_write_tok(&w, &d, 1000), RTWS_ERR_INVALID);
    }

    /* misuse: RTWS_ERR_INVALID, sticky */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_key(&w, "a", 1), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_write_null(&w), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK_EQ(rtws_json_write_int64(&w, 1), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "a", 1);
    CHECK_EQ(rtws_json_write_key(&w, "b", 1), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "a", 1);
    CHECK_EQ(rtws_json_write_object_end(&w), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK_EQ(rtws_json_write_object_end(&w), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_array_end(&w), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_int64(&w, 1);
    CHECK_EQ(rtws_json_write_int64(&w, 2), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_raw(&w, "[1,]", 4), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_json_write_null(&w), RTWS_ERR_SYNTAX);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_double(&w, 0.0 / 0.0), RTWS_ERR_RANGE);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_double(&w, 1.0 / 0.0), RTWS_ERR_RANGE);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_double(&w, -1.0 / 0.0), RTWS_ERR_RANGE);
    CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_ERR_RANGE);
    /* depth */
    rtws_json_writer_init(&w, buf, sizeof buf);
    for (i = 0; i < RTWS_JSON_DEPTH; i++) CHECK_EQ(rtws_json_write_array(&w), RTWS_OK);
    CHECK_EQ(rtws_json_write_array(&w), RTWS_ERR_DEPTH);

    /* NOSPACE: sticky, but the needed size is counted */
    {
        size_t need, cap;
        rtws_json_writer_init(&w, NULL, 0);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "k\n", 2);
        rtws_json_write_double(&w, 2.5);
        CHECK_EQ(rtws_json_write_object_end(&w), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_writer_finish(&w, &need), RTWS_ERR_NOSPACE);
        CHECK_EQ(need, strlen("{\"k\\n\":2.5}"));
        for (cap = 0; cap <= need + 1; cap++) {
            memset(buf, 'Z', sizeof buf);
            rtws_json_writer_init(&w, buf, cap);
            rtws_json_write_object(&w);
            rtws_json_write_key(&w, "k\n", 2);
            rtws_json_write_double(&w, 2.5);
            rtws_json_write_object_end(&w);
            e = rtws_json_writer_finish(&w, &len);
            CHECK_EQ(len, need);
            CHECK_EQ(e, cap >= need ? RTWS_OK : RTWS_ERR_NOSPACE);
            CHECK(buf[cap] == 'Z'); /* nothing past cap */
            if (cap > need) CHECK(buf[need] == '\0');
        }
        /* misuse after NOSPACE is still reported */
        rtws_json_writer_init(&w, buf, 1);
        rtws_json_write_array(&w);
        rtws_json_write_string(&w, "long", 4);
        CHECK_EQ(rtws_json_write_key(&w, "x", 1), RTWS_ERR_INVALID);
    }
}

/* --- round trips --------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;
static void put(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = (char *)realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }
static void ws(sbuf *b) {
    static const char w[] = " \t\n\r";
    while (rnd(4) == 0) put(b, w + rnd(4), 1);
}
static void utf8(sbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 63));
        u[2] = (char)(0x80 | (cp & 63)); n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 63));
        u[2] = (char)(0x80 | ((cp >> 6) & 63)); u[3] = (char)(0x80 | (cp & 63)); n = 4;
    }
    put(b, u, n);
}
static uint32_t rnd_cp(void) {
    uint32_t cp;
    switch (rnd(4)) {
    case 0: return 0x20 + rnd(0x60);
    case 1: return 0x80 + rnd(0x780);
    case 2: do cp = 0x800 + rnd(0xF800); while (cp >= 0xD800 && cp <= 0xDFFF); return cp;
    default: return 0x10000 + rnd(0x100000);
    }
}
static void gen_string(sbuf *b) {
    int n = (int)rnd(20), i;
    char t[16];
    put(b, "\"", 1);
    for (i = 0; i < n; i++) {
        uint32_t cp = rnd_cp();
        switch (rnd(6)) {
        case 0: {
            static const char *const esc[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"};
            puts_(b, esc[rnd(8)]);
            break;
        }
        case 1:
            if (cp >= 0x10000) {
                snprintf(t, sizeof t, "\\u%04X\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                         0xDC00 + ((cp - 0x10000) & 0x3FF));
            } else {
                snprintf(t, sizeof t, "\\u%04x", cp);
            }
            puts_(b, t);
            break;
        case 2:
            if (cp != '"' && cp != '\\') utf8(b, cp);
            break;
        default:
            if (cp >= 0x20 && cp < 0x80 && cp != '"' && cp != '\\') utf8(b, cp);
            else puts_(b, "plain text");
        }
    }
    put(b, "\"", 1);
}
static void gen_number(sbuf *b) {
    char t[64];
    int n = 0;
    if (rnd(2)) t[n++] = '-';
    if (rnd(3) == 0) t[n++] = '0';
    else { t[n++] = (char)('1' + rnd(9)); while (rnd(3) && n < 30) t[n++] = (char)('0' + rnd(10)); }
    if (rnd(3) == 0) { t[n++] = '.'; do t[n++] = (char)('0' + rnd(10)); while (rnd(2) && n < 45); }
    if (rnd(3) == 0) {
        t[n++] = rnd(2) ? 'e' : 'E';
        if (rnd(2)) t[n++] = rnd(2) ? '+' : '-';
        do t[n++] = (char)('0' + rnd(10)); while (rnd(2) && n < 60);
    }
    put(b, t, (size_t)n);
}
static void gen_value(sbuf *b, int depth) {
    int n, i;
    ws(b);
    switch (depth > 6 ? 2 + rnd(5) : rnd(7)) {
    case 0:
        put(b, "[", 1);
        ws(b);
        for (n = (int)rnd(5), i = 0; i < n; i++) {
            if (i) put(b, ",", 1);
            gen_value(b, depth + 1);
        }
        put(b, "]", 1);
        break;
    case 1:
        put(b, "{", 1);
        ws(b);
        for (n = (int)rnd(5), i = 0; i < n; i++) {
            if (i) put(b, ",", 1);
            ws(b);
            gen_string(b);
            ws(b);
            put(b, ":", 1);
            gen_value(b, depth + 1);
        }
        put(b, "}", 1);
        break;
    case 2: gen_string(b); break;
    case 3: case 4: gen_number(b); break;
    default: {
        static const char *const lit[] = {"true", "false", "null"};
        puts_(b, lit[rnd(3)]);
    }
    }
    ws(b);
}

/* Writes every token of d again through the writer: strings unescaped and
   escaped anew, numbers as their text. */
static rtws_err reemit(const rtws_json *d, rtws_json_writer *w) {
    int stack[RTWS_JSON_DEPTH + 1], top = 0, i;
    char *tmp = (char *)malloc(d->len + 1);
    size_t n;
    for (i = 0; i < (int)d->count; i++) {
        const rtws_json_tok *t = d->toks + i;
        while (top && (uint32_t)i >= d->toks[stack[top - 1]].next) {
            if (d->toks[stack[--top]].type == RTWS_JSON_OBJECT) rtws_json_write_object_end(w);
            else rtws_json_write_array_end(w);
        }
        switch (t->type) {
        case RTWS_JSON_OBJECT: rtws_json_write_object(w); stack[top++] = i; break;
        case RTWS_JSON_ARRAY: rtws_json_write_array(w); stack[top++] = i; break;
        case RTWS_JSON_STRING:
            if (rtws_json_unescape(d, i, tmp, d->len + 1, &n) != RTWS_OK) abort();
            if (t->flags & RTWS_JSON_KEY) rtws_json_write_key(w, tmp, n);
            else rtws_json_write_string(w, tmp, n);
            break;
        case RTWS_JSON_NUMBER: rtws_json_write_tok(w, d, i); break;
        case RTWS_JSON_TRUE: rtws_json_write_bool(w, 1); break;
        case RTWS_JSON_FALSE: rtws_json_write_bool(w, 0); break;
        default: rtws_json_write_null(w);
        }
    }
    while (top) {
        if (d->toks[stack[--top]].type == RTWS_JSON_OBJECT) rtws_json_write_object_end(w);
        else rtws_json_write_array_end(w);
    }
    free(tmp);
    return rtws_json_writer_finish(w, &n);
}

/* Same shape and same decoded content. */
static int same_tokens(const rtws_json *a, const rtws_json *b) {
    size_t i;
    if (a->count != b->count) return 0;
    for (i = 0; i < a->count; i++) {
        const rtws_json_tok *x = a->toks + i, *y = b->toks + i;
        if (x->type != y->type || x->size != y->size || x->next != y->next ||
            x->parent != y->parent || (x->flags & ~RTWS_JSON_ESCAPED) != (y->flags & ~RTWS_JSON_ESCAPED))
            return 0;
        if (x->type == RTWS_JSON_STRING) {
            char *u = (char *)malloc(x->len + 1);
            size_t n;
            int eq;
            rtws_json_unescape(a, (int)i, u, x->len + 1, &n);
            eq = rtws_json_eqn(b, (int)i, u, n);
            free(u);
            if (!eq) return 0;
        } else if (x->type == RTWS_JSON_NUMBER) {
            if (x->len != y->len || memcmp(a->text + x->start, b->text + y->start, x->len)) return 0;
        }
    }
    return 1;
}

static void test_roundtrip(void) {
    static rtws_json_tok t1[4096], t2[4096];
    int round, bad = 0;
    for (round = 0; round < 3000; round++) {
        sbuf b = {NULL, 0, 0};
        rtws_json d1, d2;
        rtws_json_writer w;
        char *out;
        size_t need = 0, len = 0;
        rtws_err e;
        gen_value(&b, 0);
        e = rtws_json_parse(&d1, b.p, b.len, t1, 4096, 0);
        if (e != RTWS_OK) {
            fprintf(stderr, "generated doc rejected: %s at %zu: %s\n", d1.err, d1.err_off, b.p);
            bad++;
            free(b.p);
            continue;
        }
        rtws_json_writer_init(&w, NULL, 0);
        e = reemit(&d1, &w);
        CHECK(e == RTWS_ERR_NOSPACE);
        need = w.priv_.len;
        out = (char *)malloc(need + 1);
        rtws_json_writer_init(&w, out, need + 1);
        CHECK_EQ(reemit(&d1, &w), RTWS_OK);
        len = w.priv_.len;
        CHECK_EQ(len, need);
        e = rtws_json_parse(&d2, out, len, t2, 4096, 0);
        if (e != RTWS_OK || !same_tokens(&d1, &d2)) {
            fprintf(stderr, "round trip differs (%s):\n%s\n%s\n", d2.err, b.p, out);
            bad++;
        } else {
            /* writing again gives the same bytes */
            char *out2 = (char *)malloc(need + 1);
            rtws_json_writer_init(&w, out2, need + 1);
            if (reemit(&d2, &w) != RTWS_OK || memcmp(out, out2, need) != 0) bad++;
            free(out2);
        }
        /* every proper prefix is rejected or is itself a document */
        if (round % 10 == 0) {
            size_t k;
            for (k = 0; k < b.len; k++) {
                guarded g;
                rtws_json d3;
                const char *p = guard(&g, b.p, k);
                e = rtws_json_parse(&d3, p, k, t2, 4096, 0);
                if (e != RTWS_OK && e != RTWS_ERR_SYNTAX && e != RTWS_ERR_UTF8) bad++;
                if (e != RTWS_OK && d3.err_off > k) bad++;
                unguard(&g);
            }
        }
        free(out);
        free(b.p);
    }
    CHECK_EQ(bad, 0);

    /* doubles: shortest form reads back to the same bits */
    bad = 0;
    for (round = 0; round < 20000; round++) {
        uint64_t bits = (uint64_t)rnd(0xFFFFFFFFu) << 32 | rnd(0xFFFFFFFFu);
        double v, back = 0;
        char buf[64];
        size_t len;
        rtws_json_writer w;
        rtws_json d;
        if (round % 4 == 0) bits = (uint64_t)rnd(1u << 20) << 32 | rnd(0xFFFFFFFFu); /* subnormals */
        memcpy(&v, &bits, 8);
        rtws_json_writer_init(&w, buf, sizeof buf);
        if (v != v || v - v != 0.0) {
            if (rtws_json_write_double(&w, v) != RTWS_ERR_RANGE) bad++;
            continue;
        }
        if (rtws_json_write_double(&w, v) != RTWS_OK || rtws_json_writer_finish(&w, &len) != RTWS_OK ||
            rtws_json_parse(&d, buf, len, toks, 2, 0) != RTWS_OK ||
            rtws_json_double(&d, 0, &back) != RTWS_OK || memcmp(&back, &v, 8) != 0) {
            fprintf(stderr, "double %.17g -> %s -> %.17g\n", v, buf, back);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);

    /* writer fed random bytes: valid UTF-8 in, parseable JSON out */
    bad = 0;
    for (round = 0; round < 20000; round++) {
        char s[24], buf[200];
        size_t n = rnd(24), i, len, ulen;
        uint32_t st = 0;
        int valid;
        rtws_json_writer w;
        rtws_json d;
        rtws_err e;
        for (i = 0; i < n; i++) s[i] = (char)(rnd(3) ? rnd(0x80) : 0x80 + rnd(0x80));
        valid = rtws_utf8_validate(&st, (const uint8_t *)s, n, NULL) == RTWS_OK && st == 0;
        rtws_json_writer_init(&w, buf, sizeof buf);
        rtws_json_write_array(&w);
        rtws_json_write_string(&w, s, n);
        rtws_json_write_array_end(&w);
        e = rtws_json_writer_finish(&w, &len);
        if (e != (valid ? RTWS_OK : RTWS_ERR_UTF8)) bad++;
        if (e == RTWS_OK) {
            char u[32];
            if (rtws_json_parse(&d, buf, len, toks, 4, 0) != RTWS_OK ||
                rtws_json_unescape(&d, 1, u, sizeof u, &ulen) != RTWS_OK || ulen != n ||
                memcmp(u, s, n) != 0)
                bad++;
        }
    }
    CHECK_EQ(bad, 0);
}

/* --- big inputs -------------------------------------------------------- */

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_big(void) {
    size_t n = 1000000, i;
    char *s = (char *)malloc(2 * n + 16);
    rtws_json d;
    rtws_json_tok *many;
    double t0 = secs();
    /* depth bomb: a million '[' */
    memset(s, '[', n);
    CHECK_EQ(rtws_json_parse(&d, s, n, toks, 4096, 0), RTWS_ERR_DEPTH);
    CHECK_EQ(d.err_off, RTWS_JSON_DEPTH);
    CHECK_EQ(rtws_json_parse(&d, s, n, NULL, 0, 0), RTWS_ERR_DEPTH);
    CHECK_EQ(d.err_off, RTWS_JSON_DEPTH);
    CHECK_EQ(rtws_json_parse(&d, s, n, toks, 10, 2000000), RTWS_ERR_DEPTH);
    CHECK_EQ(d.err_off, 10 + RTWS_JSON_COUNT_DEPTH); /* beyond what counting can follow */
    /* as deep as asked, with a token for each level: no recursion */
    memset(s + n, ']', n);
    many = (rtws_json_tok *)malloc(n * sizeof *many);
    CHECK_EQ(rtws_json_parse(&d, s, 2 * n, many, n, (unsigned)n), RTWS_OK);
    CHECK_EQ(d.count, n);
    CHECK(many[n - 1].parent == (int32_t)(n - 2) && many[0].next == n && many[0].len == 2 * n);
    CHECK_EQ(rtws_json_parse(&d, s, 2 * n - 1, many, n, (unsigned)n), RTWS_ERR_SYNTAX);
    CHECK_EQ(d.err_off, 2 * n - 1);
    CHECK_EQ(rtws_json_parse(&d, s, 2 * n, many, n, (unsigned)n - 1), RTWS_ERR_DEPTH);
    free(many);
    free(s);
    fprintf(stderr, "depth bombs: %.2fs\n", secs() - t0);

    /* a 100 MB number parses; reading it gives RANGE for int64 and double */
    {
        size_t big = (size_t)100 << 20;
        int64_t v;
        double x;
        t0 = secs();
        s = (char *)malloc(big);
        memset(s, '7', big);
        CHECK_EQ(rtws_json_parse(&d, s, big, toks, 1, 0), RTWS_OK);
        CHECK(d.count == 1 && toks[0].len == big);
        CHECK_EQ(rtws_json_int64(&d, 0, &v), RTWS_ERR_RANGE);
        CHECK_EQ(rtws_json_double(&d, 0, &x), RTWS_ERR_RANGE);
        /* 0.777... : a 100 MB fraction reads as the nearest double */
        s[0] = '0';
        s[1] = '.';
        CHECK_EQ(rtws_json_parse(&d, s, big, toks, 1, 0), RTWS_OK);
        CHECK(rtws_json_double(&d, 0, &x) == RTWS_OK && deq(x, 7.0 / 9.0));
        CHECK_EQ(rtws_json_int64(&d, 0, &v), RTWS_ERR_RANGE);
        /* 1 followed by zeros, scaled back by the exponent: exactly 1 */
        memset(s, '0', big);
        s[0] = '1';
        memcpy(s + big - 12, "e-104857587", 11); /* 1 and big-13 zeros */
        CHECK_EQ(rtws_json_parse(&d, s, big - 1, toks, 1, 0), RTWS_OK);
        CHECK(rtws_json_int64(&d, 0, &v) == RTWS_OK && v == 1);
        CHECK(rtws_json_double(&d, 0, &x) == RTWS_OK && x == 1.0);
        /* and inside a string, 100 MB goes through the 8-byte scan */
        memset(s, 'a', big);
        s[0] = s[big - 1] = '"';
        CHECK_EQ(rtws_json_parse(&d, s, big, toks, 1, 0), RTWS_OK);
        CHECK(rtws_json_eqn(&d, 0, s + 1, big - 2));
        free(s);
        fprintf(stderr, "100 MB inputs: %.2fs\n", secs() - t0);
    }

    /* a million keys: NOSPACE with the count, then success */
    {
        sbuf b = {NULL, 0, 0};
        char k[32];
        int v;
        int64_t x = 0;
        t0 = secs();
        put(&b, "{", 1);
        for (i = 0; i < n; i++) {
            int m = snprintf(k, sizeof k, "%s\"k%zu\":%zu", i ? "," : "", i, i);
            put(&b, k, (size_t)m);
        }
        put(&b, "}", 1);
        CHECK_EQ(rtws_json_parse(&d, b.p, b.len, toks, 4096, 0), RTWS_ERR_NOSPACE);
        CHECK_EQ(d.count, 2 * n + 1);
        many = (rtws_json_tok *)malloc(d.count * sizeof *many);
        CHECK_EQ(rtws_json_parse(&d, b.p, b.len, many, 2 * n + 1, 0), RTWS_OK);
        CHECK_EQ(many[0].size, n);
        v = rtws_json_get(&d, 0, "k999999");
        CHECK(v > 0 && rtws_json_int64(&d, v, &x) == RTWS_OK && x == 999999);
        free(many);
        free(b.p);
        fprintf(stderr, "a million keys: %.2fs\n", secs() - t0);
    }
}

static void test_locale(void) {
    /* numbers never depend on LC_NUMERIC */
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        char buf[64];
        size_t len;
        double x = 0;
        rtws_json_writer w;
        rtws_json d;
        if (!setlocale(LC_NUMERIC, names[i])) continue;
        rtws_json_writer_init(&w, buf, sizeof buf);
        rtws_json_write_double(&w, 2.5);
        CHECK_EQ(rtws_json_writer_finish(&w, &len), RTWS_OK);
        CHECK(strcmp(buf, "2.5") == 0);
        CHECK(parse(&d, "1.25") == RTWS_OK && rtws_json_double(&d, 0, &x) == RTWS_OK && x == 1.25);
    }
    setlocale(LC_NUMERIC, "C");
}

int main(void) {
    test_rejects();
    test_accepts();
    test_tokens();
    test_access();
    test_unescape();
    test_numbers();
    test_writer();
    test_roundtrip();
    test_big();
    test_locale();
    return T_END();
}
