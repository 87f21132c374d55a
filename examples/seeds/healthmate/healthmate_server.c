/* healthmate_server - HealthMate's WebSocket server (seed 001) on the rtws router, with its
   management endpoints over HTTP. README.md beside it maps the document to this code. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rtws_router *R;
static rtws_router_config RC; /* history: chat messages kept, and sent on join */
static int64_t NOTES;         /* notifications sent: their ids */
static rtws_json_writer W;    /* the message being written (one at a time) */
static char OUT[65536];
static char POOLS[3][16] = {"health_updates", "chat", "notifications"}; /* by endpoint */

static void begin(void) { /* {... : the fields follow, finish() closes it */
    rtws_json_writer_init(&W, OUT, sizeof OUT);
    rtws_json_write_object(&W);
}
static size_t finish(void) { /* adds the timestamp (ISO 8601 UTC); the length (0: error) */
    size_t n;
    rtws_json_write_fmt(&W, "timestamp:%T}", (int64_t)rtws_time_wall_ms());
    return rtws_json_writer_finish(&W, &n) == RTWS_OK ? n : 0;
}
/* the message whose fields fmt gives ("type:'x', data:{...}"), with its timestamp: its length */
#define MSG(...) (begin(), rtws_json_write_fmt(&W, __VA_ARGS__), finish())
#define SEND(c, ...) rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, OUT, MSG(__VA_ARGS__))

/* {"type":"error","data":{"code","message"}}: ours, and the router's refusals (on_error:
   invalid_message, unknown_message_type; authentication_required, _failed,
   connection_limit_exceeded: then it closes 1008) */
static void fail(rtws_router *r, rtws_conn *c, const char *code, const char *msg, void *user) {
    (void)r, (void)user;
    SEND(c, "type:'error', data:{code:%s, message:%s}", code, msg);
}
/* every endpoint's handlers; pool: the endpoint's (EPS). authenticate: the router checked the
   token (HS256, sub: the user; again with a fresh token before exp: renewed) */
static void on_auth(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    (void)m;
    if (pool == POOLS[2]) /* /ws/notifications: the user's notifications come */
        rtws_router_subscribe(r, c, POOLS[2]);
    SEND(c, "type:'authenticated', data:{user_id:%s, connection_id:%u, state:'authenticated'}",
         rtws_router_get_user(r, c), rtws_router_get_conn_id(r, c));
}
/* /ws/health: (un)subscribe to the user's health_updates, or to one metric's stream of them */
static void on_subscribe(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    char sub[64], metric[41] = "", one[128];
    int on = rtws_json_eq(m, rtws_json_get(m, 0, "type"), "subscribe");
    rtws_json_get_str(m, 0, "metric", metric, sizeof metric);
    snprintf(one, sizeof one, "health_updates:%s%s%s", rtws_router_get_user(r, c),
             metric[0] ? ":" : "", metric);
    if (rtws_json_get_str(m, 0, "subscription", sub, sizeof sub) <= 0 ||
        strcmp(sub, "health_updates") ||
        (on ? rtws_router_subscribe(r, c, one) : rtws_router_unsubscribe(r, c, one)))
        fail(r, c, "invalid_subscription", "health_updates, optionally with a metric", pool);
    else if (!on || !rtws_router_subscribe(r, c, (const char *)pool))
        SEND(c, "type:%s, data:{subscription:%s, metric?:%s}", on ? "subscribed" : "unsubscribed",
             sub, metric[0] ? metric : NULL);
}
/* /ws/health: a reading, once to each of the user's connections on either stream */
static void on_reading(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    char metric[41], all[80], one[128];
    const char *streams[2] = {all, one}, *u = rtws_router_get_user(r, c);
    int d = rtws_json_get(m, 0, "data"), v = rtws_json_get(m, d, "value");
    double x;
    if (rtws_json_get_str(m, d, "metric", metric, sizeof metric) <= 0 || v < 0) {
        fail(r, c, "validation_error", "health_update needs data.metric and data.value", pool);
        return;
    }
    snprintf(all, sizeof all, "health_updates:%s", u);
    snprintf(one, sizeof one, "%s:%s", all, metric);
    rtws_router_send_to_channels(r, streams, 2, RTWS_OP_TEXT, OUT,
                                 MSG("type:'health_update', data:%t", m, d), NULL);
    if (!strcmp(metric, "blood_pressure") && !rtws_json_double(m, v, &x) && x > 140)
        rtws_router_send_to_user(
            r, u, RTWS_OP_TEXT, OUT, /* a notification, to every connection of the user */
            MSG("type:'notification', notification:{id:%i, type:'health_alert', title:'Blood "
                "Pressure Alert', message:'Your blood pressure is above normal range', "
                "priority:'high', created_at:%T}",
                ++NOTES, (int64_t)rtws_time_wall_ms()));
}
/* /ws/chat: the conversation a message names (in "data" or beside "type"): its channel in ch,
   its object in *o; join joins it; else it must have been joined. 0: refused */
static int conversation(rtws_conn *c, const rtws_json *m, int join, char *conv, char *ch, int *o) {
    const char *why = NULL;
    if ((*o = rtws_json_get(m, 0, "data")) < 0 || m->toks[*o].type != RTWS_JSON_OBJECT)
        *o = 0;
    if (rtws_json_get_str(m, *o, "conversation_id", conv, 65) <= 0)
        why = "conversation_id is required";
    else if (snprintf(ch, 80, "chat:%s", conv) && join)
        why = rtws_router_subscribe(R, c, ch) ? "bad conversation_id" : NULL;
    else if (!rtws_router_is_subscribed(R, c, ch))
        why = "join first";
    if (why)
        fail(R, c, why[0] == 'j' ? "not_joined" : "validation_error", why, NULL);
    return !why;
}
/* join: the conversation's last --history messages */
static void on_join(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    char conv[65], ch[80];
    int o;
    if (!conversation(c, m, 1, conv, ch, &o))
        return;
    rtws_router_subscribe(r, c, (const char *)pool);
    begin();
    rtws_json_write_fmt(&W, "type:'chat_history', data:{conversation_id:%s, messages:[", conv);
    rtws_router_write_history(r, ch, 0, RC.history, &W);
    rtws_json_write_fmt(&W, "]}");
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, OUT, finish());
}
/* chat_message: to the conversation (kept in its history) */
static void on_chat(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    char conv[65], ch[80];
    int o, v;
    if (!conversation(c, m, 0, conv, ch, &o))
        return;
    if ((v = rtws_json_get(m, o, "message")) < 0 || m->toks[v].type != RTWS_JSON_STRING)
        fail(r, c, "validation_error", "message is required", pool);
    else
        rtws_router_publish_raw(
            r, ch, RTWS_OP_TEXT, OUT,
            MSG("type:'chat_message', data:{message:%t, sender:%s, conversation_id:%s}", m, v,
                rtws_router_get_user(r, c), conv),
            rtws_time_now_ms());
}
/* typing: to the others of the conversation, not the typist */
static void on_typing(rtws_router *r, rtws_conn *c, const rtws_json *m, void *pool) {
    char conv[65], ch[80];
    int o;
    (void)pool;
    if (conversation(c, m, 0, conv, ch, &o))
        rtws_router_send_to_channel(
            r, ch, RTWS_OP_TEXT, OUT,
            MSG("type:'typing', data:{user_id:%s, conversation_id:%s, is_typing:%b}",
                rtws_router_get_user(r, c), conv, rtws_json_get_bool(m, o, "is_typing", 1)),
            c);
}
/* the message types of /ws/health and /ws/chat; /ws/notifications has the first only */
static const rtws_router_handler HEALTH[] = {{"authenticate", on_auth, 0},
                                             {"subscribe", on_subscribe, 0},
                                             {"unsubscribe", on_subscribe, 0},
                                             {"health_update", on_reading, 0}};
static const rtws_router_handler CHAT[] = {{"authenticate", on_auth, 0},
                                           {"join", on_join, 0},
                                           {"chat_message", on_chat, 0},
                                           {"typing", on_typing, 0}};
/* the endpoints, their tables (/ws/notifications: authenticate only) and pools */
static const rtws_router_endpoint EPS[3] = {
    {.path = "/ws/health", .handlers = HEALTH, .n_handlers = 4, .user = POOLS[0]},
    {.path = "/ws/chat", .handlers = CHAT, .n_handlers = 4, .user = POOLS[1]},
    {.path = "/ws/notifications", .handlers = HEALTH, .n_handlers = 1, .user = POOLS[2]}};
static void on_event(rtws_conn *c, const rtws_event *ev, void *user) { /* accepted: an id */
    (void)user;
    if (ev->type == RTWS_EV_OPEN)
        SEND(c, "type:'welcome', data:{connection_id:%u, state:'connected'}",
             rtws_router_get_conn_id(R, c));
}

static size_t pool(int i) { return rtws_router_get_presence(R, POOLS[i], NULL, NULL); }
/* the management endpoints: JSON replies, FastAPI's {"detail"} for errors */
static int on_http(rtws_conn *hc, const rtws_http *req, rtws_http_reply *rep, void *user) {
    char uid[64];
    rtws_str id;
    rtws_conn *c = NULL;
    rtws_router_stats st;
    rtws_conn_stats cs;
    uint64_t off = rtws_time_wall_ms() - rtws_time_now_ms(); /* monotonic to wall clock */
    const char *u;
    int i;
    (void)hc, (void)user;
    rep->content_type = "application/json";
    rep->status = 200;
    begin();
    if (!rtws_http_match(req, "GET /ws/status", NULL, 0)) {
        rtws_router_get_stats(R, &st);
        rtws_json_write_fmt(&W,
                            "status:'healthy', active_connections:%z, total_connections:%u,"
                            "users_online:%z, subscriptions:{%k:%z, %k:%z, %k:%z}",
                            st.active_connections, st.total_connections, st.users_online, POOLS[0],
                            pool(0), POOLS[1], pool(1), POOLS[2], pool(2));
    } else if ((rtws_http_match(req, "GET /ws/connection/{id}/health", &id, 1) == 1 ||
                rtws_http_match(req, "DELETE /ws/connection/{id}", &id, 1) == 1) &&
               !(c = rtws_router_find_conn(R, strtoull(id.p, NULL, 10)))) {
        rtws_json_write_fmt(&W, "detail:'Connection not found'");
        rep->status = 404;
    } else if (c && req->method.p[0] == 'G') { /* GET .../health */
        rtws_conn_get_stats(c, &cs);
        u = rtws_router_get_claims(R, c, NULL) ? rtws_router_get_user(R, c) : NULL;
        rtws_json_write_fmt(&W, /* this server retries and recovers nothing: 0 */
                            "connection_id:%u, health:{state:%s, user_id:%s, connected_at:%T, "
                            "last_activity:%T, retry_count:0, recovery_attempts:0, "
                            "subscriptions:[",
                            rtws_router_get_conn_id(R, c), u ? "authenticated" : "connected", u,
                            (int64_t)(cs.opened_at_ms + off), (int64_t)(cs.last_msg_ms + off));
        for (i = 0; i < 3; i++)
            if (rtws_router_is_subscribed(R, c, POOLS[i]))
                rtws_json_write_fmt(&W, "%s", POOLS[i]);
        rtws_json_write_fmt(&W, "], is_healthy:%b}", rtws_conn_get_state(c) == RTWS_STATE_OPEN);
    } else if (c) { /* DELETE */
        rtws_json_write_fmt(&W, "message:'Connection disconnected', connection_id:%u",
                            rtws_router_get_conn_id(R, c));
        rtws_conn_close(c, 1000, "disconnected by server");
    } else if (rtws_http_match(req, "POST /ws/user/{id}/reconnect", &id, 1) == 1) {
        snprintf(uid, sizeof uid, "%.*s", (int)id.len, id.p);
        i = (int)rtws_router_close_user(R, uid, 1012, "reconnect"); /* 1012: come back */
        rtws_json_write_fmt(&W, "message:%s, user_id:%s, connections:%d",
                            i ? "Reconnection initiated" : "No connections for user", uid, i);
    } else {
        rtws_json_write_fmt(&W, "detail:'Not Found'");
        rep->status = 404;
    }
    rep->body = OUT;
    rep->body_len = finish(); /* with a timestamp */
    return 1;
}
int main(int argc, char **argv) {
    rtws_ctx_config cfg = {0};
    rtws_server_opts so = {"127.0.0.1", 8000, 1, NULL, 0}; /* --jwt-secret required */
    rtws_ctx *ctx;
    int i;
    RC.max_conns_per_user = 5; /* the document's limits: the options' defaults */
    RC.history = 50;
    cfg.max_connections = 1000;
    cfg.conn.idle_timeout_ms = 3600000;
    if ((i = rtws_server_opts_parse(
             &so, &cfg, &RC, argc, argv,
             "HealthMate's server on /ws/health, /ws/chat, /ws/notifications (first message:\n"
             "authenticate, with a JWT); HTTP: GET /ws/status, GET /ws/connection/{id}/health,\n"
             "DELETE /ws/connection/{id}, POST /ws/user/{id}/reconnect")))
        return i < 0 ? 2 : 0;
    RC.builtin_protocol_off = RC.auth_required = 1; /* on each: the application's protocol, */
    RC.auth_type = "authenticate"; /* authenticated: its "token" by rtws_router_authenticate */
    RC.on_error = fail;            /* the router's refusals, in our error shape */
    RC.jwt_leeway_s = -1;          /* exp as it stands; after it: renew, or close 4001 */
    RC.endpoints = EPS;
    RC.n_endpoints = 3;
    RC.on_event = on_event;
    RC.on_http = on_http;
    RC.status_off = 1; /* /ws/status is ours */
    if (!(R = rtws_router_new(&RC)))
        return 1;
    rtws_router_install(R, &cfg);
    if (!(ctx = rtws_ctx_new(&cfg)))
        return 1;
    i = rtws_ctx_serve(ctx, so.host, so.port, 2000) != RTWS_OK; /* to SIGINT/SIGTERM: 1001 */
    rtws_router_free(R);
    rtws_ctx_free(ctx);
    return i;
}
