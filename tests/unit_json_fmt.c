/* rtws_json_write_fmt: every letter, the separators it skips, errors that
   stick, NOSPACE that still counts, and agreement with the plain calls. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdint.h>

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

static char buf[512];

static const char *fmt_done(rtws_json_writer *w, rtws_err *e) {
    size_t n = 0;
    *e = rtws_json_writer_finish(w, &n);
    return *e == RTWS_OK ? buf : "";
}

int main(void) {
    rtws_json_writer w;
    rtws_json d;
    rtws_json_tok t[16];
    rtws_err e;
    size_t n;
    const char *doc = "{\"a\":[1,{\"b\":null}],\"s\":\"x\\\"y\"}";

    /* every letter, separators skipped */
    CHECK_EQ(rtws_json_parse(&d, doc, strlen(doc), t, 16, 0), RTWS_OK);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_fmt(&w, "{k:s, k:s, k:S, k:i, k:u, k:f, k:b, k:n, k:r, k:j, k:[i,i], k:{}}",
                                 "s", "h\"i", "nul", (const char *)NULL, "len", "abcdef", (size_t)3,
                                 "i", (int64_t)-42, "u", (uint64_t)UINT64_MAX, "f", 1.5, "b", 1, "n",
                                 "r", "[true]", (size_t)6, "j", &d, rtws_json_get(&d, 0, "a"), "arr",
                                 (int64_t)1, (int64_t)2, "o"),
             RTWS_OK);
    CHECK_STR(fmt_done(&w, &e),
              "{\"s\":\"h\\\"i\",\"nul\":null,\"len\":\"abc\",\"i\":-42,\"u\":18446744073709551615,"
              "\"f\":1.5,\"b\":true,\"n\":null,\"r\":[true],\"j\":[1,{\"b\":null}],\"arr\":[1,2],"
              "\"o\":{}}");
    CHECK_EQ(e, RTWS_OK);

    /* the same document as the plain calls */
    {
        char other[128];
        rtws_json_writer v;
        rtws_json_writer_init(&v, other, sizeof other);
        rtws_json_write_object(&v);
        rtws_json_write_key(&v, "type", 4);
        rtws_json_write_string(&v, "x", 1);
        rtws_json_write_key(&v, "id", 2);
        rtws_json_write_int64(&v, 7);
        rtws_json_write_object_end(&v);
        CHECK_EQ(rtws_json_writer_finish(&v, &n), RTWS_OK);
        rtws_json_writer_init(&w, buf, sizeof buf);
        rtws_json_write_fmt(&w, "{k:s", "type", "x");
        rtws_json_write_fmt(&w, "k:u}", "id", (uint64_t)7); /* several calls make one document */
        CHECK_STR(fmt_done(&w, &e), other);
    }

    /* u: 0 and a value in an array after another */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_fmt(&w, "[u u]", (uint64_t)0, (uint64_t)10);
    CHECK_STR(fmt_done(&w, &e), "[0,10]");

    /* an unknown letter is an error that sticks */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_fmt(&w, "{x}"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_write_fmt(&w, "}"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_ERR_INVALID);

    /* misuse is refused as by the plain calls: a value without a key, u too */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_fmt(&w, "{u}", (uint64_t)1), RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_fmt(&w, "{k:r}", "bad", "[1,", (size_t)3), RTWS_ERR_SYNTAX);

    /* too small a buffer: NOSPACE, and the length needed is still counted */
    {
        char small[8];
        rtws_json_writer_init(&w, small, sizeof small);
        CHECK_EQ(rtws_json_write_fmt(&w, "{k:u, k:s}", "id", (uint64_t)123456789, "x", "yz"),
                 RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_ERR_NOSPACE);
        CHECK_EQ(n, strlen("{\"id\":123456789,\"x\":\"yz\"}"));
    }

    /* invalid UTF-8 in a string sticks as UTF8 */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK_EQ(rtws_json_write_fmt(&w, "[s, i]", "\xff", (int64_t)1), RTWS_ERR_UTF8);
    return T_END();
}
