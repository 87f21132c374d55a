/* rtws_client end to end, issue 13: a fixed schedule (jitter none) measured
   against the clock up to max_attempts and FAILED; rtws_client_restart from
   CLOSED, FAILED, OPEN, RECONNECTING and from inside a callback;
   rtws_client_set_url / rtws_client_set_opts to a second server; stats kept
   across all of it. In-process servers on 127.0.0.1, ports from the OS. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <poll.h>
#include <stdlib.h>

/* ---------------- servers: count opens and closes, echo ---------------- */
typedef struct server {
    rtws_ctx *ctx;
    int port, opens, closes;
    unsigned last_close_code;
    char last_close_reason[32];
    char last_auth[64], last_proto[32];
    int kick_with; /* close the next connection to send "kick" with this code */
    rtws_conn *last; /* the latest connection opened */
    int pongs_matched;
    uint32_t last_rtt;
} server;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    server *s = (server *)user;
    if (ev->type == RTWS_EV_OPEN) {
        s->opens++;
        s->last = c;
    } else if (ev->type == RTWS_EV_PONG) {
        s->pongs_matched += ev->pong.matched;
        s->last_rtt = ev->pong.rtt_ms;
    } else if (ev->type == RTWS_EV_CLOSE) {
        size_t n = ev->close.reason_len < sizeof s->last_close_reason - 1
                       ? ev->close.reason_len
                       : sizeof s->last_close_reason - 1;
        s->closes++;
        s->last_close_code = ev->close.code;
        if (n) memcpy(s->last_close_reason, ev->close.reason, n);
        s->last_close_reason[n] = 0;
    } else if (ev->type == RTWS_EV_MESSAGE) {
        if (ev->message.len == 4 && !memcmp(ev->message.data, "kick", 4) && s->kick_with)
            rtws_conn_close(c, (unsigned)s->kick_with, "kicked");
        else
            rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
    }
}

static void copy_hdr(char *dst, size_t cap, const rtws_str *v) {
    size_t n = v && v->len < cap - 1 ? v->len : 0;
    if (n) memcpy(dst, v->p, n);
    dst[n] = 0;
}

static int srv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    server *s = (server *)user;
    (void)c;
    (void)proto;
    copy_hdr(s->last_auth, sizeof s->last_auth, rtws_http_get_header(req, "Authorization"));
    copy_hdr(s->last_proto, sizeof s->last_proto,
             rtws_http_get_header(req, "Sec-WebSocket-Protocol"));
    return 0;
}

static int srv_start(server *s) {
    rtws_ctx_config cfg;
    memset(s, 0, sizeof *s);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.on_accept = srv_accept;
    cfg.conn.user = s;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    s->ctx = rtws_ctx_new(&cfg);
    return s->ctx && rtws_ctx_listen(s->ctx, "127.0.0.1", 0, &s->port) == RTWS_OK ? 0 : -1;
}

/* ---------------- the client's log ---------------- */
#define MAXLOG 256
typedef struct cl_log {
    int states[MAXLOG];
    uint32_t attempts[MAXLOG], delays[MAXLOG];
    uint64_t at[MAXLOG];
    int n, msgs, opens, closes, pongs, pongs_matched;
    uint32_t rtt_max;
    int restart_on_failed; /* restart (once) from inside the FAILED event */
    rtws_err restart_err;
} cl_log;

static void cl_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    cl_log *L = (cl_log *)user;
    if (ev->type == RTWS_CLIENT_EV_STATE) {
        if (L->n < MAXLOG) {
            L->states[L->n] = ev->state.state;
            L->attempts[L->n] = ev->state.attempt;
            L->delays[L->n] = ev->state.delay_ms;
            L->at[L->n] = rtws_time_now_ms();
            L->n++;
        }
        if (ev->state.state == RTWS_CLIENT_FAILED && L->restart_on_failed) {
            L->restart_on_failed = 0;
            L->restart_err = rtws_client_restart(cl, rtws_time_now_ms());
        }
    } else if (ev->type == RTWS_CLIENT_EV_CONN) {
        switch (ev->conn.event->type) {
        case RTWS_EV_MESSAGE: L->msgs++; break;
        case RTWS_EV_OPEN: L->opens++; break;
        case RTWS_EV_CLOSE: L->closes++; break;
        case RTWS_EV_PONG:
            L->pongs++;
            L->pongs_matched += ev->conn.event->pong.matched;
            if (ev->conn.event->pong.rtt_ms > L->rtt_max) L->rtt_max = ev->conn.event->pong.rtt_ms;
            break;
        default: break;
        }
    }
}

static int count_state(const cl_log *L, int from, int st) {
    int i, n = 0;
    for (i = from; i < L->n; i++) n += L->states[i] == st;
    return n;
}

/* one poll over up to three contexts until cond() holds or ms pass */
typedef int (*cond_fn)(void *);
static void loop_until(rtws_ctx *a, rtws_ctx *b, rtws_ctx *c, int ms, cond_fn cond, void *arg) {
    struct pollfd f[96];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    do {
        int na = a ? rtws_ctx_fill_pollfds(a, f, 32) : 0;
        int nb = b ? rtws_ctx_fill_pollfds(b, f + na, 32) : 0;
        int nc = c ? rtws_ctx_fill_pollfds(c, f + na + nb, 32) : 0;
        poll(f, (nfds_t)(na + nb + nc), 2);
        if (a) rtws_ctx_service(a, f, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, f + na, nb, rtws_time_now_ms());
        if (c) rtws_ctx_service(c, f + na + nb, nc, rtws_time_now_ms());
        if (cond && cond(arg)) return;
    } while (rtws_time_now_ms() < until);
}

static rtws_client *g_cl;
static int is_open(void *u) {
    (void)u;
    return rtws_client_get_state(g_cl) == RTWS_CLIENT_OPEN;
}
static int is_closed(void *u) {
    (void)u;
    return rtws_client_get_state(g_cl) == RTWS_CLIENT_CLOSED;
}
static int is_failed(void *u) {
    (void)u;
    return rtws_client_get_state(g_cl) == RTWS_CLIENT_FAILED;
}
static void url_of(char *buf, size_t cap, int port, const char *path) {
    snprintf(buf, cap, "ws://127.0.0.1:%d%s", port, path);
}

/* a port nothing listens on: taken from the OS, then released */
static int dead_port(void) {
    server s;
    int port;
    if (srv_start(&s) != 0) return 0;
    port = s.port;
    rtws_ctx_free(s.ctx);
    return port;
}

static rtws_ctx *client_ctx(void) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 5;
    cfg.conn.heartbeat_off = 1;
    cfg.conn.handshake_timeout_ms = 2000;
    return rtws_ctx_new(&cfg);
}

/* Sends one text message and waits for its echo. */
static int echo_once(rtws_ctx *cx, server *s, cl_log *L, const char *text) {
    int before = L->msgs;
    uint64_t until = rtws_time_now_ms() + 2000;
    if (rtws_client_send(g_cl, RTWS_OP_TEXT, text, strlen(text), 0) != RTWS_OK) return 0;
    while (L->msgs == before && rtws_time_now_ms() < until) loop_until(cx, s->ctx, NULL, 5, NULL, NULL);
    return L->msgs == before + 1;
}

/* 50, 100, 200 ms with jitter none and max_attempts 3: four attempts (the
   first and three reconnects), the waits as configured and as measured, then
   FAILED; a restart from inside the FAILED event runs the schedule again. */
static void test_schedule_and_failed(void) {
    rtws_ctx *cx = client_ctx();
    rtws_client_config cc;
    cl_log L;
    char url[64];
    rtws_err err;
    rtws_client_stats st;
    int i, k, conn_i[8], nconn = 0;
    uint64_t t0;
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    url_of(url, sizeof url, dead_port(), "/");
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 50;
    cc.backoff_factor = 2;
    cc.backoff_max_ms = 1000;
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 3;
    t0 = rtws_time_now_ms();
    g_cl = rtws_client_new(cx, &cc, t0, &err);
    CHECK(g_cl != NULL);
    if (!g_cl) return;
    loop_until(cx, NULL, NULL, 3000, is_failed, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_FAILED);
    CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_CONNECTING), 4);
    CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_RECONNECTING), 3);
    CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_FAILED), 1);
    CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_OPEN), 0);
    for (i = 0, k = 0; i < L.n; i++) {
        if (L.states[i] == RTWS_CLIENT_CONNECTING && nconn < 8) conn_i[nconn++] = i;
        if (L.states[i] == RTWS_CLIENT_RECONNECTING) {
            uint32_t want = 50u << k;
            CHECK_EQ(L.attempts[i], (uint32_t)(k + 1));
            CHECK_EQ(L.delays[i], want);
            /* the next attempt starts after the wait: not sooner, and not
               much later (timer_ms 5, a loaded machine: 250 ms slack) */
            if (i + 1 < L.n) {
                uint64_t gap = L.at[i + 1] - L.at[i];
                CHECK_EQ(L.states[i + 1], RTWS_CLIENT_CONNECTING);
                CHECK(gap + 2 >= want); /* the ms clock may tick between reads */
                CHECK(gap <= want + 250);
                printf("reconnect %d: delay_ms %u, waited %llu ms\n", k + 1, L.delays[i],
                       (unsigned long long)gap);
            }
            k++;
        }
    }
    CHECK_EQ(k, 3);
    CHECK(L.at[L.n - 1] - t0 + 2 >= 350); /* 50 + 100 + 200 */
    CHECK_EQ(L.attempts[conn_i[0]], 0);
    CHECK_EQ(L.attempts[conn_i[3]], 3);
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.reconnects, 3);
    CHECK_EQ(st.restarts, 0);
    CHECK(st.last_error != RTWS_OK);
    /* sends after FAILED are refused; a restart from inside the FAILED event
       runs the whole schedule again, from attempt 0 */
    CHECK_EQ(rtws_client_send(g_cl, RTWS_OP_TEXT, "x", 1, 0), RTWS_ERR_CLOSED);
    L.restart_on_failed = 1;
    L.restart_err = RTWS_ERR_INVALID;
    k = L.n;
    CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
    loop_until(cx, NULL, NULL, 3000, is_failed, NULL);
    /* FAILED -> restart -> ... FAILED -> restart (in the callback) -> ... FAILED */
    loop_until(cx, NULL, NULL, 3000, is_failed, NULL);
    CHECK_EQ(L.restart_err, RTWS_OK);
    CHECK_EQ(L.restart_on_failed, 0);
    CHECK_EQ(count_state(&L, k, RTWS_CLIENT_CONNECTING), 8);
    CHECK_EQ(count_state(&L, k, RTWS_CLIENT_FAILED), 2);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_FAILED);
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.restarts, 2);
    CHECK_EQ(st.reconnects, 3 + 2 + 6);
    /* a bad URL is refused and changes nothing */
    CHECK_EQ(rtws_client_set_url(g_cl, "http://127.0.0.1:1/"), RTWS_ERR_URL);
    CHECK_EQ(rtws_client_set_url(g_cl, "ws://[::1"), RTWS_ERR_URL);
    CHECK_EQ(rtws_client_set_url(g_cl, NULL), RTWS_ERR_INVALID);
    rtws_client_free(g_cl);
    rtws_ctx_free(cx);
}

static int g_want_msgs;
static int got_msgs(void *u) { return ((const cl_log *)u)->msgs >= g_want_msgs; }

/* CLOSED -> restart; OPEN -> restart (1000 to the server); set_url and
   set_opts to a second server, used by the next reconnect and by a restart
   from FAILED; counters kept across all of it. */
static void test_restart_and_url(void) {
    rtws_ctx *cx = client_ctx();
    server a, b;
    rtws_client_config cc;
    rtws_client_opts o;
    cl_log L;
    char url_a[64], url_b[64], auth[32], proto[16];
    rtws_err err;
    rtws_client_stats st, st2;
    int k;
    memset(&L, 0, sizeof L);
    CHECK(srv_start(&a) == 0);
    CHECK(srv_start(&b) == 0);
    url_of(url_a, sizeof url_a, a.port, "/a");
    url_of(url_b, sizeof url_b, b.port, "/b");
    memset(&cc, 0, sizeof cc);
    cc.url = url_a;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 20;
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 2;
    g_cl = rtws_client_new(cx, &cc, rtws_time_now_ms(), &err);
    CHECK(g_cl != NULL);
    if (!g_cl) return;
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK(echo_once(cx, &a, &L, "one"));

    /* CLOSED, then restart: the same server again, counters kept */
    CHECK_EQ(rtws_client_close(g_cl, RTWS_CLOSE_NORMAL, "bye"), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, is_closed, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_CLOSED);
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.total.msgs_out, 1);
    CHECK_EQ(st.total.msgs_in, 1);
    CHECK_EQ(st.connected_since_ms, 0);
    CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_CONNECTING);
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(a.opens, 2);
    CHECK(echo_once(cx, &a, &L, "two"));
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.total.msgs_out, 2);
    CHECK_EQ(st.total.bytes_out, 6);
    CHECK_EQ(st.restarts, 1);
    CHECK_EQ(st.reconnects, 1);

    /* OPEN, then restart: the server gets a clean 1000 "restart"; the client
       opens again at once, without a CLOSE event of the old connection */
    k = L.closes;
    CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    loop_until(cx, a.ctx, NULL, 100, NULL, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(a.opens, 3);
    CHECK_EQ(a.last_close_code, RTWS_CLOSE_NORMAL);
    CHECK(strcmp(a.last_close_reason, "restart") == 0);
    CHECK_EQ(L.closes, k);
    CHECK_EQ(L.opens, 3);
    CHECK(echo_once(cx, &a, &L, "three"));

    /* set_url and set_opts while OPEN: the live connection stays on A... */
    snprintf(auth, sizeof auth, "Bearer t1");
    snprintf(proto, sizeof proto, "chat");
    memset(&o, 0, sizeof o);
    o.authorization = auth;
    o.protocols = proto;
    CHECK_EQ(rtws_client_set_url(g_cl, url_b), RTWS_OK);
    CHECK_EQ(rtws_client_set_opts(g_cl, &o), RTWS_OK);
    memset(url_b, 'x', sizeof url_b - 1); /* the client keeps its own copies */
    memset(auth, 'y', sizeof auth - 1);
    memset(proto, 'z', sizeof proto - 1);
    loop_until(cx, a.ctx, b.ctx, 50, NULL, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(b.opens, 0);
    CHECK(echo_once(cx, &a, &L, "four"));
    /* ...until it is lost: the reconnect goes to B with the new headers */
    a.kick_with = 1011;
    CHECK_EQ(rtws_client_send(g_cl, RTWS_OP_TEXT, "kick", 4, 0), RTWS_OK);
    loop_until(cx, a.ctx, b.ctx, 100, NULL, NULL);
    loop_until(cx, a.ctx, b.ctx, 3000, is_open, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(b.opens, 1);
    CHECK(strcmp(b.last_auth, "Bearer t1") == 0);
    CHECK(strcmp(b.last_proto, "chat") == 0);
    CHECK_EQ(a.last_close_code, 1011);
    CHECK(echo_once(cx, &b, &L, "five"));

    /* B goes away: two reconnects (20, 40 ms), FAILED; set_url back to A,
       opts cleared, restart from FAILED: open again, all counters kept */
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.total.msgs_out, 6); /* one, two, three, four, kick, five */
    CHECK_EQ(st.total.msgs_in, 5);
    rtws_ctx_free(b.ctx);
    b.ctx = NULL;
    loop_until(cx, a.ctx, NULL, 3000, is_failed, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_FAILED);
    url_of(url_a, sizeof url_a, a.port, "/again");
    CHECK_EQ(rtws_client_set_url(g_cl, url_a), RTWS_OK);
    CHECK_EQ(rtws_client_set_opts(g_cl, NULL), RTWS_OK);
    CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(a.opens, 4);
    CHECK_EQ(a.last_auth[0], 0);
    CHECK_EQ(a.last_proto[0], 0);
    g_want_msgs = L.msgs + 1;
    CHECK_EQ(rtws_client_send(g_cl, RTWS_OP_TEXT, "six", 3, 0), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 2000, got_msgs, &L);
    rtws_client_get_stats(g_cl, &st2, rtws_time_now_ms());
    CHECK_EQ(st2.total.msgs_out, 7);
    CHECK_EQ(st2.total.msgs_in, 6);
    CHECK_EQ(st2.restarts, 3);
    CHECK(st2.uptime_ms >= st.uptime_ms);
    CHECK(st2.connected_since_ms > 0);

    /* RECONNECTING, then restart: the wait is cut short */
    rtws_client_free(g_cl);
    memset(&L, 0, sizeof L);
    cc.url = url_a;
    cc.backoff_base_ms = 60000; /* a restart must not wait for this */
    cc.max_attempts = 0;
    a.kick_with = 1011;
    g_cl = rtws_client_new(cx, &cc, rtws_time_now_ms(), &err);
    CHECK(g_cl != NULL);
    if (g_cl) {
        uint64_t t;
        loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
        CHECK_EQ(rtws_client_send(g_cl, RTWS_OP_TEXT, "kick", 4, 0), RTWS_OK);
        loop_until(cx, a.ctx, NULL, 200, NULL, NULL);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_RECONNECTING);
        CHECK_EQ(L.delays[L.n - 1], 60000);
        t = rtws_time_now_ms();
        CHECK_EQ(rtws_client_restart(g_cl, t), RTWS_OK);
        loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
        CHECK(rtws_time_now_ms() - t < 2000);
        /* CLOSING, then restart: the close ends on its own, a new one opens */
        k = L.opens;
        CHECK_EQ(rtws_client_close(g_cl, RTWS_CLOSE_NORMAL, "bye"), RTWS_OK);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_CLOSING);
        CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
        loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
        CHECK_EQ(L.opens, k + 1);
        rtws_client_free(g_cl);
    }
    /* CONNECTING, then restart: the attempt under way is abandoned; only the
       new connection's events reach the client */
    memset(&L, 0, sizeof L);
    g_cl = rtws_client_new(cx, &cc, rtws_time_now_ms(), &err);
    CHECK(g_cl != NULL);
    if (g_cl) {
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_CONNECTING);
        CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_CONNECTING);
        loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
        loop_until(cx, a.ctx, NULL, 100, NULL, NULL);
        CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
        CHECK_EQ(L.opens, 1);
        CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_CONNECTING), 2);
        CHECK_EQ(count_state(&L, 0, RTWS_CLIENT_OPEN), 1);
        CHECK(echo_once(cx, &a, &L, "seven"));
        rtws_client_free(g_cl);
    }
    rtws_ctx_free(cx);
    rtws_ctx_free(a.ctx);
}

static int two_pongs(void *u) { return ((const cl_log *)u)->pongs >= 2; }
static int srv_pong(void *u) { return ((const server *)u)->pongs_matched >= 1; }

/* RTT from rtws_conn_ping, not only from heartbeats: two pings in flight
   from the client, one from the server, each pong matched; the client's
   stats keep the samples across a restart. */
static void test_rtt(void) {
    rtws_ctx *cx = client_ctx();
    server a;
    rtws_client_config cc;
    cl_log L;
    char url[64];
    rtws_err err;
    rtws_client_stats st;
    rtws_conn_stats cs;
    memset(&L, 0, sizeof L);
    CHECK(srv_start(&a) == 0);
    url_of(url, sizeof url, a.port, "/");
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    g_cl = rtws_client_new(cx, &cc, rtws_time_now_ms(), &err);
    CHECK(g_cl != NULL);
    if (!g_cl) return;
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    CHECK_EQ(rtws_client_get_state(g_cl), RTWS_CLIENT_OPEN);
    CHECK_EQ(rtws_conn_ping(rtws_client_get_conn(g_cl), "r1", 2), RTWS_OK);
    loop_until(cx, NULL, NULL, 5, NULL, NULL); /* written: both in flight */
    CHECK_EQ(rtws_conn_ping(rtws_client_get_conn(g_cl), "r2", 2), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, two_pongs, &L);
    CHECK_EQ(L.pongs, 2);
    CHECK_EQ(L.pongs_matched, 2);
    CHECK(L.rtt_max < 1000);
    rtws_conn_get_stats(rtws_client_get_conn(g_cl), &cs);
    CHECK_EQ(cs.rtt_samples, 2);
    /* the server measures its own ping to the client */
    CHECK(a.last != NULL);
    if (a.last) CHECK_EQ(rtws_conn_ping(a.last, "s1", 2), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, srv_pong, &a);
    CHECK_EQ(a.pongs_matched, 1);
    CHECK(a.last_rtt < 1000);
    /* the samples stay in the client's stats after a restart */
    CHECK_EQ(rtws_client_restart(g_cl, rtws_time_now_ms()), RTWS_OK);
    loop_until(cx, a.ctx, NULL, 3000, is_open, NULL);
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK_EQ(st.total.rtt_samples, 2);
    CHECK(st.total.rtt_last_ms < 1000);
    rtws_client_free(g_cl);
    rtws_ctx_free(cx);
    rtws_ctx_free(a.ctx);
}

int main(void) {
    uint64_t t0 = rtws_time_now_ms();
    test_schedule_and_failed();
    test_restart_and_url();
    test_rtt();
    printf("elapsed %llu ms\n", (unsigned long long)(rtws_time_now_ms() - t0));
    return T_END();
}
