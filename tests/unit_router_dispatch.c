/* Layer 7 router: an endpoint's message-type table (rtws_router_endpoint
   handlers, type_field, on_error, auth_type), sans-I/O with in-memory peers
   and a fake clock: dispatch by type, the parsed document handed over, the
   error codes and which of them close, the auth message with the router's
   HS256 check, on_receive still first, and the token buffer reused. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#include "router_peer.h"

static const char SECRET[] = "dispatch-secret";
static char calls[2048]; /* what the hooks saw, "handler:field;" or "error:code:msg;" */

static void note(const char *a, const char *b, const char *c) {
    size_t n = strlen(calls);
    snprintf(calls + n, sizeof calls - n, "%s:%s%s%s;", a, b, c ? ":" : "", c ? c : "");
}
/* "ping": answers {"pong":<n>} with the message's own "n" */
static void on_ping(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *user) {
    char out[64];
    int64_t n = -1;
    (void)user;
    rtws_json_get_int64(msg, 0, "n", &n);
    snprintf(out, sizeof out, "{\"pong\":%lld}", (long long)n);
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, out, strlen(out));
    note("ping", msg->toks[0].type == RTWS_JSON_OBJECT ? "obj" : "?", NULL);
}
static void on_hello(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *user) {
    (void)r;
    (void)c;
    (void)msg;
    note("hello", (const char *)user, NULL);
}
static void on_login(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *user) {
    char extra[16] = "";
    (void)user;
    rtws_json_get_str(msg, 0, "extra", extra, sizeof extra);
    note("login", rtws_router_get_user(r, c), extra);
}
static void on_error(rtws_router *r, rtws_conn *c, const char *code, const char *message,
                     void *user) {
    (void)r;
    (void)c;
    (void)user;
    note("error", code, message);
}
static int take_bang(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)c;
    (void)user; /* on_receive first: messages starting with '!' never reach the table */
    if (ev->message.len && ev->message.data[0] == '!') {
        note("recv", "bang", NULL);
        return RTWS_ROUTER_HANDLED;
    }
    return RTWS_ROUTER_PASS;
}

static const rtws_router_handler TABLE[] = {
    {"ping", on_ping, 0},
    {"hello", on_hello, RTWS_ROUTER_BEFORE_AUTH},
    {"login", on_login, 0},
    {"quiet", NULL, 0}, /* accepted, ignored */
};

static void make(int auth_required, const char *auth_type, uint16_t close_code, const char *tf) {
    rtws_router_endpoint ep;
    rtws_router_config rc;
    memset(&rc, 0, sizeof rc);
    memset(&ep, 0, sizeof ep);
    ep.path = "/app";
    ep.builtin_protocol_off = 1;
    ep.auth_required = auth_required;
    ep.handlers = TABLE;
    ep.n_handlers = sizeof TABLE / sizeof TABLE[0];
    ep.type_field = tf;
    ep.on_error = on_error;
    ep.on_receive = take_bang;
    ep.auth_type = auth_type;
    ep.auth_close_code = close_code;
    ep.user = (void *)"u";
    rc.endpoints = &ep;
    rc.n_endpoints = 1;
    rc.random = rnd;
    rc.jwt_secret = SECRET;
    rc.jwt_secret_len = strlen(SECRET);
    rc.max_conns_per_user = 1;
    rc.max_tokens = 16;
    if (R) rtws_router_free(R);
    R = rtws_router_new(&rc);
    calls[0] = 0;
}
static void login_msg(char *out, size_t cap, const char *sub, const char *key) {
    char claims[128], tok[512];
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":4000000000}", sub);
    rtws_jwt_hs256_sign(claims, SECRET, strlen(SECRET), tok, sizeof tok);
    snprintf(out, cap, "{\"type\":\"login\",\"%s\":\"%s\",\"extra\":\"x\"}", key, tok);
}

static void test_dispatch(void) {
    peer a;
    make(0, NULL, 0, NULL);
    CHECK(R != NULL);
    peer_open(&a, "/app");
    CHECK(rtws_conn_get_state(&a.cl) == RTWS_STATE_OPEN);
    CHECK_EQ(a.n, 0); /* the built-in protocol is off: no welcome */
    say(&a, "{\"n\":5,\"type\":\"ping\"}");
    CHECK_EQ(a.n, 1);
    CHECK(strcmp(a.msgs[0], "{\"pong\":5}") == 0);
    say(&a, "{\"type\":\"hello\"}");
    say(&a, "{\"type\":\"quiet\"}");
    say(&a, "{\"type\":\"nope\"}");
    say(&a, "{\"type\":5}");
    say(&a, "[\"ping\"]");
    say(&a, "{\"type\":\"ping\"");
    say(&a, "!anything");
    say(&a, "{\"type\":\"ping\",\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}"); /* > 16 tokens */
    CHECK(strcmp(calls, "ping:obj;hello:u;error:unknown_message_type:nope;"
                        "error:invalid_message:messages are JSON objects with a type;"
                        "error:invalid_message:messages are JSON objects with a type;"
                        "error:invalid_message:messages are JSON objects with a type;recv:bang;"
                        "error:invalid_message:messages are JSON objects with a type;") == 0);
    calls[0] = 0;
    rtws_conn_send_binary(&a.cl, "{\"type\":\"ping\"}", 15);
    pump(&a);
    CHECK(strcmp(calls, "error:invalid_message:messages are JSON objects with a type;") == 0);
    CHECK(rtws_conn_get_state(&a.cl) == RTWS_STATE_OPEN); /* none of these close */
    /* a type over 64 bytes: invalid; exactly 64: unknown, named */
    calls[0] = 0;
    say(&a, "{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
    CHECK(strncmp(calls, "error:invalid_message", 21) == 0);
    calls[0] = 0;
    say(&a, "{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
    CHECK(strcmp(calls, "error:unknown_message_type:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        "aaaaaaaaaaaaaaaa;") == 0);
    /* many messages: the router's token buffer is reused, the documents stay right */
    {
        int i, ok = 1;
        char m[64];
        for (i = 0; i < 40; i++) {
            a.n = 0;
            snprintf(m, sizeof m, "{\"type\":\"ping\",\"n\":%d}", i);
            say(&a, m);
            snprintf(m, sizeof m, "{\"pong\":%d}", i);
            ok = ok && a.n == 1 && strcmp(a.msgs[0], m) == 0;
        }
        CHECK(ok);
    }
    peer_close(&a);
}

static void test_type_field(void) {
    peer a;
    make(0, NULL, 0, "kind");
    peer_open(&a, "/app");
    say(&a, "{\"type\":\"ping\"}");
    say(&a, "{\"kind\":\"ping\",\"n\":2}");
    CHECK(strcmp(calls, "error:invalid_message:messages are JSON objects with a type;ping:obj;") == 0);
    CHECK(a.n == 1 && strcmp(a.msgs[0], "{\"pong\":2}") == 0);
    peer_close(&a);
}

static void test_auth(void) {
    peer a, b, c, d;
    char m[700];
    /* auth_required without an auth message type: "authenticate first", close 1008 */
    make(1, NULL, 0, NULL);
    peer_open(&a, "/app");
    say(&a, "{\"type\":\"hello\"}"); /* allowed before auth */
    say(&a, "{\"type\":\"ping\"}");
    CHECK(strcmp(calls, "hello:u;error:authentication_required:authenticate first;") == 0);
    CHECK(a.closed && a.close_code == 1008);
    peer_close(&a);
    calls[0] = 0; /* an unknown type before auth: authentication_required too */
    peer_open(&a, "/app");
    say(&a, "{\"type\":\"nope\"}");
    CHECK(strcmp(calls, "error:authentication_required:authenticate first;") == 0);
    CHECK(a.closed && a.close_code == 1008);
    peer_close(&a);

    /* the auth message: the router checks the token, then the handler runs */
    make(1, "login", 0, NULL);
    peer_open(&a, "/app");
    say(&a, "{\"type\":\"ping\"}");
    CHECK(strcmp(calls, "error:authentication_required:first message must be login;") == 0);
    CHECK(a.closed && a.close_code == 1008);
    peer_close(&a);
    calls[0] = 0;
    peer_open(&a, "/app");
    login_msg(m, sizeof m, "alice", "token");
    say(&a, m);
    CHECK(strcmp(calls, "login:alice:x;") == 0);
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "alice") == 0);
    CHECK(rtws_router_get_claims(R, &a.sv, NULL) != NULL);
    say(&a, "{\"type\":\"ping\",\"n\":1}");
    CHECK(a.n == 1 && strcmp(a.msgs[0], "{\"pong\":1}") == 0);
    login_msg(m, sizeof m, "alice", "token"); /* again, same user: renewed */
    calls[0] = 0;
    say(&a, m);
    CHECK(strcmp(calls, "login:alice:x;") == 0 && !a.closed);
    /* a bad token: authentication_failed, close 1008; the handler is not called */
    calls[0] = 0;
    peer_open(&b, "/app");
    say(&b, "{\"type\":\"login\",\"token\":\"abc.def.ghi\"}");
    CHECK(strcmp(calls, "error:authentication_failed:invalid or expired token;") == 0);
    CHECK(b.closed && b.close_code == 1008);
    peer_close(&b);
    calls[0] = 0;
    peer_open(&b, "/app");
    say(&b, "{\"type\":\"login\"}"); /* no token at all */
    CHECK(strcmp(calls, "error:authentication_failed:invalid or expired token;") == 0 && b.closed);
    peer_close(&b);
    /* max_conns_per_user 1: alice's second connection is over the cap */
    calls[0] = 0;
    peer_open(&c, "/app");
    login_msg(m, sizeof m, "alice", "token");
    say(&c, m);
    CHECK(strcmp(calls, "error:connection_limit_exceeded:too many connections for this user;") == 0);
    CHECK(c.closed && c.close_code == 1008);
    CHECK(!a.closed);
    peer_close(&c);
    peer_close(&a);

    /* auth_close_code: 4003; and 1: left open; a custom token field */
    make(1, "login", 4003, NULL);
    peer_open(&d, "/app");
    say(&d, "{\"type\":\"ping\"}");
    CHECK(d.closed && d.close_code == 4003);
    peer_close(&d);
    make(1, "login", 1, NULL);
    peer_open(&d, "/app");
    say(&d, "{\"type\":\"ping\"}");
    say(&d, "{\"type\":\"login\",\"token\":\"x\"}");
    CHECK(!d.closed && rtws_conn_get_state(&d.sv) == RTWS_STATE_OPEN);
    CHECK(strcmp(calls, "error:authentication_required:first message must be login;"
                        "error:authentication_failed:invalid or expired token;") == 0);
    {
        rtws_router_endpoint ep;
        rtws_router_config rc;
        static const rtws_router_handler only[] = {{"ping", on_ping, 0}};
        peer_close(&d);
        memset(&rc, 0, sizeof rc);
        memset(&ep, 0, sizeof ep);
        ep.path = "/app";
        ep.builtin_protocol_off = ep.auth_required = 1;
        ep.handlers = only;
        ep.n_handlers = 1;
        ep.on_error = on_error;
        ep.auth_type = "login"; /* the auth type need not be in the table */
        ep.auth_token_field = "jwt";
        rc.endpoints = &ep;
        rc.n_endpoints = 1;
        rc.random = rnd;
        rc.jwt_secret = SECRET;
        rc.jwt_secret_len = strlen(SECRET);
        rtws_router_free(R);
        R = rtws_router_new(&rc);
        calls[0] = 0;
        peer_open(&d, "/app");
        login_msg(m, sizeof m, "bob", "jwt");
        say(&d, m);
        say(&d, "{\"type\":\"ping\",\"n\":3}");
        CHECK(strcmp(calls, "ping:obj;") == 0 && strcmp(rtws_router_get_user(R, &d.sv), "bob") == 0);
        CHECK(d.n == 1 && strcmp(d.msgs[0], "{\"pong\":3}") == 0);
        login_msg(m, sizeof m, "bob", "token"); /* the token under another name */
        calls[0] = 0;
        say(&d, m);
        CHECK(strcmp(calls, "error:authentication_failed:invalid or expired token;") == 0);
        CHECK(d.closed && d.close_code == 1008);
        peer_close(&d);
    }
}

static void on_error2(rtws_router *r, rtws_conn *c, const char *code, const char *message,
                      void *user) {
    (void)r, (void)c, (void)message, (void)user;
    note("error2", code, "");
}

/* the table, type field, on_error and auth message set on the router config:
   the one endpoint of rc.path uses them, and every endpoint that leaves its
   own unset */
static void test_config_level(void) {
    static const rtws_router_handler only[] = {{"ping", on_ping, 0}};
    rtws_router_endpoint eps[2];
    rtws_router_config rc;
    peer a, b;
    char m[700];
    memset(&rc, 0, sizeof rc);
    rc.path = "/one";
    rc.builtin_protocol_off = rc.auth_required = 1;
    rc.handlers = TABLE;
    rc.n_handlers = sizeof TABLE / sizeof TABLE[0];
    rc.type_field = "kind";
    rc.on_error = on_error;
    rc.auth_type = "login";
    rc.auth_token_field = "jwt";
    rc.auth_close_code = 4000;
    rc.user = (void *)"u";
    rc.random = rnd;
    rc.jwt_secret = SECRET;
    rc.jwt_secret_len = strlen(SECRET);
    rtws_router_free(R);
    R = rtws_router_new(&rc);
    CHECK(R != NULL);
    calls[0] = 0;
    peer_open(&a, "/one");
    say(&a, "{\"kind\":\"hello\"}"); /* before auth, allowed by its flag */
    say(&a, "{\"type\":\"ping\"}");  /* no "kind": refused */
    CHECK(strcmp(calls, "hello:u;error:invalid_message:messages are JSON objects with a type;") == 0);
    login_msg(m, sizeof m, "ann", "jwt");
    memcpy(m + 2, "kind", 4); /* {"type":"login"... -> {"kind":"login"... */
    calls[0] = 0;
    say(&a, m);
    say(&a, "{\"kind\":\"ping\",\"n\":1}");
    CHECK(strcmp(calls, "login:ann:x;ping:obj;") == 0 && strcmp(rtws_router_get_user(R, &a.sv), "ann") == 0);
    calls[0] = 0;
    say(&a, "{\"kind\":\"login\",\"jwt\":\"bad\"}");
    CHECK(strcmp(calls, "error:authentication_failed:invalid or expired token;") == 0);
    CHECK(a.closed && a.close_code == 4000);
    peer_close(&a);
    /* two endpoints: /x takes the router's, /y has its own table and on_error */
    memset(eps, 0, sizeof eps);
    eps[0].path = "/x";
    eps[1].path = "/y";
    eps[1].handlers = only;
    eps[1].n_handlers = 1;
    eps[1].on_error = on_error2;
    rc.path = NULL;
    rc.auth_required = 0;
    rc.type_field = NULL;
    rc.endpoints = eps;
    rc.n_endpoints = 2;
    rtws_router_free(R);
    R = rtws_router_new(&rc);
    CHECK(R != NULL);
    calls[0] = 0;
    peer_open(&a, "/x");
    peer_open(&b, "/y");
    say(&a, "{\"type\":\"hello\"}");
    say(&a, "{\"type\":\"nope\"}");
    say(&b, "{\"type\":\"hello\"}"); /* not in /y's table */
    say(&b, "{\"type\":\"ping\",\"n\":2}");
    CHECK(strcmp(calls, "hello:u;error:unknown_message_type:nope;error2:unknown_message_type:;"
                        "ping:obj;") == 0);
    if (strcmp(calls, "hello:u;error:unknown_message_type:nope;error2:unknown_message_type:;"
                      "ping:obj;"))
        printf("  calls: %s\n", calls);
    peer_close(&a);
    peer_close(&b);
}

int main(void) {
    test_config_level();
    test_dispatch();
    test_type_field();
    test_auth();
    rtws_router_free(R);
    return T_END();
}
