/* Issue 14, the router's memory per idle subscribed connection, sans-I/O:
   1,000 anonymous server connections each open, subscribed to one channel
   and trimmed (rtws_conn_trim); a counting allocator on the router and
   another on the connections give the heap each side keeps per connection.
   The router's part was 792 bytes in 5 blocks (rtws__rconn 384, its user
   128, its session 120, its presence entry 88, its membership 40, and the
   hash tables' buckets); then 494 (rconn 168, user 64 + its id); then 421
   (rconn 160, session 96, user 48 + its id, presence 48, membership 40,
   buckets at load 2); then 396 (session 75 + its id, user 44 + its id:
   ids follow their structs, the dedupe ring's counts in the ring's own
   block); now 335 (rconn 120: no list of its own, the endpoint an index,
   the auth deadline and a refused publish in its pend record; session 72
   with its id and user 56 with its id, each within a smaller block of
   glibc's malloc; presence 40, without its user pointer; hash tables at
   load 4). The bound is
   360: the 512 is for the whole connection, socket record included
   (bench/bench_router.c measures that). A connection that said hello (the 101, welcome, subscribed)
   holds no output chunk even before the trim: a spare kept until the trim
   left a hole among the long-lived records of the connections opened
   after it (measured: server RSS per connection at 10,000 went from
   1,384-1,662 to 1,070 bytes). Then a publish still reaches every
   subscriber, a presence status set on one of them is kept, and everything
   is given back. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#define N 1000

typedef struct counter {
    long long bytes, blocks;
} counter;
static counter RC, CC; /* the router's heap, the connections' heap */

static void *c_alloc(size_t n, void *u) {
    counter *k = (counter *)u;
    size_t *p = (size_t *)malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    k->bytes += (long long)n;
    k->blocks++;
    return (char *)p + 16;
}
static void c_free(void *q, void *u) {
    counter *k = (counter *)u;
    size_t *p;
    if (!q) return;
    p = (size_t *)(void *)((char *)q - 16);
    k->bytes -= (long long)p[0];
    k->blocks--;
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
static const uint64_t NOW = 5000;
static void ev(rtws_conn *c, const rtws_event *e, void *u) {
    (void)u;
    rtws_router_handle_event(R, c, e, NOW);
}
static int acc(rtws_conn *c, const rtws_http *req, const char **p, void *u) {
    (void)p;
    (void)u;
    return rtws_router_handle_accept(R, c, req, NOW);
}

static int n_away, n_online;
static void on_presence(const char *uid, const char *status, size_t conns, void *u) {
    (void)uid;
    (void)u;
    if (conns == 1 && !strcmp(status, "away for lunch")) n_away++;
    if (conns == 1 && !strcmp(status, "online")) n_online++;
}

/* c's output: the last cap - 1 bytes of it into last (NUL-terminated, NULs
   turned into spaces); returns how many times what occurs in all of it */
static int drain(rtws_conn *c, const char *what, char *last, size_t cap) {
    static char buf[8192];
    const uint8_t *o;
    size_t len, n = 0, i;
    int found = 0;
    while ((o = rtws_conn_out(c, &len)) != NULL) {
        size_t k = len < sizeof buf - 1 - n ? len : sizeof buf - 1 - n;
        memcpy(buf + n, o, k);
        n += k;
        rtws_conn_out_done(c, len);
    }
    for (i = 0; i < n; i++)
        if (!buf[i]) buf[i] = ' ';
    buf[n] = 0;
    if (what) {
        const char *p = buf;
        while ((p = strstr(p, what)) != NULL) {
            found++;
            p++;
        }
    }
    if (last && cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(last, buf + n - k, k);
        last[k] = 0;
    }
    return found;
}

static void send_text(rtws_conn *c, const char *js, int inplace) {
    uint8_t f[512];
    size_t n = strlen(js), fl = rtws_frame_header_encode(f, 1, RTWS_OP_TEXT, n, (const uint8_t *)"abcd");
    memcpy(f + fl, js, n);
    rtws_frame_mask(f + fl, n, (const uint8_t *)"abcd", 0);
    if (inplace) rtws_conn_recv_inplace(c, f, fl + n, NOW);
    else rtws_conn_recv(c, f, fl + n, NOW, NULL);
}

int main(void) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    rtws_router_config rc;
    rtws_config cfg;
    rtws_router_stats st;
    rtws_conn *cs = (rtws_conn *)calloc(N, sizeof *cs);
    long long r0, c0, rb, cb, rblk;
        int i, got = 0, subs = 0;
    size_t held = 0;
    memset(&rc, 0, sizeof rc);
    rc.allocator.alloc = c_alloc;
    rc.allocator.realloc = c_realloc;
    rc.allocator.free = c_free;
    rc.allocator.user = &RC;
    rc.max_presence = 1;
    R = rtws_router_new(&rc);
    CHECK(R != NULL);
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = ev;
    cfg.on_accept = acc;
    cfg.heartbeat_off = 1;
    cfg.deflate_off = 1;
    cfg.allocator = rc.allocator;
    cfg.allocator.user = &CC;
    /* the channel and the router's tables exist before the measured ones */
    rtws_conn_init(&cs[0], &cfg);
    rtws_conn_recv(&cs[0], req, sizeof req - 1, NOW, NULL);
    send_text(&cs[0], "{\"type\":\"subscribe\",\"channel\":\"room\"}", 0);
    drain(&cs[0], NULL, NULL, 0);
    rtws_conn_trim(&cs[0]);
    r0 = RC.bytes;
    c0 = CC.bytes;
    rblk = RC.blocks;
    for (i = 1; i < N; i++) {
        rtws_conn_init(&cs[i], &cfg);
        if (i == 1) { /* in place: no receive buffer, so what it holds is output */
            char copy[sizeof req];
            rtws_conn_stats cst;
            memcpy(copy, req, sizeof req);
            rtws_conn_recv_inplace(&cs[i], copy, sizeof req - 1, NOW);
            send_text(&cs[i], "{\"type\":\"subscribe\",\"channel\":\"room\"}", 1);
            subs += drain(&cs[i], "\"subscribed\"", NULL, 0);
            rtws_conn_get_stats(&cs[i], &cst);
            held = cst.buffer_cap;
        } else {
            rtws_conn_recv(&cs[i], req, sizeof req - 1, NOW, NULL);
            send_text(&cs[i], "{\"type\":\"subscribe\",\"channel\":\"room\"}", 0);
            subs += drain(&cs[i], "\"subscribed\"", NULL, 0);
        }
        rtws_conn_trim(&cs[i]);
    }
    CHECK_EQ(subs, N - 1);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.subscriptions, N);
    CHECK_EQ(st.active_connections, N);
    CHECK_EQ(R->npend, 0); /* anonymous: no pend record, nothing for the timer pass to walk */
    rb = (RC.bytes - r0) / (N - 1);
    cb = (CC.bytes - c0) / (N - 1);
    printf("router heap per idle subscribed connection: %lld bytes in %.2f blocks; the connection's "
           "own heap %lld bytes (sizeof(rtws_conn) %zu, not counted: the caller's)\n",
           rb, (double)(RC.blocks - rblk) / (N - 1), cb, sizeof(rtws_conn));
    printf("buffers a connection holds after its 101, welcome and subscribed, before the trim: %zu bytes\n",
           held);
    CHECK_EQ(held, 0); /* no spare output chunk kept (584 bytes before) */
    CHECK(rb <= 360);
    CHECK(rb > 0);
    /* the state still does its work: a publish reaches everyone */
    CHECK(rtws_router_publish(R, "room", "message", "{\"a\":1}", 7, NULL, NOW));
    for (i = 0; i < N; i++) got += drain(&cs[i], "{\"a\":1}", NULL, 0);
    CHECK_EQ(got, N);
    /* a presence status of one connection, seen by a presence query */
    send_text(&cs[7], "{\"type\":\"presence\",\"channel\":\"room\",\"status\":\"away for lunch\"}", 0);
    drain(&cs[7], NULL, NULL, 0);
    CHECK_EQ(rtws_router_get_presence(R, "room", on_presence, NULL), N);
    CHECK_EQ(n_away, 1);
    CHECK_EQ(n_online, N - 1);
    for (i = 0; i < N; i++) rtws_conn_free(&cs[i]);
    rtws_router_free(R);
    CHECK_EQ(RC.bytes, 0);
    CHECK_EQ(RC.blocks, 0);
    CHECK_EQ(CC.bytes, 0);
    free(cs);
    return T_END();
}
