/* HTTP proxies end to end, issue 20: ws:// through a CONNECT proxy (the
   test's own, tests/connect_proxy.h) given in the options or taken from
   http_proxy/HTTP_PROXY/all_proxy and no_proxy; Basic credentials from the
   proxy URL (407 without them); a refusing proxy (403), an unreachable
   target (502), a proxy that hangs up (status 0); a proxy that cuts the
   tunnel under an open rtws_client, which reconnects through it again, and
   an rtws_client whose server restarts behind the proxy (502s retried). An
   in-process echo server on 127.0.0.1, ports from the OS. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, strncasecmp */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "connect_proxy.h"

typedef struct log {
    int opens, closes, errors, msgs;
    rtws_err err;
    int status;
    char msg[64];
    char url[128];
} log;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE) rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    log *l = (log *)user;
    if (ev->type == RTWS_EV_OPEN) {
        const char *u = rtws_conn_get_url(c);
        l->opens++;
        snprintf(l->url, sizeof l->url, "%s", u ? u : "(null)");
        rtws_conn_send_text(c, "hello", 5);
    } else if (ev->type == RTWS_EV_MESSAGE) {
        l->msgs++;
        snprintf(l->msg, sizeof l->msg, "%.*s", (int)ev->message.len, (const char *)ev->message.data);
    } else if (ev->type == RTWS_EV_ERROR) {
        l->errors++;
        l->err = ev->error.err;
        l->status = ev->error.status;
    } else if (ev->type == RTWS_EV_CLOSE) {
        l->closes++;
    }
}

static rtws_ctx *ctx;
static int sport;

/* Runs the loop until *flag is nonzero or ms pass. */
static void run_until(volatile int *flag, int ms) {
    uint64_t end = rtws_time_now_ms() + (uint64_t)ms;
    while (!*flag && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
}

/* One connection to the echo server with opts; fills l. */
static void attempt(const rtws_client_opts *o, log *l) {
    char url[64];
    rtws_err e;
    rtws_conn *c;
    memset(l, 0, sizeof *l);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo?x=1", sport);
    c = rtws_ctx_connect(ctx, url, o, rtws_time_now_ms(), &e);
    CHECK(c != NULL);
    if (!c) return;
    rtws_conn_set_handler(c, cli_event, l);
    run_until(&l->msgs, 3000);
    if (l->msgs) rtws_conn_close(c, 1000, NULL);
    run_until(&l->closes, 3000);
}

static void test_plain(void) {
    cproxy p;
    rtws_client_opts o;
    log l;
    char px[64], want[96];
    CHECK(cp_start(&p, CP_OPEN, NULL) == 0);
    memset(&o, 0, sizeof o);
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    o.proxy = px;
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK(strcmp(l.msg, "hello") == 0);
    snprintf(want, sizeof want, "CONNECT 127.0.0.1:%d HTTP/1.1", sport);
    CHECK(strcmp(p.seen->last_line, want) == 0);
    CHECK_EQ(p.seen->tunnels, 1);
    CHECK(p.seen->last_auth[0] == '\0');
    snprintf(want, sizeof want, "ws://127.0.0.1:%d/echo?x=1", sport);
    CHECK(strcmp(l.url, want) == 0);
    /* a proxy URL without the scheme, with a trailing slash */
    snprintf(px, sizeof px, "127.0.0.1:%d/", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 2);
    /* not a proxy rtws speaks to */
    {
        rtws_err e;
        o.proxy = "socks5://127.0.0.1:1080";
        CHECK(rtws_ctx_connect(ctx, "ws://127.0.0.1:9/", &o, rtws_time_now_ms(), &e) == NULL);
        CHECK_EQ(e, RTWS_ERR_URL);
        o.proxy = "http://127.0.0.1:1080/path";
        CHECK(rtws_ctx_connect(ctx, "ws://127.0.0.1:9/", &o, rtws_time_now_ms(), &e) == NULL);
        CHECK_EQ(e, RTWS_ERR_URL);
    }
    /* an unreachable target: the proxy's 502 */
    {
        rtws_err e;
        rtws_conn *c;
        o.proxy = px;
        memset(&l, 0, sizeof l);
        c = rtws_ctx_connect(ctx, "ws://127.0.0.1:1/", &o, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_handler(c, cli_event, &l);
        run_until(&l.errors, 3000);
        CHECK_EQ(l.err, RTWS_ERR_PROXY);
        CHECK_EQ(l.status, 502);
        CHECK_EQ(l.opens, 0);
    }
    cp_stop(&p);
}

static void test_auth_refuse_hangup(void) {
    cproxy p;
    rtws_client_opts o;
    log l;
    char px[96];
    /* "user:p@ss" is dXNlcjpwQHNz */
    CHECK(cp_start(&p, CP_AUTH, "Basic dXNlcjpwQHNz") == 0);
    memset(&o, 0, sizeof o);
    o.proxy = px;
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 0);
    CHECK_EQ(l.err, RTWS_ERR_PROXY);
    CHECK_EQ(l.status, 407);
    snprintf(px, sizeof px, "http://user:wrong@127.0.0.1:%d", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.status, 407);
    CHECK(strcmp(p.seen->last_auth, "Basic dXNlcjp3cm9uZw==") == 0);
    snprintf(px, sizeof px, "HTTP://user:p%%40ss@127.0.0.1:%d", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK(strcmp(l.msg, "hello") == 0);
    CHECK_EQ(l.errors, 0);
    cp_stop(&p);

    CHECK(cp_start(&p, CP_REFUSE, NULL) == 0);
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.err, RTWS_ERR_PROXY);
    CHECK_EQ(l.status, 403);
    cp_stop(&p);

    CHECK(cp_start(&p, CP_HANGUP, NULL) == 0);
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    attempt(&o, &l);
    CHECK_EQ(l.err, RTWS_ERR_PROXY);
    CHECK_EQ(l.status, 0);
    CHECK_EQ(p.seen->requests, 1);
    cp_stop(&p);
}

static void clear_env(void) {
    static const char *const v[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                    "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    size_t i;
    for (i = 0; i < sizeof v / sizeof *v; i++) unsetenv(v[i]);
}

static void test_env(void) {
    cproxy p;
    rtws_client_opts o;
    log l;
    char px[64], np[64];
    CHECK(cp_start(&p, CP_OPEN, NULL) == 0);
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    memset(&o, 0, sizeof o);
    clear_env();
    setenv("http_proxy", px, 1);
    attempt(&o, &l); /* not asked: direct */
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->requests, 0);
    o.proxy_from_env = 1;
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1); /* lower case first */
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 2);
    unsetenv("http_proxy");
    setenv("HTTP_PROXY", px, 1);
    attempt(&o, &l);
    CHECK_EQ(p.seen->tunnels, 3);
    unsetenv("HTTP_PROXY");
    setenv("https_proxy", "http://127.0.0.1:1", 1); /* for wss:// only */
    setenv("all_proxy", px, 1);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 4);
    /* no_proxy: the host, the host with its port, '*'; other ports go through */
    setenv("no_proxy", "example.com, 127.0.0.1", 1);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 4);
    snprintf(np, sizeof np, "127.0.0.1:%d", sport);
    unsetenv("no_proxy");
    setenv("NO_PROXY", np, 1);
    attempt(&o, &l);
    CHECK_EQ(p.seen->tunnels, 4);
    setenv("NO_PROXY", "127.0.0.1:1", 1);
    attempt(&o, &l);
    CHECK_EQ(p.seen->tunnels, 5);
    setenv("NO_PROXY", "*", 1);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 5);
    /* a proxy in the options wins over the environment */
    o.proxy = px;
    setenv("NO_PROXY", "", 1);
    setenv("all_proxy", "http://127.0.0.1:1", 1);
    attempt(&o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(p.seen->tunnels, 6);
    clear_env();
    cp_stop(&p);
}

/* ---- the reconnecting client through a proxy that cuts its tunnels ---- */
typedef struct clog {
    int opens, closes;
} clog;
static void rc_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    clog *l = (clog *)user;
    (void)cl;
    if (ev->type != RTWS_CLIENT_EV_CONN) return;
    if (ev->conn.event->type == RTWS_EV_OPEN) l->opens++;
    if (ev->conn.event->type == RTWS_EV_CLOSE) l->closes++;
}

static void test_client_cut(void) {
    cproxy p;
    rtws_client_config cc;
    rtws_client *cl;
    clog l;
    char px[64], url[64];
    rtws_err e;
    CHECK(cp_start(&p, CP_CUT, NULL) == 0);
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", sport);
    memset(&cc, 0, sizeof cc);
    memset(&l, 0, sizeof l);
    cc.url = url;
    cc.opts.proxy = px;
    cc.on_event = rc_event;
    cc.user = &l;
    cc.backoff_base_ms = 50;
    cc.jitter = RTWS_JITTER_NONE;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), &e);
    CHECK(cl != NULL);
    {
        uint64_t end = rtws_time_now_ms() + 5000;
        while (l.opens < 3 && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
    }
    CHECK(l.opens >= 3);      /* opened, cut, reconnected ... */
    CHECK(l.closes >= 2);
    CHECK(p.seen->tunnels >= 3); /* every time through the proxy */
    CHECK_EQ(p.seen->tunnels, p.seen->requests);
    printf("client through a cutting proxy: %d opens, %d tunnels\n", l.opens, p.seen->tunnels);
    rtws_client_free(cl);
    cp_stop(&p);
}

/* ---- the reconnecting client through a proxy while its server restarts ---- */
static rtws_ctx *srv_new(int *port) {
    rtws_ctx_config cfg;
    rtws_ctx *c;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    c = rtws_ctx_new(&cfg);
    if (c && rtws_ctx_listen(c, "127.0.0.1", *port, port) != RTWS_OK) {
        rtws_ctx_free(c);
        c = NULL;
    }
    return c;
}

static void run2(rtws_ctx *b, volatile int *flag, int want, int ms) {
    uint64_t end = rtws_time_now_ms() + (uint64_t)ms;
    while (*flag < want && rtws_time_now_ms() < end) {
        rtws_ctx_run_once(ctx, 5);
        if (b) rtws_ctx_run_once(b, 5);
    }
}

static void test_client_server_restart(void) {
    cproxy p;
    rtws_client_config cc;
    rtws_client *cl;
    clog l;
    char px[64], url[64];
    rtws_err e;
    int port = 0, t1, r1;
    rtws_ctx *srv;
    /* the proxy first: a child forked later would hold the server's listener */
    CHECK(cp_start(&p, CP_OPEN, NULL) == 0);
    srv = srv_new(&port);
    CHECK(srv != NULL);
    if (!srv) {
        cp_stop(&p);
        return;
    }
    snprintf(px, sizeof px, "http://127.0.0.1:%d", p.port);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    memset(&cc, 0, sizeof cc);
    memset(&l, 0, sizeof l);
    cc.url = url;
    cc.opts.proxy = px;
    cc.on_event = rc_event;
    cc.user = &l;
    cc.backoff_base_ms = 50;
    cc.backoff_max_ms = 100;
    cc.jitter = RTWS_JITTER_NONE;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), &e);
    CHECK(cl != NULL);
    run2(srv, &l.opens, 1, 3000);
    CHECK_EQ(l.opens, 1);
    rtws_ctx_free(srv); /* the server goes away: the tunnel ends, attempts get 502 */
    run2(NULL, &l.closes, 1, 3000);
    CHECK_EQ(l.closes, 1);
    {
        uint64_t end = rtws_time_now_ms() + 400;
        while (rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
    }
    t1 = p.seen->tunnels;
    r1 = p.seen->requests;
    CHECK_EQ(t1, 1);
    CHECK(r1 >= 2); /* retried through the proxy while the server was down */
    CHECK(rtws_client_get_state(cl) == RTWS_CLIENT_RECONNECTING ||
          rtws_client_get_state(cl) == RTWS_CLIENT_CONNECTING);
    srv = srv_new(&port); /* back on the same port */
    CHECK(srv != NULL);
    run2(srv, &l.opens, 2, 3000);
    CHECK_EQ(l.opens, 2);
    CHECK_EQ(p.seen->tunnels, 2);
    printf("client through a proxy across a server restart: %d CONNECTs, %d tunnels\n",
           p.seen->requests, p.seen->tunnels);
    rtws_client_free(cl);
    if (srv) rtws_ctx_free(srv);
    cp_stop(&p);
}

int main(void) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    clear_env();
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    CHECK_EQ(rtws_ctx_listen(ctx, "127.0.0.1", 0, &sport), RTWS_OK);
    test_plain();
    test_auth_refuse_hangup();
    test_env();
    test_client_cut();
    test_client_server_restart();
    rtws_ctx_free(ctx);
    return T_END();
}
