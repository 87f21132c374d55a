/* fuzz/fuzz_conn.h - the body of fuzz_conn_server.c and fuzz_conn_client.c:
   a whole rtws_conn in one role fed a byte stream in chunks, with every byte
   it writes parsed back (HTTP head, then frames in the opposite role).
   byte 0: flags (see FZ_*)
   byte 1, 2: seed of the chunk sizes and of the partial writes; when byte 1
           is odd, message_timeout_ms = 64 * (1 + byte 1 / 2); byte 1's bit 1:
           a memory budget of 2048 + 64 * byte 2 bytes (else one without a
           limit): it balances to 0 at the free, and its peak passes the
           limit by no more than what asks without being refused (a
           handshake's head, a close frame and the pongs owed before it,
           a compressed frame's few bytes over its uncompressed length);
           byte 2's bit 0
           lends a host's pool (bit 1: a small budget) and direct writes;
           client: bit 2 goes through a proxy (a CONNECT first, so the input
           starts with the proxy's answer; FZ_HANDSHAKE prepends a 200), bit
           3 lends a redirect hook that resolves each Location and follows,
           declines or refuses it (bits 4-5); bit 6: the prepended head
           negotiates permessage-deflate (bit 7: without context takeover,
           windows of 9 bits), every message of 1 byte and up compressed;
           server: bit 2 sets deflate_takeover (echoes of 3k+1 bytes go
           back as a shared frame, twice)
   byte 3: milliseconds that pass per call (times 64)
   rest:   bytes from the peer (after a valid handshake head when FZ_HANDSHAKE) */
#ifndef FUZZ_CONN_H
#define FUZZ_CONN_H
/* small thresholds, so that the short messages of a fuzz input reach the
   host's buffer pool and direct writes (lent through an rtws__conn_io) */
#define RTWS__POOL_MIN 64u
#define RTWS__DIRECT_MIN 64u
#include "fuzz.h"

enum {
    FZ_HANDSHAKE = 1,  /* prepend a valid request (server) / 101 response (client) */
    FZ_STREAM = 2,     /* cfg.stream */
    FZ_SMALL = 4,      /* small caps: frames, messages, handshake, send queue */
    FZ_ECHO = 8,       /* the callback sends every message back, pings on a ping */
    FZ_CLOSE_CB = 16,  /* the callback closes on a message starting with 'C' */
    FZ_FREE_CB = 32,   /* the callback frees the connection on ERROR and CLOSE */
    FZ_PROTO = 64,     /* subprotocols offered / chosen */
    FZ_HB = 128        /* heartbeat on (else heartbeat_off) */
};

typedef struct fz {
    rtws_conn c;
    rtws_role role;
    unsigned flags;
    uint32_t rng;
    uint64_t now;
    int opened, closed, freed;
    rtws_err sticky;
    /* message events */
    int in_stream;
    uint32_t stream_utf8;
    rtws_opcode stream_op;
    size_t stream_total;
    /* output checking */
    uint8_t *out;
    size_t out_len, out_cap, head_scanned;
    int phase; /* 0: HTTP head next, 1: frames, 2: nothing more is parsed */
    int tunnel; /* client through a proxy: 1 the CONNECT is the next head, 2 it was */
    int redirect_mode, redirects; /* the hook's answer (byte 2 bits 4-5), its calls */
    rtws_frame_parser fp;
    int close_out;         /* a close frame was written */
    uint8_t ctl[125];      /* payload of the control frame being written */
    size_t ctl_len;
    char expect_accept[29]; /* server: the accept for our key */
    int know_key;
    /* pings received (a hash of each payload) and how many the pongs written
       have answered: pongs answer pings in order, and the latest is answered */
    uint32_t ping_hash[1024];
    size_t nping, pong_next;
    /* permessage-deflate agreed: every compressed message written is
       inflated back (a window of 15 reads any) and its text checked */
    int pmd, pmd_takeover, zmsg;
    uint32_t zutf8;
    rtws_inflate inf;
} fz;

static uint32_t fz_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)n;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static uint32_t fz_rand(fz *f) {
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

static int fz_random(void *buf, size_t len, void *user) {
    uint32_t *s = (uint32_t *)user;
    uint8_t *p = (uint8_t *)buf;
    size_t i;
    for (i = 0; i < len; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        p[i] = (uint8_t)*s;
    }
    return 0;
}

static int fz_err_ok(rtws_err e) {
    return e == RTWS_OK || e == RTWS_EAGAIN || e == RTWS_ERR_NOMEM || e == RTWS_ERR_PROTOCOL ||
           e == RTWS_ERR_TOO_BIG || e == RTWS_ERR_UTF8 || e == RTWS_ERR_HANDSHAKE ||
           e == RTWS_ERR_TIMEOUT || e == RTWS_ERR_CLOSED || e == RTWS_ERR_ABNORMAL ||
           e == RTWS_ERR_MESSAGE_TIMEOUT || e == RTWS_ERR_PROXY || e == RTWS_ERR_REDIRECTS ||
           e == RTWS_ERR_URL || e == RTWS_ERR_LIMIT;
}

static int fz_send_ok(rtws_err e) {
    return e == RTWS_OK || e == RTWS_ERR_CLOSED || e == RTWS_ERR_LIMIT || e == RTWS_ERR_UTF8 ||
           e == RTWS_ERR_NOMEM || e == RTWS_ERR_INVALID;
}

static void fz_drain(fz *f);

static void fz_event(rtws_conn *c, const rtws_event *ev, void *user) {
    fz *f = (fz *)user;
    const rtws_config *cfg = rtws_conn_get_config(c);
    FUZZ_CHECK(c == &f->c && !f->freed);
    switch (ev->type) {
    case RTWS_EV_OPEN:
        FUZZ_CHECK(!f->opened && !f->closed);
        f->opened = 1;
        {
            rtws_pmd_offer ag;
            f->pmd = rtws_conn_get_deflate(c, &ag);
            if (f->pmd) {
                f->pmd_takeover = f->role == RTWS_SERVER ? !ag.server_no_context_takeover
                                                         : !ag.client_no_context_takeover;
                FUZZ_CHECK(rtws_inflate_init(&f->inf, NULL, NULL, 0) == RTWS_Z_OK);
                rtws_frame_parser_set_rsv(&f->fp, 4); /* RFC 7692: RSV1 on a message's first frame */
            }
        }
        /* the only protocol ever chosen is "chat": by fz_on_accept when the
           client offers it, by the client's peer when FZ_PROTO */
        if (ev->open.protocol.len)
            FUZZ_CHECK(ev->open.protocol.len == 4 && memcmp(ev->open.protocol.p, "chat", 4) == 0);
        if (f->role == RTWS_CLIENT) FUZZ_CHECK(!!ev->open.protocol.len == !!(f->flags & FZ_PROTO));
        /* The output is drained only when the harness decides, so the order
           check below also covers a control frame that becomes due in the
           same rtws_conn_recv as the request (a pong to a pipelined ping):
           the 101 must still come first. */
        break;
    case RTWS_EV_MESSAGE: {
        const rtws_message_event *m = &ev->message;
        FUZZ_CHECK(f->opened && !f->closed);
        FUZZ_CHECK(m->opcode == RTWS_OP_TEXT || m->opcode == RTWS_OP_BINARY);
        FUZZ_CHECK(m->len == 0 || m->data != NULL);
        if (cfg->stream) {
            FUZZ_CHECK(m->first == !f->in_stream);
            if (m->first) {
                f->stream_op = m->opcode;
                f->stream_utf8 = 0;
                f->stream_total = 0;
            }
            FUZZ_CHECK(m->opcode == f->stream_op);
            f->stream_total += m->len;
            FUZZ_CHECK(f->stream_total <= cfg->max_message);
            if (m->opcode == RTWS_OP_TEXT)
                FUZZ_CHECK(rtws_utf8_validate(&f->stream_utf8, m->data, m->len, NULL) == RTWS_OK);
            f->in_stream = !m->fin;
            if (m->fin) FUZZ_CHECK(f->stream_utf8 == 0);
        } else {
            uint32_t st = 0;
            FUZZ_CHECK(m->first == 1 && m->fin == 1);
            FUZZ_CHECK(m->len <= cfg->max_message);
            if (m->opcode == RTWS_OP_TEXT)
                FUZZ_CHECK(rtws_utf8_validate(&st, m->data, m->len, NULL) == RTWS_OK && st == 0);
            if ((f->flags & FZ_ECHO) && f->role == RTWS_SERVER && m->len % 3 == 1) {
                /* as a shared frame, twice: with deflate the second finds
                   the compressed copy the first made (takeover: compressed
                   for c each time); every 7th opted out */
                rtws_shared *sh = rtws_shared_new(&cfg->allocator, m->opcode, m->data, m->len);
                if (sh) {
                    if (m->len % 7 == 1) rtws_shared_set_flags(sh, RTWS_SEND_UNCOMPRESSED);
                    FUZZ_CHECK(fz_send_ok(rtws_conn_send_shared(c, sh)));
                    FUZZ_CHECK(fz_send_ok(rtws_conn_send_shared(c, sh)));
                    rtws_shared_release(sh);
                }
            } else if (f->flags & FZ_ECHO) {
                FUZZ_CHECK(fz_send_ok(rtws_conn_send(c, m->opcode, m->data, m->len)));
            }
        }
        if ((f->flags & FZ_CLOSE_CB) && m->len && m->data[0] == 'C')
            FUZZ_CHECK(fz_send_ok(rtws_conn_close(c, 1000, "bye")));
        break;
    }
    case RTWS_EV_PING:
    case RTWS_EV_PONG: {
        const rtws_control_event *k = ev->type == RTWS_EV_PING ? &ev->ping : &ev->pong;
        FUZZ_CHECK(f->opened && !f->closed && k->len <= 125);
        FUZZ_CHECK(ev->type == RTWS_EV_PONG || k->rtt_ms == 0);
        if (ev->type == RTWS_EV_PING && f->nping < sizeof f->ping_hash / sizeof f->ping_hash[0])
            f->ping_hash[f->nping] = fz_hash(k->data, k->len);
        if (ev->type == RTWS_EV_PING) f->nping++;
        if ((f->flags & FZ_ECHO) && ev->type == RTWS_EV_PING)
            FUZZ_CHECK(fz_send_ok(rtws_conn_ping(c, k->data, k->len)));
        break;
    }
    case RTWS_EV_CLOSE:
        FUZZ_CHECK(f->opened && !f->closed);
        f->closed = 1;
        FUZZ_CHECK(rtws_close_code_valid(ev->close.code) || ev->close.code == RTWS_CLOSE_NO_STATUS ||
                   ev->close.code == RTWS_CLOSE_ABNORMAL);
        {
            uint32_t st = 0;
            FUZZ_CHECK(ev->close.reason_len <= 123);
            FUZZ_CHECK((ev->close.reason == NULL) == (ev->close.reason_len == 0));
            FUZZ_CHECK(rtws_utf8_validate(&st, (const uint8_t *)ev->close.reason,
                                          ev->close.reason_len, NULL) == RTWS_OK && st == 0);
        }
        if (f->flags & FZ_FREE_CB) {
            rtws_conn_free(c);
            f->freed = 1;
        }
        break;
    case RTWS_EV_ERROR:
        FUZZ_CHECK(fz_err_ok(ev->error.err) && ev->error.err != RTWS_OK &&
                   ev->error.err != RTWS_EAGAIN);
        if (ev->error.err == RTWS_ERR_HANDSHAKE && ev->error.status)
            FUZZ_CHECK(ev->error.status >= 0 && ev->error.status <= 999); /* the peer's 3 digits */
        if (ev->error.err == RTWS_ERR_PROXY) /* the proxy's status, never a 2xx; 0: none */
            FUZZ_CHECK(f->tunnel && ev->error.status >= 0 && ev->error.status <= 999 &&
                       (ev->error.status < 200 || ev->error.status > 299));
        if (ev->error.err == RTWS_ERR_REDIRECTS || ev->error.err == RTWS_ERR_URL)
            FUZZ_CHECK(f->redirects > 0); /* only from the hook */
        /* sans-I/O: nothing below the connection to report */
        FUZZ_CHECK(ev->error.detail == 0 && ev->error.detail_text == NULL);
        if ((f->flags & FZ_FREE_CB) && !f->opened) {
            rtws_conn_free(c);
            f->freed = 1;
        }
        break;
    default:
        FUZZ_CHECK(0);
    }
}

/* The head at the start of the output: the server's response or the client's request. */
static void fz_check_head(fz *f, size_t head) {
    rtws_http m;
    size_t off = 0;
    if (f->role == RTWS_SERVER) {
        const rtws_str *acc;
        FUZZ_CHECK(rtws_http_parse_response((const char *)f->out, head, &m, 0, &off) == RTWS_OK);
        FUZZ_CHECK(m.minor == 1);
        if (m.status != 101) {
            FUZZ_CHECK(m.status >= 400 && m.status <= 599);
            f->phase = 2; /* a refusal: the body follows, then nothing */
            return;
        }
        acc = rtws_http_get_header(&m, "Sec-WebSocket-Accept");
        FUZZ_CHECK(acc != NULL && acc->len == 28);
        FUZZ_CHECK(rtws_http_has_token(&m, "Upgrade", "websocket"));
        FUZZ_CHECK(rtws_http_has_token(&m, "Connection", "Upgrade"));
        if (f->know_key) FUZZ_CHECK(memcmp(acc->p, f->expect_accept, 28) == 0);
    } else if (f->tunnel == 1) { /* the CONNECT, alone: the upgrade waits for the 2xx */
        const rtws_str *pa;
        FUZZ_CHECK(rtws_http_parse_request((const char *)f->out, head, &m, 0, &off) == RTWS_OK);
        FUZZ_CHECK(m.method.len == 7 && memcmp(m.method.p, "CONNECT", 7) == 0);
        FUZZ_CHECK(m.target.len == 22 && memcmp(m.target.p, "server.example.com:443", 22) == 0);
        pa = rtws_http_get_header(&m, "Proxy-Authorization");
        FUZZ_CHECK(pa && pa->len == 10 && memcmp(pa->p, "Basic dTpw", 10) == 0);
        FUZZ_CHECK(head == f->out_len); /* nothing behind it yet */
        f->tunnel = 2;
        return; /* phase stays 0: the upgrade request is the next head */
    } else {
        rtws_upgrade u;
        FUZZ_CHECK(rtws_http_parse_request((const char *)f->out, head, &m, 0, &off) == RTWS_OK);
        FUZZ_CHECK(rtws_http_check_upgrade(&m, &u) == 101);
        FUZZ_CHECK(!rtws_http_get_header(&m, "Proxy-Authorization"));
        FUZZ_CHECK(rtws_http_get_header(&m, "Host") != NULL);
    }
    f->phase = 1;
}

/* Parses output bytes as they come: the HTTP head, then frames. */
static void fz_parse_out(fz *f) {
    size_t off = 0;
    if (f->phase == 0) {
        size_t head = rtws_http_head_end((const char *)f->out, f->out_len, &f->head_scanned);
        if (!head) return;
        fz_check_head(f, head);
        off = head;
        if (f->phase == 0) { /* the proxy's CONNECT went out: then the upgrade's */
            memmove(f->out, f->out + off, f->out_len - off);
            f->out_len -= off;
            f->head_scanned = 0;
            fz_parse_out(f);
            return;
        }
    }
    while (f->phase == 1 && off < f->out_len) {
        rtws_frame_piece piece;
        size_t used = 0;
        rtws_err e;
        e = rtws_frame_parser_feed(&f->fp, f->out + off, f->out_len - off, &used, &piece);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_EAGAIN); /* rtws writes only valid frames */
        off += used;
        if (e == RTWS_EAGAIN) break;
        if (piece.frame_start) {
            FUZZ_CHECK(!f->close_out); /* nothing after a close frame */
            f->ctl_len = 0;
            if (piece.h->rsv) {
                /* RSV1: the parser allows it only with the extension
                   (rtws_frame_parser_set_rsv below), on a data message's first frame */
                FUZZ_CHECK(f->pmd && piece.h->rsv == 4);
                f->zmsg = (int)piece.h->opcode;
                f->zutf8 = 0;
                rtws_inflate_reset(&f->inf, f->pmd_takeover);
            }
        }
        if (piece.h->opcode >= 8) {
            memcpy(f->ctl + f->ctl_len, piece.data, piece.len);
            f->ctl_len += piece.len;
        } else if (f->zmsg) {
            static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
            int last = piece.frame_end && piece.h->fin, k;
            for (k = 0; k < 1 + last; k++) {
                const uint8_t *in = k ? tail : piece.data;
                size_t in_len = k ? 4 : piece.len;
                for (;;) {
                    static uint8_t tmp[4096];
                    size_t iu = 0, ol = 0;
                    rtws_z_err r = rtws_inflate_feed(&f->inf, in, in_len, &iu, tmp, sizeof tmp, &ol);
                    FUZZ_CHECK(r == RTWS_Z_OK || r == RTWS_Z_FULL); /* our streams never end */
                    if (f->zmsg == RTWS_OP_TEXT)
                        FUZZ_CHECK(rtws_utf8_validate(&f->zutf8, tmp, ol, NULL) == RTWS_OK);
                    in += iu;
                    in_len -= iu;
                    if (r == RTWS_Z_OK) break;
                }
            }
            if (last) {
                FUZZ_CHECK(f->zutf8 == 0);
                f->zmsg = 0;
            }
        }
        if (piece.frame_end && piece.h->opcode == RTWS_OP_PONG &&
            f->nping <= sizeof f->ping_hash / sizeof f->ping_hash[0]) {
            /* an answer to a ping not answered yet, in order: skipping is
               allowed (a flood), answering twice or out of order is not */
            uint32_t h = fz_hash(f->ctl, f->ctl_len);
            while (f->pong_next < f->nping && f->ping_hash[f->pong_next] != h) f->pong_next++;
            FUZZ_CHECK(f->pong_next < f->nping);
            f->pong_next++;
        }
        if (piece.frame_end && piece.h->opcode == RTWS_OP_CLOSE) {
            f->close_out = 1;
            FUZZ_CHECK(f->ctl_len != 1);
            if (f->ctl_len >= 2) {
                uint32_t st = 0;
                FUZZ_CHECK(rtws_close_code_valid((unsigned)f->ctl[0] << 8 | f->ctl[1]));
                FUZZ_CHECK(rtws_utf8_validate(&st, f->ctl + 2, f->ctl_len - 2, NULL) == RTWS_OK &&
                           st == 0);
            }
        }
    }
    if (f->phase == 2) off = f->out_len;
    memmove(f->out, f->out + off, f->out_len - off);
    f->out_len -= off;
    if (f->phase == 0) f->head_scanned = f->head_scanned > off ? f->head_scanned - off : 0;
}

/* The host's direct write, as a socket that takes a random part (or none). */
static fz *fz_cur;

/* The host's redirect hook: the Location resolved as the host would, then
   followed (the connection goes quiet), declined, or refused. */
static rtws_err fz_redirect(rtws_conn *c, int status, const char *loc, size_t len) {
    fz *f = fz_cur;
    char out[1024];
    size_t n = 0;
    rtws_err e;
    FUZZ_CHECK(c == &f->c && f->role == RTWS_CLIENT && !f->opened);
    FUZZ_CHECK(status == 301 || status == 302 || status == 307 || status == 308);
    FUZZ_CHECK(f->tunnel != 1); /* never the proxy's answer */
    f->redirects++;
    if (!loc) return RTWS_EAGAIN;
    e = rtws_url_resolve("wss://server.example.com/chat?x=1", loc, len, out, sizeof out, &n);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_URL || e == RTWS_ERR_NOSPACE);
    if (e != RTWS_OK) return RTWS_ERR_URL;
    {
        rtws_url u;
        FUZZ_CHECK(n == strlen(out) && n < sizeof out);
        FUZZ_CHECK(rtws_url_parse(out, n, &u, NULL) == RTWS_OK);
        FUZZ_CHECK(rtws__str_ieq(u.scheme, "ws") || rtws__str_ieq(u.scheme, "wss"));
        FUZZ_CHECK(memchr(out, '#', n) == NULL);
    }
    return f->redirect_mode == 0 ? RTWS_OK : f->redirect_mode == 1 ? RTWS_EAGAIN : RTWS_ERR_REDIRECTS;
}
static size_t fz_write(rtws_conn *c, const rtws_iov *iov, int n) {
    fz *f = fz_cur;
    size_t total = 0, take, k = 0;
    int i;
    FUZZ_CHECK(c == &f->c && n >= 1);
    FUZZ_CHECK(rtws_conn_out_pending(c) == 0); /* only with nothing ahead of it */
    for (i = 0; i < n; i++) total += iov[i].len;
    take = (fz_rand(f) & 1) ? total : fz_rand(f) % (total + 1);
    if (f->out_len + take > f->out_cap) {
        f->out_cap = (f->out_len + take) * 2;
        f->out = (uint8_t *)realloc(f->out, f->out_cap);
        FUZZ_CHECK(f->out != NULL);
    }
    for (i = 0; i < n && k < take; i++) {
        size_t m = iov[i].len < take - k ? iov[i].len : take - k;
        memcpy(f->out + f->out_len, iov[i].base, m);
        f->out_len += m;
        k += m;
    }
    fz_parse_out(f);
    return take;
}

/* Takes the output as a socket would, sometimes in part, and checks it. */
static void fz_drain(fz *f) {
    int rounds;
    for (rounds = 0; rounds < 64; rounds++) {
        size_t len = 0, take, before;
        const uint8_t *p = rtws_conn_out(&f->c, &len);
        if (!p) {
            FUZZ_CHECK(len == 0);
            break;
        }
        FUZZ_CHECK(len > 0);
        before = rtws_conn_out_pending(&f->c);
        FUZZ_CHECK(before >= len);
        take = (fz_rand(f) & 3) ? len : 1 + fz_rand(f) % len;
        if (f->out_len + take > f->out_cap) {
            f->out_cap = (f->out_len + take) * 2;
            f->out = (uint8_t *)realloc(f->out, f->out_cap);
            FUZZ_CHECK(f->out != NULL);
        }
        memcpy(f->out + f->out_len, p, take);
        f->out_len += take;
        rtws_conn_out_done(&f->c, take);
        FUZZ_CHECK(rtws_conn_out_pending(&f->c) == before - take);
        fz_parse_out(f);
    }
}

static void fz_after_call(fz *f) {
    const rtws_config *cfg = rtws_conn_get_config(&f->c);
    rtws_err e;
    fz_drain(f);
    FUZZ_CHECK(rtws_conn_out_pending(&f->c) <= cfg->max_send_queue + 4096);
    e = rtws_conn_get_error(&f->c);
    FUZZ_CHECK(fz_err_ok(e));
    if (f->sticky != RTWS_OK) FUZZ_CHECK(e == f->sticky);
    f->sticky = e;
    if (!f->freed && rtws_conn_out_pending(&f->c) > 0 && !(rtws_conn_want(&f->c) & RTWS_WANT_CLOSE))
        FUZZ_CHECK(rtws_conn_want(&f->c) & RTWS_WANT_WRITE);
    /* everything written and no close of ours: the latest ping was answered */
    if (!f->freed && f->phase == 1 && rtws_conn_out_pending(&f->c) == 0 &&
        rtws_conn_get_state(&f->c) == RTWS_STATE_OPEN && !f->c.priv_.close_sent &&
        f->nping <= sizeof f->ping_hash / sizeof f->ping_hash[0])
        FUZZ_CHECK(f->pong_next == f->nping);
}

static void fz_recv(fz *f, const uint8_t *p, size_t len) {
    size_t used = 12345;
    rtws_err e;
    if (fz_rand(f) & 1) {
        /* lent for the call only: freed right after, so ASan sees any
           pointer into it that the connection kept */
        uint8_t *lent = (uint8_t *)malloc(len ? len : 1);
        FUZZ_CHECK(lent != NULL);
        if (len) memcpy(lent, p, len);
        e = rtws_conn_recv_inplace(&f->c, lent, len, f->now);
        free(lent);
        used = e == RTWS_OK || e == RTWS_EAGAIN ? len : 0;
    } else {
        e = rtws_conn_recv(&f->c, p, len, f->now, &used);
    }
    FUZZ_CHECK(fz_err_ok(e));
    if (f->freed) {
        FUZZ_CHECK(e == RTWS_ERR_CLOSED);
    } else {
        FUZZ_CHECK(used <= len);
        FUZZ_CHECK(used == len || e != RTWS_OK);
        if (e != RTWS_OK && e != RTWS_EAGAIN) FUZZ_CHECK(e == rtws_conn_get_error(&f->c));
    }
    fz_after_call(f);
}

static void fz_tick(fz *f) {
    rtws_conn_run_timers(&f->c, f->now);
    fz_after_call(f);
}

static const char fz_request_fmt[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n";

static int fz_on_accept(rtws_conn *c, const rtws_http *req, const char **protocol, void *user) {
    fz *f = (fz *)user;
    FUZZ_CHECK(c == &f->c);
    if (rtws_http_has_token(req, "Sec-WebSocket-Protocol", "chat")) *protocol = "chat";
    if (req->path.len == 5 && memcmp(req->path.p, "/deny", 5) == 0) return 403;
    return 0;
}

static void fz_run(const uint8_t *d, size_t n, rtws_role role) {
    static fz f; /* rtws_conn is large; keep it off the stack */
    rtws__pool pool;
    rtws__conn_io io;
    rtws_config cfg;
    rtws_budget budget;
    uint32_t rnd_state = 0x2545F491u;
    uint8_t *stream;
    size_t slen = 0, off = 0, i;
    unsigned ms_per_call, msg_t;
    if (n < 4) return;
    memset(&f, 0, sizeof f);
    f.role = role;
    f.flags = d[0];
    f.rng = (uint32_t)d[1] << 8 | d[2] | 0x10000u;
    ms_per_call = (unsigned)d[3] * 64u;
    msg_t = d[1];
    f.now = 1000;
    d += 4;
    n -= 4;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.on_event = fz_event;
    cfg.user = &f;
    cfg.random = fz_random;
    cfg.random_user = &rnd_state;
    cfg.stream = (f.flags & FZ_STREAM) != 0;
    cfg.heartbeat_off = !(f.flags & FZ_HB);
    if (msg_t & 1) cfg.message_timeout_ms = 64u * (1u + (msg_t >> 1));
    rtws_budget_init(&budget, (msg_t & 2) ? 2048u + ((size_t)d[-2] << 6) : 0);
    cfg.budget = &budget;
    if (role == RTWS_SERVER) cfg.on_accept = fz_on_accept;
    cfg.deflate_threshold = 1;
    if (d[-2] & 128) cfg.deflate_window_bits = 9;
    if (role == RTWS_SERVER && (d[-2] & 4)) cfg.deflate_takeover = 1;
    if (f.flags & FZ_SMALL) {
        cfg.max_frame = 300;
        cfg.max_message = 1000;
        cfg.max_fragments = 8;
        cfg.max_handshake = 600;
        cfg.max_headers = 12;
        cfg.max_send_queue = 2048;
    }
    rtws_conn_init(&f.c, &cfg);
    memset(&pool, 0, sizeof pool);
    memset(&io, 0, sizeof io);
    fz_cur = &f;
    if (role == RTWS_CLIENT && (d[-2] & 8)) { /* byte 2, bit 3: a redirect hook */
        io.redirect = fz_redirect;
        f.redirect_mode = (d[-2] >> 4) & 3;
        f.c.priv_.io_ = &io;
    }
    if (d[-2] & 1) { /* byte 2, bit 0: a host's pool and direct writes */
        pool.alloc = cfg.allocator;
        pool.budget = (d[-2] & 2) ? 4096 : 1 << 20;
        io.pool = &pool;
        io.write = fz_write;
        fz_cur = &f;
        f.c.priv_.io_ = &io;
    }
    rtws_frame_parser_init(&f.fp, role == RTWS_SERVER ? RTWS_CLIENT : RTWS_SERVER, 0);
    stream = (uint8_t *)malloc(n + 1024);
    FUZZ_CHECK(stream != NULL);
    if (role == RTWS_CLIENT) {
        rtws_client_opts o;
        memset(&o, 0, sizeof o);
        o.host = "server.example.com";
        o.path = "/chat?x=1";
        o.protocols = (f.flags & FZ_PROTO) ? "chat, superchat" : NULL;
        o.origin = "http://example.com";
        if (d[-2] & 4) { /* byte 2, bit 2: through a proxy */
            o.tunnel = "server.example.com:443";
            o.proxy_authorization = "Basic dTpw";
            f.tunnel = 1;
        }
        FUZZ_CHECK(rtws_conn_start(&f.c, &o, f.now) == RTWS_OK);
        fz_after_call(&f);
        /* the whole request was written and checked (behind a proxy: the
           CONNECT alone) */
        FUZZ_CHECK(f.tunnel ? f.phase == 0 && f.tunnel == 2 : f.phase == 1);
        if (f.tunnel && (f.flags & FZ_HANDSHAKE))
            slen = (size_t)sprintf((char *)stream, "HTTP/1.1 200 Connection established\r\n\r\n");
        if (f.flags & FZ_HANDSHAKE) {
            /* answer with the accept computed from the key the client sent:
               the deterministic random source gives it again */
            uint32_t again = 0x2545F491u;
            uint8_t raw[16];
            char key[25], acc[29];
            fz_random(raw, 16, &again);
            rtws_base64_encode(raw, 16, key, sizeof key);
            rtws_upgrade_accept_key(key, 24, acc);
            slen += (size_t)sprintf((char *)stream + slen,
                                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s\r\n",
                                   acc,
                                   (f.flags & FZ_PROTO) ? "Sec-WebSocket-Protocol: chat\r\n" : "",
                                   !(d[-2] & 64) ? ""
                                   : (d[-2] & 128) ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                                     "server_no_context_takeover; "
                                                     "client_no_context_takeover; "
                                                     "server_max_window_bits=9; "
                                                     "client_max_window_bits=9\r\n"
                                                   : "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        }
    } else if (f.flags & FZ_HANDSHAKE) {
        slen = (size_t)sprintf((char *)stream, "%s%s%s\r\n", fz_request_fmt,
                               (f.flags & FZ_PROTO) ? "Sec-WebSocket-Protocol: x, chat\r\n" : "",
                               !(d[-2] & 64) ? ""
                               : (d[-2] & 128) ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "server_no_context_takeover; "
                                                 "client_no_context_takeover; "
                                                 "server_max_window_bits=9; "
                                                 "client_max_window_bits=9\r\n"
                                               : "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "client_max_window_bits\r\n");
        rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, f.expect_accept);
        f.know_key = 1;
    }
    if (n) memcpy(stream + slen, d, n);
    slen += n;
    while (off < slen) {
        size_t chunk = 1 + fz_rand(&f) % ((fz_rand(&f) & 1) ? 7 : 300);
        if (chunk > slen - off) chunk = slen - off;
        fz_recv(&f, stream + off, chunk);
        off += chunk;
        f.now += ms_per_call;
        if (fz_rand(&f) % 4 == 0) fz_tick(&f);
    }
    /* let every timer fire: heartbeat, pong timeout, close timeout */
    for (i = 0; i < 6; i++) {
        uint64_t dl = rtws_conn_get_deadline(&f.c);
        if (dl != UINT64_MAX && dl > f.now) f.now = dl;
        else f.now += 30000;
        fz_tick(&f);
    }
    rtws_conn_recv_eof(&f.c, f.now);
    fz_after_call(&f);
    FUZZ_CHECK(f.freed || rtws_conn_get_state(&f.c) == RTWS_STATE_CLOSED);
    FUZZ_CHECK(rtws_conn_want(&f.c) == (f.freed ? 0u : (unsigned)RTWS_WANT_CLOSE));
    rtws_conn_free(&f.c);
    FUZZ_CHECK(budget.used == 0); /* every charge given back */
    FUZZ_CHECK(!budget.limit || budget.peak <= budget.limit + 1024 + RTWS__PONGQ_BYTES);
    if (f.pmd) rtws_inflate_free(&f.inf);
    FUZZ_CHECK(pool.bytes <= pool.budget);
    rtws__pool_trim(&pool);
    free(stream);
    free(f.out);
}

#endif
