/* tests/unit_handshake.c - layer 2: rtws_http_head_end (incremental, no
   re-scan), request and response parsing (fields, limits, syntax errors with
   err_off), rtws_http_get_header and rtws_http_has_token. Every parse reads a
   copy that ends where a PROT_NONE page begins. */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "guard.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* parse a request held in a guarded copy; the strings in *m point into *g */
static rtws_err req_g(guard *g, const char *s, size_t len, rtws_http *m, size_t max_headers,
                      size_t *err_off) {
    const char *p = guard_copy(g, s, len);
    *err_off = (size_t)-7;
    return rtws_http_parse_request(p, len, m, max_headers, err_off);
}

static rtws_err resp_g(guard *g, const char *s, size_t len, rtws_http *m, size_t max_headers,
                       size_t *err_off) {
    const char *p = guard_copy(g, s, len);
    *err_off = (size_t)-7;
    return rtws_http_parse_response(p, len, m, max_headers, err_off);
}

static int str_is(rtws_str s, const char *z) {
    return s.len == strlen(z) && (s.len == 0 || memcmp(s.p, z, s.len) == 0);
}

/* ---- rtws_http_head_end -------------------------------------------------- */

static void test_head_end(void) {
    static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    const size_t hlen = sizeof head - 1 - 4;
    size_t scanned, k, got;
    int bad = 0;
    /* whole */
    scanned = 0;
    CHECK_EQ(rtws_http_head_end(head, sizeof head - 1, &scanned), hlen);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end(head, hlen - 1, &scanned), 0);
    /* byte by byte: nothing until the last LF arrives, then the size */
    scanned = 0;
    for (k = 0; k <= sizeof head - 1; k++) {
        got = rtws_http_head_end(head, k, &scanned);
        if (k < hlen ? got != 0 : got != hlen) bad++;
        if (got) break;
        if (scanned > k) bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(k, hlen);
    /* in two at every offset, so CRLFCRLF is split in every way */
    bad = 0;
    for (k = 0; k <= hlen; k++) {
        scanned = 0;
        got = rtws_http_head_end(head, k, &scanned);
        if (k < hlen && got != 0) bad++;
        if (k < hlen && rtws_http_head_end(head, hlen, &scanned) != hlen) bad++;
    }
    CHECK_EQ(bad, 0);
    /* near misses */
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("a\r\n\r", 4, &scanned), 0);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("a\r\n\n\r\n", 6, &scanned), 0);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("a\n\n", 3, &scanned), 0);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("\r\r\n\r\n", 5, &scanned), 5);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("\r\n\r\n", 4, &scanned), 4);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("", 0, &scanned), 0);
    scanned = 0;
    CHECK_EQ(rtws_http_head_end("\r\n\r", 3, &scanned), 0);
    CHECK_EQ(rtws_http_head_end("\r\n\r\n", 4, &scanned), 4);
}

/* The head grows one byte per call; after each call every page wholly below
   the resume point (scanned - 3) becomes PROT_NONE, so re-reading old bytes
   faults. Also bounds the time of a 256 KiB head fed byte by byte. */
static void test_head_end_no_rescan(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 8192 + 2 * page;
    size_t maplen = n + 2 * page, len, scanned = 0, got = 0, protected_to = 0, i;
    uint8_t *map = (uint8_t *)mmap(NULL, maplen, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *buf;
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED) return;
    buf = (char *)map;
    /* "X-A: bbbb\r\n" lines (a CR every 11 bytes), then the blank line */
    for (i = 0; i + 11 <= n - 2; i += 11) memcpy(buf + i, "X-A: bbbb\r\n", 11);
    for (; i < n - 2; i++) buf[i] = 'c';
    memcpy(buf + n - 4, "\r\n\r\n", 4);
    for (len = 1; len <= n; len++) {
        size_t resume;
        got = rtws_http_head_end(buf, len, &scanned);
        if (got) break;
        resume = scanned > 3 ? scanned - 3 : 0;
        while (protected_to + page <= resume) {
            if (mprotect(map + protected_to, page, PROT_NONE) != 0) break;
            protected_to += page;
        }
    }
    CHECK_EQ(got, n);
    CHECK(protected_to >= 8192);
    munmap(map, maplen);
    {
        /* 256 KiB of header lines byte by byte: linear work takes
           milliseconds, re-scanning from the start would take minutes */
        const size_t big = 256 * 1024;
        char *b = (char *)malloc(big);
        clock_t t0;
        double secs;
        for (i = 0; i + 11 <= big - 4; i += 11) memcpy(b + i, "X-A: bbbb\r\n", 11);
        for (; i < big - 4; i++) b[i] = 'c';
        memcpy(b + big - 4, "\r\n\r\n", 4);
        scanned = 0;
        got = 0;
        t0 = clock();
        for (len = 1; len <= big && !got; len++) got = rtws_http_head_end(b, len, &scanned);
        secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_EQ(got, big);
        CHECK(secs < 1.0);
        free(b);
    }
}

/* ---- requests ------------------------------------------------------------ */

static void test_request_fields(void) {
    static const char r1[] = "GET /chat?x=1&y=%20 HTTP/1.1\r\n"
                             "Host: server.example.com\r\n"
                             "Upgrade:websocket\r\n"
                             "X-Trim: \t a b \t\r\n"
                             "X-Empty:\r\n"
                             "X-Obs-Text: caf\xc3\xa9\r\n"
                             "X-Tab: a\tb\r\n"
                             "\r\n"
                             "trailing bytes are not part of the head";
    const size_t head = sizeof r1 - 1 - strlen("trailing bytes are not part of the head");
    rtws_http m;
    guard g;
    size_t err_off;
    CHECK_EQ(req_g(&g, r1, sizeof r1 - 1, &m, 0, &err_off), RTWS_OK);
    CHECK(str_is(m.method, "GET"));
    CHECK(str_is(m.target, "/chat?x=1&y=%20"));
    CHECK(str_is(m.path, "/chat"));
    CHECK(str_is(m.query, "x=1&y=%20"));
    CHECK_EQ(m.minor, 1);
    CHECK_EQ(m.size, head);
    CHECK_EQ(m.nheaders, 6);
    CHECK(str_is(m.headers[0].name, "Host") && str_is(m.headers[0].value, "server.example.com"));
    CHECK(str_is(m.headers[1].name, "Upgrade") && str_is(m.headers[1].value, "websocket"));
    CHECK(str_is(m.headers[2].name, "X-Trim") && str_is(m.headers[2].value, "a b"));
    CHECK(str_is(m.headers[3].name, "X-Empty") && m.headers[3].value.len == 0);
    CHECK(str_is(m.headers[4].value, "caf\xc3\xa9"));
    CHECK(str_is(m.headers[5].value, "a\tb"));
    CHECK_EQ(m.status, 0);
    guard_free(&g);
    {
        static const struct {
            const char *line, *path, *query;
        } t[] = {
            {"GET / HTTP/1.1\r\n\r\n", "/", ""},
            {"GET /a? HTTP/1.1\r\n\r\n", "/a", ""},
            {"GET /a?b?c HTTP/1.1\r\n\r\n", "/a", "b?c"},
            {"GET ?q HTTP/1.1\r\n\r\n", "", "q"},
            {"GET * HTTP/1.1\r\n\r\n", "*", ""},
            {"GET http://h.example/x?y HTTP/1.1\r\n\r\n", "http://h.example/x", "y"},
            {"OPTIONS /\xc3\xa9 HTTP/1.9\r\n\r\n", "/\xc3\xa9", ""},
        };
        size_t i;
        for (i = 0; i < sizeof t / sizeof t[0]; i++) {
            rtws_err e = req_g(&g, t[i].line, strlen(t[i].line), &m, 0, &err_off);
            CHECK_EQ(e, RTWS_OK);
            CHECK(str_is(m.path, t[i].path) && str_is(m.query, t[i].query));
            CHECK(m.nheaders == 0 && m.size == strlen(t[i].line));
            guard_free(&g);
        }
    }
    CHECK_EQ(req_g(&g, "GET / HTTP/1.0\r\n\r\n", 18, &m, 0, &err_off), RTWS_OK);
    CHECK_EQ(m.minor, 0);
    guard_free(&g);
    /* err_off may be NULL */
    CHECK_EQ(rtws_http_parse_request("GET", 3, &m, 0, NULL), RTWS_ERR_SYNTAX);
}

static void test_request_limits(void) {
    char buf[8192];
    size_t n, i, err_off, ns_of_65th = 0;
    rtws_http m;
    guard g;
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 65; i++) {
        if (i == 64) ns_of_65th = n;
        n += (size_t)sprintf(buf + n, "X-%lu: %lu\r\n", (unsigned long)i, (unsigned long)i);
    }
    n += (size_t)sprintf(buf + n, "\r\n");
    /* 65 headers: over the default (and the absolute) cap */
    CHECK_EQ(req_g(&g, buf, n, &m, 0, &err_off), RTWS_ERR_LIMIT);
    CHECK_EQ(err_off, ns_of_65th);
    guard_free(&g);
    CHECK_EQ(req_g(&g, buf, n, &m, 1000, &err_off), RTWS_ERR_LIMIT);
    guard_free(&g);
    /* 64 headers fit */
    memcpy(buf + ns_of_65th, "\r\n", 2);
    CHECK_EQ(req_g(&g, buf, ns_of_65th + 2, &m, 0, &err_off), RTWS_OK);
    CHECK_EQ(m.nheaders, RTWS_MAX_HEADERS);
    CHECK(str_is(m.headers[63].name, "X-63") && str_is(m.headers[63].value, "63"));
    guard_free(&g);
    CHECK_EQ(req_g(&g, buf, ns_of_65th + 2, &m, RTWS_MAX_HEADERS, &err_off), RTWS_OK);
    guard_free(&g);
    /* a smaller cap: exactly 3 fit, a 4th is RTWS_ERR_LIMIT at its name */
    {
        static const char r3[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        static const char r4[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        CHECK_EQ(req_g(&g, r3, sizeof r3 - 1, &m, 3, &err_off), RTWS_OK);
        CHECK_EQ(m.nheaders, 3);
        guard_free(&g);
        CHECK_EQ(req_g(&g, r4, sizeof r4 - 1, &m, 3, &err_off), RTWS_ERR_LIMIT);
        CHECK_EQ(err_off, strlen("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n"));
        guard_free(&g);
        CHECK_EQ(req_g(&g, r4, sizeof r4 - 1, &m, 4, &err_off), RTWS_OK);
        guard_free(&g);
    }
}

typedef struct bad_case {
    const char *name;
    const char *s;
    size_t err_off;
} bad_case;

static void test_request_syntax(void) {
    static const bad_case bad[] = {
        {"empty", "", 0},
        {"leading space", " GET / HTTP/1.1\r\n\r\n", 0},
        {"no target", "GET  HTTP/1.1\r\n\r\n", 4},
        {"no version", "GET /\r\n\r\n", 5},
        {"space after version", "GET / HTTP/1.1 \r\n\r\n", 14},
        {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 6},
        {"lowercase http", "GET / http/1.1\r\n\r\n", 6},
        {"HTTP/1.x", "GET / HTTP/1.x\r\n\r\n", 6},
        {"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", 14},
        {"bare LF after line", "GET / HTTP/1.1\nHost: a\n\n", 14},
        {"control in method", "G\x01T / HTTP/1.1\r\n\r\n", 1},
        {"tab after method", "GET\t/ HTTP/1.1\r\n\r\n", 3},
        {"DEL in target", "GET /a\x7f HTTP/1.1\r\n\r\n", 6},
        {"tab in target", "GET /a\tb HTTP/1.1\r\n\r\n", 6},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 25},
        {"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n", 25},
        {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 20},
        {"no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 20},
        {"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 16},
        {"bad name char", "GET / HTTP/1.1\r\nX(y): 1\r\n\r\n", 17},
        {"control in value", "GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", 20},
        {"NUL in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 20},
        {"DEL in value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 20},
        {"bare LF in value", "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", 20},
        {"bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 20},
        {"no blank line", "GET / HTTP/1.1\r\nHost: a\r\n", 25},
        {"half blank line", "GET / HTTP/1.1\r\nHost: a\r\n\r", 25},
        {"CR alone as blank line", "GET / HTTP/1.1\r\n\rX\r\n\r\n", 16},
        {"truncated line", "GET / HTTP/1.1\r\nHost: a", 23},
    };
    static const size_t lens[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rtws_http m;
        guard g;
        size_t err_off, len = lens[i] ? lens[i] : strlen(bad[i].s);
        rtws_err e = req_g(&g, bad[i].s, len, &m, 0, &err_off);
        if (e != RTWS_ERR_SYNTAX || err_off != bad[i].err_off)
            fprintf(stderr, "request '%s': err %d err_off %lu, want %lu\n", bad[i].name, (int)e,
                    (unsigned long)err_off, (unsigned long)bad[i].err_off);
        CHECK_EQ(e, RTWS_ERR_SYNTAX);
        CHECK_EQ(err_off, bad[i].err_off);
        guard_free(&g);
    }
}

/* ---- responses ----------------------------------------------------------- */

static void test_response(void) {
    static const char r1[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                             "\r\n\x81\x05Hello";
    rtws_http m;
    guard g;
    size_t err_off, i;
    CHECK_EQ(resp_g(&g, r1, sizeof r1 - 1, &m, 0, &err_off), RTWS_OK);
    CHECK_EQ(m.minor, 1);
    CHECK_EQ(m.status, 101);
    CHECK(str_is(m.reason, "Switching Protocols"));
    CHECK_EQ(m.nheaders, 3);
    CHECK_EQ(m.size, sizeof r1 - 1 - 7);
    CHECK(str_is(*rtws_http_get_header(&m, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    CHECK(m.method.len == 0 && m.target.len == 0);
    guard_free(&g);
    {
        static const struct {
            const char *s;
            int minor, status;
            const char *reason;
        } ok[] = {
            {"HTTP/1.0 400 Bad Request\r\n\r\n", 0, 400, "Bad Request"},
            {"HTTP/1.1 101\r\n\r\n", 1, 101, ""},
            {"HTTP/1.1 101 \r\n\r\n", 1, 101, ""},
            {"HTTP/1.1 426 Upgrade  Required \r\n\r\n", 1, 426, "Upgrade  Required "},
            {"HTTP/1.1 999 \xc3\xa9\tx\r\n\r\n", 1, 999, "\xc3\xa9\tx"},
        };
        for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
            rtws_err e = resp_g(&g, ok[i].s, strlen(ok[i].s), &m, 0, &err_off);
            CHECK_EQ(e, RTWS_OK);
            CHECK(m.minor == ok[i].minor && m.status == ok[i].status);
            CHECK(str_is(m.reason, ok[i].reason));
            guard_free(&g);
        }
    }
    {
        static const bad_case bad[] = {
            {"empty", "", 0},
            {"HTTP/2", "HTTP/2 101 OK\r\n\r\n", 0},
            {"lowercase", "http/1.1 101 OK\r\n\r\n", 0},
            {"no status", "HTTP/1.1\r\n\r\n", 8},
            {"two spaces", "HTTP/1.1  101 OK\r\n\r\n", 9},
            {"two digits", "HTTP/1.1 10 OK\r\n\r\n", 11},
            {"letter", "HTTP/1.1 1a1 OK\r\n\r\n", 10},
            {"short", "HTTP/1.1 10", 8},
            {"control in reason", "HTTP/1.1 101 O\x01K\r\n\r\n", 14},
            {"bare LF", "HTTP/1.1 101 OK\n\r\n", 15},
            {"bare CR", "HTTP/1.1 101 OK\rX\n\r\n", 15},
            {"no blank line", "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n", 37},
            {"obs-fold", "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n x\r\n\r\n", 37},
            {"space before colon", "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n", 24},
            /* RFC 9112 §4: status-code = 3DIGIT, then SP */
            {"four digits", "HTTP/1.1 1010 OK\r\n\r\n", 12},
            {"digits then text", "HTTP/1.1 101OK\r\n\r\n", 12},
        };
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            size_t len = strlen(bad[i].s);
            rtws_err e = resp_g(&g, bad[i].s, len, &m, 0, &err_off);
            if (e != RTWS_ERR_SYNTAX || err_off != bad[i].err_off)
                fprintf(stderr, "response '%s': err %d err_off %lu status %d, want err_off %lu\n",
                        bad[i].name, (int)e, (unsigned long)err_off, m.status,
                        (unsigned long)bad[i].err_off);
            CHECK_EQ(e, RTWS_ERR_SYNTAX);
            CHECK_EQ(err_off, bad[i].err_off);
            guard_free(&g);
        }
    }
    {
        /* the header cap applies to responses too */
        static const char r3[] = "HTTP/1.1 101 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        CHECK_EQ(resp_g(&g, r3, sizeof r3 - 1, &m, 2, &err_off), RTWS_ERR_LIMIT);
        CHECK_EQ(err_off, strlen("HTTP/1.1 101 OK\r\nA: 1\r\nB: 2\r\n"));
        guard_free(&g);
        CHECK_EQ(resp_g(&g, r3, sizeof r3 - 1, &m, 3, &err_off), RTWS_OK);
        guard_free(&g);
    }
}

/* ---- header lookup and tokens -------------------------------------------- */

static void test_header_lookup(void) {
    static const char r[] = "GET / HTTP/1.1\r\n"
                            "Host: one\r\n"
                            "host: two\r\n"
                            "Connection: keep-alive, Upgrade\r\n"
                            "Upgrade: h2c\r\n"
                            "UPGRADE: foo ,\t WebSocket\t, bar\r\n"
                            "X-List: , ,a,,  b  ,\r\n"
                            "X-One: UpGrAdE\r\n"
                            "X-Near: Upgraded, Upgrad, xUpgrade, Up grade\r\n"
                            "\r\n";
    rtws_http m;
    guard g;
    size_t err_off;
    const rtws_str *v;
    CHECK_EQ(req_g(&g, r, sizeof r - 1, &m, 0, &err_off), RTWS_OK);
    v = rtws_http_get_header(&m, "Host");
    CHECK(v != NULL && str_is(*v, "one")); /* the first of repeated headers */
    v = rtws_http_get_header(&m, "HOST");
    CHECK(v != NULL && str_is(*v, "one"));
    v = rtws_http_get_header(&m, "hOsT");
    CHECK(v != NULL && v == &m.headers[0].value);
    CHECK(rtws_http_get_header(&m, "Hos") == NULL);
    CHECK(rtws_http_get_header(&m, "Hostx") == NULL);
    CHECK(rtws_http_get_header(&m, "") == NULL);
    CHECK(rtws_http_get_header(&m, "Origin") == NULL);
    v = rtws_http_get_header(&m, "upgrade");
    CHECK(v != NULL && str_is(*v, "h2c"));

    CHECK_EQ(rtws_http_has_token(&m, "Connection", "Upgrade"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "connection", "upgrade"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "keep-alive"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "KEEP-ALIVE"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "alive"), 0);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "keep-alive, Upgrade"), 0);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "close"), 0);
    /* across repeated headers of that name */
    CHECK_EQ(rtws_http_has_token(&m, "Upgrade", "websocket"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Upgrade", "h2c"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Upgrade", "bar"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Upgrade", "foo"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "X-List", "a"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "X-List", "b"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "X-List", ""), 0);
    CHECK_EQ(rtws_http_has_token(&m, "X-One", "upgrade"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "X-Near", "Upgrade"), 0);
    CHECK_EQ(rtws_http_has_token(&m, "Missing", "Upgrade"), 0);
    CHECK_EQ(rtws_http_has_token(&m, "Host", "two"), 1);
    guard_free(&g);
}

int main(void) {
    test_head_end();
    test_head_end_no_rescan();
    test_request_fields();
    test_request_limits();
    test_request_syntax();
    test_response();
    test_header_lookup();
    return T_END();
}
