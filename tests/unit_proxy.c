/* tests/unit_proxy.c - the pure parts of proxies and redirects: no_proxy
   matching (rtws_proxy_bypass), Location resolution (rtws_url_resolve), and
   a client connection's CONNECT exchange and redirect hook, fed by hand. */
#define RTWS_IMPLEMENTATION
#include "../rtws.h"
#include "t.h"
#include <stdlib.h>

static void test_bypass(void) {
    CHECK(!rtws_proxy_bypass(NULL, "a.com", 5, 80));
    CHECK(!rtws_proxy_bypass("", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("*", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("x.org, *", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("a.com", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("A.COM", "a.Com", 5, 80));
    CHECK(rtws_proxy_bypass("a.com", "www.a.com", 9, 80));
    CHECK(rtws_proxy_bypass(".a.com", "www.a.com", 9, 80));
    CHECK(rtws_proxy_bypass(".a.com", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("*.a.com", "x.y.a.com", 9, 80));
    CHECK(!rtws_proxy_bypass("a.com", "ba.com", 6, 80));
    CHECK(!rtws_proxy_bypass("a.com", "a.com.evil", 10, 80));
    CHECK(!rtws_proxy_bypass("www.a.com", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("x.org,a.com", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("x.org  a.com", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass(" x.org , a.com ,", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("a.com:8080", "a.com", 5, 8080));
    CHECK(!rtws_proxy_bypass("a.com:8080", "a.com", 5, 80));
    CHECK(!rtws_proxy_bypass("a.com:", "a.com", 5, 80));
    CHECK(!rtws_proxy_bypass("a.com:8x", "a.com", 5, 80));
    CHECK(!rtws_proxy_bypass("a.com:99999", "a.com", 5, 80));
    CHECK(rtws_proxy_bypass("127.0.0.1", "127.0.0.1", 9, 80));
    CHECK(!rtws_proxy_bypass("127.0.0.1", "127.0.0.10", 10, 80));
    CHECK(rtws_proxy_bypass("::1", "::1", 3, 80));
    CHECK(rtws_proxy_bypass("[::1]", "::1", 3, 80));
    CHECK(rtws_proxy_bypass("[::1]:9000", "::1", 3, 9000));
    CHECK(!rtws_proxy_bypass("[::1]:9000", "::1", 3, 9001));
    CHECK(rtws_proxy_bypass("[::1]", "[::1]", 5, 1));
    CHECK(rtws_proxy_bypass("FE80::1", "fe80::1", 7, 1));
    CHECK(!rtws_proxy_bypass("[::1", "::1", 3, 80));
    CHECK(!rtws_proxy_bypass(".", "a.com", 5, 80));
}

static void resolve_ok(const char *base, const char *ref, const char *want) {
    char out[256];
    size_t n = 99;
    rtws_err e = rtws_url_resolve(base, ref, strlen(ref), out, sizeof out, &n);
    CHECK_EQ(e, RTWS_OK);
    if (e != RTWS_OK || strcmp(out, want) != 0)
        fprintf(stderr, "  resolve(%s, %s) = %s (%d), want %s\n", base, ref, out, (int)e, want);
    CHECK(strcmp(out, want) == 0);
    CHECK_EQ(n, strlen(want));
}

static void test_resolve(void) {
    char out[64];
    const char *b = "ws://h.example:8080/a/b/c?q=1";
    resolve_ok(b, "ws://x.org/p", "ws://x.org/p");
    resolve_ok(b, "wss://x.org/p?z", "wss://x.org/p?z");
    resolve_ok(b, "http://x.org:81/", "ws://x.org:81/");
    resolve_ok(b, "HTTPS://x.org", "wss://x.org");
    resolve_ok("wss://h/", "//o.org/x", "wss://o.org/x");
    resolve_ok(b, "//o.org/x", "ws://o.org/x");
    resolve_ok(b, "/root", "ws://h.example:8080/root");
    resolve_ok(b, "/root?k=v#frag", "ws://h.example:8080/root?k=v");
    resolve_ok(b, "d", "ws://h.example:8080/a/b/d");
    resolve_ok(b, "./d", "ws://h.example:8080/a/b/d");
    resolve_ok(b, "../d", "ws://h.example:8080/a/d");
    resolve_ok(b, "../../../../d", "ws://h.example:8080/d");
    resolve_ok(b, "..", "ws://h.example:8080/a/");
    resolve_ok(b, ".", "ws://h.example:8080/a/b/");
    resolve_ok(b, "?x=2", "ws://h.example:8080/a/b/c?x=2");
    resolve_ok(b, "", "ws://h.example:8080/a/b/c?q=1");
    resolve_ok(b, "#only", "ws://h.example:8080/a/b/c?q=1");
    resolve_ok("ws://h", "x", "ws://h/x");
    resolve_ok("ws://h", "?q", "ws://h/?q");
    resolve_ok("wss://[::1]:9/a", "b", "wss://[::1]:9/b");
    resolve_ok(b, "ws://x.org/a/./b/../c", "ws://x.org/a/c");
    CHECK_EQ(rtws_url_resolve(b, "ftp://x.org/", 12, out, sizeof out, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_resolve(b, "ws://u:p@x.org/", 15, out, sizeof out, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_resolve(b, "ws://", 5, out, sizeof out, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_resolve(b, "/a b", 4, out, sizeof out, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_resolve("nope", "/x", 2, out, sizeof out, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_resolve(b, "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                              76, out, sizeof out, NULL),
             RTWS_ERR_NOSPACE);
    CHECK(out[0] == '\0');
}

/* ---- a client connection fed by hand ---- */

typedef struct rec {
    int opened, closed, errors;
    rtws_err err;
    int status;
} rec;

static void on_ev(rtws_conn *c, const rtws_event *ev, void *user) {
    rec *r = (rec *)user;
    (void)c;
    if (ev->type == RTWS_EV_OPEN) r->opened++;
    if (ev->type == RTWS_EV_CLOSE) r->closed++;
    if (ev->type == RTWS_EV_ERROR) {
        r->errors++;
        r->err = ev->error.err;
        r->status = ev->error.status;
    }
}

static int fixed_random(void *buf, size_t len, void *user) {
    (void)user;
    memset(buf, 7, len);
    return 0;
}

static char accept_value[29];

/* Takes every output byte as a string. */
static size_t take_out(rtws_conn *c, char *buf, size_t cap) {
    size_t n = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(c, &len)) != NULL && n + len < cap) {
        memcpy(buf + n, p, len);
        n += len;
        rtws_conn_out_done(c, len);
    }
    buf[n] = '\0';
    return n;
}

static void start(rtws_conn *c, rtws_config *cfg, rec *r, const char *auth) {
    rtws_client_opts o;
    uint8_t raw[16];
    char key[25];
    memset(cfg, 0, sizeof *cfg);
    memset(r, 0, sizeof *r);
    cfg->role = RTWS_CLIENT;
    cfg->on_event = on_ev;
    cfg->user = r;
    cfg->random = fixed_random;
    rtws_conn_init(c, cfg);
    memset(&o, 0, sizeof o);
    o.host = "target.example:8080";
    o.path = "/ws";
    o.tunnel = "target.example:8080";
    o.proxy_authorization = auth;
    CHECK_EQ(rtws_conn_start(c, &o, 0), RTWS_OK);
    memset(raw, 7, 16);
    rtws_base64_encode(raw, 16, key, sizeof key);
    rtws_upgrade_accept_key(key, 24, accept_value);
}

static const char *ok101(void) {
    static char b[256];
    snprintf(b, sizeof b,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             accept_value);
    return b;
}

static void test_tunnel(void) {
    rtws_conn c;
    rtws_config cfg;
    rec r;
    char out[2048];
    const char *ans = "HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n";
    size_t i;
    /* the CONNECT goes first, alone; the upgrade after the 2xx */
    start(&c, &cfg, &r, "Basic dTpw");
    take_out(&c, out, sizeof out);
    CHECK(strcmp(out, "CONNECT target.example:8080 HTTP/1.1\r\nHost: target.example:8080\r\n"
                      "Proxy-Authorization: Basic dTpw\r\n\r\n") == 0);
    for (i = 0; ans[i]; i++) /* byte by byte */
        CHECK(rtws_conn_recv(&c, ans + i, 1, 1, NULL) == RTWS_EAGAIN);
    take_out(&c, out, sizeof out);
    CHECK(strncmp(out, "GET /ws HTTP/1.1\r\nHost: target.example:8080\r\n", 44) == 0);
    CHECK(strstr(out, "Proxy-Authorization") == NULL);
    CHECK(strstr(out, "CONNECT") == NULL);
    CHECK_EQ(rtws_conn_recv(&c, ok101(), strlen(ok101()), 2, NULL), RTWS_OK);
    CHECK_EQ(r.opened, 1);
    CHECK_EQ(r.errors, 0);
    rtws_conn_free(&c);

    /* answer and 101 in one piece, no credentials */
    start(&c, &cfg, &r, NULL);
    take_out(&c, out, sizeof out);
    CHECK(strstr(out, "Proxy-Authorization") == NULL);
    {
        char both[512];
        snprintf(both, sizeof both, "HTTP/1.0 200 OK\r\n\r\n%s", ok101());
        rtws_conn_recv(&c, both, strlen(both), 1, NULL);
    }
    CHECK_EQ(r.opened, 1);
    take_out(&c, out, sizeof out);
    CHECK(strncmp(out, "GET /ws ", 8) == 0);
    rtws_conn_free(&c);

    /* refusals carry the proxy's status: 407 apart from 403 and 502 */
    {
        static const int sts[] = {407, 403, 502, 101, 301};
        for (i = 0; i < 5; i++) {
            char a[128];
            start(&c, &cfg, &r, NULL);
            take_out(&c, out, sizeof out);
            snprintf(a, sizeof a, "HTTP/1.1 %d No\r\nContent-Length: 0\r\n\r\n", sts[i]);
            CHECK_EQ(rtws_conn_recv(&c, a, strlen(a), 1, NULL), RTWS_ERR_PROXY);
            CHECK_EQ(r.err, RTWS_ERR_PROXY);
            CHECK_EQ(r.status, sts[i]);
            CHECK_EQ(r.opened, 0);
            CHECK_EQ(rtws_conn_get_state(&c), RTWS_STATE_CLOSED);
            take_out(&c, out, sizeof out);
            CHECK(out[0] == '\0'); /* the upgrade never went out */
            rtws_conn_free(&c);
        }
    }
    /* garbage, and a proxy that hangs up before answering */
    start(&c, &cfg, &r, NULL);
    CHECK_EQ(rtws_conn_recv(&c, "SSH-2.0\r\n\r\n", 11, 1, NULL), RTWS_ERR_PROXY);
    CHECK_EQ(r.status, 0);
    rtws_conn_free(&c);
    start(&c, &cfg, &r, NULL);
    rtws_conn_recv(&c, "HTTP/1.1 200", 12, 1, NULL);
    rtws_conn_recv_eof(&c, 2);
    CHECK_EQ(r.err, RTWS_ERR_PROXY);
    CHECK_EQ(rtws_conn_get_state(&c), RTWS_STATE_CLOSED);
    rtws_conn_free(&c);
    /* after the tunnel, the end of the stream is the handshake's failure */
    start(&c, &cfg, &r, NULL);
    rtws_conn_recv(&c, ans, strlen(ans), 1, NULL);
    rtws_conn_recv_eof(&c, 2);
    CHECK_EQ(r.err, RTWS_ERR_HANDSHAKE);
    rtws_conn_free(&c);
    /* a bad tunnel is the caller's bug */
    {
        rtws_client_opts o;
        memset(&cfg, 0, sizeof cfg);
        cfg.random = fixed_random;
        rtws_conn_init(&c, &cfg);
        memset(&o, 0, sizeof o);
        o.host = "h";
        o.tunnel = "h:1\r\nX: y";
        CHECK_EQ(rtws_conn_start(&c, &o, 0), RTWS_ERR_INVALID);
        o.tunnel = "";
        CHECK_EQ(rtws_conn_start(&c, &o, 0), RTWS_ERR_INVALID);
        o.tunnel = "h:1";
        o.proxy_authorization = "Basic x\r\n";
        CHECK_EQ(rtws_conn_start(&c, &o, 0), RTWS_ERR_INVALID);
        rtws_conn_free(&c);
    }
}

/* ---- the redirect hook ---- */

static rtws_err hook_ret;
static int hook_calls, hook_status;
static char hook_loc[128];
static rtws_err hook(rtws_conn *c, int status, const char *loc, size_t len) {
    (void)c;
    hook_calls++;
    hook_status = status;
    snprintf(hook_loc, sizeof hook_loc, "%.*s", loc ? (int)len : 6, loc ? loc : "(none)");
    return hook_ret;
}

static void test_redirect_hook(void) {
    static const int sts[] = {301, 302, 307, 308, 303, 300};
    rtws__conn_io io;
    rtws_conn c;
    rtws_config cfg;
    rtws_client_opts o;
    rec r;
    char out[2048], a[256];
    size_t i;
    memset(&io, 0, sizeof io);
    io.redirect = hook;
    for (i = 0; i < 6; i++) {
        int follows = sts[i] != 303 && sts[i] != 300;
        memset(&cfg, 0, sizeof cfg);
        memset(&r, 0, sizeof r);
        cfg.on_event = on_ev;
        cfg.user = &r;
        cfg.random = fixed_random;
        rtws_conn_init(&c, &cfg);
        c.priv_.io_ = &io;
        memset(&o, 0, sizeof o);
        o.host = "h";
        CHECK_EQ(rtws_conn_start(&c, &o, 0), RTWS_OK);
        take_out(&c, out, sizeof out);
        hook_calls = 0;
        hook_ret = RTWS_OK;
        snprintf(a, sizeof a, "HTTP/1.1 %d Moved\r\nLocation: /next?x=%d\r\n\r\n", sts[i], (int)i);
        rtws_conn_recv(&c, a, strlen(a), 1, NULL);
        CHECK_EQ(hook_calls, follows);
        if (follows) {
            char want[32];
            snprintf(want, sizeof want, "/next?x=%d", (int)i);
            CHECK_EQ(hook_status, sts[i]);
            CHECK(strcmp(hook_loc, want) == 0);
            CHECK_EQ(r.errors + r.closed + r.opened, 0); /* quiet: the host starts over */
            CHECK_EQ(rtws_conn_get_state(&c), RTWS_STATE_HANDSHAKE);
            rtws_conn_recv(&c, "junk", 4, 2, NULL); /* ignored */
            CHECK_EQ(r.errors, 0);
        } else {
            CHECK_EQ(r.err, RTWS_ERR_HANDSHAKE);
            CHECK_EQ(r.status, sts[i]);
        }
        rtws_conn_free(&c);
    }
    /* declined (redirects off) or refused by the host */
    {
        static const rtws_err rets[] = {RTWS_EAGAIN, RTWS_ERR_REDIRECTS, RTWS_ERR_REDIRECT_LOOP,
                                        RTWS_ERR_DOWNGRADE};
        for (i = 0; i < 4; i++) {
            memset(&r, 0, sizeof r);
            rtws_conn_init(&c, &cfg);
            c.priv_.io_ = &io;
            CHECK_EQ(rtws_conn_start(&c, &o, 0), RTWS_OK);
            hook_ret = rets[i];
            snprintf(a, sizeof a, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n");
            rtws_conn_recv(&c, a, strlen(a), 1, NULL);
            CHECK(strcmp(hook_loc, "(none)") == 0);
            CHECK_EQ(r.err, i == 0 ? RTWS_ERR_HANDSHAKE : rets[i]);
            CHECK_EQ(r.status, 302);
            CHECK_EQ(rtws_conn_get_state(&c), RTWS_STATE_CLOSED);
            rtws_conn_free(&c);
        }
    }
}

int main(void) {
    test_bypass();
    test_resolve();
    test_tunnel();
    test_redirect_hook();
    return T_END();
}
