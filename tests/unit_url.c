/* tests/unit_url.c - layer 2: rtws_url_parse (every accepted form and every
   refusal with its reason and err_off), rtws_url_host_header and
   rtws_url_target, and the request line and Host header rtws_ctx_connect sends.
   Every parse reads a copy that ends where a PROT_NONE page begins. */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "guard.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int str_is(rtws_str s, const char *z) {
    return s.len == strlen(z) && !memcmp(s.p, z, s.len);
}

static int inside(rtws_str s, const char *buf, size_t len) {
    return s.p >= buf && s.p <= buf + len && s.len <= (size_t)(buf + len - s.p);
}

static int all_inside(const rtws_url *u, const char *buf, size_t len) {
    return inside(u->scheme, buf, len) && inside(u->host, buf, len) && inside(u->zone, buf, len) &&
           inside(u->path, buf, len) && inside(u->query, buf, len) && inside(u->target, buf, len);
}

typedef struct ok_case {
    const char *url;
    const char *scheme, *host, *zone;
    unsigned port;
    int port_explicit, tls, ipv6;
    const char *path, *query, *target;
    const char *host_header, *request_target;
} ok_case;

static const ok_case oks[] = {
    {"ws://example.com/chat", "ws", "example.com", "", 80, 0, 0, 0, "/chat", "", "/chat",
     "example.com", "/chat"},
    {"wss://example.com", "wss", "example.com", "", 443, 0, 1, 0, "", "", "", "example.com", "/"},
    {"ws://127.0.0.1:8080/a?b=c", "ws", "127.0.0.1", "", 8080, 1, 0, 0, "/a", "b=c", "/a?b=c",
     "127.0.0.1:8080", "/a?b=c"},
    {"ws://[::1]:9001/", "ws", "::1", "", 9001, 1, 0, 1, "/", "", "/", "[::1]:9001", "/"},
    {"ws://[::1]", "ws", "::1", "", 80, 0, 0, 1, "", "", "", "[::1]", "/"},
    {"ws://[fe80::1%25eth0]:80/x", "ws", "fe80::1", "eth0", 80, 1, 0, 1, "/x", "", "/x",
     "[fe80::1]", "/x"},
    {"wss://[fe80::1%eth0]:8443/", "wss", "fe80::1", "eth0", 8443, 1, 1, 1, "/", "", "/",
     "[fe80::1]:8443", "/"},
    {"ws://[FE80::a%2525]/", "ws", "FE80::a", "25", 80, 0, 0, 1, "/", "", "/", "[FE80::a]", "/"},
    {"ws://h?x", "ws", "h", "", 80, 0, 0, 0, "", "x", "?x", "h", "/?x"},
    {"ws://h?", "ws", "h", "", 80, 0, 0, 0, "", "", "?", "h", "/?"},
    {"ws://h:81?x=1&y", "ws", "h", "", 81, 1, 0, 0, "", "x=1&y", "?x=1&y", "h:81", "/?x=1&y"},
    {"WS://Example.COM:80/", "WS", "Example.COM", "", 80, 1, 0, 0, "/", "", "/", "Example.COM",
     "/"},
    {"WsS://h:443/p", "WsS", "h", "", 443, 1, 1, 0, "/p", "", "/p", "h", "/p"},
    {"wss://h:80/", "wss", "h", "", 80, 1, 1, 0, "/", "", "/", "h:80", "/"},
    {"ws://h:443/", "ws", "h", "", 443, 1, 0, 0, "/", "", "/", "h:443", "/"},
    {"http://h/", "http", "h", "", 80, 0, 0, 0, "/", "", "/", "h", "/"},
    {"HTTPS://h/", "HTTPS", "h", "", 443, 0, 1, 0, "/", "", "/", "h", "/"},
    {"ws://h:00080/", "ws", "h", "", 80, 1, 0, 0, "/", "", "/", "h", "/"},
    {"ws://h:1/", "ws", "h", "", 1, 1, 0, 0, "/", "", "/", "h:1", "/"},
    {"ws://h:65535", "ws", "h", "", 65535, 1, 0, 0, "", "", "", "h:65535", "/"},
    {"ws://[::ffff:192.0.2.1]/", "ws", "::ffff:192.0.2.1", "", 80, 0, 0, 1, "/", "", "/",
     "[::ffff:192.0.2.1]", "/"},
    {"ws://[1:2:3:4:5:6:1.2.3.4]/", "ws", "1:2:3:4:5:6:1.2.3.4", "", 80, 0, 0, 1, "/", "", "/",
     "[1:2:3:4:5:6:1.2.3.4]", "/"},
    {"ws://[2001:db8:0:0:0:0:2:1]/", "ws", "2001:db8:0:0:0:0:2:1", "", 80, 0, 0, 1, "/", "", "/",
     "[2001:db8:0:0:0:0:2:1]", "/"},
    {"ws://[::]/", "ws", "::", "", 80, 0, 0, 1, "/", "", "/", "[::]", "/"},
    {"ws://[1::]/", "ws", "1::", "", 80, 0, 0, 1, "/", "", "/", "[1::]", "/"},
    {"ws://[1:2:3:4:5:6:7::]/", "ws", "1:2:3:4:5:6:7::", "", 80, 0, 0, 1, "/", "", "/",
     "[1:2:3:4:5:6:7::]", "/"},
    {"ws://[1:2:3:4:5:6::8]/", "ws", "1:2:3:4:5:6::8", "", 80, 0, 0, 1, "/", "", "/",
     "[1:2:3:4:5:6::8]", "/"},
    {"ws://[ABCD:ef01::]/", "ws", "ABCD:ef01::", "", 80, 0, 0, 1, "/", "", "/", "[ABCD:ef01::]",
     "/"},
    {"ws://0.0.0.0/", "ws", "0.0.0.0", "", 80, 0, 0, 0, "/", "", "/", "0.0.0.0", "/"},
    {"ws://255.255.255.255/", "ws", "255.255.255.255", "", 80, 0, 0, 0, "/", "", "/",
     "255.255.255.255", "/"},
    {"ws://1.2.3.4a/", "ws", "1.2.3.4a", "", 80, 0, 0, 0, "/", "", "/", "1.2.3.4a", "/"},
    {"ws://a.b-c_d~e./", "ws", "a.b-c_d~e.", "", 80, 0, 0, 0, "/", "", "/", "a.b-c_d~e.", "/"},
    {"ws://h/p%20q?a=%2F%2f", "ws", "h", "", 80, 0, 0, 0, "/p%20q", "a=%2F%2f", "/p%20q?a=%2F%2f",
     "h", "/p%20q?a=%2F%2f"},
    {"ws://h/a?b?c/d", "ws", "h", "", 80, 0, 0, 0, "/a", "b?c/d", "/a?b?c/d", "h", "/a?b?c/d"},
    {"ws://h/x@y:z[]", "ws", "h", "", 80, 0, 0, 0, "/x@y:z[]", "", "/x@y:z[]", "h", "/x@y:z[]"},
    {"ws://h/{}|^`\"<>\\", "ws", "h", "", 80, 0, 0, 0, "/{}|^`\"<>\\", "", "/{}|^`\"<>\\", "h",
     "/{}|^`\"<>\\"},
    {"ws://h//", "ws", "h", "", 80, 0, 0, 0, "//", "", "//", "h", "//"},
};

static void check_ok(const ok_case *c) {
    size_t len = strlen(c->url), off = 99, n;
    guard g;
    char *p = guard_copy(&g, c->url, len), buf[512];
    rtws_url u;
    rtws_err e = rtws_url_parse(p, len, &u, &off);
    CHECK_EQ(e, RTWS_OK);
    if (e != RTWS_OK) {
        fprintf(stderr, "  %s: %s at %zu\n", c->url, u.error, off);
        guard_free(&g);
        return;
    }
    CHECK_EQ(off, 0);
    CHECK(u.error == NULL);
    CHECK(all_inside(&u, p, len));
    CHECK(str_is(u.scheme, c->scheme));
    CHECK(str_is(u.host, c->host));
    CHECK(str_is(u.zone, c->zone));
    CHECK_EQ(u.port, c->port);
    CHECK_EQ(u.port_explicit, c->port_explicit);
    CHECK_EQ(u.tls, c->tls);
    CHECK_EQ(u.ipv6, c->ipv6);
    CHECK(str_is(u.path, c->path));
    CHECK(str_is(u.query, c->query));
    CHECK(str_is(u.target, c->target));
    n = rtws_url_host_header(&u, buf, sizeof buf);
    CHECK(n == strlen(c->host_header) && strcmp(buf, c->host_header) == 0);
    if (strcmp(buf, c->host_header) != 0) fprintf(stderr, "  %s: Host %s\n", c->url, buf);
    n = rtws_url_target(&u, buf, sizeof buf);
    CHECK(n == strlen(c->request_target) && strcmp(buf, c->request_target) == 0);
    guard_free(&g);
}

typedef struct bad_case {
    const char *url;
    size_t len; /* 0: strlen(url) */
    size_t off;
    const char *why; /* a part of the reason */
} bad_case;

#define LONG63 "123456789012345678901234567890123456789012345678901234567890123"

static const bad_case bads[] = {
    {"", 0, 0, "missing scheme"},
    {"example.com/x", 0, 11, "missing scheme"},
    {"//h/", 0, 0, "missing scheme"},
    {"1ws://h", 0, 0, "missing scheme"},
    {"ws", 0, 2, "missing scheme"},
    {"ftp://h/", 0, 0, "unsupported scheme"},
    {"wsx://h", 0, 0, "unsupported scheme"},
    {"w://h", 0, 0, "unsupported scheme"},
    {"ws+x.y-z://h/", 0, 0, "unsupported scheme"},
    {"ws:h/", 0, 3, "expected //"},
    {"ws:/h", 0, 3, "expected //"},
    {"ws:", 0, 3, "expected //"},
    {"ws:/", 0, 3, "expected //"},
    {"ws://h /", 0, 6, "space, control"},
    {" ws://h/", 0, 0, "space, control"},
    {"ws://h/\x01", 0, 7, "space, control"},
    {"ws://h/\t", 0, 7, "space, control"},
    {"ws://h/\r\nX: y", 0, 7, "space, control"},
    {"ws://h/\x7f", 0, 7, "space, control"},
    {"ws://h/\xc3\xa9", 0, 7, "non-ASCII"},
    {"ws://h\xff/", 0, 6, "non-ASCII"},
    {"ws://h/\0x", 9, 7, "control"},
    {"ws://h/#f", 0, 7, "fragment"},
    {"ws://h#", 0, 6, "fragment"},
    {"ws://h/a?b#c", 0, 10, "fragment"},
    {"ws://user@h/", 0, 9, "userinfo"},
    {"ws://user:pw@h/", 0, 12, "userinfo"},
    {"ws://@h", 0, 5, "userinfo"},
    {"ws://[::1]@h/", 0, 10, "userinfo"},
    {"ws://", 0, 5, "empty host"},
    {"ws:///p", 0, 5, "empty host"},
    {"ws://:80/", 0, 5, "empty host"},
    {"ws://?x", 0, 5, "empty host"},
    {"ws://[]/", 0, 6, "empty host"},
    {"ws://[%25eth0]/", 0, 6, "empty host"},
    {"ws://h%41/", 0, 6, "character not allowed in a host name"},
    {"ws://h!/", 0, 6, "character not allowed in a host name"},
    {"ws://a]b/", 0, 6, "character not allowed in a host name"},
    {"ws://a[b]/", 0, 6, "character not allowed in a host name"},
    {"ws://h,i/", 0, 6, "character not allowed in a host name"},
    {"ws://256.0.0.1/", 0, 7, "bad IPv4"},
    {"ws://1.2.3/", 0, 10, "bad IPv4"},
    {"ws://01.2.3.4/", 0, 6, "bad IPv4"},
    {"ws://1.2.3.4.5/", 0, 12, "bad IPv4"},
    {"ws://127.1/", 0, 10, "bad IPv4"},
    {"ws://1..2.3/", 0, 7, "bad IPv4"},
    {"ws://1.2.3.4./", 0, 12, "bad IPv4"},
    {"ws://1234/", 0, 8, "bad IPv4"},
    {"ws://[::1/", 0, 9, "unterminated IPv6"},
    {"ws://[::1", 0, 9, "unterminated IPv6"},
    {"ws://[", 0, 6, "unterminated IPv6"},
    {"ws://[v1.x]/", 0, 6, "IPvFuture"},
    {"ws://[V7.a:b]/", 0, 6, "IPvFuture"},
    {"ws://[::1::2]/", 0, 10, "more than one '::'"},
    {"ws://[1:2:3:4:5:6:7]/", 0, 19, "wrong number of 16-bit groups"},
    {"ws://[1:2:3:4:5:6:7:8:9]/", 0, 23, "wrong number of 16-bit groups"},
    {"ws://[1:2:3:4:5:6:7::8]/", 0, 22, "wrong number of 16-bit groups"},
    {"ws://[1:2:3:4:5:6:7:1.2.3.4]/", 0, 27, "wrong number of 16-bit groups"},
    {"ws://[localhost]/", 0, 6, "malformed IPv6"},
    {"ws://[12345::1]/", 0, 10, "more than 4 hex digits"},
    {"ws://[::g]/", 0, 8, "malformed IPv6"},
    {"ws://[:1::]/", 0, 6, "malformed IPv6"},
    {"ws://[1:]/", 0, 7, "malformed IPv6"},
    {"ws://[1:::2]/", 0, 9, "malformed IPv6"},
    {"ws://[::1.2.3.256]/", 0, 16, "bad IPv4"},
    {"ws://[::1.2.3]/", 0, 13, "bad IPv4"},
    {"ws://[fe80::1%25]/", 0, 16, "empty IPv6 zone id"},
    {"ws://[fe80::1%]/", 0, 14, "empty IPv6 zone id"},
    {"ws://[fe80::1%25e!h]/", 0, 17, "zone id (letters"},
    {"ws://[fe80::1%25%41]/", 0, 16, "zone id (letters"},
    {"ws://[fe80::1%25" LONG63 "4]/", 0, 16 + 63, "zone id over 63 bytes"},
    {"ws://[::1]x/", 0, 10, "after ']'"},
    {"ws://[::1][::2]/", 0, 10, "after ']'"},
    {"ws://h:/", 0, 7, "empty port"},
    {"ws://h:", 0, 7, "empty port"},
    {"ws://h:?x", 0, 7, "empty port"},
    {"ws://[::1]:/", 0, 11, "empty port"},
    {"ws://h:8a/", 0, 8, "not a decimal number"},
    {"ws://h:-1", 0, 7, "not a decimal number"},
    {"ws://h:+80", 0, 7, "not a decimal number"},
    {"ws://[::1]:80:90/", 0, 13, "not a decimal number"},
    {"ws://h:0/", 0, 7, "out of range"},
    {"ws://h:000/", 0, 7, "out of range"},
    {"ws://h:65536/", 0, 11, "out of range"},
    {"ws://h:99999999999999999999/", 0, 11, "out of range"},
    {"ws://fe80::1/", 0, 10, "more than one ':'"},
    {"ws://h:80:90/", 0, 9, "more than one ':'"},
    {"ws://h/%", 0, 7, "two hex digits"},
    {"ws://h/%4", 0, 7, "two hex digits"},
    {"ws://h/a%4g", 0, 8, "two hex digits"},
    {"ws://h?%zz", 0, 7, "two hex digits"},
    {"ws://h/%%41", 0, 7, "two hex digits"},
};

static void check_bad(const bad_case *c) {
    size_t len = c->len ? c->len : strlen(c->url), off = (size_t)-7;
    guard g;
    char *p = guard_copy(&g, c->url, len);
    rtws_url u;
    rtws_err e = rtws_url_parse(p, len, &u, &off);
    CHECK_EQ(e, RTWS_ERR_URL);
    CHECK(u.error != NULL && strstr(u.error, c->why) != NULL);
    CHECK_EQ(off, c->off);
    if (e != RTWS_ERR_URL || !u.error || !strstr(u.error, c->why) || off != c->off)
        fprintf(stderr, "  %s: %s at %zu\n", c->url, e == RTWS_OK ? "accepted" : u.error, off);
    guard_free(&g);
}

/* each reason names one malformed form: count the distinct ones */
static void test_reasons_distinct(void) {
    const char *seen[64];
    size_t nseen = 0, i, j;
    for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        rtws_url u;
        size_t len = bads[i].len ? bads[i].len : strlen(bads[i].url);
        if (rtws_url_parse(bads[i].url, len, &u, NULL) != RTWS_ERR_URL || !u.error) continue;
        for (j = 0; j < nseen && strcmp(seen[j], u.error) != 0; j++) {
        }
        if (j == nseen && nseen < 64) seen[nseen++] = u.error;
    }
    CHECK_EQ(nseen, 24); /* the 25th, a host over 255 bytes, is in test_edges */
    for (i = 0; i < nseen; i++) CHECK(strlen(seen[i]) > 8);
}

/* every prefix of every URL is parsed without reading past its end */
static void test_prefixes(void) {
    size_t i, k;
    for (i = 0; i < sizeof oks / sizeof oks[0]; i++) {
        size_t len = strlen(oks[i].url);
        for (k = 0; k <= len; k++) {
            guard g;
            char *p = guard_copy(&g, oks[i].url, k);
            rtws_url u;
            size_t off = (size_t)-7;
            rtws_err e = rtws_url_parse(p, k, &u, &off);
            CHECK(e == RTWS_OK || (e == RTWS_ERR_URL && off <= k && u.error));
            if (e == RTWS_OK) CHECK(all_inside(&u, p, k) && u.host.len > 0 && u.port > 0);
            guard_free(&g);
        }
    }
}

static void test_edges(void) {
    rtws_url u;
    size_t off = 5;
    char host[300], url[400], buf[8];
    memset(host, 'a', 255);
    host[255] = '\0';
    snprintf(url, sizeof url, "ws://%s:1234/", host);
    CHECK_EQ(rtws_url_parse(url, strlen(url), &u, &off), RTWS_OK);
    CHECK_EQ(u.host.len, 255);
    CHECK_EQ(rtws_url_host_header(&u, NULL, 0), 260);
    snprintf(url, sizeof url, "ws://%sa/", host);
    CHECK_EQ(rtws_url_parse(url, strlen(url), &u, &off), RTWS_ERR_URL);
    CHECK_EQ(off, 5 + 255);
    CHECK(strstr(u.error, "longer than 255") != NULL);
    /* a 63-byte zone is the longest */
    snprintf(url, sizeof url, "ws://[fe80::1%%25%s]/", LONG63);
    CHECK_EQ(rtws_url_parse(url, strlen(url), &u, &off), RTWS_OK);
    CHECK_EQ(u.zone.len, 63);
    /* NULL input, NULL err_off */
    CHECK_EQ(rtws_url_parse(NULL, 0, &u, &off), RTWS_ERR_URL);
    CHECK_EQ(off, 0);
    CHECK_EQ(rtws_url_parse("ws:", 3, &u, NULL), RTWS_ERR_URL);
    CHECK_EQ(rtws_url_parse("ws://h", 6, &u, NULL), RTWS_OK);
    /* len shorter than the string: the rest is not looked at */
    CHECK_EQ(rtws_url_parse("ws://h/a b", 8, &u, &off), RTWS_OK);
    CHECK(str_is(u.path, "/a"));
    CHECK_EQ(rtws_url_parse("ws://h:80/", 7, &u, &off), RTWS_ERR_URL);
    CHECK_EQ(off, 7);
    /* the writers: exact fit, one short, no room at all */
    CHECK_EQ(rtws_url_parse("ws://[::1]:8080/p?q", 19, &u, &off), RTWS_OK);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(rtws_url_host_header(&u, buf, sizeof buf), 10);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(buf[7], 'x');
    {
        char b11[11], b10[10];
        CHECK_EQ(rtws_url_host_header(&u, b11, sizeof b11), 10);
        CHECK(strcmp(b11, "[::1]:8080") == 0);
        CHECK_EQ(rtws_url_host_header(&u, b10, sizeof b10), 10);
        CHECK_EQ(b10[0], '\0');
        CHECK_EQ(rtws_url_target(&u, b10, 5), 4);
        CHECK(strcmp(b10, "/p?q") == 0);
        CHECK_EQ(rtws_url_target(&u, b10, 4), 4);
        CHECK_EQ(b10[0], '\0');
    }
    CHECK_EQ(rtws_url_target(&u, NULL, 0), 4);
    CHECK_EQ(rtws_url_parse("ws://h?ab", 9, &u, &off), RTWS_OK);
    CHECK_EQ(rtws_url_target(&u, buf, 5), 4);
    CHECK(strcmp(buf, "/?ab") == 0);
    CHECK_EQ(rtws_url_target(&u, buf, 4), 4);
    CHECK_EQ(buf[0], '\0');
}

/* ---- what rtws_ctx_connect puts on the wire ---- */

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c;
    (void)ev;
    (void)user;
}

static int listen_on(int family, int *port) {
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd = socket(family, SOCK_STREAM, 0), one = 1;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 8) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* connects to url ("%d" is the port) and returns the request head the
   listener got, in out */
static int request_for(rtws_ctx *ctx, int lfd, int port, const char *fmt, char *out, size_t cap) {
    char url[256];
    rtws_err e = RTWS_OK;
    rtws_conn *c;
    size_t n = 0;
    int fd = -1, i;
    snprintf(url, sizeof url, fmt, port);
    c = rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), &e);
    if (!c) {
        fprintf(stderr, "  %s: %s\n", url, rtws_err_str(e));
        return 0;
    }
    out[0] = '\0';
    for (i = 0; i < 200 && !strstr(out, "\r\n\r\n"); i++) {
        struct pollfd p;
        rtws_ctx_run_once(ctx, 5);
        if (fd < 0) {
            p.fd = lfd;
            p.events = POLLIN;
            if (poll(&p, 1, 5) == 1) fd = accept(lfd, NULL, NULL);
        } else {
            p.fd = fd;
            p.events = POLLIN;
            if (poll(&p, 1, 5) == 1) {
                ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
                if (r <= 0) break;
                n += (size_t)r;
                out[n] = '\0';
            }
        }
    }
    if (fd >= 0) close(fd);
    for (i = 0; i < 50 && rtws_ctx_get_conn_count(ctx); i++) rtws_ctx_run_once(ctx, 5);
    return strstr(out, "\r\n\r\n") != NULL;
}

static int has_line(const char *head, const char *fmt, int port) {
    char line[300];
    snprintf(line, sizeof line, fmt, port);
    return strstr(head, line) != NULL;
}

static void test_connect(void) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    rtws_err e = RTWS_OK;
    char head[4096];
    int port = 0, port6 = 0, lfd, lfd6;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.timer_ms = 5;
    ctx = rtws_ctx_new(&cfg);
    lfd = listen_on(AF_INET, &port);
    CHECK(ctx != NULL && lfd >= 0);
    if (!ctx || lfd < 0) return;
    CHECK(request_for(ctx, lfd, port, "ws://127.0.0.1:%d/chat?a=1", head, sizeof head));
    CHECK(strncmp(head, "GET /chat?a=1 HTTP/1.1\r\n", 24) == 0);
    CHECK(has_line(head, "\r\nHost: 127.0.0.1:%d\r\n", port));
    /* no path: "/" is asked for, also when a query follows (it used to send "GET ?x") */
    CHECK(request_for(ctx, lfd, port, "ws://127.0.0.1:%d", head, sizeof head));
    CHECK(strncmp(head, "GET / HTTP/1.1\r\n", 16) == 0);
    CHECK(request_for(ctx, lfd, port, "ws://127.0.0.1:%d?x=%%41", head, sizeof head));
    CHECK(strncmp(head, "GET /?x=%41 HTTP/1.1\r\n", 22) == 0);
    CHECK(request_for(ctx, lfd, port, "WS://localhost:%d/p", head, sizeof head));
    CHECK(strncmp(head, "GET /p HTTP/1.1\r\n", 17) == 0);
    CHECK(has_line(head, "\r\nHost: localhost:%d\r\n", port));
    lfd6 = listen_on(AF_INET6, &port6);
    if (lfd6 >= 0) {
        CHECK(request_for(ctx, lfd6, port6, "ws://[::1]:%d/six", head, sizeof head));
        CHECK(strncmp(head, "GET /six HTTP/1.1\r\n", 19) == 0);
        CHECK(has_line(head, "\r\nHost: [::1]:%d\r\n", port6));
        /* the zone reaches getaddrinfo but not the Host header (RFC 6874 §4);
           glibc takes only a numeric zone for an address that is not link-local */
        CHECK(request_for(ctx, lfd6, port6, "ws://[::1%%251]:%d/z", head, sizeof head));
        CHECK(has_line(head, "\r\nHost: [::1]:%d\r\n", port6));
        CHECK(rtws_ctx_connect(ctx, "ws://[::1%25nosuchif]:1/", NULL, 0, &e) == NULL);
        CHECK_EQ(e, RTWS_ERR_RESOLVE);
        close(lfd6);
    } else {
        printf("no IPv6 loopback: [::1] connect tests skipped\n");
    }
    close(lfd);
    CHECK(rtws_ctx_connect(ctx, "http://127.0.0.1/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
    CHECK(rtws_ctx_connect(ctx, "https://127.0.0.1/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
    CHECK(rtws_ctx_connect(ctx, "ws://u@127.0.0.1/", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
    CHECK(rtws_ctx_connect(ctx, "ws://127.0.0.1/#x", NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
    CHECK(rtws_ctx_connect(ctx, NULL, NULL, 0, &e) == NULL && e == RTWS_ERR_URL);
#ifndef RTWS_USE_BEARSSL
    CHECK(rtws_ctx_connect(ctx, "WSS://h/", NULL, 0, &e) == NULL && e == RTWS_ERR_TLS);
#endif
    CHECK_EQ(rtws_ctx_get_conn_count(ctx), 0);
    rtws_ctx_free(ctx);
}

int main(void) {
    size_t i;
    for (i = 0; i < sizeof oks / sizeof oks[0]; i++) check_ok(&oks[i]);
    for (i = 0; i < sizeof bads / sizeof bads[0]; i++) check_bad(&bads[i]);
    test_reasons_distinct();
    test_prefixes();
    test_edges();
    test_connect();
    return T_END();
}
