/* libFuzzer target for rtws_json_write_fmt (layer 6: the varargs JSON
   writer). A va_list cannot be built at run time, so every run passes one
   kind of argument only, always 16 of them (or 16 pairs), and the format's
   conversions are rewritten to that kind.

   Input: byte 0 picks the kind (below, % 8); byte 1 the writer's capacity
   (0: 64 KiB, else that many bytes, in a buffer of exactly that size so
   ASan sees any write past it); then the format up to the first NUL (at
   most 512 bytes); the rest, split at NULs, gives the arguments (strings,
   numbers from their bytes, a JSON document for %t).

   Kinds: 0 const char * (%s, and %k where the input had k; one string in
   five is NULL), 1 int64_t (%i, %T where the input had T), 2 int (%d, %b
   where the input had b), 3 uint64_t (%u), 4 size_t (%z), 5 double (%f;
   NaN and infinities too), 6 (const char *, size_t) pairs (%S, %r where
   the input had r), 7 (const rtws_json *, int) pairs (%t, indices from -2 to count + 2). A
   conversion letter that is none of "sSdiuzfbrtkT" is left as it is (it
   takes no argument: the format is malformed).

   Invariants, abort() when broken:
   - no write outside the buffer (ASan), no UB (UBSan);
   - a format with a bad conversion outside 'quoted text' (an unknown letter
     or a '%' at the end) never gives RTWS_OK;
   - when the writer and rtws_json_writer_finish both say RTWS_OK, the output
     is NUL-terminated and rtws_json_parse accepts it, as one value;
   - the result is the same with a 64 KiB buffer except for RTWS_ERR_NOSPACE:
     a smaller buffer that succeeds holds the same bytes; one that ran out
     reports the length the large one wrote (more than it holds). */
#include "fuzz.h"

#define NARG 16

static const char *S[NARG];
static size_t SL[NARG];
static int64_t I64[NARG];
static int INT[NARG];
static uint64_t U64[NARG];
static size_t SZ[NARG];
static double DBL[NARG];
static int TI[NARG];
static rtws_json DOC;
static rtws_json_tok TOKS[64];

#define A16(a) a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], \
               a[13], a[14], a[15]
#define P16(a, b)                                                                                  \
    a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7], \
        a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14],     \
        b[14], a[15], b[15]
#define D16 &DOC, TI[0], &DOC, TI[1], &DOC, TI[2], &DOC, TI[3], &DOC, TI[4], &DOC, TI[5], &DOC,  \
            TI[6], &DOC, TI[7], &DOC, TI[8], &DOC, TI[9], &DOC, TI[10], &DOC, TI[11], &DOC,     \
            TI[12], &DOC, TI[13], &DOC, TI[14], &DOC, TI[15]

/* writes fmt with this run's arguments into buf[0..cap); the writer's and
   finish's results, and the length */
static rtws_err run(int kind, const char *fmt, char *buf, size_t cap, rtws_err *fin, size_t *len) {
    rtws_json_writer w;
    rtws_err e;
    rtws_json_writer_init(&w, buf, cap);
    switch (kind) {
    case 0: e = rtws_json_write_fmt(&w, fmt, A16(S)); break;
    case 1: e = rtws_json_write_fmt(&w, fmt, A16(I64)); break;
    case 2: e = rtws_json_write_fmt(&w, fmt, A16(INT)); break;
    case 3: e = rtws_json_write_fmt(&w, fmt, A16(U64)); break;
    case 4: e = rtws_json_write_fmt(&w, fmt, A16(SZ)); break;
    case 5: e = rtws_json_write_fmt(&w, fmt, A16(DBL)); break;
    case 6: e = rtws_json_write_fmt(&w, fmt, P16(S, SL)); break;
    default: e = rtws_json_write_fmt(&w, fmt, D16); break;
    }
    *fin = rtws_json_writer_finish(&w, len);
    return e;
}

static uint64_t bytes_u64(const char *s, size_t n) {
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n && i < 8; i++) v = v << 8 | (uint8_t)s[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static char big[65536];
    static const char valid[] = "sSdiuzfbrtkT";
    char fmt[520], *small;
    const char *p, *end;
    size_t cap, fl, i, k, len1 = 0, len2 = 0, nconv = 0;
    int kind, bad = 0, quoted = 0;
    rtws_err e1, f1, e2, f2;
    if (n < 2) return 0;
    kind = d[0] % 8;
    cap = d[1] ? d[1] : sizeof big;
    p = (const char *)d + 2;
    end = (const char *)d + n;
    for (fl = 0; p + fl < end && p[fl] && fl < 512; fl++) {
    }
    /* the format, each conversion rewritten to this run's kind */
    for (i = 0; i < fl; i++) {
        char ch = p[i];
        fmt[i] = ch;
        if (ch == '\'') quoted = !quoted;
        if (ch != '%') continue; /* (inside 'text' too: what looks quoted may not be) */
        if (i + 1 == fl) {
            bad |= !quoted; /* '%' at the end */
            break;
        }
        ch = p[i + 1];
        if (!strchr(valid, ch)) {
            bad |= !quoted; /* outside 'text' it is a conversion */
            continue;       /* (a quote after it still counts) */
        }
        i++;
        nconv++;
        switch (kind) {
        case 0: fmt[i] = ch == 'k' ? 'k' : 's'; break;
        case 1: fmt[i] = ch == 'T' ? 'T' : 'i'; break;
        case 2: fmt[i] = ch == 'b' ? 'b' : 'd'; break;
        case 3: fmt[i] = 'u'; break;
        case 4: fmt[i] = 'z'; break;
        case 5: fmt[i] = 'f'; break;
        case 6: fmt[i] = ch == 'r' ? 'r' : 'S'; break;
        default: fmt[i] = 't'; break;
        }
    }
    fmt[fl] = '\0';
    if (nconv > NARG) return 0; /* more conversions than arguments: not a valid call */
    /* the arguments: the rest, split at NULs */
    p += fl + (p + fl < end ? 1 : 0);
    for (k = 0; k < NARG; k++) {
        const char *z = p < end ? (const char *)memchr(p, 0, (size_t)(end - p)) : NULL;
        size_t an = p < end ? (z ? (size_t)(z - p) : (size_t)(end - p)) : 0;
        uint64_t v = bytes_u64(p < end ? p : "", an);
        S[k] = p < end ? p : "";
        SL[k] = an;
        if (kind == 0 && z == NULL) S[k] = ""; /* %s needs a NUL */
        if (kind == 0 && v % 5 == 4) S[k] = NULL;
        I64[k] = (int64_t)v;
        INT[k] = (int)(int32_t)(uint32_t)v;
        U64[k] = v;
        SZ[k] = (size_t)v;
        memcpy(&DBL[k], &v, sizeof v < sizeof DBL[k] ? sizeof v : sizeof DBL[k]);
        TI[k] = (int)(v % 68) - 2;
        if (k == 0 && kind == 7 &&
            rtws_json_parse(&DOC, p < end ? p : "", an, TOKS, 64, 16) != RTWS_OK)
            rtws_json_parse(&DOC, "[1,{\"a\":\"b\"},null]", 18, TOKS, 64, 16);
        p = z ? z + 1 : end;
    }
    /* the large buffer, then one of exactly cap bytes */
    e1 = run(kind, fmt, big, sizeof big, &f1, &len1);
    if (bad) FUZZ_CHECK(e1 != RTWS_OK || f1 != RTWS_OK);
    if (e1 == RTWS_OK && f1 == RTWS_OK) {
        rtws_json doc;
        FUZZ_CHECK(len1 < sizeof big && big[len1] == '\0' && strlen(big) == len1);
        FUZZ_CHECK(rtws_json_parse(&doc, big, len1, NULL, 0, 0) == RTWS_OK);
    }
    if (cap == sizeof big) return 0;
    small = (char *)malloc(cap);
    FUZZ_CHECK(small != NULL);
    e2 = run(kind, fmt, small, cap, &f2, &len2);
    if (bad) FUZZ_CHECK(e2 != RTWS_OK || f2 != RTWS_OK);
    if (e1 == RTWS_OK && f1 == RTWS_OK) {
        if (e2 == RTWS_OK && f2 == RTWS_OK)
            FUZZ_CHECK(len2 == len1 && memcmp(small, big, len1) == 0 &&
                       (len2 == cap || small[len2] == '\0'));
        else
            FUZZ_CHECK(e2 == RTWS_ERR_NOSPACE && f2 == RTWS_ERR_NOSPACE && len2 == len1 &&
                       len1 > cap);
    } else if (e1 != RTWS_ERR_NOSPACE) {
        FUZZ_CHECK(e2 != RTWS_OK || f2 != RTWS_OK); /* an error does not vanish */
    }
    free(small);
    return 0;
}
