/* fuzz/fuzz_http_body.c - plain HTTP requests with bodies, read for on_http
   by a server rtws_conn.
   byte 0: chunk size for the second run (0: 1 byte per call)
   byte 1: max_http_body (times 8; 0: the 64 KiB default)
   rest:   bytes from the client
   The bytes go in once whole and once in chunks: both runs must call the
   hook the same way (or not at all) with the same body and write the same
   answer. A body handed to the hook is the bytes right after the head, no
   longer than max_http_body; a plain request the hook did not get is
   answered with a 4xx status, or not at all while its head or body is
   still incomplete ("Expect: 100-continue" may add a 100 first). After a
   101 the output is frames: the same ones, except that the whole run may
   answer fewer pings (pings that pile up before the output is read are
   answered up to a bound, the newest answer giving way; RFC 6455 §5.5.3
   allows answering only the latest): its pongs are some of the chunked
   run's, in order. */
#include "fuzz.h"

typedef struct run {
    int calls;
    size_t body_len;
    uint8_t body[4096];
    uint8_t out[8192];
    size_t out_len;
    int out_cut;
} run;

static int on_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *r, void *user) {
    run *x = (run *)user;
    (void)c;
    x->calls++;
    x->body_len = req->body.len;
    if (req->body.len <= sizeof x->body && req->body.len) memcpy(x->body, req->body.p, req->body.len);
    r->status = 200;
    r->body = req->body.p; /* echoed: copied before the hook returns to rtws */
    r->body_len = req->body.len;
    return 1;
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)ev, (void)user;
}

static void drain(rtws_conn *c, run *x) {
    const uint8_t *p;
    size_t len;
    while ((p = rtws_conn_out(c, &len)) != NULL && len) {
        size_t k = len < sizeof x->out - x->out_len ? len : sizeof x->out - x->out_len;
        memcpy(x->out + x->out_len, p, k);
        x->out_len += k;
        if (k < len) x->out_cut = 1;
        rtws_conn_out_done(c, len);
    }
}

/* Feeds d[0..n) in pieces of step (through rtws_conn_recv and recv_buf:
   the two ways a host hands bytes over). */
static void feed(const uint8_t *d, size_t n, size_t step, size_t cap, run *x) {
    rtws_config cfg;
    rtws_conn c;
    size_t off = 0;
    uint64_t now = 1000;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.on_http = on_http;
    cfg.user = x;
    cfg.heartbeat_off = 1;
    cfg.max_http_body = cap;
    cfg.max_handshake = 1024;
    rtws_conn_init(&c, &cfg);
    while (off < n) { /* all of it: after a 101, frames (the same in both runs) */
        size_t k = n - off < step ? n - off : step, used = 0;
        if ((off / step) & 1) {
            size_t room = 0;
            uint8_t *b = rtws_conn_recv_buf(&c, k, &room);
            if (!b) break;
            if (k > room) k = room;
            memcpy(b, d + off, k);
            rtws_conn_recv_commit(&c, k, now);
            used = k;
        } else {
            rtws_conn_recv(&c, d + off, k, now, &used);
        }
        off += used ? used : k;
        drain(&c, x);
        now += 1;
    }
    drain(&c, x);
    rtws_conn_free(&c);
}

static int strip_continue(run *x) {
    static const char c[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (x->out_len < sizeof c - 1 || memcmp(x->out, c, sizeof c - 1) != 0) return 0;
    memmove(x->out, x->out + sizeof c - 1, x->out_len - (sizeof c - 1));
    x->out_len -= sizeof c - 1;
    return 1;
}

/* The length of the server frame at p (unmasked), 0 if not all there. */
static size_t frame_len(const uint8_t *p, size_t n) {
    size_t h = 2, len, i;
    if (n < 2) return 0;
    len = p[1] & 127;
    if (len >= 126) {
        h += len == 126 ? 2 : 8;
        if (n < h) return 0;
        for (len = 0, i = 2; i < h; i++) len = len << 8 | p[i];
    }
    return len <= n - h ? h + len : 0;
}

/* a's frames are b's, but for some of b's pongs left out (see above) */
static void same_frames(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, int cut) {
    while (bn) {
        size_t fa = frame_len(a, an), fb = frame_len(b, bn);
        if (!fb || (an && !fa)) { /* a frame cut off by the end of out[] */
            FUZZ_CHECK(cut);
            return;
        }
        if (fa == fb && memcmp(a, b, fa) == 0) {
            a += fa, an -= fa;
        } else {
            FUZZ_CHECK((b[0] & 15) == RTWS_OP_PONG);
        }
        b += fb, bn -= fb;
    }
    FUZZ_CHECK(an == 0 || cut);
}

static size_t head_end(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return i + 4;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static run a, b;
    size_t step, cap, head;
    uint8_t *copy;
    if (n < 2) return 0;
    step = d[0] ? d[0] : 1;
    cap = (size_t)d[1] * 8;
    d += 2;
    n -= 2;
    copy = (uint8_t *)malloc(n ? n : 1); /* exact size: ASan sees over-reads */
    FUZZ_CHECK(copy != NULL);
    if (n) memcpy(copy, d, n);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    feed(copy, n, n ? n : 1, cap, &a);
    feed(copy, n, step, cap, &b);
    FUZZ_CHECK(a.calls <= 1 && b.calls == a.calls);
    /* a 100 Continue comes first when the body was not all there when the
       head was: in the chunked run also for a body the whole run had */
    {
        int ca = strip_continue(&a), cb = strip_continue(&b);
        FUZZ_CHECK(!ca || cb);
    }
    {
        size_t ha = head_end(a.out, a.out_len);
        if (ha && a.out_len >= 12 && memcmp(a.out, "HTTP/1.1 101", 12) == 0) {
            FUZZ_CHECK(b.out_len >= ha && memcmp(a.out, b.out, ha) == 0);
            same_frames(a.out + ha, a.out_len - ha, b.out + ha, b.out_len - ha,
                        a.out_cut || b.out_cut);
        } else {
            FUZZ_CHECK(a.out_len == b.out_len && a.out_cut == b.out_cut);
            FUZZ_CHECK(memcmp(a.out, b.out, a.out_len) == 0);
        }
    }
    head = head_end(copy, n);
    if (a.calls) {
        FUZZ_CHECK(head != 0);
        FUZZ_CHECK(a.body_len <= (cap ? cap : 65536));
        FUZZ_CHECK(a.body_len == b.body_len);
        FUZZ_CHECK(head + a.body_len <= n);
        if (a.body_len <= sizeof a.body) {
            FUZZ_CHECK(memcmp(a.body, copy + head, a.body_len) == 0);
            FUZZ_CHECK(memcmp(b.body, copy + head, a.body_len) == 0);
        }
        FUZZ_CHECK(a.out_len >= 12 && memcmp(a.out, "HTTP/1.1 200", 12) == 0);
    } else if (a.out_len) {
        /* refused: an error status (a 101 only for an upgrade) */
        FUZZ_CHECK(a.out_len >= 12 && memcmp(a.out, "HTTP/1.1 ", 9) == 0);
        FUZZ_CHECK(a.out[9] == '4' || a.out[9] == '5' || memcmp(a.out + 9, "101", 3) == 0);
    }
    free(copy);
    return 0;
}
