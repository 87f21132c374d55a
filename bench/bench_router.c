/* bench_router - the router's fan-out and the memory of idle subscribed
   connections, measured in one process (-O2, no sanitizers):
   1. one publish to N subscribers, sans-I/O (in-memory server connections),
      median of repeated publishes: microseconds per publish and deliveries/s;
   2. N real clients on 127.0.0.1 subscribed to one channel and idle: heap
      bytes the server side holds per connection (a counting allocator on the
      server context and router), after the idle trim.
   usage: ./bench_router [N [IDLE_N]]   (default 5000; IDLE_N: the clients
   of part 2, default N up to 8000: both ends of every connection are in this
   process, so IDLE_N needs 2 x IDLE_N file descriptors) */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* counting allocator: a size header in front of every block */
static long long live_bytes;
static void *c_alloc(size_t n, void *u) {
    size_t *p = (size_t *)malloc(n + 16);
    (void)u;
    if (!p) return NULL;
    p[0] = n;
    live_bytes += (long long)n;
    return (char *)p + 16;
}
static void c_free(void *q, void *u) {
    size_t *p;
    (void)u;
    if (!q) return;
    p = (size_t *)(void *)((char *)q - 16);
    live_bytes -= (long long)p[0];
    free(p);
}
static void *c_realloc(void *q, size_t n, void *u) {
    void *r;
    size_t old;
    if (!q) return c_alloc(n, u);
    old = *(size_t *)(void *)((char *)q - 16);
    r = c_alloc(n, u);
    if (!r) return NULL;
    memcpy(r, q, old < n ? old : n);
    c_free(q, u);
    return r;
}

static rtws_router *R;
static void ev(rtws_conn *c, const rtws_event *e, void *u) {
    (void)u;
    rtws_router_handle_event(R, c, e, 1);
}
static int acc(rtws_conn *c, const rtws_http *req, const char **p, void *u) {
    (void)p;
    (void)u;
    return rtws_router_handle_accept(R, c, req, 1);
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void drain(rtws_conn *c) {
    size_t len;
    while (rtws_conn_out(c, &len)) rtws_conn_out_done(c, len);
}

static void fanout(int n) {
    rtws_router_config rc;
    rtws_config cfg;
    rtws_conn *cs = (rtws_conn *)calloc((size_t)n, sizeof *cs);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    static const char js[] = "{\"type\":\"subscribe\",\"channel\":\"wide\"}";
    static const char data[] = "{\"text\":\"a typical chat line of some sixty bytes, give or take\"}";
    uint8_t f[64];
    size_t fl = rtws_frame_header_encode(f, 1, RTWS_OP_TEXT, sizeof js - 1, (const uint8_t *)"abcd");
    double t[201];
    int i, k;
    memcpy(f + fl, js, sizeof js - 1);
    rtws_frame_mask(f + fl, sizeof js - 1, (const uint8_t *)"abcd", 0);
    memset(&rc, 0, sizeof rc);
    rc.max_presence = 10;
    R = rtws_router_new(&rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = ev;
    cfg.on_accept = acc;
    cfg.heartbeat_off = 1;
    for (i = 0; i < n; i++) {
        rtws_conn_init(&cs[i], &cfg);
        rtws_conn_recv(&cs[i], req, sizeof req - 1, 1, NULL);
        rtws_conn_recv(&cs[i], f, fl + sizeof js - 1, 1, NULL);
        drain(&cs[i]);
    }
    for (k = 0; k < 201; k++) {
        double t0 = now_us();
        if (!rtws_router_publish(R, "wide", "message", data, sizeof data - 1, "bench", 1)) {
            printf("publish failed\n");
            exit(1);
        }
        t[k] = now_us() - t0;
        for (i = 0; i < n; i++) drain(&cs[i]); /* the sockets' part, not timed */
    }
    qsort(t, 201, sizeof t[0], cmpd);
    printf("fan-out: one publish (%zu-byte data) to %d subscribers: median %.0f us, p90 %.0f us "
           "= %.1f M deliveries/s (encode once, one shared frame queued per subscriber)\n",
           sizeof data - 1, n, t[100], t[180], n / t[100]);
    for (i = 0; i < n; i++) rtws_conn_free(&cs[i]);
    rtws_router_free(R);
    free(cs);
}

static void idle_memory(int n) {
    rtws_router_config rc;
    rtws_ctx_config sc, cc;
    rtws_ctx *sv, *cl;
    rtws_router *r;
    rtws_rt **rts = (rtws_rt **)calloc((size_t)n, sizeof *rts);
    struct pollfd *f = (struct pollfd *)calloc((size_t)(2 * n + 16), sizeof *f);
    int port, i;
    long long base;
    char url[64];
    uint64_t until;
    memset(&rc, 0, sizeof rc);
    rc.allocator.alloc = c_alloc;
    rc.allocator.realloc = c_realloc;
    rc.allocator.free = c_free;
    rc.max_presence = 10;
    r = rtws_router_new(&rc);
    memset(&sc, 0, sizeof sc);
    sc.conn.allocator = rc.allocator;
    rtws_router_install(r, &sc);
    sv = rtws_ctx_new(&sc);
    if (rtws_ctx_listen(sv, "127.0.0.1", 0, &port) != RTWS_OK) exit(1);
    memset(&cc, 0, sizeof cc);
    cl = rtws_ctx_new(&cc);
    base = live_bytes;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < n; i++) {
        rtws_rt_config c;
        memset(&c, 0, sizeof c);
        c.client.url = url;
        rts[i] = rtws_rt_new(cl, &c, rtws_time_now_ms(), NULL);
        rtws_rt_subscribe(rts[i], "room", NULL, NULL);
    }
    until = rtws_time_now_ms() + 4000; /* connect, subscribe, then sit idle past the trim */
    while (rtws_time_now_ms() < until) {
        int na = rtws_ctx_fill_pollfds(sv, f, n + 8), nb = rtws_ctx_fill_pollfds(cl, f + na, n + 8);
        poll(f, (nfds_t)(na + nb), 10);
        rtws_ctx_service(sv, f, na, rtws_time_now_ms());
        rtws_ctx_service(cl, f + na, nb, rtws_time_now_ms());
    }
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        printf("idle: %zu subscribed connections; server heap %lld bytes = %lld bytes per connection "
               "(rtws_conn %zu of it; kernel socket buffers not counted)\n",
               st.subscriptions, live_bytes - base, (live_bytes - base) / (long long)(st.subscriptions ? st.subscriptions : 1),
               sizeof(rtws_conn));
    }
    for (i = 0; i < n; i++) rtws_rt_free(rts[i]);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
    free(rts);
    free(f);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    fanout(n);
    idle_memory(argc > 2 ? atoi(argv[2]) : n < 8000 ? n : 8000);
    return 0;
}
