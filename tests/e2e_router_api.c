/* The router as a toolkit, over real sockets: one context serving three
   endpoints in the shape of the seed systems (HealthMate's /ws/health with
   the built-in protocol, /ws/chat and /ws/notifications with the app's own
   JSON), identities from the app's own auth message and from ?token=
   (Kull's userId:deviceId), messages to a user's every device, a
   connection found by id from a plain HTTP request and closed from there,
   resume with the app's own "since", and the status page with per-endpoint
   counts of WebSocket connections only. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static rtws_router *R;
static rtws_ctx *SV, *CL;

/* ---- the application ---- */

/* ?token=user:device (Kull): the user id is the part before ':' */
static int kull_auth(rtws_router *r, rtws_conn *c, const char *tok, size_t n, char user_id[64],
                     void *user) {
    size_t k = 0;
    (void)r;
    (void)c;
    (void)user;
    while (k < n && tok[k] != ':') k++;
    if (!k || k == n || k > 63) return -1;
    memcpy(user_id, tok, k);
    user_id[k] = 0;
    return 0;
}

/* a string field of a JSON text, or "" */
static void field(const rtws_event *ev, const char *key, char *out, size_t cap) {
    rtws_json d;
    rtws_json_tok t[64];
    size_t n = 0;
    int v;
    out[0] = 0;
    if (rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 64, 0) != RTWS_OK ||
        (v = rtws_json_get(&d, 0, key)) < 0 || rtws_json_unescape(&d, v, out, cap, &n) != RTWS_OK)
        out[0] = 0;
}
static long num_field(const rtws_event *ev, const char *key) {
    rtws_json d;
    rtws_json_tok t[64];
    int64_t x = -1;
    int v;
    if (rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 64, 0) != RTWS_OK ||
        (v = rtws_json_get(&d, 0, key)) < 0 || rtws_json_int64(&d, v, &x) != RTWS_OK)
        return -1;
    return (long)x;
}

static void reply(rtws_router *r, rtws_conn *c, const char *s) {
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, s, strlen(s));
}

/* /ws/chat: authenticate, join, chat_message (published with the app's
   envelope and the router's seq), resume (replay or the app's own reset) */
static int chat_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    char type[32], v[64], buf[256];
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT) return RTWS_ROUTER_PASS;
    field(ev, "type", type, sizeof type);
    if (!strcmp(type, "authenticate")) {
        field(ev, "token", v, sizeof v);
        if (rtws_router_set_identity(r, c, v, "{\"role\":\"patient\"}", 18) == RTWS_OK)
            reply(r, c, "{\"type\":\"auth_success\"}");
        else
            reply(r, c, "{\"type\":\"auth_error\"}");
        return RTWS_ROUTER_HANDLED;
    }
    if (!strcmp(type, "join")) {
        field(ev, "room", v, sizeof v);
        snprintf(buf, sizeof buf, "{\"type\":\"joined\",\"room\":\"%s\",\"seq\":%llu}", v,
                 (unsigned long long)rtws_router_get_seq(r, v));
        if (rtws_router_subscribe(r, c, v) == RTWS_OK) reply(r, c, buf);
        return RTWS_ROUTER_HANDLED;
    }
    if (!strcmp(type, "chat_message")) {
        char text[64], id[65];
        uint64_t seq, now = rtws_time_now_ms();
        field(ev, "room", v, sizeof v);
        field(ev, "text", text, sizeof text);
        field(ev, "id", id, sizeof id);
        if (id[0] && rtws_router_find_id(r, c, id, strlen(id), now, &seq)) { /* a resend */
            snprintf(buf, sizeof buf, "{\"type\":\"ack\",\"id\":\"%s\",\"seq\":%llu,\"duplicate\":true}",
                     id, (unsigned long long)seq);
            reply(r, c, buf);
            return RTWS_ROUTER_HANDLED;
        }
        if (!rtws_router_is_subscribed(r, c, v)) {
            reply(r, c, "{\"type\":\"error\",\"message\":\"join first\"}");
            return RTWS_ROUTER_HANDLED;
        }
        seq = rtws_router_get_seq(r, v) + 1;
        snprintf(buf, sizeof buf,
                 "{\"type\":\"chat_message\",\"data\":{\"room\":\"%s\",\"from\":\"%s\",\"text\":\"%s\"},"
                 "\"seq\":%llu}",
                 v, rtws_router_get_user(r, c), text, (unsigned long long)seq);
        seq = rtws_router_publish_raw(r, v, RTWS_OP_TEXT, buf, strlen(buf), now);
        if (id[0] && seq) {
            rtws_router_remember_id(r, c, id, strlen(id), seq, now);
            snprintf(buf, sizeof buf, "{\"type\":\"ack\",\"id\":\"%s\",\"seq\":%llu}", id,
                     (unsigned long long)seq);
            reply(r, c, buf);
        }
        return RTWS_ROUTER_HANDLED;
    }
    if (!strcmp(type, "resume")) {
        field(ev, "room", v, sizeof v);
        if (rtws_router_subscribe(r, c, v) != RTWS_OK ||
            rtws_router_replay(r, c, v, (uint64_t)num_field(ev, "since")) == RTWS_ERR_RANGE) {
            snprintf(buf, sizeof buf, "{\"type\":\"resync\",\"seq\":%llu}",
                     (unsigned long long)rtws_router_get_seq(r, v));
            reply(r, c, buf);
        }
        return RTWS_ROUTER_HANDLED;
    }
    return RTWS_ROUTER_PASS;
}

static int PASSED;
static void chat_other(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)ev;
    (void)user;
    PASSED++;
    reply(r, c, "{\"type\":\"error\",\"message\":\"unknown type\"}");
}

/* every connection event: a device that comes or goes is told to the user's others */
static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    char buf[128];
    const char *u;
    (void)user;
    if (rtws_router_get_conn_endpoint(R, c) != 2) return;
    if (ev->type != RTWS_EV_OPEN && ev->type != RTWS_EV_CLOSE) return;
    u = rtws_router_get_user(R, c);
    if (!u) return;
    snprintf(buf, sizeof buf, "{\"type\":\"%s\",\"payload\":{\"connId\":%llu}}",
             ev->type == RTWS_EV_OPEN ? "DEVICE_CONNECTED" : "DEVICE_DISCONNECTED",
             (unsigned long long)rtws_router_get_conn_id(R, c));
    rtws_router_send_to_user(R, u, RTWS_OP_TEXT, buf, strlen(buf));
}

static size_t HTTP_CONNS, HTTP_WS; /* counts seen while answering a plain request */
static char HTTP_BODY[512];
/* GET /ws/connection/{id}/health and DELETE /ws/connection/{id} (HealthMate) */
static int on_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    char path[128];
    unsigned long long id = 0;
    rtws_conn *t;
    (void)user;
    HTTP_CONNS = rtws_ctx_get_conn_count(SV);
    HTTP_WS = rtws_ctx_get_ws_count(SV);
    if (req->path.len >= sizeof path) return 0;
    memcpy(path, req->path.p, req->path.len);
    path[req->path.len] = 0;
    if (sscanf(path, "/ws/connection/%llu", &id) != 1) return 0;
    t = rtws_router_find_conn(R, (uint64_t)id);
    rep->content_type = "application/json";
    if (!t) {
        rep->status = 404;
        rep->body = "{\"error\":\"no such connection\"}";
        rep->body_len = strlen(rep->body);
        return 1;
    }
    if (req->method.len == 6 && memcmp(req->method.p, "DELETE", 6) == 0) {
        rtws_conn_close(t, 1000, "closed by the server");
        rep->status = 204;
        return 1;
    }
    {
        size_t cl = 0;
        const char *claims = rtws_router_get_claims(R, t, &cl);
        snprintf(HTTP_BODY, sizeof HTTP_BODY,
                 "{\"connection_id\":%llu,\"user_id\":\"%s\",\"subscriptions\":%s,\"claims\":%.*s}", id,
                 rtws_router_get_user(R, t), rtws_router_is_subscribed(R, t, "ward-7") ? "[\"ward-7\"]" : "[]",
                 claims ? (int)cl : 4, claims ? claims : "null");
    }
    (void)c;
    rep->status = 200;
    rep->body = HTTP_BODY;
    rep->body_len = strlen(HTTP_BODY);
    return 1;
}

static void on_status(rtws_router *r, rtws_json_writer *w, void *user) {
    (void)r;
    (void)user;
    rtws_json_write_key(w, "service", 7);
    rtws_json_write_string(w, "healthmate", 10);
}

/* ---- the test's clients ---- */

typedef struct cli {
    rtws_client *cl;
    char msgs[32][512];
    int n, open, closed;
    unsigned code;
} cli;

static void cl_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    cli *k = (cli *)user;
    (void)cl;
    if (ev->type != RTWS_CLIENT_EV_CONN) return;
    if (ev->conn.event->type == RTWS_EV_OPEN) k->open = 1;
    if (ev->conn.event->type == RTWS_EV_CLOSE) {
        k->closed = 1;
        k->code = ev->conn.event->close.code;
    }
    if (ev->conn.event->type == RTWS_EV_MESSAGE && k->n < 32) {
        size_t len = ev->conn.event->message.len < 511 ? ev->conn.event->message.len : 511;
        memcpy(k->msgs[k->n], ev->conn.event->message.data, len);
        k->msgs[k->n][len] = 0;
        k->n++;
    }
}

static void loop_ms(int ms) {
    static struct pollfd f[256];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    do {
        int na = rtws_ctx_fill_pollfds(SV, f, 128);
        int nb = rtws_ctx_fill_pollfds(CL, f + na, 128);
        poll(f, (nfds_t)(na + nb), 2);
        rtws_ctx_service(SV, f, na, rtws_time_now_ms());
        rtws_ctx_service(CL, f + na, nb, rtws_time_now_ms());
    } while (rtws_time_now_ms() < until);
}

/* runs the loop until k has n messages (or 3 s) */
static int wait_n(cli *k, int n) {
    int i;
    for (i = 0; i < 300 && k->n < n; i++) loop_ms(10);
    return k->n >= n;
}

static void cli_open(cli *k, int port, const char *path) {
    rtws_client_config c;
    char url[160];
    int i;
    memset(k, 0, sizeof *k);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", port, path);
    memset(&c, 0, sizeof c);
    c.url = url;
    c.on_event = cl_event;
    c.user = k;
    c.max_attempts = 1;
    k->cl = rtws_client_new(CL, &c, rtws_time_now_ms(), NULL);
    for (i = 0; i < 300 && !k->open && !k->closed; i++) loop_ms(10);
}

static void cli_say(cli *k, const char *s) {
    rtws_client_send(k->cl, RTWS_OP_TEXT, s, strlen(s), 0);
}

/* a plain HTTP request; the reply (head and body) into out */
static void http(int port, const char *method, const char *path, char *out, size_t cap) {
    struct sockaddr_in a;
    char req[256];
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), i;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    out[0] = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return;
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    for (i = 0; i < 300; i++) {
        ssize_t k;
        loop_ms(5);
        k = recv(fd, out + n, cap - 1 - n, 0);
        if (k == 0) break;
        if (k > 0) n += (size_t)k;
        if (n >= cap - 1) break;
    }
    out[n] = 0;
    close(fd);
}

static int find(const cli *k, int from, const char *needle) {
    int i;
    for (i = from; i < k->n; i++)
        if (strstr(k->msgs[i], needle)) return i;
    return -1;
}

int main(void) {
    rtws_router_config rc;
    rtws_router_endpoint eps[3];
    rtws_ctx_config cfg;
    int port = 0;
    cli h, a, b, d1, d2;
    static char out[8192];
    char path[96];
    uint64_t id_a, id_d1;

    memset(eps, 0, sizeof eps);
    eps[0].path = "/ws/health"; /* the built-in protocol */
    eps[1].path = "/ws/chat";
    eps[1].builtin_protocol_off = 1;
    eps[1].on_receive = chat_hook;
    eps[1].on_message = chat_other;
    eps[2].path = "/ws/notifications";
    eps[2].builtin_protocol_off = 1;
    memset(&rc, 0, sizeof rc);
    rc.endpoints = eps;
    rc.n_endpoints = 3;
    rc.auth = kull_auth;
    rc.on_event = on_event;
    rc.on_http = on_http;
    rc.on_status = on_status;
    rc.history = 3;
    rc.max_conns_per_user = 5;
    R = rtws_router_new(&rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    cfg.conn.heartbeat_off = 1;
    cfg.conn.close_timeout_ms = 300;
    rtws_router_install(R, &cfg);
    SV = rtws_ctx_new(&cfg);
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    cfg.conn.heartbeat_off = 1;
    CL = rtws_ctx_new(&cfg);
    CHECK(R && SV && CL && rtws_ctx_listen(SV, "127.0.0.1", 0, &port) == RTWS_OK);

    /* /ws/health: the built-in protocol says welcome */
    cli_open(&h, port, "/ws/health");
    CHECK(h.open && wait_n(&h, 1) && strstr(h.msgs[0], "\"type\":\"welcome\""));

    /* /ws/chat: the app's protocol; the router itself says nothing */
    cli_open(&a, port, "/ws/chat");
    cli_open(&b, port, "/ws/chat");
    loop_ms(50);
    CHECK(a.open && b.open && a.n == 0 && b.n == 0);
    cli_say(&a, "{\"type\":\"authenticate\",\"token\":\"pat-1\"}");
    cli_say(&b, "{\"type\":\"authenticate\",\"token\":\"nurse-2\"}");
    CHECK(wait_n(&a, 1) && wait_n(&b, 1));
    CHECK(strcmp(a.msgs[0], "{\"type\":\"auth_success\"}") == 0);
    cli_say(&a, "{\"type\":\"join\",\"room\":\"ward-7\"}");
    cli_say(&b, "{\"type\":\"join\",\"room\":\"ward-7\"}");
    CHECK(wait_n(&a, 2) && wait_n(&b, 2));
    CHECK(strcmp(a.msgs[1], "{\"type\":\"joined\",\"room\":\"ward-7\",\"seq\":0}") == 0);
    CHECK_EQ(rtws_router_get_presence(R, "ward-7", NULL, NULL), 2);
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"hello\"}");
    CHECK(wait_n(&a, 3) && wait_n(&b, 3));
    CHECK(strcmp(b.msgs[2], "{\"type\":\"chat_message\",\"data\":{\"room\":\"ward-7\",\"from\":"
                            "\"pat-1\",\"text\":\"hello\"},\"seq\":1}") == 0);
    CHECK(strcmp(a.msgs[2], b.msgs[2]) == 0); /* the publisher is subscribed too */
    cli_say(&b, "{\"type\":\"vitals\"}");    /* passed on: the app's on_message answers */
    CHECK(wait_n(&b, 4) && strstr(b.msgs[3], "unknown type") && PASSED == 1);

    /* a connection found by its id from plain HTTP */
    id_a = 0;
    {
        /* the ids the router gave: find a's by its user */
        uint64_t id;
        for (id = 1; id < 20 && !id_a; id++) {
            rtws_conn *t = rtws_router_find_conn(R, id);
            if (t && rtws_router_get_user(R, t) && !strcmp(rtws_router_get_user(R, t), "pat-1"))
                id_a = id;
        }
    }
    CHECK(id_a != 0);
    snprintf(path, sizeof path, "/ws/connection/%llu/health", (unsigned long long)id_a);
    http(port, "GET", path, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(out, "\"user_id\":\"pat-1\",\"subscriptions\":[\"ward-7\"],\"claims\":{\"role\":\"patient\"}") != NULL);
    /* while a plain request was answered, the counts: 3 WebSockets, and the
       request itself is in neither count */
    CHECK_EQ(HTTP_WS, 3);
    CHECK_EQ(HTTP_CONNS, 3);
    http(port, "GET", "/ws/connection/999/health", out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 404", 12) == 0);

    /* the status page: WebSocket connections only, per endpoint, the app's field */
    http(port, "GET", "/ws/status", out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(out, "\"status\":\"ok\",\"active_connections\":3,") != NULL);
    CHECK(strstr(out, "\"/ws/chat\":{\"active_connections\":2,\"total_connections\":2}") != NULL);
    CHECK(strstr(out, "\"service\":\"healthmate\"") != NULL);
    {
        const char *t = strstr(out, "\"time\":\"");
        /* ISO 8601 UTC, this year or later: "20YY-MM-DDTHH:MM:SS.mmmZ" */
        CHECK(t && strlen(t) > 32 && t[8] == '2' && t[12] == '-' && t[18] == 'T' && t[31] == 'Z');
    }

    /* Kull: two devices of one user on /ws/notifications, identity from ?token= */
    cli_open(&d1, port, "/ws/notifications?token=u9:phone");
    CHECK(d1.open && wait_n(&d1, 1) && strstr(d1.msgs[0], "DEVICE_CONNECTED"));
    cli_open(&d2, port, "/ws/notifications?token=u9:tablet");
    CHECK(wait_n(&d1, 2) && wait_n(&d2, 1));
    CHECK(strstr(d1.msgs[1], "DEVICE_CONNECTED") && strstr(d2.msgs[0], "DEVICE_CONNECTED"));
    CHECK_EQ(rtws_router_send_to_user(R, "u9", RTWS_OP_TEXT, "{\"type\":\"CREDIT_UPDATE\"}", 24), 2);
    CHECK(wait_n(&d1, 3) && wait_n(&d2, 2));
    CHECK(strcmp(d2.msgs[1], "{\"type\":\"CREDIT_UPDATE\"}") == 0);
    id_d1 = 0;
    {
        uint64_t id;
        for (id = 1; id < 20 && !id_d1; id++) {
            rtws_conn *t = rtws_router_find_conn(R, id);
            if (t && rtws_router_get_conn_endpoint(R, t) == 2) id_d1 = id;
        }
    }
    /* DELETE one device: the other is told */
    snprintf(path, sizeof path, "/ws/connection/%llu", (unsigned long long)id_d1);
    http(port, "DELETE", path, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 204", 12) == 0);
    {
        int i;
        for (i = 0; i < 300 && !(d1.closed || d2.closed); i++) loop_ms(10);
    }
    CHECK(d1.closed != d2.closed);
    {
        cli *other = d1.closed ? &d2 : &d1;
        int i; /* on_event sees the close while the router still knows the user */
        for (i = 0; i < 300 && find(other, 0, "DEVICE_DISCONNECTED") < 0; i++) loop_ms(10);
        CHECK(find(other, 0, "DEVICE_DISCONNECTED") >= 0);
    }

    /* resume with the app's own "since": a reconnecting chat client */
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"two\"}");
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"three\"}");
    CHECK(wait_n(&b, 6));
    rtws_client_free(b.cl);
    loop_ms(50);
    cli_open(&b, port, "/ws/chat");
    cli_say(&b, "{\"type\":\"authenticate\",\"token\":\"nurse-2\"}");
    cli_say(&b, "{\"type\":\"resume\",\"room\":\"ward-7\",\"since\":1}");
    CHECK(wait_n(&b, 3));
    CHECK(strstr(b.msgs[1], "\"text\":\"two\"},\"seq\":2}") && strstr(b.msgs[2], "\"seq\":3}"));
    /* history is 3 deep: after 3 more, since 1 is gone and the app says resync */
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"4\"}");
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"5\"}");
    cli_say(&a, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"6\"}");
    CHECK(wait_n(&b, 6));
    cli_say(&b, "{\"type\":\"resume\",\"room\":\"ward-7\",\"since\":1}");
    CHECK(wait_n(&b, 7) && strcmp(b.msgs[6], "{\"type\":\"resync\",\"seq\":6}") == 0);

    /* the app's acks with ids: a resend is acked again and not published twice */
    {
        int na = a.n, nb = b.n;
        cli_say(&b, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"once\",\"id\":\"c-1\"}");
        cli_say(&b, "{\"type\":\"chat_message\",\"room\":\"ward-7\",\"text\":\"once\",\"id\":\"c-1\"}");
        CHECK(wait_n(&b, nb + 3) && wait_n(&a, na + 1));
        loop_ms(50);
        CHECK_EQ(a.n, na + 1); /* one publish */
        CHECK(find(&b, nb, "{\"type\":\"ack\",\"id\":\"c-1\",\"seq\":7}") >= 0);
        CHECK(find(&b, nb, "{\"type\":\"ack\",\"id\":\"c-1\",\"seq\":7,\"duplicate\":true}") >= 0);
        CHECK_EQ(rtws_router_get_seq(R, "ward-7"), 7);
    }

    rtws_client_free(a.cl);
    rtws_client_free(b.cl);
    rtws_client_free(h.cl);
    rtws_client_free(d1.cl);
    rtws_client_free(d2.cl);
    loop_ms(100);
    rtws_ctx_free(CL);
    rtws_ctx_free(SV);
    rtws_router_free(R);
    return T_END();
}
