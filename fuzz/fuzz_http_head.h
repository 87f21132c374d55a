/* fuzz/fuzz_http_head.h - what fuzz_handshake_req.c and fuzz_handshake_resp.c
   share: the input layout, rtws_http_head_end fed in chunks against a plain
   search for the first CRLFCRLF, the header checks, and the parse of a
   buffer that is not a complete head. Each target gives its parser and the
   checks of its own start line (fuzz_http_head_run).
   Input: byte 0: chunk size for rtws_http_head_end (0: 1 byte per call);
   byte 1: max_headers passed to the parser (mod 66: 0 means the default);
   rest: the bytes from the peer. */
#ifndef RTWS_FUZZ_HTTP_HEAD_H
#define RTWS_FUZZ_HTTP_HEAD_H
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

/* headers well-formed and findable (request and response alike) */
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

typedef rtws_err (*fuzz_http_parse_fn)(const char *buf, size_t len, rtws_http *m,
                                       size_t max_headers, size_t *err_off);
/* check(m, buf, len, max_headers): the target's checks of the head m parsed
   from buf, an exact-size copy of it (so that ASan sees over-reads) */
typedef void (*fuzz_http_check_fn)(const rtws_http *m, const char *buf, size_t len,
                                   size_t max_headers);

static int fuzz_http_head_run(const uint8_t *d, size_t n, fuzz_http_parse_fn parse,
                              fuzz_http_check_fn check) {
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
        rtws_http m;
        size_t err_off = (size_t)-1;
        rtws_err e;
        copy = (char *)malloc(ref);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, d, ref);
        e = parse(copy, ref, &m, max_headers, &err_off);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_SYNTAX || e == RTWS_ERR_LIMIT);
        if (e == RTWS_OK) {
            FUZZ_CHECK(m.size == ref); /* no CR inside a line, so the first CRLFCRLF ends it */
            check(&m, copy, ref, max_headers);
        } else {
            FUZZ_CHECK(err_off <= ref);
        }
        free(copy);
    }
    /* the parser must also cope with a buffer that is not a complete head */
    copy = (char *)malloc(n ? n : 1);
    FUZZ_CHECK(copy != NULL);
    if (n) memcpy(copy, d, n);
    {
        rtws_http m;
        size_t err_off = (size_t)-1;
        rtws_err e = parse(copy, n, &m, max_headers, &err_off);
        if (e == RTWS_OK) {
            FUZZ_CHECK(ref != 0 && m.size == ref);
        } else {
            FUZZ_CHECK(err_off <= n);
        }
    }
    free(copy);
    return 0;
}
#endif
