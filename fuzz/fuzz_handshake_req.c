/* fuzz/fuzz_handshake_req.c - the server side of the opening handshake.
   byte 0: chunk size for rtws_http_head_end (0: 1 byte per call)
   byte 1: max_headers passed to the parser (mod 66: 0 means the default)
   rest:   bytes from the client
   rtws_http_head_end fed in chunks must agree with a plain search for the
   first CRLFCRLF; the head it finds goes (in an exact-size copy, so ASan sees
   over-reads) through rtws_http_parse_request and rtws_http_check_upgrade, and
   every rtws_str returned must lie inside that copy; every plain query
   parameter name is looked up with rtws_http_get_query, every cookie name
   with rtws_http_get_cookie; routes are matched with rtws_http_match
   (check_match). */
#include "fuzz_http_head.h"

/* rtws_http_get_query: every parameter whose name needs no decoding is
   found (by it or an earlier one that decodes to the same name), its value
   is no longer decoded than sent, and out holds it NUL-terminated. */
static void check_query(const rtws_http *req) {
    size_t i = 0, n = req->query.len;
    const char *q = req->query.p;
    while (i < n) {
        size_t s = i, k, e, len = 0, need = 0;
        char name[64], out[256];
        int r, plain = 1;
        while (i < n && q[i] != '&') i++;
        e = i++;
        for (k = s; k < e && q[k] != '='; k++)
            if (q[k] == '%' || q[k] == '+') plain = 0;
        if (k == s || k - s >= sizeof name || !plain) continue;
        memcpy(name, q + s, k - s);
        name[k - s] = '\0';
        r = rtws_http_get_query(req, name, out, sizeof out, &len);
        FUZZ_CHECK(r == 1 || r == RTWS_ERR_SYNTAX || r == RTWS_ERR_NOSPACE);
        if (r == 1) {
            FUZZ_CHECK(len < sizeof out && out[len] == '\0');
            FUZZ_CHECK(rtws_http_get_query(req, name, NULL, 0, &need) == 1 && need == len);
        } else if (r == RTWS_ERR_NOSPACE) {
            FUZZ_CHECK(len >= sizeof out && out[0] == '\0');
        }
        if (r != RTWS_ERR_SYNTAX) FUZZ_CHECK(len <= n); /* decoding never lengthens */
    }
}

/* rtws_http_get_cookie: for every "name=" in a Cookie header, a lookup of
   that name finds a value inside the buffer (this pair's or an earlier one's
   of the same name: then before this pair). A name holding '=' is never
   found (a pair's name ends at its first '='), and leaves an empty value. */
static void check_cookies(const rtws_http *req, const char *buf, size_t len) {
    size_t h;
    rtws_str v;
    FUZZ_CHECK(rtws_http_get_cookie(req, "no=such", &v) == 0 && v.len == 0);
    for (h = 0; h < req->nheaders; h++) {
        const char *p = req->headers[h].value.p, *end = p + req->headers[h].value.len;
        const char *hn = req->headers[h].name.p;
        if (req->headers[h].name.len != 6 || (hn[0] | 0x20) != 'c' || (hn[1] | 0x20) != 'o' ||
            (hn[2] | 0x20) != 'o' || (hn[3] | 0x20) != 'k' || (hn[4] | 0x20) != 'i' || (hn[5] | 0x20) != 'e')
            continue;
        while (p < end) {
            const char *e = (const char *)memchr(p, ';', (size_t)(end - p)), *eq;
            char name[64];
            if (!e) e = end;
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            eq = (const char *)memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) < sizeof name && !memchr(p, 0, (size_t)(eq - p))) {
                memcpy(name, p, (size_t)(eq - p));
                name[eq - p] = '\0';
                FUZZ_CHECK(rtws_http_get_cookie(req, name, &v) == 1);
                FUZZ_CHECK(inside(v, buf, len) && v.p + v.len <= e);
            }
            p = e + 1;
        }
    }
}

/* rtws_http_match: the request's own method and path as a pattern match
   with no parameter ("*" and no method too), with a '/' added they do not;
   each non-empty segment turned into "{p}" is captured as it stands (-1 with
   more segments than room). The first header's value is tried as a pattern:
   -1 or a count within the room, every parameter a non-empty segment inside
   the buffer. */
static void check_match(const rtws_http *req, const char *buf, size_t len) {
    char pat[600], *o;
    rtws_str ps[8];
    size_t i, segs = 0, k;
    int r;
    if (req->path.len + req->method.len + 3 > 300 || memchr(req->path.p, '{', req->path.len) ||
        memchr(req->method.p, ' ', req->method.len) || !req->path.len || req->path.p[0] != '/')
        goto header;
    snprintf(pat, sizeof pat, "%.*s %.*s", (int)req->method.len, req->method.p,
             (int)req->path.len, req->path.p);
    FUZZ_CHECK(rtws_http_match(req, pat, NULL, 0) == 0);
    strcat(pat, "/");
    FUZZ_CHECK(rtws_http_match(req, pat, NULL, 0) == -1);
    snprintf(pat, sizeof pat, "* %.*s", (int)req->path.len, req->path.p);
    FUZZ_CHECK(rtws_http_match(req, pat, NULL, 0) == 0);
    FUZZ_CHECK(rtws_http_match(req, pat + 2, NULL, 0) == 0);
    o = pat + 2; /* each segment as a parameter */
    for (i = 0; i < req->path.len;) {
        size_t e = i + 1;
        *o++ = '/';
        while (e < req->path.len && req->path.p[e] != '/') e++;
        if (e > i + 1) {
            memcpy(o, "{p}", 3);
            o += 3;
            segs++;
        }
        i = e;
    }
    *o = '\0';
    r = rtws_http_match(req, pat, ps, 8);
    if (segs > 8) {
        FUZZ_CHECK(r == -1);
    } else {
        const char *at = req->path.p;
        FUZZ_CHECK(r == (int)segs);
        for (k = 0; k < segs; k++) { /* in order, each a whole segment */
            FUZZ_CHECK(inside(ps[k], buf, len) && ps[k].len > 0 && ps[k].p > at);
            FUZZ_CHECK(ps[k].p[-1] == '/' && !memchr(ps[k].p, '/', ps[k].len));
            at = ps[k].p + ps[k].len;
        }
    }
header:
    if (req->nheaders && req->headers[0].value.len < 300) {
        memcpy(pat, req->headers[0].value.p, req->headers[0].value.len);
        pat[req->headers[0].value.len] = '\0';
        r = rtws_http_match(req, pat, ps, buf[len - 1] == '\n' ? 8 : 2);
        FUZZ_CHECK(r >= -1 && r <= 8);
        for (k = 0; r > 0 && k < (size_t)r; k++)
            FUZZ_CHECK(inside(ps[k], buf, len) && ps[k].len > 0 && !memchr(ps[k].p, '/', ps[k].len));
    }
}

static void check_request(const rtws_http *req, const char *buf, size_t len, size_t max_headers) {
    rtws_upgrade u;
    size_t i;
    FUZZ_CHECK(inside(req->method, buf, len) && inside(req->target, buf, len));
    FUZZ_CHECK(inside(req->path, buf, len) && inside(req->query, buf, len));
    FUZZ_CHECK(req->method.p == buf && req->method.len > 0 && req->target.len > 0);
    for (i = 0; i < req->method.len; i++) FUZZ_CHECK(is_tchar((unsigned char)req->method.p[i]));
    for (i = 0; i < req->target.len; i++) {
        unsigned char ch = (unsigned char)req->target.p[i];
        FUZZ_CHECK(ch > 0x20 && ch != 0x7F);
    }
    FUZZ_CHECK(req->path.p == req->target.p && req->path.len <= req->target.len);
    FUZZ_CHECK(memchr(req->path.p, '?', req->path.len) == NULL);
    if (req->path.len < req->target.len) {
        FUZZ_CHECK(req->target.p[req->path.len] == '?');
        FUZZ_CHECK(req->query.p == req->target.p + req->path.len + 1);
        FUZZ_CHECK(req->query.len == req->target.len - req->path.len - 1);
    } else {
        FUZZ_CHECK(req->query.len == 0);
    }
    FUZZ_CHECK(req->minor >= 0 && req->minor <= 9);
    check_headers(req, buf, len, max_headers);
    check_query(req);
    check_cookies(req, buf, len);
    check_match(req, buf, len);

    FUZZ_CHECK(rtws_http_check_upgrade(req, &u) == u.status);
    FUZZ_CHECK(u.status == 101 || u.status == 400 || u.status == 405 || u.status == 426);
    FUZZ_CHECK(u.reason != NULL && u.reason[0] != '\0');
    FUZZ_CHECK(inside(u.key, buf, len) && inside(u.protocols, buf, len));
    FUZZ_CHECK(inside(u.origin, buf, len));
    if (u.status == 101) {
        uint8_t raw[32], dig[32];
        char acc[29];
        FUZZ_CHECK(req->method.len == 3 && req->minor >= 1);
        FUZZ_CHECK(rtws_http_get_header(req, "host") != NULL);
        FUZZ_CHECK(rtws_http_has_token(req, "upgrade", "WebSocket") == 1);
        FUZZ_CHECK(rtws_http_has_token(req, "CONNECTION", "upgrade") == 1);
        FUZZ_CHECK(u.key.len == 24);
        FUZZ_CHECK(rtws_base64_decode(u.key.p, u.key.len, raw, sizeof raw) == 16);
        memset(acc, 'x', sizeof acc);
        rtws_upgrade_accept_key(u.key.p, u.key.len, acc);
        FUZZ_CHECK(acc[28] == '\0' && strlen(acc) == 28);
        FUZZ_CHECK(rtws_base64_decode(acc, 28, dig, sizeof dig) == 20);
    } else {
        FUZZ_CHECK(u.key.len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    return fuzz_http_head_run(d, n, rtws_http_parse_request, check_request);
}
