/* Layer 5 end to end: rtws wss:// client <-> rtws wss:// server over real
   sockets, RSA and EC keys, chain and key from files and from memory,
   message sizes up to 1 MiB, a burst of small records, the same events and
   stats as ws://, the reconnecting client over TLS; verification failures
   (wrong host name, IP literal, expired, unknown CA, the time hook),
   mismatched transports, truncated handshakes, bad configs, and the memory
   a connection costs. Certificates come from tests/tls_certs.sh (build/tls).
   Every loop is bounded in time. Built with -DRTWS_USE_BEARSSL -lbearssl. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define CERTS "build/tls/"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *p;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = (char *)malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) p[n] = '\0';
    fclose(f);
    return p;
}

/* ---- a counting allocator (bytes in use) ---- */
typedef struct counter {
    size_t in_use, calls;
} counter;
static void *c_alloc(size_t n, void *u) {
    counter *k = (counter *)u;
    size_t *p = (size_t *)malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    k->in_use += n;
    k->calls++;
    return (char *)p + 16;
}
static void c_free(void *ptr, void *u) {
    counter *k = (counter *)u;
    size_t *p;
    if (!ptr) return;
    p = (size_t *)(void *)((char *)ptr - 16);
    k->in_use -= p[0];
    free(p);
}
static void *c_realloc(void *ptr, size_t n, void *u) {
    counter *k = (counter *)u;
    size_t *p, *q;
    if (!ptr) return c_alloc(n, u);
    p = (size_t *)(void *)((char *)ptr - 16);
    k->in_use -= p[0];
    q = (size_t *)realloc(p, n + 16);
    if (!q) {
        k->in_use += p[0];
        return NULL;
    }
    q[0] = n;
    k->in_use += n;
    k->calls++;
    return (char *)q + 16;
}

/* ---- the server: echoes; counts events ---- */
typedef struct srv {
    int open, close, clean, msgs, errors, tls_fail, last_tls, last_err;
    unsigned code, version;
    int close_after_first; /* close with 1001 after the first message */
} srv;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    srv *s = (srv *)user;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        s->open++;
        s->version = rtws_conn_get_tls_version(c);
        break;
    case RTWS_EV_MESSAGE:
        s->msgs++;
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
        if (s->close_after_first) rtws_conn_close(c, RTWS_CLOSE_GOING_AWAY, "restart");
        break;
    case RTWS_EV_CLOSE:
        s->close++;
        s->clean += ev->close.clean;
        s->code = ev->close.code;
        break;
    case RTWS_EV_ERROR:
        s->errors++;
        s->last_err = ev->error.err;
        if (ev->error.err == RTWS_ERR_TLS) {
            s->tls_fail++;
            s->last_tls = ev->error.detail;
        }
        break;
    default: break;
    }
}

/* ---- one client connection: sends n messages of size bytes, one at a time
   (or all at once in burst mode), checks each echo, then closes ---- */
typedef struct res {
    size_t size;
    int n, sent, got, bad, burst, binary;
    int open, closed, clean, done, errors, err, tls_error, bad_text;
    unsigned code, version;
    rtws_conn_stats st;
} res;

static void cli_send(rtws_conn *c, res *r) {
    static uint8_t buf[1 << 20];
    size_t i, size = r->size > sizeof buf ? sizeof buf : r->size;
    for (i = 0; i < size; i++) buf[i] = (uint8_t)('a' + (i + (size_t)r->sent) % 26);
    if (rtws_conn_send(c, r->binary ? RTWS_OP_BINARY : RTWS_OP_TEXT, buf, size) != RTWS_OK) r->bad++;
    r->sent++;
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    res *r = (res *)user;
    size_t i;
    int ok;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        r->open = 1;
        r->version = rtws_conn_get_tls_version(c);
        do cli_send(c, r);
        while (r->burst && r->sent < r->n);
        break;
    case RTWS_EV_MESSAGE:
        ok = ev->message.len == r->size;
        for (i = 0; ok && i < ev->message.len; i++) ok = ev->message.data[i] == (uint8_t)('a' + (i + (size_t)r->got) % 26);
        r->bad += !ok;
        r->got++;
        if (r->sent < r->n) cli_send(c, r);
        else if (r->got == r->n) {
            rtws_conn_get_stats(c, &r->st);
            rtws_conn_close(c, RTWS_CLOSE_NORMAL, "bye");
        }
        break;
    case RTWS_EV_CLOSE:
        r->closed = 1;
        r->clean = ev->close.clean;
        r->code = ev->close.code;
        r->done = 1;
        break;
    case RTWS_EV_ERROR:
        r->errors++;
        r->err = ev->error.err;
        r->tls_error = ev->error.detail;
        /* a TLS failure's text is the transport's own, from rtws_tls_err_str */
        if (ev->error.err == RTWS_ERR_TLS &&
            (!ev->error.detail_text ||
             strcmp(ev->error.detail_text, rtws_tls_err_str(ev->error.detail)) != 0))
            r->bad_text++;
        if (!r->open) r->done = 1;
        break;
    default: break;
    }
}

/* one poll over both contexts (b may be NULL) until *flag or ms pass */
static void run(rtws_ctx *a, rtws_ctx *b, int ms, const int *flag) {
    struct pollfd fds[256];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(flag && *flag)) {
        int na = rtws_ctx_fill_pollfds(a, fds, 128), nb = b ? rtws_ctx_fill_pollfds(b, fds + na, 128) : 0;
        int ta = rtws_ctx_get_timeout_ms(a, rtws_time_now_ms()), tb = b ? rtws_ctx_get_timeout_ms(b, rtws_time_now_ms()) : -1;
        int t = ta < 0 ? tb : (tb < 0 ? ta : (ta < tb ? ta : tb));
        if (t < 0 || t > 20) t = 20;
        poll(fds, (nfds_t)(na + nb), t);
        rtws_ctx_service(a, fds, na, rtws_time_now_ms());
        if (b) rtws_ctx_service(b, fds + na, nb, rtws_time_now_ms());
    }
}

static rtws_ctx *mk_ctx(rtws_event_fn fn, void *user, const rtws_tls_client_config *tls) {
    rtws_ctx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = fn;
    cfg.conn.user = user;
    cfg.conn.handshake_timeout_ms = 3000;
    cfg.timer_ms = 20;
    cfg.linger_ms = 200;
    cfg.tls = tls;
    return rtws_ctx_new(&cfg);
}

static rtws_err listen_tls(rtws_ctx *ctx, const char *host, const char *cert, const char *key,
                           int *port) {
    rtws_tls_server_config t;
    memset(&t, 0, sizeof t);
    t.cert_file = cert;
    t.key_file = key;
    return rtws_ctx_listen_tls(ctx, host, 0, &t, port);
}

/* connects a fresh client context to url and runs until that connection ends */
static void echo(rtws_ctx *sv, const char *url, const rtws_tls_client_config *tls, size_t size,
                 int n, res *r) {
    rtws_ctx *cl;
    rtws_err e;
    size_t sz = r->size;
    int burst = r->burst, binary = r->binary;
    memset(r, 0, sizeof *r);
    r->size = size ? size : sz;
    r->n = n;
    r->burst = burst;
    r->binary = binary;
    cl = mk_ctx(cli_event, r, tls);
    if (!cl) {
        r->err = RTWS_ERR_NOMEM;
        return;
    }
    if (!rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), &e)) {
        r->err = e;
        r->done = 1;
        rtws_ctx_free(cl);
        return;
    }
    run(sv, cl, 20000, &r->done);
    {
        const int zero = 0;
        uint64_t until = rtws_time_now_ms() + 2000;
        while (rtws_ctx_get_conn_count(cl) > 0 && rtws_time_now_ms() < until) run(sv, cl, 20, &zero);
    }
    rtws_ctx_free(cl);
}

static void url_of(char *buf, size_t cap, const char *scheme, const char *host, int port) {
    snprintf(buf, cap, "%s://%s:%d/echo", scheme, host, port);
}

/* ---- echo over RSA and EC, sizes, transports ---- */
static void test_echo(void) {
    static const size_t sizes[] = {1, 125, 126, 65535, 65536, 1 << 20};
    srv ss;
    rtws_tls_client_config tls;
    rtws_tls_server_config mem;
    rtws_ctx *sv;
    res r, plain;
    char url[128], *cert_pem = slurp(CERTS "srv_ec.pem"), *key_pem = slurp(CERTS "ec_pkcs8.key");
    char *ca_pem = slurp(CERTS "ca.pem");
    int prsa = 0, pec = 0, pmem = 0, p6 = 0, pplain = 0;
    size_t i;
    memset(&ss, 0, sizeof ss);
    memset(&tls, 0, sizeof tls);
    memset(&r, 0, sizeof r);
    tls.ca_file = CERTS "ca.pem";
    sv = mk_ctx(srv_event, &ss, NULL);
    CHECK(sv != NULL && cert_pem && key_pem && ca_pem);
    if (!sv || !cert_pem || !key_pem || !ca_pem) return;
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rsa_chain.pem", CERTS "rsa.key", &prsa), RTWS_OK);
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_ec.pem", CERTS "ec.key", &pec), RTWS_OK);
    CHECK_EQ(listen_tls(sv, "::1", CERTS "srv_rsa.pem", CERTS "rsa.key", &p6), RTWS_OK);
    memset(&mem, 0, sizeof mem);
    mem.cert_pem = cert_pem;
    mem.key_pem = key_pem;
    CHECK_EQ(rtws_ctx_listen_tls(sv, "127.0.0.1", 0, &mem, &pmem), RTWS_OK);
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &pplain), RTWS_OK);

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int k;
        for (k = 0; k < 2; k++) {
            r.binary = (int)(i & 1);
            url_of(url, sizeof url, "wss", k ? "127.0.0.1" : "localhost", k ? pec : prsa);
            echo(sv, url, &tls, sizes[i], 3, &r);
            CHECK(r.open && r.got == 3 && r.bad == 0 && r.closed && r.clean && r.code == 1000);
            if (!(r.open && r.got == 3 && r.bad == 0 && r.clean))
                fprintf(stderr, "  %s %zu bytes: open %d got %d bad %d err %d tls %d (%s)\n", url,
                        sizes[i], r.open, r.got, r.bad, r.err, r.tls_error,
                        rtws_tls_err_str(r.tls_error));
            CHECK_EQ(r.version, 0x0303);
        }
    }
    printf("echo over RSA and EC keys, 1 B .. 1 MiB: ok\n");
    CHECK_EQ(ss.version, 0x0303);

    /* IPv6 literal with an iPAddress name; key and chain from memory; CA in memory */
    url_of(url, sizeof url, "wss", "[::1]", p6);
    echo(sv, url, &tls, 100, 5, &r);
    CHECK(r.open && r.got == 5 && r.bad == 0 && r.clean);
    tls.ca_file = NULL;
    tls.ca_pem = ca_pem;
    url_of(url, sizeof url, "wss", "127.0.0.1", pmem);
    echo(sv, url, &tls, 1000, 5, &r);
    CHECK(r.open && r.got == 5 && r.bad == 0 && r.clean);

    /* the same events and stats over ws:// and wss:// */
    url_of(url, sizeof url, "ws", "127.0.0.1", pplain);
    echo(sv, url, &tls, 4000, 10, &plain);
    url_of(url, sizeof url, "wss", "127.0.0.1", prsa);
    echo(sv, url, &tls, 4000, 10, &r);
    CHECK(plain.open == r.open && plain.got == r.got && plain.closed == r.closed &&
          plain.clean == r.clean && plain.code == r.code && plain.errors == r.errors);
    CHECK(plain.st.msgs_in == r.st.msgs_in && plain.st.bytes_in == r.st.bytes_in &&
          plain.st.msgs_out == r.st.msgs_out && plain.st.bytes_out == r.st.bytes_out);
    CHECK_EQ(r.st.bytes_in, 40000);
    CHECK_EQ(plain.version, 0);
    CHECK_EQ(r.version, 0x0303);

    /* a burst: 2000 small messages queued at once, many records per read */
    r.burst = 1;
    echo(sv, url, &tls, 100, 2000, &r);
    CHECK(r.open && r.got == 2000 && r.bad == 0 && r.clean);
    r.burst = 0;
    printf("burst of 2000 records: %d echoes\n", r.got);
    CHECK_EQ(ss.errors, 0);
    CHECK_EQ(ss.open, ss.close);
    CHECK_EQ(ss.open, ss.clean);
    {
        rtws_ctx_stats st;
        rtws_ctx_get_stats(sv, &st);
        CHECK(st.msgs_in == (uint64_t)ss.msgs && st.msgs_out == st.msgs_in);
    }
    rtws_ctx_free(sv);
    free(cert_pem);
    free(key_pem);
    free(ca_pem);
}

/* ---- certificate verification ---- */
static int time_2100(uint32_t *days, uint32_t *seconds, void *user) {
    (void)user;
    *days = 719528u + 47482u; /* 2100-01-01 */
    *seconds = 0;
    return 0;
}
static int time_unknown(uint32_t *days, uint32_t *seconds, void *user) {
    (void)user, (void)days, (void)seconds;
    return -1;
}
static int hook_calls;
static int time_counting(uint32_t *days, uint32_t *seconds, void *user) {
    hook_calls++;
    return rtws__tls_time_system(days, seconds, user);
}

static void expect_fail(rtws_ctx *sv, srv *ss, const char *url, const rtws_tls_client_config *tls,
                        int tls_error, const char *what) {
    res r;
    int before = ss->errors;
    uint64_t t0 = rtws_time_now_ms();
    memset(&r, 0, sizeof r);
    echo(sv, url, tls, 10, 1, &r);
    CHECK(!r.open && r.done && r.err == RTWS_ERR_TLS);
    CHECK_EQ(r.tls_error, tls_error);
    CHECK_EQ(r.bad_text, 0);
    CHECK(rtws_time_now_ms() - t0 < 5000);
    {
        const int zero = 0;
        run(sv, NULL, 100, &zero); /* the server sees the alert or the close */
    }
    CHECK(ss->errors > before);
    printf("%s: %s -> %d %s (server: %s)\n", what, url, r.tls_error, rtws_tls_err_str(r.tls_error),
           rtws_tls_err_str(ss->last_tls));
}

static void test_verify(void) {
    srv ss;
    rtws_tls_client_config tls;
    rtws_ctx *sv;
    res r;
    char url[128];
    int pexp = 0, pother = 0, progue = 0, prsa = 0;
    memset(&ss, 0, sizeof ss);
    memset(&tls, 0, sizeof tls);
    tls.ca_file = CERTS "ca.pem";
    sv = mk_ctx(srv_event, &ss, NULL);
    CHECK(sv != NULL);
    if (!sv) return;
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_expired.pem", CERTS "rsa.key", &pexp), RTWS_OK);
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_otherhost.pem", CERTS "rsa.key", &pother), RTWS_OK);
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rogue.pem", CERTS "rsa.key", &progue), RTWS_OK);
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rsa.pem", CERTS "rsa.key", &prsa), RTWS_OK);

    url_of(url, sizeof url, "wss", "localhost", pexp);
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_EXPIRED, "expired certificate");
    url_of(url, sizeof url, "wss", "localhost", pother);
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_BAD_SERVER_NAME, "wrong host name");
    url_of(url, sizeof url, "wss", "127.0.0.1", pother);
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_BAD_SERVER_NAME, "IP literal not in the certificate");
    url_of(url, sizeof url, "wss", "localhost", progue);
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_NOT_TRUSTED, "unknown CA");
    /* secure by default: the system bundle does not know the test CA */
    url_of(url, sizeof url, "wss", "localhost", prsa);
    expect_fail(sv, &ss, url, NULL, BR_ERR_X509_NOT_TRUSTED, "default trust anchors");
    /* the time hook decides what "now" is */
    tls.time = time_2100;
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_EXPIRED, "time hook in 2100");
    tls.time = time_unknown;
    expect_fail(sv, &ss, url, &tls, BR_ERR_X509_TIME_UNKNOWN, "time hook without a clock");
    tls.time = time_counting;
    echo(sv, url, &tls, 10, 1, &r);
    CHECK(r.open && r.got == 1 && r.clean && hook_calls == 1);
    tls.time = NULL;

    /* verification off, explicitly: any certificate passes */
    tls.tls_insecure_skip_verify = 1;
    tls.ca_file = CERTS "does-not-exist.pem"; /* not even read */
    url_of(url, sizeof url, "wss", "127.0.0.1", progue);
    echo(sv, url, &tls, 10, 2, &r);
    CHECK(r.open && r.got == 2 && r.clean);
    url_of(url, sizeof url, "wss", "localhost", pexp);
    echo(sv, url, &tls, 10, 2, &r);
    CHECK(r.open && r.got == 2 && r.clean);
    rtws_ctx_free(sv);
}

/* ---- transports that do not match ---- */
static void test_mismatch(void) {
    srv ss;
    rtws_tls_client_config tls;
    rtws_ctx *sv;
    res r;
    char url[128];
    int ptls = 0, pplain = 0;
    uint64_t t0;
    memset(&ss, 0, sizeof ss);
    memset(&tls, 0, sizeof tls);
    tls.ca_file = CERTS "ca.pem";
    sv = mk_ctx(srv_event, &ss, NULL);
    CHECK(sv != NULL);
    if (!sv) return;
    rtws_ctx_free(sv);
    {
        rtws_ctx_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.conn.on_event = srv_event;
        cfg.conn.user = &ss;
        cfg.conn.handshake_timeout_ms = 500;
        cfg.timer_ms = 20;
        sv = rtws_ctx_new(&cfg);
    }
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rsa.pem", CERTS "rsa.key", &ptls), RTWS_OK);
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &pplain), RTWS_OK);

    /* a plain WebSocket client on the TLS port */
    t0 = rtws_time_now_ms();
    url_of(url, sizeof url, "ws", "127.0.0.1", ptls);
    echo(sv, url, &tls, 10, 1, &r);
    CHECK(!r.open && r.done && r.err == RTWS_ERR_HANDSHAKE);
    CHECK(ss.tls_fail == 1 && ss.last_tls != 0 && ss.open == 0);
    CHECK(rtws_time_now_ms() - t0 < 3000);
    printf("plain client on a TLS port: client %s; server %s\n", rtws_err_str(r.err),
           rtws_tls_err_str(ss.last_tls));

    /* a TLS client on a plain port: a ClientHello holds no end of an HTTP
       head, so the plain server waits for one until its handshake timeout
       (500 ms here), then closes; the client reports the truncated handshake */
    t0 = rtws_time_now_ms();
    url_of(url, sizeof url, "wss", "127.0.0.1", pplain);
    echo(sv, url, &tls, 10, 1, &r);
    CHECK(!r.open && r.done && r.err == RTWS_ERR_TLS && r.tls_error == RTWS_TLS_ERR_TRUNCATED);
    CHECK(rtws_time_now_ms() - t0 < 2000);
    printf("TLS client on a plain port: %d %s\n", r.tls_error, rtws_tls_err_str(r.tls_error));
    {
        const int zero = 0;
        run(sv, NULL, 100, &zero);
    }
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    rtws_ctx_free(sv);
}

/* ---- truncated and stalled handshakes ---- */
static int raw_listen(int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) return -1;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static int raw_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct fake_srv {
    int lfd, fd, got, mode; /* mode 0: close after the ClientHello; 1: never answer */
} fake_srv;

/* drives the fake server between rounds of the client's loop */
static void fake_step(fake_srv *f) {
    char buf[4096];
    ssize_t n;
    if (f->fd < 0) f->fd = accept(f->lfd, NULL, NULL);
    if (f->fd < 0) return;
    fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
    while ((n = recv(f->fd, buf, sizeof buf, 0)) > 0) f->got += (int)n;
    if (f->mode == 0 && f->got > 0) {
        /* the start of a ServerHello record, then gone */
        static const uint8_t part[] = {0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00};
        if (send(f->fd, part, sizeof part, MSG_NOSIGNAL) < 0) f->got = -1;
        close(f->fd);
        f->fd = -2; /* done */
    }
}

static void test_truncated(void) {
    srv ss;
    rtws_tls_client_config tls;
    rtws_ctx *sv, *cl;
    res r;
    fake_srv f;
    char url[128];
    int ptls = 0, fd, mode;
    uint64_t t0;
    /* a client that sends part of a ClientHello and closes */
    memset(&ss, 0, sizeof ss);
    sv = mk_ctx(srv_event, &ss, NULL);
    CHECK(sv != NULL);
    if (!sv) return;
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rsa.pem", CERTS "rsa.key", &ptls), RTWS_OK);
    fd = raw_connect(ptls);
    CHECK(fd >= 0);
    if (fd >= 0) {
        static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03};
        const int zero = 0;
        CHECK(send(fd, hello, sizeof hello, MSG_NOSIGNAL) == (ssize_t)sizeof hello);
        run(sv, NULL, 100, &zero);
        close(fd);
        t0 = rtws_time_now_ms();
        while (ss.errors == 0 && rtws_time_now_ms() - t0 < 3000) run(sv, NULL, 20, &zero);
        CHECK(ss.tls_fail == 1 && ss.last_tls == RTWS_TLS_ERR_TRUNCATED);
        CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
        printf("client closing mid-handshake: server %s\n", rtws_tls_err_str(ss.last_tls));
    }
    rtws_ctx_free(sv);

    /* a server that closes mid-handshake, and one that never answers */
    memset(&tls, 0, sizeof tls);
    tls.ca_file = CERTS "ca.pem";
    for (mode = 0; mode < 2; mode++) {
        rtws_err e;
        rtws_ctx_config cfg;
        memset(&f, 0, sizeof f);
        memset(&r, 0, sizeof r);
        f.fd = -1;
        f.mode = mode;
        f.lfd = raw_listen(&ptls);
        CHECK(f.lfd >= 0);
        memset(&cfg, 0, sizeof cfg);
        cfg.conn.on_event = cli_event;
        cfg.conn.user = &r;
        cfg.conn.handshake_timeout_ms = 400;
        cfg.timer_ms = 20;
        cfg.linger_ms = 100;
        cfg.tls = &tls;
        cl = rtws_ctx_new(&cfg);
        url_of(url, sizeof url, "wss", "127.0.0.1", ptls);
        r.n = 1;
        r.size = 1;
        t0 = rtws_time_now_ms();
        CHECK(rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), &e) != NULL);
        while (!r.done && rtws_time_now_ms() - t0 < 3000) {
            run(cl, NULL, 20, &r.done);
            fake_step(&f);
        }
        CHECK(r.done && !r.open);
        if (mode == 0) CHECK(r.err == RTWS_ERR_TLS && r.tls_error == RTWS_TLS_ERR_TRUNCATED);
        if (mode == 0) CHECK(f.got > 0); /* our ClientHello reached it */
        else CHECK(r.err == RTWS_ERR_TIMEOUT);
        CHECK(rtws_time_now_ms() - t0 < 2000);
        printf("server %s: client %s %s after %d ms\n", mode ? "silent" : "closing mid-handshake",
               rtws_err_str(r.err), r.err == RTWS_ERR_TLS ? rtws_tls_err_str(r.tls_error) : "",
               (int)(rtws_time_now_ms() - t0));
        {
            const int zero = 0;
            run(cl, NULL, 300, &zero);
        }
        CHECK_EQ(rtws_ctx_get_conn_count(cl), 0);
        rtws_ctx_free(cl);
        if (f.fd >= 0) close(f.fd);
        close(f.lfd);
    }
}

/* ---- configuration errors ---- */
static void test_config(void) {
    srv ss;
    rtws_tls_client_config tls;
    rtws_tls_server_config sc;
    rtws_ctx *ctx;
    rtws_err e;
    int port;
    memset(&ss, 0, sizeof ss);
    memset(&tls, 0, sizeof tls);
    ctx = mk_ctx(srv_event, &ss, &tls);
    CHECK(ctx != NULL);
    if (!ctx) return;
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), 0);
    CHECK_EQ(listen_tls(ctx, "127.0.0.1", CERTS "nope.pem", CERTS "rsa.key", &port), RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_READ);
    CHECK_EQ(listen_tls(ctx, "127.0.0.1", CERTS "srv_ec.pem", CERTS "rsa.key", &port), RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_KEY_MISMATCH);
    CHECK_EQ(listen_tls(ctx, "127.0.0.1", CERTS "srv_rsa.pem", CERTS "srv_rsa.pem", &port), RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_NO_KEY);
    CHECK_EQ(listen_tls(ctx, "127.0.0.1", CERTS "rsa.key", CERTS "rsa.key", &port), RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_NO_CERT);
    memset(&sc, 0, sizeof sc);
    sc.cert_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    sc.key_file = CERTS "rsa.key";
    CHECK_EQ(rtws_ctx_listen_tls(ctx, "127.0.0.1", 0, &sc, &port), RTWS_ERR_TLS);
    CHECK(rtws_ctx_get_tls_error(ctx) == RTWS_TLS_ERR_PEM || rtws_ctx_get_tls_error(ctx) == RTWS_TLS_ERR_NO_CERT);
    CHECK_EQ(rtws_ctx_listen_tls(ctx, "127.0.0.1", 0, NULL, &port), RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_conn_count(ctx), 0);

    tls.ca_file = CERTS "nope.pem";
    CHECK(rtws_ctx_connect(ctx, "wss://localhost:1/", NULL, rtws_time_now_ms(), &e) == NULL);
    CHECK_EQ(e, RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_READ);
    tls.ca_file = CERTS "rsa.key";
    CHECK(rtws_ctx_connect(ctx, "wss://localhost:1/", NULL, rtws_time_now_ms(), &e) == NULL);
    CHECK_EQ(e, RTWS_ERR_TLS);
    CHECK_EQ(rtws_ctx_get_tls_error(ctx), RTWS_TLS_ERR_NO_ANCHORS);
    CHECK(rtws_ctx_connect(ctx, "wss://", NULL, rtws_time_now_ms(), &e) == NULL);
    CHECK_EQ(e, RTWS_ERR_URL);
    CHECK(strstr(rtws_tls_err_str(BR_ERR_X509_EXPIRED), "expired") != NULL);
    CHECK(strstr(rtws_tls_err_str(BR_ERR_X509_NOT_TRUSTED), "trusted") != NULL);
    CHECK(strstr(rtws_tls_err_str(BR_ERR_X509_BAD_SERVER_NAME), "host name") != NULL);
    CHECK(strstr(rtws_tls_err_str(BR_ERR_RECV_FATAL_ALERT + 48), "unknown_ca") != NULL);
    CHECK(strcmp(rtws_tls_err_str(12345), "unknown TLS error") == 0);
    rtws_ctx_free(ctx);
}

/* ---- the reconnecting client over wss:// ---- */
typedef struct live {
    int opens, msgs, errors;
} live;
static void live_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    live *l = (live *)user;
    (void)cl;
    if (ev->type == RTWS_CLIENT_EV_STATE && ev->state.state == RTWS_CLIENT_OPEN) l->opens++;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE) l->msgs++;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_ERROR) l->errors++;
}

static void test_client(void) {
    srv ss;
    live l;
    rtws_tls_client_config tls;
    rtws_client_config cc;
    rtws_ctx *sv, *cl;
    rtws_client *k;
    rtws_err e;
    char url[128];
    int port = 0, sent = 0, done = 0;
    uint64_t until;
    memset(&ss, 0, sizeof ss);
    memset(&l, 0, sizeof l);
    memset(&tls, 0, sizeof tls);
    ss.close_after_first = 1; /* every connection is closed with 1001 after one echo */
    tls.ca_file = CERTS "ca.pem";
    sv = mk_ctx(srv_event, &ss, NULL);
    cl = mk_ctx(NULL, NULL, &tls);
    CHECK(sv && cl);
    if (!sv || !cl) return;
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_ec.pem", CERTS "ec.key", &port), RTWS_OK);
    url_of(url, sizeof url, "wss", "localhost", port);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = live_event;
    cc.user = &l;
    cc.backoff_base_ms = 50;
    k = rtws_client_new(cl, &cc, rtws_time_now_ms(), &e);
    CHECK(k != NULL);
    if (!k) return;
    until = rtws_time_now_ms() + 10000;
    while (l.msgs < 3 && rtws_time_now_ms() < until) {
        if (sent < l.opens) {
            rtws_client_send(k, RTWS_OP_TEXT, "hello", 5, 0);
            sent++;
        }
        run(sv, cl, 20, &done);
    }
    CHECK(l.opens >= 3 && l.msgs >= 3 && ss.open >= 3);
    printf("rtws_client over wss://: %d opens, %d echoes\n", l.opens, l.msgs);
    rtws_client_free(k);
    run(sv, cl, 200, &done);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
}

/* ---- what a connection costs ---- */
static int both_open(void *p) { return ((srv *)p)->open >= 1; }
static void test_memory(void) {
    counter k;
    srv ss;
    rtws_ctx_config cfg;
    rtws_ctx *sv;
    int ptls = 0, pplain = 0, fd;
    size_t base, plain, tls;
    /* the TLS flag sits with the other flags: a ws:// socket record stays
       within its budget (472 bytes, a 480-byte malloc chunk) */
    CHECK(sizeof(rtws__sock) <= 472);
    memset(&k, 0, sizeof k);
    memset(&ss, 0, sizeof ss);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = srv_event;
    cfg.conn.user = &ss;
    cfg.conn.allocator.alloc = c_alloc;
    cfg.conn.allocator.realloc = c_realloc;
    cfg.conn.allocator.free = c_free;
    cfg.conn.allocator.user = &k;
    sv = rtws_ctx_new(&cfg);
    CHECK(sv != NULL);
    if (!sv) return;
    CHECK_EQ(listen_tls(sv, "127.0.0.1", CERTS "srv_rsa.pem", CERTS "rsa.key", &ptls), RTWS_OK);
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &pplain), RTWS_OK);
    {
        const int zero = 0;
        uint64_t until = rtws_time_now_ms() + 10000; /* bounded: a failure fails, never hangs */
        run(sv, NULL, 20, &zero);
        base = k.in_use;
        fd = raw_connect(pplain);
        CHECK(fd >= 0);
        while (rtws_ctx_get_conn_count(sv) < 1 && rtws_time_now_ms() < until) run(sv, NULL, 20, &zero);
        plain = k.in_use - base;
        close(fd);
        while (rtws_ctx_get_conn_count(sv) > 0 && rtws_time_now_ms() < until) run(sv, NULL, 20, &zero);
        base = k.in_use;
        fd = raw_connect(ptls);
        CHECK(fd >= 0);
        while (rtws_ctx_get_conn_count(sv) < 1 && rtws_time_now_ms() < until) run(sv, NULL, 20, &zero);
        tls = k.in_use - base;
        close(fd);
        while (rtws_ctx_get_conn_count(sv) > 0 && rtws_time_now_ms() < until) run(sv, NULL, 20, &zero);
        CHECK(rtws_time_now_ms() < until);
    }
    (void)both_open;
    CHECK(plain < 4096 && plain >= sizeof(rtws__sock));
    CHECK(tls >= plain + BR_SSL_BUFSIZE_BIDI);
    printf("memory of an idle accepted connection: ws:// %zu bytes, wss:// %zu bytes\n", plain, tls);
    rtws_ctx_free(sv);
    CHECK_EQ(k.in_use, 0);
}

int main(void) {
    if (system("tests/tls_certs.sh build/tls") != 0) {
        printf("cannot make test certificates (openssl?)\n0 passed, 1 failed\n");
        return 1;
    }
    test_memory();
    test_echo();
    test_verify();
    test_mismatch();
    test_truncated();
    test_config();
    test_client();
    return T_END();
}
