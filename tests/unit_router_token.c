/* The router's tokens on open connections (issue 13), sans-I/O with a fake
   clock: the user id from a configured claim ("userId"), the claims kept per
   connection (rtws_router_get_claims), jwt_leeway_s, and a token's exp
   passing while the connection is open: "token_expired", then
   token_grace_ms in which an auth message with a fresh token for the same
   user renews (subscriptions kept), else close 4001. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#define ROUTER_PEER_MSG 2048
#include "router_peer.h"

static const char KEY[] = "0123456789abcdef0123456789abcdef";
static const int64_t WALL0 = 1800000000; /* wall seconds at NOW = 1000 */

/* now in wall seconds, as the router sees it */
static int64_t wall_s(void) { return (int64_t)(NOW - 1000) / 1000 + WALL0; }

static const char *token(const char *user, int64_t exp) {
    static char tok[1024];
    char claims[256];
    if (exp) snprintf(claims, sizeof claims, "{\"userId\":\"%s\",\"role\":\"admin\",\"exp\":%lld}", user, (long long)exp);
    else snprintf(claims, sizeof claims, "{\"userId\":\"%s\",\"role\":\"admin\"}", user);
    CHECK(rtws_jwt_hs256_sign(claims, KEY, sizeof KEY - 1, tok, sizeof tok) > 0);
    return tok;
}

static void open_with(peer *p, const char *tok) {
    char path[1200];
    snprintf(path, sizeof path, "/ws?token=%s", tok);
    peer_open(p, path);
}

static void router(int32_t leeway, uint32_t grace) {
    rtws_router_config rc;
    memset(&rc, 0, sizeof rc);
    rc.jwt_secret = KEY;
    rc.jwt_secret_len = sizeof KEY - 1;
    rc.jwt_user_claim = "userId";
    rc.jwt_leeway_s = leeway;
    rc.token_grace_ms = grace;
    rc.random = rnd;
    rc.wall_offset_ms = WALL0 * 1000 - 1000;
    if (R) rtws_router_free(R);
    R = rtws_router_new(&rc);
}

static void tick(peer *p, uint64_t to) {
    NOW = to;
    rtws_router_run_timers(R, NOW);
    pump(p);
}

static void test_claims(void) {
    peer a;
    size_t len = 0;
    const char *cl;
    router(-1, 5000);
    open_with(&a, token("u-17", 0));
    CHECK(HAS(&a, "\"type\":\"welcome\""));
    CHECK(HAS(&a, "\"type\":\"authenticated\""));
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "u-17") == 0);
    cl = rtws_router_get_claims(R, &a.sv, &len);
    CHECK(cl != NULL && strcmp(cl, "{\"userId\":\"u-17\",\"role\":\"admin\"}") == 0);
    CHECK_EQ(len, strlen("{\"userId\":\"u-17\",\"role\":\"admin\"}"));
    /* no exp: never expires */
    tick(&a, NOW + 100000000);
    CHECK(!HAS(&a, "token_expired") && !a.closed);
    peer_close(&a);
    /* a token without the configured claim names nobody: 401 */
    {
        char tok[512];
        CHECK(rtws_jwt_hs256_sign("{\"sub\":\"u-17\"}", KEY, sizeof KEY - 1, tok, sizeof tok) > 0);
        open_with(&a, tok);
        CHECK_EQ(rtws_conn_get_error(&a.cl), RTWS_ERR_HANDSHAKE);
        rtws_conn_free(&a.cl);
        rtws_conn_free(&a.sv);
    }
    /* an auth message keeps its token's claims too; no token: no claims */
    peer_open(&a, "/ws");
    CHECK(rtws_router_get_claims(R, &a.sv, &len) == NULL && len == 0);
    {
        char msg[1200];
        snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", token("u-18", 0));
        say(&a, msg);
    }
    CHECK(strstr(LAST(&a), "\"type\":\"authenticated\"") && strstr(LAST(&a), "u-18"));
    cl = rtws_router_get_claims(R, &a.sv, NULL);
    CHECK(cl != NULL && strstr(cl, "\"u-18\"") != NULL);
    peer_close(&a);
}

static void test_expiry_closes(void) {
    peer a;
    uint64_t t0;
    int64_t exp;
    router(-1, 5000); /* no leeway */
    t0 = NOW;
    exp = wall_s() + 10;
    open_with(&a, token("u-1", exp));
    CHECK(HAS(&a, "\"type\":\"authenticated\""));
    CHECK_EQ(R->npend, 1); /* its token's expiry: the timer pass walks the connections */
    tick(&a, t0 + 10000 - 1); /* one ms before exp */
    CHECK(!HAS(&a, "token_expired"));
    tick(&a, t0 + 10000);
    CHECK(HAS(&a, "\"code\":\"token_expired\""));
    CHECK(!a.closed);
    tick(&a, t0 + 10000 + 5000 - 1); /* the grace, less a ms */
    CHECK(!a.closed);
    CHECK_EQ(find(&a, find(&a, 0, "token_expired") + 1, "token_expired"), -1); /* said once */
    tick(&a, t0 + 15000);
    CHECK(a.closed);
    CHECK_EQ(a.close_code, RTWS_CLOSE_TOKEN_EXPIRED);
    CHECK_EQ(a.close_code, 4001);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    CHECK_EQ(R->npend, 0);
}

static void test_renew(void) {
    peer a, b;
    uint64_t t0;
    char msg[1200];
    int k;
    router(-1, 5000);
    t0 = NOW;
    open_with(&a, token("u-2", wall_s() + 10));
    peer_open(&b, "/ws");
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"room\"}");
    CHECK(strstr(LAST(&a), "\"type\":\"subscribed\""));
    tick(&a, t0 + 10000);
    CHECK(strstr(LAST(&a), "\"code\":\"token_expired\""));
    /* within the grace: a fresh token for the same user, while subscribed */
    tick(&a, t0 + 12000);
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\",\"id\":\"r1\"}",
             token("u-2", wall_s() + 60));
    say(&a, msg);
    CHECK(strstr(LAST(&a), "\"type\":\"authenticated\"") && strstr(LAST(&a), "\"user\":\"u-2\""));
    tick(&a, t0 + 30000); /* well past the old grace */
    CHECK(!a.closed);
    /* still subscribed: a publish from b arrives */
    say(&b, "{\"type\":\"publish\",\"channel\":\"room\",\"data\":{\"x\":1}}");
    pump(&a);
    CHECK(strstr(LAST(&a), "\"type\":\"message\"") && strstr(LAST(&a), "\"x\":1"));
    /* the new token's exp is watched in turn (12 s + 60 s) */
    k = a.n;
    tick(&a, t0 + 72000 - 1);
    CHECK_EQ(find(&a, k, "token_expired"), -1);
    tick(&a, t0 + 72000);
    CHECK(find(&a, k, "token_expired") >= 0);
    /* a token for someone else while subscribed is refused, and does not renew */
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", token("u-3", wall_s() + 60));
    say(&a, msg);
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\""));
    /* an expired token does not renew either */
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", token("u-2", wall_s() - 1));
    say(&a, msg);
    CHECK(strstr(LAST(&a), "\"code\":\"unauthorized\""));
    tick(&a, t0 + 77000);
    CHECK(a.closed && a.close_code == 4001);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    peer_close(&b);
}

static void test_leeway(void) {
    peer a;
    uint64_t t0;
    router(0, 0); /* the defaults: 30 s leeway, 30 s grace */
    t0 = NOW;
    /* expired 10 s ago, within the leeway: accepted, and expires 20 s from now */
    open_with(&a, token("u-4", wall_s() - 10));
    CHECK(HAS(&a, "\"type\":\"authenticated\""));
    tick(&a, t0 + 20000 - 1);
    CHECK(!HAS(&a, "token_expired"));
    tick(&a, t0 + 20000);
    CHECK(HAS(&a, "token_expired"));
    tick(&a, t0 + 50000 - 1);
    CHECK(!a.closed);
    tick(&a, t0 + 50000);
    CHECK(a.closed && a.close_code == 4001);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* beyond the leeway: refused at the upgrade */
    open_with(&a, token("u-4", wall_s() - 30));
    CHECK_EQ(rtws_conn_get_error(&a.cl), RTWS_ERR_HANDSHAKE);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* exp = 2^63-1: never */
    open_with(&a, token("u-4", INT64_MAX));
    CHECK(HAS(&a, "\"type\":\"authenticated\""));
    tick(&a, NOW + 1000000000);
    CHECK(!HAS(&a, "token_expired") && !a.closed);
    peer_close(&a);
}

int main(void) {
    test_claims();
    test_expiry_closes();
    test_renew();
    test_leeway();
    rtws_router_free(R);
    return T_END();
}
