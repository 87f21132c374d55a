/* Router behaviours found while building the chat demo and fuzz_router that
   contradicted docs/PROTOCOL.md or rtws.h's own comments. Each test states
   the input, what the protocol promises, and checks for the promised
   outcome. All four were fixed on main in 500f4d8; they stay as regression
   tests (the descriptions say what the router used to do). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_router *R;
static uint64_t NOW = 5000;

typedef struct pair {
    rtws_conn cl, sv;
    char got[32][512]; /* texts the client received */
    int n, closed, stalled;
    unsigned code;
} pair;

static void on_sv(rtws_conn *c, const rtws_event *ev, void *u) {
    (void)u;
    rtws_router_handle_event(R, c, ev, NOW);
}
static int on_acc(rtws_conn *c, const rtws_http *req, const char **proto, void *u) {
    (void)proto;
    (void)u;
    return rtws_router_handle_accept(R, c, req, NOW);
}
static void on_cl(rtws_conn *c, const rtws_event *ev, void *u) {
    pair *p = (pair *)u;
    (void)c;
    if (ev->type == RTWS_EV_MESSAGE && p->n < 32) {
        size_t k = ev->message.len < 511 ? ev->message.len : 511;
        memcpy(p->got[p->n], ev->message.data, k);
        p->got[p->n++][k] = '\0';
    } else if (ev->type == RTWS_EV_CLOSE) {
        p->closed = 1;
        p->code = ev->close.code;
    }
}
static int rnd(void *b, size_t n, void *u) {
    static unsigned s = 99;
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) ((uint8_t *)b)[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
    return 0;
}

static void flow(rtws_conn *a, rtws_conn *b) {
    const uint8_t *o;
    size_t len;
    static uint8_t buf[1 << 16];
    while ((o = rtws_conn_out(a, &len)) != NULL && len) {
        if (len > sizeof buf) len = sizeof buf;
        memcpy(buf, o, len);
        rtws_conn_out_done(a, len);
        rtws_conn_recv(b, buf, len, NOW, NULL);
    }
}
static void pump(pair *p) {
    int i;
    for (i = 0; i < 4; i++) {
        flow(&p->cl, &p->sv);
        if (!p->stalled) flow(&p->sv, &p->cl);
    }
}
static void open_pair(pair *p, size_t max_queue) {
    rtws_config cc, sc;
    rtws_client_opts o;
    memset(p, 0, sizeof *p);
    memset(&cc, 0, sizeof cc);
    memset(&sc, 0, sizeof sc);
    cc.role = RTWS_CLIENT;
    cc.on_event = on_cl;
    cc.user = p;
    cc.random = rnd;
    sc.role = RTWS_SERVER;
    sc.on_event = on_sv;
    sc.on_accept = on_acc;
    sc.max_send_queue = max_queue;
    rtws_conn_init(&p->cl, &cc);
    rtws_conn_init(&p->sv, &sc);
    memset(&o, 0, sizeof o);
    o.host = "x";
    o.path = "/ws";
    rtws_conn_start(&p->cl, &o, NOW);
    pump(p);
}
static void say(pair *p, const char *t) {
    rtws_conn_send_text(&p->cl, t, strlen(t));
    pump(p);
}
static int has(const pair *p, const char *s) {
    int i;
    for (i = 0; i < p->n; i++)
        if (strstr(p->got[i], s)) return 1;
    return 0;
}
static void done(pair *p) {
    rtws_conn_recv_eof(&p->sv, NOW);
    rtws_conn_free(&p->cl);
    rtws_conn_free(&p->sv);
}
static void router(int auth_required, size_t max_tokens) {
    rtws_router_config rc;
    memset(&rc, 0, sizeof rc);
    rc.random = rnd;
    rc.auth_required = auth_required;
    rc.max_tokens = max_tokens;
    if (R) rtws_router_free(R);
    R = rtws_router_new(&rc);
}

/* 1. rtws_router_new(): max_tokens below 256 makes it return NULL, because it
      pre-sizes the token array to 256 through rtws__grow_toks(), which refuses
      anything over max_tokens. Expected: a router that answers messages of
      more than max_tokens values with error too_large. */
static void test_small_max_tokens(void) {
    router(0, 64);
    CHECK(R != NULL);
    if (!R) return;
    {
        pair a;
        open_pair(&a, 0);
        char msg[400];
        int i;
        strcpy(msg, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":[0"); /* 7 + 70 values */
        for (i = 1; i < 70; i++) strcat(msg, ",1");
        strcat(msg, "]}");
        say(&a, msg);
        CHECK(has(&a, "\"code\":\"too_large\""));
        say(&a, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":[1,2,3],\"id\":\"p\"}");
        CHECK(has(&a, "\"type\":\"ack\",\"id\":\"p\""));
        done(&a);
    }
}

/* 2. rtws__on_message(), type "presence": any status string is broadcast,
      including the two the server uses for membership. Input: A and B in
      channel c; B sends {"type":"presence","channel":"c","status":"left"}.
      Got: A receives {"type":"presence","channel":"c","user":"<B>","status":"left"}
      although B is still subscribed, so every client drops B from its list
      (and "joined" can be replayed the same way). Expected: error
      bad_request for the reserved statuses, nothing broadcast. */
static void test_presence_reserved_status(void) {
    pair a, b;
    int before;
    router(0, 0);
    open_pair(&a, 0);
    open_pair(&b, 0);
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    pump(&a);
    before = a.n;
    say(&b, "{\"type\":\"presence\",\"channel\":\"c\",\"status\":\"left\"}");
    pump(&a);
    CHECK_EQ(a.n, before);
    CHECK(strstr(b.got[b.n - 1], "\"code\":\"bad_request\"") != NULL);
    done(&a);
    done(&b);
}

/* 3. rtws__rt_send(): a direct reply (subscribed, ack, error, pong,
      authenticated) that does not fit the connection's send queue is dropped
      without a word, while the state change it reports is kept. Input: B's
      queue (max_send_queue 1024) holds ~940 bytes of channel x it has not
      read yet; B subscribes to y. Got: B is a member of y (the status page
      counts it, y's messages reach B) but never receives "subscribed" for y.
      Expected: the same as rtws__fanout() does for a full queue - close with
      1013, so the client reconnects and resumes - or the reply delivered.
      fuzz_router found it on its own: fuzz/corpus/fuzz_router/
      crash-reply-dropped-min (11 error replies fill a stalled reader's 1 KiB
      queue, the "subscribed" for h is dropped, the shorter "reset" for h
      that follows still fits, so the client gets a reset for a channel it
      was never told it joined). */
static void test_reply_dropped_when_queue_full(void) {
    pair a, b;
    rtws_router_stats st;
    char big[1100];
    int i;
    router(0, 0);
    open_pair(&a, 0);
    open_pair(&b, 1024);
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"x\"}");
    b.stalled = 1; /* B stops reading */
    memset(big, 0, sizeof big);
    snprintf(big, sizeof big, "{\"type\":\"publish\",\"channel\":\"x\",\"data\":\"");
    for (i = 0; i < 840; i++) strcat(big, "z");
    strcat(big, "\"}");
    say(&a, big); /* ~940 bytes now wait in B's queue */
    pump(&b);
    CHECK(!b.closed);
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"y\",\"id\":\"s-y\"}");
    rtws_router_get_stats(R, &st);
    b.stalled = 0;
    pump(&b);
    if (st.subscriptions == 2) /* B is in y now: it must have been told, or closed */
        CHECK(has(&b, "\"type\":\"subscribed\",\"channel\":\"y\"") || (b.closed && b.code == 1013));
    CHECK_EQ(st.subscriptions, 2);
    done(&a);
    done(&b);
}

/* 4. rtws_router_run_timers(): the auth deadline closes the connection with
      rtws_conn_close(), which times the close handshake from the
      connection's own clock - the last time it saw bytes, ~10 s ago - so
      close_deadline is already past. Input: auth_required, a client that
      opens at T and sends nothing; at T+10001 the caller runs
      rtws_router_run_timers() and then rtws_conn_run_timers() on its connections (as a
      sans-I/O host does on a timer). Got: the connection ends at once as a
      close timeout: the client gets neither the "unauthorized" error nor
      the 1008 close frame, only 1006. Expected: error unauthorized, then close
      1008 (the host layer hides this because it writes before the next
      timer pass). */
static void test_auth_deadline_close_after_conn_tick(void) {
    pair a;
    router(1, 0);
    open_pair(&a, 0);
    CHECK(has(&a, "\"auth\":\"required\""));
    NOW += 10001;
    rtws_router_run_timers(R, NOW);
    rtws_conn_run_timers(&a.sv, NOW);
    pump(&a);
    CHECK(has(&a, "\"code\":\"unauthorized\""));
    CHECK(a.closed && a.code == 1008);
    done(&a);
}

int main(void) {
    test_small_max_tokens();
    test_presence_reserved_status();
    test_reply_dropped_when_queue_full();
    test_auth_deadline_close_after_conn_tick();
    if (R) rtws_router_free(R);
    return T_END();
}
