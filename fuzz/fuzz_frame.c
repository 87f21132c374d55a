/* fuzz/fuzz_frame.c - rtws_frame_parser over an arbitrary byte stream.
   byte 0: bit 0 role (1 server, 0 client), bits 1-2 max_frame (none, 0, 125, 65536),
           bit 3 RSV1 allowed on a message's first frame (rtws_frame_parser_set_rsv(4),
           as with permessage-deflate)
   byte 1: chunk size (0: the whole stream at once)
   rest:   the stream
   The stream is parsed three ways (whole, in chunks, one byte per call) and
   the three runs must agree. Each frame's header must re-encode to the bytes
   it was read from, and each unmasked payload byte must equal the input byte
   XOR the key, counted from the start of the frame. */
#include "fuzz.h"

typedef struct run_result {
    rtws_err err;      /* last return value */
    size_t consumed;   /* input bytes consumed in total */
    size_t frames;     /* frames completed */
    uint64_t sum;      /* a checksum of every header field and payload byte, in order */
} run_result;

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
}

static run_result run(const uint8_t *orig, size_t n, rtws_role role, uint64_t max_frame,
                      unsigned rsv_first, size_t step) {
    run_result r;
    rtws_frame_parser p;
    uint8_t *buf = (uint8_t *)malloc(n ? n : 1);
    size_t off = 0, frame_pos = 0, frame_got = 0, hdr_len = 0;
    int in_frame = 0, in_message = 0;
    FUZZ_CHECK(buf != NULL);
    if (n) memcpy(buf, orig, n);
    memset(&r, 0, sizeof r);
    r.err = RTWS_EAGAIN;
    rtws_frame_parser_init(&p, role, max_frame);
    if (rsv_first) rtws_frame_parser_set_rsv(&p, rsv_first);
    while (off < n) {
        size_t len = n - off < step ? n - off : step, used = 12345;
        rtws_frame_piece piece;
        rtws_err e = rtws_frame_parser_feed(&p, buf + off, len, &used, &piece);
        r.err = e;
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_EAGAIN || e == RTWS_ERR_PROTOCOL ||
                   e == RTWS_ERR_TOO_BIG);
        FUZZ_CHECK(used <= len);
        if (e == RTWS_EAGAIN) FUZZ_CHECK(used == len); /* all input consumed */
        if (e == RTWS_OK) FUZZ_CHECK(used > 0);         /* progress */
        if (e != RTWS_OK && e != RTWS_EAGAIN) {
            /* sticky: a second call fails the same way and takes nothing */
            size_t used2 = 777;
            rtws_frame_piece p2;
            FUZZ_CHECK(rtws_frame_parser_feed(&p, buf + off + used, len - used, &used2, &p2) == e);
            FUZZ_CHECK(used2 == 0);
            off += used;
            break;
        }
        if (e == RTWS_OK) {
            const rtws_frame_header *h = piece.h;
            size_t i;
            FUZZ_CHECK(h != NULL);
            FUZZ_CHECK(piece.data >= buf + off && piece.data + piece.len <= buf + off + used);
            if (piece.frame_start) {
                uint8_t enc[RTWS_FRAME_HEADER_MAX];
                size_t el;
                FUZZ_CHECK(!in_frame);
                in_frame = 1;
                frame_got = 0;
                hdr_len = h->header_len;
                /* the header ends where the piece begins */
                frame_pos = (size_t)(piece.data - buf) - hdr_len;
                FUZZ_CHECK(hdr_len >= 2 && hdr_len <= RTWS_FRAME_HEADER_MAX);
                /* RSV bits only those allowed, only on a data message's first frame */
                FUZZ_CHECK(h->rsv == 0 || (h->rsv == (h->rsv & rsv_first) && !in_message &&
                                           (h->opcode == RTWS_OP_TEXT || h->opcode == RTWS_OP_BINARY)));
                FUZZ_CHECK(role == RTWS_SERVER ? h->masked == 1 : h->masked == 0);
                FUZZ_CHECK(h->fin <= 1);
                if (h->opcode >= 8) {
                    FUZZ_CHECK(h->opcode <= RTWS_OP_PONG && h->fin && h->len <= 125);
                } else {
                    FUZZ_CHECK(h->opcode <= RTWS_OP_BINARY);
                    FUZZ_CHECK(in_message ? h->opcode == RTWS_OP_CONT : h->opcode != RTWS_OP_CONT);
                    FUZZ_CHECK(!max_frame || h->len <= max_frame);
                    in_message = !h->fin;
                }
                el = rtws_frame_header_encode(enc, h->fin, (rtws_opcode)h->opcode, h->len,
                                              h->masked ? h->mask : NULL);
                FUZZ_CHECK(el == hdr_len);
                enc[0] = (uint8_t)(enc[0] | h->rsv << 4);
                FUZZ_CHECK(memcmp(enc, orig + frame_pos, el) == 0);
                r.sum = mix(r.sum, (uint64_t)h->rsv << 60 | (uint64_t)h->fin << 56 | (uint64_t)h->opcode << 48 |
                                       (uint64_t)h->masked << 40 | hdr_len);
                r.sum = mix(r.sum, h->len);
            } else {
                FUZZ_CHECK(in_frame);
            }
            for (i = 0; i < piece.len; i++) {
                size_t at = (size_t)(piece.data - buf) + i;
                uint8_t want = orig[at];
                if (h->masked) want ^= h->mask[(frame_got + i) & 3];
                FUZZ_CHECK(at == frame_pos + hdr_len + frame_got + i); /* contiguous */
                FUZZ_CHECK(piece.data[i] == want);
                r.sum = mix(r.sum, piece.data[i]);
            }
            frame_got += piece.len;
            FUZZ_CHECK(frame_got <= h->len);
            if (piece.frame_end) {
                FUZZ_CHECK(frame_got == h->len); /* payload total == header length */
                in_frame = 0;
                r.frames++;
            }
        } else {
            FUZZ_CHECK(piece.len == 0 && !piece.frame_start && !piece.frame_end);
        }
        off += used;
    }
    r.consumed = off;
    free(buf);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    rtws_role role;
    uint64_t max_frame;
    unsigned rsv_first;
    static const uint64_t caps[4] = {0, 0, 125, 65536};
    size_t step;
    run_result whole, chunked, bytes;
    if (n < 2) return 0;
    role = (d[0] & 1) ? RTWS_SERVER : RTWS_CLIENT;
    max_frame = caps[(d[0] >> 1) & 3];
    rsv_first = (d[0] & 8) ? 4u : 0u;
    step = d[1] ? d[1] : n;
    d += 2;
    n -= 2;
    whole = run(d, n, role, max_frame, rsv_first, n ? n : 1);
    chunked = run(d, n, role, max_frame, rsv_first, step);
    bytes = run(d, n, role, max_frame, rsv_first, 1);
    FUZZ_CHECK(whole.err == chunked.err && whole.err == bytes.err);
    FUZZ_CHECK(whole.consumed == chunked.consumed && whole.consumed == bytes.consumed);
    FUZZ_CHECK(whole.frames == chunked.frames && whole.frames == bytes.frames);
    FUZZ_CHECK(whole.sum == chunked.sum && whole.sum == bytes.sum);
    return 0;
}
