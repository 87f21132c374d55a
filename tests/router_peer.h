/* tests/router_peer.h - the sans-I/O harness the router unit tests share:
   a router R on a fake clock NOW, in-memory peers (a client rtws_conn joined
   to a server rtws_conn by copying bytes), pump() to move bytes both ways,
   peer_open(p, path) to open one (peer_open_auth with an Authorization
   header), say() to send a text, find()/HAS()/LAST() to look at what came
   back, peer_close(). Include after rtws.h and t.h; define ROUTER_PEER_MSG
   first for room for longer messages (1024 bytes each by default). */
#ifndef RTWS_TESTS_ROUTER_PEER_H
#define RTWS_TESTS_ROUTER_PEER_H
#include <stdlib.h>
#include <string.h>
#if defined(__GNUC__)
#define ROUTER_PEER_MAYBE_UNUSED __attribute__((unused)) /* not every test uses each */
#else
#define ROUTER_PEER_MAYBE_UNUSED
#endif
#ifndef ROUTER_PEER_MSG
#define ROUTER_PEER_MSG 1024
#endif

static rtws_router *R;
static uint64_t NOW = 1000;

typedef struct peer {
    rtws_conn cl, sv;
    char msgs[64][ROUTER_PEER_MSG]; /* messages the client received, oldest first */
    int bin[64];         /* 1: that one was binary */
    int n, closed;
    unsigned close_code;
} peer;

static void sv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    rtws_router_handle_event(R, c, ev, NOW);
}
static int sv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    (void)proto;
    (void)user;
    return rtws_router_handle_accept(R, c, req, NOW);
}
static ROUTER_PEER_MAYBE_UNUSED int sv_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    (void)user;
    return rtws_router_handle_http(R, c, req, rep, NOW);
}
static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)user;
    (void)c;
    if (ev->type == RTWS_EV_MESSAGE && p->n < 64) {
        size_t k = ev->message.len < ROUTER_PEER_MSG - 1 ? ev->message.len : ROUTER_PEER_MSG - 1;
        memcpy(p->msgs[p->n], ev->message.data, k);
        p->msgs[p->n][k] = 0;
        p->bin[p->n] = ev->message.opcode == RTWS_OP_BINARY;
        p->n++;
    }
    if (ev->type == RTWS_EV_CLOSE) {
        p->closed = 1;
        p->close_code = ev->close.code;
    }
}

static void move(rtws_conn *a, rtws_conn *b) {
    const uint8_t *o;
    size_t len;
    static uint8_t tmp[1 << 20];
    while ((o = rtws_conn_out(a, &len)) != NULL) {
        if (len > sizeof tmp) len = sizeof tmp;
        memcpy(tmp, o, len);
        rtws_conn_out_done(a, len);
        rtws_conn_recv(b, tmp, len, NOW, NULL);
    }
}
static void pump(peer *p) {
    int i;
    for (i = 0; i < 4; i++) {
        move(&p->cl, &p->sv);
        move(&p->sv, &p->cl);
    }
}

static int rnd(void *buf, size_t n, void *u) {
    static unsigned s = 11;
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) ((unsigned char *)buf)[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
    return 0;
}

static void peer_open_auth(peer *p, const char *path, const char *auth) {
    rtws_config cc, sc;
    rtws_client_opts o;
    memset(p, 0, sizeof *p);
    memset(&cc, 0, sizeof cc);
    memset(&sc, 0, sizeof sc);
    cc.role = RTWS_CLIENT;
    cc.on_event = cl_event;
    cc.user = p;
    cc.random = rnd;
    cc.heartbeat_off = sc.heartbeat_off = 1;
    sc.role = RTWS_SERVER;
    sc.on_event = sv_event;
    sc.on_accept = sv_accept;
    sc.on_http = sv_http;
    rtws_conn_init(&p->cl, &cc);
    rtws_conn_init(&p->sv, &sc);
    memset(&o, 0, sizeof o);
    o.host = "x";
    o.path = path;
    o.authorization = auth;
    rtws_conn_start(&p->cl, &o, NOW);
    pump(p);
}
/* R freed (if any) and made again from rc */
static ROUTER_PEER_MAYBE_UNUSED void router_reset(const rtws_router_config *rc) {
    if (R) rtws_router_free(R);
    R = rtws_router_new(rc);
}
/* "/ws", this harness's random source, small limits (history 4, 3 channels,
   2 connections per user) that the tests run into on purpose */
static ROUTER_PEER_MAYBE_UNUSED rtws_router_config base_cfg(void) {
    rtws_router_config rc;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.random = rnd;
    rc.history = 4;
    rc.max_channels = 3;
    rc.max_conns_per_user = 2;
    return rc;
}

static ROUTER_PEER_MAYBE_UNUSED void peer_open(peer *p, const char *path) { peer_open_auth(p, path, NULL); }

static ROUTER_PEER_MAYBE_UNUSED void say(peer *p, const char *text) {
    rtws_conn_send_text(&p->cl, text, strlen(text));
    pump(p);
}

/* index of the first message (from `from`) containing needle, or -1 */
static ROUTER_PEER_MAYBE_UNUSED int find(const peer *p, int from, const char *needle) {
    int i;
    for (i = from; i < p->n; i++)
        if (strstr(p->msgs[i], needle)) return i;
    return -1;
}
#define HAS(p, s) (find(p, 0, s) >= 0)
#define LAST(p) ((p)->n ? (p)->msgs[(p)->n - 1] : "")

static ROUTER_PEER_MAYBE_UNUSED void peer_close(peer *p) {
    rtws_conn_close(&p->cl, 1000, NULL);
    pump(p);
    rtws_conn_free(&p->cl);
    rtws_conn_free(&p->sv);
}

#endif
