/* pmd_rtws - rtws's side of tests/interop_pmd.sh: permessage-deflate with a
   third-party peer.
   usage: pmd_rtws server [--host H] [--port P] [OPTIONS]
          pmd_rtws URL [OPTIONS]
     server      echo every message; print "agreed: ..." per connection
     URL         connect, send text and binary messages of 0 B to 1 MiB, check
                 every echo, print "agreed: ..." and "N passed, M failed"
     --own-nt    deflate_own_no_takeover      --peer-nt   deflate_peer_no_takeover
     --takeover  deflate_takeover (server: keep windows when the client agrees)
     --bits N    deflate_window_bits          --peer-bits N  deflate_peer_window_bits
     --expect S  client: fail unless the agreement printed is S
     --help      print this and exit
   Servers print "listening on H:P" once ready. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed, done_;
static size_t cur;
static const size_t sizes[] = {0, 100, 5000, 70000, 1 << 20};
static unsigned char *msg;
static const char *expect;

static void agreed(rtws_conn *c, char *out, size_t cap) {
    rtws_pmd_offer a;
    if (!rtws_conn_get_deflate(c, &a)) {
        snprintf(out, cap, "none");
        return;
    }
    snprintf(out, cap, "snt=%d cnt=%d sbits=%d cbits=%d", a.server_no_context_takeover,
             a.client_no_context_takeover, a.server_max_window_bits, a.client_max_window_bits);
}

static void fill(size_t n, unsigned k) {
    size_t i = 0;
    while (i < n) {
        char t[80];
        size_t l = (size_t)snprintf(t, sizeof t, "{\"type\":\"message\",\"seq\":%u,\"text\":\"hi\"},", k++);
        if (l > n - i) l = n - i;
        memcpy(msg + i, t, l);
        i += l;
    }
}

static void send_cur(rtws_conn *c) {
    size_t n = sizes[cur / 2];
    fill(n, (unsigned)cur);
    rtws_conn_send(c, cur % 2 ? RTWS_OP_BINARY : RTWS_OP_TEXT, msg, n);
}

static void on_client(rtws_conn *c, const rtws_event *ev, void *user) {
    char a[128];
    (void)user;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        agreed(c, a, sizeof a);
        printf("agreed: %s\n", a);
        if (expect && strcmp(a, expect) != 0) {
            printf("FAILED: expected agreement %s\n", expect);
            failed++;
        }
        send_cur(c);
        break;
    case RTWS_EV_MESSAGE: {
        size_t n = sizes[cur / 2];
        if (ev->message.len == n && !memcmp(ev->message.data, msg, n) &&
            ev->message.opcode == (cur % 2 ? RTWS_OP_BINARY : RTWS_OP_TEXT))
            passed++;
        else {
            printf("FAILED: echo of %zu bytes\n", n);
            failed++;
        }
        if (++cur < 2 * sizeof sizes / sizeof sizes[0]) send_cur(c);
        else rtws_conn_close(c, 1000, NULL);
        break;
    }
    case RTWS_EV_ERROR: printf("error: %s (status %d)\n", rtws_err_str(ev->error.err), ev->error.status); break;
    case RTWS_EV_CLOSE: done_ = 1; break;
    default: break;
    }
}

static void on_server(rtws_conn *c, const rtws_event *ev, void *user) {
    char a[128];
    (void)user;
    if (ev->type == RTWS_EV_OPEN) {
        agreed(c, a, sizeof a);
        printf("agreed: %s\n", a);
        fflush(stdout);
    } else if (ev->type == RTWS_EV_MESSAGE) {
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
    }
}

int main(int argc, char **argv) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    const char *host = "127.0.0.1", *url = NULL;
    int i, port = 0, server = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.heartbeat_off = 1;
    cfg.conn.deflate_threshold = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: pmd_rtws server [--host H] [--port P] [OPTIONS] | pmd_rtws URL [OPTIONS]\n"
                   "  --own-nt --peer-nt --bits N --peer-bits N --expect AGREEMENT\n");
            return 0;
        } else if (!strcmp(argv[i], "server")) server = 1;
        else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--own-nt")) cfg.conn.deflate_own_no_takeover = 1;
        else if (!strcmp(argv[i], "--peer-nt")) cfg.conn.deflate_peer_no_takeover = 1;
        else if (!strcmp(argv[i], "--takeover")) cfg.conn.deflate_takeover = 1;
        else if (!strcmp(argv[i], "--bits") && i + 1 < argc) cfg.conn.deflate_window_bits = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peer-bits") && i + 1 < argc) cfg.conn.deflate_peer_window_bits = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = argv[++i];
        else url = argv[i];
    }
    msg = (unsigned char *)malloc(1 << 20);
    cfg.conn.on_event = server ? on_server : on_client;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || !msg) return 1;
    if (server) {
        if (rtws_ctx_listen(ctx, host, port, &port) != RTWS_OK) return 1;
        printf("listening on %s:%d\n", host, port);
        fflush(stdout);
        for (;;) rtws_ctx_run_once(ctx, 1000);
    }
    if (!url || !rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), NULL)) return 2;
    {
        uint64_t until = rtws_time_now_ms() + 30000;
        while (!done_ && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 100);
    }
    if (cur != 2 * sizeof sizes / sizeof sizes[0]) failed++;
    printf("%d passed, %d failed\n", passed, failed);
    rtws_ctx_free(ctx);
    free(msg);
    return failed ? 1 : 0;
}
