/* fuzz/fuzz_deflate_roundtrip.c - layer 1 deflate: compress, then inflate,
   gives the input back, for every level and window size. Byte 0: level
   (1 + %9) and context takeover (bit 7); byte 1: window bits (8 + low 3
   bits); byte 2: input and output chunk sizes; byte 3: message size (0: the
   whole input as one stream ended with RTWS_Z_FINISH). The rest is the data,
   cut into messages that are each sync-flushed, sent without their 00 00 ff
   ff tail and inflated with the tail put back, as permessage-deflate does. */
#include "fuzz.h"

static uint8_t comp[(1u << 17) + 4096], plain[1u << 17];

/* Compresses src[0..n) with flush, in chunks; returns the output length. */
static size_t squeeze(rtws_deflate *z, const uint8_t *src, size_t n, size_t in_step,
                      size_t out_step, rtws_z_flush flush, rtws_z_err want) {
    size_t off = 0, out = 0, used, olen;
    rtws_z_err e;
    for (;;) {
        size_t len = RTWS__MIN(in_step, n - off);
        int last = off + len == n;
        e = rtws_deflate_compress(z, src + off, len, &used, comp + out,
                                  RTWS__MIN(out_step, sizeof comp - out), &olen,
                                  last ? flush : RTWS_Z_NO_FLUSH);
        FUZZ_CHECK(used <= len && olen <= out_step);
        off += used;
        out += olen;
        if (e == RTWS_Z_FULL) {
            FUZZ_CHECK(out < sizeof comp);
            continue;
        }
        FUZZ_CHECK(e == (last ? want : RTWS_Z_OK) && used == len);
        if (last) return out;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    rtws_deflate z;
    rtws_inflate in;
    rtws_z_config c;
    size_t in_step, out_step, msg, off = 0, clen, used, olen;
    int take;
    if (n < 4) return 0;
    memset(&c, 0, sizeof c);
    c.level = 1 + d[0] % 9;
    take = d[0] >> 7;
    c.window_bits = 8u + (d[1] & 7u);
    in_step = 1 + (size_t)(d[2] & 15) * 97;
    out_step = 1 + (size_t)(d[2] >> 4) * 61;
    msg = (size_t)d[3] * 13;
    d += 4;
    n -= 4;
    if (n > sizeof plain) n = sizeof plain;
    FUZZ_CHECK(rtws_deflate_init(&z, &c, NULL, 0) == RTWS_Z_OK);
    FUZZ_CHECK(rtws_inflate_init(&in, &c, NULL, 0) == RTWS_Z_OK);
    if (msg == 0) {
        clen = squeeze(&z, d, n, in_step, out_step, RTWS_Z_FINISH, RTWS_Z_END);
        FUZZ_CHECK(rtws_inflate_feed(&in, comp, clen, &used, plain, sizeof plain, &olen) ==
                   RTWS_Z_END);
        FUZZ_CHECK(used == clen && olen == n && memcmp(plain, d, n) == 0);
    } else {
        static const uint8_t tail[4] = {0, 0, 0xFF, 0xFF};
        do {
            size_t m = RTWS__MIN(msg, n - off), o2;
            clen = squeeze(&z, d + off, m, in_step, out_step, RTWS_Z_SYNC_FLUSH, RTWS_Z_OK);
            FUZZ_CHECK(clen >= 5 && memcmp(comp + clen - 4, tail, 4) == 0);
            rtws_inflate_reset(&in, take);
            FUZZ_CHECK(rtws_inflate_feed(&in, comp, clen - 4, &used, plain, sizeof plain, &olen) ==
                       RTWS_Z_OK);
            FUZZ_CHECK(used == clen - 4 && olen == m && memcmp(plain, d + off, m) == 0);
            FUZZ_CHECK(rtws_inflate_feed(&in, tail, 4, &used, plain, sizeof plain, &o2) ==
                       RTWS_Z_OK && o2 == 0);
            rtws_deflate_reset(&z, take);
            off += m;
        } while (off < n);
    }
    rtws_deflate_free(&z);
    rtws_inflate_free(&in);
    return 0;
}
