/* Issue 15 regressions at the sans-I/O level: raw request bytes into a
   server-role rtws_conn, the status line of the answer checked. 414 for a
   request line over max_handshake, 431 for header fields over it, 400 for a
   repeated Host or Sec-WebSocket-Key; and the router's upgrade tokens: over
   4096 bytes is 401 (never an anonymous 101), exp 2^63-1 is accepted. The
   same cases run against the real example servers in tests/e2e_hostile.c. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

static rtws_router *R;
static const uint64_t NOW = 1000;
static const char SECRET[] = "hostile-secret";

static void sv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (R) rtws_router_handle_event(R, c, ev, NOW);
}
static int sv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    (void)proto;
    (void)user;
    return R ? rtws_router_handle_accept(R, c, req, NOW) : 0;
}

/* feeds req (len bytes, in one piece or byte by byte) to a fresh server
   connection and returns the status of its answer, 0 when there is none */
static int status_of(const char *req, size_t len, int bytewise) {
    rtws_conn sv;
    rtws_config cfg;
    const uint8_t *o;
    size_t n, i;
    char head[16];
    size_t hn = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.heartbeat_off = 1;
    cfg.on_event = sv_event;
    cfg.on_accept = sv_accept;
    rtws_conn_init(&sv, &cfg);
    if (bytewise)
        for (i = 0; i < len && rtws_conn_get_state(&sv) != RTWS_STATE_CLOSED; i++)
            rtws_conn_recv(&sv, req + i, 1, NOW, NULL);
    else
        rtws_conn_recv(&sv, req, len, NOW, NULL);
    while ((o = rtws_conn_out(&sv, &n)) != NULL) {
        size_t k = n < sizeof head - hn ? n : sizeof head - hn;
        memcpy(head + hn, o, k);
        hn += k;
        rtws_conn_out_done(&sv, n);
    }
    if (rtws_conn_get_state(&sv) == RTWS_STATE_OPEN) {
        /* the client's close (1000, zero mask): the router sees the close event */
        static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
        rtws_conn_recv(&sv, close_frame, sizeof close_frame, NOW, NULL);
        while ((o = rtws_conn_out(&sv, &n)) != NULL)
            rtws_conn_out_done(&sv, n);
    }
    rtws_conn_free(&sv);
    if (hn < 12 || memcmp(head, "HTTP/1.1 ", 9) != 0) return 0;
    return atoi(head + 9);
}

static int status_z(const char *req) {
    int a = status_of(req, strlen(req), 0), b = status_of(req, strlen(req), 1);
    return a == b ? a : -1; /* whole or byte by byte: the same answer */
}

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define REST "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"

static void test_limits(void) {
    static char big[12000];
    size_t n;
    CHECK_EQ(status_z("GET / HTTP/1.1\r\nHost: x\r\n" REST KEY "\r\n"), 101);
    /* the probe's 9,000-byte request line: 414, without waiting for its end */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 9000);
    CHECK_EQ(status_of(big, 9005, 0), 414);
    CHECK_EQ(status_of(big, 9005, 1), 414);
    /* the same line finished and followed by a valid head: still 414 */
    n = 9005;
    memcpy(big + n, " HTTP/1.1\r\nHost: x\r\n" REST KEY "\r\n", 11 + 9 + strlen(REST KEY) + 2);
    n += 11 + 9 + strlen(REST KEY) + 2;
    CHECK_EQ(status_of(big, n, 0), 414);
    /* a request line just under the limit with headers that push the head
       over it: 431 (the header fields are over theirs) */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 8000);
    n = 8005;
    memcpy(big + n, " HTTP/1.1\r\nHost: x\r\n" REST KEY, 11 + 9 + strlen(REST KEY));
    n += 11 + 9 + strlen(REST KEY);
    memset(big + n, 'X', 400); /* a header line without ':' yet, still unfinished */
    n += 400;
    CHECK_EQ(status_of(big, n, 0), 431);
    /* a short request line and one 9,000-byte header: 431 */
    n = 0;
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memset(big + 23, 'b', 9000);
    n = 9023;
    CHECK_EQ(status_of(big, n, 0), 431);
    CHECK_EQ(status_of(big, n, 1), 431);
}

static void test_repeated(void) {
    CHECK_EQ(status_z("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n" REST KEY "\r\n"), 400);
    CHECK_EQ(status_z("GET / HTTP/1.1\r\nHost: x\r\n" REST KEY KEY "\r\n"), 400);
    CHECK_EQ(status_z("GET / HTTP/1.1\r\nHost: x\r\n" REST KEY
                      "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"),
             400);
    /* headers that may repeat still may (Connection and Upgrade lists) */
    CHECK_EQ(status_z("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n" REST KEY "\r\n"),
             101);
}

/* "GET /ws?token=T HTTP/1.1" or the same with "Authorization: Bearer T" */
static int router_status(const char *tok, size_t tn, int as_header, const char *extra_query) {
    size_t cap = tn + 512, n = 0;
    char *req = (char *)malloc(cap);
    int st;
    n += (size_t)snprintf(req + n, cap - n, "GET /ws?%s", extra_query ? extra_query : "");
    if (!as_header) {
        n += (size_t)snprintf(req + n, cap - n, "%stoken=", extra_query ? "&" : "");
        memcpy(req + n, tok, tn);
        n += tn;
    }
    n += (size_t)snprintf(req + n, cap - n, " HTTP/1.1\r\nHost: x\r\n" REST KEY);
    if (as_header) {
        n += (size_t)snprintf(req + n, cap - n, "Authorization: Bearer ");
        memcpy(req + n, tok, tn);
        n += tn;
        n += (size_t)snprintf(req + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    st = status_of(req, n, 0);
    free(req);
    return st;
}

static void test_router_tokens(void) {
    rtws_router_config rc;
    char tok[10000];
    size_t n;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.jwt_secret = SECRET;
    rc.jwt_secret_len = strlen(SECRET);
    rc.wall_offset_ms = (int64_t)1700000000 * 1000;
    R = rtws_router_new(&rc);
    CHECK(R != NULL);
    if (!R) return;
    /* a valid token, and the probe's never-expiring one: 101 both ways */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"exp\":1800000000}", SECRET, strlen(SECRET), tok,
                            sizeof tok);
    CHECK_EQ(router_status(tok, n, 0, NULL), 101);
    CHECK_EQ(router_status(tok, n, 1, NULL), 101);
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"exp\":9223372036854775807}", SECRET, strlen(SECRET),
                            tok, sizeof tok);
    CHECK_EQ(router_status(tok, n, 0, NULL), 101);
    CHECK_EQ(router_status(tok, n, 1, "session=x"), 101);
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"exp\":1e30}", SECRET, strlen(SECRET), tok,
                            sizeof tok);
    CHECK_EQ(router_status(tok, n, 0, NULL), 401);
    /* over 4096 bytes: 401, in the query and in the header, never 101 */
    memset(tok, 'a', sizeof tok);
    CHECK_EQ(router_status(tok, 4097, 0, NULL), 401);
    CHECK_EQ(router_status(tok, 4097, 1, NULL), 401);
    CHECK_EQ(router_status(tok, 5000, 0, "session=x"), 401);
    CHECK_EQ(router_status(tok, 4096, 0, NULL), 401); /* at the cap: checked, does not verify */
    CHECK_EQ(router_status(tok, 4096, 1, NULL), 401);
    /* a header over max_handshake: 431 before the router sees it */
    CHECK_EQ(router_status(tok, 9000, 1, NULL), 431);
    /* no token at all: anonymous is fine on this router (auth optional) */
    CHECK_EQ(router_status("", 0, 0, NULL), 101);
    rtws_router_free(R);
    R = NULL;
}

int main(void) {
    test_limits();
    test_repeated();
    test_router_tokens();
    return T_END();
}
