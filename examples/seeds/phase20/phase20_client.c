/* phase20_client - the "Phase 20" client library (seed 002) as a terminal program: the five
   connection states, reconnect with exponential backoff (5 attempts), an offline queue flushed in
   order after the reconnect, ping-pong latency, channels, presence and data sync, in the
   document's {type, payload} messages (phase20_server speaks them). See README.md.
   usage: phase20_client URL [--heartbeat-ms N] [--reconnect-ms N]
   Commands on stdin, one a line: subscribe C | unsubscribe C | send C EVENT JSON |
   presence C STATUS | insert C RESOURCE JSON | update C ID JSON | delete C ID | ping | stats | quit
   Prints "status S" (connecting, connected, disconnected, reconnecting, error), "latency N ms",
   "TYPE CHANNEL PAYLOAD" per message, "data C N records", "queued N" while offline. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXCH 16
static rtws_client *CL;
static const char *status = "";
static char chans[MAXCH][64], pres[MAXCH][40]; /* subscribed channels, presence status set */
static long records[MAXCH];                     /* data sync: records held per channel */
static long long latency = -1;

static void usage(FILE *f) {
    fprintf(f, "usage: phase20_client URL [--heartbeat-ms N] [--reconnect-ms N]\n"
               "The Phase 20 client (e.g. ws://127.0.0.1:8080/?token=JWT). Commands on stdin:\n"
               "  subscribe C | unsubscribe C | send C EVENT JSON | presence C STATUS\n"
               "  insert C RESOURCE JSON | update C ID JSON | delete C ID | ping | stats | quit\n"
               "  --heartbeat-ms N  ping (latency) interval (30000)\n"
               "  --reconnect-ms N  first reconnect delay, doubling, 5 attempts (3000)\n"
               "  --help            print this and exit\n");
}

static void set_status(const char *s, const char *detail) {
    status = s;
    printf("status %s%s%s\n", s, detail[0] ? " " : "", detail);
}

static int find_ch(const char *c) {
    int i;
    for (i = 0; i < MAXCH; i++)
        if (chans[i][0] && !strcmp(chans[i], c)) return i;
    return -1;
}

/* {"type":type,"payload":{"channel":chan, k1:v1, k2:v2, jkey:json}}; NULLs are left out.
   Sent now, or queued by rtws_client while reconnecting (sent first after the open). */
static void send_msg(const char *type, const char *chan, const char *k1, const char *v1,
                     const char *k2, const char *v2, const char *jkey, const char *json) {
    char buf[8192];
    rtws_json_writer w;
    size_t n;
    const char *k[3] = {"channel", k1, k2}, *v[3] = {chan, v1, v2};
    int i;
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "type", 4);
    rtws_json_write_string(&w, type, strlen(type));
    rtws_json_write_key(&w, "payload", 7);
    rtws_json_write_object(&w);
    for (i = 0; i < 3; i++)
        if (k[i] && v[i]) {
            rtws_json_write_key(&w, k[i], strlen(k[i]));
            rtws_json_write_string(&w, v[i], strlen(v[i]));
        }
    if (jkey) rtws_json_write_key(&w, jkey, strlen(jkey)), rtws_json_write_raw(&w, json, strlen(json));
    rtws_json_write_object_end(&w);
    rtws_json_write_object_end(&w);
    if (rtws_json_writer_finish(&w, &n) != RTWS_OK) {
        printf("error - not sent (bad JSON)\n");
        return;
    }
    if (rtws_client_send(CL, RTWS_OP_TEXT, buf, n, 0) != RTWS_OK) printf("error - not sent\n");
    else if (rtws_client_get_state(CL) != RTWS_CLIENT_OPEN) printf("queued %zu\n", rtws_client_get_queued(CL, NULL));
}

static void ping(void) {
    char ts[32];
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)rtws_time_wall_ms());
    if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN) send_msg("ping", NULL, NULL, NULL, NULL, NULL, "timestamp", ts);
}

/* a message from the server, reported as the document's handlers would see it */
static void on_text(const char *s, size_t len) {
    rtws_json d;
    rtws_json_tok t[2048];
    char type[64] = "", chan[64] = "-";
    const char *raw = "null";
    size_t n, rl = 4;
    int64_t ts;
    int p, v, i;
    if (rtws_json_parse(&d, s, len, t, 2048, 0) != RTWS_OK) return;
    if ((v = rtws_json_get(&d, 0, "type")) >= 0) rtws_json_unescape(&d, v, type, sizeof type, &n);
    if ((v = rtws_json_get(&d, 0, "channel")) >= 0) rtws_json_unescape(&d, v, chan, sizeof chan, &n);
    if (!strcmp(type, "pong") && rtws_json_int64(&d, rtws_json_get(&d, 0, "timestamp"), &ts) == RTWS_OK) {
        latency = (long long)rtws_time_wall_ms() - (long long)ts;
        printf("latency %lld ms\n", latency);
        return;
    }
    if ((p = rtws_json_get(&d, 0, "payload")) >= 0) raw = rtws_json_raw(&d, p, &rl);
    printf("%s %s %.*s\n", type, chan, (int)rl, raw);
    if ((i = find_ch(chan)) < 0) return;
    if (!strcmp(type, "snapshot") && (v = rtws_json_get(&d, p, "records")) >= 0) records[i] = (long)t[v].size;
    else if (strcmp(type, "sync")) return;
    else if ((v = rtws_json_get(&d, p, "action")) >= 0 && rtws_json_eq(&d, v, "insert")) records[i]++;
    else if (v >= 0 && rtws_json_eq(&d, v, "delete")) records[i]--;
    printf("data %s %ld records\n", chan, records[i]);
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    char detail[96];
    int i;
    (void)cl;
    (void)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE &&
        ev->conn.event->message.opcode == RTWS_OP_TEXT)
        on_text((const char *)ev->conn.event->message.data, ev->conn.event->message.len);
    if (ev->type != RTWS_CLIENT_EV_STATE) return;
    switch (ev->state.state) {
    case RTWS_CLIENT_CONNECTING:
        if (!ev->state.attempt) set_status("connecting", "");
        break;
    case RTWS_CLIENT_OPEN: /* the queue went first; now the channels and presence again */
        set_status("connected", "");
        for (i = 0; i < MAXCH; i++) {
            if (chans[i][0]) send_msg("subscribe", chans[i], NULL, NULL, NULL, NULL, NULL, NULL);
            if (chans[i][0] && pres[i][0]) send_msg("presence", chans[i], "status", pres[i], NULL, NULL, NULL, NULL);
        }
        ping();
        break;
    case RTWS_CLIENT_RECONNECTING:
        set_status(strcmp(status, "connected") ? "error" : "disconnected", rtws_err_str(ev->state.reason));
        snprintf(detail, sizeof detail, "attempt=%u delay=%ums", ev->state.attempt, ev->state.delay_ms);
        set_status("reconnecting", detail);
        break;
    case RTWS_CLIENT_CLOSED: set_status("disconnected", ""); break;
    case RTWS_CLIENT_FAILED: set_status("error", "reconnect attempts exhausted"); break;
    default: break;
    }
}

static void command(char *line) {
    char *a = strtok(line, " "), *b = strtok(NULL, " "), *c = strtok(NULL, " "), *j = strtok(NULL, "");
    int i;
    if (!a) return;
    if (!strcmp(a, "subscribe") && b && find_ch(b) < 0) {
        for (i = 0; i < MAXCH && chans[i][0]; i++) {}
        if (i == MAXCH || strlen(b) >= sizeof chans[i]) return;
        snprintf(chans[i], sizeof chans[i], "%s", b);
        if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN) send_msg("subscribe", b, NULL, NULL, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "unsubscribe") && b && (i = find_ch(b)) >= 0) {
        chans[i][0] = pres[i][0] = 0;
        if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN) send_msg("unsubscribe", b, NULL, NULL, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "send") && c) {
        send_msg("channel_message", b, "event", c, NULL, NULL, "payload", j ? j : "null");
    } else if (!strcmp(a, "presence") && c && (i = find_ch(b)) >= 0) {
        snprintf(pres[i], sizeof pres[i], "%s", c);
        if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN) send_msg("presence", b, "status", c, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "insert") && j) {
        send_msg("sync", b, "action", "insert", "resource", c, "record", j);
    } else if (!strcmp(a, "update") && j) {
        send_msg("sync", b, "action", "update", "id", c, "changes", j);
    } else if (!strcmp(a, "delete") && c) {
        send_msg("sync", b, "action", "delete", "id", c, NULL, NULL);
    } else if (!strcmp(a, "ping")) {
        ping();
    } else if (!strcmp(a, "stats")) { /* the document's getStats() */
        rtws_client_stats st;
        rtws_client_get_stats(CL, &st, rtws_time_now_ms());
        printf("stats status=%s connectedAt=%llu latency=%lld messagesSent=%llu messagesReceived=%llu "
               "reconnects=%u queued=%zu\n",
               status, (unsigned long long)st.connected_since_ms, latency, (unsigned long long)st.total.msgs_out,
               (unsigned long long)st.total.msgs_in, st.reconnects, rtws_client_get_queued(CL, NULL));
    } else {
        printf("error - unknown command %s\n", a);
    }
}

int main(int argc, char **argv) {
    const char *url = NULL;
    rtws_ctx_config cfg;
    rtws_client_config cc;
    rtws_ctx *ctx;
    struct pollfd fds[64];
    char line[8192];
    size_t have = 0;
    uint32_t heartbeat = 30000, reconnect = 3000;
    uint64_t next_ping = 0;
    int i, running = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (i == 1 && argv[i][0] != '-') url = argv[i];
        else if (!strcmp(argv[i], "--heartbeat-ms") && i + 1 < argc) heartbeat = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reconnect-ms") && i + 1 < argc) reconnect = (uint32_t)atol(argv[++i]);
        else return fprintf(stderr, "phase20_client: unexpected argument %s\n", argv[i]), usage(stderr), 2;
    }
    if (!url) return fprintf(stderr, "phase20_client: URL required\n"), usage(stderr), 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&cfg, 0, sizeof cfg);
    memset(&cc, 0, sizeof cc);
    cc.url = url;
    cc.on_event = on_event;
    cc.backoff_base_ms = reconnect; /* exponential: reconnect, x2, x4 ... */
    cc.backoff_max_ms = reconnect * 16;
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 5; /* the document's "max reconnect attempts: 5" */
    cc.stable_ms = 1;    /* a connection that opened starts the count over */
    if (!(ctx = rtws_ctx_new(&cfg)) || !(CL = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL)))
        return fprintf(stderr, "phase20_client: bad URL %s\n", url), 1;
    while (running) {
        int n = rtws_ctx_fill_pollfds(ctx, fds, 63), ms = rtws_ctx_get_timeout_ms(ctx, rtws_time_now_ms());
        uint64_t now = rtws_time_now_ms();
        if (n > 63) n = 63;
        fds[n].fd = 0;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        if (ms < 0 || ms > 100) ms = 100; /* the heartbeat timer is ours */
        poll(fds, (nfds_t)n + 1, ms);
        rtws_ctx_service(ctx, fds, n, rtws_time_now_ms());
        if (now >= next_ping) {
            next_ping = now + heartbeat;
            ping();
        }
        if (!fds[n].revents) continue;
        {
            ssize_t r = read(0, line + have, sizeof line - 1 - have);
            char *nl;
            if (r <= 0) break;
            have += (size_t)r;
            while ((nl = (char *)memchr(line, '\n', have)) != NULL) {
                size_t k = (size_t)(nl - line) + 1;
                *nl = 0;
                if (!strcmp(line, "quit")) running = 0;
                else command(line);
                memmove(line, line + k, have - k);
                have -= k;
            }
            if (have == sizeof line - 1) have = 0; /* a line too long: dropped */
        }
        rtws_ctx_run_timers(ctx, rtws_time_now_ms()); /* what the commands sent goes out now */
    }
    rtws_client_close(CL, 1000, "bye");
    for (i = 0; i < 50 && rtws_client_get_state(CL) == RTWS_CLIENT_CLOSING; i++) rtws_ctx_run_once(ctx, 20);
    rtws_client_free(CL);
    rtws_ctx_free(ctx);
    return 0;
}
