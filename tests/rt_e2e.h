/* tests/rt_e2e.h - what the realtime end-to-end tests over real sockets
   share: server() (a router on /ws with the HS256 secret SECRET, installed
   in a listening context on 127.0.0.1, the port from the OS; g_history,
   g_max_presence and g_hook set the router's history, max_presence and
   on_receive), client_ctx(), loop() servicing both contexts and an optional
   proxy for ms milliseconds, and a presence log (on_presence, on_error,
   pcount) with rt_user_config() for a client signed in as a user.
   Include after rtws.h, t.h and proxy.h. */
#ifndef RTWS_TESTS_RT_E2E_H
#define RTWS_TESTS_RT_E2E_H
#include <stdio.h>
#include <string.h>
#if defined(__GNUC__)
#define RT_E2E_MAYBE_UNUSED __attribute__((unused)) /* not every test uses each */
#else
#define RT_E2E_MAYBE_UNUSED
#endif

static const char SECRET[] = "test-secret";

static size_t g_history, g_max_presence;
static rtws_router_recv_fn g_hook;

/* ping 0: no heartbeat, else a ping every ping ms and pong ms to answer */
static void heartbeat(rtws_ctx_config *cfg, uint32_t ping, uint32_t pong) {
    if (ping) {
        cfg->conn.ping_interval_ms = ping;
        cfg->conn.pong_timeout_ms = pong;
    } else {
        cfg->conn.heartbeat_off = 1;
    }
}

/* maxq 0: the default send queue cap */
static rtws_ctx *server(rtws_router **rp, int *port, uint32_t ping, uint32_t pong, size_t maxq) {
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.jwt_secret = SECRET;
    rc.jwt_secret_len = sizeof SECRET - 1;
    rc.history = g_history;
    rc.max_presence = g_max_presence;
    rc.on_receive = g_hook;
    *rp = rtws_router_new(&rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    heartbeat(&cfg, ping, pong);
    cfg.conn.max_send_queue = maxq;
    cfg.conn.close_timeout_ms = 500;
    rtws_router_install(*rp, &cfg);
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || rtws_ctx_listen(ctx, "127.0.0.1", 0, port) != RTWS_OK) return NULL;
    return ctx;
}

static rtws_ctx *client_ctx(uint32_t ping, uint32_t pong) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    heartbeat(&cfg, ping, pong);
    return rtws_ctx_new(&cfg);
}

/* b and p may be NULL; room for 7,000 sockets in each context */
static void loop(rtws_ctx *a, rtws_ctx *b, proxy *p, int ms) {
    static struct pollfd f[16000];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    do {
        int na = rtws_ctx_fill_pollfds(a, f, 7000);
        int nb = b ? rtws_ctx_fill_pollfds(b, f + na, 7000) : 0;
        int np = p ? px_fds(p, f + na + nb) : 0;
        poll(f, (nfds_t)(na + nb + np), 2);
        rtws_ctx_service(a, f, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, f + na, nb, rtws_time_now_ms());
        if (p) px_service(p, f + na + nb, np);
    } while (rtws_time_now_ms() < until);
}

/* ---- presence: each event a line "channel user status" ---- */
#define MAXP 256
typedef struct pres_log {
    char lines[MAXP][96];
    int n, errors;
} pres_log;

static void on_presence(rtws_rt *rt, const char *channel, const char *user, const char *status,
                        void *u) {
    pres_log *L = (pres_log *)u;
    (void)rt;
    if (L->n < MAXP) snprintf(L->lines[L->n++], 96, "%s %s %s", channel, user, status);
}

static RT_E2E_MAYBE_UNUSED void on_error(rtws_rt *rt, const char *code, const char *msg, const char *id, void *u) {
    pres_log *L = (pres_log *)u;
    (void)rt;
    (void)id;
    fprintf(stderr, "error %s: %s\n", code, msg);
    L->errors++;
}

static int pcount(const pres_log *L, const char *line) {
    int i, c = 0;
    for (i = 0; i < L->n; i++) c += strcmp(L->lines[i], line) == 0;
    return c;
}

/* c for a client of url signed in as user (its token in tokbuf) whose
   presence events go to L */
static void rt_user_config(rtws_rt_config *c, const char *url, const char *user, pres_log *L,
                           char tokbuf[512]) {
    char claims[128];
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", user);
    rtws_jwt_hs256_sign(claims, SECRET, sizeof SECRET - 1, tokbuf, 512);
    memset(c, 0, sizeof *c);
    c->client.url = url;
    c->token = tokbuf;
    c->on_presence = on_presence;
    c->user = L;
}
#endif
