/* Layer 6 (json) one-call helpers: rtws_json_get_str / _get_int64 / _get_bool
   on parsed objects, and the *_field writers (key + value) with the writer's
   sticky error rules, each round-tripped through the parser. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_json_tok toks[64];

static rtws_json parse(const char *s) {
    rtws_json d;
    if (rtws_json_parse(&d, s, strlen(s), toks, 64, 0) != RTWS_OK) {
        fprintf(stderr, "bad test input: %s\n", s);
        d.count = 0;
    }
    return d;
}

static void test_get_str(void) {
    rtws_json d = parse("{\"a\":\"plain\",\"b\":\"x\\u0041\\n\\\"\",\"n\":5,\"z\":\"a\\u0000b\","
                        "\"e\":\"\",\"u\":\"\\ud83d\\ude00\",\"a\":\"second\",\"o\":{\"a\":\"in\"}}");
    char out[16];
    int o;
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, sizeof out), 5);
    CHECK(strcmp(out, "plain") == 0); /* the first of duplicate keys */
    CHECK_EQ(rtws_json_get_str(&d, 0, "b", out, sizeof out), 4);
    CHECK(strcmp(out, "xA\n\"") == 0);
    CHECK_EQ(rtws_json_get_str(&d, 0, "u", out, sizeof out), 4);
    CHECK(strcmp(out, "\xf0\x9f\x98\x80") == 0);
    strcpy(out, "junk");
    CHECK_EQ(rtws_json_get_str(&d, 0, "e", out, sizeof out), 0);
    CHECK(out[0] == '\0');
    /* absent, wrong type, not an object: INVALID and "" */
    strcpy(out, "junk");
    CHECK_EQ(rtws_json_get_str(&d, 0, "missing", out, sizeof out), RTWS_ERR_INVALID);
    CHECK(out[0] == '\0');
    strcpy(out, "junk");
    CHECK_EQ(rtws_json_get_str(&d, 0, "n", out, sizeof out), RTWS_ERR_INVALID);
    CHECK(out[0] == '\0');
    CHECK_EQ(rtws_json_get_str(&d, 0, "o", out, sizeof out), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_get_str(&d, 1, "a", out, sizeof out), RTWS_ERR_INVALID); /* a key */
    CHECK_EQ(rtws_json_get_str(&d, -1, "a", out, sizeof out), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_json_get_str(&d, 999, "a", out, sizeof out), RTWS_ERR_INVALID);
    o = rtws_json_get(&d, 0, "o");
    CHECK_EQ(rtws_json_get_str(&d, o, "a", out, sizeof out), 2);
    CHECK(strcmp(out, "in") == 0);
    /* U+0000 inside: not a C string */
    strcpy(out, "junk");
    CHECK_EQ(rtws_json_get_str(&d, 0, "z", out, sizeof out), RTWS_ERR_SYNTAX);
    CHECK(out[0] == '\0');
    /* room: len + 1 bytes exactly fit, len do not */
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, 6), 5);
    strcpy(out, "junk");
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, 5), RTWS_ERR_NOSPACE);
    CHECK(out[0] == '\0');
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, 1), RTWS_ERR_NOSPACE);
    CHECK(out[0] == '\0');
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", NULL, 0), RTWS_ERR_NOSPACE);
    CHECK_EQ(rtws_json_get_str(&d, 0, "missing", NULL, 0), RTWS_ERR_INVALID);
    /* the escaped "b" decodes to 4 bytes from 12 of text: 5 suffice */
    CHECK_EQ(rtws_json_get_str(&d, 0, "b", out, 5), 4);
    CHECK_EQ(rtws_json_get_str(&d, 0, "b", out, 4), RTWS_ERR_NOSPACE);
    /* a top-level array or string is not an object */
    d = parse("[\"a\",\"b\"]");
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, sizeof out), RTWS_ERR_INVALID);
    /* after a failed parse nothing is found */
    CHECK(rtws_json_parse(&d, "{\"a\":\"b\"", 8, toks, 64, 0) == RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_json_get_str(&d, 0, "a", out, sizeof out), RTWS_ERR_INVALID);
}

static void test_get_int64_bool(void) {
    rtws_json d = parse("{\"i\":42,\"neg\":-9223372036854775808,\"e\":1.2e1,\"f\":1.5,"
                        "\"big\":9223372036854775808,\"s\":\"7\",\"t\":true,\"fa\":false,"
                        "\"nu\":null,\"z\":0}");
    int64_t v = 77;
    CHECK(rtws_json_get_int64(&d, 0, "i", &v) == RTWS_OK && v == 42);
    CHECK(rtws_json_get_int64(&d, 0, "neg", &v) == RTWS_OK && v == INT64_MIN);
    CHECK(rtws_json_get_int64(&d, 0, "e", &v) == RTWS_OK && v == 12);
    CHECK(rtws_json_get_int64(&d, 0, "z", &v) == RTWS_OK && v == 0);
    v = 77;
    CHECK(rtws_json_get_int64(&d, 0, "f", &v) == RTWS_ERR_RANGE && v == 77);
    CHECK(rtws_json_get_int64(&d, 0, "big", &v) == RTWS_ERR_RANGE && v == 77);
    CHECK(rtws_json_get_int64(&d, 0, "s", &v) == RTWS_ERR_INVALID && v == 77);
    CHECK(rtws_json_get_int64(&d, 0, "t", &v) == RTWS_ERR_INVALID && v == 77);
    CHECK(rtws_json_get_int64(&d, 0, "missing", &v) == RTWS_ERR_INVALID && v == 77);
    CHECK(rtws_json_get_int64(&d, 1, "i", &v) == RTWS_ERR_INVALID && v == 77);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "t", 0), 1);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "t", -1), 1);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "fa", 1), 0);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "fa", -1), 0);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "nu", -1), -1);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "z", 7), 7); /* 0 is a number, not false */
    CHECK_EQ(rtws_json_get_bool(&d, 0, "s", 7), 7);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "missing", 3), 3);
    CHECK_EQ(rtws_json_get_bool(&d, -5, "t", 3), 3);
}

static void test_fields(void) {
    char buf[256], out[32];
    size_t n;
    int64_t v;
    rtws_json_writer w;
    rtws_json d, src = parse("{\"x\":[1,{\"y\":null}],\"k\":\"v\"}");
    rtws_json_tok t2[32];
    int x = rtws_json_get(&src, 0, "x");
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK(rtws_json_write_object(&w) == RTWS_OK);
    CHECK(rtws_json_write_str_field(&w, "type", "hi \"there\"\n") == RTWS_OK);
    CHECK(rtws_json_write_int64_field(&w, "n", INT64_MIN) == RTWS_OK);
    CHECK(rtws_json_write_bool_field(&w, "ok", 5) == RTWS_OK);
    CHECK(rtws_json_write_bool_field(&w, "no", 0) == RTWS_OK);
    CHECK(rtws_json_write_raw_field(&w, "raw", " [true, {}] ", 12) == RTWS_OK);
    CHECK(rtws_json_write_tok_field(&w, "tok", &src, x) == RTWS_OK);
    CHECK(rtws_json_write_str_field(&w, "", "") == RTWS_OK);
    CHECK(rtws_json_write_object_end(&w) == RTWS_OK);
    CHECK(rtws_json_writer_finish(&w, &n) == RTWS_OK);
    CHECK(strcmp(buf, "{\"type\":\"hi \\\"there\\\"\\n\",\"n\":-9223372036854775808,\"ok\":true,"
                      "\"no\":false,\"raw\": [true, {}] ,\"tok\":[1,{\"y\":null}],\"\":\"\"}") ==
          0);
    /* and back through the parser and the getters */
    CHECK(rtws_json_parse(&d, buf, n, t2, 32, 0) == RTWS_OK);
    CHECK_EQ(rtws_json_get_str(&d, 0, "type", out, sizeof out), 11);
    CHECK(strcmp(out, "hi \"there\"\n") == 0);
    CHECK(rtws_json_get_int64(&d, 0, "n", &v) == RTWS_OK && v == INT64_MIN);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "ok", -1), 1);
    CHECK_EQ(rtws_json_get_bool(&d, 0, "no", -1), 0);
    CHECK_EQ(rtws_json_get_str(&d, 0, "", out, sizeof out), 0);
    CHECK(d.toks[rtws_json_get(&d, 0, "tok")].type == RTWS_JSON_ARRAY);
    CHECK(d.toks[rtws_json_get(&d, 0, "raw")].size == 2);
}

/* Each field call outside an object, or with a bad value, fails and sticks. */
static void test_field_errors(void) {
    char buf[64];
    size_t n;
    rtws_json_writer w;
    rtws_json src = parse("{\"k\":\"v\"}");
    /* a field at the top level or inside an array is misuse */
    rtws_json_writer_init(&w, buf, sizeof buf);
    CHECK(rtws_json_write_int64_field(&w, "a", 1) == RTWS_ERR_INVALID);
    CHECK(rtws_json_write_object(&w) == RTWS_ERR_INVALID); /* sticky */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK(rtws_json_write_bool_field(&w, "a", 1) == RTWS_ERR_INVALID);
    CHECK(rtws_json_write_array_end(&w) == RTWS_ERR_INVALID);
    /* NULL key or value */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_str_field(&w, NULL, "x") == RTWS_ERR_INVALID);
    CHECK(rtws_json_writer_finish(&w, &n) == RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_str_field(&w, "a", NULL) == RTWS_ERR_INVALID);
    CHECK(rtws_json_write_int64_field(&w, "b", 2) == RTWS_ERR_INVALID);
    /* invalid UTF-8 in key or value */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_str_field(&w, "a", "\xff") == RTWS_ERR_UTF8);
    CHECK(rtws_json_write_object_end(&w) == RTWS_ERR_UTF8);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_int64_field(&w, "\xc0\x80", 1) == RTWS_ERR_UTF8);
    /* raw is validated: a syntax error sticks, so does more than one value */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_raw_field(&w, "r", "[1,]", 4) == RTWS_ERR_SYNTAX);
    CHECK(rtws_json_write_object_end(&w) == RTWS_ERR_SYNTAX);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_raw_field(&w, "r", "1 2", 3) == RTWS_ERR_SYNTAX);
    /* tok: a key token or a missing one is refused */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_tok_field(&w, "t", &src, 1) == RTWS_ERR_INVALID);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_tok_field(&w, "t", &src, -1) == RTWS_ERR_INVALID);
    /* two fields in a row after a key already written: misuse */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "k", 1);
    CHECK(rtws_json_write_str_field(&w, "a", "b") == RTWS_ERR_INVALID);
}

/* NOSPACE is soft: the fields keep counting, finish tells the size needed. */
static void test_field_nospace(void) {
    char small[8], big[128];
    size_t need = 0, n;
    rtws_json_writer w;
    rtws_json src = parse("{\"k\":[1,2]}");
    int k = rtws_json_get(&src, 0, "k");
    int round;
    for (round = 0; round < 3; round++) {
        char *buf = round == 0 ? NULL : round == 1 ? small : big;
        size_t cap = round == 0 ? 0 : round == 1 ? sizeof small : sizeof big;
        rtws_err want = round == 2 ? RTWS_OK : RTWS_ERR_NOSPACE;
        rtws_json_writer_init(&w, buf, cap);
        rtws_json_write_object(&w);
        CHECK(rtws_json_write_str_field(&w, "s", "hello") == want);
        CHECK(rtws_json_write_int64_field(&w, "i", -12) == want);
        CHECK(rtws_json_write_bool_field(&w, "b", 1) == want);
        CHECK(rtws_json_write_raw_field(&w, "r", "null", 4) == want);
        CHECK(rtws_json_write_tok_field(&w, "t", &src, k) == want);
        rtws_json_write_object_end(&w);
        CHECK(rtws_json_writer_finish(&w, &n) == want);
        if (round == 0) need = n;
        CHECK_EQ(n, need);
    }
    CHECK(strcmp(big, "{\"s\":\"hello\",\"i\":-12,\"b\":true,\"r\":null,\"t\":[1,2]}") == 0);
    CHECK_EQ(need, strlen(big));
    /* a real error after NOSPACE still wins */
    rtws_json_writer_init(&w, small, sizeof small);
    rtws_json_write_object(&w);
    CHECK(rtws_json_write_str_field(&w, "long key", "long value") == RTWS_ERR_NOSPACE);
    CHECK(rtws_json_write_raw_field(&w, "r", "nul", 3) == RTWS_ERR_SYNTAX);
    CHECK(rtws_json_writer_finish(&w, &n) == RTWS_ERR_SYNTAX);
}

int main(void) {
    test_get_str();
    test_get_int64_bool();
    test_fields();
    test_field_errors();
    test_field_nospace();
    return T_END();
}
