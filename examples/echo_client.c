/* echo_client - sends N messages of SIZE bytes, checks every echo, and
   prints round-trip times.

   usage: ./echo_client [URL] [-n N] [-s SIZE] [--binary] [--ca FILE] [--insecure]
                        [--proxy URL] [--proxy-env]
     URL          ws://host[:port]/path (default ws://127.0.0.1:9001/); wss:// URLs
                  need a build with -DRTWS_USE_BEARSSL ... -lbearssl (build/tls_echo_client)
     -n N         messages to send, one at a time (default 100)
     -s SIZE      bytes per message (default 64)
     --binary     send binary messages instead of text
     --ca FILE    trust anchors (PEM) instead of the system bundle
     --insecure   skip certificate verification (tests only)
     --proxy URL  through an HTTP proxy: http://[user:pass@]host[:port]
     --proxy-env  the proxy from http_proxy/https_proxy/all_proxy, minus no_proxy
     --help       print this and exit
   The URL may also come after the options. Exits 0 when every echo came back intact. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct state {
    rtws_conn *c;
    unsigned char *msg;
    size_t size;
    int n, sent, got, bad, binary, closed, opened;
    double *rtt;
    struct timespec t0;
} state;

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [URL] [-n N] [-s SIZE] [--binary] [--ca FILE] [--insecure]\n"
            "          [--proxy URL] [--proxy-env]\n"
            "Sends N messages of SIZE bytes, checks every echo, and prints round-trip times.\n"
            "  URL          ws://host[:port]/path (default ws://127.0.0.1:9001/); wss:// URLs\n"
            "               need a build with -DRTWS_USE_BEARSSL ... -lbearssl (build/tls_echo_client)\n"
            "  -n N         messages to send, one at a time (default 100)\n"
            "  -s SIZE      bytes per message (default 64)\n"
            "  --binary     send binary messages instead of text\n"
            "  --ca FILE    trust anchors (PEM) instead of the system bundle\n"
            "  --insecure   skip certificate verification (tests only)\n"
            "  --proxy URL  through an HTTP proxy: http://[user:pass@]host[:port]\n"
            "  --proxy-env  the proxy from http_proxy/https_proxy/all_proxy, minus no_proxy\n"
            "  --help       print this and exit\n"
            "The URL may also come after the options. Exits 0 when every echo came back intact.\n",
            argv0);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}
static double sent_at;

static void send_next(state *s) {
    size_t i;
    /* a different payload each time: a stale echo cannot pass */
    for (i = 0; i < s->size; i++) s->msg[i] = (unsigned char)('a' + (i + (size_t)s->sent) % 26);
    sent_at = now_us();
    if (rtws_conn_send(s->c, s->binary ? RTWS_OP_BINARY : RTWS_OP_TEXT, s->msg, s->size) != RTWS_OK)
        s->bad++;
    s->sent++;
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    state *s = (state *)user;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        s->opened = 1;
        s->c = c;
        send_next(s);
        break;
    case RTWS_EV_MESSAGE:
        s->rtt[s->got] = now_us() - sent_at;
        if (ev->message.len != s->size || memcmp(ev->message.data, s->msg, s->size) != 0 ||
            ev->message.opcode != (s->binary ? RTWS_OP_BINARY : RTWS_OP_TEXT))
            s->bad++;
        s->got++;
        if (s->sent < s->n) send_next(s);
        else rtws_conn_close(c, RTWS_CLOSE_NORMAL, NULL);
        break;
    case RTWS_EV_CLOSE: s->closed = 1; break;
    case RTWS_EV_ERROR:
        fprintf(stderr, "echo_client: %s (status %d)\n", rtws_err_str(ev->error.err),
                ev->error.status);
        if (ev->error.detail_text) /* errno or the TLS code, with its text */
            fprintf(stderr, "echo_client: %s %d: %s\n",
                    ev->error.err == RTWS_ERR_TLS ? "TLS error" : "errno", ev->error.detail,
                    ev->error.detail_text);
        if (!s->opened) s->closed = 1;
        break;
    default: break;
    }
}

static int bad_number(const char *opt, const char *v, long min, long max) {
    fprintf(stderr, "echo_client: %s wants a whole number from %ld to %ld, not \"%s\"\n", opt, min,
            max, v);
    return 2;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *url = "ws://127.0.0.1:9001/";
    state s;
    rtws_ctx_config cfg;
    rtws_tls_client_config tls;
    rtws_client_opts opts;
    rtws_ctx *ctx;
    rtws_err e;
    int i, url_given = 0;
    long v;
    uint64_t until;
    memset(&s, 0, sizeof s);
    s.n = 100;
    s.size = 64;
    memset(&tls, 0, sizeof tls);
    memset(&opts, 0, sizeof opts);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (!rtws_opt_number(argv[++i], 1, INT_MAX, &v))
                return bad_number("-n", argv[i], 1, INT_MAX);
            s.n = (int)v;
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            if (!rtws_opt_number(argv[++i], 0, 1L << 24, &v))
                return bad_number("-s", argv[i], 0, 1L << 24);
            s.size = (size_t)v;
        } else if (!strcmp(argv[i], "--binary")) s.binary = 1;
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc) tls.ca_file = argv[++i];
        else if (!strcmp(argv[i], "--insecure")) tls.tls_insecure_skip_verify = 1;
        else if (!strcmp(argv[i], "--proxy") && i + 1 < argc) opts.proxy = argv[++i];
        else if (!strcmp(argv[i], "--proxy-env")) opts.proxy_from_env = 1;
        else if (argv[i][0] != '-' && !url_given) {
            url = argv[i];
            url_given = 1;
        } else {
            fprintf(stderr, "echo_client: unexpected argument %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
#ifndef RTWS_USE_BEARSSL
    if (tls.ca_file || tls.tls_insecure_skip_verify) {
        fprintf(stderr, "echo_client: --ca and --insecure need wss://, which this build lacks "
                        "(compile with -DRTWS_USE_BEARSSL ... -lbearssl: build/tls_echo_client)\n");
        return 2;
    }
#endif
    if (s.n < 1) s.n = 1;
    s.msg = (unsigned char *)malloc(s.size ? s.size : 1);
    s.rtt = (double *)calloc((size_t)s.n, sizeof *s.rtt);
    if (!s.msg || !s.rtt) {
        fprintf(stderr, "echo_client: no memory for %d messages of %zu bytes\n", s.n, s.size);
        free(s.msg);
        free(s.rtt);
        return 1;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.conn.user = &s;
    cfg.tls = &tls;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || !rtws_ctx_connect(ctx, url, &opts, rtws_time_now_ms(), &e)) {
        fprintf(stderr, "echo_client: %s: %s", url, ctx ? rtws_err_str(e) : "no memory");
        if (ctx && e == RTWS_ERR_TLS)
            fprintf(stderr, ": %s", rtws_tls_err_str(rtws_ctx_get_tls_error(ctx)));
        fprintf(stderr, "\n");
        if (ctx) rtws_ctx_free(ctx); /* every error path frees what it made */
        free(s.msg);
        free(s.rtt);
        return 1;
    }
    until = rtws_time_now_ms() + 60000;
    while (rtws_ctx_get_conn_count(ctx) > 0 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 100);
    rtws_ctx_free(ctx);
    if (s.got > 0) {
        double sum = 0;
        for (i = 0; i < s.got; i++) sum += s.rtt[i];
        qsort(s.rtt, (size_t)s.got, sizeof *s.rtt, cmp);
        printf("%d/%d echoes of %zu bytes ok; rtt us: min %.0f avg %.0f p50 %.0f p99 %.0f max %.0f\n",
               s.got - s.bad, s.n, s.size, s.rtt[0], sum / s.got, s.rtt[s.got / 2],
               s.rtt[(s.got * 99) / 100], s.rtt[s.got - 1]);
    }
    free(s.msg);
    free(s.rtt);
    return (s.got == s.n && s.bad == 0) ? 0 : 1;
}
