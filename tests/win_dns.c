/* tests/win_dns.c - Windows only (built and run under wine by
   tests/interop_windows.sh): the system's DNS servers and the resolver on
   the loop. rtws_dns_conf_system reads the servers of the adapters that are
   up (GetAdaptersAddresses, iphlpapi.dll loaded at run time; wine gives the
   host's /etc/resolv.conf servers, compared here when Z:\etc\resolv.conf
   can be read). A connect without dns_conf then resolves on the loop: it
   returns at once with a connection (the blocking getaddrinfo() it used
   before returned NULL for a name that does not resolve), and the failure
   comes as an event. And a name resolves through the async path over
   Winsock UDP: a fake DNS server in this program on 127.0.0.1 answers
   ok.test with 127.0.0.1, where an rtws server of this program listens. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#ifndef _WIN32
#error "tests/win_dns.c tests the Windows port only"
#endif

typedef struct peer {
    int opened, closed, errors;
    rtws_err err;
    char text[200];
} peer;

static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)rtws_conn_get_data(c);
    (void)user;
    if (!p) return;
    if (ev->type == RTWS_EV_OPEN) p->opened = 1;
    else if (ev->type == RTWS_EV_ERROR && !p->errors++) {
        p->err = ev->error.err;
        snprintf(p->text, sizeof p->text, "%s", ev->error.detail_text ? ev->error.detail_text : "");
        if (!p->opened) p->closed = 1;
    } else if (ev->type == RTWS_EV_CLOSE) p->closed = 1;
}

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)ev, (void)user;
}

/* The fake server: an answer to every A query for ok.test (127.0.0.1), an
   empty one to anything else. */
static int queries;
static void dns_serve(SOCKET u) {
    unsigned char q[512], a[600];
    struct sockaddr_in from;
    int flen = (int)sizeof from, n, i;
    while ((n = recvfrom(u, (char *)q, (int)sizeof q, 0, (struct sockaddr *)&from, &flen)) > 12) {
        int is_a, ok, end = 12;
        while (end < n && q[end]) end += q[end] + 1;
        if (end + 5 > n) continue;
        end += 5; /* the zero, type, class */
        queries++;
        is_a = q[end - 4] == 0 && q[end - 3] == 1;
        ok = end - 12 == 9 + 4 && memcmp(q + 12, "\002ok\004test", 8) == 0;
        memcpy(a, q, (size_t)end);
        a[2] = 0x81, a[3] = 0x80; /* QR RD RA */
        a[6] = 0, a[7] = (unsigned char)(is_a && ok ? 1 : 0);
        a[8] = a[9] = a[10] = a[11] = 0;
        i = end;
        if (is_a && ok) {
            static const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            memcpy(a + i, rr, sizeof rr);
            i += (int)sizeof rr;
        }
        sendto(u, (const char *)a, i, 0, (struct sockaddr *)&from, flen);
        flen = (int)sizeof from;
    }
}

int main(void) {
    WSADATA wsa;
    rtws_dns_conf conf, host;
    rtws_ctx_config cc, sc;
    rtws_ctx *cl, *sv;
    rtws_conn *c;
    rtws_err e = RTWS_OK;
    peer p;
    char url[80], *text = NULL;
    size_t n, i, len;
    uint64_t t0, took;
    int port = 0, dport = 0;
    SOCKET u;
    struct sockaddr_in a;
    int alen = (int)sizeof a;
    u_long nb = 1;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0); /* ours, for the fake server */

    /* 1. the system's servers */
    n = rtws_dns_conf_system(&conf, NULL);
    CHECK(n > 0);
    CHECK_EQ(conf.nservers, n);
    CHECK(conf.timeout_s == 5 && conf.attempts == 2);
    for (i = 0; i < conf.nservers; i++) {
        const uint8_t *b = conf.servers[i].addr;
        if (conf.servers[i].family == 4) printf("system DNS server %u.%u.%u.%u\n", b[0], b[1], b[2], b[3]);
        else printf("system DNS server (IPv6) %02x%02x:%02x%02x:...\n", b[0], b[1], b[2], b[3]);
        CHECK(conf.servers[i].family == 4 || conf.servers[i].family == 6);
    }
    {
        rtws_allocator none;
        memset(&none, 0, sizeof none);
        len = rtws__read_file(&none, "Z:\\etc\\resolv.conf", &text); /* wine: the host's */
    }
    if (text) {
        size_t k, same = 0;
        rtws_dns_conf_parse(text, len, &host);
        for (i = 0; i < conf.nservers; i++)
            for (k = 0; k < host.nservers; k++)
                if (!memcmp(&conf.servers[i], &host.servers[k], sizeof host.servers[k])) same++;
        CHECK(same == conf.nservers); /* every one is the host's */
        printf("%u of %u servers are the host's (Z:\\etc\\resolv.conf)\n", (unsigned)same,
               (unsigned)conf.nservers);
        {
            rtws_allocator none;
            memset(&none, 0, sizeof none);
            rtws__free(&none, text);
        }
    } else {
        printf("no Z:\\etc\\resolv.conf (not wine?): the host comparison skipped\n");
    }

    /* the server both connects below reach */
    memset(&sc, 0, sizeof sc);
    sc.conn.on_event = srv_event;
    sc.timer_ms = 10;
    sv = rtws_ctx_new(&sc);
    CHECK(sv != NULL);
    if (!sv) return T_END();
    CHECK_EQ(rtws_ctx_listen(sv, "127.0.0.1", 0, &port), RTWS_OK);

    /* 2. no dns_conf: the system's servers, on the loop (one short try) */
    memset(&cc, 0, sizeof cc);
    cc.conn.on_event = cli_event;
    cc.timer_ms = 10;
    cc.dns_timeout_ms = 300;
    cc.dns_attempts = 1;
    cl = rtws_ctx_new(&cc);
    CHECK(cl != NULL);
    if (!cl) return T_END();
    memset(&p, 0, sizeof p);
    snprintf(url, sizeof url, "ws://rtws-win-dns.invalid:%d/", port);
    t0 = rtws_time_now_ms();
    c = rtws_ctx_connect(cl, url, NULL, t0, &e);
    took = rtws_time_now_ms() - t0;
    CHECK(c != NULL); /* a name for the loop, not an answer within the call */
    CHECK(took < 100);
    if (c) {
        rtws_conn_set_data(c, &p);
        while (!p.closed && rtws_time_now_ms() - t0 < 5000) {
            rtws_ctx_run_once(cl, 10);
            rtws_ctx_run_once(sv, 0);
        }
        CHECK(p.closed && !p.opened);
        CHECK_EQ(p.err, RTWS_ERR_RESOLVE);
        printf("rtws-win-dns.invalid: connect returned in %u ms; after %u ms: %s (%s)\n",
               (unsigned)took, (unsigned)(rtws_time_now_ms() - t0), rtws_err_str(p.err), p.text);
    }
    rtws_ctx_free(cl);

    /* 3. a name answered through the resolver: the fake server on 127.0.0.1 */
    u = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(u != INVALID_SOCKET && bind(u, (struct sockaddr *)&a, (int)sizeof a) == 0 &&
          getsockname(u, (struct sockaddr *)&a, &alen) == 0 && ioctlsocket(u, (long)FIONBIO, &nb) == 0);
    dport = ntohs(a.sin_port);
    cc.dns_conf = "nameserver 127.0.0.1\n";
    cc.dns_port = (unsigned)dport;
    cc.dns_timeout_ms = 1000;
    cl = rtws_ctx_new(&cc);
    CHECK(cl != NULL);
    if (cl) {
        memset(&p, 0, sizeof p);
        snprintf(url, sizeof url, "ws://ok.test:%d/", port);
        t0 = rtws_time_now_ms();
        c = rtws_ctx_connect(cl, url, NULL, t0, &e);
        CHECK(c != NULL);
        if (c) rtws_conn_set_data(c, &p);
        while (c && !p.opened && !p.closed && rtws_time_now_ms() - t0 < 5000) {
            rtws_ctx_run_once(cl, 5);
            rtws_ctx_run_once(sv, 0);
            dns_serve(u);
        }
        CHECK(p.opened);
        CHECK(queries >= 1);
        printf("ok.test through the fake server on 127.0.0.1:%d (%d queries): %s after %u ms\n",
               dport, queries, p.opened ? "open" : "not open", (unsigned)(rtws_time_now_ms() - t0));
        rtws_ctx_free(cl);
    }
    closesocket(u);
    rtws_ctx_free(sv);
    WSACleanup();
    return T_END();
}
