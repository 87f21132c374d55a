/* Issue 15, the router's side, sans-I/O: channels without subscribers
   expire, channel caps per router and per user, the memory budget's order
   (new channels refused, then history shed oldest first, then the largest
   queues closed with 1013), and every error answering a message with an id
   echoes it; rate_limited carries retry_after_ms and keeps publish order.
   Compression is off here (its memory in the budget: tests/unit_pmd.c). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

static rtws_router *R;
static uint64_t NOW = 1000;
static rtws_config SC; /* the server connections' config (budget = the router's) */

typedef struct peer {
    rtws_conn cl, sv;
    char msgs[256][512]; /* texts the client received (cut at 511 bytes) */
    int n, closed, reads; /* reads 0: the client never reads */
    unsigned close_code;
} peer;

static void sv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    rtws_router_handle_event(R, c, ev, NOW);
}
static int sv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    (void)proto;
    (void)user;
    return rtws_router_handle_accept(R, c, req, NOW);
}
static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)user;
    (void)c;
    if (ev->message.len > 511 && ev->type == RTWS_EV_MESSAGE && p->n < 256) {
        /* a long one: its head and its tail */
        memcpy(p->msgs[p->n], ev->message.data, 200);
        memcpy(p->msgs[p->n] + 200, ev->message.data + ev->message.len - 300, 300);
        p->msgs[p->n][500] = 0;
        p->n++;
    } else if (ev->type == RTWS_EV_MESSAGE && p->n < 256) {
        memcpy(p->msgs[p->n], ev->message.data, ev->message.len);
        p->msgs[p->n][ev->message.len] = 0;
        p->n++;
    }
    if (ev->type == RTWS_EV_CLOSE) {
        p->closed = 1;
        p->close_code = ev->close.code;
    }
}
static void move(rtws_conn *a, rtws_conn *b) {
    const uint8_t *o;
    size_t len;
    static uint8_t tmp[1 << 17];
    while ((o = rtws_conn_out(a, &len)) != NULL) {
        if (len > sizeof tmp) len = sizeof tmp;
        memcpy(tmp, o, len);
        rtws_conn_out_done(a, len);
        rtws_conn_recv(b, tmp, len, NOW, NULL);
    }
}
static void pump(peer *p) {
    int i;
    for (i = 0; i < 4; i++) {
        move(&p->cl, &p->sv);
        if (p->reads) move(&p->sv, &p->cl);
    }
}
static int rnd(void *buf, size_t n, void *u) {
    static unsigned s = 11;
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) ((unsigned char *)buf)[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
    return 0;
}
static void peer_open(peer *p) {
    rtws_config cc;
    rtws_client_opts o;
    memset(p, 0, sizeof *p);
    memset(&cc, 0, sizeof cc);
    cc.role = RTWS_CLIENT;
    cc.on_event = cl_event;
    cc.user = p;
    cc.random = rnd;
    cc.heartbeat_off = 1;
    cc.deflate_off = 1; /* the budget's figures below are for uncompressed queues */
    rtws_conn_init(&p->cl, &cc);
    rtws_conn_init(&p->sv, &SC);
    memset(&o, 0, sizeof o);
    o.host = "x";
    o.path = "/ws";
    rtws_conn_start(&p->cl, &o, NOW);
    p->reads = 1;
    pump(p);
    /* the 101 and welcome reached even a client that will never read */
    move(&p->sv, &p->cl);
}
static void say(peer *p, const char *json) {
    rtws_conn_send_text(&p->cl, json, strlen(json));
    pump(p);
}
static int find(const peer *p, int from, const char *needle) {
    int i;
    for (i = from; i < p->n; i++)
        if (strstr(p->msgs[i], needle)) return i;
    return -1;
}
#define LAST(p) ((p)->n ? (p)->msgs[(p)->n - 1] : "")
static void peer_free(peer *p) {
    if (rtws_conn_get_state(&p->sv) == RTWS_STATE_OPEN) rtws_conn_recv_eof(&p->sv, NOW);
    rtws_conn_free(&p->cl);
    rtws_conn_free(&p->sv);
}

static void new_router(rtws_router_config *rc) {
    rc->path = "/ws";
    rc->random = rnd;
    R = rtws_router_new(rc);
    memset(&SC, 0, sizeof SC);
    SC.role = RTWS_SERVER;
    SC.on_event = sv_event;
    SC.on_accept = sv_accept;
    SC.heartbeat_off = 1;
    SC.budget = rtws_router_get_budget(R);
}

/* a JSON publish with data of n 'x' bytes */
static void publish(peer *p, const char *chan, size_t n, const char *id) {
    static char buf[70000], data[66000];
    memset(data, 'x', n);
    data[n] = 0;
    snprintf(buf, sizeof buf, "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":\"%s\",\"id\":\"%s\"}",
             chan, data, id);
    say(p, buf);
}

/* item 2: fresh channels with history from clients that leave */
static void test_expiry_and_caps(void) {
    rtws_router_config rc;
    rtws_router_stats st;
    static peer ps[4];
    char ch[32], id[16];
    int i, k;
    memset(&rc, 0, sizeof rc);
    rc.channel_ttl_ms = 5000;
    rc.max_channels_total = 30;
    rc.max_user_channels = 10;
    new_router(&rc);
    for (i = 0; i < 4; i++) {
        peer_open(&ps[i]);
        for (k = 0; k < 12; k++) {
            snprintf(ch, sizeof ch, "c%d-%d", i, k);
            snprintf(id, sizeof id, "p%d", k);
            publish(&ps[i], ch, 1000, id);
        }
    }
    /* per user: 10 each; the 11th and 12th are refused, with their id */
    CHECK(find(&ps[0], 0, "\"code\":\"limit_reached\",\"message\":\"too many channels for this user\",\"id\":\"p10\"") >= 0);
    CHECK(find(&ps[0], 0, "\"id\":\"p11\"") >= 0);
    CHECK(find(&ps[0], 0, "\"type\":\"ack\",\"id\":\"p9\"") >= 0);
    /* per router: 30 in all, so the fourth user got none past 0 */
    CHECK(find(&ps[3], 0, "\"code\":\"limit_reached\",\"message\":\"too many channels on this server\",\"id\":\"p0\"") >= 0);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.channels, 30);
    CHECK(st.history_bytes >= 30 * 1000);
    /* everyone leaves; before the ttl the history stays (a resume works) */
    for (i = 0; i < 4; i++) peer_free(&ps[i]);
    NOW += 4000;
    rtws_router_run_timers(R, NOW);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.channels, 30);
    peer_open(&ps[0]);
    say(&ps[0], "{\"type\":\"subscribe\",\"channel\":\"c0-3\",\"since\":0,\"id\":\"s1\"}");
    CHECK(find(&ps[0], 0, "\"type\":\"subscribed\",\"channel\":\"c0-3\",\"seq\":1,\"id\":\"s1\"") >= 0);
    CHECK(find(&ps[0], 0, "\"type\":\"message\",\"channel\":\"c0-3\"") >= 0);
    peer_free(&ps[0]);
    /* after the ttl every channel is gone, and with the sessions all memory */
    NOW += 5001;
    rtws_router_run_timers(R, NOW);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.channels, 0);
    CHECK_EQ(st.channels_expired, 30);
    CHECK_EQ(st.history_bytes, 0);
    NOW += 120001; /* session_ttl_ms */
    rtws_router_run_timers(R, NOW);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.sessions, 0);
    CHECK_EQ(st.memory_router, 0);
    CHECK_EQ(st.memory_used, 0);
    /* a resume after the expiry is told so: reset, seq 0 */
    peer_open(&ps[0]);
    say(&ps[0], "{\"type\":\"subscribe\",\"channel\":\"c0-3\",\"since\":1}");
    CHECK(find(&ps[0], 0, "\"type\":\"reset\",\"channel\":\"c0-3\",\"seq\":0") >= 0);
    peer_free(&ps[0]);
    rtws_router_free(R);
}

/* the budget's order: new channels, then history (oldest first), then the
   largest queues (1013) */
static void test_budget_order(void) {
    rtws_router_config rc;
    rtws_router_stats st;
    static peer pub, sub, slow;
    rtws_budget *b;
    char ch[32], id[16];
    int k, i0;
    memset(&rc, 0, sizeof rc);
    rc.memory_budget = 1000000;
    new_router(&rc);
    b = rtws_router_get_budget(R);
    CHECK_EQ(b->limit, 1000000);
    peer_open(&pub);
    /* history on one channel grows; past 7/8 the oldest goes */
    for (k = 0; k < 40; k++) {
        snprintf(id, sizeof id, "h%d", k);
        publish(&pub, "hist", 30000, id);
        rtws_router_get_stats(R, &st);
        CHECK(st.memory_used <= 1000000);
    }
    rtws_router_get_stats(R, &st);
    CHECK(st.history_shed > 0);
    CHECK(st.history_bytes <= 875000);
    CHECK(find(&pub, 0, "\"type\":\"ack\",\"id\":\"h39\",\"seq\":40") >= 0);
    /* the oldest went: resuming from 0 is a reset, from 37 replays 38..40 */
    peer_open(&sub);
    say(&sub, "{\"type\":\"subscribe\",\"channel\":\"hist\",\"since\":0}");
    CHECK(find(&sub, 0, "\"type\":\"reset\"") >= 0);
    i0 = sub.n;
    say(&sub, "{\"type\":\"subscribe\",\"channel\":\"hist\",\"since\":37}");
    CHECK(find(&sub, i0, "\"seq\":38") >= 0);
    CHECK(find(&sub, i0, "\"seq\":40") >= 0);
    /* above 3/4: no new channel ("overloaded", the id, retry_after_ms) */
    CHECK(rtws_budget_get_level(b) >= RTWS_BUDGET_NO_NEW);
    publish(&pub, "fresh", 10, "n1");
    CHECK(strstr(LAST(&pub), "\"code\":\"overloaded\"") != NULL);
    CHECK(strstr(LAST(&pub), "\"id\":\"n1\",\"retry_after_ms\":1000") != NULL);
    say(&sub, "{\"type\":\"subscribe\",\"channel\":\"fresh2\",\"id\":\"s2\"}");
    CHECK(strstr(LAST(&sub), "\"code\":\"overloaded\"") && strstr(LAST(&sub), "\"id\":\"s2\""));
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.refused_overloaded, 2);
    /* n1 was refused to retry: later publishes wait for it (order), even
       to a channel that exists, until it comes again or 11 s pass */
    publish(&pub, "hist", 10, "x1");
    CHECK(strstr(LAST(&pub), "\"code\":\"rate_limited\"") && strstr(LAST(&pub), "\"id\":\"x1\""));
    NOW += 11001;
    publish(&pub, "hist", 10, "x1");
    CHECK(strstr(LAST(&pub), "\"type\":\"ack\",\"id\":\"x1\"") != NULL);
    /* a subscriber that never reads: its queue grows to the budget and it
       is closed with 1013 instead; history never holds more than 7/8 */
    peer_open(&slow);
    say(&slow, "{\"type\":\"subscribe\",\"channel\":\"hist\"}");
    slow.reads = 0;
    for (k = 0; k < 60 && rtws_conn_get_state(&slow.sv) == RTWS_STATE_OPEN; k++) {
        snprintf(id, sizeof id, "q%d", k);
        publish(&pub, "hist", 30000, id);
        pump(&sub);
        rtws_router_get_stats(R, &st);
        CHECK(st.memory_used <= 1000000);
        CHECK(st.history_bytes <= 875000);
    }
    CHECK(k < 60);
    CHECK_EQ(rtws_conn_get_state(&slow.sv), RTWS_STATE_CLOSING);
    CHECK_EQ(slow.sv.priv_.close_code, 1013u);
    move(&slow.sv, &slow.cl);
    CHECK(slow.closed && slow.close_code == 1013);
    rtws_conn_recv_eof(&slow.sv, NOW);
    /* the reader and the publisher went on */
    CHECK_EQ(rtws_conn_get_state(&sub.sv), RTWS_STATE_OPEN);
    CHECK_EQ(rtws_conn_get_state(&pub.sv), RTWS_STATE_OPEN);
    CHECK(find(&pub, 0, "\"type\":\"ack\",\"id\":\"q") >= 0);
    peer_free(&slow);
    peer_free(&sub);
    peer_free(&pub);
    (void)ch;
    NOW += 400000; /* channels and sessions expire */
    rtws_router_run_timers(R, NOW);
    CHECK_EQ(b->used, 0);
    CHECK(b->peak <= 1000000);
    rtws_router_free(R);
}

/* item 11: ids on every error that answers an id; rate_limited with
   retry_after_ms; a refused publish holds back the later ones */
static void test_ids_and_rate(void) {
    rtws_router_config rc;
    static peer a;
    int i0, k;
    char id[16];
    memset(&rc, 0, sizeof rc);
    rc.rate_per_s = 10; /* 1 token per 100 ms */
    rc.rate_burst = 3;
    rc.rate_abuse = 5;
    new_router(&rc);
    peer_open(&a);
    CHECK(find(&a, 0, "\"rate_limit\":{\"per_s\":10,\"burst\":3}") >= 0);
    say(&a, "{\"type\":\"nope\",\"id\":\"u1\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\"") && strstr(LAST(&a), "\"id\":\"u1\""));
    say(&a, "{\"type\":\"unsubscribe\",\"channel\":\"zz\",\"id\":\"u2\"}");
    CHECK(strstr(LAST(&a), "not_subscribed") && strstr(LAST(&a), "\"id\":\"u2\""));
    say(&a, "{\"type\":\"publish\",\"channel\":\"ch\",\"data\":1,\"id\":\"m1\"}"); /* 3rd token */
    CHECK(strstr(LAST(&a), "\"type\":\"ack\",\"id\":\"m1\""));
    /* bucket empty: m2 refused with its id and the wait; m3, m4 held back */
    i0 = a.n;
    say(&a, "{\"type\":\"publish\",\"channel\":\"ch\",\"data\":2,\"id\":\"m2\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"rate_limited\",\"message\":\"slow down\",\"id\":\"m2\",\"retry_after_ms\":100}") != NULL);
    NOW += 150; /* a token again, but m3 may not overtake m2 */
    say(&a, "{\"type\":\"publish\",\"channel\":\"ch\",\"data\":3,\"id\":\"m3\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"rate_limited\"") && strstr(LAST(&a), "\"id\":\"m3\",\"retry_after_ms\":1}"));
    say(&a, "{\"type\":\"ping\",\"id\":\"g1\"}"); /* not a publish: served */
    CHECK(strstr(LAST(&a), "\"type\":\"pong\""));
    NOW += 100;
    say(&a, "{\"type\":\"publish\",\"channel\":\"ch\",\"data\":2,\"id\":\"m2\"}");
    CHECK(strstr(LAST(&a), "\"type\":\"ack\",\"id\":\"m2\",\"seq\":2") != NULL);
    NOW += 100;
    say(&a, "{\"type\":\"publish\",\"channel\":\"ch\",\"data\":3,\"id\":\"m3\"}");
    CHECK(strstr(LAST(&a), "\"type\":\"ack\",\"id\":\"m3\",\"seq\":3") != NULL);
    CHECK(find(&a, i0, "\"id\":\"m3\",\"seq\"") > find(&a, i0, "\"id\":\"m2\",\"seq\""));
    /* a message without id is refused without one */
    NOW += 10;
    say(&a, "{\"type\":\"ping\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"rate_limited\"") && !strstr(LAST(&a), "\"id\""));
    /* paced refusals are worked off by messages let through: no close */
    for (k = 0; k < 20; k++) {
        NOW += 100;
        say(&a, "{\"type\":\"ping\"}"); /* passes */
        say(&a, "{\"type\":\"ping\"}"); /* refused */
    }
    CHECK_EQ(rtws_conn_get_state(&a.sv), RTWS_STATE_OPEN);
    /* a flood still reaches 1008 */
    for (k = 0; k < 10 && !a.closed; k++) {
        snprintf(id, sizeof id, "f%d", k);
        say(&a, "{\"type\":\"ping\"}");
    }
    CHECK(a.closed && a.close_code == 1008);
    peer_free(&a);
    rtws_router_free(R);
}

int main(void) {
    test_expiry_and_caps();
    test_budget_order();
    test_ids_and_rate();
    return T_END();
}
