/* healthmate_server - HealthMate's WebSocket server (seed 001) on the rtws router, with its
   management endpoints over HTTP. README.md beside it maps the document to this code. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J(...) rtws_json_write_fmt(&W, __VA_ARGS__)
static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }
static rtws_router *R;
static const char *SECRET;
static long HISTORY = 50;
static uint64_t NOTES, Z; /* notifications sent; a zero */
static rtws_json_writer W;
static char OUT[65536];
static rtws_json D;
static rtws_json_tok T[256];
static const char *const POOLS[] = {"health_updates", "chat", "notifications"}; /* by endpoint */
#define ISO(ms, t) (rtws_router_format_time((int64_t)(ms), t, sizeof t), t) /* as the document */
/* a message: {"type":type, ..., "timestamp":now}; done() closes it and gives its length */
static void begin(const char *type) {
    rtws_json_writer_init(&W, OUT, sizeof OUT), J("{k:s", "type", type);
}
static size_t done(int stamp) {
    char t[32];
    size_t n = 0;
    if (stamp) J("k:s", "timestamp", ISO(rtws_time_wall_ms(), t));
    return J("}"), rtws_json_writer_finish(&W, &n) == RTWS_OK ? n : 0;
}
static int send_to(rtws_conn *c) {
    return rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, OUT, done(1)), RTWS_ROUTER_HANDLED;
}
static int fail(rtws_conn *c, const char *code, const char *msg, unsigned close_code) {
    begin("error"), J("k:{k:s, k:s}", "data", "code", code, "message", msg), send_to(c);
    return close_code ? (void)rtws_conn_close(c, close_code, msg), 1 : 1; /* 1: handled */
}
static int sget(int o, const char *k, char *out, size_t cap) { /* string field k of object o */
    int v = rtws_json_get(&D, o, k);
    size_t n;
    return v >= 0 && rtws_json_unescape(&D, v, out, cap, &n) == RTWS_OK && n && n == strlen(out);
}
/* what every endpoint does first: parse, heartbeat, authenticate (returns 1: handled) */
static int common(rtws_router *r, rtws_conn *c, const rtws_event *ev, int ep, char *type) {
    char tok[4096], claims[3100]; /* kept with the connection: authenticated when it has them */
    rtws_jwt_claims cl;
    rtws_err e;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&D, (const char *)ev->message.data, ev->message.len, T, 256, 32) ||
        T[0].type != RTWS_JSON_OBJECT || !sget(0, "type", type, 32))
        return fail(c, "invalid_message", "messages are JSON objects with a type", 0);
    if (rtws_router_get_claims(r, c, NULL)) return 0;
    if (strcmp(type, "authenticate"))
        return fail(c, "authentication_required", "first message must be authenticate", 1008);
    if (!sget(0, "token", tok, sizeof tok) ||
        rtws_jwt_hs256_verify_claims(tok, strlen(tok), SECRET, strlen(SECRET),
                                     (int64_t)(rtws_time_wall_ms() / 1000), 0, &cl, claims, 3100))
        return fail(c, "authentication_failed", "invalid or expired token", 1008);
    if ((e = rtws_router_set_identity(r, c, cl.user, claims, cl.json_len))) /* LIMIT: the 6th */
        return fail(c, e == RTWS_ERR_LIMIT ? "connection_limit_exceeded" : "authentication_failed",
                    e == RTWS_ERR_LIMIT ? "too many connections for this user" : "bad id", 1008);
    if (ep == 2) rtws_router_subscribe(r, c, POOLS[2]);
    begin("authenticated"), J("k:{k:s, k:u, k:s}", "data", "user_id", cl.user, "connection_id",
                              rtws_router_get_conn_id(r, c), "state", "authenticated");
    return send_to(c);
}
/* /ws/health: subscribe to the user's health_updates stream; health_update readings */
static int health_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    char type[32], s[64], metric[64], ch[80], t[32];
    const char *u = rtws_router_get_user(r, c);
    int d, v;
    double x;
    if (common(r, c, ev, 0, type)) return RTWS_ROUTER_HANDLED;
    snprintf(ch, sizeof ch, "health_updates:%s", u); /* one stream per user */
    if (!strcmp(type, "subscribe")) {
        if (!sget(0, "subscription", s, sizeof s) || strcmp(s, "health_updates"))
            return fail(c, "invalid_subscription", "the subscription is health_updates", 0);
        rtws_router_subscribe(r, c, ch), rtws_router_subscribe(r, c, POOLS[0]);
        return begin("subscribed"), J("k:{k:s}", "data", "subscription", s), send_to(c);
    }
    if (strcmp(type, "health_update")) return fail(c, "unknown_message_type", type, 0);
    if ((d = rtws_json_get(&D, 0, "data")) < 0 || !sget(d, "metric", metric, sizeof metric) ||
        (v = rtws_json_get(&D, d, "value")) < 0)
        return fail(c, "validation_error", "health_update needs data.metric and data.value", 0);
    begin("health_update"), J("k:j", "data", &D, d); /* to the stream's subscribers only */
    rtws_router_publish_raw(r, ch, RTWS_OP_TEXT, OUT, done(1), rtws_time_now_ms());
    if (!strcmp(metric, "blood_pressure") && !rtws_json_double(&D, v, &x) && x > 140) {
        begin("notification"), J("k:{k:u, k:s, k:s, k:s, k:s, k:s}", "notification", "id", ++NOTES,
                                 "type", "health_alert", "title", "Blood Pressure Alert", "message",
                                 "Your blood pressure is above normal range", "priority", "high",
                                 "created_at", ISO(rtws_time_wall_ms(), t)); /* over 140 mmHg */
        rtws_router_send_to_user(r, u, RTWS_OP_TEXT, OUT, done(1)); /* every connection of u */
    }
    return (void)user, RTWS_ROUTER_HANDLED;
}
static void history_fn(rtws_router *r, const char *ch, uint64_t seq, int op, const uint8_t *p,
                       size_t n, void *user) {
    (void)r, (void)ch, (void)seq, (void)op, (void)user, J("r", (const char *)p, n);
}
/* /ws/chat: join (history), chat_message (to the conversation), typing (to the others) */
static int chat_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    char type[32], conv[65], ch[80];
    const char *u = rtws_router_get_user(r, c);
    int o, v;
    uint64_t seq, h = (uint64_t)HISTORY;
    if (common(r, c, ev, 1, type)) return RTWS_ROUTER_HANDLED;
    if ((o = rtws_json_get(&D, 0, "data")) < 0 || T[o].type != RTWS_JSON_OBJECT) o = 0;
    if (!sget(o, "conversation_id", conv, sizeof conv)) /* in "data" or beside "type" */
        return fail(c, "validation_error", "conversation_id is required", 0);
    snprintf(ch, sizeof ch, "chat:%s", conv);
    if (!strcmp(type, "join")) {
        if (rtws_router_subscribe(r, c, ch)) return fail(c, "validation_error", "bad channel", 0);
        rtws_router_subscribe(r, c, POOLS[1]), seq = rtws_router_get_seq(r, ch);
        begin("chat_history"), J("k:{k:s, k:[", "data", "conversation_id", conv, "messages");
        rtws_router_get_history(r, ch, seq > h ? seq - h : 0, 0, history_fn, NULL);
        return J("]}"), send_to(c);
    }
    if (!rtws_router_is_subscribed(r, c, ch)) return fail(c, "not_joined", "join first", 0);
    if (!strcmp(type, "chat_message")) {
        if ((v = rtws_json_get(&D, o, "message")) < 0 || T[v].type != RTWS_JSON_STRING)
            return fail(c, "validation_error", "message is required", 0);
        begin("chat_message"), J("k:{k:j, k:s, k:s}", "data", "message", &D, v, "sender", u,
                                 "conversation_id", conv);
        rtws_router_publish_raw(r, ch, RTWS_OP_TEXT, OUT, done(1), rtws_time_now_ms());
    } else if (!strcmp(type, "typing")) {
        v = rtws_json_get(&D, o, "is_typing"), begin("typing");
        J("k:{k:s, k:s, k:b}", "data", "user_id", u, "conversation_id", conv, "is_typing",
          v < 0 || T[v].type == RTWS_JSON_TRUE);
        rtws_router_send_to_channel(r, ch, RTWS_OP_TEXT, OUT, done(1), c); /* not to itself */
    } else
        fail(c, "unknown_message_type", type, 0);
    return (void)user, RTWS_ROUTER_HANDLED;
}
/* /ws/notifications: nothing to ask after authenticate; notifications come to the user */
static int notify_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    char type[32];
    return (void)user, common(r, c, ev, 2, type) ? 1 : fail(c, "unknown_message_type", type, 0);
}
static void on_event(rtws_conn *c, const rtws_event *ev, void *user) { /* accepted: an id */
    if (ev->type == RTWS_EV_OPEN) begin("welcome"), J("k:{k:u, k:s}", "data", "connection_id",
                                     rtws_router_get_conn_id(R, c), "state", "connected");
    if (ev->type == RTWS_EV_OPEN) send_to(c);
    (void)user;
}
static int reconnect_fn(rtws_router *r, rtws_conn *c, void *u) { /* 1012: come back */
    return (void)r, (void)u, rtws_conn_close(c, 1012, "reconnect"), 0;
}
#define IS(m) (req->method.len == strlen(m) && !memcmp(req->method.p, m, req->method.len))
/* the management endpoints: JSON replies, FastAPI's {"detail"} for errors */
static int on_http(rtws_conn *hc, const rtws_http *req, rtws_http_reply *rep, void *user) {
    char path[200], uid[64], rest[32] = "", t1[32], t2[32];
    unsigned long long id;
    rtws_conn *c = NULL;
    rtws_router_stats st;
    rtws_conn_stats cs;
    uint64_t off = rtws_time_wall_ms() - rtws_time_now_ms(), i, n; /* monotonic to wall clock */
    if (req->path.len >= sizeof path) return 0;
    memcpy(path, req->path.p, req->path.len), path[req->path.len] = 0;
    rep->content_type = "application/json", rep->status = 200;
    rtws_json_writer_init(&W, OUT, sizeof OUT), J("{");
    if (!strcmp(path, "/ws/status") && IS("GET")) {
        rtws_router_get_stats(R, &st);
        J("k:s, k:u, k:u, k:u, k:{", "status", "healthy", "active_connections",
          (uint64_t)st.active_connections, "total_connections", st.total_connections,
          "users_online", (uint64_t)st.users_online, "subscriptions");
        for (i = 0; i < 3; i++) /* a pool: the users on its endpoint that subscribed */
            J("k:u", POOLS[i], (uint64_t)rtws_router_get_presence(R, POOLS[i], NULL, NULL));
        J("}, k:s", "timestamp", ISO(rtws_time_wall_ms(), t1));
    } else if (sscanf(path, "/ws/connection/%llu%31s", &id, rest) >= 1 &&
               !(c = rtws_router_find_conn(R, id))) {
        J("k:s", "detail", "Connection not found"), rep->status = 404;
    } else if (c && !strcmp(rest, "/health") && IS("GET")) {
        const char *u = rtws_router_get_claims(R, c, NULL) ? rtws_router_get_user(R, c) : NULL;
        rtws_conn_get_stats(c, &cs);
        J("k:u, k:{k:s, k:s, k:s, k:s", "connection_id", (uint64_t)id, "health", "state",
          u ? "authenticated" : "connected", "user_id", u, "connected_at",
          ISO(cs.opened_at_ms + off, t1), "last_activity", ISO(cs.last_msg_ms + off, t2));
        J("k:u, k:u, k:[", "retry_count", Z, "recovery_attempts", Z, "subscriptions"); /* ours: 0 */
        for (i = 0; i < 3; i++)
            if (rtws_router_is_subscribed(R, c, POOLS[i])) J("s", POOLS[i]);
        J("], k:b}", "is_healthy", rtws_conn_get_state(c) == RTWS_STATE_OPEN);
    } else if (c && !rest[0] && IS("DELETE")) {
        rtws_conn_close(c, 1000, "disconnected by server");
        J("k:s, k:u", "message", "Connection disconnected", "connection_id", (uint64_t)id);
    } else if (sscanf(path, "/ws/user/%63[^/]%31s", uid, rest) == 2 && IS("POST") &&
               !strcmp(rest, "/reconnect")) { /* every connection of the user is asked to */
        n = rtws_router_foreach_conn(R, uid, NULL, reconnect_fn, NULL);
        J("k:s, k:s, k:u", "message", n ? "Reconnection initiated" : "No connections for user",
          "user_id", uid, "connections", n);
    } else {
        J("k:s", "detail", "Not Found"), rep->status = 404;
    }
    rep->body = OUT, rep->body_len = done(0);
    return (void)hc, (void)user, 1;
}
static void usage(FILE *f) {
    fputs("usage: healthmate_server --jwt-secret S [--host H] [--port P] [--history N]\n"
          "  [--auth-timeout-ms MS] [--max-connections N] [--max-per-user N]\n"
          "  [--idle-timeout-ms MS]\n"
          "HealthMate's WebSocket server on /ws/health, /ws/chat and /ws/notifications. The\n"
          "first message: {\"type\":\"authenticate\",\"token\":JWT} (HS256 with S, sub: the\n"
          "user) within MS (10000), else close 1008. Limits: 1000 connections, 5 per user\n"
          "(more: error, close 1008), close 1001 after 3600000 ms idle. N (50): chat messages\n"
          "sent on join. Host 127.0.0.1, port 8000 (0: any). HTTP: GET /ws/status, GET\n"
          "/ws/connection/{id}/health, DELETE /ws/connection/{id}, POST /ws/user/{id}/reconnect.\n"
          "Prints \"listening on H:P\" once ready.\n", f);
}
int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *names[] = {"--port", "--auth-timeout-ms", "--max-connections",
                                               "--max-per-user", "--idle-timeout-ms", "--history"};
    long port = 8000, auth_ms = 10000, max_conns = 1000, per_user = 5, idle_ms = 3600000;
    long *nums[] = {&port, &auth_ms, &max_conns, &per_user, &idle_ms, &HISTORY};
    int bound = 0, i, j;
    rtws_router_endpoint eps[3];
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[++i] : NULL;
        if (!strcmp(a, "--help")) return usage(stdout), 0;
        for (j = 0; j < 6 && strcmp(a, names[j]);) j++;
        if (v && j < 6) *nums[j] = atol(v);
        else if (v && !strcmp(a, "--host")) host = v;
        else if (v && !strcmp(a, "--jwt-secret")) SECRET = v;
        else return fprintf(stderr, "unknown or incomplete option %s\n", a), usage(stderr), 2;
    }
    if (!SECRET || !*SECRET || port < 0 || port > 65535 || auth_ms < 1 || max_conns < 1 ||
        per_user < 1 || idle_ms < 1 || HISTORY < 0 || HISTORY > 1000)
        return fputs("--jwt-secret is required; numbers out of range\n", stderr), usage(stderr), 2;
    memset(eps, 0, sizeof eps), memset(&rc, 0, sizeof rc), memset(&cfg, 0, sizeof cfg);
    eps[0].path = "/ws/health", eps[1].path = "/ws/chat", eps[2].path = "/ws/notifications";
    eps[0].on_receive = health_recv, eps[1].on_receive = chat_recv, eps[2].on_receive = notify_recv;
    for (i = 0; i < 3; i++) eps[i].builtin_protocol_off = 1, eps[i].auth_required = 1;
    rc.endpoints = eps, rc.n_endpoints = 3, rc.auth_timeout_ms = (uint32_t)auth_ms;
    rc.max_conns_per_user = (size_t)per_user, rc.history = (size_t)HISTORY + 1;
    rc.on_event = on_event, rc.on_http = on_http, rc.status_off = 1; /* /ws/status is ours */
    if (!(R = rtws_router_new(&rc))) return 1;
    cfg.max_connections = (size_t)max_conns, cfg.conn.idle_timeout_ms = (uint32_t)idle_ms;
    rtws_router_install(R, &cfg);
    if (!(ctx = rtws_ctx_new(&cfg)) || rtws_ctx_listen(ctx, host, (int)port, &bound))
        return fprintf(stderr, "healthmate_server: cannot listen on %s:%ld\n", host, port), 1;
    signal(SIGINT, on_signal), signal(SIGTERM, on_signal), signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%d\n", host, bound), fflush(stdout);
    while (!stop && rtws_ctx_run_once(ctx, 1000) >= 0) continue;
    rtws_ctx_shutdown(ctx, RTWS_CLOSE_GOING_AWAY, "server shutting down", rtws_time_now_ms());
    for (i = 0; i < 20 && rtws_ctx_get_conn_count(ctx) > 0; i++) rtws_ctx_run_once(ctx, 100);
    return rtws_router_free(R), rtws_ctx_free(ctx), 0;
}
