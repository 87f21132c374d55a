/* fuzz/fuzz_pmd_parse.c - layer 1 deflate: rtws_pmd_parse, RFC 7692 §7
   parameters in a Sec-WebSocket-Extensions value. Byte 0: offer (even) or
   response (odd); the rest is the value, put at the end of a heap block of
   its own size so an over-read trips ASan. Checks: only documented results,
   the error offset inside the input, every offer's fields in range, and the
   count independent of the room for offers. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    rtws_pmd_offer o[4];
    size_t count = 0, count0 = 99, off = (size_t)-1, k;
    char *v;
    rtws_err e;
    if (n < 1) return 0;
    v = (char *)malloc(n - 1 ? n - 1 : 1);
    memcpy(v, d + 1, n - 1);
    e = rtws_pmd_parse(v, n - 1, d[0] & 1, o, 4, &count, &off);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_SYNTAX);
    if (e == RTWS_ERR_SYNTAX) {
        FUZZ_CHECK(off <= n - 1 && count == 0);
    } else {
        for (k = 0; k < count && k < 4; k++) {
            FUZZ_CHECK(o[k].status <= RTWS_PMD_DUPLICATE);
            FUZZ_CHECK(o[k].server_no_context_takeover <= 1 && o[k].client_no_context_takeover <= 1);
            FUZZ_CHECK(o[k].server_max_window_bits == 0 || o[k].server_max_window_bits == 1 ||
                       (o[k].server_max_window_bits >= 8 && o[k].server_max_window_bits <= 15));
            FUZZ_CHECK(o[k].client_max_window_bits == 0 || o[k].client_max_window_bits == 1 ||
                       (o[k].client_max_window_bits >= 8 && o[k].client_max_window_bits <= 15));
            /* a value-less server_max_window_bits never passes */
            if (o[k].status == RTWS_PMD_OK) FUZZ_CHECK(o[k].server_max_window_bits != 1);
        }
    }
    FUZZ_CHECK(rtws_pmd_parse(v, n - 1, d[0] & 1, NULL, 0, &count0, NULL) == e && count0 == count);
    free(v);
    return 0;
}
