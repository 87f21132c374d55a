/* rtws_client restore messages (rtws_client_set_restore / _clear_restore),
   end to end: the state a server loses with a connection (subscriptions,
   presence, in the application's own protocol) sent again on every open,
   before the offline queue and before the OPEN state event; replaced in
   place, cleared, bounded, kept across a server's close, a restart from
   CLOSED and the client's free (ASan: nothing leaks). In-process server on
   127.0.0.1, port from the OS. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <poll.h>
#include <stdlib.h>

/* ---- the server: logs what each connection receives, in order ---- */
#define MAXMSG 64
typedef struct server {
    rtws_ctx *ctx;
    int port, opens;
    rtws_conn *last, *conns[8]; /* by open order */
    char got[8][MAXMSG][32]; /* per connection (by open order): its messages */
    int ngot[8];
} server;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    server *s = (server *)user;
    int k = 0;
    while (k < s->opens && k < 8 && s->conns[k] != c) k++;
    if (ev->type == RTWS_EV_OPEN) {
        s->last = c;
        if (s->opens < 8) s->conns[s->opens] = c;
        s->opens++;
    } else if (ev->type == RTWS_EV_MESSAGE && k < 8 && s->ngot[k] < MAXMSG) {
        size_t n = ev->message.len < 31 ? ev->message.len : 31;
        memcpy(s->got[k][s->ngot[k]], ev->message.data, n);
        s->got[k][s->ngot[k]][n] = 0;
        s->ngot[k]++;
    }
}

static int srv_start(server *s) {
    rtws_ctx_config cfg;
    memset(s, 0, sizeof *s);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = s;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    s->ctx = rtws_ctx_new(&cfg);
    return s->ctx && rtws_ctx_listen(s->ctx, "127.0.0.1", 0, &s->port) == RTWS_OK ? 0 : -1;
}

/* ---- the client's log ---- */
typedef struct cl_log {
    int opens_state;         /* OPEN state events */
    uint64_t sent_at_open;   /* msgs_out of the connection when OPEN was announced */
    int dropped;
} cl_log;

static void cl_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    cl_log *L = (cl_log *)user;
    if (ev->type == RTWS_CLIENT_EV_STATE && ev->state.state == RTWS_CLIENT_OPEN) {
        rtws_conn_stats st;
        rtws_conn_get_stats(rtws_client_get_conn(cl), &st);
        L->sent_at_open = st.msgs_out;
        L->opens_state++;
    } else if (ev->type == RTWS_CLIENT_EV_DROPPED) {
        L->dropped++;
    }
}

static rtws_client *g_cl;
static server g_srv;
typedef int (*cond_fn)(void);
static void loop_until(rtws_ctx *a, rtws_ctx *b, int ms, cond_fn cond) {
    struct pollfd f[64];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    do {
        int na = rtws_ctx_fill_pollfds(a, f, 32);
        int nb = rtws_ctx_fill_pollfds(b, f + na, 32);
        poll(f, (nfds_t)(na + nb), 2);
        rtws_ctx_service(a, f, na, rtws_time_now_ms());
        rtws_ctx_service(b, f + na, nb, rtws_time_now_ms());
        if (cond && cond()) return;
    } while (rtws_time_now_ms() < until);
}
static int is_open(void) { return rtws_client_get_state(g_cl) == RTWS_CLIENT_OPEN; }
static int is_reconnecting(void) { return rtws_client_get_state(g_cl) == RTWS_CLIENT_RECONNECTING; }
static int is_closed(void) { return rtws_client_get_state(g_cl) == RTWS_CLIENT_CLOSED; }
static int want_opens, want_msgs, want_conn;
static int got_enough(void) {
    return g_srv.opens >= want_opens && g_srv.ngot[want_conn] >= want_msgs;
}

static int got_is(int conn, const char *const *want, int n) {
    int i;
    if (g_srv.ngot[conn] != n) return 0;
    for (i = 0; i < n; i++)
        if (strcmp(g_srv.got[conn][i], want[i])) return 0;
    return 1;
}

static rtws_err set_text(const char *key, const char *msg) {
    return rtws_client_set_restore(g_cl, key, RTWS_OP_TEXT, msg, strlen(msg));
}

static void test_restore(void) {
    rtws_ctx_config ccfg;
    rtws_client_config cc;
    rtws_ctx *cx;
    cl_log L;
    char url[64], big[1100];
    rtws_err err;
    rtws_client_stats st;
    static const char *const first[] = {"sub a", "sub b", "queued 1"};
    static const char *const second[] = {"sub a2", "presence c"};
    static const char *const third[] = {"sub a2", "presence c", "queued 2"};
    static const char *const fourth[] = {"sub a2", "presence c"};

    CHECK(srv_start(&g_srv) == 0);
    memset(&ccfg, 0, sizeof ccfg);
    ccfg.timer_ms = 5;
    ccfg.conn.heartbeat_off = 1;
    cx = rtws_ctx_new(&ccfg);
    CHECK(cx != NULL);
    if (!cx || !g_srv.ctx) return;
    memset(&L, 0, sizeof L);
    memset(&cc, 0, sizeof cc);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", g_srv.port);
    cc.url = url;
    cc.on_event = cl_event;
    cc.user = &L;
    cc.backoff_base_ms = 200;
    cc.backoff_factor = 1;
    cc.jitter = RTWS_JITTER_NONE;
    cc.queue_max_bytes = 1024;
    g_cl = rtws_client_new(cx, &cc, rtws_time_now_ms(), &err);
    CHECK(g_cl != NULL);
    if (!g_cl) return;

    /* bad arguments */
    CHECK(rtws_client_set_restore(g_cl, "", RTWS_OP_TEXT, "x", 1) == RTWS_ERR_INVALID);
    CHECK(rtws_client_set_restore(g_cl, NULL, RTWS_OP_TEXT, "x", 1) == RTWS_ERR_INVALID);
    CHECK(rtws_client_set_restore(g_cl, "k", RTWS_OP_PING, "x", 1) == RTWS_ERR_INVALID);
    CHECK(rtws_client_set_restore(g_cl, "k", RTWS_OP_TEXT, NULL, 1) == RTWS_ERR_INVALID);
    memset(big, 'k', sizeof big);
    big[256] = 0; /* a 256-byte key */
    CHECK(rtws_client_set_restore(g_cl, big, RTWS_OP_TEXT, "x", 1) == RTWS_ERR_INVALID);
    big[255] = 0; /* 255 bytes: fine, then gone again */
    CHECK(rtws_client_set_restore(g_cl, big, RTWS_OP_TEXT, "x", 1) == RTWS_OK);
    CHECK(rtws_client_clear_restore(g_cl, big) == RTWS_OK);
    CHECK(rtws_client_clear_restore(g_cl, "nothing") == RTWS_ERR_INVALID);

    /* bound: queue_max_bytes (1024) over all restore messages */
    memset(big, 'x', sizeof big);
    CHECK(rtws_client_set_restore(g_cl, "big1", RTWS_OP_BINARY, big, 600) == RTWS_OK);
    CHECK(rtws_client_set_restore(g_cl, "big2", RTWS_OP_BINARY, big, 600) == RTWS_ERR_LIMIT);
    CHECK(rtws_client_set_restore(g_cl, "big1", RTWS_OP_BINARY, big, 1000) == RTWS_OK); /* replaced */
    CHECK(rtws_client_set_restore(g_cl, "big1", RTWS_OP_BINARY, big, 1025) == RTWS_ERR_LIMIT);
    CHECK(rtws_client_clear_restore(g_cl, "big1") == RTWS_OK);

    /* before the first open: restore messages, then the queue, then OPEN */
    CHECK(set_text("a", "sub a") == RTWS_OK);
    CHECK(rtws_client_send(g_cl, RTWS_OP_TEXT, "queued 1", 8, 0) == RTWS_OK);
    CHECK(set_text("b", "sub b") == RTWS_OK);
    want_opens = 1, want_msgs = 3, want_conn = 0;
    loop_until(cx, g_srv.ctx, 3000, got_enough);
    CHECK(is_open());
    CHECK(got_is(0, first, 3));
    CHECK(L.opens_state == 1);
    CHECK(L.sent_at_open == 3); /* all three were on their way before OPEN */

    /* while open: a replacement goes out at once; a clear sends nothing */
    CHECK(set_text("a", "sub a2") == RTWS_OK);
    CHECK(set_text("c", "presence c") == RTWS_OK);
    CHECK(rtws_client_clear_restore(g_cl, "b") == RTWS_OK);
    CHECK(rtws_client_clear_restore(g_cl, "b") == RTWS_ERR_INVALID);
    want_msgs = 5;
    loop_until(cx, g_srv.ctx, 2000, got_enough);
    CHECK(g_srv.ngot[0] == 5);
    CHECK(!strcmp(g_srv.got[0][3], "sub a2") && !strcmp(g_srv.got[0][4], "presence c"));

    /* the server drops the connection: the new one gets a (in its old
       turn, replaced), then c; b is gone */
    rtws_conn_close(g_srv.last, RTWS_CLOSE_GOING_AWAY, "bye");
    want_opens = 2, want_msgs = 2, want_conn = 1;
    loop_until(cx, g_srv.ctx, 3000, got_enough);
    loop_until(cx, g_srv.ctx, 100, NULL); /* nothing more arrives */
    CHECK(got_is(1, second, 2));
    CHECK(L.opens_state == 2);

    /* offline again (the reconnect waits 200 ms), with a queued message:
       restore messages first, the queue after */
    rtws_conn_close(g_srv.last, RTWS_CLOSE_GOING_AWAY, "bye");
    loop_until(cx, g_srv.ctx, 2000, is_reconnecting);
    CHECK(rtws_client_get_state(g_cl) == RTWS_CLIENT_RECONNECTING);
    CHECK(rtws_client_send(g_cl, RTWS_OP_TEXT, "queued 2", 8, 0) == RTWS_OK);
    CHECK(rtws_client_get_queued(g_cl, NULL) == 1);
    want_opens = 3, want_msgs = 3, want_conn = 2;
    loop_until(cx, g_srv.ctx, 3000, got_enough);
    CHECK(got_is(2, third, 3));

    /* a clean close, then a restart: the restore messages again */
    CHECK(rtws_client_close(g_cl, 1000, "done") == RTWS_OK);
    loop_until(cx, g_srv.ctx, 2000, is_closed);
    CHECK(is_closed());
    CHECK(rtws_client_restart(g_cl, rtws_time_now_ms()) == RTWS_OK);
    want_opens = 4, want_msgs = 2, want_conn = 3;
    loop_until(cx, g_srv.ctx, 3000, got_enough);
    loop_until(cx, g_srv.ctx, 100, NULL);
    CHECK(got_is(3, fourth, 2));
    CHECK(L.dropped == 0);
    rtws_client_get_stats(g_cl, &st, rtws_time_now_ms());
    CHECK(st.total.msgs_out == 12); /* 3 + 2, 2, 3, 2 */

    rtws_client_free(g_cl); /* with restore messages held: ASan checks they are freed */
    rtws_ctx_free(cx);
    rtws_ctx_free(g_srv.ctx);
}

int main(void) {
    test_restore();
    return T_END();
}
