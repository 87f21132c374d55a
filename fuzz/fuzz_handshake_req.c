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
#include "fuzz.h"

static int inside(rtws_str s, const char *buf, size_t len) {
    if (s.len == 0) return s.p == NULL || (s.p >= buf && s.p <= buf + len);
    return s.p >= buf && s.p + s.len <= buf + len;
}

static int is_tchar(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static size_t ref_head_end(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return i + 4;
    return 0;
}

/* checks shared with the response target: headers well-formed and findable */
static void check_headers(const rtws_http *m, const char *buf, size_t len, size_t max_headers) {
    size_t i, j;
    FUZZ_CHECK(m->nheaders <= (max_headers ? max_headers : RTWS_MAX_HEADERS));
    FUZZ_CHECK(m->size <= len && m->size >= 4);
    FUZZ_CHECK(memcmp(buf + m->size - 4, "\r\n\r\n", 4) == 0 ||
               (m->nheaders == 0 && memcmp(buf + m->size - 2, "\r\n", 2) == 0));
    for (i = 0; i < m->nheaders; i++) {
        const rtws_header *h = &m->headers[i];
        const rtws_str *first;
        char name[128], tok[128];
        size_t a, b;
        FUZZ_CHECK(inside(h->name, buf, len) && inside(h->value, buf, len));
        FUZZ_CHECK(h->name.len > 0);
        for (j = 0; j < h->name.len; j++) FUZZ_CHECK(is_tchar((unsigned char)h->name.p[j]));
        for (j = 0; j < h->value.len; j++) {
            unsigned char ch = (unsigned char)h->value.p[j];
            FUZZ_CHECK(ch == '\t' || (ch >= 0x20 && ch != 0x7F));
        }
        if (h->value.len) {
            FUZZ_CHECK(h->value.p[0] != ' ' && h->value.p[0] != '\t');
            FUZZ_CHECK(h->value.p[h->value.len - 1] != ' ' && h->value.p[h->value.len - 1] != '\t');
        }
        if (h->name.len >= sizeof name) continue;
        memcpy(name, h->name.p, h->name.len);
        name[h->name.len] = '\0';
        /* case-insensitive lookup finds this header or an earlier one of the same name */
        for (j = 0; name[j]; j++)
            if (name[j] >= 'a' && name[j] <= 'z') name[j] = (char)(name[j] - 32);
        first = rtws_http_get_header(m, name);
        FUZZ_CHECK(first != NULL);
        FUZZ_CHECK(first >= &m->headers[0].value && first <= &m->headers[i].value);
        /* the first list element of the value is a token of it */
        for (a = 0; a < h->value.len && (h->value.p[a] == ' ' || h->value.p[a] == '\t' ||
                                          h->value.p[a] == ',');
             a++) {
        }
        for (b = a; b < h->value.len && h->value.p[b] != ','; b++) {
        }
        while (b > a && (h->value.p[b - 1] == ' ' || h->value.p[b - 1] == '\t')) b--;
        if (b > a && b - a < sizeof tok) {
            memcpy(tok, h->value.p + a, b - a);
            tok[b - a] = '\0';
            FUZZ_CHECK(rtws_http_has_token(m, name, tok) == 1);
        }
    }
}

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

static void check_request(const char *buf, size_t len, size_t max_headers, size_t head) {
    rtws_http req;
    rtws_upgrade u;
    size_t err_off = (size_t)-1, i;
    rtws_err e = rtws_http_parse_request(buf, len, &req, max_headers, &err_off);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_SYNTAX || e == RTWS_ERR_LIMIT);
    if (e != RTWS_OK) {
        FUZZ_CHECK(err_off <= len);
        return;
    }
    FUZZ_CHECK(req.size == head); /* no CR inside a line, so the first CRLFCRLF ends it */
    FUZZ_CHECK(inside(req.method, buf, len) && inside(req.target, buf, len));
    FUZZ_CHECK(inside(req.path, buf, len) && inside(req.query, buf, len));
    FUZZ_CHECK(req.method.p == buf && req.method.len > 0 && req.target.len > 0);
    for (i = 0; i < req.method.len; i++) FUZZ_CHECK(is_tchar((unsigned char)req.method.p[i]));
    for (i = 0; i < req.target.len; i++) {
        unsigned char ch = (unsigned char)req.target.p[i];
        FUZZ_CHECK(ch > 0x20 && ch != 0x7F);
    }
    FUZZ_CHECK(req.path.p == req.target.p && req.path.len <= req.target.len);
    FUZZ_CHECK(memchr(req.path.p, '?', req.path.len) == NULL);
    if (req.path.len < req.target.len) {
        FUZZ_CHECK(req.target.p[req.path.len] == '?');
        FUZZ_CHECK(req.query.p == req.target.p + req.path.len + 1);
        FUZZ_CHECK(req.query.len == req.target.len - req.path.len - 1);
    } else {
        FUZZ_CHECK(req.query.len == 0);
    }
    FUZZ_CHECK(req.minor >= 0 && req.minor <= 9);
    check_headers(&req, buf, len, max_headers);
    check_query(&req);
    check_cookies(&req, buf, len);
    check_match(&req, buf, len);

    FUZZ_CHECK(rtws_http_check_upgrade(&req, &u) == u.status);
    FUZZ_CHECK(u.status == 101 || u.status == 400 || u.status == 405 || u.status == 426);
    FUZZ_CHECK(u.reason != NULL && u.reason[0] != '\0');
    FUZZ_CHECK(inside(u.key, buf, len) && inside(u.protocols, buf, len));
    FUZZ_CHECK(inside(u.origin, buf, len));
    if (u.status == 101) {
        uint8_t raw[32], dig[32];
        char acc[29];
        FUZZ_CHECK(req.method.len == 3 && req.minor >= 1);
        FUZZ_CHECK(rtws_http_get_header(&req, "host") != NULL);
        FUZZ_CHECK(rtws_http_has_token(&req, "upgrade", "WebSocket") == 1);
        FUZZ_CHECK(rtws_http_has_token(&req, "CONNECTION", "upgrade") == 1);
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
    size_t step, max_headers, scanned = 0, got = 0, upto, ref;
    char *copy;
    if (n < 2) return 0;
    step = d[0] ? d[0] : 1;
    max_headers = d[1] % (RTWS_MAX_HEADERS + 2);
    if (max_headers > RTWS_MAX_HEADERS) max_headers = 0;
    d += 2;
    n -= 2;
    ref = ref_head_end(d, n);
    /* the buffer grows as bytes "arrive"; the head end is found at the first
       length that contains it, and not before */
    for (upto = 0; upto < n && got == 0;) {
        upto = n - upto < step ? n : upto + step;
        got = rtws_http_head_end((const char *)d, upto, &scanned);
        FUZZ_CHECK(got <= upto && scanned <= upto);
        if (ref && ref <= upto) {
            FUZZ_CHECK(got == ref);
        } else {
            FUZZ_CHECK(got == 0);
        }
    }
    FUZZ_CHECK(got == ref);
    if (ref) {
        copy = (char *)malloc(ref);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, d, ref);
        check_request(copy, ref, max_headers, ref);
        free(copy);
    }
    /* the parser must also cope with a buffer that is not a complete head */
    copy = (char *)malloc(n ? n : 1);
    FUZZ_CHECK(copy != NULL);
    if (n) memcpy(copy, d, n);
    {
        rtws_http req;
        size_t err_off = (size_t)-1;
        rtws_err e = rtws_http_parse_request(copy, n, &req, max_headers, &err_off);
        if (e == RTWS_OK) {
            FUZZ_CHECK(ref != 0 && req.size == ref);
        } else {
            FUZZ_CHECK(err_off <= n);
        }
    }
    free(copy);
    return 0;
}
