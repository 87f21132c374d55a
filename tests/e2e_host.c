/* Layer 4 end to end over real sockets on 127.0.0.1 / ::1: both loop styles,
   1,000 concurrent connections, slowloris, a peer vanishing mid-frame,
   graceful shutdown, refused connects. Every loop is bounded in time. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- server side: echo, counting events ---- */
typedef struct srv_stats {
    int open, close, clean_close, msgs, errors, pongs;
    unsigned last_code;
    const rtws_config *cfg; /* of the first connection */
    int own_cfg;            /* connections that did not share it */
    rtws_conn *last;        /* the latest connection opened */
} srv_stats;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    srv_stats *s = (srv_stats *)user;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        /* every connection of a context points at its one config */
        if (!s->open++) s->cfg = rtws_conn_get_config(c);
        else if (rtws_conn_get_config(c) != s->cfg) s->own_cfg++;
        s->last = c;
        break;
    case RTWS_EV_MESSAGE:
        s->msgs++;
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
        break;
    case RTWS_EV_CLOSE:
        s->close++;
        s->clean_close += ev->close.clean;
        s->last_code = ev->close.code;
        break;
    case RTWS_EV_ERROR: s->errors++; break;
    case RTWS_EV_PONG: s->pongs++; break;
    default: break;
    }
}

/* ---- client side: each connection sends `per` numbered messages ---- */
typedef struct cli {
    int sent, got, bad, open, closed, failed, err_errno;
    unsigned close_code;
    int close_clean;
} cli;

typedef struct cli_ctl {
    int per;       /* messages per connection */
    int window;    /* messages in flight */
    size_t size;
    int opened, done, errors, last_errno;
    rtws_err last_err;
    char last_detail_text[128]; /* copied: the event's text lives until the callback returns */
    int has_detail_text;
} cli_ctl;

static void cli_send(rtws_conn *c, cli *k, size_t size) {
    char buf[70000];
    size_t i;
    if (size > sizeof buf) size = sizeof buf;
    for (i = 0; i < size; i++) buf[i] = (char)('A' + (k->sent + (int)i) % 26);
    if (rtws_conn_send_text(c, buf, size) != RTWS_OK) k->bad++;
    k->sent++;
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    cli_ctl *ctl = (cli_ctl *)user;
    cli *k = (cli *)rtws_conn_get_data(c);
    switch (ev->type) {
    case RTWS_EV_OPEN:
        ctl->opened++;
        k->open = 1;
        while (k->sent < ctl->per && k->sent - k->got < ctl->window) cli_send(c, k, ctl->size);
        if (ctl->per == 0) ctl->done++;
        break;
    case RTWS_EV_MESSAGE: {
        size_t i;
        int ok = ev->message.len == ctl->size;
        for (i = 0; ok && i < ev->message.len; i++)
            ok = ev->message.data[i] == (uint8_t)('A' + (k->got + (int)i) % 26);
        if (!ok) k->bad++;
        k->got++;
        if (k->sent < ctl->per) cli_send(c, k, ctl->size);
        else if (k->got == ctl->per) {
            ctl->done++;
            rtws_conn_close(c, RTWS_CLOSE_NORMAL, "bye");
        }
        break;
    }
    case RTWS_EV_CLOSE:
        k->closed = 1;
        k->close_code = ev->close.code;
        k->close_clean = ev->close.clean;
        break;
    case RTWS_EV_ERROR:
        ctl->errors++;
        ctl->last_err = ev->error.err;
        ctl->last_errno = ev->error.detail;
        ctl->has_detail_text = ev->error.detail_text != NULL;
        if (ev->error.detail_text)
            snprintf(ctl->last_detail_text, sizeof ctl->last_detail_text, "%s", ev->error.detail_text);
        if (!k || !k->open) {
            if (k) k->failed = 1;
        }
        break;
    default: break;
    }
}

/* one poll over both contexts; returns when cond() holds or ms pass */
static void run2(rtws_ctx *a, rtws_ctx *b, int ms, int (*cond)(void *), void *arg) {
    static struct pollfd fds[8192];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(cond && cond(arg))) {
        int na = rtws_ctx_fill_pollfds(a, fds, 4096), nb = b ? rtws_ctx_fill_pollfds(b, fds + na, 4096) : 0;
        int ta = rtws_ctx_get_timeout_ms(a, rtws_time_now_ms()), tb = b ? rtws_ctx_get_timeout_ms(b, rtws_time_now_ms()) : -1;
        int t = ta < 0 ? tb : (tb < 0 ? ta : (ta < tb ? ta : tb));
        if (t < 0 || t > 50) t = 50;
        if (na > 4096 || nb > 4096) {
            fprintf(stderr, "too many fds\n");
            return;
        }
        poll(fds, (nfds_t)(na + nb), t);
        rtws_ctx_service(a, fds, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, fds + na, nb, rtws_time_now_ms());
    }
}

static rtws_ctx *mk_server(srv_stats *st, int *port, const char *host) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = st;
    cfg.conn.handshake_timeout_ms = 500;
    cfg.timer_ms = 20;
    cfg.trim_ms = 100;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || rtws_ctx_listen(ctx, host, 0, port) != RTWS_OK) return NULL;
    return ctx;
}

static rtws_ctx *mk_client(cli_ctl *ctl) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = cli_event;
    cfg.conn.user = ctl;
    cfg.timer_ms = 20;
    return rtws_ctx_new(&cfg);
}

static int all_done(void *arg) {
    rtws_ctx **p = (rtws_ctx **)arg;
    return rtws_ctx_get_conn_count(p[0]) == 0 && rtws_ctx_get_conn_count(p[1]) == 0;
}

/* N connections each echoing `per` messages of `size` bytes */
static void test_many(int n, int per, size_t size, const char *host, const char *urlhost) {
    srv_stats st;
    cli_ctl ctl;
    rtws_ctx *sv, *cl, *both[2];
    cli *ks = (cli *)calloc((size_t)n, sizeof *ks);
    int port = 0, i, got = 0, bad = 0, clean = 0;
    char url[128];
    memset(&st, 0, sizeof st);
    memset(&ctl, 0, sizeof ctl);
    ctl.per = per;
    ctl.window = 4;
    ctl.size = size;
    sv = mk_server(&st, &port, host);
    cl = mk_client(&ctl);
    CHECK(sv != NULL && cl != NULL && ks != NULL);
    if (!sv || !cl || !ks) return;
    snprintf(url, sizeof url, "ws://%s:%d/echo", urlhost, port);
    for (i = 0; i < n; i++) {
        rtws_err e;
        rtws_conn *c = rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_data(c, &ks[i]);
    }
    both[0] = sv;
    both[1] = cl;
    run2(sv, cl, 60000, all_done, both);
    for (i = 0; i < n; i++) {
        got += ks[i].got;
        bad += ks[i].bad;
        clean += ks[i].closed && ks[i].close_clean && ks[i].close_code == 1000;
    }
    CHECK_EQ(ctl.opened, n);
    CHECK_EQ(got, n * per);
    CHECK_EQ(bad, 0);
    CHECK_EQ(clean, n);
    CHECK_EQ(st.open, n);
    CHECK_EQ(st.own_cfg, 0);
    /* the memory budget of an idle connection: its socket record (plus about
       40 bytes of malloc and per-fd tables; make bench measures the RSS) */
    CHECK(sizeof(rtws__sock) <= 464);
    CHECK(sizeof(rtws_conn) <= 392);
    CHECK(st.cfg && st.cfg->role == RTWS_SERVER && st.cfg->max_frame == (size_t)16 << 20);
    CHECK_EQ(st.msgs, n * per);
    CHECK_EQ(st.clean_close, n);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    CHECK_EQ(rtws_ctx_get_conn_count(cl), 0);
    {
        rtws_ctx_stats a, b;
        rtws_ctx_get_stats(sv, &a);
        rtws_ctx_get_stats(cl, &b);
        CHECK(a.accepted == (uint64_t)n && b.connected == (uint64_t)n && a.active == 0);
        CHECK(a.msgs_in == (uint64_t)(n * per) && a.msgs_out == a.msgs_in && b.msgs_in == a.msgs_out);
        CHECK(a.bytes_in == (uint64_t)n * (uint64_t)per * size && b.bytes_out == a.bytes_in);
    }
    printf("%d connections x %d messages of %zu bytes via %s: %d echoes\n", n, per, size, urlhost, got);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    free(ks);
}

/* ---- epoll style ---- */
typedef struct ep {
    int efd;
    int registered;
} ep;

static void on_socket(rtws_ctx *ctx, int fd, unsigned want, void *user) {
    ep *e = (ep *)user;
    struct epoll_event ev;
    (void)ctx;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = fd;
    ev.events = (want & RTWS_WANT_READ ? EPOLLIN : 0u) | (want & RTWS_WANT_WRITE ? EPOLLOUT : 0u);
    if (want == 0) {
        epoll_ctl(e->efd, EPOLL_CTL_DEL, fd, &ev);
        e->registered--;
    } else if (epoll_ctl(e->efd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(e->efd, EPOLL_CTL_ADD, fd, &ev);
        e->registered++;
    }
}

static void test_epoll_style(void) {
    srv_stats st;
    cli_ctl ctl;
    ep e;
    rtws_ctx_config cfg;
    rtws_ctx *sv, *cl;
    cli ks[20];
    int port = 0, i, got = 0;
    char url[64];
    uint64_t until;
    static struct pollfd fds[64];
    memset(&st, 0, sizeof st);
    memset(&ctl, 0, sizeof ctl);
    memset(ks, 0, sizeof ks);
    e.efd = epoll_create1(0);
    e.registered = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = &st;
    cfg.on_socket = on_socket;
    cfg.socket_user = &e;
    sv = rtws_ctx_new(&cfg);
    CHECK(sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    CHECK_EQ(e.registered, 1); /* the listener */
    ctl.per = 50;
    ctl.window = 1;
    ctl.size = 100;
    cl = mk_client(&ctl);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < 20; i++) rtws_conn_set_data(rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), NULL), &ks[i]);
    until = rtws_time_now_ms() + 20000;
    while (rtws_time_now_ms() < until && (rtws_ctx_get_conn_count(cl) > 0 || rtws_ctx_get_conn_count(sv) > 0)) {
        struct epoll_event evs[64];
        int n, k, nc = rtws_ctx_fill_pollfds(cl, fds, 64);
        int t = rtws_ctx_get_timeout_ms(sv, rtws_time_now_ms());
        /* the server runs on epoll, the clients on poll, in one thread */
        n = epoll_wait(e.efd, evs, 64, 0);
        for (k = 0; k < n; k++) {
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) rtws_ctx_handle_readable(sv, evs[k].data.fd, rtws_time_now_ms());
            if (evs[k].events & EPOLLOUT) rtws_ctx_handle_writable(sv, evs[k].data.fd, rtws_time_now_ms());
        }
        if (t == 0) rtws_ctx_run_timers(sv, rtws_time_now_ms());
        poll(fds, (nfds_t)nc, n > 0 ? 0 : 5);
        rtws_ctx_service(cl, fds, nc, rtws_time_now_ms());
    }
    for (i = 0; i < 20; i++) got += ks[i].got;
    CHECK_EQ(got, 20 * 50);
    CHECK_EQ(st.open, 20);
    CHECK_EQ(st.clean_close, 20);
    CHECK_EQ(e.registered, 1); /* every connection unregistered again */
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    CHECK_EQ(e.registered, 0);
    close(e.efd);
}

/* ---- raw sockets, for misbehaving peers ---- */
static int raw_connect(int port) {
    struct sockaddr_in a;
    struct timeval tv;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    tv.tv_sec = 0;
    tv.tv_usec = 20000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

static int count_zero(void *arg) { return rtws_ctx_get_conn_count((rtws_ctx *)arg) == 0; }

static void test_slowloris(void) {
    srv_stats st;
    rtws_ctx *sv;
    int port, fd, sent = 0, closed = 0;
    uint64_t start, until;
    memset(&st, 0, sizeof st);
    sv = mk_server(&st, &port, "127.0.0.1");
    fd = raw_connect(port);
    CHECK(fd >= 0);
    start = rtws_time_now_ms();
    until = start + 3000;
    while (rtws_time_now_ms() < until && !closed) {
        char b[16];
        ssize_t r;
        if (sent < (int)sizeof req - 1 && send(fd, req + sent, 1, MSG_NOSIGNAL) == 1) sent++;
        run2(sv, NULL, 30, NULL, NULL);
        r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed = 1;
    }
    CHECK(closed);
    CHECK(sent < (int)sizeof req - 1); /* cut off before the request was complete */
    CHECK(rtws_time_now_ms() - start >= 450 && rtws_time_now_ms() - start < 2000);
    CHECK_EQ(st.open, 0);
    close(fd); /* the server lingers until the peer's side ends too */
    run2(sv, NULL, 1000, count_zero, sv);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    rtws_ctx_free(sv);
}

static void test_vanish_mid_frame(void) {
    srv_stats st;
    rtws_ctx *sv;
    int port, fd;
    char junk[512];
    static const uint8_t half[] = {0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4, 'a', 'b', 'c'}; /* 256 announced */
    memset(&st, 0, sizeof st);
    sv = mk_server(&st, &port, "127.0.0.1");
    fd = raw_connect(port);
    CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)sizeof req - 1);
    run2(sv, NULL, 200, NULL, NULL);
    CHECK(recv(fd, junk, sizeof junk, 0) > 0); /* the 101 */
    CHECK_EQ(st.open, 1);
    run2(sv, NULL, 200, NULL, NULL);
    CHECK(sv->nsocks == 2 && sv->socks[1]->conn.priv_.rbuf == NULL); /* idle: buffers given back */
    CHECK(send(fd, half, sizeof half, MSG_NOSIGNAL) == (ssize_t)sizeof half);
    run2(sv, NULL, 100, NULL, NULL);
    close(fd);
    run2(sv, NULL, 2000, count_zero, sv);
    CHECK_EQ(st.close, 1);
    CHECK_EQ(st.last_code, 1006);
    CHECK_EQ(st.clean_close, 0);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    rtws_ctx_free(sv);
}

static void test_origin_and_refused(void) {
    rtws_ctx_config cfg;
    srv_stats st;
    rtws_ctx *sv, *cl;
    cli_ctl ctl;
    cli k;
    static const char *const origins[] = {"https://app.example", NULL};
    int port, fd;
    char buf[256];
    ssize_t r;
    rtws_conn *c;
    memset(&cfg, 0, sizeof cfg);
    memset(&st, 0, sizeof st);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = &st;
    cfg.conn.allowed_origins = origins;
    sv = rtws_ctx_new(&cfg);
    CHECK(rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    fd = raw_connect(port);
    {
        static const char evil[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Origin: https://evil.example\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        CHECK(send(fd, evil, sizeof evil - 1, MSG_NOSIGNAL) > 0);
    }
    run2(sv, NULL, 200, NULL, NULL);
    r = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(r > 12 && memcmp(buf, "HTTP/1.1 403", 12) == 0);
    close(fd);
    rtws_ctx_free(sv);
    /* nothing listens on port: the client reports the refusal */
    memset(&ctl, 0, sizeof ctl);
    memset(&k, 0, sizeof k);
    cl = mk_client(&ctl);
    snprintf(buf, sizeof buf, "ws://127.0.0.1:%d/", port);
    c = rtws_ctx_connect(cl, buf, NULL, rtws_time_now_ms(), NULL);
    CHECK(c != NULL);
    if (c) rtws_conn_set_data(c, &k);
    run2(cl, NULL, 2000, count_zero, cl);
    CHECK_EQ(ctl.errors, 1);
    CHECK_EQ(ctl.last_err, RTWS_ERR_IO);
    CHECK_EQ(ctl.last_errno, ECONNREFUSED); /* error.detail */
    CHECK(ctl.has_detail_text && strcmp(ctl.last_detail_text, strerror(ECONNREFUSED)) == 0);
    CHECK_EQ(rtws_ctx_get_conn_count(cl), 0);
    {
        rtws_err e = RTWS_OK;
        CHECK(rtws_ctx_connect(cl, "http://x/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
        CHECK(rtws_ctx_connect(cl, "ws://[::1/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
        CHECK(rtws_ctx_connect(cl, "ws://h:99999/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
        CHECK(rtws_ctx_connect(cl, "wss://h/", NULL, 0, &e) == NULL && e == RTWS_ERR_TLS);
    }
    rtws_ctx_free(cl);
}

static void test_shutdown(void) {
    srv_stats st;
    cli_ctl ctl;
    rtws_ctx *sv, *cl, *both[2];
    cli ks[10];
    int port, i, ok = 0;
    char url[64];
    memset(&st, 0, sizeof st);
    memset(&ctl, 0, sizeof ctl);
    memset(ks, 0, sizeof ks);
    ctl.per = 1000000; /* never finishes on its own */
    ctl.window = 1;
    ctl.size = 10;
    sv = mk_server(&st, &port, "127.0.0.1");
    cl = mk_client(&ctl);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < 10; i++) rtws_conn_set_data(rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), NULL), &ks[i]);
    run2(sv, cl, 300, NULL, NULL);
    CHECK_EQ(st.open, 10);
    rtws_ctx_shutdown(sv, RTWS_CLOSE_GOING_AWAY, "bye", rtws_time_now_ms());
    both[0] = sv;
    both[1] = cl;
    run2(sv, cl, 5000, all_done, both);
    for (i = 0; i < 10; i++) ok += ks[i].closed && ks[i].close_clean && ks[i].close_code == 1001;
    CHECK_EQ(ok, 10);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    CHECK_EQ(rtws_ctx_get_conn_count(cl), 0);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
}

/* A server connection that only sends (a subscriber of broadcasts) keeps its
   output buffers while messages flow, and hands them back once they stop. */
static size_t n_srv_allocs;
static void *count_alloc(size_t n, void *u) { (void)u; n_srv_allocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *u) { (void)u; n_srv_allocs++; return realloc(p, n); }
static void count_free(void *p, void *u) { (void)u; free(p); }
static void test_sender_keeps_buffers(void) {
    srv_stats st;
    cli_ctl ctl;
    cli k;
    rtws_ctx_config cfg;
    rtws_ctx *sv, *cl;
    int port, i;
    size_t before;
    char url[64], msg[10];
    memset(&st, 0, sizeof st);
    memset(&ctl, 0, sizeof ctl);
    memset(&k, 0, sizeof k);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = &st;
    cfg.conn.allocator.alloc = count_alloc;
    cfg.conn.allocator.realloc = count_realloc;
    cfg.conn.allocator.free = count_free;
    cfg.timer_ms = 10;
    cfg.trim_ms = 50;
    sv = rtws_ctx_new(&cfg);
    CHECK(sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    ctl.size = sizeof msg; /* the client only receives */
    cl = mk_client(&ctl);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    rtws_conn_set_data(rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), NULL), &k);
    run2(sv, cl, 300, NULL, NULL);
    CHECK(st.open == 1 && st.last);
    run2(sv, cl, 100, NULL, NULL);
    before = n_srv_allocs;
    for (i = 0; i < 100 && st.last; i++) { /* one message every 5 ms, 10x the trim time */
        size_t j;
        for (j = 0; j < sizeof msg; j++) msg[j] = (char)('A' + (i + (int)j) % 26);
        CHECK_EQ(rtws_conn_send_text(st.last, msg, sizeof msg), RTWS_OK);
        run2(sv, cl, 5, NULL, NULL);
    }
    run2(sv, cl, 30, NULL, NULL);
    CHECK_EQ(k.got, 100);
    CHECK_EQ(k.bad, 0);
    /* was a trim and a new chunk per message or two before */
    if (n_srv_allocs - before > 5) fprintf(stderr, "  %zu allocations for 100 sends\n", n_srv_allocs - before);
    CHECK(n_srv_allocs - before <= 5);
    run2(sv, cl, 300, NULL, NULL); /* quiet: the buffers go back */
    CHECK(st.last && !rtws__holds_buffers(st.last) && !st.last->priv_.spare && !st.last->priv_.segs);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
}

/* an allocator that knows the live bytes and their peak */
static size_t live_bytes, peak_bytes;
static void live_add(size_t n) {
    live_bytes += n;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}
static void *live_alloc(size_t n, void *u) {
    size_t *p = (size_t *)malloc(n + 16);
    (void)u;
    if (!p) return NULL;
    p[0] = n;
    live_add(n);
    return (char *)p + 16;
}
static void live_free(void *q, void *u) {
    size_t *p;
    (void)u;
    if (!q) return;
    p = (size_t *)(void *)((char *)q - 16);
    live_bytes -= p[0];
    free(p);
}
static void *live_realloc(void *q, size_t n, void *u) {
    size_t *p = q ? (size_t *)(void *)((char *)q - 16) : NULL, old = p ? p[0] : 0;
    (void)u;
    p = (size_t *)realloc(p, n + 16);
    if (!p) return NULL;
    live_bytes -= old;
    p[0] = n;
    live_add(n);
    return (char *)p + 16;
}

/* A heartbeat round over many idle connections: every one is pinged and
   answers, and the server never holds a control block per connection at
   once (each goes back as soon as its ping is written). */
static int hb_all_open(void *arg) { return ((srv_stats *)arg)->open >= 200; }
static void test_heartbeat_round_memory(void) {
    enum { N = 200 };
    srv_stats st;
    cli_ctl ctl;
    cli *ks = (cli *)calloc(N, sizeof *ks);
    rtws_ctx_config cfg;
    rtws_ctx *sv, *cl;
    int port, i;
    size_t base;
    char url[64];
    memset(&st, 0, sizeof st);
    memset(&ctl, 0, sizeof ctl);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = &st;
    cfg.conn.allocator.alloc = live_alloc;
    cfg.conn.allocator.realloc = live_realloc;
    cfg.conn.allocator.free = live_free;
    cfg.conn.ping_interval_ms = 1000;
    cfg.conn.pong_timeout_ms = 10000;
    cfg.timer_ms = 10;
    cfg.trim_ms = 50;
    sv = rtws_ctx_new(&cfg);
    CHECK(ks && sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    cl = mk_client(&ctl); /* per 0: the clients open and stay quiet */
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < N; i++) rtws_conn_set_data(rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), NULL), &ks[i]);
    run2(sv, cl, 10000, hb_all_open, &st);
    CHECK_EQ(st.open, N);
    run2(sv, cl, 150, NULL, NULL); /* quiet long enough to trim */
    base = live_bytes;
    peak_bytes = live_bytes;
    /* every connection opened before this point is pinged within 1 s of
       its last input: 1.5 s holds a whole round */
    run2(sv, cl, 1500, NULL, NULL);
    printf("heartbeat round over %d idle connections: %d pongs; server heap %zu bytes, peak +%zu "
           "(a control block is %zu)\n", N, st.pongs, base, peak_bytes - base, sizeof(rtws__ctl));
    CHECK(st.pongs >= N);
    CHECK(peak_bytes - base < 8 * sizeof(rtws__ctl));
    CHECK_EQ(st.close, 0);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    free(ks);
}

int main(void) {
    test_heartbeat_round_memory();
    test_many(3, 20, 70000, "127.0.0.1", "127.0.0.1");
    test_many(1000, 100, 32, "127.0.0.1", "127.0.0.1");
    {
        int port;
        srv_stats st;
        rtws_ctx *v6 = mk_server(&st, &port, "::1");
        if (v6) {
            rtws_ctx_free(v6);
            test_many(5, 10, 200, "::1", "[::1]");
        } else {
            printf("no IPv6 loopback here: the ::1 case is skipped\n");
        }
    }
    test_many(5, 10, 200, NULL, "localhost");
    test_epoll_style();
    test_sender_keeps_buffers();
    test_slowloris();
    test_vanish_mid_frame();
    test_origin_and_refused();
    test_shutdown();
    return T_END();
}
