/* Instructions a server rtws_conn spends receiving masked messages, counted
   by callgrind (repeatable where timings on a shared machine are not): the
   same recv_buf/recv_commit loop as bench_codec's conn-bin/conn-text, over
   about 1 MiB of frames fed 4 times. Only feed() is counted (callgrind
   --toggle-collect=feed), so building the frames does not weigh in.
     conn_instr SIZE bin|text      (built once per header by bench/conn_instr.sh)
   Prints the messages received and sizeof(rtws_conn). */
#define RTWS_IMPLEMENTATION
#include RTWS_HDR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static size_t msgs, bad;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c;
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE) msgs++;
    else if (ev->type == RTWS_EV_ERROR || ev->type == RTWS_EV_CLOSE) bad++;
}

static const char request[] = "GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void feed(rtws_conn *c, const uint8_t *wire, size_t n) {
    size_t off = 0;
    while (off < n) {
        size_t cap, k;
        uint8_t *buf = rtws_conn_recv_buf(c, 0, &cap);
        if (!buf || !cap) exit(1);
        k = n - off < cap ? n - off : cap;
        memcpy(buf, wire + off, k);
        off += k;
        rtws_conn_recv_commit(c, k, 1);
    }
}

int main(int argc, char **argv) {
    size_t len = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 16, i, j, off = 0, nframes;
    rtws_opcode op = argc > 2 && strcmp(argv[2], "text") == 0 ? RTWS_OP_TEXT : RTWS_OP_BINARY;
    uint8_t *wire;
    const uint8_t *out;
    size_t olen;
    rtws_config cfg;
    rtws_conn c;
    int r;
    if (len == 0) len = 16;
    nframes = ((size_t)1 << 20) / len;
    wire = (uint8_t *)malloc(nframes * (len + RTWS_FRAME_HEADER_MAX));
    if (!wire) return 1;
    for (i = 0; i < nframes; i++) {
        uint8_t key[4];
        uint64_t k = rng();
        size_t h;
        memcpy(key, &k, 4);
        h = rtws_frame_header_encode(wire + off, 1, op, len, key);
        for (j = 0; j < len; j++) wire[off + h + j] = (uint8_t)(' ' + (rng() % 95));
        rtws_frame_mask(wire + off + h, len, key, 0);
        off += h + len;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = on_event;
    cfg.heartbeat_off = 1;
    rtws_conn_init(&c, &cfg);
    rtws_conn_recv(&c, request, sizeof request - 1, 1, NULL);
    while ((out = rtws_conn_out(&c, &olen)) != NULL) rtws_conn_out_done(&c, olen);
    if (rtws_conn_get_state(&c) != RTWS_STATE_OPEN) return 1;
    for (r = 0; r < 4; r++) feed(&c, wire, off);
    printf("%zu messages, %zu bad, sizeof(rtws_conn) %zu\n", msgs, bad, sizeof(rtws_conn));
    rtws_conn_free(&c);
    free(wire);
    return msgs == 4 * nframes && !bad ? 0 : 1;
}
