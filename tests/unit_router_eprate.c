/* Layer 7 router: per-endpoint rate limits (rtws_router_endpoint's
   rate_per_s, rate_burst, rate_abuse, on_rate_limited), in the application's
   own protocol and the built-in one, sans-I/O with in-memory peers and a fake
   clock. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#include "router_peer.h"

static int RECEIVED, LIMITED, LIMITED_EP; /* on_receive and on_rate_limited calls */
static char LIMITED_MSG[64];

static int on_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)c;
    (void)ev;
    (void)user;
    RECEIVED++;
    return RTWS_ROUTER_HANDLED;
}
static void on_limited(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    size_t k = ev->message.len < 63 ? ev->message.len : 63;
    (void)user;
    LIMITED++;
    LIMITED_EP = rtws_router_get_conn_endpoint(r, c);
    memcpy(LIMITED_MSG, ev->message.data, k);
    LIMITED_MSG[k] = 0;
    /* the application answers in its own protocol */
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, "{\"t\":\"slow\"}", 12);
}

static void reset_counts(void) { RECEIVED = LIMITED = 0; LIMITED_EP = -1; }

static void burst(peer *p, int n) {
    int i;
    char m[32];
    for (i = 0; i < n; i++) {
        snprintf(m, sizeof m, "{\"n\":%d}", i);
        say(p, m);
    }
}

/* /chat 2 msg/s (burst 2), /health the router's 50 msg/s (burst 100), own protocol */
static void test_own_protocol_limits(void) {
    rtws_router_endpoint eps[2];
    rtws_router_config rc;
    peer chat, health;
    int i;
    memset(eps, 0, sizeof eps);
    memset(&rc, 0, sizeof rc);
    eps[0].path = "/chat";
    eps[0].on_receive = on_recv;
    eps[0].builtin_protocol_off = 1;
    eps[0].rate_per_s = 2;
    eps[0].rate_burst = 2;
    eps[0].on_rate_limited = on_limited;
    eps[1].path = "/health";
    eps[1].on_receive = on_recv;
    eps[1].builtin_protocol_off = 1;
    rc.random = rnd;
    rc.endpoints = eps;
    rc.n_endpoints = 2;
    rc.rate_per_s = 50;
    router_reset(&rc);
    peer_open(&chat, "/chat");
    peer_open(&health, "/health");
    reset_counts();
    burst(&chat, 3); /* the bucket holds 2 */
    CHECK_EQ(RECEIVED, 2);
    CHECK_EQ(LIMITED, 1);
    CHECK_EQ(LIMITED_EP, 0);
    CHECK(strcmp(LIMITED_MSG, "{\"n\":2}") == 0); /* the refused message, not handed to on_receive */
    CHECK_EQ(chat.n, 1);
    CHECK(strcmp(LAST(&chat), "{\"t\":\"slow\"}") == 0);
    CHECK(!chat.closed);
    reset_counts();
    burst(&health, 100); /* the router's burst: 2 * 50 */
    CHECK_EQ(RECEIVED, 100);
    CHECK_EQ(LIMITED, 0); /* /health has no hook of its own, nor the router */
    burst(&health, 1);
    CHECK_EQ(RECEIVED, 100); /* dropped silently */
    CHECK_EQ(health.n, 0);
    /* half a second: one more token on /chat (2/s), 25 on /health */
    NOW += 500;
    reset_counts();
    burst(&chat, 2);
    CHECK_EQ(RECEIVED, 1);
    CHECK_EQ(LIMITED, 1);
    burst(&health, 30);
    CHECK_EQ(RECEIVED, 1 + 25);
    /* abuse: the router's rate_abuse 20 (each message let through takes one
       refusal off): the count is 1 now, 20 more refusals close it with 1008 */
    reset_counts();
    for (i = 0; i < 25 && !chat.closed; i++) burst(&chat, 1);
    CHECK_EQ(LIMITED, 20);
    CHECK(chat.closed);
    CHECK_EQ(chat.close_code, 1008);
    CHECK(!health.closed);
    {
        rtws_router_stats st;
        rtws_router_get_stats(R, &st);
        CHECK_EQ(st.refused_rate, 1 + 1 + 1 + 5 + 20);
    }
    peer_close(&chat);
    peer_close(&health);
}

/* rate_abuse and rate_burst per endpoint; the router's hook as the default;
   an endpoint's limit where the router has none */
static void test_abuse_burst_default_hook(void) {
    rtws_router_endpoint eps[2];
    rtws_router_config rc;
    peer a, b;
    memset(eps, 0, sizeof eps);
    memset(&rc, 0, sizeof rc);
    eps[0].path = "/a";
    eps[0].on_receive = on_recv;
    eps[0].builtin_protocol_off = 1;
    eps[0].rate_per_s = 1;
    eps[0].rate_burst = 5;
    eps[0].rate_abuse = 2;
    eps[1].path = "/b"; /* no limit: the router has none */
    eps[1].on_receive = on_recv;
    eps[1].builtin_protocol_off = 1;
    rc.random = rnd;
    rc.endpoints = eps;
    rc.n_endpoints = 2;
    rc.on_rate_limited = on_limited; /* the endpoints' default */
    router_reset(&rc);
    peer_open(&a, "/a");
    peer_open(&b, "/b");
    reset_counts();
    burst(&a, 5);
    CHECK_EQ(RECEIVED, 5); /* burst 5 */
    burst(&a, 2);
    CHECK_EQ(LIMITED, 2);
    CHECK(!a.closed); /* 2 refusals: rate_abuse */
    burst(&a, 1);
    CHECK_EQ(LIMITED, 3);
    CHECK(a.closed);
    CHECK_EQ(a.close_code, 1008);
    reset_counts();
    burst(&b, 500);
    CHECK_EQ(RECEIVED, 500);
    CHECK_EQ(LIMITED, 0);
    CHECK(!b.closed);
    peer_close(&a);
    peer_close(&b);
}

/* a built-in protocol endpoint with its own limit: "rate_limited" errors,
   and its welcome advertises that limit */
static void test_builtin_endpoint(void) {
    rtws_router_endpoint eps[2];
    rtws_router_config rc;
    peer slow, fast;
    int i;
    memset(eps, 0, sizeof eps);
    memset(&rc, 0, sizeof rc);
    eps[0].path = "/slow";
    eps[0].rate_per_s = 1;
    eps[0].rate_burst = 1;
    eps[0].on_rate_limited = on_limited; /* own protocol only: not called here */
    eps[1].path = "/fast";
    rc.random = rnd;
    rc.endpoints = eps;
    rc.n_endpoints = 2;
    rc.rate_per_s = 1000;
    router_reset(&rc);
    peer_open(&slow, "/slow");
    peer_open(&fast, "/fast");
    CHECK(strstr(slow.msgs[0], "\"rate_limit\":{\"per_s\":1,\"burst\":1}") != NULL);
    CHECK(strstr(fast.msgs[0], "\"rate_limit\":{\"per_s\":1000,\"burst\":2000}") != NULL);
    reset_counts();
    say(&slow, "{\"type\":\"ping\",\"ts\":1}");
    CHECK(strstr(LAST(&slow), "\"pong\"") != NULL);
    say(&slow, "{\"type\":\"ping\",\"ts\":2}");
    CHECK(strstr(LAST(&slow), "\"rate_limited\"") != NULL);
    CHECK_EQ(LIMITED, 0);
    for (i = 0; i < 50; i++) say(&fast, "{\"type\":\"ping\",\"ts\":3}");
    CHECK(strstr(LAST(&fast), "\"pong\"") != NULL);
    CHECK_EQ(fast.n, 51);
    peer_close(&slow);
    peer_close(&fast);
}

/* the hook may close the connection itself; nothing is closed twice */
static void on_limited_close(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)ev;
    (void)user;
    LIMITED++;
    rtws_conn_close(c, 4000, "too fast");
}
static void test_hook_closes(void) {
    rtws_router_config rc;
    peer p;
    memset(&rc, 0, sizeof rc);
    rc.path = "/x";
    rc.random = rnd;
    rc.on_receive = on_recv;
    rc.builtin_protocol_off = 1;
    rc.rate_per_s = 1;
    rc.rate_abuse = 1;
    rc.on_rate_limited = on_limited_close;
    router_reset(&rc);
    peer_open(&p, "/x");
    reset_counts();
    burst(&p, 4);
    CHECK_EQ(RECEIVED, 2);
    CHECK_EQ(LIMITED, 1);
    CHECK(p.closed);
    CHECK_EQ(p.close_code, 4000);
    peer_close(&p);
}

/* a connection the server is closing gets no hook call for the messages the
   client sent meanwhile (fuzz_router: regress-rate-hook-on-closing) */
static void test_closing(void) {
    rtws_router_config rc;
    peer p;
    int i;
    memset(&rc, 0, sizeof rc);
    rc.path = "/x";
    rc.random = rnd;
    rc.on_receive = on_recv;
    rc.builtin_protocol_off = 1;
    rc.rate_per_s = 1;
    rc.rate_burst = 1;
    rc.on_rate_limited = on_limited;
    router_reset(&rc);
    peer_open(&p, "/x");
    reset_counts();
    rtws_conn_close(&p.sv, 1000, "bye");
    for (i = 0; i < 3; i++) rtws_conn_send_text(&p.cl, "{}", 2);
    pump(&p);
    CHECK_EQ(RECEIVED, 1);
    CHECK_EQ(LIMITED, 0);
    CHECK(p.closed);
    peer_close(&p);
}

int main(void) {
    test_closing();
    test_own_protocol_limits();
    test_abuse_burst_default_hook();
    test_builtin_endpoint();
    test_hook_closes();
    rtws_router_free(R);
    return T_END();
}
