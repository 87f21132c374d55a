/* The realtime layer end to end over real sockets: router installed in a
   context, rtws_rt clients. No message lost across cut connections; presence
   with users on several connections and one that dies silently; 5,000
   subscribers with one slow consumer. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "proxy.h"
#include "rt_e2e.h"
#include "rt_seq.h"
#include <stdlib.h>

/* ---- subscriber bookkeeping ---- */
typedef struct sub_log {
    seq_log s; /* the subscriber's numbers (on_numbered) */
    int welcomes, resumed;
} sub_log;

static void on_welcome(rtws_rt *rt, const char *user, const char *session, int resumed, void *u) {
    sub_log *L = (sub_log *)u;
    (void)rt;
    (void)user;
    (void)session;
    L->welcomes++;
    L->resumed += resumed;
}

static rtws_rt *rt_client(rtws_ctx *ctx, const char *url, sub_log *L) {
    rtws_rt_config c;
    memset(&c, 0, sizeof c);
    c.client.url = url;
    c.client.backoff_base_ms = 20;
    c.client.backoff_max_ms = 100;
    c.on_welcome = on_welcome;
    c.user = L;
    return rtws_rt_new(ctx, &c, rtws_time_now_ms(), NULL);
}

static void test_no_loss(void) {
    rtws_router *r;
    int port;
    rtws_ctx *sv, *cl = client_ctx(0, 0);
    proxy px;
    char direct[64], via[64], data[32];
    sub_log sl, pl;
    rtws_rt *sub, *pub;
    long n = 0, cuts = 0, k;
    g_history = 2000; /* the subscriber is never more than this behind */
    sv = server(&r, &port, 0, 0, 0);
    g_history = 0;
    CHECK(sv && cl && px_listen(&px, port) == 0);
    snprintf(direct, sizeof direct, "ws://127.0.0.1:%d/ws", port);
    snprintf(via, sizeof via, "ws://127.0.0.1:%d/ws", px.port);
    memset(&sl, 0, sizeof sl);
    memset(&pl, 0, sizeof pl);
    sl.s.next = 1;
    sub = rt_client(cl, via, &sl);
    pub = rt_client(cl, direct, &pl);
    rtws_rt_subscribe(sub, "numbers", on_numbered, &sl.s);
    for (k = 0; k < 300 && sl.welcomes == 0; k++) loop(sv, cl, &px, 5);
    loop(sv, cl, &px, 50); /* the subscription is in place */
    while (n < 10000) {
        int i;
        for (i = 0; i < 10 && n < 10000; i++) { /* about 3,000 messages a second */
            snprintf(data, sizeof data, "%ld", ++n);
            if (rtws_rt_publish(pub, "numbers", "n", data, strlen(data), NULL) != RTWS_OK) {
                n--;
                break;
            }
        }
        loop(sv, cl, &px, 3);
        if (n / 300 > cuts) { /* cut the subscriber's connection every 300 */
            cuts++;
            px_drop_all(&px);
        }
    }
    for (k = 0; k < 2000 && (sl.s.got < 10000 || rtws_rt_get_unacked(pub)); k++) loop(sv, cl, &px, 5);
    CHECK_EQ(sl.s.got, 10000);
    CHECK_EQ(sl.s.dups, 0);
    CHECK_EQ(sl.s.gaps, 0);
    CHECK_EQ(sl.s.resets, 0);
    CHECK_EQ(sl.s.next, 10001);
    CHECK_EQ(rtws_rt_get_unacked(pub), 0);
    CHECK(sl.welcomes >= 10);
    CHECK_EQ(sl.resumed, sl.welcomes - 1); /* every reconnect resumed the session */
    CHECK_EQ(rtws_rt_get_last_seq(sub, "numbers"), 10000);
    printf("no-loss: 10000 messages, subscriber cut %ld times, reconnected %d times: got %ld, dups %ld, gaps %ld\n",
           cuts, sl.welcomes - 1, sl.s.got, sl.s.dups, sl.s.gaps);
    rtws_rt_free(sub);
    rtws_rt_free(pub);
    loop(sv, cl, &px, 20);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
    px_drop_all(&px);
    close(px.lfd);
}

/* ---- presence ---- */
static rtws_rt *rt_user(rtws_ctx *ctx, const char *url, const char *user, pres_log *L,
                        char tokbuf[512]) {
    rtws_rt_config c;
    rt_user_config(&c, url, user, L, tokbuf);
    c.client.backoff_base_ms = 20;
    return rtws_rt_new(ctx, &c, rtws_time_now_ms(), NULL);
}

static void test_presence(void) {
    rtws_router *r;
    int port, i;
    rtws_ctx *sv = server(&r, &port, 100, 200, 0), *cl = client_ctx(0, 0);
    proxy px;
    char url[64], via[64];
    static char toks[5][512];
    pres_log watch, other;
    rtws_rt *w, *a1, *a2, *b1, *dying;
    memset(&watch, 0, sizeof watch);
    memset(&other, 0, sizeof other);
    CHECK(px_listen(&px, port) == 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    snprintf(via, sizeof via, "ws://127.0.0.1:%d/ws", px.port);
    w = rt_user(cl, url, "watcher", &watch, toks[0]);
    rtws_rt_subscribe(w, "room", NULL, NULL);
    loop(sv, cl, &px, 150);
    a1 = rt_user(cl, url, "ann", &other, toks[1]);
    a2 = rt_user(cl, url, "ann", &other, toks[2]);
    b1 = rt_user(cl, url, "ben", &other, toks[3]);
    dying = rt_user(cl, via, "dee", &other, toks[4]); /* through the proxy */
    rtws_rt_subscribe(a1, "room", NULL, NULL);
    rtws_rt_subscribe(a2, "room", NULL, NULL);
    rtws_rt_subscribe(b1, "room", NULL, NULL);
    rtws_rt_subscribe(dying, "room", NULL, NULL);
    loop(sv, cl, &px, 300);
    CHECK_EQ(pcount(&watch, "room watcher online"), 1); /* from subscribed */
    CHECK_EQ(pcount(&watch, "room ann joined"), 1);     /* once for two connections */
    CHECK_EQ(pcount(&watch, "room ben joined"), 1);
    CHECK_EQ(pcount(&watch, "room dee joined"), 1);
    rtws_rt_set_presence(b1, "room", "away");
    loop(sv, cl, &px, 100);
    CHECK_EQ(pcount(&watch, "room ben away"), 1);
    rtws_rt_free(a1); /* ann still has a2 */
    loop(sv, cl, &px, 200);
    CHECK_EQ(pcount(&watch, "room ann left"), 0);
    rtws_rt_free(a2);
    loop(sv, cl, &px, 200);
    CHECK_EQ(pcount(&watch, "room ann left"), 1);
    /* dee's path goes silent: the server's heartbeat (100 + 200 ms) notices */
    px.mode = PX_FREEZE;
    for (i = 0; i < 100 && pcount(&watch, "room dee left") == 0; i++) loop(sv, cl, &px, 10);
    CHECK_EQ(pcount(&watch, "room dee left"), 1);
    printf("presence: silent user reported left after %d ms\n", i * 10);
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        CHECK_EQ(st.active_connections, 2); /* watcher, ben */
        CHECK_EQ(st.users_online, 2);
    }
    rtws_rt_free(w);
    rtws_rt_free(b1);
    rtws_rt_free(dying);
    px_drop_all(&px);
    loop(sv, cl, NULL, 50);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
    close(px.lfd);
}

/* ---- 5,000 subscribers, one of them stops reading ---- */
static long fan_got;
static void on_fan(rtws_rt *rt, const rtws_rt_message *m, void *u) {
    (void)rt;
    (void)m;
    (void)u;
    fan_got++;
}

static void test_fanout(void) {
    enum { N = 5000, P = 100 };
    rtws_router *r;
    int port, i, k;
    rtws_ctx *sv, *cl = client_ctx(0, 0);
    static rtws_rt *subs[N];
    char url[64], big[2048];
    uint64_t t0, worst = 0;
    g_max_presence = 10;
    sv = server(&r, &port, 0, 0, 0);
    g_max_presence = 0;
    uint64_t tstart = rtws_time_now_ms();
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    for (i = 0; i < N; i++) {
        rtws_rt_config c;
        memset(&c, 0, sizeof c);
        c.client.url = url;
        c.on_message = on_fan;
        subs[i] = rtws_rt_new(cl, &c, rtws_time_now_ms(), NULL);
        rtws_rt_subscribe(subs[i], "wide", NULL, NULL);
    }
    for (k = 0; k < 3000; k++) {
        rtws_router_stats st;
        loop(sv, cl, NULL, 5);
        rtws_router_get_stats(r, &st);
        if (st.subscriptions == N) break;
    }
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        CHECK_EQ(st.subscriptions, N);
        printf("  %d subscribed after %d loops, %llu ms\n", N, k, (unsigned long long)(rtws_time_now_ms() - tstart));
    }
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[sizeof big - 1] = '"';
    for (i = 0; i < P; i++) {
        uint64_t t;
        t0 = rtws_time_now_ms();
        CHECK(rtws_router_publish(r, "wide", "tick", big, sizeof big, NULL, rtws_time_now_ms()) > 0);
        t = rtws_time_now_ms() - t0;
        if (t > worst) worst = t;
        loop(sv, cl, NULL, 3);
    }
    for (k = 0; k < 3000 && fan_got < (long)N * P; k++) loop(sv, cl, NULL, 5);
    CHECK_EQ(fan_got, (long)N * P);
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        CHECK_EQ(st.active_connections, N);
    }
    printf("fan-out: %d publishes of %zu bytes to %d subscribers: %ld deliveries; slowest publish call %llu ms (ASan build)\n",
           P, sizeof big, N, fan_got, (unsigned long long)worst);
    for (i = 0; i < N; i++) rtws_rt_free(subs[i]);
    loop(sv, cl, NULL, 100);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
}

/* one subscriber stops reading: its queue stops at max_send_queue, it is
   closed with 1013, and the others get everything */
static void test_slow_consumer(void) {
    enum { N = 20, P = 300 };
    rtws_router *r;
    int port, i, k, slow;
    size_t worst = 0;
    rtws_ctx *sv = server(&r, &port, 0, 0, 256 * 1024), *cl = client_ctx(0, 0);
    static rtws_rt *subs[N];
    char url[64];
    static char big[16384];
    struct sockaddr_in a;
    fan_got = 0;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    for (i = 0; i < N; i++) {
        rtws_rt_config c;
        memset(&c, 0, sizeof c);
        c.client.url = url;
        c.on_message = on_fan;
        subs[i] = rtws_rt_new(cl, &c, rtws_time_now_ms(), NULL);
        rtws_rt_subscribe(subs[i], "wide", NULL, NULL);
    }
    slow = socket(AF_INET, SOCK_STREAM, 0);
    {
        int small = 4096;
        setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(slow, (struct sockaddr *)&a, sizeof a) == 0);
    {
        static const char req[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        static const char js[] = "{\"type\":\"subscribe\",\"channel\":\"wide\"}";
        uint8_t f[64];
        size_t n = rtws_frame_header_encode(f, 1, RTWS_OP_TEXT, sizeof js - 1, (const uint8_t *)"\0\0\0\0");
        memcpy(f + n, js, sizeof js - 1);
        CHECK(send(slow, req, sizeof req - 1, MSG_NOSIGNAL) > 0);
        loop(sv, cl, NULL, 100);
        CHECK(send(slow, f, n + sizeof js - 1, MSG_NOSIGNAL) > 0);
        loop(sv, cl, NULL, 100);
    }
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        CHECK_EQ(st.subscriptions, N + 1);
    }
    memset(big, 'y', sizeof big);
    big[0] = '"';
    big[sizeof big - 1] = '"';
    for (i = 0; i < P; i++) {
        size_t j;
        CHECK(rtws_router_publish(r, "wide", "blob", big, sizeof big, NULL, rtws_time_now_ms()) > 0);
        loop(sv, cl, NULL, 2);
        /* memory stays bounded: no server connection holds more than its cap */
        for (j = 0; j < sv->nsocks; j++) {
            size_t q = rtws_conn_out_pending(&sv->socks[j]->conn);
            if (q > worst) worst = q;
        }
    }
    for (k = 0; k < 1000 && fan_got < (long)N * P; k++) loop(sv, cl, NULL, 5);
    loop(sv, cl, NULL, 600); /* the slow one's close times out */
    CHECK_EQ(fan_got, (long)N * P);
    CHECK(worst <= 256 * 1024 + sizeof big + 64);
    {
        rtws_router_stats st;
        rtws_router_get_stats(r, &st);
        CHECK_EQ(st.active_connections, N); /* the slow one is gone */
    }
    printf("slow consumer: largest server queue %zu bytes (cap 262144), slow reader closed, %ld deliveries to the rest\n",
           worst, fan_got);
    close(slow);
    for (i = 0; i < N; i++) rtws_rt_free(subs[i]);
    loop(sv, cl, NULL, 50);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
}

/* the context may go first: its connections report 1006 and the router lets
   go of them, so freeing the router afterwards touches nothing freed */
static void test_ctx_freed_first(void) {
    rtws_router *r;
    int port, k;
    rtws_ctx *sv = server(&r, &port, 0, 0, 0), *cl = client_ctx(0, 0);
    char url[64];
    sub_log L;
    rtws_rt *rt;
    rtws_router_stats st;
    memset(&L, 0, sizeof L);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    rt = rt_client(cl, url, &L);
    rtws_rt_subscribe(rt, "c", NULL, NULL);
    for (k = 0; k < 100; k++) {
        loop(sv, cl, NULL, 5);
        rtws_router_get_stats(r, &st);
        if (st.subscriptions == 1) break;
    }
    CHECK_EQ(st.subscriptions, 1);
    rtws_ctx_free(sv);
    rtws_router_get_stats(r, &st);
    CHECK_EQ(st.active_connections, 0);
    CHECK_EQ(st.subscriptions, 0);
    rtws_router_free(r);
    rtws_rt_free(rt);
    rtws_ctx_free(cl);
}

int main(void) {
    uint64_t t = rtws_time_now_ms();
    test_no_loss();
    printf("  (%llu ms)\n", (unsigned long long)(rtws_time_now_ms() - t));
    t = rtws_time_now_ms();
    test_presence();
    printf("  (%llu ms)\n", (unsigned long long)(rtws_time_now_ms() - t));
    t = rtws_time_now_ms();
    test_fanout();
    printf("  (%llu ms)\n", (unsigned long long)(rtws_time_now_ms() - t));
    test_ctx_freed_first();
    t = rtws_time_now_ms();
    test_slow_consumer();
    printf("  (%llu ms)\n", (unsigned long long)(rtws_time_now_ms() - t));
    return T_END();
}
