/* Big messages through real sockets (127.0.0.1): echoes of 100 KB, 300 KB
   and 1 MiB with four in flight (compressed on two connections, not on the
   third), so the host's direct write of big frames
   meets full socket buffers and partial writes, and frames under 256 KiB
   take it once per connection and pass (checked on its own first, on a
   socket pair); every echo is checked byte for byte.
   Reads of a connection whose own big buffer holds nothing go to the
   context's big scratch buffer (an incomplete frame's tail is kept in the
   own one). Then the connections go quiet: the idle trim gives their
   buffers to the context's pool, and the pool (and the big scratch buffer)
   give them back to the allocator, which is then asked to give the
   freed pages back to the system (glibc's malloc_trim). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#define N_CONNS 3
#define PER_CONN 24

typedef struct peer {
    int sent, got, bad, opened;
} peer;

static rtws_conn *server_conns[N_CONNS];
static int n_server_conns;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_OPEN && n_server_conns < N_CONNS) {
        /* a small send buffer on some: the direct writes come up short */
        int small = 65536;
        if (n_server_conns > 0)
            setsockopt(rtws_conn_get_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        server_conns[n_server_conns++] = c;
    }
    if (ev->type == RTWS_EV_CLOSE) {
        int i;
        for (i = 0; i < n_server_conns; i++)
            if (server_conns[i] == c) server_conns[i] = NULL;
    }
    if (ev->type == RTWS_EV_MESSAGE)
        CHECK_EQ(rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len), RTWS_OK);
}

static size_t msg_size(int k) { return k % 3 == 2 ? 100000 : k % 3 ? (size_t)1 << 20 : 300000; }
static uint8_t msg_byte(int k, size_t i) { return (uint8_t)(i * 31 + (size_t)k * 7 + (i >> 12)); }

static uint8_t *scratch;
static void send_next(rtws_conn *c, peer *p) {
    size_t n = msg_size(p->sent), i;
    for (i = 0; i < n; i++) scratch[i] = msg_byte(p->sent, i);
    if (rtws_conn_send_binary(c, scratch, n) == RTWS_OK) p->sent++;
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)rtws_conn_get_data(c);
    (void)user;
    if (!p) return;
    if (ev->type == RTWS_EV_OPEN) {
        p->opened = 1;
        while (p->sent < 4) send_next(c, p); /* four in flight */
    }
    if (ev->type == RTWS_EV_MESSAGE) {
        size_t i, n = msg_size(p->got), bad = 0;
        if (ev->message.len != n) bad++;
        for (i = 0; i < n && i < ev->message.len; i++)
            if (ev->message.data[i] != msg_byte(p->got, i)) bad++;
        if (bad) p->bad++;
        p->got++;
        if (p->sent < PER_CONN) send_next(c, p);
    }
}

static void run(rtws_ctx *a, rtws_ctx *b, rtws_ctx *c, int ms, int (*cond)(void), int step_ms) {
    struct pollfd fds[96];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(cond && cond())) {
        int na = rtws_ctx_fill_pollfds(a, fds, 32), nb = rtws_ctx_fill_pollfds(b, fds + na, 32);
        int nc = rtws_ctx_fill_pollfds(c, fds + na + nb, 32);
        poll(fds, (nfds_t)(na + nb + nc), step_ms);
        rtws_ctx_service(a, fds, na, rtws_time_now_ms());
        rtws_ctx_service(b, fds + na, nb, rtws_time_now_ms());
        rtws_ctx_service(c, fds + na + nb, nc, rtws_time_now_ms());
    }
}

static peer peers[N_CONNS];
static int all_got(void) {
    int i;
    for (i = 0; i < N_CONNS; i++)
        if (peers[i].got < PER_CONN) return 0;
    return 1;
}

/* The host's direct write (rtws__sock_direct) on a socket pair: a frame
   under RTWS__DIRECT_ALWAYS goes out directly once per connection and pass
   (the next one is left to the queue, 0 taken), a bigger one every time;
   the end of the pass (rtws__flush_dirty) allows it again. */
static void test_direct_once_per_pass(void) {
    static uint8_t hdr[10], body[300000];
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    rtws__sock s;
    rtws_iov v[2];
    int sv[2], big = 1 << 21;
    memset(&cfg, 0, sizeof cfg);
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (!ctx) return;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.fd = sv[0];
    v[0].base = hdr, v[0].len = sizeof hdr;
    v[1].base = body, v[1].len = 100000;
    CHECK(rtws__sock_direct(&s.conn, v, 2) > 0); /* the first of the pass */
    CHECK(s.kind & RTWS__SOCK_DIRECT);
    CHECK(ctx->dirty == &s); /* so that the end of the pass clears it */
    CHECK_EQ(rtws__sock_direct(&s.conn, v, 2), (size_t)0); /* the second: queued */
    v[1].len = RTWS__DIRECT_ALWAYS;
    CHECK(rtws__sock_direct(&s.conn, v, 2) > 0); /* a big one: every time */
    s.dead = 1; /* (no connection behind it to flush) */
    rtws__flush_dirty(ctx, 0);
    s.dead = 0;
    CHECK(!(s.kind & RTWS__SOCK_DIRECT) && ctx->dirty == NULL);
    v[1].len = 100000;
    CHECK(rtws__sock_direct(&s.conn, v, 2) > 0); /* the next pass: direct again */
    ctx->dirty = NULL;
    close(sv[0]);
    close(sv[1]);
    rtws_ctx_free(ctx);
}

/* The ask to give memory back is made at most once per trim_ms: one held
   back sets the timer pass's deadline for when it may go (a context with
   nothing else to wake it still asks), and a context with buffer_pool_off
   counts the big blocks that go back just as one with a pool (it keeps
   none and lends none) */
static void test_ask_timing(void) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    rtws_conn c;
    rtws__conn_io io;
    uint64_t t = 1000000;
    memset(&cfg, 0, sizeof cfg);
    cfg.trim_ms = 100;
    cfg.timer_ms = 10;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    if (!ctx) return;
    ctx->pool.released = RTWS__TRIM_RELEASED; /* a burst went back */
    rtws_ctx_run_timers(ctx, t);
    CHECK_EQ(ctx->pool.released, 0);
    CHECK_EQ(ctx->mtrim_at, t);
    CHECK_EQ(rtws_ctx_get_timeout_ms(ctx, t), -1); /* nothing left to do */
    ctx->pool.released = RTWS__TRIM_RELEASED; /* a second one, 20 ms later, */
    ctx->next_scan = t + 20;                  /* (its pool's deadline woke the pass) */
    rtws_ctx_run_timers(ctx, t + 20);
    CHECK_EQ(ctx->pool.released, RTWS__TRIM_RELEASED); /* held back... */
    CHECK_EQ(rtws_ctx_get_timeout_ms(ctx, t + 20), 80); /* ...until t + 100 */
    rtws_ctx_run_timers(ctx, t + 100);
    CHECK_EQ(ctx->pool.released, 0);
    CHECK_EQ(ctx->mtrim_at, t + 100);
#if defined(RTWS__MALLOC_TRIM)
    CHECK_EQ(ctx->mtrims, 2);
#else
    CHECK_EQ(ctx->mtrims, 0);
#endif
    rtws_ctx_free(ctx);

    cfg.buffer_pool_off = 1;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    if (!ctx) return;
    CHECK(ctx->io.pool == &ctx->pool && ctx->pool.budget == 0);
    memset(&c, 0, sizeof c);
    io = ctx->io;
    c.priv_.io_ = &io;
    CHECK(!rtws__conn_lends(&c)); /* no compressor lent per message */
    c.priv_.cfg = &ctx->conn_cfg[0];
    rtws__buf_drop(&c, malloc(100000), 100000); /* freed at once, and counted */
    rtws__buf_drop(&c, malloc(1000), 1000);     /* (small blocks are not) */
    CHECK_EQ(ctx->pool.released, 100000);
    CHECK_EQ(ctx->pool.nblk, 0);
    io.pool = NULL;
    CHECK(!rtws__conn_lends(&c));
    rtws_ctx_free(ctx);
    cfg.buffer_pool_off = 0;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    if (!ctx) return;
    io = ctx->io;
    c.priv_.io_ = &io;
    CHECK(rtws__conn_lends(&c));
    rtws_ctx_free(ctx);
}

/* A read that fills the big scratch buffer asks for twice as much next
   time (up to RTWS__READ_MAX), one that takes under a quarter of the offer
   for half: 64 KiB echoes two in flight read 131,100 bytes whole into a
   256 KiB buffer rather than 131,072 and then 28 */
static void test_lent_hint(void) {
    rtws_conn c;
    memset(&c, 0, sizeof c);
    c.priv_.rhint = RTWS__RBUF_MIN;
    rtws__lent_hint(&c, 131072, 131072);
    CHECK_EQ(c.priv_.rhint, 262144u);
    rtws__lent_hint(&c, 131100, 262144); /* not filled, over a quarter: kept */
    CHECK_EQ(c.priv_.rhint, 262144u);
    rtws__lent_hint(&c, (size_t)2 << 20, (size_t)2 << 20);
    CHECK_EQ(c.priv_.rhint, RTWS__READ_MAX);
    rtws__lent_hint(&c, (size_t)2 << 20, (size_t)2 << 20); /* no further */
    CHECK_EQ(c.priv_.rhint, RTWS__READ_MAX);
    rtws__lent_hint(&c, 1000, (size_t)2 << 20);
    CHECK_EQ(c.priv_.rhint, RTWS__READ_MAX / 2);
    c.priv_.rhint = RTWS__RBUF_MIN;
    rtws__lent_hint(&c, 10, 65536); /* never under the first offer */
    CHECK_EQ(c.priv_.rhint, RTWS__RBUF_MIN);
}

int main(void) {
    rtws_ctx_config sc, cc;
    rtws_ctx *sv, *cl, *raw;
    int port = 0, i, bad = 0, got = 0;
    uint64_t t_start;
    char url[64];
    test_direct_once_per_pass();
    test_ask_timing();
    test_lent_hint();
    scratch = (uint8_t *)malloc((size_t)1 << 20);
    memset(&sc, 0, sizeof sc);
    sc.conn.on_event = srv_event;
    sc.timer_ms = 10;
    sc.trim_ms = 100;
    /* compressed echoes; without takeover trim frees the codecs too */
    sc.conn.deflate_own_no_takeover = sc.conn.deflate_peer_no_takeover = 1;
    memset(&cc, 0, sizeof cc);
    cc.conn.on_event = cli_event;
    cc.timer_ms = 10;
    cc.trim_ms = 100;
    sv = rtws_ctx_new(&sc);
    cl = rtws_ctx_new(&cc);
    cc.conn.deflate_off = 1; /* the last connection's frames are big on the wire */
    raw = rtws_ctx_new(&cc);
    CHECK(sv && cl && raw && scratch);
    if (!sv || !cl || !raw || !scratch) return T_END();
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &port), RTWS_OK);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < N_CONNS; i++) {
        rtws_err e;
        rtws_conn *c = rtws_ctx_connect(i == N_CONNS - 1 ? raw : cl, url, NULL, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_data(c, &peers[i]);
    }
    t_start = rtws_time_now_ms();
    run(sv, cl, raw, 60000, all_got, 20);
    for (i = 0; i < N_CONNS; i++) {
        got += peers[i].got;
        bad += peers[i].bad;
    }
    CHECK_EQ(got, N_CONNS * PER_CONN);
    CHECK_EQ(bad, 0);
    printf("%d connections x %d echoes of 100000, 300000 and 1048576 bytes, 4 in flight: %d good\n",
           N_CONNS, PER_CONN, got - bad);
    /* busy until now: the server connections hold their buffers */
    {
        size_t held = 0;
        for (i = 0; i < n_server_conns; i++) {
            rtws_conn_stats st;
            if (!server_conns[i]) continue;
            rtws_conn_get_stats(server_conns[i], &st);
            held += st.buffer_cap;
        }
        CHECK(held >= (size_t)1 << 20);
        /* reads of connections whose big buffer held nothing went to the
           context's big scratch buffer (incomplete frames kept on) */
        CHECK(sv->big != NULL && sv->big_cap >= (size_t)100000);
    }
    /* quiet for several trim_ms: connections trimmed, then the pool */
    run(sv, cl, raw, 600, NULL, 10);
    {
        size_t held = 0;
        for (i = 0; i < n_server_conns; i++) {
            rtws_conn_stats st;
            if (!server_conns[i]) continue;
            rtws_conn_get_stats(server_conns[i], &st);
            held += st.buffer_cap;
        }
        CHECK_EQ(held, 0);
        CHECK_EQ(sv->pool.nblk, 0);
        CHECK_EQ(sv->pool.bytes, 0);
        CHECK(sv->big == NULL && sv->big_cap == 0); /* it too, after trim_ms unused */
        /* the burst is over: the C library was asked to give the freed
           pages back (glibc with the default allocator; elsewhere never),
           once when the burst ran without a pause of trim_ms; a loaded
           machine can make such pauses inside it, and an ask after each
           wave of 8 MiB, but never more than one per trim_ms (exactly:
           test_ask_timing) and none owed now (released is 0 below) */
        printf("quiet: %u ask(s) to give memory back\n", sv->mtrims);
#if defined(RTWS__MALLOC_TRIM)
        CHECK(sv->mtrims >= 1);
        CHECK(sv->mtrims <= 1 + (rtws_time_now_ms() - t_start) / sc.trim_ms);
#else
        CHECK_EQ(sv->mtrims, 0);
#endif
        CHECK_EQ(sv->pool.released, 0);
        CHECK(sv->pool.uses > 0); /* the pool was used on the way */
    }
    rtws_ctx_free(raw);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    free(scratch);
    return T_END();
}
