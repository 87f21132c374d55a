/* Name resolution on the loop (layer 4's resolver) against a fake DNS server
   on 127.0.0.1 (UDP and TCP on one OS-chosen port) served from this test's
   own poll loop: if rtws_ctx_connect waited for an answer, the fake server
   could never send it. What each name gets is in fake_answer(): a plain
   answer, a slow one (2 s), wrong replies first (another id, another
   question: ignored), truncated over UDP (asked again over TCP), NXDOMAIN,
   SERVFAIL, REFUSED, silence (the tries time out). Also measured: the
   largest gap between echoes on an open connection while another connect
   waits 2 s for its name, and how long a name with an IPv6 address on a
   closed port (::1, refused at once) and a working IPv4 one takes to
   open (Happy Eyeballs order: IPv6 first, then IPv4). And the race (RFC
   8305): with addresses whose connects hang (a listener with a full
   backlog drops their SYNs) each next one starts 250 ms after the one
   before, and an attempt held that long still wins when it connects. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS (redirect_server.h) */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "redirect_server.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the fake DNS server ---- */

typedef struct delayed {
    uint8_t msg[600];
    size_t len;
    uint64_t due;
    struct sockaddr_in to;
    int used;
} delayed;

static int dns_udp = -1, dns_tcp = -1, dns_port;
static int tcp_conns[8], n_tcp;
static int n_udp_queries, n_tcp_queries;
static delayed later[32];

/* The question of a query: its name (dotted, lower case) and type. 0 when
   malformed. Sets *qend to the end of the question. */
static int parse_query(const uint8_t *q, size_t n, char *name, unsigned *qtype, size_t *qend) {
    size_t i = 12, k = 0;
    if (n < 17) return 0;
    while (i < n && q[i]) {
        size_t l = q[i++];
        if (i + l > n || k + l + 2 > 256) return 0;
        if (k) name[k++] = '.';
        memcpy(name + k, q + i, l);
        k += l;
        i += l;
    }
    name[k] = 0;
    if (i + 5 > n) return 0;
    *qtype = (unsigned)q[i + 1] << 8 | q[i + 2];
    *qend = i + 5;
    return 1;
}

/* An answer to query q: rcode, TC, and the addresses (as text) that match
   qtype. Returns its length. */
static size_t make_answer(uint8_t *out, const uint8_t *q, size_t qend, unsigned qtype,
                          unsigned rcode, int tc, const char *const *addrs) {
    size_t n = qend, an = 0;
    memcpy(out, q, qend);
    out[2] = (uint8_t)(0x81 | (tc ? 0x02 : 0)); /* QR, RD (TC) */
    out[3] = (uint8_t)(0x80 | rcode);           /* RA */
    out[4] = 0, out[5] = 1;
    memset(out + 6, 0, 6);
    for (; addrs && *addrs; addrs++) {
        uint8_t a[16];
        int six = strchr(*addrs, ':') != NULL;
        if ((six ? 28u : 1u) != qtype) continue;
        inet_pton(six ? AF_INET6 : AF_INET, *addrs, a);
        out[n++] = 0xc0, out[n++] = 12; /* the question's name */
        out[n++] = 0, out[n++] = (uint8_t)qtype, out[n++] = 0, out[n++] = 1;
        out[n++] = 0, out[n++] = 0, out[n++] = 0, out[n++] = 60;
        out[n++] = 0, out[n++] = six ? 16 : 4;
        memcpy(out + n, a, six ? 16 : 4);
        n += six ? 16 : 4;
        an++;
    }
    out[7] = (uint8_t)an;
    return n;
}

static void send_later(const uint8_t *m, size_t n, const struct sockaddr_in *to, uint64_t due) {
    int i;
    for (i = 0; i < 32; i++)
        if (!later[i].used) {
            memcpy(later[i].msg, m, n);
            later[i].len = n;
            later[i].due = due;
            later[i].to = *to;
            later[i].used = 1;
            return;
        }
}

static const char *const v4_only[] = {"127.0.0.1", NULL};
static const char *const v6_v4[] = {"::1", "127.0.0.1", NULL};
static const char *const nowhere[] = {"192.0.2.1", NULL}; /* TEST-NET-1 */
static const char *const race3[] = {"::1", "127.0.0.2", "127.0.0.1", NULL};
static const char *const race2[] = {"::1", "127.0.0.2", NULL};

/* What the fake server does with a query for name over UDP (tcp 0) or TCP:
   the reply into out (0: none now); a delayed or extra reply goes through
   send_later. */
static size_t fake_answer(uint8_t *out, const uint8_t *q, size_t n, int tcp,
                          const struct sockaddr_in *from) {
    char name[256];
    unsigned qtype;
    size_t qend;
    uint64_t now = rtws_time_now_ms();
    if (!parse_query(q, n, name, &qtype, &qend)) return 0;
    if (strncmp(name, "ok.", 3) == 0) return make_answer(out, q, qend, qtype, 0, 0, v4_only);
    if (strncmp(name, "both.", 5) == 0) return make_answer(out, q, qend, qtype, 0, 0, v6_v4);
    if (strncmp(name, "nx.", 3) == 0) return make_answer(out, q, qend, qtype, 3, 0, NULL);
    if (strncmp(name, "fail.", 5) == 0) return make_answer(out, q, qend, qtype, 2, 0, NULL);
    if (strncmp(name, "refuse.", 7) == 0) return make_answer(out, q, qend, qtype, 5, 0, NULL);
    if (strncmp(name, "silent.", 7) == 0) return 0;
    if (strncmp(name, "race3.", 6) == 0) return make_answer(out, q, qend, qtype, 0, 0, race3);
    if (strncmp(name, "race2.", 6) == 0) return make_answer(out, q, qend, qtype, 0, 0, race2);
    if (strncmp(name, "slow.", 5) == 0) {
        uint8_t m[600];
        size_t k = make_answer(m, q, qend, qtype, 0, 0, v4_only);
        send_later(m, k, from, now + 2000);
        return 0;
    }
    if (strncmp(name, "trunc.", 6) == 0) /* over UDP: TC and nothing else */
        return make_answer(out, q, qend, qtype, 0, !tcp, tcp ? v4_only : NULL);
    if (strncmp(name, "wrong.", 6) == 0) {
        /* first another id, then another question, both pointing nowhere;
           the true answer 100 ms later */
        uint8_t m[600], q2[600];
        size_t k = make_answer(m, q, qend, qtype, 0, 0, nowhere);
        m[0] ^= 0x5a;
        send_later(m, k, from, now);
        memcpy(q2, q, n);
        q2[13] = (uint8_t)(q2[13] == 'x' ? 'y' : 'x'); /* the first letter of the name */
        k = make_answer(m, q2, qend, qtype, 0, 0, nowhere);
        send_later(m, k, from, now);
        k = make_answer(m, q, qend, qtype, 0, 0, v4_only);
        send_later(m, k, from, now + 100);
        return 0;
    }
    return make_answer(out, q, qend, qtype, 3, 0, NULL);
}

static int dns_start(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int tries, one = 1;
    for (tries = 0; tries < 20; tries++) {
        dns_udp = socket(AF_INET, SOCK_DGRAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(dns_udp, (struct sockaddr *)&a, sizeof a) != 0) return 0;
        getsockname(dns_udp, (struct sockaddr *)&a, &len);
        dns_tcp = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(dns_tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(dns_tcp, (struct sockaddr *)&a, sizeof a) == 0 && listen(dns_tcp, 8) == 0) {
            dns_port = ntohs(a.sin_port);
            return 1;
        }
        close(dns_udp);
        close(dns_tcp);
    }
    return 0;
}

static void dns_serve(const struct pollfd *p, int np) {
    uint8_t q[600], out[600];
    int i;
    uint64_t now = rtws_time_now_ms();
    for (i = 0; i < np; i++) {
        if (!p[i].revents) continue;
        if (p[i].fd == dns_udp) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            long r = recvfrom(dns_udp, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
            if (r > 0) {
                size_t k = fake_answer(out, q, (size_t)r, 0, &from);
                n_udp_queries++;
                if (k) sendto(dns_udp, out, k, 0, (struct sockaddr *)&from, fl);
            }
        } else if (p[i].fd == dns_tcp) {
            int fd = accept(dns_tcp, NULL, NULL);
            if (fd >= 0 && n_tcp < 8) tcp_conns[n_tcp++] = fd;
            else if (fd >= 0) close(fd);
        } else {
            /* a TCP client: small queries, read whole in one go here */
            uint8_t in[1200];
            long r = recv(p[i].fd, in, sizeof in, 0);
            size_t off = 0;
            while (r > 0 && off + 2 <= (size_t)r) {
                size_t m = (size_t)in[off] << 8 | in[off + 1], k;
                if (off + 2 + m > (size_t)r) break;
                k = fake_answer(out + 2, in + off + 2, m, 1, NULL);
                n_tcp_queries++;
                out[0] = (uint8_t)(k >> 8), out[1] = (uint8_t)k;
                if (k) send(p[i].fd, out, k + 2, 0);
                off += 2 + m;
            }
        }
    }
    for (i = 0; i < 32; i++)
        if (later[i].used && later[i].due <= now) {
            sendto(dns_udp, later[i].msg, later[i].len, 0, (struct sockaddr *)&later[i].to,
                   sizeof later[i].to);
            later[i].used = 0;
        }
}

/* ---- the WebSocket side ---- */

typedef struct peer {
    int opened, closed, errors, echoes;
    rtws_err err;
    int detail;
    char text[200];
    uint64_t opened_at, closed_at, last_echo, max_gap;
    int measuring;
} peer;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE)
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)rtws_conn_get_data(c);
    uint64_t now = rtws_time_now_ms();
    (void)user;
    if (!p) return;
    if (ev->type == RTWS_EV_OPEN) {
        p->opened = 1;
        p->opened_at = now;
        if (p->measuring) {
            p->last_echo = now;
            rtws_conn_send_text(c, "ping", 4);
        }
    } else if (ev->type == RTWS_EV_ERROR && !p->errors++) {
        p->err = ev->error.err;
        p->detail = ev->error.detail;
        snprintf(p->text, sizeof p->text, "%s", ev->error.detail_text ? ev->error.detail_text : "");
        if (!p->opened) { /* never opened: the error is its last event */
            p->closed = 1;
            p->closed_at = now;
        }
    } else if (ev->type == RTWS_EV_CLOSE) {
        p->closed = 1;
        p->closed_at = now;
    } else if (ev->type == RTWS_EV_MESSAGE && p->measuring) {
        if (now - p->last_echo > p->max_gap) p->max_gap = now - p->last_echo;
        p->last_echo = now;
        p->echoes++;
        rtws_conn_send_text(c, "ping", 4);
    }
}

static rtws_ctx *sv, *sv6; /* sv6: on [::1] at the same port, when asked */
static int sv6_opened;

static void srv6_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)user;
    if (ev->type == RTWS_EV_OPEN) sv6_opened++;
}

static int use_run_once; /* the client context driven by rtws_ctx_run_once (epoll) */

static void run(rtws_ctx *cl, int ms, int (*done)(void *), void *arg) {
    struct pollfd fds[64];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(done && done(arg))) {
        int na = rtws_ctx_fill_pollfds(sv, fds, 24);
        int nb = use_run_once ? 0 : rtws_ctx_fill_pollfds(cl, fds + na, 24);
        int n6 = sv6 ? rtws_ctx_fill_pollfds(sv6, fds + na + nb, 8) : 0;
        int nd = 0, i, to = 10;
        struct pollfd *d = fds + na + nb + n6;
        d[nd].fd = dns_udp, d[nd].events = POLLIN, d[nd++].revents = 0;
        d[nd].fd = dns_tcp, d[nd].events = POLLIN, d[nd++].revents = 0;
        for (i = 0; i < n_tcp; i++) d[nd].fd = tcp_conns[i], d[nd].events = POLLIN, d[nd++].revents = 0;
        poll(fds, (nfds_t)(na + nb + n6 + nd), use_run_once ? 1 : to);
        rtws_ctx_service(sv, fds, na, rtws_time_now_ms());
        if (use_run_once) rtws_ctx_run_once(cl, 0);
        else rtws_ctx_service(cl, fds + na, nb, rtws_time_now_ms());
        if (sv6) rtws_ctx_service(sv6, fds + na + nb, n6, rtws_time_now_ms());
        dns_serve(d, nd);
    }
}

static int ended(void *arg) {
    peer *p = (peer *)arg;
    return p->opened || p->closed;
}

static int server_port;

/* A listener on addr:port whose backlog is full (listen(0) and one
   connection never accepted): a connect to it stays pending, its SYNs
   dropped. 1 with *l and *filler, else 0 (both closed). */
static int hang_listener(const char *addr, int port, int *l, int *filler) {
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct sockaddr *a;
    socklen_t len;
    int six = strchr(addr, ':') != NULL, one = 1;
    memset(&a6, 0, sizeof a6);
    memset(&a4, 0, sizeof a4);
    if (six) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &a6.sin6_addr);
        a = (struct sockaddr *)&a6, len = sizeof a6;
    } else {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &a4.sin_addr);
        a = (struct sockaddr *)&a4, len = sizeof a4;
    }
    *l = socket(six ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    *filler = socket(six ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (*l >= 0) setsockopt(*l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (*l >= 0 && *filler >= 0 && bind(*l, a, len) == 0 && listen(*l, 0) == 0 &&
        connect(*filler, a, len) == 0)
        return 1;
    if (*l >= 0) close(*l);
    if (*filler >= 0) close(*filler);
    *l = *filler = -1;
    return 0;
}

/* Connects to ws://name:port/ and runs until it opens or closes (at most
   ms); returns how long rtws_ctx_connect itself took. */
static uint64_t try_name(rtws_ctx *cl, const char *name, peer *p, int ms) {
    char url[300];
    rtws_err e = RTWS_OK;
    rtws_conn *c;
    uint64_t t0 = rtws_time_now_ms(), took;
    memset(p, 0, sizeof *p);
    if (strchr(name, '/')) snprintf(url, sizeof url, "ws://%s", name); /* host:port/path */
    else snprintf(url, sizeof url, "ws://%s:%d/", name, server_port);
    c = rtws_ctx_connect(cl, url, NULL, t0, &e);
    took = rtws_time_now_ms() - t0;
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "connect %s: %s\n", url, rtws_err_str(e));
        return took;
    }
    rtws_conn_set_data(c, p);
    run(cl, ms, ended, p);
    if (p->closed) return took; /* (c is gone) */
    rtws_conn_set_data(c, NULL); /* p is for the next name */
    if (p->opened) rtws_conn_close(c, 1000, NULL);
    else fprintf(stderr, "%s: neither open nor closed\n", name);
    return took;
}

/* rtws_stream through the same resolver */
typedef struct sres {
    int opened, closed;
    rtws_err err;
    int detail;
    char text[200];
} sres;

static void stream_event(rtws_stream *st, rtws_stream_event *ev, void *user) {
    sres *r = (sres *)user;
    (void)st;
    if (ev->type == RTWS_STREAM_EV_OPEN) r->opened = 1;
    if (ev->type == RTWS_STREAM_EV_CLOSE) {
        r->closed = 1;
        r->err = ev->err;
        r->detail = ev->detail;
        snprintf(r->text, sizeof r->text, "%s", ev->detail_text ? ev->detail_text : "");
    }
}

static int stream_ended(void *arg) {
    sres *r = (sres *)arg;
    return r->opened || r->closed;
}

static void try_stream(rtws_ctx *cl, const char *name, sres *r) {
    rtws_stream_config c;
    rtws_stream *st;
    rtws_err e;
    uint64_t t0 = rtws_time_now_ms();
    memset(&c, 0, sizeof c);
    memset(r, 0, sizeof *r);
    c.host = name;
    c.port = server_port;
    c.on_event = stream_event;
    c.user = r;
    st = rtws_stream_new(cl, &c, &e);
    CHECK(st != NULL);
    if (!st) return;
    CHECK_EQ(rtws_stream_connect(st, t0), RTWS_OK);
    CHECK(rtws_time_now_ms() - t0 < 250); /* a blocking lookup: >= the 300 ms timeout */
    run(cl, 3000, stream_ended, r);
    rtws_stream_free(st);
}

/* the reconnecting client: a name that does not resolve is a failed attempt */
static void rc_event(rtws_client *c, const rtws_client_event *ev, void *user) {
    (void)c, (void)ev, (void)user;
}

static int rc_settled(void *arg) {
    rtws_client_state st = rtws_client_get_state((rtws_client *)arg);
    return st == RTWS_CLIENT_OPEN || st == RTWS_CLIENT_FAILED;
}

static rtws_ctx *client_ctx(uint32_t timeout_ms, unsigned attempts, const char *conf) {
    rtws_ctx_config cc;
    memset(&cc, 0, sizeof cc);
    cc.conn.on_event = cli_event;
    cc.timer_ms = 10;
    cc.dns_conf = conf;
    cc.dns_port = (unsigned)dns_port;
    cc.dns_timeout_ms = timeout_ms;
    cc.dns_attempts = attempts;
    cc.dns_hosts = "127.0.0.1 listed.test\n::1 hang6.test\n127.0.0.1 hang6.test\n";
    return rtws_ctx_new(&cc);
}

int main(void) {
    rtws_ctx_config sc;
    rtws_ctx *cl, *cl2;
    peer p, m;
    uint64_t t0, took;
    int before;
    memset(&sc, 0, sizeof sc);
    sc.conn.on_event = srv_event;
    sc.timer_ms = 10;
    CHECK(dns_start());
    sv = rtws_ctx_new(&sc);
    CHECK(sv != NULL);
    if (!sv || dns_port == 0) return T_END();
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &server_port), RTWS_OK);
    printf("fake DNS on 127.0.0.1:%d (UDP and TCP), echo server on 127.0.0.1:%d\n", dns_port,
           server_port);
    cl = client_ctx(300, 2, "nameserver 127.0.0.1\n");
    CHECK(cl != NULL);
    if (!cl) return T_END();

    /* the system's settings: /etc/resolv.conf here, its nameservers counted */
    {
        rtws_dns_conf sys, file;
        FILE *f = fopen("/etc/resolv.conf", "rb");
        char text[8192];
        size_t len = f ? fread(text, 1, sizeof text, f) : 0, n, named = 0, i;
        if (f) fclose(f);
        n = rtws_dns_conf_system(&sys, NULL);
        rtws_dns_conf_parse(text, len, &file);
        for (i = 0; i + 10 < len; i++) /* nameserver lines with an IPv4 address */
            if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, "nameserver ", 11) == 0 &&
                text[i + 11] >= '0' && text[i + 11] <= '9' && named < 3)
                named++;
        CHECK(memcmp(&sys, &file, sizeof sys) == 0);
        CHECK(n == named || n == file.nservers);
        CHECK(n <= sys.nservers && sys.nservers >= 1);
        printf("rtws_dns_conf_system: %u servers named by /etc/resolv.conf\n", (unsigned)n);
    }

    /* a plain answer; the connect returns at once */
    took = try_name(cl, "ok.test", &p, 3000);
    CHECK(p.opened);
    CHECK(took < 250); /* a blocking lookup would wait out the 300 ms timeout */
    CHECK(n_udp_queries == 2); /* A and AAAA */

    /* the hosts text answers without DNS; IP literals need none either */
    before = n_udp_queries;
    try_name(cl, "listed.test", &p, 3000);
    CHECK(p.opened);
    try_name(cl, "127.0.0.1", &p, 3000);
    CHECK(p.opened);
    try_name(cl, "localhost", &p, 3000); /* (not in this hosts text: RFC 6761) */
    CHECK(p.opened);
    CHECK_EQ(n_udp_queries, before);

    /* NXDOMAIN, SERVFAIL, REFUSED: the error event says which */
    took = try_name(cl, "nx.test", &p, 3000);
    CHECK(took < 250);
    CHECK(!p.opened && p.closed);
    CHECK_EQ(p.err, RTWS_ERR_RESOLVE);
    CHECK_EQ(p.detail, 3);
    CHECK(strstr(p.text, "no such name") != NULL);
    printf("nx.test: %s\n", p.text);
    before = n_udp_queries;
    try_name(cl, "fail.test", &p, 3000);
    CHECK(!p.opened && p.closed && p.err == RTWS_ERR_RESOLVE);
    CHECK(strstr(p.text, "server failure") != NULL);
    CHECK_EQ(n_udp_queries - before, 4); /* A, AAAA; SERVFAIL: the second try asks again */
    printf("fail.test: %s (%d queries)\n", p.text, n_udp_queries - before);
    try_name(cl, "refuse.test", &p, 3000);
    CHECK(!p.opened && p.closed && p.err == RTWS_ERR_RESOLVE);
    CHECK(strstr(p.text, "refused") != NULL);
    printf("refuse.test: %s\n", p.text);

    /* silence: two tries of 300 ms, then the error */
    t0 = rtws_time_now_ms();
    try_name(cl, "silent.test", &p, 5000);
    CHECK(!p.opened && p.closed && p.err == RTWS_ERR_RESOLVE);
    CHECK(strstr(p.text, "timed out") != NULL);
    CHECK(p.closed_at - t0 >= 550 && p.closed_at - t0 < 1500);
    printf("silent.test: %s after %llu ms (2 tries of 300 ms)\n", p.text,
           (unsigned long long)(p.closed_at - t0));

    /* wrong id and wrong question first (pointing at 192.0.2.1): ignored */
    try_name(cl, "wrong.test", &p, 3000);
    CHECK(p.opened);

    /* truncated over UDP: asked again over TCP */
    before = n_tcp_queries;
    try_name(cl, "trunc.test", &p, 3000);
    CHECK(p.opened);
    CHECK_EQ(n_tcp_queries - before, 2);

    /* the same through rtws_ctx_run_once (epoll on Linux): the query's
       socket, then the TCP one, then the connection's, in its set in turn */
    use_run_once = 1;
    try_name(cl, "ok.test", &p, 3000);
    CHECK(p.opened);
    try_name(cl, "trunc.test", &p, 3000);
    CHECK(p.opened);
    try_name(cl, "nx.test", &p, 3000);
    CHECK(p.closed && p.err == RTWS_ERR_RESOLVE);
    use_run_once = 0;

    /* streams resolve the same way */
    {
        sres r;
        try_stream(cl, "ok.test", &r);
        CHECK(r.opened);
        try_stream(cl, "nx.test", &r);
        CHECK(!r.opened && r.closed);
        CHECK_EQ(r.err, RTWS_ERR_RESOLVE);
        CHECK_EQ(r.detail, 3);
        CHECK(strstr(r.text, "no such name") != NULL);
        printf("rtws_stream to nx.test: CLOSE, %s\n", r.text);
        try_stream(cl, "trunc.test", &r);
        CHECK(r.opened);
        try_stream(cl, "listed.test", &r);
        CHECK(r.opened);
        printf("rtws_stream: ok.test, trunc.test, listed.test open\n");
    }

    /* rtws_client: NXDOMAIN is retried like any failed attempt, then FAILED;
       a name that resolves opens */
    {
        rtws_client_config rc;
        rtws_client *c;
        rtws_client_stats st;
        rtws_err e;
        char url[64];
        memset(&rc, 0, sizeof rc);
        rc.on_event = rc_event;
        rc.backoff_base_ms = 20;
        rc.backoff_factor = 1;
        rc.max_attempts = 2;
        snprintf(url, sizeof url, "ws://nx.test:%d/", server_port);
        rc.url = url;
        before = n_udp_queries;
        t0 = rtws_time_now_ms();
        c = rtws_client_new(cl, &rc, t0, &e);
        CHECK(c != NULL);
        CHECK(rtws_time_now_ms() - t0 < 250);
        if (c) {
            run(cl, 3000, rc_settled, c);
            CHECK_EQ(rtws_client_get_state(c), RTWS_CLIENT_FAILED);
            rtws_client_get_stats(c, &st, rtws_time_now_ms());
            CHECK_EQ(st.last_error, RTWS_ERR_RESOLVE);
            CHECK_EQ(n_udp_queries - before, 6); /* 3 attempts, A and AAAA each */
            printf("rtws_client to nx.test: FAILED after %d queries, last_error %s\n",
                   n_udp_queries - before, rtws_err_str(st.last_error));
            rtws_client_free(c);
        }
        snprintf(url, sizeof url, "ws://ok.test:%d/", server_port);
        c = rtws_client_new(cl, &rc, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) {
            run(cl, 3000, rc_settled, c);
            CHECK_EQ(rtws_client_get_state(c), RTWS_CLIENT_OPEN);
            rtws_client_free(c);
        }
    }

    /* a redirect to a name: resolved on the loop too */
    {
        rserver rs;
        char loc[96], url[96];
        memset(&rs, 0, sizeof rs);
        snprintf(loc, sizeof loc, "ws://ok.test:%d/", server_port);
        rs_rule_add(&rs, "/to-ok", 302, loc);
        snprintf(loc, sizeof loc, "ws://nx.test:%d/", server_port);
        rs_rule_add(&rs, "/to-nx", 302, loc);
        CHECK_EQ(rs_start(&rs), 0);
        snprintf(url, sizeof url, "127.0.0.1:%d/to-ok", rs.port);
        try_name(cl, url, &p, 3000);
        CHECK(p.opened);
        snprintf(url, sizeof url, "127.0.0.1:%d/to-nx", rs.port);
        try_name(cl, url, &p, 3000);
        CHECK(!p.opened && p.closed);
        CHECK_EQ(p.err, RTWS_ERR_RESOLVE);
        printf("redirect to ok.test: opened; to nx.test: %s\n", p.text);
        rs_stop(&rs);
    }

    /* Happy Eyeballs order: ::1 (nothing listens on the port there) first,
       then 127.0.0.1 */
    t0 = rtws_time_now_ms();
    try_name(cl, "both.test", &p, 3000);
    CHECK(p.opened);
    CHECK(p.opened_at - t0 < 600); /* not a connect timeout (seconds) */
    printf("both.test (AAAA ::1 closed port, A 127.0.0.1): open after %llu ms\n",
           (unsigned long long)(p.opened_at - t0));

    /* with a server on [::1] too, that is where both.test goes */
    {
        rtws_ctx_config c6;
        int p6 = server_port;
        memset(&c6, 0, sizeof c6);
        c6.conn.on_event = srv6_event;
        c6.timer_ms = 10;
        sv6 = rtws_ctx_new(&c6);
        if (sv6 && rtws_ctx_listen(sv6, "::1", server_port, &p6) == RTWS_OK) {
            try_name(cl, "both.test", &p, 3000);
            CHECK(p.opened);
            CHECK_EQ(sv6_opened, 1);
            printf("both.test with a server on [::1] too: IPv6 chosen (%d)\n", sv6_opened);
        } else {
            printf("no [::1]:%d listener: the IPv6-first check skipped\n", server_port);
        }
        rtws_ctx_free(sv6);
        sv6 = NULL;
    }

    /* an IPv6 address whose connect stays pending (a listener on [::1] at
       the port with a full backlog: its SYNs are dropped), then a working
       IPv4 one: IPv4 starts 250 ms after IPv6 */
    {
        struct sockaddr_in6 a6;
        int l6 = socket(AF_INET6, SOCK_STREAM, 0), filler = socket(AF_INET6, SOCK_STREAM, 0);
        int ok6, one = 1;
        if (l6 >= 0) setsockopt(l6, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)server_port);
        inet_pton(AF_INET6, "::1", &a6.sin6_addr);
        ok6 = l6 >= 0 && filler >= 0 && bind(l6, (struct sockaddr *)&a6, sizeof a6) == 0 &&
              listen(l6, 0) == 0 && connect(filler, (struct sockaddr *)&a6, sizeof a6) == 0;
        if (ok6) {
            t0 = rtws_time_now_ms();
            try_name(cl, "hang6.test", &p, 3000);
            CHECK(p.opened);
            CHECK(p.opened_at - t0 >= 240 && p.opened_at - t0 < 700);
            printf("hang6.test (::1 pending: full backlog; 127.0.0.1): open after %llu ms\n",
                   (unsigned long long)(p.opened_at - t0));
        } else {
            printf("no [::1]:%d listener: the 250 ms step not checked\n", server_port);
        }
        if (l6 >= 0) close(l6);
        if (filler >= 0) close(filler);
    }

    /* Happy Eyeballs as a race. race3.test: ::1 and 127.0.0.2 hang (full
       backlogs), 127.0.0.1 answers. Each next address starts 250 ms after
       the one before and none is given up: open after ~500 ms (giving up
       only the first address, as rtws 1.0 did, hangs on 127.0.0.2). */
    {
        int l6, f6, l4, f4;
        int ok6 = hang_listener("::1", server_port, &l6, &f6);
        int ok4 = ok6 && hang_listener("127.0.0.2", server_port, &l4, &f4);
        if (ok4) {
            rtws_conn *c;
            rtws_err e;
            char url[64];
            int got = -1, req = 0, i;
            uint64_t at = 0;
            t0 = rtws_time_now_ms();
            try_name(cl, "race3.test", &p, 3000);
            CHECK(p.opened);
            CHECK(p.opened_at - t0 >= 450 && p.opened_at - t0 < 1200);
            printf("race3.test (::1 and 127.0.0.2 pending, 127.0.0.1): open after %llu ms\n",
                   (unsigned long long)(p.opened_at - t0));
            /* race2.test: ::1 and 127.0.0.2 both hang. At 400 ms the [::1]
               listener takes its queued connection off the backlog: the
               IPv6 SYN, sent again after ~1 s, gets through, and the IPv6
               attempt -- held since 250 ms, while 127.0.0.2 was tried --
               connects and sends its upgrade request there. */
            memset(&p, 0, sizeof p);
            snprintf(url, sizeof url, "ws://race2.test:%d/", server_port);
            t0 = rtws_time_now_ms();
            c = rtws_ctx_connect(cl, url, NULL, t0, &e);
            CHECK(c != NULL);
            if (c) rtws_conn_set_data(c, &p);
            run(cl, 400, ended, &p);
            i = accept(l6, NULL, NULL); /* the filler's: room for one more */
            if (i >= 0) close(i);
            fcntl(l6, F_SETFL, fcntl(l6, F_GETFL) | O_NONBLOCK);
            while (!req && !p.closed && rtws_time_now_ms() - t0 < 3000) {
                run(cl, 20, ended, &p);
                if (got < 0 && (got = accept(l6, NULL, NULL)) >= 0)
                    fcntl(got, F_SETFL, fcntl(got, F_GETFL) | O_NONBLOCK);
                if (got >= 0) {
                    char b[16];
                    ssize_t r = recv(got, b, sizeof b, 0);
                    if (r >= 4 && memcmp(b, "GET ", 4) == 0) req = 1, at = rtws_time_now_ms() - t0;
                }
            }
            CHECK(req);
            CHECK(!p.closed);
            printf("race2.test (::1 freed at 400 ms, 127.0.0.2 pending): the IPv6 attempt "
                   "won, its request after %llu ms\n", (unsigned long long)at);
            if (got >= 0) close(got); /* no answer: the client sees the end */
            if (c && !p.closed) run(cl, 1000, ended, &p);
            CHECK(p.closed);
        } else {
            printf("no hanging listeners on [::1]:%d and 127.0.0.2:%d: the race not checked\n",
                   server_port, server_port);
        }
        if (ok6) close(l6), close(f6);
        if (ok4) close(l4), close(f4);
    }

    /* a slow answer (2 s) while an open connection echoes: its traffic
       keeps flowing. The slow one needs a longer try. */
    cl2 = client_ctx(3000, 1, "nameserver 127.0.0.1\n");
    CHECK(cl2 != NULL);
    if (cl2) {
        char url[64];
        rtws_conn *c;
        rtws_err e;
        rtws_ctx_free(cl);
        cl = cl2;
        memset(&m, 0, sizeof m);
        m.measuring = 1;
        snprintf(url, sizeof url, "ws://ok.test:%d/", server_port);
        c = rtws_ctx_connect(cl, url, NULL, rtws_time_now_ms(), &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_data(c, &m);
        run(cl, 2000, ended, &m);
        CHECK(m.opened);
        m.max_gap = 0;
        m.echoes = 0;
        t0 = rtws_time_now_ms();
        took = try_name(cl, "slow.test", &p, 4000);
        CHECK(took < 250); /* the answer takes 1.9 s */
        CHECK(p.opened);
        CHECK(p.opened_at - t0 >= 1900);
        CHECK(m.echoes > 100);
        CHECK(m.max_gap < 500);
        printf("slow.test opened after %llu ms; meanwhile %d echoes on another connection, "
               "largest gap %llu ms\n",
               (unsigned long long)(p.opened_at - t0), m.echoes, (unsigned long long)m.max_gap);
    }

    /* the first server refuses (nothing on 127.0.0.2): the second answers */
    rtws_ctx_free(cl);
    cl = client_ctx(300, 1, "nameserver 127.0.0.2\nnameserver 127.0.0.1\n");
    CHECK(cl != NULL);
    if (cl) {
        t0 = rtws_time_now_ms();
        try_name(cl, "ok.test", &p, 3000);
        CHECK(p.opened);
        CHECK(p.opened_at - t0 < 250); /* the refusal came back at once (ICMP), not
                                           after the first server's 300 ms */
        printf("first server refused, second answered: open after %llu ms\n",
               (unsigned long long)(p.opened_at - t0));
        rtws_ctx_free(cl);
    }

    /* the handshake timeout counts the resolution */
    {
        rtws_ctx_config cc;
        memset(&cc, 0, sizeof cc);
        cc.conn.on_event = cli_event;
        cc.conn.handshake_timeout_ms = 400;
        cc.timer_ms = 10;
        cc.dns_conf = "nameserver 127.0.0.1\n";
        cc.dns_port = (unsigned)dns_port;
        cc.dns_timeout_ms = 5000;
        cl = rtws_ctx_new(&cc);
        CHECK(cl != NULL);
        if (cl) {
            t0 = rtws_time_now_ms();
            try_name(cl, "silent.test", &p, 3000);
            CHECK(!p.opened && p.closed);
            CHECK_EQ(p.err, RTWS_ERR_TIMEOUT);
            CHECK(p.closed_at - t0 < 1500); /* not the 5 s DNS timeout */
            printf("handshake_timeout_ms 400 while resolving: closed after %llu ms\n",
                   (unsigned long long)(p.closed_at - t0));
            rtws_ctx_free(cl);
        }
    }

    /* the switch: the system's getaddrinfo() */
    {
        rtws_ctx_config cc;
        memset(&cc, 0, sizeof cc);
        cc.conn.on_event = cli_event;
        cc.timer_ms = 10;
        cc.dns_system = 1;
        cl = rtws_ctx_new(&cc);
        CHECK(cl != NULL);
        if (cl) {
            try_name(cl, "localhost", &p, 3000);
            CHECK(p.opened);
            rtws_ctx_free(cl);
        }
    }
    rtws_ctx_free(sv);
    close(dns_udp);
    close(dns_tcp);
    while (n_tcp) close(tcp_conns[--n_tcp]);
    return T_END();
}
