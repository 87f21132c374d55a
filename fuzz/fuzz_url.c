/* fuzz/fuzz_url.c - rtws_url_parse, rtws_url_host_header, rtws_url_target.
   The whole input is the URL, parsed from an exact-size copy so ASan sees
   over-reads. On failure: a reason and err_off <= len. On success: every
   string lies inside the input, port 1..65535, a non-empty host, only
   printable ASCII without '#', and the writers never pass their capacity
   (checked with canaries at every capacity up to the full length + 1).
   The Host header and target they write parse back to the same URL,
   without the zone. The input is also a redirect's Location, resolved
   against fixed bases (and, when it parses, a base for fixed Locations):
   a result is a ws/wss URL that rtws_url_parse takes, without '#', never
   past the capacity, and resolving it again gives it back; and a no_proxy
   list, matched case-insensitively. */
#include "fuzz.h"

static int inside(rtws_str s, const char *buf, size_t len) {
    return s.p >= buf && s.p <= buf + len && s.len <= (size_t)(buf + len - s.p);
}

static int same(rtws_str a, rtws_str b) { return a.len == b.len && !memcmp(a.p, b.p, a.len); }

typedef size_t (*writer)(const rtws_url *u, char *buf, size_t cap);

/* writes at every capacity up to want + 1 into a buffer with canaries after
   cap; returns the full output in out (want + 1 bytes) */
static void check_writer(writer w, const rtws_url *u, size_t want, char *out) {
    size_t cap;
    char *buf = (char *)malloc(want + 1 + 16);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(w(u, NULL, 0) == want);
    for (cap = 0; cap <= want + 1; cap++) {
        size_t i;
        memset(buf, 0x5A, want + 1 + 16);
        FUZZ_CHECK(w(u, buf, cap) == want);
        for (i = cap; i < want + 1 + 16; i++) FUZZ_CHECK(buf[i] == 0x5A);
        if (cap > want) {
            FUZZ_CHECK(buf[want] == '\0' && strlen(buf) == want);
        } else if (cap > 0) {
            FUZZ_CHECK(buf[0] == '\0');
        }
    }
    memcpy(out, buf, want + 1);
    free(buf);
}

static void check_ok(const rtws_url *u, const char *s, size_t n) {
    size_t i, hl, tl;
    char *hh, *tg, *again;
    rtws_url v;
    FUZZ_CHECK(u->error == NULL);
    FUZZ_CHECK(inside(u->scheme, s, n) && inside(u->host, s, n) && inside(u->zone, s, n));
    FUZZ_CHECK(inside(u->path, s, n) && inside(u->query, s, n) && inside(u->target, s, n));
    FUZZ_CHECK(u->port >= 1);
    FUZZ_CHECK(u->host.len > 0 && u->host.len <= 255 && u->zone.len <= 63);
    FUZZ_CHECK(u->port_explicit || u->port == (u->tls ? 443 : 80));
    FUZZ_CHECK(u->scheme.p == s && u->scheme.len >= 2 && u->scheme.len <= 5);
    FUZZ_CHECK(u->tls == (u->scheme.len == 3 || u->scheme.len == 5)); /* wss, https */
    FUZZ_CHECK(u->ipv6 == (memchr(u->host.p, ':', u->host.len) != NULL));
    FUZZ_CHECK(u->zone.len == 0 || u->ipv6);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        FUZZ_CHECK(ch > 0x20 && ch < 0x7F && ch != '#');
    }
    /* target = path [ "?" query ], running to the end of the input */
    FUZZ_CHECK(u->target.p + u->target.len == s + n);
    FUZZ_CHECK(u->path.p == u->target.p && u->path.len <= u->target.len);
    FUZZ_CHECK(u->path.len == 0 || u->path.p[0] == '/');
    FUZZ_CHECK(memchr(u->path.p, '?', u->path.len) == NULL);
    if (u->path.len < u->target.len) {
        FUZZ_CHECK(u->target.p[u->path.len] == '?');
        FUZZ_CHECK(u->query.p == u->target.p + u->path.len + 1);
        FUZZ_CHECK(u->query.len == u->target.len - u->path.len - 1);
    } else {
        FUZZ_CHECK(u->query.len == 0);
    }

    hl = rtws_url_host_header(u, NULL, 0);
    FUZZ_CHECK(hl >= u->host.len && hl <= 255 + 2 + 6);
    hh = (char *)malloc(hl + 1);
    FUZZ_CHECK(hh != NULL);
    check_writer(rtws_url_host_header, u, hl, hh);
    FUZZ_CHECK((hh[0] == '[') == (u->ipv6 != 0));
    tl = rtws_url_target(u, NULL, 0);
    FUZZ_CHECK(tl == u->target.len + (u->path.len == 0));
    tg = (char *)malloc(tl + 1);
    FUZZ_CHECK(tg != NULL);
    check_writer(rtws_url_target, u, tl, tg);
    FUZZ_CHECK(tg[0] == '/');

    /* scheme "://" Host target parses back to the same parts, less the zone */
    again = (char *)malloc(u->scheme.len + 3 + hl + tl);
    FUZZ_CHECK(again != NULL);
    memcpy(again, u->scheme.p, u->scheme.len);
    memcpy(again + u->scheme.len, "://", 3);
    memcpy(again + u->scheme.len + 3, hh, hl);
    memcpy(again + u->scheme.len + 3 + hl, tg, tl);
    FUZZ_CHECK(rtws_url_parse(again, u->scheme.len + 3 + hl + tl, &v, NULL) == RTWS_OK);
    FUZZ_CHECK(same(v.host, u->host) && v.zone.len == 0 && v.port == u->port);
    FUZZ_CHECK(v.tls == u->tls && v.ipv6 == u->ipv6 && same(v.query, u->query));
    FUZZ_CHECK(v.path.len ? same(v.path, u->path) || (!u->path.len && v.path.len == 1) : 0);
    free(again);
    free(tg);
    free(hh);
}

/* rtws_url_resolve(base, ref[0..len)): the result's properties, and a
   fixed point (an absolute ws/wss URL without dot segments resolves to
   itself). */
static void check_resolve(const char *base, const char *ref, size_t len) {
    char out[512], again[512];
    size_t k = 0, k2 = 0, cap;
    rtws_err e = rtws_url_resolve(base, ref, len, out, sizeof out, &k);
    rtws_url u;
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_URL || e == RTWS_ERR_NOSPACE);
    if (e != RTWS_OK) {
        FUZZ_CHECK(out[0] == '\0' && k == 0);
        return;
    }
    FUZZ_CHECK(k == strlen(out) && k < sizeof out && !memchr(out, '#', k));
    FUZZ_CHECK(rtws_url_parse(out, k, &u, NULL) == RTWS_OK);
    FUZZ_CHECK((u.scheme.len == 2 && !memcmp(out, "ws", 2)) ||
               (u.scheme.len == 3 && !memcmp(out, "wss", 3)));
    FUZZ_CHECK(rtws_url_resolve(base, out, k, again, sizeof again, &k2) == RTWS_OK);
    FUZZ_CHECK(k2 == k && !memcmp(again, out, k));
    for (cap = 0; cap <= k; cap += 1 + k / 8) /* too small: NOSPACE, nothing past cap */
        FUZZ_CHECK(rtws_url_resolve(base, out, k, again, cap, NULL) == RTWS_ERR_NOSPACE);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char *s = (char *)malloc(n ? n : 1);
    rtws_url u;
    size_t off = (size_t)-1;
    rtws_err e;
    FUZZ_CHECK(s != NULL);
    if (n) memcpy(s, d, n);
    e = rtws_url_parse(s, n, &u, &off);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_URL);
    if (e == RTWS_OK) {
        FUZZ_CHECK(off == 0);
        check_ok(&u, s, n);
    } else {
        FUZZ_CHECK(off <= n);
        FUZZ_CHECK(u.error != NULL && u.error[0] != '\0');
    }
    check_resolve("ws://h.example:8080/a/b/c?q=1", s, n);
    check_resolve("wss://[::1]/", s, n);
    {
        char *z = (char *)malloc(n + 1); /* the base and the no_proxy list are strings */
        FUZZ_CHECK(z != NULL);
        memcpy(z, d, n);
        z[n] = '\0';
        if (e == RTWS_OK && strlen(z) == n) {
            check_resolve(z, "../x/./y?z#f", 12);
            check_resolve(z, "//o.example/p", 13);
            check_resolve(z, "https://o.example", 17);
        }
        {
            int a = rtws_proxy_bypass(z, "www.Example.com", 15, 443);
            FUZZ_CHECK(a == 0 || a == 1);
            FUZZ_CHECK(a == rtws_proxy_bypass(z, "WWW.EXAMPLE.COM", 15, 443));
            a = rtws_proxy_bypass(z, "fe80::1", 7, 80);
            FUZZ_CHECK(a == rtws_proxy_bypass(z, "[FE80::1]", 9, 80));
        }
        free(z);
    }
    free(s);
    return 0;
}
