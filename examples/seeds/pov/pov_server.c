/* pov_server - the PoV activity feed (seed 004) on rtws: 1-hour WebSocket tokens from an HTTP
   endpoint, ?token= checked at the upgrade, subscribe/unsubscribe per PoV id, activities to a
   PoV's subscribers only, the document's JSON ping/pong and error messages. See README.md. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_TTL_S 3600 /* "Short-lived tokens (1 hour)" */

typedef struct app {
    rtws_router *router;
    const char *secret;
    char body[4096]; /* the HTTP reply being sent (rtws copies it after on_http) */
} app;

/* {"type":type[,key:val]} to c, written with the JSON writer */
static void send_msg(rtws_router *r, rtws_conn *c, const char *type, const char *key,
                     const char *val) {
    char buf[512];
    size_t n;
    rtws_json_writer w;
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_fmt(&w, "{type:%s, %k?:%s}", type, key ? key : "-", key ? val : NULL);
    if (rtws_json_writer_finish(&w, &n) == RTWS_OK)
        rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, buf, n);
}

/* the WebSocket messages of the document's "Message Protocol" */
static int on_receive(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    rtws_json d;
    rtws_json_tok t[64];
    char pov[160];
    int ty;
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 64, 0) != RTWS_OK ||
        t[0].type != RTWS_JSON_OBJECT || (ty = rtws_json_get(&d, 0, "type")) < 0 ||
        t[ty].type != RTWS_JSON_STRING) {
        send_msg(r, c, "error", "message", "Invalid message format");
        return RTWS_ROUTER_HANDLED;
    }
    if (rtws_json_eq(&d, ty, "ping"))
        send_msg(r, c, "pong", NULL, NULL);
    else if (!rtws_json_eq(&d, ty, "subscribe") && !rtws_json_eq(&d, ty, "unsubscribe"))
        send_msg(r, c, "error", "message", "Unknown message type");
    else if (rtws_json_get_str(&d, 0, "povId", pov, sizeof pov) <= 0)
        send_msg(r, c, "error", "message", "povId is required");
    else if (rtws_json_eq(&d, ty, "subscribe")) {
        if (rtws_router_subscribe(r, c, pov) != RTWS_OK)
            send_msg(r, c, "error", "message", "Invalid povId");
        else
            send_msg(r, c, "subscribed", "povId", pov);
    } else { /* like Set.delete: unsubscribing from a PoV not subscribed is acked too */
        rtws_router_unsubscribe(r, c, pov);
        send_msg(r, c, "unsubscribed", "povId", pov);
    }
    return RTWS_ROUTER_HANDLED;
}

/* the accessToken cookie, verified: its claims JSON in json */
static rtws_err access_token(app *a, const rtws_http *req, char *json, size_t cap,
                             rtws_jwt_claims *cl) {
    rtws_str tok;
    rtws_jwt_opts o;
    int64_t now = (int64_t)(rtws_time_wall_ms() / 1000);
    if (!rtws_http_get_cookie(req, "accessToken", &tok) || !tok.len)
        return RTWS_ERR_INVALID;
    memset(&o, 0, sizeof o);
    o.user_claim = "userId";
    return rtws_jwt_hs256_verify_claims(tok.p, tok.len, a->secret, strlen(a->secret), now, &o, cl,
                                        json, cap);
}

static int reply(rtws_http_reply *rep, int status, const char *body) {
    rep->status = status;
    rep->content_type = "application/json";
    rep->body = body;
    rep->body_len = strlen(body);
    return 1;
}

static int on_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    app *a = (app *)user;
    char json[3200], payload[3300], pov[160], key[64];
    rtws_json_tok t[256];
    rtws_json d;
    rtws_json_writer w;
    rtws_jwt_claims cl;
    size_t n;
    static const char *const claims[] = {"userId", "email", "role"};
    int k;
    int64_t now = (int64_t)(rtws_time_wall_ms() / 1000);
    int is_get = req->method.len == 3 && !memcmp(req->method.p, "GET", 3);
    int is_post = req->method.len == 4 && !memcmp(req->method.p, "POST", 4);
    (void)c;
#define PATH_IS(s) (req->path.len == strlen(s) && !memcmp(req->path.p, s, req->path.len))
    if (!(PATH_IS("/api/auth/ws-token") && is_get) && !(PATH_IS("/api/activities") && is_post))
        return 0;
    if (access_token(a, req, json, sizeof json, &cl) != RTWS_OK)
        return reply(rep, 401, "{\"error\":\"Unauthorized\"}");
    rtws_json_parse(&d, json, cl.json_len, t, 256, 0); /* verified claims: strict JSON */
    if (is_get) { /* sign({userId, email, role}, secret, {expiresIn: '1h'}) */
        rtws_json_writer_init(&w, payload, sizeof payload);
        rtws_json_write_object(&w);
        for (k = 0; k < 3; k++) /* each when present */
            rtws_json_write_fmt(&w, "%k?:%t", claims[k], &d, rtws_json_get(&d, 0, claims[k]));
        rtws_json_write_fmt(&w, "iat:%i, exp:%i}", now, now + TOKEN_TTL_S);
        if (rtws_json_writer_finish(&w, &n) != RTWS_OK ||
            !(n = rtws_jwt_hs256_sign(payload, a->secret, strlen(a->secret), json, sizeof json)))
            return reply(rep, 500, "{\"error\":\"Internal error\"}");
        rtws_json_writer_init(&w, a->body, sizeof a->body);
        rtws_json_write_fmt(&w, "{token:%S}", json, n);
        rtws_json_writer_finish(&w, &n);
        return reply(rep, 200, a->body);
    }
    /* POST /api/activities: the body is one activity; its userId is the poster's */
    if (rtws_json_parse(&d, req->body.p, req->body.len, t, 256, 0) != RTWS_OK ||
        rtws_json_get_str(&d, 0, "povId", pov, sizeof pov) <= 0)
        return reply(rep, 400,
                     "{\"error\":\"Invalid activity: an object with a povId is required\"}");
    rtws_json_writer_init(&w, payload, sizeof payload);
    rtws_json_write_fmt(&w, "{type:'activity', data:{");
    for (k = rtws_json_child(&d, 0); k >= 0; k = rtws_json_next(&d, k)) {
        if (rtws_json_eq(&d, k, "userId") || rtws_json_unescape(&d, k, key, sizeof key, &n))
            continue;
        rtws_json_write_key(&w, key, n);
        rtws_json_write_tok(&w, &d, k + 1);
    }
    rtws_json_write_fmt(&w, "userId:%s}}", cl.user);
    if (rtws_json_writer_finish(&w, &n) != RTWS_OK)
        return reply(rep, 413, "{\"error\":\"Activity too large\"}");
    n = rtws_router_send_to_channel(a->router, pov, RTWS_OP_TEXT, payload, n, NULL);
    snprintf(a->body, sizeof a->body, "{\"delivered\":%lu}", (unsigned long)n);
    return reply(rep, 200, a->body);
}

/* "Invalid token rejection": no token, a bad one or an expired one gets 401 */
static int on_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    size_t len = 0;
    (void)proto;
    if (rtws_http_get_query(req, "token", NULL, 0, &len) != 1 || !len)
        return 401;
    return rtws_router_handle_accept((rtws_router *)user, c, req, rtws_time_now_ms());
}

int main(int argc, char **argv) {
    static app a;
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_server_opts so = {"127.0.0.1", 8080, 0, NULL, 0};
    rtws_ctx *ctx;
    rtws_err e;
    int i;
    memset(&rc, 0, sizeof rc);
    memset(&cfg, 0, sizeof cfg);
    rc.jwt_secret = "dev-secret"; /* signs access and WebSocket tokens, checks ?token= */
    rc.jwt_secret_len = strlen("dev-secret");
    if ((i = rtws_server_opts_parse(
             &so, &cfg, &rc, argc, argv,
             "The PoV activity feed (--jwt-secret: \"dev-secret\" when not given).\n"
             "GET  /api/auth/ws-token  cookie accessToken=JWT (userId, email, role) ->\n"
             "                         {\"token\": a 1-hour JWT for the WebSocket}\n"
             "POST /api/activities     cookie accessToken, body: an activity -> its PoV's "
             "subscribers\nGET  /ws?token=JWT       the WebSocket: subscribe, unsubscribe, ping\n"
             "Prints \"listening on H:P\" once ready.")))
        return i < 0 ? 2 : 0;
    a.secret = (const char *)rc.jwt_secret;
    rc.path = "/ws"; /* ?token= is checked at the upgrade: HS256, exp */
    rc.jwt_user_claim = "userId";
    rc.jwt_leeway_s = -1; /* no leeway: an expired token is refused; after exp, 4001 */
    rc.auth_required = 1;
    rc.builtin_protocol_off = 1; /* the document's own messages, from on_receive */
    rc.on_receive = on_receive;
    rc.on_http = on_http;
    rc.user = &a;
    if (!(a.router = rtws_router_new(&rc)))
        return 1;
    cfg.conn.max_http_body = 16384;
    rtws_router_install(a.router, &cfg);
    cfg.conn.on_accept = on_accept; /* a missing token is refused too, then the router's check */
    if (!(ctx = rtws_ctx_new(&cfg)))
        return 1;
    /* until SIGINT or SIGTERM: then close 1001, waiting up to 2 s */
    e = rtws_ctx_serve(ctx, so.host, so.port, 2000);
    rtws_router_free(a.router);
    rtws_ctx_free(ctx);
    return e != RTWS_OK;
}
