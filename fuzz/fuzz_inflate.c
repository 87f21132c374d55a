/* fuzz/fuzz_inflate.c - layer 1 deflate: rtws_inflate_feed on arbitrary bytes.
   Byte 0: window bits (8 + low 3 bits) and the output limit (high bits);
   byte 1: input chunk size; byte 2: output chunk size; the rest is the
   stream. The input is inflated twice, whole into one buffer and in the
   chunks into small buffers: both must give the same bytes and the same
   outcome, and neither may claim input it was not given, write past its
   buffer, pass the limit or return an undocumented status. */
#include "fuzz.h"

static int known(rtws_z_err e) { return e >= RTWS_Z_ERR_LIMIT && e <= RTWS_Z_END; }

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static const uint64_t limits[4] = {1u << 18, 1000, 1, 65536};
    static uint8_t whole[(1u << 18) + 1], part[1u << 18];
    rtws_inflate a, b;
    rtws_z_config c;
    size_t in_step, out_step, used, olen, off = 0, got = 0, whole_len, whole_used;
    rtws_z_err ew, e = RTWS_Z_OK;
    if (n < 3) return 0;
    memset(&c, 0, sizeof c);
    c.window_bits = 8u + (d[0] & 7u);
    c.max_output = limits[(d[0] >> 3) & 3];
    in_step = d[1] ? d[1] : n;
    out_step = (size_t)d[2] + 1;
    d += 3;
    n -= 3;
    FUZZ_CHECK(rtws_inflate_init(&a, &c, NULL, 0) == RTWS_Z_OK);
    FUZZ_CHECK(rtws_inflate_init(&b, &c, NULL, 0) == RTWS_Z_OK);
    /* whole: the buffer holds the limit and one byte more */
    ew = rtws_inflate_feed(&a, d, n, &whole_used, whole, (size_t)c.max_output + 1, &whole_len);
    FUZZ_CHECK(known(ew) && ew != RTWS_Z_FULL);
    FUZZ_CHECK(whole_used <= n && whole_len <= c.max_output);
    FUZZ_CHECK(ew == RTWS_Z_END || ew < 0 || whole_used == n);
    /* in chunks */
    while (off <= n) {
        size_t len = RTWS__MIN(in_step, n - off);
        e = rtws_inflate_feed(&b, d + off, len, &used, part + got,
                              RTWS__MIN(out_step, sizeof part - got), &olen);
        FUZZ_CHECK(known(e));
        FUZZ_CHECK(used <= len && olen <= out_step);
        FUZZ_CHECK(memcmp(part + got, whole + got, olen) == 0);
        off += used;
        got += olen;
        FUZZ_CHECK(got <= c.max_output);
        if (e == RTWS_Z_END || e < 0) break;
        if (e == RTWS_Z_OK && off == n) break;
        FUZZ_CHECK(e == RTWS_Z_FULL || used == len);
    }
    FUZZ_CHECK(e == ew);
    FUZZ_CHECK(got == whole_len);
    if (e == RTWS_Z_END) FUZZ_CHECK(off == whole_used);
    /* errors and the end are sticky */
    if (e < 0 || e == RTWS_Z_END) FUZZ_CHECK(rtws_inflate_feed(&b, d, n, &used, part, 16, &olen) == e);
    rtws_inflate_free(&a);
    rtws_inflate_free(&b);
    return 0;
}
