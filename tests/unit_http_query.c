/* rtws_http_get_query (issue 13): percent-decoding (RFC 3986 §2.1) and '+'
   as a space, bad escapes, the first of repeated names, absent against
   empty, values against the caller's cap, names decoded too. Requests are
   parsed with rtws_http_parse_request, as a server sees them. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_http req;
static char head[8192];

static void parse(const char *target) {
    size_t off = 0;
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    CHECK(n > 0 && (size_t)n < sizeof head);
    CHECK_EQ(rtws_http_parse_request(head, (size_t)n, &req, 0, &off), RTWS_OK);
}

/* the value of name in target, or a marker for absent and errors */
static const char *q(const char *target, const char *name) {
    static char out[512];
    size_t len = 99;
    int r;
    parse(target);
    r = rtws_http_get_query(&req, name, out, sizeof out, &len);
    if (r == 0) return len == 0 ? "<absent>" : "<len not reset>";
    if (r == RTWS_ERR_SYNTAX) return "<syntax>";
    if (r != 1) return "<other>";
    if (strlen(out) != len) return "<len>";
    return out;
}

#define Q(t, n, want) CHECK(strcmp(q(t, n), want) == 0)

static void test_decoding(void) {
    Q("/ws?token=abc", "token", "abc");
    Q("/ws?a=%41%42%43", "a", "ABC");
    Q("/ws?a=%e2%82%ac", "a", "\xe2\x82\xac"); /* lower-case hex */
    Q("/ws?a=%E2%82%AC", "a", "\xe2\x82\xac");
    Q("/ws?a=x+y+z", "a", "x y z");
    Q("/ws?a=x%2By", "a", "x+y"); /* an escaped '+' stays a plus */
    Q("/ws?a=%25", "a", "%");
    Q("/ws?a=%2525", "a", "%25"); /* decoded once */
    Q("/ws?a=b=c", "a", "b=c");   /* only the first '=' splits */
    Q("/ws?a=%26&b=2", "a", "&");
    Q("/ws?a=%3D", "a", "=");
    /* bad escapes in the value asked for */
    Q("/ws?a=%zz", "a", "<syntax>");
    Q("/ws?a=%0", "a", "<syntax>");
    Q("/ws?a=%", "a", "<syntax>");
    Q("/ws?a=ab%", "a", "<syntax>");
    Q("/ws?a=%g1", "a", "<syntax>");
    Q("/ws?a=%1g", "a", "<syntax>");
    Q("/ws?a=%0&b=1", "a", "<syntax>"); /* the escape ends at '&', not after it */
    /* ...are not errors when another parameter holds them */
    Q("/ws?x=%zz&a=1", "a", "1");
    Q("/ws?%zz=1&a=2", "a", "2");
}

static void test_presence(void) {
    Q("/ws", "a", "<absent>");
    Q("/ws?", "a", "<absent>");
    Q("/ws?b=1", "a", "<absent>");
    Q("/ws?ab=1", "a", "<absent>");
    Q("/ws?A=1", "a", "<absent>"); /* case-sensitive */
    Q("/ws?a=", "a", "");          /* empty, but there */
    Q("/ws?a", "a", "");
    Q("/ws?a&b=2", "b", "2");
    Q("/ws?&&a=1&&", "a", "1");
    Q("/ws?=1&a=2", "a", "2");
    Q("/ws?=1", "", "<absent>");   /* an empty name never matches */
    /* repeated: the first counts */
    Q("/ws?a=1&a=2", "a", "1");
    Q("/ws?a=&a=2", "a", "");
    Q("/ws?b=0&a=1&a=2", "a", "1");
    /* names are decoded before they are compared */
    Q("/ws?user%5Fid=7", "user_id", "7");
    Q("/ws?my+key=v", "my key", "v");
    Q("/ws?my%20key=v", "my key", "v");
}

static void test_caps(void) {
    char out[8], big[3000];
    size_t len = 0, i;
    int n;
    parse("/ws?a=1234567&b=12345678&c=%41%41%41%41%41%41%41%41");
    CHECK_EQ(rtws_http_get_query(&req, "a", out, sizeof out, &len), 1); /* 7 + NUL fits */
    CHECK_EQ(len, 7);
    CHECK(strcmp(out, "1234567") == 0);
    CHECK_EQ(rtws_http_get_query(&req, "b", out, sizeof out, &len), RTWS_ERR_NOSPACE);
    CHECK_EQ(len, 8); /* the length it needs, without the NUL */
    CHECK_EQ(out[0], '\0');
    CHECK_EQ(rtws_http_get_query(&req, "c", out, sizeof out, &len), RTWS_ERR_NOSPACE);
    CHECK_EQ(len, 8); /* decoded length, not the 24 bytes as sent */
    /* out NULL: the length only; len NULL is fine too */
    CHECK_EQ(rtws_http_get_query(&req, "c", NULL, 0, &len), 1);
    CHECK_EQ(len, 8);
    CHECK_EQ(rtws_http_get_query(&req, "a", out, sizeof out, NULL), 1);
    CHECK_EQ(rtws_http_get_query(&req, "zz", NULL, 0, NULL), 0);
    /* %00 decodes to a NUL byte inside the value: len tells */
    parse("/ws?a=x%00y");
    CHECK_EQ(rtws_http_get_query(&req, "a", out, sizeof out, &len), 1);
    CHECK_EQ(len, 3);
    CHECK(memcmp(out, "x\0y", 4) == 0);
    /* a long value (a 2 KiB token) */
    n = snprintf(big, sizeof big, "/ws?token=");
    for (i = 0; i < 2048; i++) big[(size_t)n + i] = (char)('a' + i % 26);
    big[(size_t)n + 2048] = 0;
    parse(big);
    {
        static char tok[4096];
        CHECK_EQ(rtws_http_get_query(&req, "token", tok, sizeof tok, &len), 1);
        CHECK_EQ(len, 2048);
        CHECK(memcmp(tok, big + n, 2048) == 0);
        CHECK_EQ(rtws_http_get_query(&req, "token", tok, 2048, &len), RTWS_ERR_NOSPACE);
        CHECK_EQ(rtws_http_get_query(&req, "token", tok, 2049, &len), 1);
    }
    /* a name longer than any compared (over 256 bytes decoded) is skipped */
    n = snprintf(big, sizeof big, "/ws?");
    for (i = 0; i < 300; i++) big[(size_t)n + i] = 'k';
    memcpy(big + n + 300, "=1&k=2", 7);
    parse(big);
    CHECK_EQ(rtws_http_get_query(&req, "k", out, sizeof out, &len), 1);
    CHECK(strcmp(out, "2") == 0);
    /* the query of a hand-made request with no query at all */
    memset(&req, 0, sizeof req);
    CHECK_EQ(rtws_http_get_query(&req, "a", out, sizeof out, &len), 0);
}

int main(void) {
    test_decoding();
    test_presence();
    test_caps();
    return T_END();
}
