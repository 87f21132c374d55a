/* rtws_client end to end: backoff schedule, state sequence, half-open links
   through a freezing TCP proxy, server restarts with an offline queue,
   1,000 clients spreading their reconnects, queue bounds and TTL, refresh. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"

/* ---------------- the server: collects numbered messages ---------------- */
typedef struct server {
    rtws_ctx *ctx;
    int port, opens, closes;
    long next_expected; /* numbered messages: "n" in order */
    int order_errors, dup_errors;
    long received;
    char last_auth[64];
    int close_with; /* close every new connection with this code after OPEN */
} server;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    server *s = (server *)user;
    if (ev->type == RTWS_EV_OPEN) {
        s->opens++;
        if (s->close_with) rtws_conn_close(c, (unsigned)s->close_with, "policy");
    } else if (ev->type == RTWS_EV_CLOSE) {
        s->closes++;
    } else if (ev->type == RTWS_EV_MESSAGE) {
        char buf[32];
        long n;
        size_t k = ev->message.len < sizeof buf - 1 ? ev->message.len : sizeof buf - 1;
        memcpy(buf, ev->message.data, k);
        buf[k] = 0;
        n = atol(buf);
        if (n < s->next_expected) s->dup_errors++;
        else if (n > s->next_expected) s->order_errors++;
        s->next_expected = n + 1;
        s->received++;
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
    }
}

static int srv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    server *s = (server *)user;
    const rtws_str *a = rtws_http_get_header(req, "Authorization");
    (void)c;
    (void)proto;
    if (a && a->len < sizeof s->last_auth) {
        memcpy(s->last_auth, a->p, a->len);
        s->last_auth[a->len] = 0;
    }
    return 0;
}

static int srv_start(server *s, int port) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.on_accept = srv_accept;
    cfg.conn.user = s;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 10;
    s->ctx = rtws_ctx_new(&cfg);
    return s->ctx && rtws_ctx_listen(s->ctx, "127.0.0.1", port, &s->port) == RTWS_OK ? 0 : -1;
}

/* ---------------- the client side ---------------- */
#define MAXLOG 4096
typedef struct cl_log {
    int states[MAXLOG];
    uint32_t attempts[MAXLOG], delays[MAXLOG];
    uint64_t at[MAXLOG];
    int n;
    int msgs, dropped, dropped_timeout, opens, closes;
    uint64_t open_at, lost_at;
} cl_log;

static void cl_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    cl_log *L = (cl_log *)user;
    (void)cl;
    switch (ev->type) {
    case RTWS_CLIENT_EV_STATE:
        if (L->n < MAXLOG) {
            L->states[L->n] = ev->state.state;
            L->attempts[L->n] = ev->state.attempt;
            L->delays[L->n] = ev->state.delay_ms;
            L->at[L->n] = rtws_time_now_ms();
            L->n++;
        }
        if (ev->state.state == RTWS_CLIENT_OPEN) L->open_at = rtws_time_now_ms();
        if (ev->state.state == RTWS_CLIENT_RECONNECTING && !L->lost_at) L->lost_at = rtws_time_now_ms();
        break;
    case RTWS_CLIENT_EV_DROPPED:
        L->dropped++;
        if (ev->dropped.err == RTWS_ERR_TIMEOUT) L->dropped_timeout++;
        break;
    case RTWS_CLIENT_EV_CONN:
        switch (ev->conn.event->type) {
        case RTWS_EV_MESSAGE: L->msgs++; break;
        case RTWS_EV_OPEN: L->opens++; break;
        case RTWS_EV_CLOSE: L->closes++; break;
        default: break;
        }
        break;
    }
}

static rtws_ctx *cl_ctx(uint32_t ping, uint32_t pong) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    if (ping) {
        cfg.conn.ping_interval_ms = ping;
        cfg.conn.pong_timeout_ms = pong;
    } else {
        cfg.conn.heartbeat_off = 1;
    }
    cfg.conn.handshake_timeout_ms = 2000;
    return rtws_ctx_new(&cfg);
}

/* one poll over up to two contexts and a proxy, for ms */
static void loop(rtws_ctx *a, rtws_ctx *b, proxy *p, int ms) {
    static struct pollfd f[6000];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    do {
        int na = a ? rtws_ctx_fill_pollfds(a, f, 2500) : 0;
        int nb = b ? rtws_ctx_fill_pollfds(b, f + na, 2500) : 0;
        int np = p ? px_fds(p, f + na + nb) : 0, t = 5;
        poll(f, (nfds_t)(na + nb + np), t);
        if (a) rtws_ctx_service(a, f, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, f + na, nb, rtws_time_now_ms());
        if (p) px_service(p, f + na + nb, np);
    } while (rtws_time_now_ms() < until);
}

static void test_backoff_schedule(void) {
    rtws_client_config c;
    uint32_t i, expect = 1000;
    memset(&c, 0, sizeof c);
    for (i = 1; i <= 12; i++) {
        CHECK_EQ(rtws_client_backoff_bound(&c, i), expect);
        expect = expect * 2 > 60000 ? 60000 : expect * 2;
    }
    c.backoff_base_ms = 100;
    c.backoff_factor = 3;
    c.backoff_max_ms = 1000;
    CHECK_EQ(rtws_client_backoff_bound(&c, 1), 100);
    CHECK_EQ(rtws_client_backoff_bound(&c, 2), 300);
    CHECK_EQ(rtws_client_backoff_bound(&c, 3), 900);
    CHECK_EQ(rtws_client_backoff_bound(&c, 4), 1000);
    CHECK_EQ(rtws_client_backoff_bound(&c, 400), 1000);
}

/* nothing listens: every attempt fails, delays stay in their bounds, and
   max_attempts ends in FAILED */
static void test_refused_attempts(void) {
    rtws_ctx *ctx = cl_ctx(0, 0);
    rtws_client_config cc;
    cl_log L;
    rtws_client *cl;
    server s;
    char url[64];
    int i, reconnecting = 0, ok_bounds = 1;
    memset(&s, 0, sizeof s);
    srv_start(&s, 0); /* take a free port, then close it */
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", s.port);
    rtws_ctx_free(s.ctx);
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 20;
    cc.backoff_max_ms = 80;
    cc.max_attempts = 5;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    CHECK(cl != NULL);
    for (i = 0; i < 200 && rtws_client_get_state(cl) != RTWS_CLIENT_FAILED; i++) loop(ctx, NULL, NULL, 10);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_FAILED);
    for (i = 0; i < L.n; i++) {
        if (L.states[i] != RTWS_CLIENT_RECONNECTING) continue;
        reconnecting++;
        if (L.attempts[i] != (uint32_t)reconnecting || L.delays[i] > rtws_client_backoff_bound(&cc, L.attempts[i]))
            ok_bounds = 0;
    }
    CHECK_EQ(reconnecting, 5);
    CHECK(ok_bounds);
    CHECK_EQ(L.states[0], RTWS_CLIENT_CONNECTING);
    CHECK_EQ(L.states[L.n - 1], RTWS_CLIENT_FAILED);
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "x", 1, 0), RTWS_ERR_CLOSED);
    rtws_client_free(cl);
    rtws_ctx_free(ctx);
}

/* half-open: the proxy stops forwarding; the heartbeat notices, the client
   reconnects through the proxy, and the states come in order */
static void test_half_open(void) {
    server s;
    proxy p;
    rtws_ctx *ctx = cl_ctx(200, 300);
    rtws_client_config cc;
    cl_log L;
    rtws_client *cl;
    char url[64];
    int i, j, seq_ok;
    uint64_t frozen_at, detect;
    static const int expect[] = {RTWS_CLIENT_CONNECTING, RTWS_CLIENT_OPEN, RTWS_CLIENT_RECONNECTING,
                                 RTWS_CLIENT_CONNECTING, RTWS_CLIENT_OPEN};
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 0) == 0);
    CHECK(px_listen(&p, s.port) == 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", p.port);
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 50;
    /* the reconnect waits 100 ms: it must start after the proxy is reset
       below, not inside the 10 ms loop that sees the loss (the frozen proxy
       still accepts, and the reset would drop that attempt too) */
    cc.backoff_min_ms = 100;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    loop(ctx, s.ctx, &p, 500); /* a few heartbeats pass through */
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_OPEN);
    p.mode = PX_FREEZE;
    frozen_at = rtws_time_now_ms();
    for (i = 0; i < 300 && !L.lost_at; i++) loop(ctx, s.ctx, &p, 10);
    detect = L.lost_at - frozen_at;
    CHECK(L.lost_at != 0);
    CHECK(detect <= 200 + 300 + 100); /* ping_interval + pong_timeout, plus timer slack */
    printf("half-open link detected after %llu ms (ping 200 + pong timeout 300)\n",
           (unsigned long long)detect);
    px_drop_all(&p); /* the frozen pair is gone; new connections flow again */
    p.mode = PX_FORWARD;
    for (i = 0; i < 300 && rtws_client_get_state(cl) != RTWS_CLIENT_OPEN; i++) loop(ctx, s.ctx, &p, 10);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_OPEN);
    /* the documented order (CLOSING appears only for closes we asked for) */
    seq_ok = L.n == 5;
    for (j = 0; seq_ok && j < 5; j++) seq_ok = L.states[j] == expect[j];
    CHECK(seq_ok);
    if (!seq_ok)
        for (j = 0; j < L.n; j++) fprintf(stderr, "  state %d attempt %u\n", L.states[j], L.attempts[j]);
    {
        rtws_client_stats st;
        rtws_client_get_stats(cl, &st, rtws_time_now_ms());
        CHECK_EQ(st.reconnects, 1);
        CHECK(st.total.rtt_samples >= 1);
        CHECK(st.connected_since_ms != 0);
        CHECK_EQ(st.last_error, RTWS_OK);
    }
    /* a clean close asked by the application: no reconnect */
    CHECK_EQ(rtws_client_close(cl, 1000, "bye"), RTWS_OK);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_CLOSING);
    loop(ctx, s.ctx, &p, 300);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_CLOSED);
    CHECK_EQ(L.states[L.n - 1], RTWS_CLIENT_CLOSED);
    loop(ctx, s.ctx, &p, 200);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_CLOSED);
    rtws_client_free(cl);
    rtws_ctx_free(ctx);
    rtws_ctx_free(s.ctx);
    px_drop_all(&p);
    close(p.lfd);
}

/* the server restarts (gracefully) while the client sends a numbered message
   every 2 ms: every message arrives once, in order */
static void test_restart_no_loss(void) {
    server s;
    rtws_ctx *ctx = cl_ctx(0, 0);
    rtws_client_config cc;
    cl_log L;
    rtws_client *cl;
    char url[64], msg[32];
    long n = 0, i;
    int port, round;
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 0) == 0);
    port = s.port;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 30;
    cc.backoff_max_ms = 100;
    cc.queue_max_msgs = 100000;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 100; i++) { /* 200 ms of traffic */
            snprintf(msg, sizeof msg, "%ld", n++);
            CHECK(rtws_client_send(cl, RTWS_OP_TEXT, msg, strlen(msg), 0) == RTWS_OK);
            loop(ctx, s.ctx, NULL, 2);
        }
        rtws_ctx_shutdown(s.ctx, RTWS_CLOSE_GOING_AWAY, "restart", rtws_time_now_ms());
        for (i = 0; i < 100 && rtws_ctx_get_conn_count(s.ctx) > 0; i++) {
            snprintf(msg, sizeof msg, "%ld", n++);
            CHECK(rtws_client_send(cl, RTWS_OP_TEXT, msg, strlen(msg), 0) == RTWS_OK);
            loop(ctx, s.ctx, NULL, 2);
        }
        rtws_ctx_free(s.ctx);
        for (i = 0; i < 100; i++) { /* 200 ms with the server down: all queued */
            snprintf(msg, sizeof msg, "%ld", n++);
            CHECK(rtws_client_send(cl, RTWS_OP_TEXT, msg, strlen(msg), 0) == RTWS_OK);
            loop(ctx, NULL, NULL, 2);
        }
        CHECK(rtws_client_get_queued(cl, NULL) > 0);
        CHECK(srv_start(&s, port) == 0);
    }
    for (i = 0; i < 400 && s.received < n; i++) loop(ctx, s.ctx, NULL, 5);
    CHECK_EQ(s.received, n);
    CHECK_EQ(s.order_errors, 0);
    CHECK_EQ(s.dup_errors, 0);
    CHECK_EQ(rtws_client_get_queued(cl, NULL), 0);
    CHECK_EQ(L.dropped, 0);
    printf("server restarted 3 times: %ld of %ld numbered messages arrived once, in order\n",
           s.received, n);
    rtws_client_free(cl);
    loop(ctx, s.ctx, NULL, 50);
    rtws_ctx_free(ctx);
    rtws_ctx_free(s.ctx);
}

/* 1,000 clients, server gone and back: reconnect times spread by jitter */
static void test_thundering_herd(void) {
    enum { N = 1000 };
    server s;
    rtws_ctx *ctx = cl_ctx(0, 0);
    static cl_log L[N];
    static rtws_client *cl[N];
    rtws_client_config cc;
    char url[64];
    int i, open = 0, port, k;
    uint64_t t0, first = UINT64_MAX, last = 0;
    double mean = 0, var = 0;
    int nlate = 0;
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 0) == 0);
    port = s.port;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.backoff_base_ms = 1000;
    for (i = 0; i < N; i++) {
        memset(&L[i], 0, sizeof L[i]);
        cc.user = &L[i];
        cl[i] = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    }
    for (k = 0; k < 400 && open < N; k++) {
        loop(ctx, s.ctx, NULL, 10);
        for (open = 0, i = 0; i < N; i++) open += rtws_client_get_state(cl[i]) == RTWS_CLIENT_OPEN;
    }
    CHECK_EQ(open, N);
    rtws_ctx_free(s.ctx); /* abrupt: no close handshake */
    t0 = rtws_time_now_ms();
    loop(ctx, NULL, NULL, 100);
    CHECK(srv_start(&s, port) == 0);
    for (k = 0; k < 600; k++) {
        loop(ctx, s.ctx, NULL, 10);
        for (open = 0, i = 0; i < N; i++) open += rtws_client_get_state(cl[i]) == RTWS_CLIENT_OPEN;
        if (open == N) break;
    }
    CHECK_EQ(open, N);
    for (i = 0; i < N; i++) {
        int j;
        for (j = 0; j < L[i].n; j++)
            if (L[i].states[j] == RTWS_CLIENT_CONNECTING && L[i].attempts[j] == 1) {
                uint64_t t = L[i].at[j] - t0;
                if (t < first) first = t;
                if (t > last) last = t;
                mean += (double)t;
                if (t > 500) nlate++;
                break;
            }
    }
    mean /= N;
    for (i = 0; i < N; i++) {
        int j;
        for (j = 0; j < L[i].n; j++)
            if (L[i].states[j] == RTWS_CLIENT_CONNECTING && L[i].attempts[j] == 1) {
                double d = (double)(L[i].at[j] - t0) - mean;
                var += d * d;
                break;
            }
    }
    var = sqrt(var / N);
    printf("1000 clients: first reconnect attempts from %llu to %llu ms after the drop, mean %.0f, sd %.0f (uniform [0,1000] has sd 289)\n",
           (unsigned long long)first, (unsigned long long)last, mean, var);
    CHECK(last - first >= 800); /* spread over the window, not one burst */
    CHECK(var > 200 && var < 380);
    CHECK(nlate > 300 && nlate < 700); /* about half after the midpoint */
    for (i = 0; i < N; i++) rtws_client_free(cl[i]);
    loop(ctx, s.ctx, NULL, 50);
    rtws_ctx_free(ctx);
    rtws_ctx_free(s.ctx);
}

static int refresh_calls;
static char refresh_hdr[64];
static int refresh(rtws_client *c, const char **url, rtws_client_opts *o, void *user) {
    (void)c;
    (void)url;
    (void)user;
    snprintf(refresh_hdr, sizeof refresh_hdr, "Bearer token-%d", ++refresh_calls);
    o->authorization = refresh_hdr;
    return 0;
}

static void test_queue_policy_refresh(void) {
    rtws_ctx *ctx = cl_ctx(0, 0);
    rtws_client_config cc;
    cl_log L;
    rtws_client *cl;
    server s;
    char url[64];
    int i, port;
    size_t bytes;
    memset(&s, 0, sizeof s);
    srv_start(&s, 0);
    port = s.port;
    rtws_ctx_free(s.ctx);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.queue_max_msgs = 3;
    cc.queue_max_bytes = 100;
    cc.backoff_base_ms = 20;
    cc.backoff_max_ms = 40;
    cc.refresh = refresh;
    cc.opts.authorization = "Bearer token-0";
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "a", 1, 0), RTWS_OK);
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "b", 1, 50), RTWS_OK);
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_BINARY, "c", 1, 0), RTWS_OK);
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "d", 1, 0), RTWS_ERR_LIMIT); /* count bound */
    CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "\xff", 1, 0), RTWS_ERR_UTF8);
    CHECK_EQ(rtws_client_get_queued(cl, &bytes), 3);
    CHECK_EQ(bytes, 3);
    loop(ctx, NULL, NULL, 120); /* "b" expires */
    CHECK_EQ(L.dropped_timeout, 1);
    CHECK_EQ(rtws_client_get_queued(cl, NULL), 2);
    rtws_client_clear_queue(cl);
    CHECK_EQ(L.dropped, 3);
    CHECK_EQ(rtws_client_get_queued(cl, NULL), 0);
    rtws_client_free(cl);
    /* drop-oldest mode */
    memset(&L, 0, sizeof L);
    cc.queue_drop_oldest = 1;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    for (i = 0; i < 5; i++) CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, "0123456789", 10, 0), RTWS_OK);
    CHECK_EQ(L.dropped, 2);
    CHECK_EQ(rtws_client_get_queued(cl, NULL), 3);
    {
        char big[101];
        memset(big, 'x', sizeof big);
        CHECK_EQ(rtws_client_send(cl, RTWS_OP_TEXT, big, sizeof big, 0), RTWS_ERR_TOO_BIG);
    }
    /* the server comes up: refresh gave a fresh token to the attempt that got in,
       and the queue arrives first */
    refresh_calls = 0;
    CHECK(srv_start(&s, port) == 0);
    for (i = 0; i < 200 && rtws_client_get_state(cl) != RTWS_CLIENT_OPEN; i++) loop(ctx, s.ctx, NULL, 10);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_OPEN);
    CHECK(refresh_calls >= 1);
    CHECK(strcmp(s.last_auth, refresh_hdr) == 0);
    loop(ctx, s.ctx, NULL, 100);
    CHECK_EQ(L.msgs, 3); /* the echoes of the queued messages */
    rtws_client_free(cl);
    loop(ctx, s.ctx, NULL, 50);
    /* a 1008 close from the server is final unless reconnect_on_policy */
    memset(&L, 0, sizeof L);
    s.close_with = 1008;
    cc.queue_drop_oldest = 0;
    cc.refresh = NULL;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    for (i = 0; i < 100 && rtws_client_get_state(cl) != RTWS_CLIENT_FAILED; i++) loop(ctx, s.ctx, NULL, 10);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_FAILED);
    {
        rtws_client_stats st;
        rtws_client_get_stats(cl, &st, rtws_time_now_ms());
        CHECK_EQ(st.last_close_code, 1008);
    }
    rtws_client_free(cl);
    memset(&L, 0, sizeof L);
    s.close_with = 4403;
    cc.reconnect_on_policy = 1;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    loop(ctx, s.ctx, NULL, 300);
    CHECK(s.opens >= 4); /* it keeps coming back */
    CHECK(rtws_client_get_state(cl) != RTWS_CLIENT_FAILED);
    rtws_client_free(cl);
    loop(ctx, s.ctx, NULL, 50);
    rtws_ctx_free(ctx);
    rtws_ctx_free(s.ctx);
}

static rtws_client *free_me;
static void free_in_cb(rtws_client *cl, const rtws_client_event *ev, void *user) {
    (void)cl;
    (void)user;
    if (ev->type == RTWS_CLIENT_EV_STATE && ev->state.state == RTWS_CLIENT_OPEN && free_me) {
        rtws_client_free(free_me);
        free_me = NULL;
    }
}

static void test_free_from_callback(void) {
    server s;
    rtws_ctx *ctx = cl_ctx(0, 0);
    rtws_client_config cc;
    char url[64];
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 0) == 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", s.port);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = free_in_cb;
    free_me = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL);
    loop(ctx, s.ctx, NULL, 200);
    CHECK(free_me == NULL);
    CHECK_EQ(s.opens, 1);
    CHECK_EQ(s.closes, 1); /* the server saw a close (1001) */
    rtws_ctx_free(ctx);
    rtws_ctx_free(s.ctx);
}

int main(void) {
    test_backoff_schedule();
    test_refused_attempts();
    test_half_open();
    test_restart_no_loss();
    test_queue_policy_refresh();
    test_free_from_callback();
    test_thundering_herd();
    return T_END();
}
