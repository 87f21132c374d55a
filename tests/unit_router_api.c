/* Layer 7 router as a toolkit, sans-I/O: the server-side API (connection ids,
   lookup, iteration, subscribe, raw publish, send to a user / connection /
   channel, identities, presence, history, replay), the application's own
   protocol (on_receive, builtin_protocol_off), several endpoints, and the
   status page's extensions. In-memory peers and a fake clock. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#include "router_peer.h"

/* the status page as text (a plain GET on its own server connection) */
static void get_status(const char *path, char *out, size_t cap) {
    rtws_conn sv;
    rtws_config sc;
    size_t n = 0, len;
    const uint8_t *o;
    char req[128];
    memset(&sc, 0, sizeof sc);
    sc.role = RTWS_SERVER;
    sc.on_event = sv_event;
    sc.on_accept = sv_accept;
    sc.on_http = sv_http;
    rtws_conn_init(&sv, &sc);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    rtws_conn_recv(&sv, req, strlen(req), NOW, NULL);
    while ((o = rtws_conn_out(&sv, &len)) != NULL && n + len < cap) {
        memcpy(out + n, o, len);
        n += len;
        rtws_conn_out_done(&sv, len);
    }
    out[n] = 0;
    rtws_conn_free(&sv);
}

/* ---- iteration ---- */

typedef struct seen {
    rtws_conn *c[16];
    int n, stop_at;
} seen;
static int collect(rtws_router *r, rtws_conn *c, void *user) {
    seen *s = (seen *)user;
    (void)r;
    if (s->n < 16) s->c[s->n] = c;
    s->n++;
    return s->stop_at && s->n >= s->stop_at;
}
static int has(const seen *s, const rtws_conn *c) {
    int i;
    for (i = 0; i < s->n && i < 16; i++)
        if (s->c[i] == c) return 1;
    return 0;
}

static void test_ids_find_foreach(void) {
    rtws_router_config rc = base_cfg();
    peer a, b, c;
    seen s;
    uint64_t ia, ib, ic;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    ia = rtws_router_get_conn_id(R, &a.sv);
    ib = rtws_router_get_conn_id(R, &b.sv);
    ic = rtws_router_get_conn_id(R, &c.sv);
    CHECK(ia && ib && ic && ia != ib && ib != ic && ia != ic);
    CHECK(rtws_router_get_conn_id(R, &a.cl) == 0); /* the client side is not the router's */
    CHECK(rtws_router_find_conn(R, ia) == &a.sv);
    CHECK(rtws_router_find_conn(R, ic) == &c.sv);
    CHECK(rtws_router_find_conn(R, 999999) == NULL);
    CHECK(rtws_router_find_conn(R, 0) == NULL);
    CHECK_EQ(rtws_router_get_conn_endpoint(R, &b.sv), 0);
    CHECK_EQ(rtws_router_get_conn_endpoint(R, &b.cl), -1);
    /* identities: a and b are "alice", c is "carol" */
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "alice", NULL, 0), RTWS_OK);
    CHECK_EQ(rtws_router_set_identity(R, &b.sv, "alice", "{\"role\":\"admin\"}", 16), RTWS_OK);
    CHECK_EQ(rtws_router_set_identity(R, &c.sv, "carol", NULL, 0), RTWS_OK);
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, NULL, NULL, collect, &s), 3);
    CHECK(s.n == 3 && has(&s, &a.sv) && has(&s, &b.sv) && has(&s, &c.sv));
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, "alice", NULL, collect, &s), 2);
    CHECK(has(&s, &a.sv) && has(&s, &b.sv) && !has(&s, &c.sv));
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, "nobody", NULL, collect, &s), 0);
    CHECK_EQ(rtws_router_subscribe(R, &b.sv, "room"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &c.sv, "room"), RTWS_OK);
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, NULL, "room", collect, &s), 2);
    CHECK(has(&s, &b.sv) && has(&s, &c.sv) && !has(&s, &a.sv));
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, "alice", "room", collect, &s), 1);
    CHECK(s.n == 1 && s.c[0] == &b.sv);
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, NULL, "nowhere", collect, &s), 0);
    memset(&s, 0, sizeof s);
    s.stop_at = 1; /* fn returning nonzero stops */
    CHECK_EQ(rtws_router_foreach_conn(R, NULL, NULL, collect, &s), 1);
    /* a closed connection is gone from every lookup, and its id is not reused */
    peer_close(&a);
    CHECK(rtws_router_find_conn(R, ia) == NULL);
    memset(&s, 0, sizeof s);
    CHECK_EQ(rtws_router_foreach_conn(R, "alice", NULL, collect, &s), 1);
    peer_open(&a, "/ws");
    CHECK(rtws_router_get_conn_id(R, &a.sv) > ic);
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
}

/* ---- subscribe, publish_raw, history, replay ---- */

typedef struct hist {
    uint64_t seq[8];
    char txt[8][64];
    int op[8], n;
} hist;
static void hist_fn(rtws_router *r, const char *channel, uint64_t seq, int opcode,
                    const uint8_t *p, size_t len, void *user) {
    hist *h = (hist *)user;
    (void)r;
    (void)channel;
    if (h->n < 8) {
        h->seq[h->n] = seq;
        h->op[h->n] = opcode;
        memcpy(h->txt[h->n], p, len < 63 ? len : 63);
        h->txt[h->n][len < 63 ? len : 63] = 0;
    }
    h->n++;
}

static void test_subscribe_publish_history(void) {
    rtws_router_config rc = base_cfg();
    peer a, b;
    hist h;
    char frame[64];
    int i, before;
    uint64_t seq;
    rc.max_channels_total = 4;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "bad name"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_subscribe(R, &a.cl, "pov-1"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "pov-1"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "pov-1"), RTWS_OK); /* twice: still one */
    CHECK(rtws_router_is_subscribed(R, &a.sv, "pov-1"));
    CHECK(!rtws_router_is_subscribed(R, &b.sv, "pov-1"));
    CHECK_EQ(rtws_router_get_presence(R, "pov-1", NULL, NULL), 1);
    /* max_channels (3) per connection */
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "pov-2"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "pov-3"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "pov-4"), RTWS_ERR_LIMIT);
    CHECK_EQ(rtws_router_get_seq(R, "pov-4"), 0);
    /* max_channels_total (4): b may create one more, not two */
    CHECK_EQ(rtws_router_subscribe(R, &b.sv, "pov-5"), RTWS_OK);
    CHECK_EQ(rtws_router_subscribe(R, &b.sv, "pov-6"), RTWS_ERR_LIMIT);
    CHECK_EQ(rtws_router_unsubscribe(R, &b.sv, "pov-5"), RTWS_OK);
    CHECK_EQ(rtws_router_unsubscribe(R, &b.sv, "pov-5"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_unsubscribe(R, &a.sv, "pov-3"), RTWS_OK);
    CHECK(!rtws_router_is_subscribed(R, &a.sv, "pov-3"));
    CHECK_EQ(rtws_router_subscribe(R, &b.sv, "pov-1"), RTWS_OK);
    pump(&a); /* b's "joined" */
    before = a.n;
    /* the application's own envelope, with the seq the router gives it */
    for (i = 0; i < 6; i++) {
        seq = rtws_router_get_seq(R, "pov-1") + 1;
        snprintf(frame, sizeof frame, "{\"type\":\"activity\",\"n\":%d,\"seq\":%llu}", i,
                 (unsigned long long)seq);
        CHECK_EQ(rtws_router_publish_raw(R, "pov-1", RTWS_OP_TEXT, frame, strlen(frame), NOW), seq);
    }
    pump(&a);
    pump(&b);
    CHECK_EQ(a.n - before, 6);
    CHECK(strcmp(a.msgs[before], "{\"type\":\"activity\",\"n\":0,\"seq\":1}") == 0); /* exact bytes */
    CHECK(strcmp(LAST(&b), "{\"type\":\"activity\",\"n\":5,\"seq\":6}") == 0);
    CHECK_EQ(rtws_router_get_seq(R, "pov-1"), 6);
    CHECK_EQ(rtws_router_publish_raw(R, "pov-1", RTWS_OP_TEXT, "\xff", 1, NOW), 0); /* bad UTF-8 */
    CHECK_EQ(rtws_router_publish_raw(R, "pov-1", 9, "x", 1, NOW), 0);               /* bad opcode */
    CHECK_EQ(rtws_router_publish_raw(R, "bad name", RTWS_OP_TEXT, "x", 1, NOW), 0);
    CHECK_EQ(rtws_router_publish_raw(R, "pov-1", RTWS_OP_BINARY, "\x01\x02", 2, NOW), 7);
    CHECK_EQ(rtws_router_get_seq(R, "pov-1"), 7);
    pump(&a);
    CHECK(a.bin[a.n - 1] && a.msgs[a.n - 1][0] == 1);
    /* history: 4 kept (seq 4..7) */
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 3, 0, hist_fn, &h), RTWS_OK);
    CHECK(h.n == 4 && h.seq[0] == 4 && h.seq[3] == 7 && h.op[3] == RTWS_OP_BINARY &&
          h.op[0] == RTWS_OP_TEXT && strcmp(h.txt[0], "{\"type\":\"activity\",\"n\":3,\"seq\":4}") == 0);
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 0 + 3, 2, hist_fn, &h), RTWS_OK); /* last 2 */
    CHECK(h.n == 2 && h.seq[0] == 6 && h.seq[1] == 7);
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 5, 0, hist_fn, &h), RTWS_OK);
    CHECK(h.n == 2 && h.seq[0] == 6);
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 7, 0, hist_fn, &h), RTWS_OK);
    CHECK_EQ(h.n, 0);
    memset(&h, 0, sizeof h); /* the last 3 (or 4) from 0: older ones gone is no gap */
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 0, 3, hist_fn, &h), RTWS_OK);
    CHECK(h.n == 3 && h.seq[0] == 5 && h.seq[2] == 7);
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 0, 4, hist_fn, &h), RTWS_OK);
    CHECK(h.n == 4 && h.seq[0] == 4);
    memset(&h, 0, sizeof h); /* ... but the last 5 would need seq 3: gone */
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 0, 5, hist_fn, &h), RTWS_ERR_RANGE);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 1, 3, hist_fn, &h), RTWS_OK); /* 5..7 */
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 6, 3, hist_fn, &h), RTWS_OK); /* 7 */
    CHECK(h.n == 4 && h.seq[0] == 5 && h.seq[3] == 7);
    memset(&h, 0, sizeof h);
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 2, 0, hist_fn, &h), RTWS_ERR_RANGE); /* 3 gone */
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 8, 3, hist_fn, &h), RTWS_ERR_RANGE); /* ahead */
    CHECK_EQ(rtws_router_get_history(R, "pov-1", 8, 0, hist_fn, &h), RTWS_ERR_RANGE); /* ahead */
    CHECK_EQ(rtws_router_get_history(R, "never", 0, 0, hist_fn, &h), RTWS_OK);
    CHECK_EQ(rtws_router_get_history(R, "never", 5, 0, hist_fn, &h), RTWS_ERR_RANGE);
    CHECK_EQ(h.n, 0);
    /* replay: the kept frames again, to one connection */
    pump(&b);
    before = b.n;
    CHECK_EQ(rtws_router_replay(R, &b.sv, "pov-1", 5), RTWS_OK);
    CHECK_EQ(rtws_router_replay(R, &b.sv, "pov-1", 1), RTWS_ERR_RANGE);
    pump(&b);
    CHECK_EQ(b.n - before, 2);
    CHECK(strcmp(b.msgs[before], "{\"type\":\"activity\",\"n\":5,\"seq\":6}") == 0);
    /* the built-in "subscribe" with since replays raw publishes too */
    before = b.n;
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"pov-1\",\"since\":5}");
    CHECK_EQ(b.n - before, 3);
    CHECK(strstr(b.msgs[before], "\"type\":\"subscribed\"") && strstr(b.msgs[before], "\"seq\":7"));
    peer_close(&a);
    peer_close(&b);
}

/* ---- sending ---- */

static void test_send(void) {
    rtws_router_config rc = base_cfg();
    peer a, b, c;
    int na, nb, nc;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    rtws_router_set_identity(R, &a.sv, "u1", NULL, 0);
    rtws_router_set_identity(R, &b.sv, "u1", NULL, 0);
    rtws_router_set_identity(R, &c.sv, "u2", NULL, 0);
    na = a.n, nb = b.n, nc = c.n;
    CHECK_EQ(rtws_router_send_to_user(R, "u1", RTWS_OP_TEXT, "{\"type\":\"CREDIT_UPDATE\"}", 24), 2);
    CHECK_EQ(rtws_router_send_to_user(R, "nobody", RTWS_OP_TEXT, "x", 1), 0);
    CHECK_EQ(rtws_router_send_to_user(R, "u1", RTWS_OP_TEXT, "\xc3", 1), 0); /* bad UTF-8 */
    pump(&a);
    pump(&b);
    pump(&c);
    CHECK(a.n == na + 1 && b.n == nb + 1 && c.n == nc);
    CHECK(strcmp(LAST(&a), "{\"type\":\"CREDIT_UPDATE\"}") == 0);
    CHECK_EQ(rtws_router_send_to_conn(R, &c.sv, RTWS_OP_BINARY, "\x00\x01", 2), RTWS_OK);
    CHECK_EQ(rtws_router_send_to_conn(R, &c.cl, RTWS_OP_TEXT, "x", 1), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_send_to_conn(R, &c.sv, 8, "x", 1), RTWS_ERR_INVALID);
    pump(&c);
    CHECK(c.n == nc + 1 && c.bin[c.n - 1]);
    rtws_router_subscribe(R, &a.sv, "ch");
    rtws_router_subscribe(R, &c.sv, "ch");
    pump(&a); /* c's "joined" */
    na = a.n, nc = c.n;
    CHECK_EQ(rtws_router_send_to_channel(R, "ch", RTWS_OP_TEXT, "typing", 6, &a.sv), 1);
    CHECK_EQ(rtws_router_send_to_channel(R, "ch", RTWS_OP_TEXT, "all", 3, NULL), 2);
    CHECK_EQ(rtws_router_send_to_channel(R, "none", RTWS_OP_TEXT, "x", 1, NULL), 0);
    pump(&a);
    pump(&c);
    CHECK(a.n == na + 1 && strcmp(LAST(&a), "all") == 0);
    CHECK(c.n == nc + 2 && strcmp(c.msgs[c.n - 2], "typing") == 0);
    CHECK_EQ(rtws_router_get_seq(R, "ch"), 0); /* no seq, no history */
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
}

/* ---- identity ---- */

static void test_identity(void) {
    rtws_router_config rc = base_cfg();
    peer a, b, c;
    size_t cl;
    const char *claims;
    rtws_router_stats st;
    rc.auth_required = 1;
    rc.auth_timeout_ms = 500;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    CHECK(strncmp(rtws_router_get_user(R, &a.sv), "anon-", 5) == 0);
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "", NULL, 0), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "a\nb", NULL, 0), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_set_identity(R, &a.sv,
                                      "0123456789012345678901234567890123456789012345678901234567890123",
                                      NULL, 0),
             RTWS_ERR_INVALID); /* 64 bytes */
    CHECK_EQ(rtws_router_set_identity(R, &a.cl, "x", NULL, 0), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "dr-who", "{\"sub\":\"dr-who\",\"role\":\"doc\"}", 29),
             RTWS_OK);
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "dr-who") == 0);
    claims = rtws_router_get_claims(R, &a.sv, &cl);
    CHECK(claims && cl == 29 && strcmp(claims, "{\"sub\":\"dr-who\",\"role\":\"doc\"}") == 0);
    CHECK(rtws_router_get_claims(R, &b.sv, &cl) == NULL && cl == 0);
    CHECK(strlen(rtws_router_get_session(R, &a.sv)) == 22);
    CHECK_EQ(rtws_router_set_identity(R, &b.sv, "dr-who", NULL, 0), RTWS_OK);
    /* max_conns_per_user 2: the third is refused and stays anonymous */
    CHECK_EQ(rtws_router_set_identity(R, &c.sv, "dr-who", NULL, 0), RTWS_ERR_LIMIT);
    CHECK(strncmp(rtws_router_get_user(R, &c.sv), "anon-", 5) == 0);
    rtws_router_get_stats(R, &st);
    CHECK_EQ(st.users_online, 2); /* dr-who and c's anonymous user */
    /* the same user again: claims replaced, and the budget charged for them */
    rtws_router_get_stats(R, &st);
    {
        size_t before = st.memory_router;
        CHECK_EQ(rtws_router_set_identity(R, &a.sv, "dr-who", "x", 1), RTWS_OK);
        rtws_router_get_stats(R, &st);
        CHECK_EQ(st.memory_router, before - 30 + 2);
    }
    claims = rtws_router_get_claims(R, &a.sv, &cl);
    CHECK(claims && cl == 1 && claims[0] == 'x');
    /* after subscribing, the identity stays */
    CHECK_EQ(rtws_router_subscribe(R, &a.sv, "ward"), RTWS_OK);
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "other", NULL, 0), RTWS_ERR_INVALID);
    /* authenticated by set_identity: the auth timeout spares a and b, closes c */
    NOW += 600;
    rtws_router_run_timers(R, NOW);
    pump(&a);
    pump(&b);
    pump(&c);
    CHECK(!a.closed && !b.closed);
    CHECK(c.closed && c.close_code == RTWS_CLOSE_POLICY);
    peer_close(&a);
    peer_close(&b);
    rtws_conn_free(&c.cl);
    rtws_conn_free(&c.sv);
}

/* ---- presence ---- */

static char PRES[16][80];
static int NPRES;
static void on_presence(rtws_router *r, const char *channel, const char *user_id,
                        const char *status, void *user) {
    (void)r;
    (void)user;
    if (NPRES < 16) snprintf(PRES[NPRES], sizeof PRES[0], "%s %s %s", channel, user_id, status);
    NPRES++;
}
typedef struct plist {
    char s[256];
    size_t conns;
} plist;
static void pres_fn(const char *user_id, const char *status, size_t conns, void *user) {
    plist *p = (plist *)user;
    size_t n = strlen(p->s);
    snprintf(p->s + n, sizeof p->s - n, "%s=%s;", user_id, status);
    p->conns += conns;
}

static void test_presence(void) {
    rtws_router_config rc = base_cfg();
    peer a, b, c;
    plist pl;
    rc.on_presence = on_presence;
    router_reset(&rc);
    NPRES = 0;
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    peer_open(&c, "/ws");
    rtws_router_set_identity(R, &a.sv, "ann", NULL, 0);
    rtws_router_set_identity(R, &b.sv, "ann", NULL, 0);
    rtws_router_set_identity(R, &c.sv, "bob", NULL, 0);
    rtws_router_subscribe(R, &a.sv, "room");
    rtws_router_subscribe(R, &b.sv, "room");
    rtws_router_subscribe(R, &c.sv, "room");
    CHECK_EQ(NPRES, 2);
    CHECK(strcmp(PRES[0], "room ann joined") == 0 && strcmp(PRES[1], "room bob joined") == 0);
    memset(&pl, 0, sizeof pl);
    CHECK_EQ(rtws_router_get_presence(R, "room", pres_fn, &pl), 2);
    CHECK(strstr(pl.s, "ann=online;") && strstr(pl.s, "bob=online;") && pl.conns == 3);
    CHECK_EQ(rtws_router_set_presence(R, &c.sv, "room", "away"), RTWS_OK);
    CHECK_EQ(rtws_router_set_presence(R, &c.sv, "room", "left"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_set_presence(R, &c.sv, "hall", "away"), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_set_presence(R, &c.sv, "room", ""), RTWS_ERR_INVALID);
    CHECK(strcmp(PRES[2], "room bob away") == 0);
    pump(&a); /* built-in subscribers get the presence message */
    CHECK(strstr(LAST(&a), "\"type\":\"presence\"") && strstr(LAST(&a), "\"status\":\"away\""));
    memset(&pl, 0, sizeof pl);
    rtws_router_get_presence(R, "room", pres_fn, &pl);
    CHECK(strstr(pl.s, "bob=away;") != NULL);
    rtws_router_unsubscribe(R, &a.sv, "room"); /* ann still there through b */
    CHECK_EQ(NPRES, 3);
    peer_close(&b);
    CHECK_EQ(NPRES, 4);
    CHECK(strcmp(PRES[3], "room ann left") == 0);
    CHECK_EQ(rtws_router_get_presence(R, "room", NULL, NULL), 1);
    CHECK_EQ(rtws_router_get_presence(R, "nowhere", pres_fn, &pl), 0);
    peer_close(&a);
    {
        int n = NPRES; /* freeing the router with c still in "room" calls no hook */
        rtws_router_free(R);
        R = NULL;
        CHECK_EQ(NPRES, n);
    }
    peer_close(&c);
}

/* ---- the application's own protocol ---- */

static int HOOK_CALLS, APP_MSGS;
/* PoV-style: {"type":"subscribe","povId":"p"} and {"type":"authenticate","token":"u"} */
static int pov_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    rtws_json d;
    rtws_json_tok t[32];
    char v[64], reply[160];
    size_t n = 0;
    int tv, f;
    (void)user;
    HOOK_CALLS++;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 32, 0) != RTWS_OK ||
        (tv = rtws_json_get(&d, 0, "type")) < 0)
        return RTWS_ROUTER_PASS;
    if (rtws_json_eq(&d, tv, "subscribe") && (f = rtws_json_get(&d, 0, "povId")) >= 0 &&
        rtws_json_unescape(&d, f, v, sizeof v, &n) == RTWS_OK) {
        rtws_err e = rtws_router_subscribe(r, c, v);
        snprintf(reply, sizeof reply, "{\"type\":\"%s\",\"povId\":\"%s\"}",
                 e == RTWS_OK ? "subscribed" : "error", v);
        rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, reply, strlen(reply));
        return RTWS_ROUTER_HANDLED;
    }
    if (rtws_json_eq(&d, tv, "authenticate") && (f = rtws_json_get(&d, 0, "token")) >= 0 &&
        rtws_json_unescape(&d, f, v, sizeof v, &n) == RTWS_OK) {
        rtws_router_set_identity(r, c, v, NULL, 0);
        rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, "{\"type\":\"authenticated\"}", 24);
        return RTWS_ROUTER_HANDLED;
    }
    if (rtws_json_eq(&d, tv, "close-me")) {
        rtws_conn_close(c, 4000, "bye");
        return RTWS_ROUTER_PASS; /* passed, but closed: the router leaves it */
    }
    return RTWS_ROUTER_PASS;
}
static void app_msg(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)c;
    (void)ev;
    (void)user;
    APP_MSGS++;
}

static void test_own_protocol(void) {
    rtws_router_config rc = base_cfg();
    peer a, b;
    rc.builtin_protocol_off = 1;
    rc.on_receive = pov_hook;
    rc.auth_required = 1;
    rc.auth_timeout_ms = 500;
    rc.rate_per_s = 1;
    rc.rate_burst = 3;
    rc.rate_abuse = 2;
    router_reset(&rc);
    HOOK_CALLS = APP_MSGS = 0;
    peer_open(&a, "/ws");
    CHECK_EQ(rtws_conn_get_state(&a.cl), RTWS_STATE_OPEN);
    CHECK_EQ(a.n, 0); /* no welcome */
    say(&a, "{\"type\":\"authenticate\",\"token\":\"u-7\"}");
    CHECK(strcmp(LAST(&a), "{\"type\":\"authenticated\"}") == 0);
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "u-7") == 0);
    say(&a, "{\"type\":\"subscribe\",\"povId\":\"pov-9\"}");
    CHECK(strcmp(LAST(&a), "{\"type\":\"subscribed\",\"povId\":\"pov-9\"}") == 0);
    CHECK(rtws_router_is_subscribed(R, &a.sv, "pov-9"));
    /* not handled, with no on_message: nothing comes back */
    say(&a, "{\"type\":\"ping\"}");
    CHECK_EQ(a.n, 2);
    CHECK_EQ(HOOK_CALLS, 3);
    /* rate limit (burst 3): dropped silently, closed 1008 after rate_abuse */
    say(&a, "{\"type\":\"ping\"}");
    say(&a, "{\"type\":\"ping\"}");
    CHECK_EQ(HOOK_CALLS, 3);
    CHECK(!a.closed);
    say(&a, "{\"type\":\"ping\"}");
    CHECK(a.closed && a.close_code == RTWS_CLOSE_POLICY);
    CHECK_EQ(a.n, 2);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* the auth timeout closes without a message of the router's */
    peer_open(&b, "/ws");
    NOW += 600;
    rtws_router_run_timers(R, NOW);
    pump(&b);
    CHECK(b.closed && b.close_code == RTWS_CLOSE_POLICY && b.n == 0);
    rtws_conn_free(&b.cl);
    rtws_conn_free(&b.sv);
    /* passed messages go to on_message */
    rc.on_message = app_msg;
    rc.auth_required = 0;
    rc.rate_per_s = 0;
    router_reset(&rc);
    peer_open(&a, "/ws");
    say(&a, "{\"type\":\"publish\",\"channel\":\"x\"}");
    say(&a, "not json at all");
    CHECK_EQ(APP_MSGS, 2);
    CHECK_EQ(a.n, 0);
    CHECK_EQ(rtws_router_get_seq(R, "x"), 0); /* the built-in publish did not run */
    peer_close(&a);
}

/* the hook in front of the built-in protocol */
static void test_hook_builtin_on(void) {
    rtws_router_config rc = base_cfg();
    peer a;
    int n;
    rc.on_receive = pov_hook;
    router_reset(&rc);
    HOOK_CALLS = 0;
    peer_open(&a, "/ws");
    CHECK(strstr(a.msgs[0], "\"type\":\"welcome\"") != NULL);
    say(&a, "{\"type\":\"subscribe\",\"povId\":\"p1\"}"); /* handled by the app */
    CHECK(strcmp(LAST(&a), "{\"type\":\"subscribed\",\"povId\":\"p1\"}") == 0);
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"c1\"}"); /* passed: the built-in one */
    CHECK(strstr(LAST(&a), "{\"type\":\"subscribed\",\"channel\":\"c1\"") != NULL);
    say(&a, "{\"type\":\"ping\",\"ts\":5}");
    CHECK(strstr(LAST(&a), "\"type\":\"pong\"") != NULL);
    CHECK_EQ(HOOK_CALLS, 3);
    n = a.n;
    say(&a, "{\"type\":\"close-me\"}"); /* closed by the hook: no error after */
    CHECK_EQ(a.n, n);
    CHECK(a.closed && a.close_code == 4000);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
}

/* ---- endpoints and the status page ---- */

static int CHAT_HOOK;
static int chat_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    (void)r;
    (void)ev;
    CHAT_HOOK++;
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, (const char *)user, strlen((const char *)user));
    return RTWS_ROUTER_HANDLED;
}
static void status_fn(rtws_router *r, rtws_json_writer *w, void *user) {
    (void)r;
    (void)user;
    rtws_json_write_key(w, "service", 7);
    rtws_json_write_string(w, "healthmate", 10);
}
static int other_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    (void)c;
    (void)req;
    (void)user;
    rep->status = 200;
    rep->body = "mine";
    rep->body_len = 4;
    return 1;
}

static void test_endpoints_status(void) {
    rtws_router_config rc = base_cfg();
    rtws_router_endpoint eps[3];
    peer h, c1, c2, n, x;
    static char out[8192];
    memset(eps, 0, sizeof eps);
    eps[0].path = "/ws/health";
    eps[1].path = "/ws/chat";
    eps[1].on_receive = chat_hook;
    eps[1].builtin_protocol_off = 1;
    eps[1].user = (void *)"chat-reply";
    eps[2].path = "/ws/notifications";
    eps[2].builtin_protocol_off = 1;
    rc.endpoints = eps;
    rc.n_endpoints = 3;
    rc.on_status = status_fn;
    rc.wall_offset_ms = 1796541319123 - (int64_t)NOW; /* NOW is 2026-12-06T07:15:19.123Z */
    router_reset(&rc);
    memset(eps, 0xab, sizeof eps); /* the router keeps its own copy */
    CHAT_HOOK = 0;
    peer_open(&h, "/ws/health");
    peer_open(&c1, "/ws/chat");
    peer_open(&c2, "/ws/chat");
    peer_open(&n, "/ws/notifications");
    peer_open(&x, "/ws");
    CHECK(rtws_conn_get_state(&x.cl) != RTWS_STATE_OPEN); /* no endpoint: 404 */
    CHECK(strstr(h.msgs[0], "\"type\":\"welcome\"") != NULL);
    CHECK(c1.n == 0 && n.n == 0);
    CHECK_EQ(rtws_router_get_conn_endpoint(R, &h.sv), 0);
    CHECK_EQ(rtws_router_get_conn_endpoint(R, &c2.sv), 1);
    CHECK_EQ(rtws_router_get_conn_endpoint(R, &n.sv), 2);
    say(&c1, "{\"type\":\"chat_message\"}");
    CHECK(CHAT_HOOK == 1 && strcmp(LAST(&c1), "chat-reply") == 0);
    say(&n, "{\"type\":\"chat_message\"}"); /* no hook there: dropped */
    CHECK(CHAT_HOOK == 1 && n.n == 0);
    /* shared channels: a built-in publish on /ws/health reaches a chat subscriber */
    rtws_router_subscribe(R, &c2.sv, "alerts");
    say(&h, "{\"type\":\"subscribe\",\"channel\":\"alerts\"}");
    say(&h, "{\"type\":\"publish\",\"channel\":\"alerts\",\"data\":1}");
    pump(&c2);
    CHECK(c2.n == 1 && strstr(c2.msgs[0], "\"type\":\"message\"")); /* but no presence message */
    rtws_router_set_health(R, "degraded");
    get_status("/ws/status", out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(out, "\"status\":\"degraded\"") != NULL);
    CHECK(strstr(out, "\"active_connections\":4,") != NULL); /* WebSockets only */
    CHECK(strstr(out, "\"time\":\"2026-12-06T07:15:19.123Z\"") != NULL);
    CHECK(strstr(out, "\"endpoints\":{\"/ws/health\":{\"active_connections\":1,\"total_connections\":1},"
                      "\"/ws/chat\":{\"active_connections\":2,\"total_connections\":2},"
                      "\"/ws/notifications\":{\"active_connections\":1,\"total_connections\":1}}") != NULL);
    CHECK(strstr(out, "\"service\":\"healthmate\"}") != NULL);
    {
        const char *body = strstr(out, "\r\n\r\n");
        rtws_json d;
        rtws_json_tok t[256];
        CHECK(body && rtws_json_parse(&d, body + 4, strlen(body + 4), t, 256, 0) == RTWS_OK);
    }
    peer_close(&c1);
    get_status("/ws/status", out, sizeof out);
    CHECK(strstr(out, "\"/ws/chat\":{\"active_connections\":1,\"total_connections\":2}") != NULL);
    peer_close(&h);
    peer_close(&c2);
    peer_close(&n);
    rtws_conn_free(&x.cl);
    rtws_conn_free(&x.sv);
    /* status off: the path goes to on_http like any other */
    rc = base_cfg();
    rc.status_off = 1;
    rc.on_http = other_http;
    router_reset(&rc);
    get_status("/ws/status", out, sizeof out);
    CHECK(strstr(out, "\r\n\r\nmine") != NULL && strstr(out, "active_connections") == NULL);
    rc.on_http = NULL;
    router_reset(&rc);
    get_status("/ws/status", out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 426", 12) == 0); /* a plain GET where WebSockets are served */
}

/* the app's own publish ids, de-duplicated per session like the built-in ones */
static void test_dedupe_ids(void) {
    rtws_router_config rc = base_cfg();
    peer a, b;
    uint64_t seq = 0;
    char url[64];
    rc.dedupe_ms = 1000;
    rc.dedupe_max = 2;
    rc.builtin_protocol_off = 1;
    router_reset(&rc);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-1", 3, NOW, &seq), 0);
    CHECK_EQ(rtws_router_remember_id(R, &a.sv, "m-1", 3, 41, NOW), RTWS_OK);
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-1", 3, NOW + 10, &seq), 1);
    CHECK_EQ(seq, 41);
    CHECK_EQ(rtws_router_find_id(R, &b.sv, "m-1", 3, NOW, &seq), 0); /* per session */
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-1", 3, NOW + 1001, &seq), 0); /* window over */
    CHECK_EQ(rtws_router_remember_id(R, &a.sv, "", 0, 1, NOW), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_remember_id(R, &a.cl, "x", 1, 1, NOW), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "0123456789012345678901234567890123456789012345678901234567890123X",
                                 65, NOW, &seq), 0);
    /* dedupe_max 2: a third id pushes the first out */
    rtws_router_remember_id(R, &a.sv, "m-2", 3, 42, NOW);
    rtws_router_remember_id(R, &a.sv, "m-3", 3, 43, NOW);
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-1", 3, NOW, &seq), 0);
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-3", 3, NOW, &seq), 1);
    CHECK_EQ(seq, 43);
    /* a reconnect with ?session= resumes the session: its user and its ids */
    rtws_router_set_identity(R, &a.sv, "kim", NULL, 0);
    rtws_router_remember_id(R, &a.sv, "m-9", 3, 49, NOW);
    snprintf(url, sizeof url, "/ws?session=%s", rtws_router_get_session(R, &a.sv));
    peer_close(&a);
    peer_open(&a, url);
    seq = 0;
    CHECK(strcmp(rtws_router_get_user(R, &a.sv), "kim") == 0); /* the session names its user */
    CHECK_EQ(rtws_router_set_identity(R, &a.sv, "kim", NULL, 0), RTWS_OK);
    CHECK_EQ(rtws_router_find_id(R, &a.sv, "m-9", 3, NOW, &seq), 1);
    CHECK_EQ(seq, 49);
    peer_close(&a);
    peer_close(&b);
    /* dedupe_max 40: the ring grows past 16 and 32 keeping its ids in order,
       then the oldest go */
    rc.dedupe_max = 40;
    router_reset(&rc);
    peer_open(&a, "/ws");
    {
        char id[16];
        int i;
        for (i = 0; i < 50; i++) {
            snprintf(id, sizeof id, "i%d", i);
            CHECK_EQ(rtws_router_remember_id(R, &a.sv, id, strlen(id), (uint64_t)(100 + i), NOW), RTWS_OK);
        }
        for (i = 0; i < 50; i++) {
            snprintf(id, sizeof id, "i%d", i);
            seq = 0;
            CHECK_EQ(rtws_router_find_id(R, &a.sv, id, strlen(id), NOW, &seq), i >= 10);
            if (i >= 10) CHECK_EQ(seq, (uint64_t)(100 + i));
        }
    }
    peer_close(&a);
}

/* auth_required per endpoint */
static void test_endpoint_auth(void) {
    rtws_router_config rc = base_cfg();
    rtws_router_endpoint eps[2];
    peer a, b;
    memset(eps, 0, sizeof eps);
    eps[0].path = "/a";
    eps[0].auth_required = 1;
    eps[1].path = "/b";
    rc.endpoints = eps;
    rc.n_endpoints = 2;
    rc.auth_timeout_ms = 500;
    router_reset(&rc);
    peer_open(&a, "/a");
    peer_open(&b, "/b");
    CHECK(strstr(a.msgs[0], "\"auth\":\"required\"") && strstr(b.msgs[0], "\"auth\":\"optional\""));
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"unauthorized\"") != NULL);
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    CHECK(strstr(LAST(&b), "\"type\":\"subscribed\"") != NULL);
    NOW += 600;
    rtws_router_run_timers(R, NOW);
    pump(&a);
    pump(&b);
    CHECK(a.closed && a.close_code == RTWS_CLOSE_POLICY);
    CHECK(!b.closed);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    peer_close(&b);
}

static void test_format_time(void) {
    char b[32];
    CHECK_EQ(rtws_time_format_iso(0, b, sizeof b), 24);
    CHECK(strcmp(b, "1970-01-01T00:00:00.000Z") == 0);
    CHECK_EQ(rtws_time_format_iso(951782400000, b, sizeof b), 24);
    CHECK(strcmp(b, "2000-02-29T00:00:00.000Z") == 0);
    CHECK_EQ(rtws_time_format_iso(1796541319123, b, sizeof b), 24);
    CHECK(strcmp(b, "2026-12-06T07:15:19.123Z") == 0);
    CHECK_EQ(rtws_time_format_iso(253402300799999, b, sizeof b), 24);
    CHECK(strcmp(b, "9999-12-31T23:59:59.999Z") == 0);
    CHECK_EQ(rtws_time_format_iso(253402300800000, b, sizeof b), 0); /* year 10000 */
    CHECK_EQ(rtws_time_format_iso(-1, b, sizeof b), 0);
    CHECK_EQ(rtws_time_format_iso(0, b, 24), 0);
    {
        /* every day boundary of 1970..2100 against a day counter */
        int y, m, d, ok = 1;
        int64_t day = 0;
        static const int ml[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        for (y = 1970; y < 2100 && ok; y++)
            for (m = 1; m <= 12 && ok; m++) {
                int len = ml[m - 1] + (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
                for (d = 1; d <= len && ok; d++, day++) {
                    char want[64];
                    snprintf(want, sizeof want, "%04d-%02d-%02dT23:59:59.999Z", y, m, d);
                    rtws_time_format_iso(day * 86400000 + 86399999, b, sizeof b);
                    ok = strcmp(b, want) == 0;
                }
            }
        CHECK(ok);
    }
}

int main(void) {
    test_ids_find_foreach();
    test_subscribe_publish_history();
    test_send();
    test_identity();
    test_presence();
    test_own_protocol();
    test_hook_builtin_on();
    test_endpoints_status();
    test_dedupe_ids();
    test_endpoint_auth();
    test_format_time();
    rtws_router_free(R);
    return T_END();
}
