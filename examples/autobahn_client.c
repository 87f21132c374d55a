/* autobahn_client - drives the Autobahn|Testsuite fuzzing server (or any
   server speaking its protocol) to test rtws's client role.

   usage: ./autobahn_client URL [AGENT]
     URL     the fuzzing server, e.g. ws://127.0.0.1:9001 (no default: a client
             left waiting on a port nobody serves would only look stuck)
     AGENT   the name its reports are filed under (default rtws)
     --help  print this and exit
   Reads the case count from URL/getCaseCount, runs URL/runCase?case=N&agent=AGENT
   for every case, echoing each message back as it came (text or binary), then
   calls URL/updateReports?agent=AGENT. Exits 0 when every step connected.
   tests/autobahn/suite.py serves the protocol (tests/autobahn/README.md). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s URL [AGENT]\n"
            "Drives an Autobahn|Testsuite fuzzing server (or tests/autobahn/suite.py) to\n"
            "test rtws's client role.\n"
            "  URL     the fuzzing server, e.g. ws://127.0.0.1:9001\n"
            "  AGENT   the name its reports are filed under (default rtws)\n"
            "  --help  print this and exit\n"
            "Runs URL/getCaseCount, URL/runCase?case=N&agent=AGENT for every case (echoing\n"
            "each message back), then URL/updateReports?agent=AGENT. Exits 0 when every\n"
            "step connected.\n",
            argv0);
}

typedef struct run {
    int done;
    int count;       /* getCaseCount's answer */
    int get_count;   /* this connection asks for the count */
    int opened;
} run;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    run *r = (run *)user;
    switch (ev->type) {
    case RTWS_EV_OPEN: r->opened = 1; break;
    case RTWS_EV_MESSAGE:
        if (r->get_count) {
            char buf[32];
            size_t n = ev->message.len < sizeof buf - 1 ? ev->message.len : sizeof buf - 1;
            memcpy(buf, ev->message.data, n);
            buf[n] = '\0';
            r->count = atoi(buf);
        } else if (rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len) !=
                   RTWS_OK) {
            rtws_conn_close(c, RTWS_CLOSE_INTERNAL, NULL);
        }
        break;
    case RTWS_EV_CLOSE: r->done = 1; break;
    case RTWS_EV_ERROR:
        if (!r->opened) r->done = 1; /* never opened: no CLOSE event follows */
        break;
    default: break;
    }
}

/* Connects to base+path and runs the loop until that connection is gone. */
static int visit(const char *base, const char *path, run *r) {
    char url[1024];
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    rtws_err e;
    uint64_t until;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.conn.user = r;
    cfg.conn.heartbeat_off = 1;
    cfg.linger_ms = 500;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) return -1;
    snprintf(url, sizeof url, "%s%s", base, path);
    r->done = r->opened = 0;
    if (!rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), &e)) {
        fprintf(stderr, "autobahn_client: %s: %s\n", url, rtws_err_str(e));
        rtws_ctx_free(ctx);
        return -1;
    }
    until = rtws_time_now_ms() + 120000; /* no case takes this long */
    while (rtws_ctx_get_conn_count(ctx) > 0 && rtws_time_now_ms() < until)
        if (rtws_ctx_run_once(ctx, 100) < 0) break;
    rtws_ctx_free(ctx);
    return r->opened ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *base, *agent;
    char path[256];
    run r;
    int i, bad = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        }
        if (argv[i][0] == '-' || i > 2) {
            fprintf(stderr, "autobahn_client: unexpected argument %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "autobahn_client: needs the fuzzing server's URL\n");
        usage(stderr, argv[0]);
        return 2;
    }
    base = argv[1];
    agent = argc > 2 ? argv[2] : "rtws";
    memset(&r, 0, sizeof r);
    r.get_count = 1;
    if (visit(base, "/getCaseCount", &r) != 0 || r.count <= 0) {
        fprintf(stderr, "autobahn_client: no case count from %s\n", base);
        return 1;
    }
    r.get_count = 0;
    printf("running %d cases as agent %s\n", r.count, agent);
    for (i = 1; i <= r.count; i++) {
        snprintf(path, sizeof path, "/runCase?case=%d&agent=%s", i, agent);
        if (visit(base, path, &r) < 0) bad++;
    }
    snprintf(path, sizeof path, "/updateReports?agent=%s", agent);
    if (visit(base, path, &r) != 0) bad++;
    printf("done: %d cases, %d could not connect\n", r.count, bad);
    return bad ? 1 : 0;
}
