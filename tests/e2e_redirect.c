/* Redirects end to end, issue 20: 301/302/307/308 on the upgrade followed
   (relative and absolute Locations, http:// mapped to ws://), the final URL
   from rtws_conn_get_url, Authorization kept on the same host and port and
   dropped when they change, loops, the max_redirects limit, redirects_off,
   a Location missing or unusable; the downgrade rule (wss:// to ws://) on
   the host's redirect hook itself, as no TLS peer is needed for it. A
   forked redirecting server (tests/redirect_server.h) and an in-process
   echo server on 127.0.0.1, ports from the OS. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, strdup */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "redirect_server.h"

typedef struct log {
    int opens, closes, errors, msgs, done;
    rtws_err err;
    int status;
    char url[160];
} log;

static char final_auth[64];
static int final_opens;

static int srv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    const rtws_str *v = rtws_http_get_header(req, "Authorization");
    (void)c, (void)proto, (void)user;
    snprintf(final_auth, sizeof final_auth, "%.*s", v ? (int)v->len : 0, v ? v->p : "");
    final_opens++;
    return 0;
}

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE)
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    log *l = (log *)user;
    if (ev->type == RTWS_EV_OPEN) {
        const char *u = rtws_conn_get_url(c);
        l->opens++;
        snprintf(l->url, sizeof l->url, "%s", u ? u : "(null)");
        rtws_conn_send_text(c, "hi", 2);
    } else if (ev->type == RTWS_EV_MESSAGE) {
        l->msgs++;
        rtws_conn_close(c, 1000, NULL);
    } else if (ev->type == RTWS_EV_ERROR) {
        l->errors++;
        l->err = ev->error.err;
        l->status = ev->error.status;
        l->done = 1; /* no CLOSE follows a failed handshake */
    } else if (ev->type == RTWS_EV_CLOSE) {
        l->closes++;
        l->done = 1;
    }
}

static rtws_ctx *ctx;
static int sport;
static rserver rs;

static void go(const char *path, const rtws_client_opts *o, log *l) {
    char url[96];
    rtws_err e;
    rtws_conn *c;
    uint64_t end = rtws_time_now_ms() + 5000;
    memset(l, 0, sizeof *l);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", rs.port, path);
    c = rtws_ctx_connect(ctx, url, o, rtws_time_now_ms(), &e);
    CHECK(c != NULL);
    if (!c) return;
    rtws_conn_set_handler(c, cli_event, l);
    while (!l->done && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
    CHECK(l->done);
}

static void test_follow(void) {
    rtws_client_opts o;
    log l;
    char want[96];
    int n0;
    memset(&o, 0, sizeof o);
    o.authorization = "Bearer t0k3n";
    /* /a -301-> b (relative, same host) -302-> http://127.0.0.1:S/final?x */
    n0 = rs.seen->n;
    final_opens = 0;
    go("/a", &o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK_EQ(l.msgs, 1);
    CHECK_EQ(l.errors, 0);
    snprintf(want, sizeof want, "ws://127.0.0.1:%d/final?x", sport);
    CHECK(strcmp(l.url, want) == 0);
    CHECK_EQ(rs.seen->n - n0, 2);
    CHECK(strcmp(rs.seen->line[n0], "GET /a HTTP/1.1") == 0);
    CHECK(strcmp(rs.seen->line[n0 + 1], "GET /b HTTP/1.1") == 0);
    CHECK(strcmp(rs.seen->auth[n0], "Bearer t0k3n") == 0);
    CHECK(strcmp(rs.seen->auth[n0 + 1], "Bearer t0k3n") == 0); /* same host and port */
    CHECK_EQ(final_opens, 1);
    CHECK(strcmp(final_auth, "") == 0); /* another port: dropped */
    /* 307 and 308 with absolute ws:// Locations, to "localhost": another host */
    go("/t307", &o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK(strcmp(final_auth, "") == 0);
    go("/t308", &o, &l);
    CHECK_EQ(l.opens, 1);
    snprintf(want, sizeof want, "ws://localhost:%d/final", sport);
    CHECK(strcmp(l.url, want) == 0);
    /* without a redirect the header arrives: the drop above is the redirect's */
    {
        char url[96];
        rtws_err e;
        rtws_conn *c;
        uint64_t end = rtws_time_now_ms() + 5000;
        memset(&l, 0, sizeof l);
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/final", sport);
        c = rtws_ctx_connect(ctx, url, &o, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_handler(c, cli_event, &l);
        while (c && !l.done && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
        CHECK_EQ(l.opens, 1);
        CHECK(strcmp(final_auth, "Bearer t0k3n") == 0);
        CHECK(strcmp(l.url, url) == 0);
    }
}

static void test_refused(void) {
    rtws_client_opts o;
    log l;
    memset(&o, 0, sizeof o);
    go("/loop1", &o, &l); /* loop1 -> loop2 -> loop1 */
    CHECK_EQ(l.opens, 0);
    CHECK_EQ(l.err, RTWS_ERR_REDIRECT_LOOP);
    CHECK_EQ(l.status, 302);
    go("/self", &o, &l); /* a 301 to itself */
    CHECK_EQ(l.err, RTWS_ERR_REDIRECT_LOOP);
    CHECK_EQ(l.status, 301);
    /* c1 -> c2 -> c3 -> c4 -> final: four hops */
    go("/c1", &o, &l);
    CHECK_EQ(l.opens, 1); /* the default (5) allows them */
    o.max_redirects = 4;
    go("/c1", &o, &l);
    CHECK_EQ(l.opens, 1);
    o.max_redirects = 3;
    go("/c1", &o, &l);
    CHECK_EQ(l.opens, 0);
    CHECK_EQ(l.err, RTWS_ERR_REDIRECTS);
    CHECK_EQ(l.status, 308);
    o.max_redirects = 0;
    o.redirects_off = 1;
    go("/a", &o, &l);
    CHECK_EQ(l.err, RTWS_ERR_HANDSHAKE);
    CHECK_EQ(l.status, 301);
    o.redirects_off = 0;
    go("/bad", &o, &l); /* Location: ftp://... */
    CHECK_EQ(l.err, RTWS_ERR_URL);
    CHECK_EQ(l.status, 302);
    go("/nope", &o, &l); /* 404 */
    CHECK_EQ(l.err, RTWS_ERR_HANDSHAKE);
    CHECK_EQ(l.status, 404);
    go("/gone", &o, &l); /* a redirect to a port nobody listens on */
    CHECK_EQ(l.err, RTWS_ERR_IO);
}

/* The host's hook on a route of its own: wss:// to ws:// needs allow_downgrade. */
static void test_downgrade_hook(void) {
    rtws_client_opts o;
    rtws_err e;
    rtws_conn *c;
    rtws__sock *s;
    rtws__route *r;
    char url[64];
    memset(&o, 0, sizeof o);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/final", sport);
    c = rtws_ctx_connect(ctx, url, &o, rtws_time_now_ms(), &e);
    CHECK(c != NULL);
    if (!c) return;
    s = (rtws__sock *)c;
    r = rtws__route_of(s);
    CHECK(r != NULL);
    free(r->url);
    r->url = strdup("wss://a.example/x"); /* as if it had come over TLS */
    CHECK_EQ(rtws__sock_redirect(c, 301, "ws://b.example/", 15), RTWS_ERR_DOWNGRADE);
    CHECK_EQ(rtws__sock_redirect(c, 301, "http://a.example/", 17), RTWS_ERR_DOWNGRADE);
    CHECK(r->next == NULL);
    r->allow_downgrade = 1;
    CHECK_EQ(rtws__sock_redirect(c, 301, "http://b.example/y", 18), RTWS_OK);
    CHECK(r->next && strcmp(r->next, "ws://b.example/y") == 0);
    free(r->next);
    r->next = NULL;
    CHECK_EQ(rtws__sock_redirect(c, 302, NULL, 0), RTWS_EAGAIN); /* no Location */
    rtws_conn_close(c, 1000, NULL);
}

/* rtws_client follows the redirects at each attempt: its connection is the
   same rtws_conn from the first request to the open */
typedef struct clog {
    int opens, states;
    char url[96];
} clog;
static void rc_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    clog *l = (clog *)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_OPEN) {
        const char *u = rtws_conn_get_url(ev->conn.conn);
        l->opens++;
        CHECK(ev->conn.conn == rtws_client_get_conn(cl));
        snprintf(l->url, sizeof l->url, "%s", u ? u : "(null)");
    }
}

static void test_client(void) {
    rtws_client_config cc;
    rtws_client *cl;
    clog l;
    char url[64], want[64];
    rtws_err e;
    uint64_t end = rtws_time_now_ms() + 5000;
    memset(&cc, 0, sizeof cc);
    memset(&l, 0, sizeof l);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/c1", rs.port);
    cc.url = url;
    cc.on_event = rc_event;
    cc.user = &l;
    cl = rtws_client_new(ctx, &cc, rtws_time_now_ms(), &e);
    CHECK(cl != NULL);
    if (!cl) return;
    while (!l.opens && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
    CHECK_EQ(l.opens, 1);
    snprintf(want, sizeof want, "ws://127.0.0.1:%d/final", sport);
    CHECK(strcmp(l.url, want) == 0);
    CHECK_EQ(rtws_client_get_state(cl), RTWS_CLIENT_OPEN);
    rtws_client_free(cl);
}

int main(void) {
    rtws_ctx_config cfg;
    char loc[96];
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.on_accept = srv_accept;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    CHECK_EQ(rtws_ctx_listen(ctx, "127.0.0.1", 0, &sport), RTWS_OK);
    memset(&rs, 0, sizeof rs);
    rs_rule_add(&rs, "/a", 301, "b");
    snprintf(loc, sizeof loc, "http://127.0.0.1:%d/final?x#frag", sport);
    rs_rule_add(&rs, "/b", 302, loc);
    snprintf(loc, sizeof loc, "ws://localhost:%d/final", sport);
    rs_rule_add(&rs, "/t307", 307, loc);
    rs_rule_add(&rs, "/t308", 308, loc);
    rs_rule_add(&rs, "/loop1", 302, "/loop2");
    rs_rule_add(&rs, "/loop2", 302, "loop1");
    rs_rule_add(&rs, "/self", 301, "/self");
    rs_rule_add(&rs, "/c1", 308, "/c2");
    rs_rule_add(&rs, "/c2", 308, "/c3");
    rs_rule_add(&rs, "/c3", 308, "/c4");
    snprintf(loc, sizeof loc, "ws://127.0.0.1:%d/final", sport);
    rs_rule_add(&rs, "/c4", 308, loc);
    rs_rule_add(&rs, "/bad", 302, "ftp://127.0.0.1/");
    rs_rule_add(&rs, "/gone", 302, "ws://127.0.0.1:1/");
    CHECK(rs_start(&rs) == 0);
    test_follow();
    test_refused();
    test_downgrade_hook();
    test_client();
    rs_stop(&rs);
    rtws_ctx_free(ctx);
    return T_END();
}
