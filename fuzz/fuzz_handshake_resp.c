/* fuzz/fuzz_handshake_resp.c - the client side of the opening handshake.
   byte 0: chunk size for rtws_http_head_end (0: 1 byte per call)
   byte 1: max_headers passed to the parser (mod 66: 0 means the default)
   rest:   bytes from the server
   The head found incrementally goes (in an exact-size copy, so ASan sees
   over-reads) through rtws_http_parse_response; every rtws_str returned must
   lie inside that copy and the status line must be what was sent. */
#include "fuzz_http_head.h"

static void check_response(const rtws_http *res, const char *buf, size_t len, size_t max_headers) {
    size_t i;
    FUZZ_CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && res->minor == buf[7] - '0');
    FUZZ_CHECK(buf[8] == ' ');
    FUZZ_CHECK(res->status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
    FUZZ_CHECK(inside(res->reason, buf, len));
    for (i = 0; i < res->reason.len; i++) {
        unsigned char ch = (unsigned char)res->reason.p[i];
        FUZZ_CHECK(ch == '\t' || (ch >= 0x20 && ch != 0x7F));
    }
    FUZZ_CHECK(res->method.len == 0 && res->target.len == 0 && res->path.len == 0);
    check_headers(res, buf, len, max_headers);
    if (res->status == 101 && rtws_http_get_header(res, "Sec-WebSocket-Accept")) {
        /* what a client does next: compare with the accept value it expects */
        char acc[29];
        const rtws_str *v = rtws_http_get_header(res, "sec-websocket-accept");
        rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
        FUZZ_CHECK(v != NULL && inside(*v, buf, len));
        if (v->len == 28 && memcmp(v->p, acc, 28) == 0)
            FUZZ_CHECK(memcmp(v->p, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    return fuzz_http_head_run(d, n, rtws_http_parse_response, check_response);
}
