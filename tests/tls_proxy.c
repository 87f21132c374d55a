/* wss:// through an HTTP proxy, issue 20: TCP to the proxy, CONNECT, then
   TLS with the target inside the tunnel (the name checked is the target's),
   then the upgrade; https_proxy from the environment (http_proxy is not
   used for wss://); a ws:// URL redirected to wss:// on the same rtws_conn,
   directly and through the proxy. The CONNECT proxy of the suite
   (tests/connect_proxy.h), the redirecting server (tests/redirect_server.h)
   and an in-process wss:// echo server on 127.0.0.1, ports from the OS.
   Built with -DRTWS_USE_BEARSSL -lbearssl; certificates from
   tests/tls_certs.sh (build/tls). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, strncasecmp */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "connect_proxy.h"
#include "redirect_server.h"

#define CERTS "build/tls/"

typedef struct log {
    int opens, msgs, errors, done;
    rtws_err err;
    int detail;
    unsigned tls_version;
    char url[128], msg[32];
} log;

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
        l->tls_version = rtws_conn_get_tls_version(c);
        snprintf(l->url, sizeof l->url, "%s", u ? u : "(null)");
        rtws_conn_send_text(c, "secret", 6);
    } else if (ev->type == RTWS_EV_MESSAGE) {
        l->msgs++;
        snprintf(l->msg, sizeof l->msg, "%.*s", (int)ev->message.len, (const char *)ev->message.data);
        rtws_conn_close(c, 1000, NULL);
    } else if (ev->type == RTWS_EV_ERROR) {
        l->errors++;
        l->err = ev->error.err;
        l->detail = ev->error.detail;
        l->done = 1;
    } else if (ev->type == RTWS_EV_CLOSE) {
        l->done = 1;
    }
}

static rtws_ctx *ctx;

static void go(const char *url, const rtws_client_opts *o, log *l) {
    rtws_err e;
    rtws_conn *c;
    uint64_t end = rtws_time_now_ms() + 8000;
    memset(l, 0, sizeof *l);
    c = rtws_ctx_connect(ctx, url, o, rtws_time_now_ms(), &e);
    CHECK(c != NULL);
    if (!c) return;
    rtws_conn_set_handler(c, cli_event, l);
    while (!l->done && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 10);
    CHECK(l->done);
}

int main(void) {
    rtws_ctx_config cfg;
    rtws_tls_client_config tls;
    rtws_tls_server_config st;
    rtws_client_opts o;
    cproxy p;
    rserver rs;
    log l;
    int port = 0;
    char url[128], px[64], want[96];
    if (system("tests/tls_certs.sh build/tls") != 0) {
        printf("cannot make test certificates (openssl?)\n0 passed, 1 failed\n");
        return 1;
    }
    memset(&cfg, 0, sizeof cfg);
    memset(&tls, 0, sizeof tls);
    memset(&st, 0, sizeof st);
    tls.ca_file = CERTS "ca.pem";
    cfg.tls = &tls;
    cfg.conn.on_event = srv_event;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 5;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    st.cert_file = CERTS "srv_rsa.pem";
    st.key_file = CERTS "rsa.key";
    CHECK_EQ(rtws_ctx_listen_tls(ctx, "127.0.0.1", 0, &st, &port), RTWS_OK);
    CHECK(cp_start(&p, CP_AUTH, "Basic dTpw") == 0);
    memset(&o, 0, sizeof o);
    snprintf(px, sizeof px, "http://u:p@127.0.0.1:%d", p.port);
    o.proxy = px;

    /* wss:// through the proxy: the CONNECT in the clear, TLS inside */
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
    go(url, &o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK(strcmp(l.msg, "secret") == 0);
    CHECK(l.tls_version >= 0x0302);
    CHECK(strcmp(l.url, url) == 0);
    snprintf(want, sizeof want, "CONNECT 127.0.0.1:%d HTTP/1.1", port);
    CHECK(strcmp(p.seen->last_line, want) == 0);
    CHECK_EQ(p.seen->tunnels, 1);
    /* the name checked is the target's: localhost is in the certificate,
       other names are not (the proxy's address never is) */
    snprintf(url, sizeof url, "wss://localhost:%d/echo", port);
    go(url, &o, &l);
    CHECK_EQ(l.opens, 1);
    snprintf(want, sizeof want, "CONNECT localhost:%d HTTP/1.1", port);
    CHECK(strcmp(p.seen->last_line, want) == 0);
    {
        rtws_ctx *c2;
        rtws_ctx_config cfg2 = cfg;
        rtws_tls_client_config t2 = tls;
        t2.ca_file = CERTS "rogue_ca.pem"; /* trusts nothing the server has */
        cfg2.tls = &t2;
        c2 = rtws_ctx_new(&cfg2);
        CHECK(c2 != NULL);
        if (c2) {
            rtws_ctx *keep = ctx;
            rtws_err e;
            rtws_conn *c;
            uint64_t end = rtws_time_now_ms() + 8000;
            memset(&l, 0, sizeof l);
            snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
            c = rtws_ctx_connect(c2, url, &o, rtws_time_now_ms(), &e);
            CHECK(c != NULL);
            if (c) rtws_conn_set_handler(c, cli_event, &l);
            while (c && !l.done && rtws_time_now_ms() < end) {
                rtws_ctx_run_once(c2, 5);
                rtws_ctx_run_once(keep, 5);
            }
            CHECK_EQ(l.opens, 0);
            CHECK_EQ(l.err, RTWS_ERR_TLS);
            rtws_ctx_free(c2);
        }
    }
    /* https_proxy from the environment; http_proxy is for ws:// */
    memset(&o, 0, sizeof o);
    o.proxy_from_env = 1;
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    setenv("http_proxy", px, 1);
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
    {
        int before = p.seen->tunnels;
        go(url, &o, &l);
        CHECK_EQ(l.opens, 1);
        CHECK_EQ(p.seen->tunnels, before); /* direct */
        setenv("https_proxy", px, 1);
        go(url, &o, &l);
        CHECK_EQ(l.opens, 1);
        CHECK_EQ(p.seen->tunnels, before + 1);
        unsetenv("https_proxy");
        unsetenv("http_proxy");
    }

    /* ws:// redirected to wss://, directly and through the proxy */
    memset(&rs, 0, sizeof rs);
    snprintf(want, sizeof want, "wss://127.0.0.1:%d/echo", port);
    rs_rule_add(&rs, "/up", 302, want);
    CHECK(rs_start(&rs) == 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/up", rs.port);
    memset(&o, 0, sizeof o);
    go(url, &o, &l);
    CHECK_EQ(l.opens, 1);
    CHECK(strcmp(l.url, want) == 0);
    CHECK(l.tls_version >= 0x0302);
    CHECK(strcmp(l.msg, "secret") == 0);
    o.proxy = px;
    {
        int before = p.seen->tunnels;
        go(url, &o, &l);
        CHECK_EQ(l.opens, 1);
        CHECK(strcmp(l.url, want) == 0);
        CHECK_EQ(p.seen->tunnels, before + 2); /* one tunnel per hop */
    }
    rs_stop(&rs);
    cp_stop(&p);
    rtws_ctx_free(ctx);
    return T_END();
}
