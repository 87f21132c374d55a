/* tests/conformance_conn.c - wire order of a server rtws_conn (RFC 6455 §4.2.2,
   §5.5): the 101 response is the first thing on the wire, whatever control
   frames become due before it is written. Each case collects everything the
   server writes and parses it: the HTTP head first, then frames. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

static const char request[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

typedef struct ctx {
    int ping_on_open;
    int opened;
} ctx;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ctx *x = (ctx *)user;
    if (ev->type == RTWS_EV_OPEN) {
        x->opened = 1;
        /* a common thing to do: measure the round trip right away */
        if (x->ping_on_open) rtws_conn_ping(c, "hi", 2);
    }
}

/* everything c has to write, concatenated */
static size_t drain(rtws_conn *c, uint8_t *out, size_t cap) {
    size_t n = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(c, &len)) != NULL && n + len <= cap) {
        memcpy(out + n, p, len);
        n += len;
        rtws_conn_out_done(c, len);
    }
    return n;
}

/* 1 when out[0..n) is a 101 response followed by valid unmasked frames, and
   the frames hold want_ops (in order, then nothing else) */
static int wire_ok(uint8_t *out, size_t n, const uint8_t *want_ops, size_t nops) {
    rtws_http m;
    size_t scanned = 0, head, off, err_off = 0, k = 0;
    rtws_frame_parser p;
    const rtws_str *acc;
    head = rtws_http_head_end((const char *)out, n, &scanned);
    if (!head || rtws_http_parse_response((const char *)out, head, &m, 0, &err_off) != RTWS_OK) {
        fprintf(stderr, "server output does not start with an HTTP response: %02x %02x %02x\n",
                n > 0 ? out[0] : 0, n > 1 ? out[1] : 0, n > 2 ? out[2] : 0);
        return 0;
    }
    acc = rtws_http_get_header(&m, "Sec-WebSocket-Accept");
    if (m.status != 101 || !acc || acc->len != 28 ||
        memcmp(acc->p, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) != 0)
        return 0;
    rtws_frame_parser_init(&p, RTWS_CLIENT, 0);
    for (off = head; off < n;) {
        rtws_frame_piece piece;
        size_t used;
        if (rtws_frame_parser_feed(&p, out + off, n - off, &used, &piece) != RTWS_OK) return 0;
        off += used;
        if (piece.frame_start) {
            if (k == nops || piece.h->opcode != want_ops[k]) return 0;
            k++;
        }
    }
    return k == nops;
}

static void run(const char *name, int ping_on_open, const uint8_t *after, size_t after_len,
                const uint8_t *want_ops, size_t nops) {
    rtws_config cfg;
    rtws_conn c;
    ctx x;
    static uint8_t in[4096], out[4096];
    size_t n;
    memset(&cfg, 0, sizeof cfg);
    memset(&x, 0, sizeof x);
    x.ping_on_open = ping_on_open;
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = &x;
    cfg.heartbeat_off = 1;
    rtws_conn_init(&c, &cfg);
    memcpy(in, request, sizeof request - 1);
    memcpy(in + sizeof request - 1, after, after_len);
    CHECK(rtws_conn_recv(&c, in, sizeof request - 1 + after_len, 1000, NULL) >= RTWS_EAGAIN);
    CHECK(x.opened);
    n = drain(&c, out, sizeof out);
    if (!wire_ok(out, n, want_ops, nops)) fprintf(stderr, "%s: bad server output\n", name);
    CHECK(wire_ok(out, n, want_ops, nops));
    rtws_conn_free(&c);
}

static void test_order(void) {
    /* a masked ping that arrives together with the request (the client did
       not wait for the 101, §4.1, but the server must still answer in order) */
    static const uint8_t ping[] = {0x89, 0x82, 1, 2, 3, 4, 'p' ^ 1, 'q' ^ 2};
    static const uint8_t text[] = {0x81, 0x82, 1, 2, 3, 4, 'o' ^ 1, 'k' ^ 2};
    static const uint8_t none[1] = {0};
    static const uint8_t op_pong[] = {RTWS_OP_PONG};
    static const uint8_t op_ping[] = {RTWS_OP_PING};
    /* no control frame: the 101 alone */
    run("plain", 0, none, 0, NULL, 0);
    run("text after request", 0, text, sizeof text, NULL, 0);
    /* rtws_conn_ping() from the OPEN callback: the ping goes after the 101 */
    run("ping on open", 1, none, 0, op_ping, 1);
    /* the automatic pong for a ping that came right behind the request */
    run("pong to early ping", 0, ping, sizeof ping, op_pong, 1);
}

/* the heartbeat ping becomes due while the 101 is still unwritten */
static void test_heartbeat_before_flush(void) {
    rtws_config cfg;
    rtws_conn c;
    ctx x;
    static uint8_t out[4096];
    static const uint8_t op_ping[] = {RTWS_OP_PING};
    size_t n;
    memset(&cfg, 0, sizeof cfg);
    memset(&x, 0, sizeof x);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = &x;
    cfg.ping_interval_ms = 1000;
    rtws_conn_init(&c, &cfg);
    CHECK(rtws_conn_recv(&c, request, sizeof request - 1, 1000, NULL) >= RTWS_EAGAIN);
    rtws_conn_run_timers(&c, 2500); /* the socket was not writable until now */
    n = drain(&c, out, sizeof out);
    CHECK(wire_ok(out, n, op_ping, 1));
    rtws_conn_free(&c);
}

/* more headers than cfg.max_headers: RFC 6585 §5, 431 Request Header Fields
   Too Large (rtws_http_parse_request says RTWS_ERR_LIMIT) */
static void test_too_many_headers(void) {
    rtws_config cfg;
    rtws_conn c;
    ctx x;
    static uint8_t out[4096];
    static const char many[] = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    size_t n;
    memset(&cfg, 0, sizeof cfg);
    memset(&x, 0, sizeof x);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = &x;
    cfg.max_headers = 4;
    rtws_conn_init(&c, &cfg);
    CHECK_EQ(rtws_conn_recv(&c, many, sizeof many - 1, 1000, NULL), RTWS_ERR_HANDSHAKE);
    n = drain(&c, out, sizeof out);
    if (n < 13 || memcmp(out, "HTTP/1.1 431 ", 13) != 0)
        fprintf(stderr, "too many headers: got \"%.12s\"\n", (const char *)out);
    CHECK(n >= 13 && memcmp(out, "HTTP/1.1 431 ", 13) == 0);
    CHECK(!x.opened);
    rtws_conn_free(&c);
    /* the same request within the cap is accepted */
    cfg.max_headers = 7;
    rtws_conn_init(&c, &cfg);
    CHECK(rtws_conn_recv(&c, many, sizeof many - 1, 1000, NULL) >= RTWS_EAGAIN);
    n = drain(&c, out, sizeof out);
    CHECK(n >= 13 && memcmp(out, "HTTP/1.1 101 ", 13) == 0);
    CHECK(x.opened);
    rtws_conn_free(&c);
}

int main(void) {
    test_too_many_headers();
    test_order();
    test_heartbeat_before_flush();
    return T_END();
}
