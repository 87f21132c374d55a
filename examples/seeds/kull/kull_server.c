/* kull_server - Kull's multi-device sync server (seed 003) on rtws: devices
   connect to /ws?token=userId:deviceId, and every sync message (SHOOT_PROGRESS,
   CREDIT_UPDATE, PROMPT_CHANGE, ADMIN_SESSION_UPDATE, DEVICE_CONNECTED,
   DEVICE_DISCONNECTED) goes to all of that user's devices and no one else's.
   PING is answered with PONG. See README.md here. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct device { /* kept with each connection (rtws_conn_set_data) */
    int opened;
    char id[64];
} device;

typedef struct app {
    rtws_router *router;
    char body[256]; /* the HTTP reply being sent (rtws copies it after on_http) */
} app;

static const char *const server_types[] = {"SHOOT_PROGRESS", "CREDIT_UPDATE", "PROMPT_CHANGE",
                                           "ADMIN_SESSION_UPDATE", NULL};

/* {"type":type,"data":value v of d (or {} when v < 0)} into buf, its length or 0 */
static size_t envelope(char *buf, size_t cap, const char *type, const rtws_json *d, int v) {
    rtws_json_writer w;
    size_t n = 0;
    rtws_json_writer_init(&w, buf, cap);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "type", type);
    if (v >= 0)
        rtws_json_write_tok_field(&w, "data", d, v);
    else
        rtws_json_write_raw_field(&w, "data", "{}", 2);
    rtws_json_write_object_end(&w);
    return rtws_json_writer_finish(&w, &n) == RTWS_OK ? n : 0;
}

/* {"type":type,"data":{"userId":u,"deviceId":d,"timestamp":ms}} */
static size_t device_msg(char *buf, size_t cap, const char *type, const char *user,
                         const char *dev) {
    size_t n = 0;
    rtws_json_writer w;
    rtws_json_writer_init(&w, buf, cap);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "type", type);
    rtws_json_write_key(&w, "data", 4);
    rtws_json_write_object(&w);
    rtws_json_write_str_field(&w, "userId", user);
    rtws_json_write_str_field(&w, "deviceId", dev);
    rtws_json_write_int64_field(&w, "timestamp", (int64_t)rtws_time_wall_ms());
    rtws_json_write_object_end(&w);
    rtws_json_write_object_end(&w);
    return rtws_json_writer_finish(&w, &n) == RTWS_OK ? n : 0;
}

/* ?token=userId:deviceId (the router hands it here at the upgrade) */
static int auth(rtws_router *r, rtws_conn *c, const char *tok, size_t n, char user_id[64],
                void *user) {
    const char *colon = (const char *)memchr(tok, ':', n);
    size_t un = colon ? (size_t)(colon - tok) : 0, dn = colon ? n - un - 1 : 0;
    device *d;
    (void)r;
    (void)user;
    if (!un || un > 63 || !dn || dn > 63 || !(d = (device *)calloc(1, sizeof *d)))
        return -1;
    snprintf(user_id, 64, "%.*s", (int)un, tok);
    memcpy(d->id, colon + 1, dn);
    rtws_conn_set_data(c, d);
    return 0;
}

/* a newly connected device learns of the user's other devices */
static int tell_new(rtws_router *r, rtws_conn *other, void *user) {
    rtws_conn *c = (rtws_conn *)user;
    device *d = (device *)rtws_conn_get_data(other);
    char buf[512];
    size_t n;
    if (other != c && d && d->opened &&
        (n = device_msg(buf, sizeof buf, "DEVICE_CONNECTED", rtws_router_get_user(r, other),
                        d->id)))
        rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, buf, n);
    return 0;
}

/* DEVICE_CONNECTED / DEVICE_DISCONNECTED to all of the user's devices */
static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    app *a = (app *)user;
    device *d = (device *)rtws_conn_get_data(c);
    const char *u = rtws_router_get_user(a->router, c);
    char buf[512];
    size_t n;
    if (!d)
        return;
    if (ev->type == RTWS_EV_OPEN && u) {
        d->opened = 1;
        if ((n = device_msg(buf, sizeof buf, "DEVICE_CONNECTED", u, d->id)))
            rtws_router_send_to_user(a->router, u, RTWS_OP_TEXT, buf, n);
        rtws_router_foreach_conn(a->router, u, NULL, tell_new, c);
    } else if (ev->type == RTWS_EV_CLOSE || (ev->type == RTWS_EV_ERROR && !d->opened)) {
        if (d->opened && u && (n = device_msg(buf, sizeof buf, "DEVICE_DISCONNECTED", u, d->id)))
            rtws_router_send_to_user(a->router, u, RTWS_OP_TEXT, buf, n);
        rtws_conn_set_data(c, NULL);
        free(d);
    }
}

/* PING -> PONG (same data); UPDATE_PROGRESS -> SHOOT_PROGRESS to the user's devices */
static int on_receive(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    rtws_json d;
    rtws_json_tok t[256];
    char buf[8192];
    size_t n;
    int ty, v;
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 256, 0) ||
        (ty = rtws_json_get(&d, 0, "type")) < 0)
        return RTWS_ROUTER_HANDLED; /* the document's peers log parse errors and go on */
    v = rtws_json_get(&d, 0, "data");
    if (rtws_json_eq(&d, ty, "PING") && (n = envelope(buf, sizeof buf, "PONG", &d, v)))
        rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, buf, n);
    else if (rtws_json_eq(&d, ty, "UPDATE_PROGRESS") && v >= 0 &&
             (n = envelope(buf, sizeof buf, "SHOOT_PROGRESS", &d, v)))
        rtws_router_send_to_user(r, rtws_router_get_user(r, c), RTWS_OP_TEXT, buf, n);
    return RTWS_ROUTER_HANDLED;
}

static int reply(rtws_http_reply *rep, int status, const char *body) {
    rep->status = status;
    rep->content_type = "application/json";
    rep->body = body;
    rep->body_len = strlen(body);
    return 1;
}

/* POST /api/sync/USERID: the backend's events for one user's devices */
static int on_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    app *a = (app *)user;
    rtws_json d;
    rtws_json_tok t[256];
    char uid[64], buf[16384];
    const char *const *k;
    size_t n;
    int ty, v;
    (void)c;
    if (req->path.len <= 10 || memcmp(req->path.p, "/api/sync/", 10) != 0)
        return 0;
    if (req->method.len != 4 || memcmp(req->method.p, "POST", 4) != 0)
        return reply(rep, 405, "{\"error\":\"POST only\"}");
    if (req->path.len - 10 >= sizeof uid)
        return reply(rep, 404, "{\"error\":\"no such user\"}");
    snprintf(uid, sizeof uid, "%.*s", (int)(req->path.len - 10), req->path.p + 10);
    if (rtws_json_parse(&d, req->body.p, req->body.len, t, 256, 0) != RTWS_OK ||
        (ty = rtws_json_get(&d, 0, "type")) < 0 || (v = rtws_json_get(&d, 0, "data")) < 0 ||
        t[v].type != RTWS_JSON_OBJECT)
        return reply(rep, 400,
                     "{\"error\":\"body must be {\\\"type\\\":...,\\\"data\\\":{...}}\"}");
    for (k = server_types; *k && !rtws_json_eq(&d, ty, *k); k++) {
    }
    if (!*k)
        return reply(rep, 400, "{\"error\":\"unknown message type\"}");
    if (!(n = envelope(buf, sizeof buf, *k, &d, v)))
        return reply(rep, 413, "{\"error\":\"too large\"}");
    n = rtws_router_send_to_user(a->router, uid, RTWS_OP_TEXT, buf, n);
    snprintf(a->body, sizeof a->body, "{\"delivered\":%lu}", (unsigned long)n);
    return reply(rep, 200, a->body);
}

/* a device without ?token= is refused at the upgrade, as a bad one is */
static int on_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    size_t len = 0;
    (void)proto;
    if (rtws_http_get_query(req, "token", NULL, 0, &len) != 1 || !len)
        return 401;
    return rtws_router_handle_accept((rtws_router *)user, c, req, rtws_time_now_ms());
}

int main(int argc, char **argv) {
    static app a;
    rtws_router_config rc = {0};
    rtws_ctx_config cfg = {0};
    rtws_server_opts so = {"127.0.0.1", 5000, 0, NULL, 0};
    rtws_ctx *ctx;
    rtws_err e;
    int i;
    rc.path = "/ws";
    rc.auth = auth; /* ?token=userId:deviceId: the user is the part before ':' */
    rc.auth_required = 1;
    rc.builtin_protocol_off = 1;
    rc.on_receive = on_receive;
    rc.on_event = on_event;
    rc.on_http = on_http;
    rc.user = &a;
    cfg.max_connections = 1000;
    cfg.conn.max_http_body = 16384;
    if ((i = rtws_server_opts_parse(
             &so, &cfg, &rc, argc, argv,
             "Kull's device sync server.\n"
             "GET  /ws?token=userId:deviceId  a device's WebSocket\n"
             "POST /api/sync/USERID  body {\"type\":T,\"data\":{...}}, T: SHOOT_PROGRESS,\n"
             "     CREDIT_UPDATE, PROMPT_CHANGE or ADMIN_SESSION_UPDATE: sent to every device\n"
             "     of USERID (the backend's hook; answers {\"delivered\":N})\n"
             "Prints \"listening on H:P\" once ready.")))
        return i < 0 ? 2 : 0;
    if (!(a.router = rtws_router_new(&rc)))
        return 1;
    rtws_router_install(a.router, &cfg);
    cfg.conn.on_accept = on_accept;
    if (!(ctx = rtws_ctx_new(&cfg)))
        return 1;
    /* until SIGINT or SIGTERM: then close 1001, waiting up to 2 s */
    e = rtws_ctx_serve(ctx, so.host, so.port, 2000);
    rtws_router_free(a.router);
    rtws_ctx_free(ctx);
    return e != RTWS_OK;
}
