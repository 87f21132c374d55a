/* A transport of the user's own (layer 4's rtws_transport), the way an
   OpenSSL or mbedTLS binding would plug in: this one XORs every byte with a
   rolling key, each direction on its own, and keeps what the socket would
   not take in a buffer of its own (so writev, flush and wants are
   exercised as a TLS record layer would). An rtws server context listens
   through it (rtws_ctx_listen_transport) and an rtws client context
   connects through it (rtws_ctx_config.tls_transport, wss:// URLs): echo of
   0 B .. 1 MiB text and binary, ping/pong, clean close. Then the wire:
   a plain client gets no 101, a raw client that applies the transform by
   hand gets one. 127.0.0.1, OS-chosen ports, every loop bounded in time. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the transport ---- */

typedef struct xor_shared {
    uint8_t seed;
    int opens, releases, clients, servers;
    int partial, full; /* sends the socket cut short, sends it refused (EAGAIN) */
} xor_shared;

typedef struct xor_state {
    xor_shared *sh;
    uint8_t kin, kout;      /* the key of the next byte read / written */
    int tuned;              /* the socket's send buffer was made small */
    size_t off, len;        /* out[off..len) is transformed and not yet sent */
    uint8_t out[16384];
} xor_state;

static uint8_t xor_step(uint8_t k) { return (uint8_t)(k * 167u + 13u); }

static void xor_apply(uint8_t *key, uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        p[i] ^= *key;
        *key = xor_step(*key);
    }
}

static rtws_err xor_open(void *state, const rtws_transport_open *in, int *detail) {
    xor_state *x = (xor_state *)state;
    (void)detail;
    x->sh = (xor_shared *)in->shared;
    x->kin = x->kout = x->sh->seed;
    x->sh->opens++;
    if (in->server_name) x->sh->clients++;
    else x->sh->servers++;
    return RTWS_OK;
}

/* A small send buffer, so that sends come up short and the transport's
   own buffer, flush and wants are put to work. (A receive buffer shrunk
   on a live connection would only stall TCP on its persist timer.) */
static void xor_tune(xor_state *x, int fd) {
    int sz = 4096;
    if (x->tuned) return;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    x->tuned = 1;
}

static long xor_read(void *state, int fd, void *buf, size_t len, int *detail) {
    xor_state *x = (xor_state *)state;
    ssize_t r;
    xor_tune(x, fd);
    do r = recv(fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) xor_apply(&x->kin, (uint8_t *)buf, (size_t)r);
    if (r >= 0) return (long)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RTWS_IO_AGAIN;
    if (errno == ECONNRESET) return 0;
    *detail = errno;
    return RTWS_IO_ERRNO;
}

/* Sends what out holds: 0 when empty, RTWS_IO_AGAIN or RTWS_IO_ERRNO. */
static long xor_push(xor_state *x, int fd, int *detail) {
    while (x->off < x->len) {
        ssize_t w = send(fd, x->out + x->off, x->len - x->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            x->sh->full++;
            return RTWS_IO_AGAIN;
        }
        if (w < 0) {
            *detail = errno;
            return RTWS_IO_ERRNO;
        }
        if ((size_t)w < x->len - x->off) x->sh->partial++;
        x->off += (size_t)w;
    }
    x->off = x->len = 0;
    return 0;
}

static long xor_writev(void *state, int fd, const rtws_iov *iov, int n, int *detail) {
    xor_state *x = (xor_state *)state;
    size_t took = 0;
    long r;
    int i;
    xor_tune(x, fd);
    r = xor_push(x, fd, detail);
    if (r < 0) return r; /* still full: take nothing */
    for (i = 0; i < n && x->len < sizeof x->out; i++) {
        size_t k = iov[i].len < sizeof x->out - x->len ? iov[i].len : sizeof x->out - x->len;
        memcpy(x->out + x->len, iov[i].base, k);
        xor_apply(&x->kout, x->out + x->len, k);
        x->len += k;
        took += k;
        if (k < iov[i].len) break;
    }
    r = xor_push(x, fd, detail);
    if (r == RTWS_IO_ERRNO) return r;
    return took ? (long)took : RTWS_IO_AGAIN; /* what it took is its own now */
}

static long xor_flush(void *state, int fd, int *detail) {
    return xor_push((xor_state *)state, fd, detail);
}

static unsigned xor_wants(void *state, int fd, unsigned want) {
    xor_state *x = (xor_state *)state;
    (void)fd;
    if (x->off < x->len) return RTWS_WANT_WRITE | (want & RTWS_WANT_READ); /* ours first */
    return want;
}

static void xor_release(void *state) { ((xor_state *)state)->sh->releases++; }

static const char *xor_error_text(int detail) {
    (void)detail;
    return "xor transport";
}

static const rtws_transport xor_transport = {
    "xor",        sizeof(xor_state), xor_open, xor_read,       xor_writev, xor_flush, NULL,
    xor_wants,    xor_release,       NULL,     xor_error_text, NULL,       NULL,      NULL,
    NULL};

/* ---- loop ---- */

static void run(rtws_ctx *a, rtws_ctx *b, int extra_fd, int ms, int (*done)(void *), void *arg) {
    struct pollfd fds[64];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(done && done(arg))) {
        int na = rtws_ctx_fill_pollfds(a, fds, 30);
        int nb = b ? rtws_ctx_fill_pollfds(b, fds + na, 30) : 0;
        int n = na + nb, t;
        if (extra_fd >= 0) {
            fds[n].fd = extra_fd;
            fds[n].events = POLLIN;
            fds[n++].revents = 0;
        }
        t = rtws_ctx_get_timeout_ms(a, rtws_time_now_ms());
        if (b) {
            int tb = rtws_ctx_get_timeout_ms(b, rtws_time_now_ms());
            if (t < 0 || (tb >= 0 && tb < t)) t = tb;
        }
        if (t < 0 || t > 20) t = 20;
        poll(fds, (nfds_t)n, t);
        rtws_ctx_service(a, fds, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, fds + na, nb, rtws_time_now_ms());
        if (extra_fd >= 0 && (fds[n - 1].revents & (POLLIN | POLLHUP))) return;
    }
}

/* ---- server: echo ---- */

typedef struct srv {
    int open, msgs, pings, closes, clean, errors;
    unsigned code;
} srv;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    srv *s = (srv *)user;
    switch (ev->type) {
    case RTWS_EV_OPEN: s->open++; break;
    case RTWS_EV_MESSAGE:
        s->msgs++;
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
        break;
    case RTWS_EV_PING: s->pings++; break;
    case RTWS_EV_CLOSE:
        s->closes++;
        s->clean += ev->close.clean;
        s->code = ev->close.code;
        break;
    case RTWS_EV_ERROR: s->errors++; break;
    default: break;
    }
}

/* ---- client: one message at a time, each echo checked ---- */

typedef struct cli {
    int open, closed, clean, errors, pongs, got, bad;
    unsigned code;
    rtws_err err;
    rtws_opcode op;
    uint8_t *expect;
    size_t expect_len;
} cli;

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    cli *k = (cli *)user;
    (void)c;
    switch (ev->type) {
    case RTWS_EV_OPEN: k->open++; break;
    case RTWS_EV_MESSAGE:
        k->got++;
        if (ev->message.opcode != k->op || ev->message.len != k->expect_len ||
            (ev->message.len && memcmp(ev->message.data, k->expect, ev->message.len) != 0))
            k->bad++;
        break;
    case RTWS_EV_PONG:
        if (ev->pong.len == 5 && memcmp(ev->pong.data, "hello", 5) == 0) k->pongs++;
        break;
    case RTWS_EV_CLOSE:
        k->closed++;
        k->clean += ev->close.clean;
        k->code = ev->close.code;
        break;
    case RTWS_EV_ERROR:
        k->errors++;
        k->err = ev->error.err;
        break;
    default: break;
    }
}

static int cli_open(void *p) { return ((cli *)p)->open > 0 || ((cli *)p)->closed > 0; }
static int cli_got(void *p) { return ((cli *)p)->got > 0 || ((cli *)p)->closed > 0; }
static int cli_pong(void *p) { return ((cli *)p)->pongs > 0 || ((cli *)p)->closed > 0; }
static int cli_closed(void *p) { return ((cli *)p)->closed > 0; }
static int cli_failed(void *p) { return ((cli *)p)->errors > 0; }

static rtws_ctx *mk_ctx(rtws_event_fn fn, void *user, const rtws_transport *tp, void *tp_user,
                        uint32_t handshake_ms) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.handshake_timeout_ms = handshake_ms;
    cfg.conn.on_event = fn;
    cfg.conn.user = user;
    cfg.conn.deflate_off = 1; /* patterned payloads would shrink below the short writes tested */
    cfg.tls_transport = tp;
    cfg.tls_transport_user = tp_user;
    return rtws_ctx_new(&cfg);
}

static void test_echo(rtws_ctx *sv, srv *ss, int port, const xor_shared *ssh, xor_shared *csh) {
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, (size_t)1 << 20};
    cli k;
    rtws_ctx *cl;
    rtws_conn *c;
    rtws_err e;
    char url[64];
    size_t i, j;
    int op, ok = 1;
    memset(&k, 0, sizeof k);
    cl = mk_ctx(cli_event, &k, &xor_transport, csh, 0);
    CHECK(cl != NULL);
    if (!cl) return;
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
    c = rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), &e);
    CHECK(c != NULL);
    if (!c) {
        rtws_ctx_free(cl);
        return;
    }
    run(sv, cl, -1, 5000, cli_open, &k);
    CHECK_EQ(k.open, 1);
    CHECK_EQ(ss->open, 1);
    CHECK_EQ(rtws_conn_get_tls_version(c), 0); /* the transport has no version */
    k.expect = (uint8_t *)malloc((size_t)1 << 20);
    CHECK(k.expect != NULL);
    for (op = 0; op < 2 && k.open && k.expect && !k.closed; op++) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0] && !k.closed; i++) {
            size_t n = sizes[i];
            k.op = op ? RTWS_OP_BINARY : RTWS_OP_TEXT;
            for (j = 0; j < n; j++)
                k.expect[j] = op ? (uint8_t)(j * 7 + n) : (uint8_t)('a' + (j + n) % 26);
            k.expect_len = n;
            k.got = 0;
            CHECK_EQ(rtws_conn_send(c, k.op, k.expect, n), RTWS_OK);
            run(sv, cl, -1, 10000, cli_got, &k);
            if (k.got != 1 || k.bad) {
                ok = 0;
                fprintf(stderr, "  %s %zu bytes: got %d bad %d\n", op ? "binary" : "text", n, k.got,
                        k.bad);
            }
        }
    }
    CHECK(ok);
    CHECK_EQ(k.bad, 0);
    CHECK_EQ(ss->msgs, 14);
    CHECK(csh->partial + csh->full + ssh->partial + ssh->full > 0);
    printf("echo through the xor transport, 0 B .. 1 MiB text and binary: %s (short sends: "
           "client %d, server %d; refused: client %d, server %d)\n",
           ok ? "ok" : "FAILED", csh->partial, ssh->partial, csh->full, ssh->full);
    CHECK_EQ(rtws_conn_ping(c, "hello", 5), RTWS_OK);
    run(sv, cl, -1, 5000, cli_pong, &k);
    CHECK_EQ(k.pongs, 1);
    CHECK_EQ(ss->pings, 1);
    CHECK_EQ(rtws_conn_close(c, RTWS_CLOSE_NORMAL, "done"), RTWS_OK);
    run(sv, cl, -1, 5000, cli_closed, &k);
    run(sv, cl, -1, 3000, NULL, NULL); /* the server side lets go */
    CHECK(k.closed == 1 && k.clean == 1 && k.code == RTWS_CLOSE_NORMAL);
    CHECK(ss->closes == 1 && ss->clean == 1 && ss->code == RTWS_CLOSE_NORMAL);
    CHECK_EQ(k.errors, 0);
    CHECK_EQ(ss->errors, 0);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    CHECK_EQ(rtws_ctx_get_conn_count(cl), 0);
    free(k.expect);
    rtws_ctx_free(cl);
    CHECK(csh->clients == 1 && csh->opens == 1 && csh->releases == 1);
}

/* ---- the wire ---- */

static const char upgrade[] = "GET /echo HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

/* Sends an upgrade request on a raw socket, transformed with seed when
   xor is set, and returns the first bytes of the answer, decoded likewise. */
static size_t raw_upgrade(rtws_ctx *sv, int port, int xor, uint8_t seed, char *ans, size_t cap) {
    struct sockaddr_in a;
    uint8_t req[sizeof upgrade], kin = seed, kout = seed;
    size_t got = 0;
    uint64_t until = rtws_time_now_ms() + (xor ? 5000 : 1000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    memcpy(req, upgrade, sizeof upgrade - 1);
    if (xor) xor_apply(&kout, req, sizeof upgrade - 1);
    if (send(fd, req, sizeof upgrade - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof upgrade - 1)) {
        close(fd);
        return 0;
    }
    while (got < cap - 1 && rtws_time_now_ms() < until) {
        ssize_t r;
        run(sv, NULL, fd, 200, NULL, NULL);
        r = recv(fd, ans + got, cap - 1 - got, MSG_DONTWAIT);
        if (r == 0) break;
        if (r > 0) {
            if (xor) xor_apply(&kin, (uint8_t *)ans + got, (size_t)r);
            got += (size_t)r;
            ans[got] = '\0';
            if (strstr(ans, "\r\n\r\n")) break;
        }
    }
    ans[got] = '\0';
    close(fd);
    run(sv, NULL, -1, 100, NULL, NULL);
    return got;
}

static void test_wire(rtws_ctx *sv, int port, uint8_t seed) {
    char ans[1024];
    size_t n;
    cli k;
    rtws_ctx *plain;
    rtws_err e;
    char url[64];
    /* a plain client's request arrives scrambled: no 101 comes back */
    n = raw_upgrade(sv, port, 0, seed, ans, sizeof ans);
    CHECK(n == 0 || strncmp(ans, "HTTP/1.1 101", 12) != 0);
    printf("plain upgrade request to the xor listener: %zu bytes back, no 101\n", n);
    /* the same request with the transform applied by hand: a 101, whose
       bytes on the wire were transformed too */
    n = raw_upgrade(sv, port, 1, seed, ans, sizeof ans);
    CHECK(n > 12 && strncmp(ans, "HTTP/1.1 101", 12) == 0);
    CHECK(strstr(ans, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL); /* RFC 6455 §1.3 */
    /* an rtws ws:// client (plain TCP) does not get through either: the
       server never sees the end of its request */
    memset(&k, 0, sizeof k);
    plain = mk_ctx(cli_event, &k, NULL, NULL, 500);
    CHECK(plain != NULL);
    if (!plain) return;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", port);
    CHECK(rtws_ctx_connect(plain, url, NULL, rtws_time_now_ms(), &e) != NULL);
    run(sv, plain, -1, 5000, cli_failed, &k);
    CHECK(k.open == 0 && k.errors == 1 && k.err == RTWS_ERR_TIMEOUT);
    printf("rtws ws:// client to the xor listener: no open, %s\n", rtws_err_str(k.err));
    rtws_ctx_free(plain);
}

int main(void) {
    xor_shared ssh, csh;
    srv ss;
    rtws_ctx *sv;
    rtws_tls_server_config tc;
    int port = 0, p2 = 0;
    memset(&ssh, 0, sizeof ssh);
    memset(&csh, 0, sizeof csh);
    memset(&ss, 0, sizeof ss);
    ssh.seed = csh.seed = 0x5a;
    sv = mk_ctx(srv_event, &ss, &xor_transport, NULL, 0);
    CHECK(sv != NULL);
    if (!sv) return T_END();
    CHECK_EQ(rtws_ctx_listen_transport(sv, "127.0.0.1", 0, &xor_transport, &ssh, &port), RTWS_OK);
    CHECK(port > 0);
    /* a transport without server_new cannot take rtws_tls_server_config */
    memset(&tc, 0, sizeof tc);
    CHECK_EQ(rtws_ctx_listen_tls(sv, "127.0.0.1", 0, &tc, &p2), RTWS_ERR_TLS);
    CHECK(rtws_transport_tcp() != NULL && rtws_transport_tcp()->read != NULL);
    test_echo(sv, &ss, port, &ssh, &csh);
    test_wire(sv, port, ssh.seed);
    rtws_ctx_free(sv);
    CHECK(ssh.servers >= 3 && ssh.opens == ssh.servers && ssh.releases == ssh.opens);
    printf("xor transport: %d server sockets, %d client sockets, every open released\n",
           ssh.servers, csh.clients);
    return T_END();
}
