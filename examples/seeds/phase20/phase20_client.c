/* phase20_client - the "Phase 20" client library (seed 002) as a terminal program (README.md):
   five connection states, reconnect with backoff (5 attempts), an offline queue flushed in order,
   ping-pong latency, channels, presence and data sync, in the document's {type, payload} messages.
   Commands: see usage(). Prints "queued N" while offline, "status S" (connecting, connected,
   disconnected, reconnecting, error), "latency N ms", "TYPE CHANNEL PAYLOAD", "data C N records".
 */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAXCH 16
static rtws_client *CL;
static const char *status = "";
static char chans[MAXCH][64]; /* subscribed channels */
static long records[MAXCH];   /* data sync: records held per channel */
static int64_t latency = -1;
#define IS_OPEN() (rtws_client_get_state(CL) == RTWS_CLIENT_OPEN)
#define PING()                                                                                     \
    (IS_OPEN() ? send_msg(NULL, "ping", NULL, NULL, NULL, NULL, NULL, "timestamp", NULL) : (void)0)

static void usage(FILE *f) {
    fprintf(f, "usage: phase20_client URL [--heartbeat-ms N] [--reconnect-ms N]\n"
               "The Phase 20 client (e.g. ws://127.0.0.1:8080/?token=JWT). Commands on stdin:\n"
               "  subscribe C | unsubscribe C | send C EVENT JSON | presence C STATUS\n"
               "  insert C RESOURCE JSON | update C ID JSON | delete C ID | ping | stats | quit\n"
               "  --heartbeat-ms N  ping (latency) interval (30000)   --help  print this and exit\n"
               "  --reconnect-ms N  first reconnect delay, doubling, 5 attempts (3000)\n");
}

static void set_status(const char *s, const char *detail) {
    status = s;
    printf("status %s%s%s\n", s, detail[0] ? " " : "", detail);
}

static int find_ch(const char *c) { /* the slot of channel c ("": a free one), or -1 */
    int i;
    for (i = 0; i < MAXCH; i++)
        if (!strcmp(chans[i], c))
            return i;
    return -1;
}

/* {"type":type,"payload":{"channel":chan,k1:v1,k2:v2,jkey:json}} (NULLs left out; json NULL: the
   time now, ms), sent now, or queued by rtws_client while reconnecting (sent first once open).
   With a key: a restore message, sent now when open and again after every reconnect. */
static void send_msg(const char *key, const char *type, const char *chan, const char *k1,
                     const char *v1, const char *k2, const char *v2, const char *jkey,
                     const char *json) {
    char buf[8192];
    rtws_json_writer w;
    size_t n;
    const char *k[3] = {"channel", k1, k2}, *v[3] = {chan, v1, v2};
    int i;
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "type", type);
    rtws_json_write_key(&w, "payload", 7);
    rtws_json_write_object(&w);
    for (i = 0; i < 3; i++)
        if (k[i] && v[i])
            rtws_json_write_str_field(&w, k[i], v[i]);
    if (jkey && json)
        rtws_json_write_raw_field(&w, jkey, json, strlen(json));
    else if (jkey)
        rtws_json_write_int64_field(&w, jkey, (int64_t)rtws_time_wall_ms());
    rtws_json_write_object_end(&w);
    rtws_json_write_object_end(&w);
    if (rtws_json_writer_finish(&w, &n) != RTWS_OK)
        printf("error - not sent (bad JSON)\n");
    else if (key && rtws_client_set_restore(CL, key, RTWS_OP_TEXT, buf, n) != RTWS_OK)
        printf("error - not sent\n");
    else if (!key && rtws_client_send(CL, RTWS_OP_TEXT, buf, n, 0) != RTWS_OK)
        printf("error - not sent\n");
    else if (!IS_OPEN() && !key)
        printf("queued %zu\n", rtws_client_get_queued(CL, NULL));
}

static void on_text(const char *s, size_t len) { /* as the document's handlers see a message */
    rtws_json d;
    rtws_json_tok t[2048];
    char type[64], chan[64];
    const char *raw;
    size_t rl;
    int p, v, i, a, has_chan;
    if (rtws_json_parse(&d, s, len, t, 2048, 0) != RTWS_OK)
        return;
    rtws_json_get_str(&d, 0, "type", type, sizeof type);
    has_chan = rtws_json_get_str(&d, 0, "channel", chan, sizeof chan) >= 0; /* else "" */
    if (!strcmp(type, "pong") && rtws_json_get_int64(&d, 0, "timestamp", &latency) == RTWS_OK) {
        printf("latency %lld ms\n", (long long)(latency = (int64_t)rtws_time_wall_ms() - latency));
        return;
    }
    raw = rtws_json_raw(&d, p = rtws_json_get(&d, 0, "payload"), &rl);
    printf("%s %s %.*s\n", type, has_chan ? chan : "-", raw ? (int)rl : 4, raw ? raw : "null");
    if (!chan[0] || (i = find_ch(chan)) < 0)
        return;
    a = rtws_json_get(&d, p, "action");
    if (!strcmp(type, "snapshot") && (v = rtws_json_get(&d, p, "records")) >= 0)
        records[i] = (long)t[v].size;
    else if (!strcmp(type, "sync")) /* insert: +1, delete: -1 */
        records[i] += rtws_json_eq(&d, a, "insert") - rtws_json_eq(&d, a, "delete");
    else
        return;
    printf("data %s %ld records\n", chan, records[i]);
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    (void)cl;
    (void)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE &&
        ev->conn.event->message.opcode == RTWS_OP_TEXT)
        on_text((const char *)ev->conn.event->message.data, ev->conn.event->message.len);
    if (ev->type != RTWS_CLIENT_EV_STATE)
        return;
    if (ev->state.state == RTWS_CLIENT_CONNECTING && !ev->state.attempt)
        set_status("connecting", "");
    else if (ev->state.state == RTWS_CLIENT_CLOSED)
        set_status("disconnected", "");
    else if (ev->state.state == RTWS_CLIENT_FAILED)
        set_status("error", "reconnect attempts exhausted");
    else if (ev->state.state == RTWS_CLIENT_OPEN) { /* channels, presence, queue: sent */
        set_status("connected", "");
        PING();
    } else if (ev->state.state == RTWS_CLIENT_RECONNECTING) {
        set_status(strcmp(status, "connected") ? "error" : "disconnected",
                   rtws_err_str(ev->state.reason));
        status = "reconnecting";
        printf("status reconnecting attempt=%u delay=%ums\n", ev->state.attempt,
               ev->state.delay_ms);
    }
}

static void command(char *s) {
    char *a = strtok(s, " "), *b = strtok(NULL, " "), *c = strtok(NULL, " "), *j = strtok(NULL, "");
    char sub[80], pre[80]; /* b's restore keys: its subscription, its presence status */
    int i;
    if (!a)
        return;
    snprintf(sub, sizeof sub, "s %s", b ? b : "");
    snprintf(pre, sizeof pre, "p %s", b ? b : "");
    if (!strcmp(a, "subscribe") && b && find_ch(b) < 0 && (i = find_ch("")) >= 0 &&
        strlen(b) < sizeof chans[i]) { /* else (already, full, too long): an error */
        snprintf(chans[i], sizeof chans[i], "%s", b);
        send_msg(sub, "subscribe", b, NULL, NULL, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "unsubscribe") && b && (i = find_ch(b)) >= 0) {
        chans[i][0] = 0;
        rtws_client_clear_restore(CL, sub);
        rtws_client_clear_restore(CL, pre);
        if (IS_OPEN())
            send_msg(NULL, "unsubscribe", b, NULL, NULL, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "send") && c) {
        send_msg(NULL, "channel_message", b, "event", c, NULL, NULL, "payload", j ? j : "null");
    } else if (!strcmp(a, "presence") && c && find_ch(b) >= 0) {
        send_msg(pre, "presence", b, "status", c, NULL, NULL, NULL, NULL);
    } else if (!strcmp(a, "insert") && j) {
        send_msg(NULL, "sync", b, "action", "insert", "resource", c, "record", j);
    } else if (!strcmp(a, "update") && j) {
        send_msg(NULL, "sync", b, "action", "update", "id", c, "changes", j);
    } else if (!strcmp(a, "delete") && c) {
        send_msg(NULL, "sync", b, "action", "delete", "id", c, NULL, NULL);
    } else if (!strcmp(a, "ping")) {
        PING();
    } else if (!strcmp(a, "stats")) { /* the document's getStats() */
        rtws_client_stats st;
        rtws_client_get_stats(CL, &st, rtws_time_now_ms());
        printf(
            "stats status=%s connectedAt=%llu latency=%lld messagesSent=%llu messagesReceived=%llu "
            "reconnects=%u queued=%zu\n",
            status, (unsigned long long)st.connected_since_ms, (long long)latency,
            (unsigned long long)st.total.msgs_out, (unsigned long long)st.total.msgs_in,
            st.reconnects, rtws_client_get_queued(CL, NULL));
    } else {
        printf("error - unknown command %s\n", a);
    }
}

int main(int argc, char **argv) {
    const char *url = NULL;
    rtws_ctx_config cfg = {0};
    rtws_client_config cc = {0};
    rtws_ctx *ctx;
    struct pollfd fds[64] = {{0, POLLIN, 0}}; /* stdin, then the context's sockets */
    char line[8192], *nl;
    size_t have = 0, k;
    ssize_t r;
    long v, heartbeat = 30000, reconnect = 3000;
    uint64_t next_ping = 0;
    int i, running = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help"))
            return usage(stdout), 0;
        else if (i == 1 && argv[i][0] != '-')
            url = argv[i];
        else if (!strcmp(argv[i], "--heartbeat-ms") && i + 1 < argc)
            heartbeat = rtws_opt_number(argv[++i], 1, 86400000, &v) ? v : -1;
        else if (!strcmp(argv[i], "--reconnect-ms") && i + 1 < argc)
            reconnect = rtws_opt_number(argv[++i], 1, 86400000, &v) ? v : -1;
        else
            return fprintf(stderr, "phase20_client: unexpected argument %s\n", argv[i]),
                   usage(stderr), 2;
    }
    if (!url || heartbeat < 0 || reconnect < 0) /* no URL, or an N not a number in 1..86400000 */
        return fputs(url ? "each N: 1..86400000\n" : "URL required\n", stderr), usage(stderr), 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    cc.url = url;
    cc.on_event = on_event;
    cc.backoff_base_ms = (uint32_t)reconnect; /* exponential: reconnect, x2, x4 ... */
    cc.backoff_max_ms = cc.backoff_base_ms * 16;
    cc.jitter = RTWS_JITTER_NONE;
    cc.max_attempts = 5; /* the document's "max reconnect attempts: 5" */
    cc.stable_ms = 1;    /* a connection that opened starts the count over */
    if (!(ctx = rtws_ctx_new(&cfg)) || !(CL = rtws_client_new(ctx, &cc, rtws_time_now_ms(), NULL)))
        return fprintf(stderr, "phase20_client: bad URL %s\n", url), 1;
    while (running) {
        uint64_t now = rtws_time_now_ms();
        int n = rtws_ctx_fill_pollfds(ctx, fds + 1, 63), ms = rtws_ctx_get_timeout_ms(ctx, now);
        if (n > 63)
            n = 63;
        poll(fds, (nfds_t)n + 1, ms < 0 || ms > 100 ? 100 : ms); /* the heartbeat timer is ours */
        rtws_ctx_service(ctx, fds + 1, n, rtws_time_now_ms());
        if (now >= next_ping) {
            next_ping = now + (uint64_t)heartbeat;
            PING();
        }
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
    rtws_client_close(CL, 1000, "bye");
    for (i = 0; i < 50 && rtws_client_get_state(CL) == RTWS_CLIENT_CLOSING; i++)
        rtws_ctx_run_once(ctx, 20);
    rtws_client_free(CL);
    rtws_ctx_free(ctx);
    return 0;
}
