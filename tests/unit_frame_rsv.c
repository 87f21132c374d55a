/* tests/unit_frame_rsv.c - one frame parser: rtws_frame_parser_set_rsv (the
   RSV bits an extension allows on a data message's first frame), and a
   server rtws_conn against rtws_frame_parser on the same generated frame
   sequences, with and without permessage-deflate: every frame the parser
   refuses, the connection closes with the matching code (1002 for
   RTWS_ERR_PROTOCOL, 1009 for RTWS_ERR_TOO_BIG), and it never closes with
   either code on a frame the parser accepts. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

/* Feeds wire[0..n) whole, then again one byte per call; both must end the
   same way. Returns the last result; *frames counts frame_end pieces, *rsv
   the RSV bits of the first frame. */
static rtws_err parse(rtws_role role, uint64_t max_frame, unsigned rsv_first, const uint8_t *wire,
                      size_t n, size_t *frames, unsigned *rsv) {
    rtws_err res[2];
    size_t cnt[2];
    int pass;
    for (pass = 0; pass < 2; pass++) {
        rtws_frame_parser p;
        uint8_t buf[512];
        size_t off = 0;
        rtws_err e = RTWS_EAGAIN;
        memcpy(buf, wire, n);
        rtws_frame_parser_init(&p, role, max_frame);
        if (rsv_first) rtws_frame_parser_set_rsv(&p, rsv_first);
        cnt[pass] = 0;
        while (off < n) {
            rtws_frame_piece piece;
            size_t used = 0, len = pass ? 1 : n - off;
            e = rtws_frame_parser_feed(&p, buf + off, len, &used, &piece);
            off += used;
            if (e != RTWS_OK && e != RTWS_EAGAIN) break;
            if (e == RTWS_OK && piece.frame_start && cnt[pass] == 0 && rsv) *rsv = piece.h->rsv;
            if (e == RTWS_OK && piece.frame_end) cnt[pass]++;
        }
        res[pass] = e;
    }
    CHECK_EQ(res[0], res[1]);
    CHECK_EQ(cnt[0], cnt[1]);
    if (frames) *frames = cnt[0];
    return res[0];
}

static size_t frame(uint8_t *out, unsigned b0, uint64_t len, int masked) {
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t n = rtws_frame_header_encode(out, 0, RTWS_OP_CONT, len, masked ? key : NULL);
    out[0] = (uint8_t)b0;
    memset(out + n, 0, (size_t)len);
    if (masked) rtws_frame_mask(out + n, (size_t)len, key, 0);
    return n + (size_t)len;
}

static void test_set_rsv(void) {
    uint8_t w[256];
    size_t n, frames;
    unsigned rsv = 99;
    /* without an extension any RSV bit is refused */
    n = frame(w, 0xC1, 3, 0); /* FIN RSV1 text */
    CHECK_EQ(parse(RTWS_CLIENT, 0, 0, w, n, &frames, NULL), RTWS_ERR_PROTOCOL);
    /* RSV1 allowed: on a first frame, reported in piece.h->rsv */
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, &frames, &rsv), RTWS_OK);
    CHECK_EQ(frames, 1);
    CHECK_EQ(rsv, 4);
    n = frame(w, 0xC2, 0, 1); /* FIN RSV1 binary, masked, empty */
    CHECK_EQ(parse(RTWS_SERVER, 0, 4, w, n, &frames, NULL), RTWS_OK);
    CHECK_EQ(frames, 1);
    /* only the bits allowed: RSV2, RSV3, RSV1|RSV2 are refused */
    n = frame(w, 0xA1, 3, 0);
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, NULL, NULL), RTWS_ERR_PROTOCOL);
    n = frame(w, 0x91, 3, 0);
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, NULL, NULL), RTWS_ERR_PROTOCOL);
    n = frame(w, 0xE1, 3, 0);
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, NULL, NULL), RTWS_ERR_PROTOCOL);
    CHECK_EQ(parse(RTWS_CLIENT, 0, 6, w, n, NULL, NULL), RTWS_OK);
    /* not on a continuation or a control frame */
    n = frame(w, 0x41, 3, 0);          /* RSV1 text, not final */
    n += frame(w + n, 0xC0, 2, 0);     /* RSV1 continuation */
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, &frames, NULL), RTWS_ERR_PROTOCOL);
    CHECK_EQ(frames, 1);
    n = frame(w, 0xC9, 1, 0); /* RSV1 ping */
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, NULL, NULL), RTWS_ERR_PROTOCOL);
    /* a fragmented compressed message with a ping between its frames */
    n = frame(w, 0x41, 3, 0);
    n += frame(w + n, 0x89, 1, 0);
    n += frame(w + n, 0x80, 2, 0);
    CHECK_EQ(parse(RTWS_CLIENT, 0, 4, w, n, &frames, NULL), RTWS_OK);
    CHECK_EQ(frames, 3);
    /* the rules still hold with RSV1 set: too big, unmasked to a server */
    n = frame(w, 0xC2, 11, 0);
    CHECK_EQ(parse(RTWS_CLIENT, 10, 4, w, n, NULL, NULL), RTWS_ERR_TOO_BIG);
    CHECK_EQ(parse(RTWS_SERVER, 0, 4, w, n, NULL, NULL), RTWS_ERR_PROTOCOL);
}

/* ---- rtws_conn against rtws_frame_parser --------------------------------- */

typedef struct sink {
    int errors;
} sink;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c;
    if (ev->type == RTWS_EV_ERROR) ((sink *)user)->errors++;
}

#define MAX_FRAME 150

static void conn_open(rtws_conn *c, sink *s, int pmd) {
    char req[512];
    rtws_config cfg;
    const uint8_t *out;
    size_t len;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.user = s;
    cfg.heartbeat_off = 1;
    cfg.max_frame = MAX_FRAME;
    cfg.max_message = 1 << 20;
    rtws_conn_init(c, &cfg);
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             pmd ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
    rtws_conn_recv(c, req, strlen(req), 1, NULL);
    while ((out = rtws_conn_out(c, &len)) != NULL) rtws_conn_out_done(c, len);
    CHECK_EQ(rtws_conn_get_state(c), RTWS_STATE_OPEN);
    CHECK_EQ(rtws_conn_get_deflate(c, NULL), pmd);
}

/* The close code in the frames c wrote since the last call, 0 when none. */
static unsigned conn_close_code(rtws_conn *c, rtws_frame_parser *fp) {
    const uint8_t *out;
    size_t len;
    unsigned code = 0;
    while ((out = rtws_conn_out(c, &len)) != NULL) {
        uint8_t buf[1024];
        size_t off = 0, n = len < sizeof buf ? len : sizeof buf;
        memcpy(buf, out, n);
        while (off < n) {
            rtws_frame_piece piece;
            size_t used = 0;
            rtws_err e = rtws_frame_parser_feed(fp, buf + off, n - off, &used, &piece);
            off += used;
            CHECK(e == RTWS_OK || e == RTWS_EAGAIN);
            if (e != RTWS_OK) break;
            if (piece.h->opcode == RTWS_OP_CLOSE && piece.frame_start && piece.len >= 2)
                code = (unsigned)piece.data[0] << 8 | piece.data[1];
        }
        rtws_conn_out_done(c, n);
    }
    return code;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static unsigned rnd(unsigned n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static void test_conn_agrees(void) {
    static const uint64_t lens[] = {0, 1, 5, 125, 126, 140, 151, 200};
    int pmd, seq, refused[2] = {0, 0}, too_big = 0, accepted = 0;
    for (pmd = 0; pmd < 2; pmd++) {
        for (seq = 0; seq < 1500; seq++) {
            rtws_conn c;
            sink s;
            rtws_frame_parser fp, out;
            int nf = 1 + (int)rnd(4), i, done = 0;
            memset(&s, 0, sizeof s);
            conn_open(&c, &s, pmd);
            rtws_frame_parser_init(&fp, RTWS_SERVER, MAX_FRAME);
            if (pmd) rtws_frame_parser_set_rsv(&fp, 4);
            rtws_frame_parser_init(&out, RTWS_CLIENT, 0);
            for (i = 0; i < nf && !done; i++) {
                uint8_t w[256], copy[256];
                /* any first byte except a close (its payload has rules of its own);
                   RSV bits and FIN often, reserved opcodes sometimes */
                unsigned op = rnd(4) ? rnd(3) : rnd(16), b0;
                size_t n, off = 0, used = 0;
                rtws_err pe = RTWS_EAGAIN;
                unsigned code;
                if (op == RTWS_OP_CLOSE) op = RTWS_OP_PING;
                if (op < 3 && rnd(3) == 0) op = RTWS_OP_PING + rnd(2);
                b0 = (rnd(3) ? 0x80u : 0u) | (rnd(3) ? 0u : (rnd(2) ? 0x40u : rnd(8) << 4)) | op;
                n = frame(w, b0, lens[rnd(8)], rnd(12) != 0);
                memcpy(copy, w, n);
                while (off < n) {
                    rtws_frame_piece piece;
                    pe = rtws_frame_parser_feed(&fp, copy + off, n - off, &used, &piece);
                    off += used;
                    if (pe != RTWS_OK) break;
                }
                rtws_conn_recv(&c, w, n, 2, NULL);
                code = conn_close_code(&c, &out);
                if (pe == RTWS_ERR_PROTOCOL || pe == RTWS_ERR_TOO_BIG) {
                    unsigned want = pe == RTWS_ERR_PROTOCOL ? 1002u : 1009u;
                    CHECK_EQ(code, want);
                    if (code != want)
                        fprintf(stderr, "  pmd %d seq %d frame %d b0 %02x len %zu\n", pmd, seq, i, b0, n);
                    refused[pmd]++;
                    too_big += pe == RTWS_ERR_TOO_BIG;
                    done = 1;
                } else {
                    /* accepted: a close, if any, is for the payload (a
                       compressed message that does not inflate: 1007) */
                    CHECK(code != 1002 && code != 1009);
                    if (code == 1002 || code == 1009)
                        fprintf(stderr, "  pmd %d seq %d frame %d b0 %02x len %zu code %u\n", pmd, seq, i,
                                b0, n, code);
                    accepted++;
                    if (code) done = 1;
                }
            }
            rtws_conn_free(&c);
        }
    }
    /* the generator reaches every outcome */
    printf("refused %d (no extension) %d (permessage-deflate), %d of them too big; accepted %d\n",
           refused[0], refused[1], too_big, accepted);
    CHECK(refused[0] > 100 && refused[1] > 100 && too_big > 20 && accepted > 500);
}

int main(void) {
    test_set_rsv();
    test_conn_agrees();
    return T_END();
}
