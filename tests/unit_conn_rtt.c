/* Layer 3 (rtws_conn), issue 13: the round trip of any ping. A pong that
   answers one of rtws_conn_ping's pings carries matched and rtt_ms and feeds
   the stats; pongs are matched by payload against the 4 newest pings sent,
   for peers that answer every ping in order and for peers that answer only
   the latest; a server keeps its control block only while such a ping waits.
   Time is whatever now_ms the test passes: no clock. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdio.h>

typedef struct ev_log {
    int pong, matched;
    uint32_t rtt;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    (void)c;
    if (ev->type != RTWS_EV_PONG) return;
    L->pong++;
    L->matched = ev->pong.matched;
    L->rtt = ev->pong.rtt_ms;
}

static rtws_config mkcfg(ev_log *L, int heartbeat) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = L;
    cfg.heartbeat_off = !heartbeat;
    cfg.ping_interval_ms = 30000;
    return cfg;
}

static void open_server(rtws_conn *sv, ev_log *L, int heartbeat) {
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    rtws_config cfg = mkcfg(L, heartbeat);
    const uint8_t *p;
    size_t len;
    memset(L, 0, sizeof *L);
    rtws_conn_init(sv, &cfg);
    rtws_conn_recv(sv, req, sizeof req - 1, 0, NULL);
    while ((p = rtws_conn_out(sv, &len)) != NULL) rtws_conn_out_done(sv, len);
}

/* The server's output as "payload|payload" of its ping frames ("?" for
   anything else). */
static char wire[1024];
static size_t wire_n; /* bytes of wire (payloads may hold zero bytes) */
static const char *drain(rtws_conn *sv) {
    uint8_t b[2048];
    const uint8_t *p;
    size_t len, n = 0, off = 0, w = 0;
    while ((p = rtws_conn_out(sv, &len)) != NULL) {
        if (n + len > sizeof b) break;
        memcpy(b + n, p, len);
        n += len;
        rtws_conn_out_done(sv, len);
    }
    wire[0] = 0;
    while (off + 2 <= n && w + 130 < sizeof wire) {
        size_t pl = b[off + 1] & 127u;
        if (w) wire[w++] = '|';
        if (b[off] != 0x89 || off + 2 + pl > n) {
            wire[w++] = '?';
            break;
        }
        memcpy(wire + w, b + off + 2, pl);
        w += pl;
        off += 2 + pl;
    }
    wire[w] = 0;
    wire_n = w;
    return wire;
}

/* A masked pong, as a client sends it, fed at now. */
static void pong(rtws_conn *sv, const char *payload, uint64_t now) {
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    uint8_t f[140];
    size_t len = strlen(payload), n = rtws_frame_header_encode(f, 1, RTWS_OP_PONG, len, key);
    memcpy(f + n, payload, len);
    rtws_frame_mask(f + n, len, key, 0);
    rtws_conn_recv(sv, f, n + len, now, NULL);
}

static void ping_at(rtws_conn *sv, const char *payload, uint64_t now) {
    rtws_conn_run_timers(sv, now); /* the connection's now_ms */
    CHECK_EQ(rtws_conn_ping(sv, payload, strlen(payload)), RTWS_OK);
}

static void test_one(void) {
    rtws_conn sv;
    ev_log L;
    rtws_conn_stats st;
    open_server(&sv, &L, 0);
    ping_at(&sv, "a", 1000);
    CHECK(strcmp(drain(&sv), "a") == 0);
    CHECK(sv.priv_.ctl != NULL); /* a server keeps its block while the ping waits */
    rtws_conn_trim(&sv);
    CHECK(sv.priv_.ctl != NULL);
    pong(&sv, "a", 1042);
    CHECK_EQ(L.pong, 1);
    CHECK_EQ(L.matched, 1);
    CHECK_EQ(L.rtt, 42);
    rtws_conn_get_stats(&sv, &st);
    CHECK_EQ(st.rtt_last_ms, 42);
    CHECK_EQ(st.rtt_min_ms, 42);
    CHECK_EQ(st.rtt_avg_ms, 42);
    CHECK_EQ(st.rtt_samples, 1);
    rtws_conn_trim(&sv);
    CHECK(sv.priv_.ctl == NULL); /* nothing waits: the block goes back */
    /* the same pong again, or an unsolicited one (§5.5.3): no match */
    pong(&sv, "a", 1050);
    CHECK_EQ(L.pong, 2);
    CHECK_EQ(L.matched, 0);
    CHECK_EQ(L.rtt, 0);
    pong(&sv, "zz", 1060);
    CHECK_EQ(L.matched, 0);
    /* an empty payload works like any other; a 0 ms round trip is matched */
    ping_at(&sv, "", 1100);
    CHECK(strcmp(drain(&sv), "") == 0);
    pong(&sv, "", 1100);
    CHECK_EQ(L.matched, 1);
    CHECK_EQ(L.rtt, 0);
    rtws_conn_get_stats(&sv, &st);
    CHECK_EQ(st.rtt_samples, 2);
    CHECK_EQ(st.rtt_min_ms, 0);
    CHECK_EQ(st.rtt_avg_ms, 21);
    rtws_conn_free(&sv);
}

/* several pings waiting, distinct payloads: in order, or only the latest */
static void test_many(void) {
    rtws_conn sv;
    ev_log L;
    rtws_conn_stats st;
    open_server(&sv, &L, 0);
    ping_at(&sv, "1", 2000);
    drain(&sv);
    ping_at(&sv, "2", 2010);
    drain(&sv);
    ping_at(&sv, "3", 2020);
    CHECK(strcmp(drain(&sv), "3") == 0);
    pong(&sv, "1", 2100);
    CHECK(L.matched == 1 && L.rtt == 100);
    pong(&sv, "2", 2100);
    CHECK(L.matched == 1 && L.rtt == 90);
    pong(&sv, "3", 2101);
    CHECK(L.matched == 1 && L.rtt == 81);
    /* a peer answering only the latest: its pong matches, the older pings
       are forgotten (their late pongs match nothing) */
    ping_at(&sv, "x", 3000);
    drain(&sv);
    ping_at(&sv, "y", 3010);
    drain(&sv);
    ping_at(&sv, "z", 3020);
    drain(&sv);
    pong(&sv, "z", 3050);
    CHECK(L.matched == 1 && L.rtt == 30);
    pong(&sv, "x", 3060);
    CHECK_EQ(L.matched, 0);
    pong(&sv, "y", 3060);
    CHECK_EQ(L.matched, 0);
    CHECK_EQ(sv.priv_.ctl->uping_n, 0);
    /* equal payloads answered in order: each pong takes the oldest */
    ping_at(&sv, "e", 4000);
    drain(&sv);
    ping_at(&sv, "e", 4010);
    drain(&sv);
    pong(&sv, "e", 4030);
    CHECK(L.matched == 1 && L.rtt == 30);
    pong(&sv, "e", 4031);
    CHECK(L.matched == 1 && L.rtt == 21);
    pong(&sv, "e", 4032);
    CHECK_EQ(L.matched, 0);
    /* five waiting: the oldest is forgotten, the other four match */
    ping_at(&sv, "a", 5000);
    drain(&sv);
    ping_at(&sv, "b", 5001);
    drain(&sv);
    ping_at(&sv, "c", 5002);
    drain(&sv);
    ping_at(&sv, "d", 5003);
    drain(&sv);
    ping_at(&sv, "f", 5004);
    drain(&sv);
    pong(&sv, "a", 5100);
    CHECK_EQ(L.matched, 0);
    pong(&sv, "b", 5100);
    CHECK(L.matched == 1 && L.rtt == 99);
    pong(&sv, "f", 5100);
    CHECK(L.matched == 1 && L.rtt == 96);
    rtws_conn_get_stats(&sv, &st);
    CHECK_EQ(st.rtt_samples, 3 + 1 + 2 + 2);
    CHECK_EQ(st.rtt_last_ms, 96);
    rtws_conn_free(&sv);
}

/* a ping not yet written: replaced by the next one, never matched itself */
static void test_unsent(void) {
    rtws_conn sv;
    ev_log L;
    open_server(&sv, &L, 0);
    ping_at(&sv, "p", 6000);
    pong(&sv, "p", 6001); /* nothing was sent yet: not an answer */
    CHECK_EQ(L.matched, 0);
    ping_at(&sv, "q", 6005);
    CHECK(strcmp(drain(&sv), "q") == 0); /* one ping on the wire, the latest */
    pong(&sv, "p", 6010);
    CHECK_EQ(L.matched, 0);
    pong(&sv, "q", 6015);
    CHECK(L.matched == 1 && L.rtt == 10);
    CHECK_EQ(sv.priv_.ctl->uping_n, 0);
    rtws_conn_free(&sv);
}

/* the heartbeat still measures its own pings, and replaces an unsent
   rtws_conn_ping (whose pong then matches nothing) */
static void test_heartbeat(void) {
    rtws_conn sv;
    ev_log L;
    char hb[9];
    unsigned i;
    uint64_t t = 30000;
    open_server(&sv, &L, 1);
    ping_at(&sv, "h", 29000);
    rtws_conn_run_timers(&sv, t); /* 30 s of silence: the heartbeat's ping */
    drain(&sv);
    CHECK_EQ(wire_n, 8); /* one ping, the heartbeat's: the unsent "h" gave way */
    CHECK(sv.priv_.ctl == NULL); /* and nothing waits: the block went back */
    pong(&sv, "h", 30005);
    CHECK_EQ(L.matched, 0);
    for (i = 0; i < 8; i++) hb[i] = (char)(uint8_t)(t >> (56 - 8 * i));
    hb[8] = 0;
    {
        /* the heartbeat payload has zero bytes: build the pong by hand */
        static const uint8_t key[4] = {1, 2, 3, 4};
        uint8_t f[32];
        size_t n = rtws_frame_header_encode(f, 1, RTWS_OP_PONG, 8, key);
        memcpy(f + n, hb, 8);
        rtws_frame_mask(f + n, 8, key, 0);
        rtws_conn_recv(&sv, f, n + 8, 30007, NULL);
    }
    CHECK(L.matched == 1 && L.rtt == 7);
    /* after a sent app ping, a heartbeat and the app ping both match */
    ping_at(&sv, "k", 70000);
    drain(&sv);
    pong(&sv, "k", 70003);
    CHECK(L.matched == 1 && L.rtt == 3);
    rtws_conn_free(&sv);
}

int main(void) {
    test_one();
    test_many();
    test_unsent();
    test_heartbeat();
    return T_END();
}
