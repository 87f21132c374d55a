/* bench/tls_load.c - echo load over ws:// or wss:// with rtws's own client,
   for the TLS section of make bench: the same client, the same server
   program and the same scenario on both transports, so the difference is
   what TLS costs.

   usage: tls_load URL [--conns C] [--pipeline P] [--size S] [--binary]
                       [--warmup S] [--duration S] [--ca FILE] [--pid SERVER_PID]

   Every connection keeps P messages in flight; every echo is checked whole
   (opcode, length, a 16-digit sequence number at the front, then the fixed
   filler). Output: human lines, then one line starting "result " with
   key=value fields like bench/loadgen.c's echo mode. Built with
   -DRTWS_USE_BEARSSL ... -lbearssl. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include "proc_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lconn {
    rtws_conn *c;
    unsigned long long next_send, next_recv;
    int open, done;
} lconn;

static int o_pipeline = 16, o_binary;
static size_t o_size = 64;
static unsigned char *filler, *msg;
static unsigned long long msgs, bytes, errors;
static int n_open, n_done, stopping;

/* the first 16 bytes of message n: n in hex, most significant digit first */
static void seq_hex(unsigned long long n, char out[16]) {
    int i;
    for (i = 15; i >= 0; i--, n >>= 4) out[i] = "0123456789abcdef"[n & 15];
}

static void send_one(lconn *l) {
    char seq[16];
    seq_hex(l->next_send++, seq);
    memcpy(msg, seq, o_size < 16 ? o_size : 16);
    if (rtws_conn_send(l->c, o_binary ? RTWS_OP_BINARY : RTWS_OP_TEXT, msg, o_size) != RTWS_OK)
        errors++;
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    lconn *l = (lconn *)user;
    int i;
    (void)c;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        l->open = 1;
        n_open++;
        for (i = 0; i < o_pipeline; i++) send_one(l);
        break;
    case RTWS_EV_MESSAGE: {
        const rtws_message_event *m = &ev->message;
        char seq[16];
        size_t h = o_size < 16 ? o_size : 16;
        seq_hex(l->next_recv++, seq);
        if (m->opcode != (o_binary ? RTWS_OP_BINARY : RTWS_OP_TEXT) || m->len != o_size ||
            memcmp(m->data, seq, h) != 0 || memcmp(m->data + h, filler + h, o_size - h) != 0)
            errors++;
        msgs++;
        bytes += m->len;
        if (!stopping) send_one(l);
        else if (l->next_recv == l->next_send) rtws_conn_close(l->c, RTWS_CLOSE_NORMAL, NULL);
        break;
    }
    case RTWS_EV_ERROR:
        fprintf(stderr, "tls_load: %s (%s %d: %s)\n", rtws_err_str(ev->error.err),
                ev->error.err == RTWS_ERR_TLS ? "TLS" : "errno", ev->error.detail,
                ev->error.detail_text ? ev->error.detail_text : "-");
        errors++;
        break;
    case RTWS_EV_CLOSE:
        if (l->open) n_open--;
        l->open = 0;
        l->done = 1;
        n_done++;
        break;
    default: break;
    }
}

static void run_until(rtws_ctx *ctx, uint64_t until) {
    while (rtws_time_now_ms() < until && rtws_ctx_get_conn_count(ctx) > 0) rtws_ctx_run_once(ctx, 50);
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int o_conns = 10, i;
    double warm = 1, dur = 5;
    long pid = 0;
    rtws_ctx_config cfg;
    rtws_tls_client_config tls;
    rtws_ctx *ctx;
    lconn *ls;
    uint64_t t0;
    unsigned long long m0, b0;
    double s0, c0, secs, scpu, lcpu;
    memset(&tls, 0, sizeof tls);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--conns") && i + 1 < argc) o_conns = atoi(argv[++i]);
        else if (!strcmp(a, "--pipeline") && i + 1 < argc) o_pipeline = atoi(argv[++i]);
        else if (!strcmp(a, "--size") && i + 1 < argc) o_size = (size_t)atol(argv[++i]);
        else if (!strcmp(a, "--binary")) o_binary = 1;
        else if (!strcmp(a, "--warmup") && i + 1 < argc) warm = atof(argv[++i]);
        else if (!strcmp(a, "--duration") && i + 1 < argc) dur = atof(argv[++i]);
        else if (!strcmp(a, "--ca") && i + 1 < argc) tls.ca_file = argv[++i];
        else if (!strcmp(a, "--pid") && i + 1 < argc) pid = atol(argv[++i]);
        else if (a[0] != '-' && !url) url = a;
        else {
            fprintf(stderr, "usage: %s URL [--conns C] [--pipeline P] [--size S] [--binary] "
                            "[--warmup S] [--duration S] [--ca FILE] [--pid PID]\n", argv[0]);
            return 2;
        }
    }
    if (!url || o_conns < 1 || o_pipeline < 1 || dur <= 0) {
        fprintf(stderr, "tls_load: need a URL, --conns >= 1, --pipeline >= 1, --duration > 0\n");
        return 2;
    }
    filler = (unsigned char *)malloc(o_size + 1);
    msg = (unsigned char *)malloc(o_size + 1);
    ls = (lconn *)calloc((size_t)o_conns, sizeof *ls);
    if (!filler || !msg || !ls) return 1;
    for (i = 0; i < (int)o_size; i++) filler[i] = (unsigned char)('a' + i % 26);
    memcpy(msg, filler, o_size);
    memset(&cfg, 0, sizeof cfg);
    cfg.tls = &tls;
    cfg.conn.max_message = o_size + 64;
    /* the transports compared, not compression: echo_server would agree to
       permessage-deflate, and both ends would spend their time in it */
    cfg.conn.deflate_off = 1;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) return 1;
    for (i = 0; i < o_conns; i++) {
        rtws_err e;
        ls[i].c = rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), &e);
        if (!ls[i].c) {
            fprintf(stderr, "tls_load: %s: %s\n", url, rtws_err_str(e));
            return 1;
        }
        rtws_conn_set_handler(ls[i].c, on_event, &ls[i]);
    }
    t0 = rtws_time_now_ms();
    while (n_open + n_done < o_conns && rtws_time_now_ms() < t0 + 10000) rtws_ctx_run_once(ctx, 50);
    if (n_open < o_conns) {
        fprintf(stderr, "tls_load: only %d of %d connections opened\n", n_open, o_conns);
        return 1;
    }
    run_until(ctx, rtws_time_now_ms() + (uint64_t)(warm * 1000));
    m0 = msgs;
    b0 = bytes;
    s0 = cpu_s(pid);
    c0 = self_cpu_s();
    t0 = rtws_time_now_ms();
    run_until(ctx, t0 + (uint64_t)(dur * 1000));
    secs = (double)(rtws_time_now_ms() - t0) / 1000.0;
    scpu = s0 >= 0 ? (cpu_s(pid) - s0) / secs * 100.0 : -1;
    lcpu = (self_cpu_s() - c0) / secs * 100.0;
    m0 = msgs - m0;
    b0 = bytes - b0;
    stopping = 1; /* let the in-flight echoes come back, then close cleanly */
    for (i = 0; i < o_conns; i++)
        if (ls[i].open && ls[i].next_recv == ls[i].next_send)
            rtws_conn_close(ls[i].c, RTWS_CLOSE_NORMAL, NULL);
    run_until(ctx, rtws_time_now_ms() + 5000);
    for (i = 0; i < o_conns; i++)
        if (!ls[i].done || ls[i].next_recv != ls[i].next_send) errors++;
    printf("echo: %s %d conns x %d in flight, %zu B: %.0f msg/s, %.1f MB/s, server CPU %.0f%%, "
           "client CPU %.0f%%, errors %llu\n",
           url, o_conns, o_pipeline, o_size, (double)m0 / secs, (double)b0 / secs / 1e6, scpu, lcpu,
           errors);
    printf("result mode=echo conns=%d pipeline=%d size=%zu msgs_per_s=%.0f mb_per_s=%.3f msgs=%llu "
           "server_cpu_pct=%.1f server_us_per_msg=%.3f loadgen_cpu_pct=%.1f errors=%llu\n",
           o_conns, o_pipeline, o_size, (double)m0 / secs, (double)b0 / secs / 1e6, m0, scpu,
           m0 && scpu >= 0 ? scpu / 100.0 * secs * 1e6 / (double)m0 : 0.0, lcpu, errors);
    rtws_ctx_free(ctx);
    free(filler);
    free(msg);
    free(ls);
    return errors ? 1 : 0;
}
