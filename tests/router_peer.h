/* tests/router_peer.h - the sans-I/O harness the router unit tests share:
   a router R on a fake clock NOW, in-memory peers (a client rtws_conn joined
   to a server rtws_conn by copying bytes), pump() to move bytes both ways,
   peer_open(p, path) to open one. Include after rtws.h and t.h. */
#ifndef RTWS_TESTS_ROUTER_PEER_H
#define RTWS_TESTS_ROUTER_PEER_H
#include <stdlib.h>

static rtws_router *R;
static uint64_t NOW = 1000;

typedef struct peer {
    rtws_conn cl, sv;
    char msgs[64][1024]; /* messages the client received, oldest first */
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
static int sv_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    (void)user;
    return rtws_router_handle_http(R, c, req, rep, NOW);
}
static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)user;
    (void)c;
    if (ev->type == RTWS_EV_MESSAGE && p->n < 64) {
        size_t k = ev->message.len < 1023 ? ev->message.len : 1023;
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
    static uint8_t tmp[1 << 16];
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

static void peer_open(peer *p, const char *path) {
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
    rtws_conn_start(&p->cl, &o, NOW);
    pump(p);
}

#endif
