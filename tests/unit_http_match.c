/* rtws_http_match: route patterns with a method and {name} path parameters
   against parsed requests, edge cases and malformed patterns included. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_http REQ;
static char BUF[512];

/* parses "METHOD target" as a request */
static int req(const char *line) {
    size_t off = 0;
    int n = snprintf(BUF, sizeof BUF, "%s HTTP/1.1\r\nHost: x\r\n\r\n", line);
    return rtws_http_parse_request(BUF, (size_t)n, &REQ, RTWS_MAX_HEADERS, &off) == RTWS_OK;
}
static int eq(const rtws_str *s, const char *want) {
    return s->len == strlen(want) && memcmp(s->p, want, s->len) == 0;
}
/* the result of matching line against pattern with room for n parameters */
static int m(const char *line, const char *pattern, rtws_str *ps, size_t n) {
    if (!req(line)) return -99;
    return rtws_http_match(&REQ, pattern, ps, n);
}

int main(void) {
    rtws_str p[4];
    memset(p, 0, sizeof p);
    /* plain routes, methods */
    CHECK_EQ(m("GET /ws/status", "GET /ws/status", NULL, 0), 0);
    CHECK_EQ(m("POST /ws/status", "GET /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /ws/status", "GE /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /ws/status", "GETS /ws/status", NULL, 0), -1);
    CHECK_EQ(m("get /ws/status", "GET /ws/status", NULL, 0), -1); /* methods are case-sensitive */
    CHECK_EQ(m("DELETE /ws/status", "* /ws/status", NULL, 0), 0);
    CHECK_EQ(m("PATCH /ws/status", "/ws/status", NULL, 0), 0); /* no method: any */
    /* the query is not part of the path */
    CHECK_EQ(m("GET /ws/status?x=1&y", "GET /ws/status", NULL, 0), 0);
    CHECK_EQ(m("GET /ws/status?", "GET /ws/status", NULL, 0), 0);
    /* exact paths: trailing slash, prefixes, longer paths, case */
    CHECK_EQ(m("GET /ws/status/", "GET /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /ws/status", "GET /ws/status/", NULL, 0), -1);
    CHECK_EQ(m("GET /ws/stat", "GET /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /ws/statusx", "GET /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /WS/status", "GET /ws/status", NULL, 0), -1);
    CHECK_EQ(m("GET /", "GET /", NULL, 0), 0);
    CHECK_EQ(m("GET /", "GET /x", NULL, 0), -1);
    /* parameters */
    CHECK_EQ(m("GET /ws/connection/42/health", "GET /ws/connection/{id}/health", p, 4), 1);
    CHECK(eq(&p[0], "42"));
    CHECK_EQ(m("GET /ws/connection/42/health?verbose=1", "GET /ws/connection/{id}/health", p, 1), 1);
    CHECK(eq(&p[0], "42"));
    CHECK_EQ(m("GET /ws/connection/42", "GET /ws/connection/{id}/health", p, 1), -1);
    CHECK_EQ(m("GET /ws/connection/42/healthy", "GET /ws/connection/{id}/health", p, 1), -1);
    CHECK_EQ(m("GET /ws/connection/42/health/", "GET /ws/connection/{id}/health", p, 1), -1);
    CHECK_EQ(m("GET /ws/connection//health", "GET /ws/connection/{id}/health", p, 1), -1);
    CHECK_EQ(m("GET /ws/connection/", "GET /ws/connection/{id}", p, 1), -1); /* empty */
    CHECK_EQ(m("GET /ws/connection", "GET /ws/connection/{id}", p, 1), -1);
    CHECK_EQ(m("GET /ws/connection/7/", "GET /ws/connection/{id}", p, 1), -1);
    CHECK_EQ(m("DELETE /ws/connection/7", "DELETE /ws/connection/{id}", p, 1), 1);
    CHECK(eq(&p[0], "7"));
    CHECK_EQ(m("POST /ws/user/u%2F1/notify", "POST /ws/user/{id}/{action}", p, 2), 2);
    CHECK(eq(&p[0], "u%2F1") && eq(&p[1], "notify")); /* raw: decoding is the caller's */
    CHECK_EQ(m("POST /a/b/c", "* /{x}/{y}/{z}", p, 3), 3);
    CHECK(eq(&p[0], "a") && eq(&p[1], "b") && eq(&p[2], "c"));
    CHECK_EQ(m("POST /a/b/c", "* /{x}/{y}", p, 3), -1); /* a parameter is one segment */
    CHECK_EQ(m("GET /x", "GET /{}", p, 1), 1);          /* an unnamed parameter */
    CHECK(eq(&p[0], "x"));
    /* too many parameters for the room given */
    CHECK_EQ(m("POST /a/b/c", "* /{x}/{y}/{z}", p, 2), -1);
    CHECK_EQ(m("GET /a", "GET /{x}", NULL, 0), -1);
    /* malformed patterns */
    CHECK_EQ(m("GET /a", "GET /{x", p, 1), -1);       /* no '}' */
    CHECK_EQ(m("GET /ab", "GET /a{x}", p, 1), -1);    /* not a whole segment */
    CHECK_EQ(m("GET /a.json", "GET /{x}.json", p, 1), -1);
    CHECK_EQ(m("GET /a", "GET {x}", p, 1), -1);
    CHECK_EQ(m("GET /a", "{x}", p, 1), -1);
    CHECK_EQ(m("GET /a", "", p, 1), -1);
    CHECK_EQ(m("GET /a", "GET", p, 1), -1);
    CHECK_EQ(m("GET /a", "GET ", p, 1), -1);
    CHECK_EQ(m("GET /a", " /a", p, 1), -1);           /* an empty method */
    CHECK_EQ(m("GET /a", "GET  /a", p, 1), -1);       /* two spaces */
    CHECK_EQ(m("GET /a", NULL, p, 1), -1);
    /* an unparsed (zeroed) request matches only "/"-less nothing */
    {
        rtws_http z;
        memset(&z, 0, sizeof z);
        CHECK_EQ(rtws_http_match(&z, "GET /", NULL, 0), -1);
        CHECK_EQ(rtws_http_match(&z, "* /", NULL, 0), -1);
        CHECK_EQ(rtws_http_match(&z, "* /{x}", p, 1), -1);
    }
    return T_END();
}
