/* Layer 3 (rtws_conn) unit tests: a client and a server pumped in memory, and
   hand-made frames for every rule of RFC 6455 §5 and §7. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

/* ---- recording events ---- */
typedef struct ev_log {
    int n, open, close, error, ping, pong, msgs;
    rtws_event last, last_close, last_error, last_msg;
    unsigned char msg[1 << 21];
    size_t msg_len;
    int free_on_msg, close_on_msg, send_on_msg;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    L->n++;
    L->last = *ev;
    switch (ev->type) {
    case RTWS_EV_OPEN: L->open++; break;
    case RTWS_EV_CLOSE: L->close++; L->last_close = *ev; break;
    case RTWS_EV_ERROR: L->error++; L->last_error = *ev; break;
    case RTWS_EV_PING: L->ping++; break;
    case RTWS_EV_PONG: L->pong++; break;
    case RTWS_EV_MESSAGE:
        L->msgs++;
        L->last_msg = *ev;
        if (ev->message.first) L->msg_len = 0;
        if (L->msg_len + ev->message.len <= sizeof L->msg)
            memcpy(L->msg + L->msg_len, ev->message.data, ev->message.len);
        L->msg_len += ev->message.len;
        if (L->send_on_msg) /* echo */
            rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
        if (L->close_on_msg) rtws_conn_close(c, 1000, "done");
        if (L->free_on_msg) rtws_conn_free(c);
        break;
    default: break;
    }
}

static int fixed_random(void *buf, size_t len, void *user) {
    unsigned *s = (unsigned *)user;
    unsigned char *p = (unsigned char *)buf;
    size_t i;
    for (i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        p[i] = (unsigned char)(*s >> 16);
    }
    return 0;
}

static unsigned seed = 1;
static rtws_config mkcfg(rtws_role role, ev_log *L) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.on_event = on_event;
    cfg.user = L;
    cfg.random = fixed_random;
    cfg.random_user = &seed;
    cfg.deflate_off = 1; /* these tests read wire bytes; tests/unit_pmd.c compresses */
    return cfg;
}

/* moves all pending output of a into b (step bytes per call; 0 = all at once) */
static size_t pump(rtws_conn *a, rtws_conn *b, size_t step, uint64_t now) {
    static uint8_t tmp[1 << 16];
    size_t total = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(a, &len)) != NULL) {
        size_t k = step && step < len ? step : len;
        if (k > sizeof tmp) k = sizeof tmp;
        memcpy(tmp, p, k); /* out is lent only until the next call on a */
        rtws_conn_out_done(a, k);
        rtws_conn_recv(b, tmp, k, now, NULL);
        total += k;
    }
    return total;
}

/* drains a's output into buf (for inspecting frames) */
static size_t drain(rtws_conn *a, uint8_t *buf, size_t cap) {
    size_t total = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(a, &len)) != NULL) {
        if (total + len > cap) len = cap - total;
        memcpy(buf + total, p, len);
        rtws_conn_out_done(a, len);
        total += len;
        if (total == cap) break;
    }
    return total;
}

static int connect_pair(rtws_conn *cl, ev_log *lc, rtws_conn *sv, ev_log *ls, size_t step) {
    rtws_config cc = mkcfg(RTWS_CLIENT, lc), sc = mkcfg(RTWS_SERVER, ls);
    rtws_client_opts o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1:9";
    o.path = "/ws?x=1";
    rtws_conn_init(cl, &cc);
    rtws_conn_init(sv, &sc);
    if (rtws_conn_start(cl, &o, 0) != RTWS_OK) return 0;
    pump(cl, sv, step, 0);
    pump(sv, cl, step, 0);
    return rtws_conn_get_state(cl) == RTWS_STATE_OPEN && rtws_conn_get_state(sv) == RTWS_STATE_OPEN;
}

/* a masked client frame, built by hand */
static size_t mkframe(uint8_t *out, int b0, const void *payload, size_t len, int masked) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = rtws_frame_header_encode(out, b0 >> 7, (rtws_opcode)(b0 & 15), len,
                                        masked ? key : NULL);
    out[0] = (uint8_t)b0;
    memcpy(out + n, payload, len);
    if (masked) rtws_frame_mask(out + n, len, key, 0);
    return n + len;
}

/* open server conn ready for hand-made frames */
static void open_server(rtws_conn *sv, ev_log *ls, rtws_config *cfgp) {
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    rtws_config cfg = cfgp ? *cfgp : mkcfg(RTWS_SERVER, ls);
    uint8_t junk[512];
    memset(ls, 0, sizeof *ls);
    rtws_conn_init(sv, &cfg);
    rtws_conn_recv(sv, req, sizeof req - 1, 0, NULL);
    drain(sv, junk, sizeof junk);
}

/* expects sv to have failed with close code code; returns 1 when its output
   was exactly that close frame */
static int expect_fail(rtws_conn *sv, ev_log *ls, unsigned code) {
    uint8_t out[256];
    size_t n = drain(sv, out, sizeof out);
    int ok = n == 4 && out[0] == 0x88 && out[1] == 2 && ((unsigned)out[2] << 8 | out[3]) == code;
    ok = ok && ls->close == 1 && ls->last_close.close.code == code && !ls->last_close.close.clean;
    ok = ok && rtws_conn_want(sv) == RTWS_WANT_CLOSE;
    if (!ok) fprintf(stderr, "  expect_fail(%u): out %zu bytes [%02x %02x %02x %02x] close=%d code=%u want=%u\n",
                     code, n, out[0], out[1], out[2], out[3], ls->close, ls->last_close.close.code, rtws_conn_want(sv));
    return ok;
}

static void test_handshake_rfc_example(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t out[512];
    size_t n;
    open_server(&sv, &ls, NULL);
    CHECK_EQ(ls.open, 1);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_OPEN);
    rtws_conn_free(&sv);
    /* look at the 101 response itself */
    {
        rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
        static const char req[] = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
                                  "Connection: keep-alive, Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
        rtws_conn_init(&sv, &cfg);
        rtws_conn_recv(&sv, req, sizeof req - 1, 0, NULL);
        n = drain(&sv, out, sizeof out - 1);
        out[n] = 0;
        CHECK(strstr((char *)out, "HTTP/1.1 101 ") == (char *)out);
        CHECK(strstr((char *)out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
        CHECK(strstr((char *)out, "Extensions") == NULL); /* declined, not echoed */
        CHECK(strstr((char *)out, "Sec-WebSocket-Protocol") == NULL);
        if (!strstr((char *)out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) fprintf(stderr, "%s\n", out);
        rtws_conn_free(&sv);
    }
}

static int pick_proto(rtws_conn *c, const rtws_http *req, const char **protocol, void *user) {
    (void)c;
    (void)user;
    if (rtws_http_has_token(req, "Sec-WebSocket-Protocol", "chat")) *protocol = "chat";
    if (req->query.len == 4 && memcmp(req->query.p, "deny", 4) == 0) return 401;
    return 0;
}

static void test_pair_and_protocol(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    rtws_config cc, sc;
    rtws_client_opts o;
    size_t step;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    CHECK_EQ(lc.open, 1);
    CHECK_EQ(ls.open, 1);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* the handshake fed one byte at a time, and in 7-byte pieces */
    for (step = 1; step <= 7; step += 6) {
        memset(&lc, 0, sizeof lc);
        memset(&ls, 0, sizeof ls);
        CHECK(connect_pair(&cl, &lc, &sv, &ls, step));
        rtws_conn_free(&cl);
        rtws_conn_free(&sv);
    }
    /* subprotocol negotiation */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    cc = mkcfg(RTWS_CLIENT, &lc);
    sc = mkcfg(RTWS_SERVER, &ls);
    sc.on_accept = pick_proto;
    memset(&o, 0, sizeof o);
    o.host = "h";
    o.protocols = "superchat, chat";
    rtws_conn_init(&cl, &cc);
    rtws_conn_init(&sv, &sc);
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_OK);
    pump(&cl, &sv, 0, 0);
    CHECK_EQ(ls.open, 1);
    CHECK(ls.last.open.protocol.len == 4 && memcmp(ls.last.open.protocol.p, "chat", 4) == 0);
    pump(&sv, &cl, 0, 0);
    CHECK_EQ(lc.open, 1);
    CHECK(lc.last.open.protocol.len == 4 && memcmp(lc.last.open.protocol.p, "chat", 4) == 0);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* refused by the hook with 401: the client reports the status */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    o.path = "/?deny";
    rtws_conn_init(&cl, &cc);
    rtws_conn_init(&sv, &sc);
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_OK);
    pump(&cl, &sv, 0, 0);
    pump(&sv, &cl, 0, 0);
    CHECK_EQ(ls.open, 0);
    CHECK_EQ(lc.open, 0);
    CHECK_EQ(lc.error, 1);
    CHECK_EQ(lc.last_error.error.err, RTWS_ERR_HANDSHAKE);
    CHECK_EQ(lc.last_error.error.status, 401);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    CHECK_EQ(rtws_conn_want(&cl), RTWS_WANT_CLOSE);
    CHECK_EQ(lc.close, 0); /* never opened: no CLOSE event */
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* header injection in client options is refused */
    rtws_conn_init(&cl, &cc);
    o.path = "/";
    o.origin = "http://a\r\nX: y";
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_ERR_INVALID);
    o.origin = NULL;
    o.extra_headers = "X-A: 1\r\n\r\nGET";
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_ERR_INVALID);
    o.extra_headers = "X-A: 1\r\nX-B: 2\r\n";
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_OK);
    rtws_conn_free(&cl);
}

static void server_reply_case(const char *req, int status, const char *must_have) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    static const char *const origins[] = {"https://good.example", NULL};
    char out[1024];
    size_t n;
    char want[32];
    memset(&ls, 0, sizeof ls);
    cfg.allowed_origins = origins;
    rtws_conn_init(&sv, &cfg);
    rtws_conn_recv(&sv, req, strlen(req), 0, NULL);
    n = drain(&sv, (uint8_t *)out, sizeof out - 1);
    out[n] = 0;
    snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
    CHECK(strncmp(out, want, strlen(want)) == 0);
    if (strncmp(out, want, strlen(want)) != 0) fprintf(stderr, "  got: %.60s\n", out);
    if (must_have) CHECK(strstr(out, must_have) != NULL);
    if (status != 101) {
        CHECK_EQ(ls.open, 0);
        CHECK_EQ(ls.error, 1);
        CHECK_EQ(ls.last_error.error.status, status);
        CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    } else {
        CHECK_EQ(ls.open, 1);
    }
    rtws_conn_free(&sv);
}

static void test_server_handshake_failures(void) {
#define H_OK "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
#define K_OK "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    server_reply_case("GET / HTTP/1.1\r\n" H_OK K_OK "Sec-WebSocket-Version: 13\r\n"
                      "Origin: https://good.example\r\n\r\n", 101, NULL);
    server_reply_case("GET / HTTP/1.1\r\n" H_OK K_OK "Sec-WebSocket-Version: 8\r\n"
                      "Origin: https://good.example\r\n\r\n", 426, "Sec-WebSocket-Version: 13\r\n");
    server_reply_case("GET / HTTP/1.1\r\n" H_OK "Sec-WebSocket-Key: abc\r\n"
                      "Sec-WebSocket-Version: 13\r\nOrigin: https://good.example\r\n\r\n", 400, NULL);
    server_reply_case("POST / HTTP/1.1\r\n" H_OK K_OK "Sec-WebSocket-Version: 13\r\n\r\n", 405, NULL);
    server_reply_case("GET / HTTP/1.1\r\n" H_OK K_OK "Sec-WebSocket-Version: 13\r\n"
                      "Origin: https://evil.example\r\n\r\n", 403, NULL);
    server_reply_case("GET / HTTP/1.1\r\n" H_OK K_OK "Sec-WebSocket-Version: 13\r\n\r\n", 403, NULL);
    server_reply_case("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n" K_OK
                      "Sec-WebSocket-Version: 13\r\n\r\n", 426, NULL);
    server_reply_case("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n" K_OK
                      "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    server_reply_case("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, NULL);
    /* head over the 8 KiB cap: 431, without waiting for its end */
    {
        rtws_conn sv;
        ev_log ls;
        rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
        char big[9000], out[512];
        size_t n;
        memset(&ls, 0, sizeof ls);
        memset(big, 'a', sizeof big);
        memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
        rtws_conn_init(&sv, &cfg);
        rtws_conn_recv(&sv, big, sizeof big, 0, NULL);
        n = drain(&sv, (uint8_t *)out, sizeof out - 1);
        out[n] = 0;
        CHECK(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
        CHECK(sv.priv_.rcap <= 8192 + 1 + 65536 + 14 + (16u << 20)); /* bounded by the caps */
        rtws_conn_free(&sv);
    }
}

/* echo through the pair: client sends, server echoes from its callback */
static void test_echo_sizes(void) {
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20};
    static uint8_t buf[1 << 20];
    size_t i, step;
    for (i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
    for (step = 0; step <= 1; step++) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            rtws_conn cl, sv;
            static ev_log lc, ls;
            size_t n = sizes[i];
            if (step && n > 70000) continue; /* byte-at-a-time: the big ones are slow */
            memset(&lc, 0, sizeof lc);
            memset(&ls, 0, sizeof ls);
            ls.send_on_msg = 1;
            CHECK(connect_pair(&cl, &lc, &sv, &ls, step));
            CHECK_EQ(rtws_conn_send_binary(&cl, buf, n), RTWS_OK);
            pump(&cl, &sv, step, 1);
            pump(&sv, &cl, step, 1);
            CHECK_EQ(ls.msgs, 1);
            CHECK_EQ(lc.msgs, 1);
            CHECK_EQ(lc.msg_len, n);
            CHECK_EQ(lc.last_msg.message.opcode, RTWS_OP_BINARY);
            CHECK(n == 0 || memcmp(lc.msg, buf, n) == 0);
            rtws_conn_free(&cl);
            rtws_conn_free(&sv);
        }
    }
}

static void test_rfc_examples(void) {
    rtws_conn sv, cl;
    ev_log ls, lc;
    uint8_t out[64];
    static const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag[] = {0x01, 0x83, 0, 0, 0, 0, 0x48, 0x65, 0x6c, 0x80, 0x82, 0, 0, 0, 0, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    size_t n;
    open_server(&sv, &ls, NULL);
    CHECK_EQ(rtws_conn_recv(&sv, masked_hello, sizeof masked_hello, 0, NULL), RTWS_OK);
    CHECK_EQ(ls.msgs, 1);
    CHECK(ls.msg_len == 5 && memcmp(ls.msg, "Hello", 5) == 0);
    CHECK_EQ(ls.last_msg.message.opcode, RTWS_OP_TEXT);
    rtws_conn_recv(&sv, frag, sizeof frag, 0, NULL);
    CHECK_EQ(ls.msgs, 2);
    CHECK(ls.msg_len == 5 && memcmp(ls.msg, "Hello", 5) == 0);
    rtws_conn_recv(&sv, ping, sizeof ping, 0, NULL);
    CHECK_EQ(ls.ping, 1);
    n = drain(&sv, out, sizeof out);
    CHECK(n == 7 && out[0] == 0x8a && out[1] == 5 && memcmp(out + 2, "Hello", 5) == 0);
    CHECK_EQ(rtws_conn_send_text(&sv, "Hello", 5), RTWS_OK);
    n = drain(&sv, out, sizeof out);
    CHECK(n == 7 && out[0] == 0x81 && out[1] == 0x05 && memcmp(out + 2, "Hello", 5) == 0);
    rtws_conn_free(&sv);
    /* client: unmasked server frames */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    {
        static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
        CHECK_EQ(rtws_conn_recv(&cl, hello, sizeof hello, 0, NULL), RTWS_OK);
        CHECK(lc.msg_len == 5 && memcmp(lc.msg, "Hello", 5) == 0);
        /* a client's own frames are masked */
        CHECK_EQ(rtws_conn_send_text(&cl, "Hello", 5), RTWS_OK);
        n = drain(&cl, out, sizeof out);
        CHECK(n == 11 && out[0] == 0x81 && out[1] == 0x85);
    }
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

static void test_protocol_violations(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[300];
    size_t n;
    unsigned op;
    static const unsigned bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    static const unsigned good_codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999};
    size_t i;
    /* unmasked client frame */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x81, "hi", 2, 0);
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 0, NULL), RTWS_ERR_PROTOCOL);
    CHECK(expect_fail(&sv, &ls, 1002));
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 0, NULL), RTWS_ERR_PROTOCOL); /* sticky */
    rtws_conn_free(&sv);
    /* reserved bits */
    for (op = 0x10; op <= 0x40; op <<= 1) {
        open_server(&sv, &ls, NULL);
        n = mkframe(f, (int)(0x81 | op), "hi", 2, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK(expect_fail(&sv, &ls, 1002));
        CHECK_EQ(ls.msgs, 0);
        rtws_conn_free(&sv);
    }
    /* reserved opcodes */
    for (op = 3; op <= 15; op++) {
        if (op >= 8 && op <= 10) continue;
        open_server(&sv, &ls, NULL);
        n = mkframe(f, (int)(0x80 | op), "", 0, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK(expect_fail(&sv, &ls, 1002));
        rtws_conn_free(&sv);
    }
    /* control frame of 126 bytes; fragmented ping */
    open_server(&sv, &ls, NULL);
    memset(f + 200, 'x', 100);
    {
        uint8_t big[200];
        memset(big, 'p', sizeof big);
        n = mkframe(f, 0x89, big, 126, 1);
    }
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1002));
    rtws_conn_free(&sv);
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x09, "p", 1, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1002));
    rtws_conn_free(&sv);
    /* continuation without a message; new message inside a message */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x80, "x", 1, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1002));
    rtws_conn_free(&sv);
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x01, "a", 1, 1);
    n += mkframe(f + n, 0x81, "b", 1, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1002));
    CHECK_EQ(ls.msgs, 0);
    rtws_conn_free(&sv);
    /* close payload of 1 byte */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x88, "\x03", 1, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1002));
    rtws_conn_free(&sv);
    /* close codes */
    for (i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        uint8_t p[2];
        p[0] = (uint8_t)(bad_codes[i] >> 8);
        p[1] = (uint8_t)bad_codes[i];
        open_server(&sv, &ls, NULL);
        n = mkframe(f, 0x88, p, 2, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK(expect_fail(&sv, &ls, 1002));
        rtws_conn_free(&sv);
    }
    for (i = 0; i < sizeof good_codes / sizeof good_codes[0]; i++) {
        uint8_t p[2], out[16];
        p[0] = (uint8_t)(good_codes[i] >> 8);
        p[1] = (uint8_t)good_codes[i];
        open_server(&sv, &ls, NULL);
        n = mkframe(f, 0x88, p, 2, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        n = drain(&sv, out, sizeof out);
        CHECK(n == 4 && out[0] == 0x88 && out[2] == p[0] && out[3] == p[1]); /* echoed */
        CHECK(ls.close == 1 && ls.last_close.close.clean && ls.last_close.close.by_peer &&
              ls.last_close.close.code == good_codes[i]);
        CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE); /* the server closes TCP first */
        rtws_conn_free(&sv);
    }
    /* close with no payload: echoed empty, reported as 1005 */
    {
        uint8_t out[16];
        open_server(&sv, &ls, NULL);
        n = mkframe(f, 0x88, "", 0, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        n = drain(&sv, out, sizeof out);
        CHECK(n == 2 && out[0] == 0x88 && out[1] == 0);
        CHECK_EQ(ls.last_close.close.code, 1005);
        /* data after close is ignored */
        n = mkframe(f, 0x81, "late", 4, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK_EQ(ls.msgs, 0);
        CHECK_EQ(rtws_conn_send_text(&sv, "x", 1), RTWS_ERR_CLOSED);
        rtws_conn_free(&sv);
    }
    /* close reason with invalid UTF-8 */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x88, "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 16, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1007));
    rtws_conn_free(&sv);
    /* 64-bit length with the top bit set */
    {
        static const uint8_t h[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
        open_server(&sv, &ls, NULL);
        rtws_conn_recv(&sv, h, sizeof h, 0, NULL);
        CHECK(expect_fail(&sv, &ls, 1002));
        rtws_conn_free(&sv);
    }
}

/* failing the connection keeps what was queued before: the echo of the valid
   message ahead of the bad frame goes out, then the close (Autobahn 3.2) */
static void test_fail_keeps_earlier_output(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[64], out[64];
    size_t n;
    open_server(&sv, &ls, NULL);
    ls.send_on_msg = 1;
    n = mkframe(f, 0x81, "Hello", 5, 1);
    n += mkframe(f + n, 0xa1, "bad", 3, 1); /* RSV2 */
    n += mkframe(f + n, 0x89, "p", 1, 1);
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 0, NULL), RTWS_ERR_PROTOCOL);
    n = drain(&sv, out, sizeof out);
    CHECK(n == 7 + 4 && memcmp(out, "\x81\x05Hello", 7) == 0);
    CHECK(out[7] == 0x88 && out[8] == 2 && out[9] == 0x03 && out[10] == 0xea);
    CHECK_EQ(ls.ping, 0); /* nothing after the bad frame is looked at */
    rtws_conn_free(&sv);
}

/* a ping and a close in one read: nothing may follow our close frame */
static void test_nothing_after_close(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[64], out[64];
    size_t n;
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x89, "p", 1, 1);
    n += mkframe(f + n, 0x88, "\x03\xe8", 2, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    n = drain(&sv, out, sizeof out);
    CHECK(n >= 4 && out[n - 4] == 0x88 && out[n - 3] == 2); /* the close is last */
    rtws_conn_free(&sv);
}

static void test_utf8_fail_fast(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[64];
    size_t n, i;
    /* one text frame of 20 bytes; the invalid byte (0xF4 0x90 = above U+10FFFF)
       arrives in the first 8: the close must go out before the rest comes */
    static const char payload[] = "abc\xf4\x90\x80\x80" "defghijklmno";
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x81, payload, 20, 1);
    rtws_conn_recv(&sv, f, 6 + 5, 0, NULL); /* header + "abc\xf4\x90" */
    CHECK(expect_fail(&sv, &ls, 1007));
    rtws_conn_free(&sv);
    /* fragmented: invalid across fragments, split at every byte */
    for (i = 1; i < 4; i++) {
        static const uint8_t bad[] = {0xce, 0xba, 0xed, 0xa0, 0x80}; /* κ then a surrogate */
        open_server(&sv, &ls, NULL);
        n = mkframe(f, 0x01, bad, i, 1);
        n += mkframe(f + n, 0x80, bad + i, 5 - i, 1);
        rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK(expect_fail(&sv, &ls, 1007));
        rtws_conn_free(&sv);
    }
    /* valid UTF-8 split across fragments at every byte */
    {
        static const char good[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf0\x9f\x98\x80";
        size_t len = sizeof good - 1;
        for (i = 0; i <= len; i++) {
            open_server(&sv, &ls, NULL);
            n = mkframe(f, 0x01, good, i, 1);
            n += mkframe(f + n, 0x80, good + i, len - i, 1);
            rtws_conn_recv(&sv, f, n, 0, NULL);
            CHECK(ls.msgs == 1 && ls.msg_len == len && memcmp(ls.msg, good, len) == 0);
            rtws_conn_free(&sv);
        }
    }
    /* truncated at the end of the message */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x81, "ab\xe2\x82", 4, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1007));
    rtws_conn_free(&sv);
}

static void test_limits(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    uint8_t f[256];
    size_t n, i;
    /* max_message: the frame header alone is enough to refuse with 1009 */
    cfg.max_message = 100;
    open_server(&sv, &ls, &cfg);
    {
        static const uint8_t h[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}; /* 4 GiB */
        rtws_conn_recv(&sv, h, sizeof h, 0, NULL);
    }
    CHECK(expect_fail(&sv, &ls, 1009));
    CHECK(sv.priv_.rcap < 100000); /* nothing was allocated for the announced size */
    rtws_conn_free(&sv);
    /* fragments adding up over max_message */
    open_server(&sv, &ls, &cfg);
    n = 0;
    for (i = 0; i < 3; i++) {
        uint8_t p[40];
        memset(p, 'a', sizeof p);
        n += mkframe(f + n, i == 0 ? 0x02 : 0x00, p, 40, 1);
    }
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1009));
    rtws_conn_free(&sv);
    /* empty fragments count toward max_fragments */
    cfg.max_message = 0;
    cfg.max_fragments = 10;
    open_server(&sv, &ls, &cfg);
    n = mkframe(f, 0x02, "", 0, 1);
    for (i = 0; i < 10; i++) n += mkframe(f + n, 0x00, "", 0, 1);
    rtws_conn_recv(&sv, f, n, 0, NULL);
    CHECK(expect_fail(&sv, &ls, 1009));
    rtws_conn_free(&sv);
    /* ping flood while the peer never reads: the answer queue stays bounded */
    open_server(&sv, &ls, NULL);
    {
        uint8_t p[125];
        memset(p, 'z', sizeof p);
        n = mkframe(f, 0x89, p, 125, 1);
        for (i = 0; i < 10000; i++) rtws_conn_recv(&sv, f, n, 0, NULL);
        CHECK_EQ(ls.ping, 10000);
        /* a few answers wait (RTWS__PONGQ_BYTES of payloads), never one per ping */
        CHECK(rtws_conn_out_pending(&sv) <= RTWS__PONGQ_BYTES + 5 * RTWS__PONGQ_MAX);
    }
    rtws_conn_free(&sv);
}

static void test_fragmented_send_and_stream(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    rtws_config sc;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    CHECK_EQ(rtws_conn_send_frame(&cl, RTWS_OP_TEXT, "\xce", 1, 0), RTWS_OK);
    CHECK_EQ(rtws_conn_send_text(&cl, "x", 1), RTWS_ERR_INVALID); /* inside a message */
    CHECK_EQ(rtws_conn_ping(&cl, "p", 1), RTWS_OK);
    CHECK_EQ(rtws_conn_send_frame(&cl, RTWS_OP_CONT, "\xba", 1, 0), RTWS_OK);
    CHECK_EQ(rtws_conn_send_frame(&cl, RTWS_OP_CONT, "!", 1, 1), RTWS_OK);
    CHECK_EQ(rtws_conn_send_frame(&cl, RTWS_OP_CONT, "!", 1, 1), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_conn_send_text(&cl, "\xff", 1), RTWS_ERR_UTF8);
    CHECK_EQ(rtws_conn_send_frame(&cl, RTWS_OP_TEXT, "\xe2\x82", 2, 1), RTWS_ERR_UTF8);
    pump(&cl, &sv, 0, 0);
    CHECK_EQ(ls.msgs, 1);
    CHECK(ls.msg_len == 3 && memcmp(ls.msg, "\xce\xba!", 3) == 0);
    CHECK_EQ(ls.ping, 1);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* stream mode: pieces arrive as they come, first/fin flags */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    sc = mkcfg(RTWS_SERVER, &ls);
    sc.stream = 1;
    open_server(&sv, &ls, &sc);
    {
        uint8_t f[64];
        size_t n = mkframe(f, 0x02, "abcd", 4, 1);
        n += mkframe(f + n, 0x80, "ef", 2, 1);
        rtws_conn_recv(&sv, f, 8, 0, NULL); /* header + "ab" */
        CHECK_EQ(ls.msgs, 1);
        CHECK(ls.last_msg.message.first && !ls.last_msg.message.fin && ls.last_msg.message.len == 2);
        rtws_conn_recv(&sv, f + 8, n - 8, 0, NULL);
        CHECK_EQ(ls.msgs, 3);
        CHECK(!ls.last_msg.message.first && ls.last_msg.message.fin);
        CHECK(ls.msg_len == 6 && memcmp(ls.msg, "abcdef", 6) == 0);
    }
    rtws_conn_free(&sv);
}

static void test_close_handshake(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    CHECK_EQ(rtws_conn_send_text(&cl, "last", 4), RTWS_OK);
    CHECK_EQ(rtws_conn_close(&cl, 1000, "bye"), RTWS_OK);
    CHECK_EQ(rtws_conn_close(&cl, 1000, "bye"), RTWS_ERR_CLOSED);
    CHECK_EQ(rtws_conn_send_text(&cl, "x", 1), RTWS_ERR_CLOSED);
    CHECK_EQ(rtws_conn_get_state(&cl), RTWS_STATE_CLOSING);
    pump(&cl, &sv, 0, 10);
    CHECK_EQ(ls.msgs, 1); /* queued data goes before the close */
    CHECK_EQ(ls.close, 1);
    CHECK(ls.last_close.close.clean && ls.last_close.close.by_peer && ls.last_close.close.code == 1000);
    CHECK(ls.last_close.close.reason_len == 3 && memcmp(ls.last_close.close.reason, "bye", 3) == 0);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_WRITE); /* flush the echo first */
    pump(&sv, &cl, 0, 20);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    CHECK_EQ(lc.close, 1);
    CHECK(lc.last_close.close.clean && !lc.last_close.close.by_peer && lc.last_close.close.code == 1000);
    /* the client waits for the server to close TCP, then gives up at the deadline */
    CHECK_EQ(rtws_conn_want(&cl), RTWS_WANT_READ);
    CHECK(rtws_conn_get_deadline(&cl) == 20 + 5000);
    rtws_conn_recv_eof(&cl, 30);
    CHECK_EQ(rtws_conn_want(&cl), RTWS_WANT_CLOSE);
    CHECK_EQ(lc.close, 1);
    CHECK_EQ(lc.error, 0);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* close from inside a message callback, then the peer vanishes: abnormal */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    ls.close_on_msg = 1;
    rtws_conn_send_text(&cl, "hi", 2);
    pump(&cl, &sv, 0, 0);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_CLOSING);
    rtws_conn_run_timers(&sv, 4999);
    CHECK_EQ(ls.close, 0);
    rtws_conn_run_timers(&sv, 5000);
    CHECK_EQ(ls.close, 1);
    CHECK(!ls.last_close.close.clean && ls.last_close.close.code == 1006);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* TCP ends without a close frame: 1006 */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    rtws_conn_recv_eof(&sv, 1);
    CHECK(ls.close == 1 && ls.last_close.close.code == 1006 && !ls.last_close.close.clean);
    CHECK_EQ(rtws_conn_get_error(&sv), RTWS_ERR_ABNORMAL);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    /* invalid close arguments */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    CHECK_EQ(rtws_conn_close(&cl, 1005, NULL), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_conn_close(&cl, 999, NULL), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_conn_close(&cl, 1000, "\xff"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_conn_close(&cl, 0, NULL), RTWS_OK);
    pump(&cl, &sv, 0, 0);
    CHECK(ls.close == 1 && ls.last_close.close.code == 1005);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

static void test_free_in_callback(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    uint8_t f[64];
    size_t n;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    ls.free_on_msg = 1;
    n = mkframe(f, 0x81, "a", 1, 1);
    n += mkframe(f + n, 0x81, "b", 1, 1);
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 0, NULL), RTWS_ERR_CLOSED);
    CHECK_EQ(ls.msgs, 1); /* nothing delivered after the free */
    CHECK(sv.priv_.rbuf == NULL && sv.priv_.segs == NULL);
    CHECK_EQ(rtws_conn_send_text(&sv, "x", 1), RTWS_ERR_CLOSED);
    rtws_conn_free(&sv); /* twice is harmless */
    rtws_conn_free(&cl);
}

/* counting allocator: steady-state receive allocates nothing */
static size_t n_allocs, n_alloc_bytes;
static void *count_alloc(size_t n, void *u) { (void)u; n_allocs++; n_alloc_bytes += n; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *u) { (void)u; n_allocs++; n_alloc_bytes += n; return realloc(p, n); }
static void count_free(void *p, void *u) { (void)u; free(p); }

static void *fail_alloc(size_t n, void *u) { (void)n; (void)u; return NULL; }

/* rtws_conn_init copies the config; when that copy cannot be allocated the
   connection reports RTWS_ERR_NOMEM from then on */
static void test_config_copy(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    memset(&ls, 0, sizeof ls);
    cfg.max_message = 777;
    rtws_conn_init(&sv, &cfg);
    cfg.max_message = 1; /* the connection kept its own copy */
    CHECK_EQ(rtws_conn_get_config(&sv)->max_message, 777);
    CHECK_EQ(rtws_conn_get_config(&sv)->max_frame, (size_t)16 << 20); /* defaults filled */
    rtws_conn_free(&sv);
    cfg.allocator.alloc = fail_alloc;
    rtws_conn_init(&sv, &cfg);
    CHECK_EQ(rtws_conn_get_error(&sv), RTWS_ERR_NOMEM);
    CHECK_EQ(rtws_conn_recv(&sv, req, sizeof req - 1, 0, NULL), RTWS_ERR_NOMEM);
    CHECK_EQ(ls.open, 0);
    CHECK_EQ(rtws_conn_send_text(&sv, "x", 1), RTWS_ERR_CLOSED);
    rtws_conn_free(&sv);
}

static void test_no_alloc_steady_state(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    uint8_t f[2048], junk[2048];
    size_t n, i, before;
    cfg.allocator.alloc = count_alloc;
    cfg.allocator.realloc = count_realloc;
    cfg.allocator.free = count_free;
    open_server(&sv, &ls, &cfg);
    {
        uint8_t p[1000];
        memset(p, 'q', sizeof p);
        n = mkframe(f, 0x82, p, 1000, 1);
        n += mkframe(f + n, 0x02, p, 300, 1);
        n += mkframe(f + n, 0x80, p, 300, 1);
    }
    ls.send_on_msg = 1;
    for (i = 0; i < 10; i++) { /* warm up */
        rtws_conn_recv(&sv, f, n, 0, NULL);
        drain(&sv, junk, sizeof junk);
    }
    before = n_allocs;
    for (i = 0; i < 1000; i++) {
        rtws_conn_recv(&sv, f, n, 0, NULL);
        drain(&sv, junk, sizeof junk);
    }
    CHECK_EQ(ls.msgs, 2020);
    CHECK_EQ(n_allocs - before, 0);
    /* zero copy: an unfragmented message is delivered from the receive buffer */
    {
        size_t cap;
        uint8_t *b = rtws_conn_recv_buf(&sv, 0, &cap);
        n = mkframe(b, 0x82, "zero-copy", 9, 1);
        ls.send_on_msg = 0;
        rtws_conn_recv_commit(&sv, n, 0);
        CHECK(ls.last_msg.message.data == b + 6);
        CHECK(ls.msg_len == 9 && memcmp(ls.msg, "zero-copy", 9) == 0);
    }
    rtws_conn_free(&sv);
}

static void test_timers(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    rtws_config cfg;
    uint8_t out[64];
    size_t n;
    /* handshake timeout (slowloris) */
    memset(&ls, 0, sizeof ls);
    cfg = mkcfg(RTWS_SERVER, &ls);
    rtws_conn_init(&sv, &cfg);
    rtws_conn_run_timers(&sv, 1000);
    rtws_conn_recv(&sv, "GET / HT", 8, 2000, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 11000);
    rtws_conn_run_timers(&sv, 10999);
    CHECK_EQ(ls.error, 0);
    rtws_conn_run_timers(&sv, 11000);
    CHECK_EQ(ls.error, 1);
    CHECK_EQ(ls.last_error.error.err, RTWS_ERR_TIMEOUT);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    rtws_conn_free(&sv);
    /* heartbeat: ping after the interval of silence, RTT from the pong */
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    CHECK_EQ(rtws_conn_get_deadline(&sv), 30000);
    rtws_conn_run_timers(&sv, 29999);
    CHECK_EQ(rtws_conn_out_pending(&sv), 0);
    rtws_conn_run_timers(&sv, 30000);
    CHECK(sv.priv_.ctl != NULL); /* the ping is staged in the control block */
    n = drain(&sv, out, sizeof out);
    CHECK(n == 10 && out[0] == 0x89 && out[1] == 8);
    /* once written, a server gives the block back: a heartbeat round over
       many idle connections does not hold one block per connection */
    CHECK(sv.priv_.ctl == NULL);
    rtws_conn_recv(&cl, out, n, 30000, NULL);
    CHECK_EQ(lc.ping, 1);
    CHECK(cl.priv_.ctl != NULL); /* the client's pong: staged until it is written */
    pump(&cl, &sv, 0, 30042);
    CHECK_EQ(ls.pong, 1);
    CHECK_EQ(ls.last.pong.rtt_ms, 42);
    CHECK(cl.priv_.ctl != NULL); /* a client keeps its block: batched masking keys */
    /* then silence: ping again, and with no answer, dead after pong_timeout */
    rtws_conn_run_timers(&sv, 60042);
    CHECK(rtws_conn_out_pending(&sv) > 0);
    drain(&sv, out, sizeof out);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 60042 + 60000);
    rtws_conn_run_timers(&sv, 120041);
    CHECK_EQ(ls.close, 0);
    rtws_conn_run_timers(&sv, 120042);
    CHECK_EQ(ls.close, 1);
    CHECK_EQ(ls.last_close.close.code, 1006);
    CHECK_EQ(rtws_conn_get_error(&sv), RTWS_ERR_TIMEOUT);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    /* a ping from the client: the server's pong, staged, then released */
    CHECK_EQ(rtws_conn_ping(&cl, "hb", 2), RTWS_OK);
    n = drain(&cl, out, sizeof out);
    rtws_conn_recv(&sv, out, n, 50, NULL);
    CHECK(sv.priv_.ctl != NULL && rtws_conn_out_pending(&sv) > 0);
    {   /* written in two parts: the block stays until the whole frame is out */
        const uint8_t *o = rtws_conn_out(&sv, &n);
        CHECK(n == 4 && o[0] == 0x8A && o[1] == 2 && o[2] == 'h' && o[3] == 'b');
        rtws_conn_out_done(&sv, 1);
        CHECK(sv.priv_.ctl != NULL);
        o = rtws_conn_out(&sv, &n);
        CHECK(n == 3 && o[0] == 2);
        rtws_conn_out_done(&sv, 3);
        CHECK(sv.priv_.ctl == NULL);
    }
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

static void test_idle_and_stats(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    rtws_conn_stats st;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    ((rtws_config *)(uintptr_t)rtws_conn_get_config(&sv))->idle_timeout_ms = 1000;
    ((rtws_config *)(uintptr_t)rtws_conn_get_config(&sv))->heartbeat_off = 1;
    rtws_conn_get_stats(&sv, &st);
    CHECK_EQ(st.last_msg_ms, 1); /* no message yet: the open */
    CHECK_EQ(rtws_conn_send_text(&cl, "abc", 3), RTWS_OK);
    pump(&cl, &sv, 0, 600);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 1600); /* a data message moved the idle deadline */
    rtws_conn_get_stats(&sv, &st);
    CHECK_EQ(st.last_msg_ms, 600);
    rtws_conn_ping(&cl, "p", 1);
    pump(&cl, &sv, 0, 1500); /* a ping is not activity for the idle timer */
    rtws_conn_run_timers(&sv, 1599);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_OPEN);
    rtws_conn_run_timers(&sv, 1600);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_CLOSING);
    pump(&sv, &cl, 0, 1600);
    CHECK(lc.close == 1 && lc.last_close.close.code == 1001);
    CHECK(lc.last_close.close.reason_len == 12 && memcmp(lc.last_close.close.reason, "idle timeout", 12) == 0);
    rtws_conn_get_stats(&sv, &st);
    CHECK(st.msgs_in == 1 && st.bytes_in == 3 && st.msgs_out == 0 && st.opened_at_ms == 1);
    CHECK_EQ(st.last_msg_ms, 600); /* the ping after it did not count */
    rtws_conn_get_stats(&cl, &st);
    CHECK(st.msgs_out == 1 && st.bytes_out == 3);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

static int http_hook(rtws_conn *c, const rtws_http *req, rtws_http_reply *r, void *user) {
    (void)c;
    (void)user;
    if (req->path.len == 7 && memcmp(req->path.p, "/status", 7) == 0) {
        r->status = 200;
        r->content_type = "application/json";
        r->body = "{\"status\":\"ok\"}";
        r->body_len = 15;
        return 1;
    }
    return 0;
}

static void test_plain_http_and_shared(void) {
    rtws_conn sv, a, b;
    ev_log ls, la, lb;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    char out[512];
    size_t n;
    rtws_shared *sh;
    memset(&ls, 0, sizeof ls);
    cfg.on_http = http_hook;
    rtws_conn_init(&sv, &cfg);
    {
        static const char q[] = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
        rtws_conn_recv(&sv, q, sizeof q - 1, 0, NULL);
    }
    n = drain(&sv, (uint8_t *)out, sizeof out - 1);
    out[n] = 0;
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Content-Type: application/json\r\n") != NULL);
    CHECK(strstr(out, "Content-Length: 15\r\n") != NULL);
    CHECK(n > 15 && memcmp(out + n - 15, "{\"status\":\"ok\"}", 15) == 0);
    CHECK_EQ(rtws_conn_want(&sv), RTWS_WANT_CLOSE);
    CHECK_EQ(ls.open + ls.error + ls.close, 0);
    rtws_conn_free(&sv);
    /* a plain GET the hook does not take: 426 as before */
    rtws_conn_init(&sv, &cfg);
    {
        static const char q[] = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n";
        rtws_conn_recv(&sv, q, sizeof q - 1, 0, NULL);
    }
    n = drain(&sv, (uint8_t *)out, sizeof out - 1);
    out[n] = 0;
    CHECK(strncmp(out, "HTTP/1.1 426 ", 13) == 0);
    rtws_conn_free(&sv);
    /* one shared frame to two server connections: same bytes, one encode */
    open_server(&a, &la, NULL);
    open_server(&b, &lb, NULL);
    sh = rtws_shared_new(NULL, RTWS_OP_TEXT, "fan-out", 7);
    CHECK(sh != NULL);
    CHECK_EQ(rtws_conn_send_text(&a, "first", 5), RTWS_OK);
    CHECK_EQ(rtws_conn_send_shared(&a, sh), RTWS_OK);
    CHECK_EQ(rtws_conn_send_shared(&b, sh), RTWS_OK);
    CHECK_EQ(rtws_conn_send_text(&a, "last", 4), RTWS_OK);
    rtws_shared_release(sh); /* the connections still hold theirs */
    n = drain(&a, (uint8_t *)out, sizeof out);
    CHECK(n == 7 + 9 + 6 && memcmp(out + 7, "\x81\x07" "fan-out", 9) == 0 && memcmp(out + 16, "\x81\x04last", 6) == 0);
    n = drain(&b, (uint8_t *)out, sizeof out);
    CHECK(n == 9 && memcmp(out, "\x81\x07" "fan-out", 9) == 0);
    {
        rtws_conn_stats st;
        rtws_conn_get_stats(&b, &st);
        CHECK(st.msgs_out == 1 && st.bytes_out == 7);
    }
    /* a connection freed with the shared frame still queued releases it */
    sh = rtws_shared_new(NULL, RTWS_OP_BINARY, "x", 1);
    rtws_conn_send_shared(&a, sh);
    rtws_shared_release(sh);
    rtws_conn_free(&a);
    rtws_conn_free(&b);
}

static void test_control_priority(void) {
    rtws_conn cl, sv;
    ev_log lc, ls;
    static uint8_t big[100000];
    rtws_config sc;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    sc = mkcfg(RTWS_SERVER, &ls);
    sc.max_send_queue = 150000;
    CHECK(connect_pair(&cl, &lc, &sv, &ls, 0));
    ((rtws_config *)(uintptr_t)rtws_conn_get_config(&sv))->max_send_queue = 150000;
    CHECK_EQ(rtws_conn_send_binary(&sv, big, sizeof big), RTWS_OK);
    CHECK_EQ(rtws_conn_send_binary(&sv, big, sizeof big), RTWS_ERR_LIMIT); /* queue cap */
    {
        /* write part of the first frame, then a ping must wait for its end */
        size_t len;
        const uint8_t *p = rtws_conn_out(&sv, &len);
        CHECK(p && len >= 1000);
        rtws_conn_recv(&cl, p, 1000, 0, NULL);
        rtws_conn_out_done(&sv, 1000);
        CHECK_EQ(rtws_conn_send_text(&sv, "after", 5), RTWS_OK);
        CHECK_EQ(rtws_conn_ping(&sv, "hb", 2), RTWS_OK);
        pump(&sv, &cl, 0, 0);
        CHECK_EQ(lc.msgs, 2);
        CHECK_EQ(lc.ping, 1);
    }
    /* a ping queued behind a full data queue goes out before that data */
    CHECK_EQ(rtws_conn_send_binary(&sv, big, sizeof big), RTWS_OK);
    CHECK_EQ(rtws_conn_ping(&sv, "hb", 2), RTWS_OK);
    {
        size_t len;
        const uint8_t *p = rtws_conn_out(&sv, &len);
        CHECK(p && len == 4 && p[0] == 0x89);
    }
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
    (void)sc;
}

/* rtws_conn_recv_inplace: frames handled in the caller's buffer, only an
   incomplete tail copied, a quiet connection holding no receive buffer */
static void test_recv_inplace(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls);
    uint8_t lent[4096], f[4096], junk[4096], p[3000];
    size_t n, k, before, cut;
    cfg.allocator.alloc = count_alloc;
    cfg.allocator.realloc = count_realloc;
    cfg.allocator.free = count_free;
    open_server(&sv, &ls, &cfg);
    rtws_conn_trim(&sv);
    CHECK(sv.priv_.rbuf == NULL);
    memset(p, 'z', sizeof p);
    /* two whole frames: delivered from the lent bytes, nothing allocated */
    n = mkframe(f, 0x81, "hello", 5, 1);
    k = mkframe(f + n, 0x82, p, 200, 1);
    memcpy(lent, f, n + k);
    before = n_allocs;
    CHECK_EQ(rtws_conn_recv_inplace(&sv, lent, n + k, 0), RTWS_OK);
    CHECK_EQ(ls.msgs, 2);
    CHECK(ls.last_msg.message.data == lent + n + 8 && ls.last_msg.message.len == 200); /* 126 form + key */
    CHECK_EQ(n_allocs - before, 0);
    CHECK(sv.priv_.rbuf == NULL);
    /* a frame cut at every byte: the tail is kept, the lent buffer scribbled over */
    n = mkframe(f, 0x82, p, sizeof p, 1);
    for (cut = 1; cut < n; cut += 97) {
        int before_msgs = ls.msgs;
        rtws_conn_trim(&sv);
        memcpy(lent, f, cut);
        CHECK_EQ(rtws_conn_recv_inplace(&sv, lent, cut, 0), RTWS_EAGAIN);
        memset(lent, 0xEE, cut);
        CHECK(sv.priv_.rbuf != NULL || cut == 0);
        /* the rest: the connection now has its own buffer, so this copies */
        memcpy(lent, f + cut, n - cut);
        CHECK_EQ(rtws_conn_recv_inplace(&sv, lent, n - cut, 0), RTWS_OK);
        CHECK_EQ(ls.msgs, before_msgs + 1);
        CHECK(ls.msg_len == sizeof p && memcmp(ls.msg, p, sizeof p) == 0);
    }
    /* a close frame in place: echoed, and the lent buffer is never freed
       (lent is on the stack: freeing it would crash) */
    rtws_conn_trim(&sv);
    drain(&sv, junk, sizeof junk);
    n = mkframe(lent, 0x88, "\x03\xe8", 2, 1);
    rtws_conn_recv_inplace(&sv, lent, n, 0);
    n = drain(&sv, junk, sizeof junk);
    CHECK(n == 4 && junk[0] == 0x88 && junk[2] == 0x03 && junk[3] == 0xe8);
    rtws_conn_free(&sv);
    /* freed from the callback during an in-place call */
    open_server(&sv, &ls, &cfg);
    rtws_conn_trim(&sv);
    ls.free_on_msg = 1;
    n = mkframe(lent, 0x81, "bye", 3, 1);
    n += mkframe(lent + n, 0x81, "never", 5, 1);
    CHECK_EQ(rtws_conn_recv_inplace(&sv, lent, n, 0), RTWS_ERR_CLOSED);
    CHECK_EQ(ls.msgs, 1);
    ls.free_on_msg = 0;
    /* an occasional small message, then the peer's close: small chunks (not
       a 16 KiB packing chunk each). A connection's first two messages keep
       no spare chunk (rtws__chunk_unref: a quiet connection leaves no hole
       in the heap), so each of these two sends has a small one of its own */
    open_server(&sv, &ls, &cfg);
    rtws_conn_trim(&sv);
    drain(&sv, junk, sizeof junk);
    before = n_alloc_bytes;
    CHECK_EQ(rtws_conn_send_text(&sv, "tick", 4), RTWS_OK);
    drain(&sv, junk, sizeof junk);
    n = mkframe(lent, 0x88, "\x03\xe8", 2, 1);
    rtws_conn_recv_inplace(&sv, lent, n, 0);
    n = drain(&sv, junk, sizeof junk);
    CHECK(n == 4 && junk[0] == 0x88);
    CHECK(n_alloc_bytes - before < 2048);
    rtws_conn_free(&sv);
    /* a client mid-handshake falls back to copying */
    {
        rtws_conn cl, s2;
        ev_log lc, l2;
        rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &l2);
        rtws_client_opts o;
        const uint8_t *q;
        size_t len;
        memset(&lc, 0, sizeof lc);
        memset(&l2, 0, sizeof l2);
        memset(&o, 0, sizeof o);
        o.host = "h";
        rtws_conn_init(&cl, &cc);
        rtws_conn_init(&s2, &sc);
        rtws_conn_start(&cl, &o, 0);
        while ((q = rtws_conn_out(&cl, &len)) != NULL) {
            memcpy(lent, q, len);
            rtws_conn_out_done(&cl, len);
            rtws_conn_recv_inplace(&s2, lent, len, 0);
        }
        while ((q = rtws_conn_out(&s2, &len)) != NULL) {
            memcpy(lent, q, len);
            rtws_conn_out_done(&s2, len);
            rtws_conn_recv_inplace(&cl, lent, len, 0);
        }
        CHECK(lc.open == 1 && l2.open == 1);
        rtws_conn_send_text(&s2, "to client", 9);
        n = drain(&s2, junk, sizeof junk);
        memcpy(lent, junk, n);
        CHECK_EQ(rtws_conn_recv_inplace(&cl, lent, n, 0), RTWS_OK);
        CHECK(lc.msgs == 1 && lc.msg_len == 9 && lc.last_msg.message.data == lent + 2);
        rtws_conn_free(&cl);
        rtws_conn_free(&s2);
    }
}

/* Events are typed by kind: every member of the union starts with the type,
   and an error found by the sans-I/O layer carries nothing from below it
   (detail and detail_text are the host's and the transport's to fill). */
static void test_event_is_typed(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[16];
    size_t n;
    rtws_event ev;
    CHECK_EQ(offsetof(rtws_open_event, type), 0);
    CHECK_EQ(offsetof(rtws_message_event, type), 0);
    CHECK_EQ(offsetof(rtws_control_event, type), 0);
    CHECK_EQ(offsetof(rtws_close_event, type), 0);
    CHECK_EQ(offsetof(rtws_error_event, type), 0);
    memset(&ev, 0, sizeof ev);
    ev.close.type = RTWS_EV_CLOSE;
    CHECK_EQ(ev.type, RTWS_EV_CLOSE);
    CHECK_EQ(ev.error.type, RTWS_EV_CLOSE);
    /* a protocol violation: an unmasked client frame */
    open_server(&sv, &ls, NULL);
    n = mkframe(f, 0x81, "hi", 2, 0);
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 0, NULL), RTWS_ERR_PROTOCOL);
    CHECK_EQ(ls.error, 1);
    CHECK_EQ(ls.last_error.type, RTWS_EV_ERROR);
    CHECK_EQ(ls.last_error.error.err, RTWS_ERR_PROTOCOL);
    CHECK_EQ(ls.last_error.error.status, 0);
    CHECK_EQ(ls.last_error.error.detail, 0);
    CHECK(ls.last_error.error.detail_text == NULL);
    /* the close that follows has no reason: NULL, not a dangling pointer */
    CHECK(ls.close == 1 && ls.last_close.close.code == 1002 && !ls.last_close.close.clean);
    CHECK(ls.last_close.close.reason_len == 0 && ls.last_close.close.reason == NULL);
    rtws_conn_free(&sv);
}

int main(void) {
    test_handshake_rfc_example();
    test_pair_and_protocol();
    test_server_handshake_failures();
    test_rfc_examples();
    test_echo_sizes();
    test_protocol_violations();
    test_utf8_fail_fast();
    test_fail_keeps_earlier_output();
    test_nothing_after_close();
    test_limits();
    test_fragmented_send_and_stream();
    test_close_handshake();
    test_free_in_callback();
    test_no_alloc_steady_state();
    test_recv_inplace();
    test_config_copy();
    test_timers();
    test_control_priority();
    test_idle_and_stats();
    test_plain_http_and_shared();
    test_event_is_typed();
    return T_END();
}
