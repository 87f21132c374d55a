/* kull_client - Kull's device client (seed 003, WebSocketService) on rtws:
   connects to URL?token=userId:deviceId, reconnects with the document's
   schedule (1, 2, 4, 8, 16, 32 s, then 60 s; at most 10 attempts), sends PING
   every 30 s and drops a connection whose PONG did not come by the next one,
   answers the server's PING with PONG, and prints one line per event:
     state NAME attempt=N delay_ms=D t=MS   (t: ms since start)
     recv TYPE JSON                         (every message from the server)
     sent TYPE | nopong | close code=C
   See README.md here. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    rtws_client *cl;
    uint64_t t0, next_ping;
    uint32_t ping_ms;
    int awaiting_pong, done, failed;
} app;

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s URL --user ID --device ID [options]\n"
            "  URL                    the server's WebSocket URL, e.g. ws://localhost:5000/ws;\n"
            "                         ?token=userId:deviceId is added\n"
            "  --user ID, --device ID this device's user and device ids (URL-safe)\n"
            "  --send JSON            a message to send once connected (repeatable), e.g.\n"
            "                         {\"type\":\"UPDATE_PROGRESS\",\"data\":{...}}\n"
            "  --ping-ms MS           PING interval (default 30000)\n"
            "  --backoff-base-ms MS   first reconnect delay, doubled per attempt (default 1000)\n"
            "  --backoff-max-ms MS    longest reconnect delay (default 60000)\n"
            "  --max-attempts N       reconnect attempts before giving up (default 10)\n"
            "  --help                 print this and exit\n"
            "Exits 0 after SIGINT/SIGTERM (clean close), 1 when it gave up (state FAILED).\n",
            argv0);
}

static const char *const state_names[] = {"?",      "CONNECTING",   "OPEN",  "CLOSING",
                                          "CLOSED", "RECONNECTING", "FAILED"};

/* {"type":type,"data":D} sent through the client (queued while offline); D is value v of d,
   {} when v < 0, or {"timestamp":now} when d is NULL */
static void send_msg(app *a, const char *type, const rtws_json *d, int v) {
    char buf[1024];
    size_t n = 0;
    rtws_json_writer w;
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "type", type);
    if (d && v >= 0) {
        rtws_json_write_tok_field(&w, "data", d, v);
    } else {
        rtws_json_write_key(&w, "data", 4);
        rtws_json_write_object(&w);
        if (!d)
            rtws_json_write_int64_field(&w, "timestamp", (int64_t)rtws_time_wall_ms());
        rtws_json_write_object_end(&w);
    }
    rtws_json_write_object_end(&w);
    if (rtws_json_writer_finish(&w, &n) == RTWS_OK &&
        rtws_client_send(a->cl, RTWS_OP_TEXT, buf, n, 0) == RTWS_OK)
        printf("sent %s\n", type);
}

static void on_message(app *a, const rtws_event *ev) {
    rtws_json d;
    rtws_json_tok t[256];
    char type[64];
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 256, 0) ||
        rtws_json_get_str(&d, 0, "type", type, sizeof type) < 0) {
        /* logged, no crash */
        printf("unparsed %.*s\n", (int)ev->message.len, (const char *)ev->message.data);
        return;
    }
    printf("recv %s %.*s\n", type, (int)ev->message.len, (const char *)ev->message.data);
    if (!strcmp(type, "PONG"))
        a->awaiting_pong = 0;
    else if (!strcmp(type, "PING"))
        send_msg(a, "PONG", &d, rtws_json_get(&d, 0, "data")); /* PING is bidirectional */
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    app *a = (app *)user;
    uint64_t now = rtws_time_now_ms();
    (void)cl;
    if (ev->type == RTWS_CLIENT_EV_STATE) {
        unsigned s = (unsigned)ev->state.state;
        printf("state %s attempt=%u delay_ms=%u t=%llu\n", state_names[s < 7 ? s : 0],
               ev->state.attempt, ev->state.delay_ms, (unsigned long long)(now - a->t0));
        if (ev->state.state == RTWS_CLIENT_OPEN) {
            a->awaiting_pong = 0;
            a->next_ping = now + a->ping_ms;
        }
        if (ev->state.state == RTWS_CLIENT_FAILED || ev->state.state == RTWS_CLIENT_CLOSED) {
            a->done = 1;
            a->failed = ev->state.state == RTWS_CLIENT_FAILED;
        }
    } else if (ev->type == RTWS_CLIENT_EV_CONN) {
        if (ev->conn.event->type == RTWS_EV_MESSAGE)
            on_message(a, ev->conn.event);
        else if (ev->conn.event->type == RTWS_EV_CLOSE)
            printf("close code=%u\n", ev->conn.event->close.code);
    }
    fflush(stdout);
}

/* PING every ping_ms; no PONG since the last one: drop the connection (reconnect) */
static void ping_timer(app *a, uint64_t now) {
    rtws_conn *c = rtws_client_get_conn(a->cl);
    if (rtws_client_get_state(a->cl) != RTWS_CLIENT_OPEN || !c || now < a->next_ping)
        return;
    a->next_ping = now + a->ping_ms;
    if (a->awaiting_pong) {
        printf("nopong\n");
        fflush(stdout);
        rtws_conn_close(c, RTWS_CLOSE_GOING_AWAY, "no PONG");
        return;
    }
    a->awaiting_pong = 1;
    send_msg(a, "PING", NULL, -1);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *base = NULL, *uid = NULL, *dev = NULL, *sends[16];
    char url[1024];
    int i, nsend = 0;
    long ping_ms = 30000, base_ms = 1000, max_ms = 60000, attempts = 10;
    static app a;
    rtws_ctx_config cfg;
    rtws_client_config cc;
    rtws_ctx *ctx;
    rtws_err e = RTWS_OK;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (i == 1 && argv[i][0] != '-')
            base = argv[i];
        else if (!strcmp(argv[i], "--user") && i + 1 < argc)
            uid = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            dev = argv[++i];
        else if (!strcmp(argv[i], "--send") && i + 1 < argc && nsend < 16)
            sends[nsend++] = argv[++i];
        else if (!strcmp(argv[i], "--ping-ms") && i + 1 < argc)
            ping_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--backoff-base-ms") && i + 1 < argc)
            base_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--backoff-max-ms") && i + 1 < argc)
            max_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--max-attempts") && i + 1 < argc)
            attempts = atol(argv[++i]);
        else {
            fprintf(stderr, "kull_client: unexpected argument %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (!base || !uid || !dev || ping_ms < 1 || base_ms < 1 || max_ms < base_ms || attempts < 0 ||
        ping_ms > 86400000L || max_ms > 86400000L || attempts > 1000000L) {
        fprintf(stderr,
                "kull_client: URL, --user and --device are required; times 1..86400000 ms\n");
        usage(stderr, argv[0]);
        return 2;
    }
    snprintf(url, sizeof url, "%s%stoken=%s:%s", base, strchr(base, '?') ? "&" : "?", uid, dev);
    memset(&cfg, 0, sizeof cfg);
    if (!(ctx = rtws_ctx_new(&cfg)))
        return 1;
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = on_event;
    cc.user = &a;
    cc.backoff_base_ms = (uint32_t)base_ms; /* 1 s, 2 s, 4 s, ... */
    cc.backoff_factor = 2;
    cc.backoff_max_ms = (uint32_t)max_ms; /* ... then 60 s */
    cc.backoff_min_ms = (uint32_t)base_ms;
    cc.jitter = RTWS_JITTER_NONE; /* the document's exact schedule */
    cc.max_attempts = (uint32_t)attempts;
    a.ping_ms = (uint32_t)ping_ms;
    a.t0 = rtws_time_now_ms();
    if (!(a.cl = rtws_client_new(ctx, &cc, a.t0, &e))) {
        fprintf(stderr, "kull_client: %s: %s\n", url, rtws_err_str(e));
        rtws_ctx_free(ctx);
        return 1;
    }
    for (i = 0; i < nsend; i++) { /* queued until the connection is open */
        const char *s = sends[i];
        if (rtws_client_send(a.cl, RTWS_OP_TEXT, s, strlen(s), 0) != RTWS_OK)
            fprintf(stderr, "kull_client: cannot queue %s\n", s);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    while (!a.done && !stop) {
        uint64_t now = rtws_time_now_ms();
        int wait = 1000;
        ping_timer(&a, now);
        if (rtws_client_get_state(a.cl) == RTWS_CLIENT_OPEN && a.next_ping > now &&
            a.next_ping - now < 1000)
            wait = (int)(a.next_ping - now);
        if (rtws_ctx_run_once(ctx, wait) < 0)
            break;
    }
    if (stop && !a.done) { /* a clean close: the server tells the other devices */
        rtws_client_close(a.cl, RTWS_CLOSE_NORMAL, "bye");
        for (i = 0; i < 30 && !a.done; i++)
            rtws_ctx_run_once(ctx, 100);
    }
    rtws_client_free(a.cl);
    rtws_ctx_free(ctx);
    return a.failed ? 1 : 0;
}
