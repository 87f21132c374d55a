/* Plain HTTP through on_http with request bodies (issue 13): a context on
   127.0.0.1, port 0, and raw TCP requests sent in one piece and byte by
   byte. POST, PUT and DELETE bodies reach the hook as req->body, a body over
   max_http_body is answered 413 without calling the hook, chunked 411, a bad
   or conflicting Content-Length 400, and rtws_ctx_get_conn_count() counts
   WebSocket connections only, not the request being answered. Then a
   router installed in a context, real clock: a token's exp passing on an
   open connection gives token_expired, then close 4001 after the grace, and
   an auth with a fresh token within the grace keeps the connection. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct server {
    rtws_ctx *ctx;
    int port, calls;
    char method[16], body[200000];
    size_t body_len;
    size_t count_in_hook; /* rtws_ctx_get_conn_count() seen inside on_http */
    char reply[256];
} server;

static int srv_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *r, void *user) {
    server *s = (server *)user;
    char tok[64];
    size_t n = 0;
    (void)c;
    s->calls++;
    s->count_in_hook = rtws_ctx_get_conn_count(s->ctx);
    snprintf(s->method, sizeof s->method, "%.*s", (int)req->method.len, req->method.p);
    s->body_len = req->body.len;
    if (req->body.len <= sizeof s->body) memcpy(s->body, req->body.p, req->body.len);
    /* a token endpoint: echo the method, the body length and ?user= decoded */
    if (rtws_http_get_query(req, "user", tok, sizeof tok, &n) != 1) n = 0;
    snprintf(s->reply, sizeof s->reply, "%s %zu %.*s", s->method, req->body.len, (int)n, tok);
    r->status = 200;
    r->body = s->reply;
    r->body_len = strlen(s->reply);
    return 1;
}

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)ev, (void)user;
}

static int srv_start(server *s, size_t max_body) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.on_http = srv_http;
    cfg.conn.user = s;
    cfg.conn.max_http_body = max_body;
    cfg.conn.heartbeat_off = 1;
    cfg.timer_ms = 10;
    s->ctx = rtws_ctx_new(&cfg);
    return s->ctx && rtws_ctx_listen(s->ctx, "127.0.0.1", 0, &s->port) == RTWS_OK ? 0 : -1;
}

static int tcp_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

/* Sends req (in pieces of step bytes, the server running between them) and
   reads the answer until the server closes; returns the status code, the
   whole answer in resp. */
static int exchange(server *s, const char *req, size_t len, size_t step, char *resp, size_t cap) {
    int fd = tcp_connect(s->port), status = -1, i;
    size_t off = 0, got = 0;
    if (fd < 0) return -1;
    resp[0] = 0;
    for (i = 0; i < 3000; i++) { /* at most ~30 s */
        ssize_t k;
        if (off < len) {
            size_t n = len - off < step ? len - off : step;
            k = send(fd, req + off, n, MSG_NOSIGNAL);
            if (k > 0) off += (size_t)k;
        }
        rtws_ctx_run_once(s->ctx, 10);
        k = recv(fd, resp + got, cap - 1 - got, 0);
        if (k > 0) {
            got += (size_t)k;
            resp[got] = 0;
        } else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            break;
        }
        if (got == cap - 1) break;
    }
    close(fd);
    if (got > 12 && memcmp(resp, "HTTP/1.1 ", 9) == 0) status = atoi(resp + 9);
    return status;
}

static const char *body_of(const char *resp) {
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static void test_bodies(void) {
    server s;
    char resp[4096], req[8192], body[5000];
    size_t i;
    int n;
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 4096) == 0);
    for (i = 0; i < sizeof body; i++) body[i] = (char)('a' + i % 26);

    /* POST with a body, one piece: the hook sees it whole */
    n = snprintf(req, sizeof req,
                 "POST /api/ws-token?user=j%%C3%%B6rg+k HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/json\r\nContent-Length: 27\r\n\r\n"
                 "{\"accessToken\":\"abcdefgh\"}\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 200);
    CHECK(strcmp(body_of(resp), "POST 27 j\xc3\xb6rg k") == 0);
    CHECK_EQ(s.body_len, 27);
    CHECK(memcmp(s.body, "{\"accessToken\":\"abcdefgh\"}\n", 27) == 0);
    CHECK_EQ(s.count_in_hook, 0); /* the request being answered is no connection */

    /* the same byte by byte: the head arrives, the body is waited for */
    s.calls = 0;
    CHECK_EQ(exchange(&s, req, (size_t)n, 1, resp, sizeof resp), 200);
    CHECK_EQ(s.calls, 1);
    CHECK(strcmp(body_of(resp), "POST 27 j\xc3\xb6rg k") == 0);

    /* a body bigger than the head buffer grows, up to the cap (4096) */
    n = snprintf(req, sizeof req, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n");
    memcpy(req + n, body, 4096);
    CHECK_EQ(exchange(&s, req, (size_t)n + 4096, 1000, resp, sizeof resp), 200);
    CHECK(strcmp(body_of(resp), "PUT 4096 ") == 0);
    CHECK_EQ(s.body_len, 4096);
    CHECK(memcmp(s.body, body, 4096) == 0);

    /* one byte over the cap: 413, the hook not called */
    s.calls = 0;
    n = snprintf(req, sizeof req, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n");
    memcpy(req + n, body, 4097);
    CHECK_EQ(exchange(&s, req, (size_t)n + 4097, (size_t)n + 4097, resp, sizeof resp), 413);
    CHECK_EQ(s.calls, 0);
    /* a huge declared length is refused from the head alone */
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 413);

    /* DELETE without a body, and with an empty one */
    n = snprintf(req, sizeof req, "DELETE /item/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 200);
    CHECK(strcmp(body_of(resp), "DELETE 0 ") == 0);
    n = snprintf(req, sizeof req, "DELETE /item/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 200);

    /* chunked: 411; bad and conflicting lengths: 400; the hook never called */
    s.calls = 0;
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 411);
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 411);
    n = snprintf(req, sizeof req, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 400);
    n = snprintf(req, sizeof req, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 400);
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 400);
    CHECK_EQ(s.calls, 0);
    /* repeated equal lengths are one length (RFC 9112 §6.3) */
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 200);
    CHECK(strcmp(body_of(resp), "POST 3 ") == 0);
    /* bytes after the body are not a second request */
    s.calls = 0;
    n = snprintf(req, sizeof req,
                 "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n");
    CHECK_EQ(exchange(&s, req, (size_t)n, (size_t)n, resp, sizeof resp), 200);
    CHECK_EQ(s.calls, 1);
    CHECK(strcmp(body_of(resp), "POST 2 ") == 0);
    /* Expect: 100-continue: the 100 comes before the body is sent */
    {
        const char *h = "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        int fd = tcp_connect(s.port), got100 = 0, st = 0, k1;
        size_t got = 0;
        CHECK(fd >= 0);
        CHECK(send(fd, h, strlen(h), MSG_NOSIGNAL) == (ssize_t)strlen(h));
        for (k1 = 0; k1 < 300 && !st; k1++) {
            ssize_t k;
            rtws_ctx_run_once(s.ctx, 10);
            k = recv(fd, resp + got, sizeof resp - 1 - got, 0);
            if (k > 0) {
                got += (size_t)k;
                resp[got] = 0;
            } else if (k == 0) {
                break;
            }
            if (!got100 && got && strstr(resp, "HTTP/1.1 100 Continue\r\n\r\n") == resp) {
                got100 = 1;
                CHECK(send(fd, "xyz", 3, MSG_NOSIGNAL) == 3);
            }
            if (strstr(resp, "HTTP/1.1 200") && strstr(resp, "POST 3 ")) st = 200;
        }
        close(fd);
        CHECK(got100);
        CHECK_EQ(st, 200);
        CHECK(memcmp(s.body, "xyz", 3) == 0);
    }

    rtws_ctx_free(s.ctx);
}

/* A WebSocket connection is counted, a plain request next to it is not. */
static void test_counts(void) {
    server s;
    char resp[2048];
    const char *up = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const char *get = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    int ws, i;
    size_t got = 0;
    memset(&s, 0, sizeof s);
    CHECK(srv_start(&s, 0) == 0);
    ws = tcp_connect(s.port);
    CHECK(ws >= 0);
    CHECK(send(ws, up, strlen(up), MSG_NOSIGNAL) == (ssize_t)strlen(up));
    for (i = 0; i < 500 && got < 12; i++) {
        ssize_t k;
        rtws_ctx_run_once(s.ctx, 10);
        k = recv(ws, resp + got, sizeof resp - 1 - got, 0);
        if (k > 0) got += (size_t)k;
    }
    CHECK(got >= 12 && memcmp(resp, "HTTP/1.1 101", 12) == 0);
    CHECK_EQ(rtws_ctx_get_conn_count(s.ctx), 1);
    CHECK_EQ(exchange(&s, get, strlen(get), strlen(get), resp, sizeof resp), 200);
    CHECK_EQ(s.count_in_hook, 1); /* the WebSocket, not the request itself */
    CHECK_EQ(rtws_ctx_get_conn_count(s.ctx), 1);
    {
        rtws_ctx_stats st;
        rtws_ctx_get_stats(s.ctx, &st);
        CHECK_EQ(st.active, 1);
    }
    close(ws);
    for (i = 0; i < 300 && rtws_ctx_get_conn_count(s.ctx); i++) rtws_ctx_run_once(s.ctx, 10);
    CHECK_EQ(rtws_ctx_get_conn_count(s.ctx), 0);
    rtws_ctx_free(s.ctx);
}

/* ---- token expiry through a router installed in a context ---- */
static const char KEY[] = "e2e-secret-e2e-secret";

typedef struct tclient {
    rtws_conn *c;
    int authed, expired, closed, renew;
    unsigned code;
} tclient;

static void make_token(const char *user, int64_t exp, char *out, size_t cap) {
    char claims[128];
    snprintf(claims, sizeof claims, "{\"userId\":\"%s\",\"exp\":%lld}", user, (long long)exp);
    CHECK(rtws_jwt_hs256_sign(claims, KEY, sizeof KEY - 1, out, cap) > 0);
}

static void tc_event(rtws_conn *c, const rtws_event *ev, void *user) {
    tclient *t = (tclient *)user;
    if (ev->type == RTWS_EV_MESSAGE) {
        const char *m = (const char *)ev->message.data;
        size_t n = ev->message.len;
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < 500 ? n : 500), m);
        if (strstr(buf, "\"type\":\"authenticated\"")) t->authed++;
        if (strstr(buf, "\"code\":\"token_expired\"")) {
            t->expired++;
            if (t->renew) {
                char tok[512], msg[700];
                make_token("u-9", (int64_t)(rtws_time_wall_ms() / 1000) + 60, tok, sizeof tok);
                snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
                rtws_conn_send_text(c, msg, strlen(msg));
            }
        }
    } else if (ev->type == RTWS_EV_CLOSE) {
        t->closed = 1;
        t->code = ev->close.code;
    }
}

static tclient *tc_open(rtws_ctx *cctx, int port, int renew) {
    static tclient ts[2];
    static int k;
    tclient *t = &ts[k++ % 2];
    char url[700], tok[512];
    rtws_err e;
    memset(t, 0, sizeof *t);
    t->renew = renew;
    /* exp 0.5 to 1.5 s ahead (whole seconds), never about to pass while
       the upgrade is checked: the next second up from now was, when the
       clock stood in a second's last milliseconds (seen once in CI: the
       upgrade refused as expired, no connection) */
    make_token("u-9", (int64_t)((rtws_time_wall_ms() + 1500) / 1000), tok, sizeof tok);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws?token=%s", port, tok);
    t->c = rtws_ctx_connect(cctx, url, NULL, rtws_time_now_ms(), &e);
    CHECK(t->c != NULL);
    if (t->c) rtws_conn_set_handler(t->c, tc_event, t);
    return t;
}

static void run_both(rtws_ctx *a, rtws_ctx *b, int ms) {
    uint64_t end = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < end) {
        rtws_ctx_run_once(a, 5);
        rtws_ctx_run_once(b, 5);
    }
}

static void test_token_expiry(void) {
    rtws_router_config rc;
    rtws_router *r;
    rtws_ctx_config sc, cc;
    rtws_ctx *sctx, *cctx;
    tclient *t;
    int port = 0, i;
    uint64_t t_exp = 0, t_close = 0;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.jwt_secret = KEY;
    rc.jwt_secret_len = sizeof KEY - 1;
    rc.jwt_user_claim = "userId";
    rc.jwt_leeway_s = -1; /* none */
    rc.token_grace_ms = 400;
    r = rtws_router_new(&rc);
    CHECK(r != NULL);
    memset(&sc, 0, sizeof sc);
    sc.conn.heartbeat_off = 1;
    sc.timer_ms = 10;
    rtws_router_install(r, &sc);
    sctx = rtws_ctx_new(&sc);
    CHECK(sctx && rtws_ctx_listen(sctx, "127.0.0.1", 0, &port) == RTWS_OK);
    memset(&cc, 0, sizeof cc);
    cc.conn.heartbeat_off = 1;
    cc.timer_ms = 10;
    cctx = rtws_ctx_new(&cc);

    /* no renewal: token_expired, then close 4001 about the grace later */
    t = tc_open(cctx, port, 0);
    for (i = 0; i < 400 && !t->closed; i++) { /* <= ~4 s */
        run_both(sctx, cctx, 10);
        if (t->expired && !t_exp) t_exp = rtws_time_now_ms();
    }
    t_close = rtws_time_now_ms();
    CHECK_EQ(t->authed, 1);
    CHECK_EQ(t->expired, 1);
    CHECK(t->closed && t->code == RTWS_CLOSE_TOKEN_EXPIRED);
    /* the router's timers run with the context's tick, at least once a
       second: the close comes 400 ms to ~1.4 s after token_expired (slack
       for a loaded machine) */
    printf("token_expired -> close 4001 after %llu ms (grace 400)\n",
           (unsigned long long)(t_exp ? t_close - t_exp : 0));
    CHECK(t_exp && t_close - t_exp >= 350 && t_close - t_exp < 2500);

    /* renewed within the grace: still open well after it */
    t = tc_open(cctx, port, 1);
    for (i = 0; i < 400 && !t->expired; i++) run_both(sctx, cctx, 10);
    CHECK_EQ(t->expired, 1);
    run_both(sctx, cctx, 1000);
    CHECK_EQ(t->authed, 2); /* the upgrade's token, then the renewal */
    CHECK(!t->closed);
    CHECK_EQ(rtws_ctx_get_conn_count(sctx), 1);
    rtws_ctx_free(cctx);
    rtws_ctx_free(sctx);
    rtws_router_free(r);
}

int main(void) {
    test_bodies();
    test_counts();
    test_token_expiry();
    return T_END();
}
