/* echo_server - echoes every text and binary message (up to 16 MiB).

   usage: ./echo_server [--host H] [--port P] [--origin O]... [--handshake-timeout MS]
                        [--message-timeout-ms MS] [--ping-interval-ms MS]
                        [--memory-budget MIB]
                        [--tls-cert C --tls-key K]
     --host H     address to listen on (default 127.0.0.1; "" for every address)
     --port P     port (default 9001; 0: the OS picks a free one)
     --origin O   allow browser pages from origin O only (repeatable, up to 16;
                  --allow-origin O is the same). With any, an upgrade without
                  Origin or with another one gets 403; without, any is allowed.
     --message-timeout-ms MS   close with 1008 a connection whose message is not
                  whole MS ms after its first byte (default 60000; 0: off)
     --ping-interval-ms MS   heartbeat: ping a connection after MS ms of
                  silence (default 30000; 0: no heartbeat)
     --memory-budget MIB   bytes of every send queue and receive buffer
                  together, in MiB (default 0: unlimited, each send queue still
                  capped at 64 MiB); at the cap the largest send queues are
                  closed with 1013
     --tls-cert C --tls-key K   serve wss:// with this PEM chain and key (needs a
                  build with -DRTWS_USE_BEARSSL ... -lbearssl, e.g. build/tls_echo_server)
     --handshake-timeout MS   drop a connection whose opening handshake is
                  not done MS ms after it connected (default 10000: slowloris)
     --help       print this and exit
   Prints "listening on H:P" once ready. SIGINT/SIGTERM close every connection
   with 1001 and exit. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rtws_ctx *ctx; /* SIGINT, SIGTERM: rtws_ctx_run shuts it down */
static void on_signal(int sig) { (void)sig, rtws_ctx_stop(ctx); }

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [--host H] [--port P] [--origin O]... [--handshake-timeout MS]\n"
            "          [--message-timeout-ms MS] [--ping-interval-ms MS]\n"
            "          [--memory-budget MIB]\n"
            "          [--tls-cert C --tls-key K]\n"
            "Echoes every text and binary message (up to 16 MiB).\n"
            "  --host H     address to listen on (default 127.0.0.1; \"\" for every address)\n"
            "  --port P     port (default 9001; 0: the OS picks a free one)\n"
            "  --origin O   allow browser pages from origin O only (repeatable, up to 16;\n"
            "               --allow-origin O is the same). With any, an upgrade without\n"
            "               Origin or with another one gets 403; without, any is allowed.\n"
            "  --message-timeout-ms MS   close with 1008 a connection whose message is not\n"
            "               whole MS ms after its first byte (default 60000; 0: off)\n"
            "  --ping-interval-ms MS   heartbeat: ping a connection after MS ms of\n"
            "               silence (default 30000; 0: no heartbeat)\n"
            "  --memory-budget MIB   bytes of every send queue and receive buffer\n"
            "               together, in MiB (default 0: unlimited, each send queue still\n"
            "               capped at 64 MiB); at the cap the largest send queues are\n"
            "               closed with 1013\n"
            "  --tls-cert C --tls-key K   serve wss:// with this PEM chain and key (needs a\n"
            "               build with -DRTWS_USE_BEARSSL ... -lbearssl: build/tls_echo_server)\n"
            "  --handshake-timeout MS   drop a connection whose opening handshake is\n"
            "               not done MS ms after it connected (default 10000: slowloris)\n"
            "  --help       print this and exit\n"
            "Prints \"listening on H:P\" once ready. SIGINT/SIGTERM close every connection\n"
            "with 1001 and exit.\n",
            argv0);
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE) {
        rtws_err e = rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
        if (e != RTWS_OK) rtws_conn_close(c, RTWS_CLOSE_TRY_AGAIN, "send queue full");
    }
}

/* v as a whole number in [min, max]; else -1, having said why (then exit 2) */
static long num(const char *name, const char *v, long min, long max) {
    long n;
    if (rtws_opt_number(v, min, max, &n)) return n;
    fprintf(stderr, "echo_server: %s takes a whole number from %ld to %ld, not \"%s\"\n",
            name, min, max, v);
    return -1;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    const char *origins[17] = {0};
    rtws_tls_server_config tls;
    int port = 9001, bound = 0, i, norigins = 0;
    uint32_t hs_timeout = 0;
    long message_timeout_ms = 60000; /* slow senders: 16 MiB at 300 KB/s still fits */
    long ping_interval_ms = 30000;
    long budget_mib = 0;
    rtws_ctx_config cfg;
    rtws_err e;
    memset(&tls, 0, sizeof tls);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if ((port = (int)num("--port", argv[++i], 0, 65535)) < 0) return 2;
        }
        else if ((!strcmp(argv[i], "--origin") || !strcmp(argv[i], "--allow-origin")) &&
                 i + 1 < argc && norigins < 16)
            origins[norigins++] = argv[++i];
        else if (!strcmp(argv[i], "--handshake-timeout") && i + 1 < argc) {
            long v = num("--handshake-timeout", argv[++i], 0, 86400000L);
            if (v < 0) return 2;
            hs_timeout = (uint32_t)v;
        } else if (!strcmp(argv[i], "--message-timeout-ms") && i + 1 < argc) {
            message_timeout_ms = num("--message-timeout-ms", argv[++i], 0, 86400000L);
            if (message_timeout_ms < 0) return 2;
        } else if (!strcmp(argv[i], "--ping-interval-ms") && i + 1 < argc) {
            ping_interval_ms = num("--ping-interval-ms", argv[++i], 0, 86400000L);
            if (ping_interval_ms < 0) return 2;
        } else if (!strcmp(argv[i], "--memory-budget") && i + 1 < argc) {
            if ((budget_mib = num("--memory-budget", argv[++i], 0, 1048576L)) < 0) return 2;
        } else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc) tls.cert_file = argv[++i];
        else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc) tls.key_file = argv[++i];
        else {
            fprintf(stderr, "echo_server: unknown or incomplete option %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.conn.handshake_timeout_ms = hs_timeout; /* 0: the default */
    cfg.conn.message_timeout_ms = (uint32_t)message_timeout_ms;
    cfg.conn.ping_interval_ms = (uint32_t)ping_interval_ms;
    cfg.conn.heartbeat_off = ping_interval_ms == 0;
    cfg.memory_budget = (size_t)budget_mib << 20; /* 0: unlimited */
    if (norigins) cfg.conn.allowed_origins = origins;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) return 1;
    if (!tls.cert_file != !tls.key_file) {
        fprintf(stderr, "echo_server: --tls-cert and --tls-key go together\n");
        return 2;
    }
    e = tls.cert_file ? rtws_ctx_listen_tls(ctx, host, port, &tls, &bound)
                      : rtws_ctx_listen(ctx, host, port, &bound);
    if (e != RTWS_OK) {
        fprintf(stderr, "echo_server: cannot listen on %s:%d: %s", host, port, rtws_err_str(e));
        if (e == RTWS_ERR_TLS) fprintf(stderr, ": %s", rtws_tls_err_str(rtws_ctx_get_tls_error(ctx)));
        fprintf(stderr, "\n");
        rtws_ctx_free(ctx);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
#ifdef SIGPIPE /* not on Windows (no such signal there) */
    signal(SIGPIPE, SIG_IGN);
#endif
    printf("listening on %s:%d\n", host, bound);
    fflush(stdout);
    rtws_ctx_run(ctx, 2000); /* until a signal; then close 1001, waiting up to 2 s */
    rtws_ctx_free(ctx);
    return 0;
}
