/* healthmate_server - HealthMate's WebSocket server (seed 001) on the rtws router, with its
   management endpoints over HTTP. README.md beside it maps the document to this code. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }

static rtws_router *R;
static long HISTORY = 50;
static int64_t NOTES;      /* notifications sent: their ids */
static rtws_json_writer W; /* the message being written (one at a time) */
static char OUT[65536];
static size_t LEN;  /* a finished message's length */
static rtws_json D; /* the message being read */
static rtws_json_tok T[256];
static const char *const POOLS[] = {"health_updates", "chat", "notifications"}; /* by endpoint */

static const char *iso(uint64_t ms, char *t) { /* the document's times: ISO 8601 UTC */
    rtws_router_format_time((int64_t)ms, t, 32);
    return t;
}
static void begin(void) { /* {... : the fields follow, finish() closes it */
    rtws_json_writer_init(&W, OUT, sizeof OUT);
    rtws_json_write_object(&W);
}
static size_t finish(void) { /* adds the timestamp; the message's length (0: error) */
    char t[32];
    size_t n;
    rtws_json_write_fmt(&W, "timestamp:%s}", iso(rtws_time_wall_ms(), t));
    return rtws_json_writer_finish(&W, &n) == RTWS_OK ? n : 0;
}
/* the message whose fields fmt gives ("type:'x', data:{...}"), with its timestamp: its length */
#define MSG(...) (begin(), rtws_json_write_fmt(&W, __VA_ARGS__), finish())
static void send_to(rtws_conn *c, size_t n) {
    rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, OUT, n);
}

/* {"type":"error","data":{"code","message"}}, then close_code (0: stay open); 1: handled */
static int fail(rtws_conn *c, const char *code, const char *msg, unsigned close_code) {
    send_to(c, MSG("type:'error', data:{code:%s, message:%s}", code, msg));
    if (close_code)
        rtws_conn_close(c, close_code, msg);
    return 1;
}
/* the document's notification message to every connection of user; how many got it */
static size_t notify(const char *user, const char *type, const char *title, const char *msg,
                     const char *priority) {
    char t[32];
    LEN = MSG("type:'notification', notification:{id:%i, type:%s, title:%s, message:%s, "
              "priority:%s, created_at:%s}",
              ++NOTES, type, title, msg, priority, iso(rtws_time_wall_ms(), t));
    return rtws_router_send_to_user(R, user, RTWS_OP_TEXT, OUT, LEN);
}
/* what every endpoint does first: parse, authenticate (returns 1: handled) */
static int common(rtws_router *r, rtws_conn *c, const rtws_event *ev, int ep, char *type) {
    char tok[4097];
    int n;
    rtws_err e;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&D, (const char *)ev->message.data, ev->message.len, T, 256, 32) ||
        rtws_json_get_str(&D, 0, "type", type, 32) <= 0)
        return fail(c, "invalid_message", "messages are JSON objects with a type", 0);
    if (strcmp(type, "authenticate") && rtws_router_get_claims(r, c, NULL))
        return 0; /* authenticated: the token's claims are kept */
    if (strcmp(type, "authenticate"))
        return fail(c, "authentication_required", "first message must be authenticate", 1008);
    /* HS256, sub: the user; again with a fresh token before exp: renewed (token refresh) */
    n = rtws_json_get_str(&D, 0, "token", tok, sizeof tok);
    if ((e = rtws_router_authenticate(r, c, tok, n > 0 ? (size_t)n : 0)) == RTWS_ERR_LIMIT)
        return fail(c, "connection_limit_exceeded", "too many connections for this user", 1008);
    if (e)
        return fail(c, "authentication_failed", "invalid or expired token", 1008);
    if (ep == 2)
        rtws_router_subscribe(r, c, POOLS[2]);
    send_to(c,
            MSG("type:'authenticated', data:{user_id:%s, connection_id:%u, state:'authenticated'}",
                rtws_router_get_user(r, c), rtws_router_get_conn_id(r, c)));
    return 1;
}
/* /ws/health: (un)subscribe to the user's health_updates, or to one metric's stream of them */
static int health_msg(rtws_router *r, rtws_conn *c, const char *type) {
    char sub[64], metric[41] = "", all[80], one[128];
    const char *streams[2] = {all, one}, *user = rtws_router_get_user(r, c);
    int d, v, on = type[0] == 's';
    double x;
    snprintf(all, sizeof all, "health_updates:%s", user);
    if (!strcmp(type, "subscribe") || !strcmp(type, "unsubscribe")) {
        rtws_json_get_str(&D, 0, "metric", metric, sizeof metric);
        snprintf(one, sizeof one, "%s%s%s", all, metric[0] ? ":" : "", metric);
        if (rtws_json_get_str(&D, 0, "subscription", sub, sizeof sub) <= 0 ||
            strcmp(sub, "health_updates") ||
            (on ? rtws_router_subscribe(r, c, one) : rtws_router_unsubscribe(r, c, one)))
            return fail(c, "invalid_subscription", "health_updates, optionally with a metric", 0);
        if (on)
            rtws_router_subscribe(r, c, POOLS[0]);
        send_to(c, MSG("type:%s, data:{subscription:%s, metric?:%s}",
                       on ? "subscribed" : "unsubscribed", sub, metric[0] ? metric : NULL));
    } else if (strcmp(type, "health_update"))
        fail(c, "unknown_message_type", type, 0);
    else if ((d = rtws_json_get(&D, 0, "data")) < 0 ||
             rtws_json_get_str(&D, d, "metric", metric, sizeof metric) <= 0 ||
             (v = rtws_json_get(&D, d, "value")) < 0)
        fail(c, "validation_error", "health_update needs data.metric and data.value", 0);
    else {
        snprintf(one, sizeof one, "%s:%s", all, metric);
        LEN = MSG("type:'health_update', data:%t", &D, d); /* once, if on either stream */
        rtws_router_send_to_channels(r, streams, 2, RTWS_OP_TEXT, OUT, LEN, NULL);
        if (!strcmp(metric, "blood_pressure") && !rtws_json_double(&D, v, &x) && x > 140)
            notify(user, "health_alert", "Blood Pressure Alert",
                   "Your blood pressure is above normal range", "high");
    }
    return 1;
}
/* /ws/chat: join (history), chat_message (to the conversation), typing (to the others) */
static void chat_msg(rtws_router *r, rtws_conn *c, const char *type) {
    char conv[65], ch[80];
    const char *user = rtws_router_get_user(r, c);
    int o, v;
    uint64_t seq;
    if ((o = rtws_json_get(&D, 0, "data")) < 0 || T[o].type != RTWS_JSON_OBJECT)
        o = 0; /* the fields may sit in "data" or beside "type" */
    if (rtws_json_get_str(&D, o, "conversation_id", conv, sizeof conv) <= 0) {
        fail(c, "validation_error", "conversation_id is required", 0);
        return;
    }
    snprintf(ch, sizeof ch, "chat:%s", conv);
    if (!strcmp(type, "join")) {
        if (rtws_router_subscribe(r, c, ch)) {
            fail(c, "validation_error", "bad conversation_id", 0);
            return;
        }
        rtws_router_subscribe(r, c, POOLS[1]);
        seq = rtws_router_get_seq(r, ch);
        begin();
        rtws_json_write_fmt(&W, "type:'chat_history', data:{conversation_id:%s, messages:[", conv);
        rtws_router_write_history(r, ch, seq > (uint64_t)HISTORY ? seq - (uint64_t)HISTORY : 0, 0,
                                  &W);
        rtws_json_write_fmt(&W, "]}");
        send_to(c, finish());
    } else if (!rtws_router_is_subscribed(r, c, ch))
        fail(c, "not_joined", "join first", 0);
    else if (!strcmp(type, "chat_message")) {
        if ((v = rtws_json_get(&D, o, "message")) < 0 || T[v].type != RTWS_JSON_STRING)
            fail(c, "validation_error", "message is required", 0);
        else
            rtws_router_publish_raw(
                r, ch, RTWS_OP_TEXT, OUT,
                MSG("type:'chat_message', data:{message:%t, sender:%s, conversation_id:%s}", &D, v,
                    user, conv),
                rtws_time_now_ms());
    } else if (!strcmp(type, "typing")) /* not to the typist */
        rtws_router_send_to_channel(
            r, ch, RTWS_OP_TEXT, OUT,
            MSG("type:'typing', data:{user_id:%s, conversation_id:%s, is_typing:%b}", user, conv,
                rtws_json_get_bool(&D, o, "is_typing", 1)),
            c);
    else
        fail(c, "unknown_message_type", type, 0);
}
/* every endpoint: authenticate first, then /ws/health's and /ws/chat's messages; on
   /ws/notifications nothing is asked: notifications come to the user */
static int on_receive(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    char type[32];
    int ep = rtws_router_get_conn_endpoint(r, c);
    (void)user;
    if (common(r, c, ev, ep, type))
        return RTWS_ROUTER_HANDLED;
    if (ep == 0)
        health_msg(r, c, type);
    else if (ep == 1)
        chat_msg(r, c, type);
    else
        fail(c, "unknown_message_type", type, 0);
    return RTWS_ROUTER_HANDLED;
}
static void on_event(rtws_conn *c, const rtws_event *ev, void *user) { /* accepted: an id */
    (void)user;
    if (ev->type == RTWS_EV_OPEN)
        send_to(c, MSG("type:'welcome', data:{connection_id:%u, state:'connected'}",
                       rtws_router_get_conn_id(R, c)));
}
/* POST /ws/user/{id}/reconnect, /notify (body {"title","message","type","priority"}) */
static void user_post(const rtws_http *req, const char *uid, const char *rest,
                      rtws_http_reply *rep) {
    char type[64] = "system", title[256], msg[1024], prio[16] = "normal";
    size_t n;
    if (!strcmp(rest, "/reconnect")) { /* every connection of the user: 1012, come back */
        n = rtws_router_close_user(R, uid, 1012, "reconnect");
    } else if (rtws_json_parse(&D, req->body.p, req->body.len, T, 256, 32) ||
               rtws_json_get_str(&D, 0, "title", title, sizeof title) <= 0 ||
               rtws_json_get_str(&D, 0, "message", msg, sizeof msg) <= 0) {
        rtws_json_write_fmt(&W, "detail:'title and message are required'");
        rep->status = 400;
        return;
    } else { /* to every connection of that user, and no one else */
        rtws_json_get_str(&D, 0, "type", type, sizeof type);
        rtws_json_get_str(&D, 0, "priority", prio, sizeof prio);
        n = notify(uid, type, title, msg, prio);
        begin(); /* the reply, after the notification */
    }
    rtws_json_write_fmt(&W, "message:%s, user_id:%s, connections:%z",
                        !n               ? "No connections for user"
                        : rest[1] == 'r' ? "Reconnection initiated"
                                         : "Notification sent",
                        uid, n);
}
static size_t pool(int i) { return rtws_router_get_presence(R, POOLS[i], NULL, NULL); }
#define IS(m) (req->method.len == strlen(m) && !memcmp(req->method.p, m, req->method.len))
/* the management endpoints: JSON replies, FastAPI's {"detail"} for errors */
static int on_http(rtws_conn *hc, const rtws_http *req, rtws_http_reply *rep, void *user) {
    char path[200], uid[64], rest[32] = "", t[32], t2[32];
    unsigned long long id;
    rtws_conn *c = NULL;
    rtws_router_stats st;
    rtws_conn_stats cs;
    uint64_t off = rtws_time_wall_ms() - rtws_time_now_ms(); /* monotonic to wall clock */
    const char *u;
    int i;
    (void)hc;
    (void)user;
    if (req->path.len >= sizeof path)
        return 0;
    memcpy(path, req->path.p, req->path.len);
    path[req->path.len] = 0;
    rep->content_type = "application/json";
    rep->status = 200;
    begin();
    if (!strcmp(path, "/ws/status") && IS("GET")) {
        rtws_router_get_stats(R, &st);
        rtws_json_write_fmt(&W,
                            "status:'healthy', active_connections:%z, total_connections:%u,"
                            "users_online:%z, subscriptions:{%k:%z, %k:%z, %k:%z}",
                            st.active_connections, st.total_connections, st.users_online, POOLS[0],
                            pool(0), POOLS[1], pool(1), POOLS[2], pool(2));
    } else if (sscanf(path, "/ws/connection/%llu%31s", &id, rest) >= 1 &&
               !(c = rtws_router_find_conn(R, id))) {
        rtws_json_write_fmt(&W, "detail:'Connection not found'");
        rep->status = 404;
    } else if (c && !strcmp(rest, "/health") && IS("GET")) {
        rtws_conn_get_stats(c, &cs);
        u = rtws_router_get_claims(R, c, NULL) ? rtws_router_get_user(R, c) : NULL;
        rtws_json_write_fmt(&W, /* this server retries and recovers nothing: 0 */
                            "connection_id:%i, health:{state:%s, user_id:%s, connected_at:%s, "
                            "last_activity:%s, retry_count:0, recovery_attempts:0, "
                            "subscriptions:[",
                            (int64_t)id, u ? "authenticated" : "connected", u,
                            iso(cs.opened_at_ms + off, t), iso(cs.last_msg_ms + off, t2));
        for (i = 0; i < 3; i++)
            if (rtws_router_is_subscribed(R, c, POOLS[i]))
                rtws_json_write_fmt(&W, "%s", POOLS[i]);
        rtws_json_write_fmt(&W, "], is_healthy:%b}", rtws_conn_get_state(c) == RTWS_STATE_OPEN);
    } else if (c && !rest[0] && IS("DELETE")) {
        rtws_conn_close(c, 1000, "disconnected by server");
        rtws_json_write_fmt(&W, "message:'Connection disconnected', connection_id:%i", (int64_t)id);
    } else if (sscanf(path, "/ws/user/%63[^/]%31s", uid, rest) == 2 && IS("POST") &&
               (!strcmp(rest, "/reconnect") || !strcmp(rest, "/notify"))) {
        user_post(req, uid, rest, rep);
    } else {
        rtws_json_write_fmt(&W, "detail:'Not Found'");
        rep->status = 404;
    }
    rep->body = OUT;
    rep->body_len = finish(); /* with a timestamp */
    return 1;
}
static int usage(FILE *f, int code) {
    fputs("usage: healthmate_server --jwt-secret S [--host H] [--port P] [--history N]\n"
          "  [--auth-timeout-ms MS] [--max-connections N] [--max-per-user N]\n"
          "  [--idle-timeout-ms MS] [--token-grace-ms G]\n"
          "HealthMate's WebSocket server on /ws/health, /ws/chat and /ws/notifications. The\n"
          "first message: {\"type\":\"authenticate\",\"token\":JWT} (HS256 with S, sub: the\n"
          "user) within MS (10000), else close 1008. Limits: 1000 connections, 5 per user\n"
          "(more: error, close 1008), close 1001 after 3600000 ms idle. N (50): chat messages\n"
          "sent on join. A token's exp passing on an open connection: close 4001 G (30000) ms\n"
          "later unless authenticate came again with a fresh token. Host 127.0.0.1, port 8000\n"
          "(0: any). HTTP: GET /ws/status, GET /ws/connection/{id}/health, DELETE\n"
          "/ws/connection/{id}, POST /ws/user/{id}/reconnect, POST /ws/user/{id}/notify (body\n"
          "{\"title\",\"message\",\"type\",\"priority\"}).\n"
          "Prints \"listening on H:P\" once ready.\n",
          f);
    return code;
}
int main(int argc, char **argv) {
    static const char *const names[] = {"--host",
                                        "--port",
                                        "--jwt-secret",
                                        "--auth-timeout-ms",
                                        "--max-connections",
                                        "--max-per-user",
                                        "--idle-timeout-ms",
                                        "--history",
                                        "--token-grace-ms"};
    const char *opt[] = {"127.0.0.1", "8000", NULL, "10000", "1000", "5", "3600000", "50", "30000"};
    static const char *const paths[] = {"/ws/health", "/ws/chat", "/ws/notifications"};
    rtws_router_endpoint eps[3];
    rtws_router_config rc = {0};
    rtws_ctx_config cfg = {0};
    rtws_ctx *ctx;
    int bound = 0, i, j;
    for (i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--help"))
            return usage(stdout, 0);
        for (j = 0; j < 9 && strcmp(argv[i], names[j]);)
            j++;
        if (j == 9 || i + 1 == argc)
            return usage(stderr, 2);
        opt[j] = argv[i + 1];
    }
    HISTORY = atol(opt[7]);
    for (j = 3; j < 7 && atol(opt[j]) > 0;)
        j++;
    if (!opt[2] || j < 7 || atol(opt[1]) < 0 || atol(opt[1]) > 65535 || HISTORY < 0 ||
        HISTORY > 1000 || atol(opt[8]) <= 0)
        return usage(stderr, 2); /* no --jwt-secret, or a number out of range */
    memset(eps, 0, sizeof eps);
    for (i = 0; i < 3; i++) { /* the application's protocol, authenticated, on each */
        eps[i].path = paths[i];
        eps[i].on_receive = on_receive;
        eps[i].builtin_protocol_off = eps[i].auth_required = 1;
    }
    rc.jwt_secret = opt[2];
    rc.jwt_secret_len = strlen(opt[2]);
    rc.jwt_leeway_s = -1;                       /* exp as it stands */
    rc.token_grace_ms = (uint32_t)atol(opt[8]); /* after exp: close 4001 */
    rc.endpoints = eps;
    rc.n_endpoints = 3;
    rc.auth_timeout_ms = (uint32_t)atol(opt[3]);
    rc.max_conns_per_user = (size_t)atol(opt[5]);
    rc.history = (size_t)HISTORY + 1;
    rc.on_event = on_event;
    rc.on_http = on_http;
    rc.status_off = 1; /* /ws/status is ours */
    cfg.max_connections = (size_t)atol(opt[4]);
    cfg.conn.idle_timeout_ms = (uint32_t)atol(opt[6]);
    if (!(R = rtws_router_new(&rc)))
        return 1;
    rtws_router_install(R, &cfg);
    if (!(ctx = rtws_ctx_new(&cfg)) || rtws_ctx_listen(ctx, opt[0], atoi(opt[1]), &bound)) {
        fprintf(stderr, "healthmate_server: cannot listen on %s:%s\n", opt[0], opt[1]);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%d\n", opt[0], bound);
    fflush(stdout);
    while (!stop && rtws_ctx_run_once(ctx, 1000) >= 0)
        continue;
    rtws_ctx_shutdown(ctx, RTWS_CLOSE_GOING_AWAY, "server shutting down", rtws_time_now_ms());
    for (i = 0; i < 20 && rtws_ctx_get_conn_count(ctx) > 0; i++)
        rtws_ctx_run_once(ctx, 100);
    rtws_router_free(R);
    rtws_ctx_free(ctx);
    return 0;
}
