/* rtws_fanout - the rtws router as the fan-out peer of the rtws bench: the
   realtime protocol of docs/PROTOCOL.md (welcome, subscribe/subscribed,
   publish -> message with seq) on every path, 127.0.0.1 only.

   usage: ./rtws_fanout PORT [REDIS_URL]   (prints "listening on 127.0.0.1:PORT";
   SIGTERM exits). With REDIS_URL it is one node of a cluster (the Redis
   engine, bench/cluster.sh).

   Settings, all defaults except where said:
   - anonymous clients (no token checker), no rate limit, no connection limit;
   - max_presence 1: presence is tracked but not announced in channels of more
     than one user, so the benchmark measures messages, not the N^2 "joined"
     storm a channel of 1,000 users would see with the default 1000 (0 would
     mean the default, so 1 is the smallest setting);
   - history 1000 per channel (default), heartbeat 30 s (default, announced in
     welcome), 64 MiB send queue per connection (default), 16 MiB messages. */
#define RTWS_IMPLEMENTATION
#include "../../rtws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_router *router;
    rtws_ctx *ctx;
    rtws_err e;
    int port = argc > 1 ? atoi(argv[1]) : 9001, bound = 0;
    if (argc < 2 || argc > 3 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT [REDIS_URL]\n", argv[0]);
        return 2;
    }
    memset(&rc, 0, sizeof rc);
    rc.max_presence = 1;
    rc.redis_url = argc == 3 ? argv[2] : NULL;
    router = rtws_router_new(&rc);
    if (!router) return 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.ping_interval_ms = 30000;
    rtws_router_install(router, &cfg);
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) return 1;
    e = rtws_ctx_listen(ctx, "127.0.0.1", port, &bound);
    if (e != RTWS_OK) {
        fprintf(stderr, "rtws_fanout: cannot listen on 127.0.0.1:%d: %s\n", port, rtws_err_str(e));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    printf("listening on 127.0.0.1:%d\n", bound);
    fflush(stdout);
    while (!stop)
        if (rtws_ctx_run_once(ctx, 1000) < 0) break;
    /* the router first: it lets go of connections the context still holds */
    rtws_router_free(router);
    rtws_ctx_free(ctx);
    return 0;
}
