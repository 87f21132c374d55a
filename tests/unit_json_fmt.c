/* Layer 6: rtws_json_write_fmt, the writer driven by a format string: every
   directive, nesting, optional members, keys from arguments, mixing with the
   other writer calls, and the errors (bad formats, NOSPACE measuring). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static char BUF[1024];

/* the text written, or "ERR<n>" */
static const char *done(rtws_json_writer *w) {
    size_t n;
    rtws_err e = rtws_json_writer_finish(w, &n);
    if (e != RTWS_OK) snprintf(BUF, sizeof BUF, "ERR%d", (int)e);
    return BUF;
}

static void test_values(void) {
    rtws_json_writer w;
    rtws_json d;
    rtws_json_tok t[16];
    const char *src = "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}";
    CHECK(rtws_json_parse(&d, src, strlen(src), t, 16, 0) == RTWS_OK);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "{s:%s, S:%S, d:%d, i:%i, u:%u, z:%z, f:%f, b:%b, n:%b}",
                                 "h\"i", "abcdef", (size_t)3, -7, (int64_t)-9000000000,
                                 (uint64_t)18000000000u, (size_t)42, 0.5, 1, 0),
             RTWS_OK);
    CHECK(strcmp(done(&w), "{\"s\":\"h\\\"i\",\"S\":\"abc\",\"d\":-7,\"i\":-9000000000,"
                           "\"u\":18000000000,\"z\":42,\"f\":0.5,\"b\":true,\"n\":false}") == 0);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "{a:%t,c:%t,raw:%r,arr:[%d,[],{}],o:{}}", &d, rtws_json_get(&d, 0, "a"),
                        &d, rtws_json_get(&d, 0, "c"), "[true, 2]", (size_t)9, 5);
    CHECK(strcmp(done(&w),
                 "{\"a\":[1,{\"b\":null}],\"c\":\"x\",\"raw\":[true, 2],\"arr\":[5,[],{}],\"o\":{}}") == 0);
    /* literals: 'text' (no escapes needed in fmt, escaped in the output), numbers,
       true, false, null */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "{type:'error', t:'a\"b', e:'', n:-1.5e3, z:0, y:true, x:false, v:null}");
    CHECK(strcmp(done(&w), "{\"type\":\"error\",\"t\":\"a\\\"b\",\"e\":\"\",\"n\":-1.5e3,\"z\":0,"
                           "\"y\":true,\"x\":false,\"v\":null}") == 0);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "['x y', 7, %d]", 8);
    CHECK(strcmp(done(&w), "[\"x y\",7,8]") == 0);
    /* top-level values and arrays need no keys */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "[%s %d %b]", "a", 1, 1);
    CHECK(strcmp(done(&w), "[\"a\",1,true]") == 0);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "%i", (int64_t)12);
    CHECK(strcmp(done(&w), "12") == 0);
}

static void test_absent_optional_keys(void) {
    rtws_json_writer w;
    rtws_json d;
    rtws_json_tok t[4];
    CHECK(rtws_json_parse(&d, "{}", 2, t, 4, 0) == RTWS_OK);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "{a:%s, b?:%s, c?:%s, d:%r, e?:%r, f:%t, g?:%t, h?:%S}", (const char *)NULL,
                        (const char *)NULL, "yes", (const char *)NULL, (size_t)0,
                        (const char *)NULL, (size_t)0, &d, rtws_json_get(&d, 0, "x"), &d, -1,
                        (const char *)NULL, (size_t)0);
    CHECK(strcmp(done(&w), "{\"a\":null,\"c\":\"yes\",\"d\":null,\"f\":null}") == 0);
    /* %k: the key from an argument (escaped), also optional */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "{%k:%d, %k?:%s, %k:[]}", "we\"ird", 1, "gone", (const char *)NULL, "l");
    CHECK(strcmp(done(&w), "{\"we\\\"ird\":1,\"l\":[]}") == 0);
    /* names may hold any byte but the syntax ones */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_fmt(&w, "{user_id:%d,created-at.v2:%d,\xc3\xa9t\xc3\xa9:%d}", 1, 2, 3);
    CHECK(strcmp(done(&w), "{\"user_id\":1,\"created-at.v2\":2,\"\xc3\xa9t\xc3\xa9\":3}") == 0);
}

/* fmt continues what other calls opened, and leaves open what it opens */
static void test_mixing(void) {
    rtws_json_writer w;
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "type", "x");
    CHECK_EQ(rtws_json_write_fmt(&w, "data:{id:%d, list:[", 7), RTWS_OK);
    rtws_json_write_int64(&w, 1);
    rtws_json_write_fmt(&w, "%d %d", 2, 3);
    rtws_json_write_fmt(&w, "]");
    rtws_json_write_fmt(&w, "more:%b}", 1);
    rtws_json_write_object_end(&w);
    CHECK(strcmp(done(&w), "{\"type\":\"x\",\"data\":{\"id\":7,\"list\":[1,2,3],\"more\":true}}") == 0);
    /* an empty format writes nothing */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    rtws_json_write_object(&w);
    CHECK_EQ(rtws_json_write_fmt(&w, " , "), RTWS_OK);
    rtws_json_write_object_end(&w);
    CHECK(strcmp(done(&w), "{}") == 0);
}

static void test_errors(void) {
    rtws_json_writer w;
    static const char *const bad[] = {
        "{a %d}",   /* no ':' */
        "{:%d}",    /* no name */
        "{a:%q}",   /* unknown directive */
        "{a:}",     /* no value */
        "{a:%}",    /* a lone % */
        "{a:x}",    /* a bare word is no value */
        "{a:%d",    /* not closed: finish says so */
        "{a:%d}}",  /* one end too many */
        "[}",       /* mismatched */
        "{a:%d}%d", /* a second top-level value */
        "{\"a\":%d}", /* quotes are not names */
        "{a:'open}",  /* a literal not closed */
        "{a:01}",     /* not a JSON number */
        "{a:nul}",    /* nor a JSON word */
        "{'a':1}"     /* literals are values, not names */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rtws_json_writer_init(&w, BUF, sizeof BUF);
        rtws_json_write_fmt(&w, bad[i], 1, 2);
        CHECK(strcmp(done(&w), "ERR-2") == 0 || (printf("  fmt %s: %s\n", bad[i], BUF), 0));
    }
    CHECK_EQ(RTWS_ERR_INVALID, -2);
    /* %k NULL: invalid; an error sticks for later calls */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "{%k:%d}", (const char *)NULL, 1), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_write_fmt(&w, "}"), RTWS_ERR_INVALID);
    /* ranges: uint64 over INT64_MAX, NaN, bad UTF-8, raw that is not JSON */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "[%u]", (uint64_t)UINT64_MAX), RTWS_ERR_RANGE);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "[%f]", 0.0 / 0.0), RTWS_ERR_RANGE);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "[%s]", "\xff"), RTWS_ERR_UTF8);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK(rtws_json_write_fmt(&w, "[%r]", "{x", (size_t)2) != RTWS_OK);
    /* too small a buffer: NOSPACE, and the length needed, as for the other calls */
    {
        char small[8];
        size_t n = 0;
        rtws_json_writer_init(&w, small, sizeof small);
        CHECK_EQ(rtws_json_write_fmt(&w, "{name:%s, n:%d}", "a long value", 12345), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_ERR_NOSPACE);
        CHECK_EQ(n, strlen("{\"name\":\"a long value\",\"n\":12345}"));
        rtws_json_writer_init(&w, NULL, 0); /* measuring */
        rtws_json_write_fmt(&w, "{name:%s}", "abc");
        rtws_json_writer_finish(&w, &n);
        CHECK_EQ(n, 14u);
    }
    /* NULL fmt: nothing */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, NULL), RTWS_OK);
    /* a bare value ends before a quote and does not eat it (fuzz_json_fmt:
       "[2''x%\003'...]" took the second quote for the opening one and hid
       the bad conversion inside a string) */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "[2'a']"), RTWS_OK);
    CHECK(strcmp(done(&w), "[2,\"a\"]") == 0);
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK(rtws_json_write_fmt(&w, "[2''x%\003'%d]", 1) != RTWS_OK);
}

/* %T: a time as ISO 8601 UTC; one that has no such form writes null, or
   is left out with '?' */
static void test_time(void) {
    rtws_json_writer w;
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "{at:%T, epoch:%T, before?:%T, neg:%T, far:%T}",
                                 (int64_t)1796541319123, (int64_t)0, (int64_t)-1, (int64_t)-5,
                                 (int64_t)253402300800000),
             RTWS_OK);
    CHECK(strcmp(done(&w), "{\"at\":\"2026-12-06T07:15:19.123Z\",\"epoch\":"
                           "\"1970-01-01T00:00:00.000Z\",\"neg\":null,\"far\":null}") == 0);
    /* the argument is an int64_t even where a smaller type would do */
    rtws_json_writer_init(&w, BUF, sizeof BUF);
    CHECK_EQ(rtws_json_write_fmt(&w, "[%T,%d]", (int64_t)253402300799999, 7), RTWS_OK);
    CHECK(strcmp(done(&w), "[\"9999-12-31T23:59:59.999Z\",7]") == 0);
}

/* rtws_json_fmt: one whole text in a buffer, or 0 */
static void test_one_call(void) {
    char b[64];
    size_t n;
    memset(b, 'x', sizeof b);
    n = rtws_json_fmt(b, sizeof b, "{type:%s, n:%d, t:%T, opt?:%s}", "a\"b", -5, (int64_t)0,
                      (const char *)NULL);
    CHECK_EQ(n, strlen("{\"type\":\"a\\\"b\",\"n\":-5,\"t\":\"1970-01-01T00:00:00.000Z\"}"));
    CHECK(strcmp(b, "{\"type\":\"a\\\"b\",\"n\":-5,\"t\":\"1970-01-01T00:00:00.000Z\"}") == 0);
    CHECK_EQ(rtws_json_fmt(b, sizeof b, "[%d, %b]", 1, 0), (size_t)9);
    CHECK(strcmp(b, "[1,false]") == 0);
    /* exactly full: the text and its NUL; one byte less: 0 */
    CHECK_EQ(rtws_json_fmt(b, 10, "[%d, %b]", 1, 0), (size_t)9);
    CHECK_EQ(rtws_json_fmt(b, 9, "[%d, %b]", 1, 0), (size_t)0);
    CHECK_EQ(rtws_json_fmt(b, 0, "[1]"), (size_t)0);
    CHECK_EQ(rtws_json_fmt(b, sizeof b, "{type:%s", "open"), (size_t)0); /* left open */
    CHECK_EQ(rtws_json_fmt(b, sizeof b, "{type %s}", "x"), (size_t)0);   /* no ':' */
    CHECK_EQ(rtws_json_fmt(b, sizeof b, "%s", "top-level string"), (size_t)18);
    CHECK_EQ(rtws_json_fmt(b, sizeof b, ""), (size_t)0); /* nothing */
}

int main(void) {
    test_one_call();
    test_values();
    test_time();
    test_absent_optional_keys();
    test_mixing();
    test_errors();
    return T_END();
}
