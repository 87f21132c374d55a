/* Layer 3 (rtws_conn): every ping gets its pong, in order, up to a bound
   (RFC 6455 §5.5.2, §5.5.3; Autobahn cases 2.10 and 2.11). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct ev_log {
    int ping, pong, msgs, close, error;
    uint8_t msg[256];
    size_t msg_len;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    (void)c;
    switch (ev->type) {
    case RTWS_EV_PING: L->ping++; break;
    case RTWS_EV_PONG: L->pong++; break;
    case RTWS_EV_CLOSE: L->close++; break;
    case RTWS_EV_ERROR: L->error++; break;
    case RTWS_EV_MESSAGE:
        L->msgs++;
        L->msg_len = ev->message.len < sizeof L->msg ? ev->message.len : sizeof L->msg;
        memcpy(L->msg, ev->message.data, L->msg_len);
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

/* live-byte counting allocator: a size word ahead of every block */
static size_t live, peak;
static void *c_alloc(size_t n, void *u) {
    size_t *p = (size_t *)malloc(n + sizeof(size_t) * 2);
    (void)u;
    if (!p) return NULL;
    p[0] = n;
    live += n;
    if (live > peak) peak = live;
    return p + 2;
}
static void c_free(void *q, void *u) {
    size_t *p;
    (void)u;
    if (!q) return;
    p = (size_t *)q - 2;
    live -= p[0];
    free(p);
}
static void *c_realloc(void *q, size_t n, void *u) {
    void *r;
    if (!q) return c_alloc(n, u);
    r = c_alloc(n, u);
    if (!r) return NULL;
    memcpy(r, q, ((size_t *)q - 2)[0] < n ? ((size_t *)q - 2)[0] : n);
    c_free(q, u);
    return r;
}

static unsigned seed = 7;
static rtws_config mkcfg(rtws_role role, ev_log *L) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.on_event = on_event;
    cfg.user = L;
    cfg.random = fixed_random;
    cfg.random_user = &seed;
    cfg.heartbeat_off = 1;
    cfg.allocator.alloc = c_alloc;
    cfg.allocator.realloc = c_realloc;
    cfg.allocator.free = c_free;
    return cfg;
}

/* a frame built by hand, masked (as from a client) when masked */
static size_t mkframe(uint8_t *out, int b0, const void *payload, size_t len, int masked) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = rtws_frame_header_encode(out, b0 >> 7, (rtws_opcode)(b0 & 15), len, masked ? key : NULL);
    out[0] = (uint8_t)b0;
    if (len) memcpy(out + n, payload, len);
    if (masked) rtws_frame_mask(out + n, len, key, 0);
    return n + len;
}

static void open_server(rtws_conn *sv, ev_log *ls) {
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    rtws_config cfg = mkcfg(RTWS_SERVER, ls);
    const uint8_t *p;
    size_t len;
    memset(ls, 0, sizeof *ls);
    rtws_conn_init(sv, &cfg);
    rtws_conn_recv(sv, req, sizeof req - 1, 0, NULL);
    while ((p = rtws_conn_out(sv, &len)) != NULL) rtws_conn_out_done(sv, len);
}

/* A client opened against a hand-written 101 (the key from fixed_random). */
static int open_client(rtws_conn *cl, ev_log *lc) {
    rtws_config cfg = mkcfg(RTWS_CLIENT, lc);
    rtws_client_opts o;
    const uint8_t *p;
    size_t len, k = 0;
    char req[1024], resp[256], acc[29];
    const char *key;
    memset(lc, 0, sizeof *lc);
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1:9";
    rtws_conn_init(cl, &cfg);
    if (rtws_conn_start(cl, &o, 0) != RTWS_OK) return 0;
    while ((p = rtws_conn_out(cl, &len)) != NULL) {
        if (k + len < sizeof req) memcpy(req + k, p, len);
        k += len;
        rtws_conn_out_done(cl, len);
    }
    if (k >= sizeof req) return 0;
    req[k] = 0;
    key = strstr(req, "Sec-WebSocket-Key: ");
    if (!key) return 0;
    rtws_upgrade_accept_key(key + 19, 24, acc);
    k = (size_t)snprintf(resp, sizeof resp,
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                         acc);
    rtws_conn_recv(cl, resp, k, 0, NULL);
    return rtws_conn_get_state(cl) == RTWS_STATE_OPEN;
}

/* The frames c wrote (parsed as its peer): "P:payload" per pong, "T:payload"
   per text, "C" per close, "X" on a parse error, joined by '|'. */
static char got[1 << 16];
static uint8_t buf[1 << 17];
/* Appends c's output to buf[n..) and returns the new length. */
static size_t take_out(rtws_conn *c, size_t n) {
    const uint8_t *p;
    size_t len;
    while ((p = rtws_conn_out(c, &len)) != NULL) {
        if (n + len > sizeof buf) break;
        memcpy(buf + n, p, len);
        n += len;
        rtws_conn_out_done(c, len);
    }
    return n;
}
static const char *frames_parse(size_t n, rtws_role writer) {
    rtws_frame_parser fp;
    size_t off = 0, g = 0;
    rtws_frame_parser_init(&fp, writer == RTWS_SERVER ? RTWS_CLIENT : RTWS_SERVER, 0);
    got[0] = 0;
    while (off < n) {
        rtws_frame_piece pc;
        size_t used = 0;
        rtws_err e = rtws_frame_parser_feed(&fp, buf + off, n - off, &used, &pc);
        off += used;
        if (e == RTWS_EAGAIN) break;
        if (e != RTWS_OK) {
            g += (size_t)snprintf(got + g, sizeof got - g, "X");
            break;
        }
        if (pc.frame_start) {
            char k = pc.h->opcode == RTWS_OP_PONG ? 'P' : pc.h->opcode == RTWS_OP_TEXT ? 'T'
                   : pc.h->opcode == RTWS_OP_CLOSE ? 'C' : pc.h->opcode == RTWS_OP_PING ? 'I' : '?';
            if (g + 4 >= sizeof got) break;
            if (g) got[g++] = '|';
            got[g++] = k;
            if (k != 'C') got[g++] = ':';
        }
        if (pc.h->opcode != RTWS_OP_CLOSE && g + pc.len + 1 < sizeof got) {
            memcpy(got + g, pc.data, pc.len);
            g += pc.len;
        }
        got[g] = 0;
    }
    return got;
}
static const char *frames_out(rtws_conn *c, rtws_role writer) {
    return frames_parse(take_out(c, 0), writer);
}

static size_t ten_pings(uint8_t *f, int masked) {
    size_t n = 0;
    int i;
    for (i = 0; i < 10; i++) {
        char d = (char)('0' + i);
        n += mkframe(f + n, 0x89, &d, 1, masked);
    }
    return n;
}

static const char ten_pongs[] = "P:0|P:1|P:2|P:3|P:4|P:5|P:6|P:7|P:8|P:9";

static void test_order(void) {
    rtws_conn sv, cl;
    ev_log ls, lc;
    uint8_t f[512];
    size_t n, i;
    /* ten pings in one buffer (one TCP segment): ten pongs, same payloads, in order */
    open_server(&sv, &ls);
    n = ten_pings(f, 1);
    rtws_conn_recv(&sv, f, n, 1, NULL);
    CHECK_EQ(ls.ping, 10);
    CHECK(strcmp(frames_out(&sv, RTWS_SERVER), ten_pongs) == 0);
    rtws_conn_free(&sv);
    /* one byte at a time, draining after each byte */
    open_server(&sv, &ls);
    n = ten_pings(f, 1);
    {
        char all[256] = "";
        for (i = 0; i < n; i++) {
            const char *s;
            rtws_conn_recv(&sv, f + i, 1, 1, NULL);
            s = frames_out(&sv, RTWS_SERVER);
            if (*s) {
                if (*all) strcat(all, "|");
                strcat(all, s);
            }
        }
        CHECK(strcmp(all, ten_pongs) == 0);
    }
    rtws_conn_free(&sv);
    /* in place (the host's path) */
    open_server(&sv, &ls);
    n = ten_pings(f, 1);
    rtws_conn_recv_inplace(&sv, f, n, 1);
    CHECK(strcmp(frames_out(&sv, RTWS_SERVER), ten_pongs) == 0);
    rtws_conn_free(&sv);
    /* the client role: masked pongs, same order */
    CHECK(open_client(&cl, &lc));
    n = ten_pings(f, 0);
    rtws_conn_recv(&cl, f, n, 1, NULL);
    CHECK_EQ(lc.ping, 10);
    CHECK(strcmp(frames_out(&cl, RTWS_CLIENT), ten_pongs) == 0);
    rtws_conn_free(&cl);
    /* 125-byte payloads: more than one round of cout, still in order */
    open_server(&sv, &ls);
    {
        uint8_t p[125];
        char want[2048] = "";
        n = 0;
        for (i = 0; i < 3; i++) {
            memset(p, 'a' + (int)i, sizeof p);
            n += mkframe(f + n, 0x89, p, sizeof p, 1);
            if (i) strcat(want, "|");
            strcat(want, "P:");
            strncat(want, (const char *)p, 125);
        }
        rtws_conn_recv(&sv, f, n, 1, NULL);
        CHECK(strcmp(frames_out(&sv, RTWS_SERVER), want) == 0);
    }
    rtws_conn_free(&sv);
}

/* Pings between the fragments of a message, and while output is half written. */
static void test_interleaved(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[1024];
    size_t n = 0;
    int i;
    open_server(&sv, &ls);
    n += mkframe(f + n, 0x01, "a", 1, 1);
    for (i = 0; i < 10; i++) {
        char d = (char)('0' + i);
        n += mkframe(f + n, 0x89, &d, 1, 1);
        n += mkframe(f + n, i == 9 ? 0x80 : 0x00, "b", 1, 1);
    }
    rtws_conn_recv(&sv, f, n, 1, NULL);
    CHECK_EQ(ls.msgs, 1);
    CHECK(ls.msg_len == 11 && memcmp(ls.msg, "abbbbbbbbbb", 11) == 0);
    CHECK(strcmp(frames_out(&sv, RTWS_SERVER), ten_pongs) == 0);
    rtws_conn_free(&sv);
    /* a data frame half written: the pongs wait for its end, then go in order */
    open_server(&sv, &ls);
    {
        static uint8_t big[70000];
        const uint8_t *p;
        size_t len;
        memset(big, 'x', sizeof big);
        CHECK_EQ(rtws_conn_send_binary(&sv, big, sizeof big), RTWS_OK);
        p = rtws_conn_out(&sv, &len);
        CHECK(p != NULL && len > 100);
        rtws_conn_out_done(&sv, 100);
        n = mkframe(f, 0x89, "0", 1, 1) + mkframe(f + 7, 0x89, "1", 1, 1);
        rtws_conn_recv(&sv, f, n, 1, NULL);
        p = rtws_conn_out(&sv, &len); /* the rest of the data frame comes first */
        CHECK(p != NULL && p[0] == 'x');
        rtws_conn_out_done(&sv, len);
        n = mkframe(f, 0x89, "2", 1, 1);
        rtws_conn_recv(&sv, f, n, 1, NULL);
        CHECK(strcmp(frames_out(&sv, RTWS_SERVER), "P:0|P:1|P:2") == 0);
        /* pongs promoted, one byte written, more pings: all in order */
        n = mkframe(f, 0x89, "3", 1, 1) + mkframe(f + 7, 0x89, "4", 1, 1);
        rtws_conn_recv(&sv, f, n, 1, NULL);
        p = rtws_conn_out(&sv, &len);
        CHECK(p != NULL && p[0] == 0x8A);
        rtws_conn_out_done(&sv, 1);
        n = mkframe(f, 0x89, "5", 1, 1);
        rtws_conn_recv(&sv, f, n, 1, NULL);
        buf[0] = 0x8A; /* the byte written above */
        CHECK(strcmp(frames_parse(take_out(&sv, 1), RTWS_SERVER), "P:3|P:4|P:5") == 0);
    }
    rtws_conn_free(&sv);
}

static size_t flood(uint8_t *f) {
    size_t n = 0, i;
    for (i = 0; i < 10000; i++) {
        char d[8];
        int k = snprintf(d, sizeof d, "%u", (unsigned)i);
        n += mkframe(f + n, 0x89, d, (size_t)k, 1);
    }
    return n;
}

/* 10,000 pings in one buffer while nothing is written: memory stays bounded,
   the first answers and the latest ping's answer go out, in order. */
static void test_flood(void) {
    rtws_conn sv;
    ev_log ls;
    static uint8_t f[10000 * 12];
    size_t n, base, i, pend;
    char want[512] = "";
    n = flood(f);
    for (i = 0; i < RTWS__PONGQ_MAX - 1; i++) {
        char d[16];
        snprintf(d, sizeof d, "%sP:%u", i ? "|" : "", (unsigned)i);
        strcat(want, d);
    }
    strcat(want, "|P:9999");
    open_server(&sv, &ls);
    base = peak = live;
    {   /* in place: nothing of the input is copied, so what grows is ours */
        rtws_conn_recv_inplace(&sv, f, n, 1);
        CHECK_EQ(ls.ping, 10000);
        pend = rtws_conn_out_pending(&sv);
        CHECK(pend > 0 && pend <= RTWS__PONGQ_BYTES + 5 * RTWS__PONGQ_MAX);
        CHECK(peak - base <= sizeof(rtws__ctl)); /* one control block, nothing per ping */
        CHECK(strcmp(frames_out(&sv, RTWS_SERVER), want) == 0);
    }
    rtws_conn_free(&sv);
    /* the same through rtws_conn_recv (copied into the receive buffer) */
    open_server(&sv, &ls);
    n = flood(f); /* (unmasked in place above) */
    rtws_conn_recv(&sv, f, n, 1, NULL);
    CHECK_EQ(ls.ping, 10000);
    CHECK(rtws_conn_out_pending(&sv) <= RTWS__PONGQ_BYTES + 5 * RTWS__PONGQ_MAX);
        CHECK(strcmp(frames_out(&sv, RTWS_SERVER), want) == 0);
    rtws_conn_free(&sv);
    /* big payloads fill the bytes first: still the latest answered, in order */
    open_server(&sv, &ls);
    {
        char p[126];
        const char *s, *last;
        int answered = 0;
        n = 0;
        for (i = 0; i < 100; i++) {
            memset(p, 'a' + (int)(i % 26), sizeof p);
            snprintf(p, sizeof p, "%03u", (unsigned)i);
            p[3] = '-';
            n += mkframe(f + n, 0x89, p, 125, 1);
        }
        rtws_conn_recv(&sv, f, n, 1, NULL);
        CHECK(rtws_conn_out_pending(&sv) <= RTWS__PONGQ_BYTES + 5 * RTWS__PONGQ_MAX);
        s = frames_out(&sv, RTWS_SERVER);
        CHECK(strncmp(s, "P:000-", 6) == 0 && strchr(s, 'X') == NULL);
        for (last = s; strstr(last + 1, "|P:"); last = strstr(last + 1, "|P:")) answered++;
        CHECK(answered >= 1 && answered < 10); /* a few, not 100 */
        CHECK(strncmp(last, "|P:099-", 7) == 0 && strlen(last) == 3 + 125);
    }
    rtws_conn_free(&sv);
    CHECK_EQ(live, 0);
}

/* Once our close is queued, pings are reported but not answered (§5.5.1). */
static void test_after_close(void) {
    rtws_conn sv;
    ev_log ls;
    uint8_t f[256];
    size_t n;
    open_server(&sv, &ls);
    CHECK_EQ(rtws_conn_close(&sv, 1000, NULL), RTWS_OK);
    n = ten_pings(f, 1);
    rtws_conn_recv(&sv, f, n, 1, NULL);
    CHECK_EQ(ls.ping, 10);
    CHECK(strcmp(frames_out(&sv, RTWS_SERVER), "C") == 0);
    rtws_conn_free(&sv);
    /* answers waiting when the close is queued go ahead of it, nothing after it */
    open_server(&sv, &ls);
    n = ten_pings(f, 1);
    rtws_conn_recv(&sv, f, n, 1, NULL);
    CHECK_EQ(rtws_conn_close(&sv, 1000, NULL), RTWS_OK);
    {
        char want[256];
        snprintf(want, sizeof want, "%s|C", ten_pongs);
        CHECK(strcmp(frames_out(&sv, RTWS_SERVER), want) == 0);
    }
    rtws_conn_free(&sv);
}

/* A ping and then a bad frame in one buffer: the pong still goes out before
   the 1002 close, as when the host drained between them (fuzz_http_body
   found the whole-buffer run dropping it). Both roles. */
static void test_fail_after_ping(void) {
    static const uint8_t bad[] = {0xff, 0x80, 0, 0, 0, 0}; /* RSV bits, opcode 0xF */
    int role;
    for (role = 0; role < 2; role++) {
        rtws_conn c;
        ev_log L;
        uint8_t f[256];
        size_t n, i;
        char whole[512], split[512] = "";
        int masked = role == 0;
        rtws_role who = role == 0 ? RTWS_SERVER : RTWS_CLIENT;
        if (role == 0) open_server(&c, &L);
        else if (!open_client(&c, &L)) { CHECK(0); continue; }
        n = ten_pings(f, masked);
        memcpy(f + n, bad, masked ? sizeof bad : 2);
        if (!masked) f[n + 1] = 0;
        n += masked ? sizeof bad : 2;
        rtws_conn_recv(&c, f, n, 1, NULL);
        snprintf(whole, sizeof whole, "%s", frames_out(&c, who));
        rtws_conn_free(&c);
        if (role == 0) open_server(&c, &L);
        else if (!open_client(&c, &L)) { CHECK(0); continue; }
        for (i = 0; i < n; i++) {
            const char *s;
            rtws_conn_recv(&c, f + i, 1, 1, NULL);
            s = frames_out(&c, who);
            if (*s) {
                if (*split) strcat(split, "|");
                strcat(split, s);
            }
        }
        rtws_conn_free(&c);
        {
            char want[256];
            snprintf(want, sizeof want, "%s|C", ten_pongs);
            CHECK(strcmp(whole, want) == 0);
            CHECK(strcmp(split, want) == 0);
        }
    }
}

int main(void) {
    test_order();
    test_interleaved();
    test_flood();
    test_after_close();
    test_fail_after_ping();
    return T_END();
}
