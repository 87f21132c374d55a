/* clarity_client - the CLARITY Pulse WebSocketManager (seed 000) as a terminal program: a bearer
   token at the upgrade, the typed messages, reconnect with exponential backoff (2, 4, 8, 16, 32 s,
   then give up), a ping every 30 s, metrics, and "missed updates since" back in the foreground.
   usage: clarity_client URL --token T [--ping-ms N] [--backoff-ms N]       (README.md)
   stdin: subscribe CH... | unsubscribe CH... | background (suspended: the socket closes) |
   foreground (reconnect, requestMissedUpdates since the newest update) | metrics | quit */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rtws_client *CL;
static char last_update[64];  /* the newest healthDataUpdate timestamp seen (ISO 8601) */
static char last_error[160] = "none";
static int want_missed;       /* foreground: ask for the missed updates once connected */

static void usage(FILE *f) {
    fprintf(f, "usage: clarity_client URL --token T [--ping-ms N] [--backoff-ms N]\n"
               "The CLARITY Pulse WebSocket client (e.g. ws://127.0.0.1:8000/ws).\n"
               "  --token T  sent as \"Authorization: Bearer T\"   --ping-ms N  ping interval (30000)\n"
               "  --backoff-ms N  first reconnect delay, doubling, 5 attempts (2000)   --help\n"
               "stdin: subscribe CH... | unsubscribe CH... | background | foreground | metrics | quit\n");
}

static void fail(const char *what) {
    snprintf(last_error, sizeof last_error, "%.150s", what);
    printf("error %s\n", what);
}

/* string field key of object obj into out ("" when absent) */
static const char *str(const rtws_json *d, int obj, const char *key, char *out, size_t cap) {
    size_t n;
    int v = rtws_json_get(d, obj, key);
    if (v < 0 || rtws_json_unescape(d, v, out, cap, &n) != RTWS_OK) out[0] = 0;
    return out;
}

static void send_json(rtws_json_writer *w, char *buf) {
    size_t n;
    rtws_json_write_object_end(w);
    if (rtws_json_writer_finish(w, &n) != RTWS_OK) fail("Invalid WebSocket message format");
    else if (rtws_client_send(CL, RTWS_OP_TEXT, buf, n, 0) != RTWS_OK) fail("WebSocket connection failed: not sent");
}

static void begin(rtws_json_writer *w, char *buf, size_t cap, const char *type) {
    rtws_json_writer_init(w, buf, cap);
    rtws_json_write_object(w);
    rtws_json_write_key(w, "type", 4);
    rtws_json_write_string(w, type, strlen(type));
}

/* SubscribeMessage / UnsubscribeMessage: {"type":..., "channels":[...]} */
static void send_channels(const char *type, char *list) {
    char buf[4096], *ch;
    rtws_json_writer w;
    begin(&w, buf, sizeof buf, type);
    rtws_json_write_key(&w, "channels", 8);
    rtws_json_write_array(&w);
    for (ch = strtok(list, " "); ch; ch = strtok(NULL, " ")) rtws_json_write_string(&w, ch, strlen(ch));
    rtws_json_write_array_end(&w);
    send_json(&w, buf);
}

/* handleAppForeground: requestMissedUpdates, since the newest update this app has */
static void request_missed(void) {
    char buf[256];
    rtws_json_writer w;
    want_missed = 0;
    begin(&w, buf, sizeof buf, "requestMissedUpdates");
    rtws_json_write_key(&w, "since", 5);
    if (last_update[0]) rtws_json_write_string(&w, last_update, strlen(last_update));
    else rtws_json_write_null(&w);
    printf("requestMissedUpdates since=%s\n", last_update[0] ? last_update : "null");
    send_json(&w, buf);
}

/* the document's WebSocketMessage cases, each decoded and handled */
static void on_text(const char *s, size_t len) {
    static rtws_json_tok t[4096];
    rtws_json d;
    char type[32], a[128], b[128], c[512], e[512], buf[1024];
    size_t n = 0;
    int p, v;
    if (rtws_json_parse(&d, s, len, t, 4096, 0) != RTWS_OK || (p = rtws_json_get(&d, 0, "payload")) < 0 ||
        t[p].type != RTWS_JSON_OBJECT) {
        fail("Failed to decode WebSocket message");
        return;
    }
    str(&d, 0, "type", type, sizeof type);
    if (!strcmp(type, "connectionAck")) {
        v = rtws_json_get(&d, p, "capabilities");
        printf("connectionAck sessionId=%s serverTime=%s capabilities=%u\n", str(&d, p, "sessionId", a, sizeof a),
               str(&d, p, "serverTime", b, sizeof b), v >= 0 ? t[v].size : 0);
    } else if (!strcmp(type, "healthDataUpdate")) {
        str(&d, p, "timestamp", b, sizeof b);
        if (strcmp(b, last_update) > 0) snprintf(last_update, sizeof last_update, "%s", b); /* any order */
        v = rtws_json_get(&d, p, "data");
        printf("healthDataUpdate id=%s timestamp=%s isUrgent=%s source=%s data=%.*s\n", str(&d, p, "id", a, sizeof a),
               b, rtws_json_get(&d, p, "isUrgent") >= 0 && t[rtws_json_get(&d, p, "isUrgent")].type == RTWS_JSON_TRUE ? "true" : "false",
               str(&d, p, "source", c, sizeof c), v >= 0 ? (int)t[v].len : 4,
               v >= 0 ? rtws_json_raw(&d, v, &n) : "null");
    } else if (!strcmp(type, "notification")) { /* .alert, .badge, .silent */
        printf("notification %s id=%s title=%s body=%s\n", str(&d, p, "type", a, sizeof a),
               str(&d, p, "id", b, sizeof b), str(&d, p, "title", c, sizeof c), str(&d, p, "body", e, sizeof e));
    } else if (!strcmp(type, "syncRequest")) { /* answered with a SyncResponseMessage */
        rtws_json_writer w;
        printf("syncRequest %s id=%s\n", str(&d, p, "type", a, sizeof a), str(&d, p, "id", b, sizeof b));
        begin(&w, buf, sizeof buf, "syncResponse");
        rtws_json_write_key(&w, "requestId", 9);
        rtws_json_write_string(&w, b, strlen(b));
        rtws_json_write_key(&w, "data", 4);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "syncType", 8);
        rtws_json_write_string(&w, a, strlen(a));
        rtws_json_write_key(&w, "lastUpdate", 10);
        rtws_json_write_string(&w, last_update, strlen(last_update));
        rtws_json_write_object_end(&w);
        send_json(&w, buf);
    } else if (!strcmp(type, "error")) {
        snprintf(c, sizeof c, "Server error: %s", str(&d, p, "message", a, sizeof a));
        fail(c);
    } else {
        fail("Invalid WebSocket message format");
    }
}

static void metrics(void) { /* WebSocketMetrics */
    rtws_client_stats st;
    rtws_client_get_stats(CL, &st, rtws_time_now_ms());
    printf("metrics messagesReceived=%llu messagesSent=%llu reconnectCount=%u averageLatencyMs=%u "
           "pings=%u connectionUptimeMs=%llu lastError=%s\n",
           (unsigned long long)st.total.msgs_in, (unsigned long long)st.total.msgs_out, st.reconnects,
           st.total.rtt_avg_ms, st.total.rtt_samples, (unsigned long long)st.uptime_ms, last_error);
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    (void)cl;
    (void)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE)
        on_text((const char *)ev->conn.event->message.data, ev->conn.event->message.len);
    if (ev->type != RTWS_CLIENT_EV_STATE) return;
    switch (ev->state.state) {
    case RTWS_CLIENT_CONNECTING: printf("state connecting\n"); break;
    case RTWS_CLIENT_OPEN:
        printf("state connected\n");
        if (want_missed) request_missed();
        break;
    case RTWS_CLIENT_RECONNECTING: /* handleConnectionError: .failed(error), then .reconnecting */
        printf("state failed(%s)\n", rtws_err_str(ev->state.reason));
        printf("state reconnecting attempt=%u delay=%ums\n", ev->state.attempt, ev->state.delay_ms);
        break;
    case RTWS_CLIENT_CLOSED: printf("state disconnected\n"); break;
    case RTWS_CLIENT_FAILED: fail("Failed to reconnect after multiple attempts"); break;
    default: break;
    }
}

static void command(char *line) {
    if (!strncmp(line, "subscribe ", 10)) send_channels("subscribe", line + 10);
    else if (!strncmp(line, "unsubscribe ", 12)) send_channels("unsubscribe", line + 12);
    else if (!strcmp(line, "background")) rtws_client_close(CL, 1001, "background"); /* .goingAway */
    else if (!strcmp(line, "metrics")) metrics();
    else if (strcmp(line, "foreground")) printf("error unknown command %s\n", line);
    else if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN) request_missed();
    else { /* switchToForegroundMode: connect again (fresh attempt count), then ask */
        want_missed = 1;
        if (rtws_client_get_state(CL) == RTWS_CLIENT_CLOSED || rtws_client_get_state(CL) == RTWS_CLIENT_FAILED)
            rtws_client_restart(CL, rtws_time_now_ms());
    }
}

int main(int argc, char **argv) {
    const char *url = NULL, *token = NULL;
    char auth[1024], line[4096];
    rtws_ctx_config cfg = {0};
    rtws_client_config cc = {0};
    rtws_ctx *ctx;
    struct pollfd fds[64];
    size_t have = 0;
    uint32_t ping_ms = 30000, pings = 0;
    uint64_t next_ping = 0;
    int i, running = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (i == 1 && argv[i][0] != '-') url = argv[i];
        else if (!strcmp(argv[i], "--token") && i + 1 < argc) token = argv[++i];
        else if (!strcmp(argv[i], "--ping-ms") && i + 1 < argc) ping_ms = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--backoff-ms") && i + 1 < argc) cc.backoff_base_ms = (uint32_t)atol(argv[++i]);
        else return fprintf(stderr, "clarity_client: unexpected argument %s\n", argv[i]), usage(stderr), 2;
    }
    if (!url) return fprintf(stderr, "clarity_client: URL required\n"), usage(stderr), 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!token || !token[0] || strlen(token) > sizeof auth - 8)
        return printf("error Authentication required for WebSocket connection\n"), 1;
    snprintf(auth, sizeof auth, "Bearer %s", token);
    cc.url = url;
    cc.opts.authorization = auth;
    cc.on_event = on_event;
    cc.backoff_base_ms = cc.backoff_base_ms ? cc.backoff_base_ms : 2000; /* reconnectDelay 2 s */
    cc.backoff_max_ms = cc.backoff_base_ms * 16;                           /* x 2^(attempt-1) */
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 5; /* maxReconnectAttempts */
    cc.stable_ms = 1;    /* connect() sets reconnectAttempts = 0 */
    if (!(ctx = rtws_ctx_new(&cfg)) || !(CL = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL)))
        return fprintf(stderr, "clarity_client: bad URL %s\n", url), 1;
    while (running) {
        int n = rtws_ctx_fill_pollfds(ctx, fds, 63), ms = rtws_ctx_get_timeout_ms(ctx, rtws_time_now_ms());
        uint64_t now = rtws_time_now_ms();
        rtws_conn *c = rtws_client_get_conn(CL);
        if (n > 63) n = 63;
        fds[n].fd = 0;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        poll(fds, (nfds_t)n + 1, ms < 0 || ms > 50 ? 50 : ms); /* the ping timer is ours */
        rtws_ctx_service(ctx, fds, n, rtws_time_now_ms());
        if (rtws_client_get_state(CL) != RTWS_CLIENT_OPEN || !c) {
            next_ping = now + ping_ms; /* pingTimer starts with the connection */
        } else if (now >= next_ping) { /* sendPing: a WebSocket ping; its pong gives the latency */
            char id[16];
            next_ping = now + ping_ms;
            rtws_conn_ping(c, id, (size_t)snprintf(id, sizeof id, "p%u", ++pings));
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
    metrics();
    rtws_client_close(CL, 1001, "going away"); /* disconnect(): .goingAway */
    for (i = 0; i < 50 && rtws_client_get_state(CL) == RTWS_CLIENT_CLOSING; i++) rtws_ctx_run_once(ctx, 20);
    rtws_client_free(CL);
    rtws_ctx_free(ctx);
    return 0;
}
