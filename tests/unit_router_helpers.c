/* Layer 7 router, server-side API: rtws_router_send_to_channels (once per
   connection across channels), rtws_router_close_user, and
   rtws_router_write_history (history into a JSON writer); sans-I/O with
   in-memory peers and a fake clock. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#include "router_peer.h"

static int on_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)c;
    (void)ev;
    (void)user;
    return RTWS_ROUTER_HANDLED;
}

static void own_router(void) {
    rtws_router_config rc = base_cfg();
    rc.builtin_protocol_off = 1;
    rc.on_receive = on_recv;
    rc.max_conns_per_user = 0;
    router_reset(&rc);
}

static void test_send_to_channels(void) {
    peer a, b, c, d;
    const char *chs[4] = {"x", NULL, "y", "z"};
    own_router();
    peer_open(&a, "/ws"); /* on x and y: once */
    peer_open(&b, "/ws"); /* on y only */
    peer_open(&c, "/ws"); /* on nothing */
    peer_open(&d, "/ws"); /* on z, and skipped */
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "x"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "y"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &b.sv, "y"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &d.sv, "z"), RTWS_OK);
    CHECK_EQ(rtws_router_send_to_channels(R, chs, 4, RTWS_OP_TEXT, "{\"m\":1}", 7, &d.sv), 2);
    pump(&a);
    pump(&b);
    pump(&c);
    pump(&d);
    CHECK_EQ(a.n, 1);
    CHECK_EQ(b.n, 1);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(d.n, 0);
    CHECK(strcmp(LAST(&a), "{\"m\":1}") == 0 && strcmp(LAST(&b), "{\"m\":1}") == 0);
    /* no skip: z too; a channel named twice changes nothing */
    chs[1] = "x";
    CHECK_EQ(rtws_router_send_to_channels(R, chs, 4, RTWS_OP_BINARY, "ab", 2, NULL), 3);
    pump(&a);
    pump(&d);
    CHECK_EQ(a.n, 2);
    CHECK(a.bin[1]);
    CHECK_EQ(d.n, 1);
    /* no channels, unknown channels, bad text: nobody */
    CHECK_EQ(rtws_router_send_to_channels(R, chs, 0, RTWS_OP_TEXT, "1", 1, NULL), 0);
    chs[0] = "nope";
    CHECK_EQ(rtws_router_send_to_channels(R, chs, 1, RTWS_OP_TEXT, "1", 1, NULL), 0);
    CHECK_EQ(rtws_router_send_to_channels(R, chs + 2, 1, RTWS_OP_TEXT, "\xff", 1, NULL), 0);
    /* not a channel of history: the seq does not move */
    CHECK_EQ(rtws_router_get_seq(R, "x"), 0);
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
    peer_close(&d);
}

static void test_close_user(void) {
    peer a, b, c;
    own_router();
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "u1", NULL, 0), RTWS_OK);
    CHECK_EQ(rtws_router_set_identity(R, &b.sv, "u1", NULL, 0), RTWS_OK);
    CHECK_EQ(rtws_router_set_identity(R, &c.sv, "u2", NULL, 0), RTWS_OK);
    CHECK_EQ(rtws_router_close_user(R, "nobody", 1012, "x"), 0);
    CHECK_EQ(rtws_router_close_user(R, NULL, 1012, "x"), 0);
    CHECK_EQ(rtws_router_close_user(R, "u1", 1012, "reconnect"), 2);
    pump(&a);
    pump(&b);
    pump(&c);
    CHECK(a.closed && b.closed && !c.closed);
    CHECK_EQ(a.close_code, 1012);
    CHECK_EQ(b.close_code, 1012);
    CHECK_EQ(rtws_router_close_user(R, "u1", 1000, NULL), 0); /* gone */
    CHECK_EQ(rtws_router_close_user(R, "u2", 1000, NULL), 1);
    pump(&c);
    CHECK(c.closed && c.close_code == 1000);
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
}

static void test_write_history(void) {
    rtws_json_writer w;
    char buf[256];
    size_t n;
    int i;
    own_router(); /* history 4 */
    for (i = 1; i <= 6; i++) {
        char m[32];
        snprintf(m, sizeof m, "{\"n\":%d}", i);
        CHECK_EQ(rtws_router_publish_raw(R, "h", RTWS_OP_TEXT, m, strlen(m), NOW), (uint64_t)i);
    }
    CHECK_EQ(rtws_router_publish_raw(R, "h", RTWS_OP_BINARY, "\x01", 1, NOW), 7u);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK_EQ(rtws_router_write_history(R, "h", 3, 0, &w), RTWS_OK);
    rtws_json_write_array_end(&w);
    CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_OK);
    CHECK(strcmp(buf, "[{\"n\":4},{\"n\":5},{\"n\":6}]") == 0); /* the binary one left out */
    /* last_n; inside an object member; gone history is RTWS_ERR_RANGE and writes nothing */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_fmt(&w, "{messages:[");
    CHECK_EQ(rtws_router_write_history(R, "h", 3, 3, &w), RTWS_OK); /* 5, 6 and the binary 7 */
    CHECK_EQ(rtws_router_write_history(R, "h", 1, 0, &w), RTWS_ERR_RANGE);
    rtws_json_write_fmt(&w, "]}");
    CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_OK);
    CHECK(strcmp(buf, "{\"messages\":[{\"n\":5},{\"n\":6}]}") == 0);
    /* no such channel: nothing, RTWS_OK from 0 */
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK_EQ(rtws_router_write_history(R, "none", 0, 0, &w), RTWS_OK);
    rtws_json_write_array_end(&w);
    CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_OK);
    CHECK(strcmp(buf, "[]") == 0);
    /* text that is not JSON: the writer's error */
    CHECK(rtws_router_publish_raw(R, "t", RTWS_OP_TEXT, "hello", 5, NOW) == 1);
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_array(&w);
    CHECK_EQ(rtws_router_write_history(R, "t", 0, 0, &w), RTWS_OK);
    rtws_json_write_array_end(&w);
    CHECK_EQ(rtws_json_writer_finish(&w, &n), RTWS_ERR_SYNTAX);
}

static size_t tok(const char *claims, const char *secret, char *out, size_t cap) {
    return rtws_jwt_hs256_sign(claims, secret, strlen(secret), out, cap);
}

static void test_authenticate(void) {
    rtws_router_config rc = base_cfg();
    peer a, b, c;
    char t[512];
    size_t n, cl;
    const char *claims;
    rc.builtin_protocol_off = 1;
    rc.on_receive = on_recv;
    rc.max_conns_per_user = 1;
    rc.jwt_secret = "s3cret";
    rc.jwt_secret_len = 6;
    rc.jwt_leeway_s = -1; /* none */
    rc.token_grace_ms = 1000;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    n = tok("{\"sub\":\"ann\",\"role\":\"nurse\",\"exp\":5}", "s3cret", t, sizeof t);
    CHECK(n > 0);
    CHECK_EQ(rtws_router_authenticate(R, &a.sv, t, n - 1), RTWS_ERR_INVALID); /* cut */
    CHECK_EQ(rtws_router_authenticate(R, &a.sv, t, 0), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_authenticate(R, &a.cl, t, n), RTWS_ERR_INVALID); /* not the router's */
    CHECK(rtws_router_get_claims(R, &a.sv, NULL) == NULL);
    CHECK_EQ(rtws_router_authenticate(R, &a.sv, t, n), RTWS_OK);
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "ann") == 0);
    claims = rtws_router_get_claims(R, &a.sv, &cl);
    CHECK(claims && strstr(claims, "\"role\":\"nurse\"") && cl == strlen(claims));
    /* another secret; expired (exp 0 < now 1 s); the cap of 1 */
    n = tok("{\"sub\":\"bob\"}", "other", t, sizeof t);
    CHECK_EQ(rtws_router_authenticate(R, &b.sv, t, n), RTWS_ERR_INVALID);
    n = tok("{\"sub\":\"bob\",\"exp\":0}", "s3cret", t, sizeof t);
    CHECK_EQ(rtws_router_authenticate(R, &b.sv, t, n), RTWS_ERR_INVALID);
    n = tok("{\"sub\":\"ann\"}", "s3cret", t, sizeof t);
    CHECK_EQ(rtws_router_authenticate(R, &b.sv, t, n), RTWS_ERR_LIMIT);
    CHECK(rtws_router_get_claims(R, &b.sv, NULL) == NULL);
    /* renewing on a subscribed connection: same user only */
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "ch"), RTWS_OK);
    n = tok("{\"sub\":\"cat\"}", "s3cret", t, sizeof t);
    CHECK_EQ(rtws_router_authenticate(R, &a.sv, t, n), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_authenticate(R, &c.sv, t, n), RTWS_OK); /* c: exp 5 s, not renewed */
    n = tok("{\"sub\":\"cat\",\"exp\":5}", "s3cret", t, sizeof t);
    CHECK_EQ(rtws_router_authenticate(R, &c.sv, t, n), RTWS_OK);
    /* exp passes (5 s): own protocol, so nothing is sent; a renews in the grace, c does not */
    pump(&a);
    pump(&c);
    a.n = c.n = 0;
    NOW = 5000;
    rtws_router_run_timers(R, NOW);
    pump(&a);
    pump(&c);
    CHECK_EQ(a.n, 0);
    CHECK_EQ(c.n, 0);
    CHECK(!a.closed && !c.closed);
    n = tok("{\"sub\":\"ann\",\"exp\":100}", "s3cret", t, sizeof t);
    NOW = 5500;
    CHECK_EQ(rtws_router_authenticate(R, &a.sv, t, n), RTWS_OK);
    CHECK(rtws_router_is_subscribed(R, &a.sv, "ch")); /* kept */
    NOW = 6100;
    rtws_router_run_timers(R, NOW);
    pump(&a);
    pump(&c);
    CHECK(!a.closed);
    CHECK(c.closed);
    CHECK_EQ(c.close_code, RTWS_CLOSE_TOKEN_EXPIRED);
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
}

int main(void) {
    test_authenticate();
    test_send_to_channels();
    test_close_user();
    test_write_history();
    rtws_router_free(R);
    return T_END();
}
