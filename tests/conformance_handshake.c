/* tests/conformance_handshake.c - RFC 6455 §1.3/§4: the key/accept example,
   the sample handshake, and every rtws_http_check_upgrade decision (§4.2.1). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

static int str_is(rtws_str s, const char *z) {
    return s.len == strlen(z) && (s.len == 0 || memcmp(s.p, z, s.len) == 0);
}

static void test_accept(void) {
    static const char *const pairs[][2] = {
        /* RFC 6455 §1.3: SHA-1 b37a4f2c...c4ea, base64 as below */
        {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
        {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
        {"/////////////////////w==", "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
    };
    size_t i;
    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char out[29];
        memset(out, 'x', sizeof out);
        rtws_upgrade_accept_key(pairs[i][0], 24, out);
        CHECK(strcmp(out, pairs[i][1]) == 0);
    }
    {
        /* the key is used as sent: its bytes, not its decoded value */
        char a[29], b[29];
        rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, a);
        rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==XYZ", 24, b);
        CHECK(strcmp(a, b) == 0);
        rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZR==", 24, b);
        CHECK(strcmp(a, b) != 0);
    }
}

/* RFC 6455 §1.3 sample request, with one line replaced or removed */
static const char *const rfc_lines[] = {
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
};

/* builds the request into buf: request line, then rfc_lines with line
   "drop" (an index, or -1) left out and the extra line (or NULL) added */
static size_t build(char *buf, const char *first, int drop, const char *extra) {
    size_t n = (size_t)sprintf(buf, "%s\r\n", first), i;
    for (i = 0; i < sizeof rfc_lines / sizeof rfc_lines[0]; i++)
        if ((int)i != drop) n += (size_t)sprintf(buf + n, "%s\r\n", rfc_lines[i]);
    if (extra) n += (size_t)sprintf(buf + n, "%s\r\n", extra);
    n += (size_t)sprintf(buf + n, "\r\n");
    return n;
}

/* parses buf and runs rtws_http_check_upgrade; returns the status (-1: parse error) */
static int check(const char *buf, size_t n, rtws_http *m, rtws_upgrade *u) {
    size_t err_off = 0, scanned = 0;
    char *copy = (char *)malloc(n);
    int st;
    memcpy(copy, buf, n);
    if (rtws_http_head_end(copy, n, &scanned) != n ||
        rtws_http_parse_request(copy, n, m, 0, &err_off) != RTWS_OK) {
        free(copy);
        return -1;
    }
    st = rtws_http_check_upgrade(m, u);
    if (st != u->status || u->reason == NULL || u->reason[0] == '\0') st = -2;
    if (st != 101 && (u->key.len != 0 || u->protocols.len != 0)) st = -3;
    free(copy);
    return st;
}

enum { L_HOST, L_UPGRADE, L_CONNECTION, L_KEY, L_ORIGIN, L_PROTOCOL, L_VERSION };

static void test_upgrade(void) {
    char buf[2048];
    size_t n;
    rtws_http m;
    rtws_upgrade u;
    /* the sample handshake is accepted */
    {
        size_t err_off = 0;
        n = build(buf, "GET /chat HTTP/1.1", -1, NULL);
        CHECK_EQ(rtws_http_parse_request(buf, n, &m, 0, &err_off), RTWS_OK);
        CHECK_EQ(rtws_http_check_upgrade(&m, &u), 101);
        CHECK_EQ(u.status, 101);
        CHECK(u.reason != NULL);
        CHECK(str_is(u.key, "dGhlIHNhbXBsZSBub25jZQ=="));
        CHECK(str_is(u.protocols, "chat, superchat"));
        CHECK(str_is(u.origin, "http://example.com"));
        CHECK(u.key.p >= buf && u.key.p + u.key.len <= buf + n);
        CHECK(str_is(m.path, "/chat"));
        {
            char acc[29];
            rtws_upgrade_accept_key(u.key.p, u.key.len, acc);
            CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
        }
    }
    /* optional headers may be absent */
    n = build(buf, "GET /chat HTTP/1.1", L_ORIGIN, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 101);
    CHECK(u.origin.len == 0);
    n = build(buf, "GET /chat HTTP/1.1", L_PROTOCOL, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 101);
    CHECK(u.protocols.len == 0);
    /* method: GET only (405); methods are case-sensitive (RFC 9110 §9.1) */
    n = build(buf, "POST /chat HTTP/1.1", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 405);
    n = build(buf, "HEAD /chat HTTP/1.1", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 405);
    n = build(buf, "GETX /chat HTTP/1.1", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 405);
    n = build(buf, "GE /chat HTTP/1.1", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 405);
    n = build(buf, "get /chat HTTP/1.1", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 405);
    /* HTTP/1.1 or later */
    n = build(buf, "GET /chat HTTP/1.0", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 400);
    n = build(buf, "GET /chat HTTP/1.2", -1, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 101);
    /* Host */
    n = build(buf, "GET /chat HTTP/1.1", L_HOST, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 400);
    n = build(buf, "GET /chat HTTP/1.1", L_HOST, "host: a");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    /* Upgrade: websocket (426 when absent or something else) */
    n = build(buf, "GET /chat HTTP/1.1", L_UPGRADE, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_UPGRADE, "Upgrade: h2c");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_UPGRADE, "Upgrade: websockets");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_UPGRADE, "Upgrade: WebSocket");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    n = build(buf, "GET /chat HTTP/1.1", L_UPGRADE, "upgrade: h2c, websocket");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    /* Connection must hold the Upgrade token */
    n = build(buf, "GET /chat HTTP/1.1", L_CONNECTION, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 400);
    n = build(buf, "GET /chat HTTP/1.1", L_CONNECTION, "Connection: keep-alive");
    CHECK_EQ(check(buf, n, &m, &u), 400);
    n = build(buf, "GET /chat HTTP/1.1", L_CONNECTION, "Connection: keep-alive-upgrade");
    CHECK_EQ(check(buf, n, &m, &u), 400);
    n = build(buf, "GET /chat HTTP/1.1", L_CONNECTION, "Connection: keep-alive, Upgrade");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    n = build(buf, "GET /chat HTTP/1.1", L_CONNECTION, "connection: UPGRADE");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    /* Sec-WebSocket-Version: 13 (426 otherwise, §4.4) */
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, NULL);
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, "Sec-WebSocket-Version: 8");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, "Sec-WebSocket-Version: 013");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, "Sec-WebSocket-Version: 14");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, "Sec-WebSocket-Version: 13, 8");
    CHECK_EQ(check(buf, n, &m, &u), 426);
    n = build(buf, "GET /chat HTTP/1.1", L_VERSION, "sec-websocket-version:  13 ");
    CHECK_EQ(check(buf, n, &m, &u), 101);
    /* Sec-WebSocket-Key: base64 of exactly 16 bytes */
    {
        static const struct {
            const char *line;
            int status;
        } keys[] = {
            {NULL, 400},
            {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=", 400},   /* 23 chars */
            {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===", 400}, /* 25 chars */
            {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j", 400},      /* 20 chars: 15 bytes */
            {"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=", 400},  /* 17 bytes */
            {"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA", 400},  /* 18 bytes */
            {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!", 400},  /* not base64 */
            {"Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ=", 400},  /* inner space */
            {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==", 400},  /* trailing bits */
            {"Sec-WebSocket-Key:", 400},
            {"Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  ", 101},
            {"SEC-WEBSOCKET-KEY: AAAAAAAAAAAAAAAAAAAAAA==", 101},
            {"Sec-WebSocket-Key: /////////////////////w==", 101},
        };
        size_t i;
        for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            int st;
            n = build(buf, "GET /chat HTTP/1.1", L_KEY, keys[i].line);
            st = check(buf, n, &m, &u);
            if (st != keys[i].status)
                fprintf(stderr, "key line '%s': %d\n", keys[i].line ? keys[i].line : "(none)", st);
            CHECK_EQ(st, keys[i].status);
            if (st == 101) CHECK_EQ(u.key.len, 24);
        }
    }
    /* the checks come in order: the first failure decides */
    {
        size_t err_off = 0;
        static const char r[] = "POST / HTTP/1.0\r\n\r\n";
        CHECK_EQ(rtws_http_parse_request(r, sizeof r - 1, &m, 0, &err_off), RTWS_OK);
        CHECK_EQ(rtws_http_check_upgrade(&m, &u), 405);
    }
    {
        size_t err_off = 0;
        static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        CHECK_EQ(rtws_http_parse_request(r, sizeof r - 1, &m, 0, &err_off), RTWS_OK);
        CHECK_EQ(rtws_http_check_upgrade(&m, &u), 426);
    }
}

static void test_response_example(void) {
    /* RFC 6455 §1.3 sample response, as a client checks it */
    static const char r[] = "HTTP/1.1 101 Switching Protocols\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                            "Sec-WebSocket-Protocol: chat\r\n"
                            "\r\n";
    rtws_http m;
    size_t err_off = 0, scanned = 0;
    const rtws_str *v;
    char acc[29];
    CHECK_EQ(rtws_http_head_end(r, sizeof r - 1, &scanned), sizeof r - 1);
    CHECK_EQ(rtws_http_parse_response(r, sizeof r - 1, &m, 0, &err_off), RTWS_OK);
    CHECK_EQ(m.status, 101);
    CHECK_EQ(m.minor, 1);
    CHECK_EQ(rtws_http_has_token(&m, "Upgrade", "websocket"), 1);
    CHECK_EQ(rtws_http_has_token(&m, "Connection", "upgrade"), 1);
    v = rtws_http_get_header(&m, "Sec-WebSocket-Accept");
    rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    CHECK(v != NULL && v->len == 28 && memcmp(v->p, acc, 28) == 0);
    v = rtws_http_get_header(&m, "Sec-WebSocket-Protocol");
    CHECK(v != NULL && str_is(*v, "chat"));
}

int main(void) {
    test_accept();
    test_upgrade();
    test_response_example();
    return T_END();
}
