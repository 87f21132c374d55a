/* The realtime client's own features end to end over real sockets (issue
   13): messages of types it does not handle reach on_unknown; a first
   subscribe resumes from a persisted seq (rtws_rt_subscribe_since); presence
   statuses set while offline are queued and every channel's status is
   restored after a reconnect. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "proxy.h"
#include "rt_e2e.h"
#include <stdlib.h>

/* ---- on_unknown ---- */
typedef struct unk_log {
    int n, welcomes;
    char type[8][64];
    char json[8][128];
} unk_log;

static void on_unknown(rtws_rt *rt, const char *type, const char *json, size_t len, void *user) {
    unk_log *L = (unk_log *)user;
    (void)rt;
    if (L->n < 8) {
        snprintf(L->type[L->n], 64, "%s", type);
        snprintf(L->json[L->n], 128, "%.*s", (int)len, json);
        L->n++;
    }
}

static void on_welcome_count(rtws_rt *rt, const char *u, const char *s, int resumed, void *user) {
    unk_log *L = (unk_log *)user;
    (void)rt;
    (void)u;
    (void)s;
    (void)resumed;
    L->welcomes++;
}

/* A toolkit server: a subscribe to "poke" is answered with messages of the
   application's own, then handed on to the built-in protocol. */
static int poke_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    static const char custom[] = "{\"type\":\"custom\",\"x\":1}";
    static const char esc[] = "{\"x\":2,\"type\":\"a\\u0062c\"}";
    static const char plain[] = "hello, not json";
    static const char numtype[] = "{\"type\":7}";
    (void)user;
    if (ev->message.opcode == RTWS_OP_TEXT && ev->message.len < 200) {
        char buf[200];
        memcpy(buf, ev->message.data, ev->message.len);
        buf[ev->message.len] = '\0';
        if (strstr(buf, "\"poke\"")) {
            rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, custom, sizeof custom - 1);
            rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, esc, sizeof esc - 1);
            rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, plain, sizeof plain - 1);
            rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, numtype, sizeof numtype - 1);
        }
    }
    return RTWS_ROUTER_PASS;
}

static void test_unknown(void) {
    rtws_router *r;
    int port, k;
    rtws_ctx *sv, *cl = client_ctx(0, 0);
    char url[64];
    unk_log L;
    rtws_rt_config c;
    rtws_rt *rt;
    g_hook = poke_hook;
    sv = server(&r, &port, 0, 0, 0);
    g_hook = NULL;
    CHECK(sv && cl);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    memset(&L, 0, sizeof L);
    memset(&c, 0, sizeof c);
    c.client.url = url;
    c.on_unknown = on_unknown;
    c.on_welcome = on_welcome_count;
    c.user = &L;
    rt = rtws_rt_new(cl, &c, rtws_time_now_ms(), NULL);
    CHECK(rt != NULL);
    rtws_rt_subscribe(rt, "poke", NULL, NULL);
    rtws_rt_subscribe(rt, "other", NULL, NULL);
    for (k = 0; k < 200 && L.n < 4; k++) loop(sv, cl, NULL, 5);
    loop(sv, cl, NULL, 50); /* nothing else arrives: welcome, subscribed are rtws_rt's */
    rtws_rt_unsubscribe(rt, "other");
    loop(sv, cl, NULL, 50); /* "unsubscribed" is rtws_rt's too */
    CHECK_EQ(L.welcomes, 1);
    CHECK_EQ(L.n, 4);
    CHECK(!strcmp(L.type[0], "custom"));
    CHECK(!strcmp(L.json[0], "{\"type\":\"custom\",\"x\":1}"));
    CHECK(!strcmp(L.type[1], "abc")); /* unescaped */
    CHECK(!strcmp(L.json[1], "{\"x\":2,\"type\":\"a\\u0062c\"}"));
    CHECK(!strcmp(L.type[2], ""));
    CHECK(!strcmp(L.json[2], "hello, not json"));
    CHECK(!strcmp(L.type[3], ""));
    CHECK(!strcmp(L.json[3], "{\"type\":7}"));
    printf("on_unknown: %d messages seen: %s | %s | %s | %s\n", L.n, L.json[0], L.json[1],
           L.json[2], L.json[3]);
    rtws_rt_free(rt);
    loop(sv, cl, NULL, 20);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
}

/* ---- since on the first subscribe ---- */
typedef struct seq_log {
    long got[32];
    int n, resets, dups;
    uint64_t reset_seq, last;
} seq_log;

static void on_seq(rtws_rt *rt, const rtws_rt_message *m, void *user) {
    seq_log *L = (seq_log *)user;
    long v;
    (void)rt;
    if (m->reset) {
        L->resets++;
        L->reset_seq = m->seq;
        L->last = m->seq;
        return;
    }
    v = strtol(m->data, NULL, 10);
    if (m->seq <= L->last) L->dups++;
    L->last = m->seq;
    if (L->n < 32) L->got[L->n++] = v;
}

static void test_since(void) {
    rtws_router *r;
    int port, k, i;
    rtws_ctx *sv, *cl = client_ctx(0, 0);
    char url[64], data[16];
    seq_log A, B, C;
    rtws_rt_config c;
    rtws_rt *rt;
    g_history = 5;
    sv = server(&r, &port, 0, 0, 0);
    g_history = 0;
    CHECK(sv && cl);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    for (i = 1; i <= 10; i++) { /* before any client: 6..10 stay in the history */
        snprintf(data, sizeof data, "%d", i);
        CHECK_EQ(rtws_router_publish(r, "a", "n", data, strlen(data), NULL, rtws_time_now_ms()),
                 (uint64_t)i);
        CHECK_EQ(rtws_router_publish(r, "b", "n", data, strlen(data), NULL, rtws_time_now_ms()),
                 (uint64_t)i);
        CHECK_EQ(rtws_router_publish(r, "c", "n", data, strlen(data), NULL, rtws_time_now_ms()),
                 (uint64_t)i);
    }
    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    memset(&C, 0, sizeof C);
    A.last = 5;
    B.last = 2;
    C.last = 10;
    memset(&c, 0, sizeof c);
    c.client.url = url;
    rt = rtws_rt_new(cl, &c, rtws_time_now_ms(), NULL);
    CHECK(rt != NULL);
    /* a fresh client that persisted its seqs: 5 of "a", 2 of "b", 10 of "c" */
    CHECK_EQ(rtws_rt_subscribe_since(rt, "a", 5, on_seq, &A), RTWS_OK);
    CHECK_EQ(rtws_rt_subscribe_since(rt, "b", 2, on_seq, &B), RTWS_OK);
    CHECK_EQ(rtws_rt_subscribe_since(rt, "c", 10, on_seq, &C), RTWS_OK);
    CHECK_EQ(rtws_rt_subscribe_since(rt, "d", (uint64_t)INT64_MAX + 1, on_seq, &C), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_rt_get_last_seq(rt, "a"), 5);
    for (k = 0; k < 200 && (A.n < 5 || B.resets < 1); k++) loop(sv, cl, NULL, 5);
    loop(sv, cl, NULL, 50);
    CHECK_EQ(A.n, 5);
    for (i = 0; i < A.n; i++) CHECK_EQ(A.got[i], 6 + i); /* 6..10, once each, in order */
    CHECK_EQ(A.resets, 0);
    CHECK_EQ(A.dups, 0);
    CHECK_EQ(rtws_rt_get_last_seq(rt, "a"), 10);
    CHECK_EQ(B.n, 0); /* 3 is no longer in the history (6..10) */
    CHECK_EQ(B.resets, 1);
    CHECK_EQ(B.reset_seq, 10);
    CHECK_EQ(rtws_rt_get_last_seq(rt, "b"), 10);
    CHECK_EQ(C.n + C.resets, 0); /* up to date */
    /* live from here on, tracked as usual */
    rtws_router_publish(r, "a", "n", "11", 2, NULL, rtws_time_now_ms());
    rtws_router_publish(r, "b", "n", "11", 2, NULL, rtws_time_now_ms());
    rtws_router_publish(r, "c", "n", "11", 2, NULL, rtws_time_now_ms());
    for (k = 0; k < 200 && (A.n < 6 || B.n < 1 || C.n < 1); k++) loop(sv, cl, NULL, 5);
    CHECK_EQ(A.n, 6);
    CHECK_EQ(A.got[5], 11);
    CHECK_EQ(B.n, 1);
    CHECK_EQ(B.got[0], 11);
    CHECK_EQ(C.n, 1);
    CHECK_EQ(C.got[0], 11);
    /* asking again on a live subscription replays from there, once */
    CHECK_EQ(rtws_rt_subscribe_since(rt, "a", 9, on_seq, &A), RTWS_OK);
    A.last = 9;
    for (k = 0; k < 200 && A.n < 8; k++) loop(sv, cl, NULL, 5);
    loop(sv, cl, NULL, 50);
    CHECK_EQ(A.n, 8);
    CHECK_EQ(A.got[6], 10);
    CHECK_EQ(A.got[7], 11);
    CHECK_EQ(A.dups, 0);
    printf("since: a from 5 got %d messages (6..11, then 10..11 asked again), b from 2 got %d reset to %llu\n",
           A.n, B.resets, (unsigned long long)B.reset_seq);
    rtws_rt_free(rt);
    loop(sv, cl, NULL, 20);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
}

/* ---- presence: queued offline, restored after reconnects ---- */
static rtws_rt *rt_user(rtws_ctx *ctx, const char *url, const char *user, pres_log *L,
                        char tokbuf[512]) {
    rtws_rt_config c;
    rt_user_config(&c, url, user, L, tokbuf);
    c.on_error = on_error;
    c.client.backoff_base_ms = 300; /* room to act while offline */
    c.client.backoff_max_ms = 300;
    return rtws_rt_new(ctx, &c, rtws_time_now_ms(), NULL);
}

static void test_presence(void) {
    rtws_router *r;
    int port, k;
    rtws_ctx *sv, *cl = client_ctx(0, 0);
    proxy px;
    char url[64], via[64];
    static char toks[3][512];
    pres_log watch, ann, cat;
    rtws_rt *w, *a, *ct;
    sv = server(&r, &port, 0, 0, 0);
    CHECK(sv && cl && px_listen(&px, port) == 0);
    memset(&watch, 0, sizeof watch);
    memset(&ann, 0, sizeof ann);
    memset(&cat, 0, sizeof cat);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    snprintf(via, sizeof via, "ws://127.0.0.1:%d/ws", px.port);
    w = rt_user(cl, url, "watcher", &watch, toks[0]);
    rtws_rt_subscribe(w, "room", NULL, NULL);
    loop(sv, cl, &px, 100);
    a = rt_user(cl, via, "ann", &ann, toks[1]); /* through the proxy */
    ct = rt_user(cl, url, "cat", &cat, toks[2]);
    rtws_rt_subscribe(a, "room", NULL, NULL);
    rtws_rt_subscribe(a, "hall", NULL, NULL);
    rtws_rt_subscribe(ct, "room", NULL, NULL);
    /* set before the first connection: queued, sent after the subscribe */
    CHECK_EQ(rtws_rt_set_presence(ct, "room", "busy"), RTWS_OK);
    CHECK_EQ(rtws_rt_set_presence(ct, "room", "joined"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_rt_set_presence(ct, "room", ""), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_rt_set_presence(ct, "room", "123456789012345678901234567890123"), RTWS_ERR_INVALID);
    for (k = 0; k < 200 && pcount(&watch, "room cat busy") == 0; k++) loop(sv, cl, &px, 5);
    CHECK_EQ(pcount(&watch, "room cat busy"), 1);
    for (k = 0; k < 200 && pcount(&watch, "room ann joined") == 0; k++) loop(sv, cl, &px, 5);
    loop(sv, cl, &px, 50);
    CHECK_EQ(rtws_rt_set_presence(a, "room", "away"), RTWS_OK);
    CHECK_EQ(rtws_rt_set_presence(a, "hall", "lunch"), RTWS_OK); /* nobody watches hall */
    for (k = 0; k < 200 && pcount(&watch, "room ann away") == 0; k++) loop(sv, cl, &px, 5);
    CHECK_EQ(pcount(&watch, "room ann away"), 1);

    /* cut 1: nothing set while offline; the status comes back by itself */
    px_drop_all(&px);
    for (k = 0; k < 200 && pcount(&watch, "room ann left") < 1; k++) loop(sv, cl, &px, 5);
    CHECK_EQ(pcount(&watch, "room ann left"), 1);
    for (k = 0; k < 400 && pcount(&watch, "room ann away") < 2; k++) loop(sv, cl, &px, 5);
    CHECK_EQ(pcount(&watch, "room ann joined"), 2);
    CHECK_EQ(pcount(&watch, "room ann away"), 2); /* restored after the reconnect */

    /* cut 2: two statuses set while offline, the latest wins */
    px_drop_all(&px);
    for (k = 0; k < 200 && rtws_client_get_state(rtws_rt_get_client(a)) == RTWS_CLIENT_OPEN; k++)
        loop(sv, cl, NULL, 5); /* the proxy accepts nothing meanwhile */
    CHECK(rtws_client_get_state(rtws_rt_get_client(a)) != RTWS_CLIENT_OPEN);
    CHECK_EQ(rtws_rt_set_presence(a, "room", "typing"), RTWS_OK);
    CHECK_EQ(rtws_rt_set_presence(a, "room", "back"), RTWS_OK);
    for (k = 0; k < 400 && pcount(&watch, "room ann back") < 1; k++) loop(sv, cl, &px, 5);
    loop(sv, cl, &px, 50);
    CHECK_EQ(pcount(&watch, "room ann joined"), 3);
    CHECK_EQ(pcount(&watch, "room ann back"), 1);
    CHECK_EQ(pcount(&watch, "room ann typing"), 0);
    CHECK_EQ(pcount(&watch, "room ann away"), 2);
    CHECK_EQ(pcount(&watch, "room cat busy"), 1); /* cat's connection never went down */
    /* a fresh watcher of hall sees ann's restored status there */
    {
        pres_log h;
        char tok[512];
        rtws_rt *hw;
        memset(&h, 0, sizeof h);
        hw = rt_user(cl, url, "hallwatch", &h, tok);
        rtws_rt_subscribe(hw, "hall", NULL, NULL);
        for (k = 0; k < 200 && pcount(&h, "hall ann lunch") == 0; k++) loop(sv, cl, &px, 5);
        CHECK_EQ(pcount(&h, "hall ann lunch"), 1); /* from subscribed's presence list */
        rtws_rt_free(hw);
    }
    CHECK_EQ(ann.errors + cat.errors + watch.errors, 0);
    printf("presence: ann's status restored after reconnect 1, offline-set \"back\" sent after reconnect 2 (%d presence lines seen)\n",
           watch.n);
    rtws_rt_free(w);
    rtws_rt_free(a);
    rtws_rt_free(ct);
    px_drop_all(&px);
    loop(sv, cl, NULL, 50);
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
    close(px.lfd);
}

int main(void) {
    test_unknown();
    test_since();
    test_presence();
    return T_END();
}
