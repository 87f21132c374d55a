/* Layer 3 (rtws_conn): slow senders. rtws_config.message_timeout_ms bounds
   the time from a message's (or frame's) first byte to its last; pings and
   pongs are no progress. Driven by rtws_conn_run_timers with a fake clock. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct ev_log {
    int ping, pong, msgs, close, error, pieces;
    unsigned close_code;
    int close_clean;
    rtws_err err;
    size_t msg_len;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    (void)c;
    switch (ev->type) {
    case RTWS_EV_PING: L->ping++; break;
    case RTWS_EV_PONG: L->pong++; break;
    case RTWS_EV_CLOSE:
        L->close++;
        L->close_code = ev->close.code;
        L->close_clean = ev->close.clean;
        break;
    case RTWS_EV_ERROR:
        L->error++;
        L->err = ev->error.err;
        break;
    case RTWS_EV_MESSAGE:
        L->pieces++;
        if (ev->message.fin) {
            L->msgs++;
            L->msg_len = ev->message.len;
        }
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

static unsigned seed = 3;
static rtws_config mkcfg(rtws_role role, ev_log *L, uint32_t message_timeout_ms) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.on_event = on_event;
    cfg.user = L;
    cfg.random = fixed_random;
    cfg.random_user = &seed;
    cfg.heartbeat_off = 1;
    cfg.message_timeout_ms = message_timeout_ms;
    return cfg;
}

static size_t mkframe(uint8_t *out, int b0, const void *payload, size_t len, int masked) {
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t n = rtws_frame_header_encode(out, b0 >> 7, (rtws_opcode)(b0 & 15), len, masked ? key : NULL);
    out[0] = (uint8_t)b0;
    if (len) memcpy(out + n, payload, len);
    if (masked) rtws_frame_mask(out + n, len, key, 0);
    return n + len;
}

static size_t drain(rtws_conn *c, uint8_t *buf, size_t cap) {
    const uint8_t *p;
    size_t len, n = 0;
    while ((p = rtws_conn_out(c, &len)) != NULL) {
        if (n + len > cap) len = cap - n;
        memcpy(buf + n, p, len);
        n += len;
        rtws_conn_out_done(c, len);
        if (n == cap) break;
    }
    return n;
}

/* A server opened at time 0 (the request at now 0). */
static void open_server(rtws_conn *sv, ev_log *ls, const rtws_config *cfg) {
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    uint8_t junk[512];
    memset(ls, 0, sizeof *ls);
    rtws_conn_init(sv, cfg);
    rtws_conn_recv(sv, req, sizeof req - 1, 0, NULL);
    drain(sv, junk, sizeof junk);
}

/* sv's output is exactly one close frame with code */
static int wrote_close(rtws_conn *sv, unsigned code) {
    uint8_t out[256];
    size_t n = drain(sv, out, sizeof out);
    return n == 4 && out[0] == 0x88 && out[1] == 2 && ((unsigned)out[2] << 8 | out[3]) == code;
}

/* a fragment without FIN, then only pongs and pings: 1008 at first byte + T */
static void test_fragment_then_pongs(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls, 2000);
    uint8_t f[64], out[256];
    size_t n;
    uint64_t t;
    open_server(&sv, &ls, &cfg);
    CHECK_EQ(rtws_conn_get_deadline(&sv), UINT64_MAX); /* nothing in progress */
    n = mkframe(f, 0x01, "hel", 3, 1);
    CHECK_EQ(rtws_conn_recv(&sv, f, n, 1000, NULL), RTWS_EAGAIN);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 3000);
    for (t = 1200; t < 3000; t += 200) { /* the peer keeps talking, but only control frames */
        n = mkframe(f, 0x8A, "pong", 4, 1);
        n += mkframe(f + n, 0x89, "ping", 4, 1);
        rtws_conn_recv(&sv, f, n, t, NULL);
        drain(&sv, out, sizeof out); /* our pongs */
        rtws_conn_run_timers(&sv, t);
        CHECK_EQ(rtws_conn_get_deadline(&sv), 3000);
    }
    CHECK(ls.pong == 9 && ls.ping == 9 && ls.error == 0);
    rtws_conn_run_timers(&sv, 2999);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_OPEN);
    rtws_conn_run_timers(&sv, 3000);
    CHECK_EQ(ls.error, 1);
    CHECK_EQ(ls.err, RTWS_ERR_MESSAGE_TIMEOUT);
    CHECK(ls.close == 1 && ls.close_code == 1008 && !ls.close_clean);
    CHECK_EQ(rtws_conn_get_error(&sv), RTWS_ERR_MESSAGE_TIMEOUT);
    CHECK(wrote_close(&sv, 1008));
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_CLOSED);
    CHECK(rtws_conn_want(&sv) == RTWS_WANT_CLOSE);
    CHECK(strstr(rtws_err_str(RTWS_ERR_MESSAGE_TIMEOUT), "message_timeout_ms") != NULL);
    CHECK_EQ(ls.msgs, 0);
    rtws_conn_free(&sv);
}

/* one big frame trickled a byte at a time, in both receive paths and modes */
static void test_trickle(void) {
    static uint8_t f[2048];
    int variant;
    for (variant = 0; variant < 3; variant++) {
        rtws_conn sv;
        ev_log ls;
        rtws_config cfg = mkcfg(RTWS_SERVER, &ls, 5000);
        uint8_t pay[1000];
        size_t n, i;
        uint64_t t = 100;
        cfg.stream = variant == 2;
        memset(pay, 'q', sizeof pay);
        open_server(&sv, &ls, &cfg);
        n = mkframe(f, 0x82, pay, sizeof pay, 1);
        for (i = 0; i < n && ls.error == 0; i++, t += 100) {
            if (variant == 1) rtws_conn_recv_inplace(&sv, f + i, 1, t);
            else rtws_conn_recv(&sv, f + i, 1, t, NULL);
            if (rtws_conn_get_deadline(&sv) <= t) rtws_conn_run_timers(&sv, t);
        }
        /* 5000 ms from the first byte (t=100): the 51st byte arrived at 5100 */
        CHECK_EQ(ls.error, 1);
        CHECK_EQ(ls.err, RTWS_ERR_MESSAGE_TIMEOUT);
        CHECK_EQ(t, 5200); /* the loop stopped right after the call at 5100 */
        CHECK(ls.close == 1 && ls.close_code == 1008);
        CHECK(wrote_close(&sv, 1008));
        CHECK_EQ(ls.msgs, 0);
        if (variant == 2) CHECK(ls.pieces > 0); /* pieces delivered, the message still timed */
        rtws_conn_free(&sv);
    }
}

/* a message that completes in time stops the clock; the next one gets its own */
static void test_in_time(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls, 1000);
    uint8_t f[256];
    size_t n;
    open_server(&sv, &ls, &cfg);
    n = mkframe(f, 0x01, "ab", 2, 1);
    rtws_conn_recv(&sv, f, n, 100, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 1100);
    n = mkframe(f, 0x89, "x", 1, 1); /* a ping between fragments moves nothing */
    rtws_conn_recv(&sv, f, n, 900, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 1100);
    n = mkframe(f, 0x80, "cd", 2, 1);
    rtws_conn_recv(&sv, f, n, 1099, NULL);
    CHECK_EQ(ls.msgs, 1);
    CHECK_EQ(rtws_conn_get_deadline(&sv), UINT64_MAX);
    rtws_conn_run_timers(&sv, 5000);
    CHECK_EQ(ls.error, 0);
    /* message A completes and message B starts in the same call at 6000:
       B's clock starts at 6000, not at A's first byte (5500) */
    n = mkframe(f, 0x01, "a", 1, 1);
    rtws_conn_recv(&sv, f, n, 5500, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 6500);
    n = mkframe(f, 0x80, "b", 1, 1);
    n += mkframe(f + n, 0x81, "partial", 7, 1) - 3; /* B: all but 3 payload bytes */
    rtws_conn_recv(&sv, f, n, 6000, NULL);
    CHECK_EQ(ls.msgs, 2);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 7000);
    rtws_conn_run_timers(&sv, 6999);
    CHECK_EQ(ls.error, 0);
    rtws_conn_run_timers(&sv, 7000);
    CHECK_EQ(ls.err, RTWS_ERR_MESSAGE_TIMEOUT);
    rtws_conn_free(&sv);
    /* whole messages and control frames in one call each: never a deadline */
    open_server(&sv, &ls, &cfg);
    n = mkframe(f, 0x81, "hi", 2, 1);
    n += mkframe(f + n, 0x89, "p", 1, 1);
    rtws_conn_recv(&sv, f, n, 10, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&sv), UINT64_MAX);
    rtws_conn_free(&sv);
}

/* control frames and headers trickled count too; off means off */
static void test_control_and_off(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls, 1000);
    uint8_t f[256], pay[100];
    size_t n, i;
    memset(pay, 'p', sizeof pay);
    open_server(&sv, &ls, &cfg);
    n = mkframe(f, 0x89, pay, sizeof pay, 1);
    rtws_conn_recv(&sv, f, 1, 50, NULL); /* half a header */
    CHECK_EQ(rtws_conn_get_deadline(&sv), 1050);
    rtws_conn_recv(&sv, f + 1, 10, 500, NULL);
    rtws_conn_run_timers(&sv, 1050);
    CHECK_EQ(ls.err, RTWS_ERR_MESSAGE_TIMEOUT);
    CHECK_EQ(ls.ping, 0);
    rtws_conn_free(&sv);
    /* message_timeout_ms 0 (the library default): no deadline however slow */
    cfg = mkcfg(RTWS_SERVER, &ls, 0);
    open_server(&sv, &ls, &cfg);
    CHECK_EQ(rtws_conn_get_config(&sv)->message_timeout_ms, 0);
    n = mkframe(f, 0x82, pay, sizeof pay, 1);
    for (i = 0; i + 1 < n; i++) {
        rtws_conn_recv(&sv, f + i, 1, 5000 * (uint64_t)(i + 1), NULL);
        CHECK_EQ(rtws_conn_get_deadline(&sv), UINT64_MAX);
        rtws_conn_run_timers(&sv, 5000 * (uint64_t)(i + 1));
    }
    CHECK_EQ(ls.error, 0);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_OPEN);
    rtws_conn_free(&sv);
}

/* the client role, and the heartbeat's deadline alongside */
static void test_client_and_heartbeat(void) {
    rtws_conn cl;
    ev_log lc;
    rtws_config cfg = mkcfg(RTWS_CLIENT, &lc, 3000);
    rtws_client_opts o;
    char req[1024], resp[256], acc[29];
    const char *key;
    uint8_t f[64];
    size_t k, n;
    cfg.heartbeat_off = 0;
    cfg.ping_interval_ms = 10000;
    memset(&lc, 0, sizeof lc);
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1:9";
    rtws_conn_init(&cl, &cfg);
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_OK);
    k = drain(&cl, (uint8_t *)req, sizeof req - 1);
    req[k] = 0;
    key = strstr(req, "Sec-WebSocket-Key: ");
    CHECK(key != NULL);
    if (!key) return;
    rtws_upgrade_accept_key(key + 19, 24, acc);
    k = (size_t)snprintf(resp, sizeof resp,
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                         acc);
    rtws_conn_recv(&cl, resp, k, 0, NULL);
    CHECK_EQ(rtws_conn_get_state(&cl), RTWS_STATE_OPEN);
    CHECK_EQ(rtws_conn_get_deadline(&cl), 10000); /* the heartbeat; the handshake's is gone */
    n = mkframe(f, 0x02, "xy", 2, 0);             /* unmasked: from a server */
    rtws_conn_recv(&cl, f, n, 500, NULL);
    CHECK_EQ(rtws_conn_get_deadline(&cl), 3500);
    rtws_conn_run_timers(&cl, 3500);
    CHECK_EQ(lc.err, RTWS_ERR_MESSAGE_TIMEOUT);
    CHECK(lc.close == 1 && lc.close_code == 1008);
    {
        uint8_t out[64];
        n = drain(&cl, out, sizeof out);
        CHECK(n == 8 && out[0] == 0x88 && out[1] == (0x80 | 2)); /* masked close, 2-byte code */
    }
    rtws_conn_free(&cl);
}

/* idle_timeout_ms: pongs alone don't keep a connection alive */
static void test_idle_pongs(void) {
    rtws_conn sv;
    ev_log ls;
    rtws_config cfg = mkcfg(RTWS_SERVER, &ls, 0);
    uint8_t f[64], out[256];
    size_t n;
    uint64_t t;
    cfg.idle_timeout_ms = 1000;
    open_server(&sv, &ls, &cfg);
    n = mkframe(f, 0x81, "m", 1, 1);
    rtws_conn_recv(&sv, f, n, 100, NULL);
    drain(&sv, out, sizeof out);
    for (t = 200; t < 1100; t += 100) {
        n = mkframe(f, 0x8A, "pong", 4, 1);
        rtws_conn_recv(&sv, f, n, t, NULL);
        rtws_conn_run_timers(&sv, t);
    }
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_OPEN);
    CHECK_EQ(rtws_conn_get_deadline(&sv), 1100);
    rtws_conn_run_timers(&sv, 1100);
    CHECK_EQ(rtws_conn_get_state(&sv), RTWS_STATE_CLOSING);
    n = drain(&sv, out, sizeof out);
    CHECK(n == 16 && out[0] == 0x88 && out[1] == 14 && ((unsigned)out[2] << 8 | out[3]) == 1001 &&
          memcmp(out + 4, "idle timeout", 12) == 0);
    rtws_conn_free(&sv);
}

int main(void) {
    test_fragment_then_pongs();
    test_trickle();
    test_in_time();
    test_control_and_off();
    test_client_and_heartbeat();
    test_idle_pongs();
    return T_END();
}
