/* clarity_client - the CLARITY Pulse WebSocketManager (seed 000) as a terminal program (README.md):
   a bearer token at the upgrade, the typed messages, reconnect with exponential backoff (2, 4, 8,
   16, 32 s, then give up), a ping every 30 s, metrics, "missed updates since" in the foreground.
   stdin (see usage()): subscribe CH... | unsubscribe CH... | background (the socket closes) |
   foreground (reconnect, requestMissedUpdates since the newest update) | metrics | quit */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static rtws_client *CL;
static char last_update[128]; /* the newest healthDataUpdate timestamp seen (ISO 8601) */
static char last_error[160] = "none";
static int want_missed; /* foreground: ask for the missed updates once connected */

static void usage(FILE *f) {
    fprintf(f, "usage: clarity_client URL --token T [--ping-ms N] [--backoff-ms N]\n"
               "The CLARITY Pulse WebSocket client (e.g. ws://127.0.0.1:8000/ws).\n"
               "  --token T  as \"Authorization: Bearer T\"   --ping-ms N  ping interval (30000)\n"
               "  --backoff-ms N  first reconnect delay, doubling, 5 attempts (2000)   --help\n"
               "stdin: subscribe|unsubscribe CH... | background | foreground | metrics | quit\n");
}

static void fail(const char *what) {
    snprintf(last_error, sizeof last_error, "%.150s", what);
    printf("error %s\n", what);
}

static void send_json(rtws_json_writer *w, char *buf) {
    size_t n;
    rtws_json_write_object_end(w);
    if (rtws_json_writer_finish(w, &n) != RTWS_OK)
        fail("Invalid WebSocket message format");
    else if (rtws_client_send(CL, RTWS_OP_TEXT, buf, n, 0) != RTWS_OK)
        fail("WebSocket connection failed: not sent");
}

static void begin(rtws_json_writer *w, char *buf, size_t cap, const char *type) {
    rtws_json_writer_init(w, buf, cap);
    rtws_json_write_object(w);
    rtws_json_write_str_field(w, "type", type);
}

/* SubscribeMessage / UnsubscribeMessage: {"type":..., "channels":[...]} */
static void send_channels(const char *type, char *list) {
    char buf[4096], *ch;
    rtws_json_writer w;
    begin(&w, buf, sizeof buf, type);
    rtws_json_write_key(&w, "channels", 8);
    rtws_json_write_array(&w);
    for (ch = strtok(list, " "); ch; ch = strtok(NULL, " "))
        rtws_json_write_string(&w, ch, strlen(ch));
    rtws_json_write_array_end(&w);
    send_json(&w, buf);
}

/* handleAppForeground: requestMissedUpdates, since the newest update this app has */
static void request_missed(void) {
    char buf[256];
    rtws_json_writer w;
    want_missed = 0;
    begin(&w, buf, sizeof buf, "requestMissedUpdates");
    if (last_update[0])
        rtws_json_write_str_field(&w, "since", last_update);
    else
        rtws_json_write_raw_field(&w, "since", "null", 4);
    printf("requestMissedUpdates since=%s\n", last_update[0] ? last_update : "null");
    send_json(&w, buf);
}

/* the document's WebSocketMessage cases, each decoded and handled */
static void on_text(const char *s, size_t len) {
    static rtws_json_tok t[4096];
    rtws_json d;
    char type[32], a[128], b[128], c[512], e[512], buf[1024];
    const char *raw;
    size_t n = 0;
    int p, v, bad = rtws_json_parse(&d, s, len, t, 4096, 0) != RTWS_OK;
#define GET(key, buf) (rtws_json_get_str(&d, p, key, buf, sizeof buf), buf) /* "" when absent */
    rtws_json_get_str(&d, 0, "type", type, sizeof type); /* "" when the parse failed */
    if (bad || (p = rtws_json_get(&d, 0, "payload")) < 0 || t[p].type != RTWS_JSON_OBJECT)
        fail("Failed to decode WebSocket message");
    else if (!strcmp(type, "connectionAck")) {
        v = rtws_json_get(&d, p, "capabilities");
        printf("connectionAck sessionId=%s serverTime=%s capabilities=%u\n", GET("sessionId", a),
               GET("serverTime", b), v >= 0 ? t[v].size : 0);
    } else if (!strcmp(type, "healthDataUpdate")) {
        GET("timestamp", b);
        if (strcmp(b, last_update) > 0)
            snprintf(last_update, sizeof last_update, "%s", b);    /* any order */
        raw = rtws_json_raw(&d, rtws_json_get(&d, p, "data"), &n); /* NULL when absent */
        printf("healthDataUpdate id=%s timestamp=%s isUrgent=%s source=%s data=%.*s\n",
               GET("id", a), b, rtws_json_get_bool(&d, p, "isUrgent", 0) ? "true" : "false",
               GET("source", c), raw ? (int)n : 4, raw ? raw : "null");
    } else if (!strcmp(type, "notification")) { /* .alert, .badge, .silent */
        printf("notification %s id=%s title=%s body=%s\n", GET("type", a), GET("id", b),
               GET("title", c), GET("body", e));
    } else if (!strcmp(type, "syncRequest")) { /* answered with a SyncResponseMessage */
        rtws_json_writer w;
        printf("syncRequest %s id=%s\n", GET("type", a), GET("id", b));
        begin(&w, buf, sizeof buf, "syncResponse");
        rtws_json_write_str_field(&w, "requestId", b);
        rtws_json_write_key(&w, "data", 4);
        rtws_json_write_object(&w);
        rtws_json_write_str_field(&w, "syncType", a);
        rtws_json_write_str_field(&w, "lastUpdate", last_update);
        rtws_json_write_object_end(&w);
        send_json(&w, buf);
    } else if (!strcmp(type, "error")) {
        snprintf(c, sizeof c, "Server error: %s", GET("message", a));
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
           (unsigned long long)st.total.msgs_in, (unsigned long long)st.total.msgs_out,
           st.reconnects, st.total.rtt_avg_ms, st.total.rtt_samples,
           (unsigned long long)st.uptime_ms, last_error);
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    (void)cl;
    (void)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE)
        on_text((const char *)ev->conn.event->message.data, ev->conn.event->message.len);
    if (ev->type != RTWS_CLIENT_EV_STATE)
        return;
    if (ev->state.state == RTWS_CLIENT_CONNECTING)
        printf("state connecting\n");
    else if (ev->state.state == RTWS_CLIENT_CLOSED)
        printf("state disconnected\n");
    else if (ev->state.state == RTWS_CLIENT_FAILED)
        fail("Failed to reconnect after multiple attempts");
    else if (ev->state.state == RTWS_CLIENT_OPEN) {
        printf("state connected\n");
        if (want_missed)
            request_missed();
    } else if (ev->state.state == RTWS_CLIENT_RECONNECTING) { /* .failed(error), .reconnecting */
        printf("state failed(%s)\n", rtws_err_str(ev->state.reason));
        printf("state reconnecting attempt=%u delay=%ums\n", ev->state.attempt, ev->state.delay_ms);
    }
}

static void command(char *line) {
    if (!strncmp(line, "subscribe ", 10))
        send_channels("subscribe", line + 10);
    else if (!strncmp(line, "unsubscribe ", 12))
        send_channels("unsubscribe", line + 12);
    else if (!strcmp(line, "background"))
        rtws_client_close(CL, 1001, "background"); /* .goingAway */
    else if (!strcmp(line, "metrics"))
        metrics();
    else if (strcmp(line, "foreground"))
        printf("error unknown command %s\n", line);
    else if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN)
        request_missed();
    else { /* switchToForegroundMode: connect again (fresh attempt count), then ask */
        want_missed = 1;
        if (rtws_client_get_state(CL) == RTWS_CLIENT_CLOSED ||
            rtws_client_get_state(CL) == RTWS_CLIENT_FAILED)
            rtws_client_restart(CL, rtws_time_now_ms());
    }
}

int main(int argc, char **argv) {
    const char *url = NULL, *token = NULL;
    char auth[1024], line[4096], id[16], *nl;
    rtws_ctx_config cfg = {0};
    rtws_client_config cc = {0};
    rtws_ctx *ctx;
    struct pollfd fds[64] = {{0, POLLIN, 0}}; /* stdin, then the context's sockets */
    size_t have = 0, k;
    ssize_t r;
    long v, ping_ms = 30000, backoff_ms = 2000; /* pingInterval 30 s, reconnectDelay 2 s */
    uint64_t next_ping = 0;
    int i, running = 1, pings = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help"))
            return usage(stdout), 0;
        else if (i == 1 && argv[i][0] != '-')
            url = argv[i];
        else if (!strcmp(argv[i], "--token") && i + 1 < argc)
            token = argv[++i];
        else if (!strcmp(argv[i], "--ping-ms") && i + 1 < argc)
            ping_ms = rtws_opt_number(argv[++i], 1, 86400000, &v) ? v : -1;
        else if (!strcmp(argv[i], "--backoff-ms") && i + 1 < argc)
            backoff_ms = rtws_opt_number(argv[++i], 1, 86400000, &v) ? v : -1;
        else
            return fprintf(stderr, "clarity_client: unexpected argument %s\n", argv[i]),
                   usage(stderr), 2;
    }
    if (!url || ping_ms < 0 || backoff_ms < 0) /* no URL, or an N not a number in 1..86400000 */
        return fputs(url ? "each N: 1..86400000\n" : "URL required\n", stderr), usage(stderr), 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!token || !token[0] || strlen(token) > sizeof auth - 8)
        return printf("error Authentication required for WebSocket connection\n"), 1;
    snprintf(auth, sizeof auth, "Bearer %s", token);
    cc.url = url;
    cc.opts.authorization = auth;
    cc.on_event = on_event;
    cc.backoff_base_ms = (uint32_t)backoff_ms;
    cc.backoff_max_ms = cc.backoff_base_ms * 16; /* x 2^(attempt-1) */
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 5; /* maxReconnectAttempts */
    cc.stable_ms = 1;    /* connect() sets reconnectAttempts = 0 */
    if (!(ctx = rtws_ctx_new(&cfg)) || !(CL = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL)))
        return fprintf(stderr, "clarity_client: bad URL %s\n", url), 1;
    while (running) {
        uint64_t now = rtws_time_now_ms();
        int n = rtws_ctx_fill_pollfds(ctx, fds + 1, 63), ms = rtws_ctx_get_timeout_ms(ctx, now);
        rtws_conn *c = rtws_client_get_conn(CL);
        if (n > 63)
            n = 63;
        poll(fds, (nfds_t)n + 1, ms < 0 || ms > 50 ? 50 : ms); /* the ping timer is ours */
        rtws_ctx_service(ctx, fds + 1, n, rtws_time_now_ms());
        if (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN && c && now >= next_ping) /* sendPing */
            rtws_conn_ping(c, id, (size_t)snprintf(id, sizeof id, "p%d", ++pings)); /* pong: RTT */
        if (rtws_client_get_state(CL) != RTWS_CLIENT_OPEN || !c || now >= next_ping)
            next_ping = now + (uint64_t)ping_ms; /* pingTimer starts with the connection */
        if (!fds[0].revents)
            continue;
        if ((r = read(0, line + have, sizeof line - 1 - have)) <= 0)
            break;
        for (have += (size_t)r; (nl = (char *)memchr(line, '\n', have)) != NULL; have -= k) {
            k = (size_t)(nl - line) + 1;
            *nl = 0;
            if ((running = running && strcmp(line, "quit")))
                command(line);
            memmove(line, line + k, have - k);
        }
        if (have == sizeof line - 1)
            have = 0;                                 /* a line too long: dropped */
        rtws_ctx_run_timers(ctx, rtws_time_now_ms()); /* what the commands sent goes out now */
    }
    metrics();
    rtws_client_close(CL, 1001, "going away"); /* disconnect(): .goingAway */
    for (i = 0; i < 50 && rtws_client_get_state(CL) == RTWS_CLIENT_CLOSING; i++)
        rtws_ctx_run_once(ctx, 20);
    rtws_client_free(CL);
    rtws_ctx_free(ctx);
    return 0;
}
