/* libFuzzer target for layer 7 (the realtime router), sans-I/O: up to four
   in-memory client/server connection pairs talk to one router with a fake
   clock, as tests/unit_router.c does.

   Input: byte 0 picks the router config (bits below); the rest is a list of
   records "op payload \0". op & 3 is the connection slot, (op >> 2) % 20 the
   action (see the A_ enum): send the payload as a text message (most
   actions), as binary, in two fragments, or as raw bytes into the server
   side; advance the clock and tick; close, drop or (re)open a connection
   (with a path/query, a session of another slot or a signed token); publish
   from the server; a plain HTTP GET; an auth message with a valid token;
   stall a reader (its send queue fills up).

   Invariants, abort() when broken:
   - every message a client receives is a text frame holding a JSON object
     whose "type" is a protocol type; errors carry a code from the fixed list;
   - the first message of a connection is "welcome";
   - "message", "presence" and "reset" arrive only for channels the client was
     told it is subscribed to, and seqs of one channel increase between two
     "subscribed";
   - the client's connection never sees a protocol error from the server;
   - rtws_router_get_user() is the user of the last welcome/authenticated;
   - router stats: active_connections equals the server connections that
     opened and have not closed, users_online <= active, and everything is
     zero once all connections are gone; the status page is a JSON object;
   - "rate_limited" and "overloaded" carry retry_after_ms >= 1; channels
     never exceed max_channels_total; history stays under 7/8 of a budget;
     once everything is gone and the channels expired, the budget is back
     to 0 bytes (every charge was given back);
   - no crash, no leak, no UB (ASan + UBSan).

   The toolkit API: an on_receive hook handles text messages starting with
   '!' (the others pass to the built-in protocol): "!s<ch>" subscribes the
   connection server-side, "!u<ch>" unsubscribes, "!p<ch>" publishes a raw
   frame with the seq the router gives, "!i<user> <claims>" sets the
   identity, "!U" sends to every connection of the user, "!c" iterates
   connections, "!h<ch>" reads the history, "!f" finds the connection by id, "!d<id>"
   de-duplicates a publish id, "!m<ch>" sends once to the subscribers of <ch>
   and "a", "!C" closes every connection of the user, "!H<ch>" writes the
   history into a JSON writer, "!a<token>" authenticates with the router's
   token check (rtws_router_authenticate),
   "!x" passes. Their replies are protocol messages, so the checks above
   hold for them too. A second endpoint, "/app", has the built-in protocol
   off: no welcome, and only the hook and on_message answer; it has its own
   rate limit (F_RATE, or one input in four), whose refusals go to
   on_rate_limited (the endpoint's or the router's). On inputs of odd length
   "/app" has a message-type table too (TABLE: handlers, an auth message
   checked by the router, refusals to on_error with a documented code). */
#include "fuzz.h"

enum { /* byte 0 */
    F_AUTH_REQUIRED = 1,
    F_JWT = 2,
    F_SMALL = 4,     /* history 3, 3 channels, 2 dedupe ids, short TTLs, 64-byte data,
                        presence in channels of up to 2 users; 6 channels in all, 3 per
                        user, channels expire 3 s after their last subscriber */
    F_RATE = 8,      /* 5 msg/s, burst 4, closed after 3 more */
    F_PER_USER = 16, /* 2 connections per user */
    F_SMALL_Q = 32,  /* 1 KiB send queue: slow consumers get 1013; a 2 to 9 KiB
                        memory budget (by input length) over the router and its queues (overloaded, history
                        shed oldest first, the largest queue closed with 1013) */
    F_AUTHORIZE = 64,
    F_ON_MESSAGE = 128
};

enum { /* (op >> 2) % A_COUNT; 0..6 all send text */
    A_BINARY = 7,
    A_FRAGMENTS,
    A_RAW,
    A_CLOCK,
    A_CLOSE,
    A_DROP,
    A_OPEN,
    A_PUBLISH,
    A_HTTP,
    A_AUTH,
    A_STALL,
    A_RESUME,
    A_USER,
    A_COUNT
};

#define SLOTS 4
#define MAXSUB 128
static const char SECRET[] = "fuzz-secret";

typedef struct slot {
    rtws_conn cl, sv;
    int used;       /* 1: client + server pair, 2: server fed raw bytes only */
    int sv_open, sv_closed;
    int stalled, nmsgs, closed_by_server, cl_closed;
    int app;        /* opened on "/app": the built-in protocol is off */
    char user[64], session[32];
    int nsub;
    char sub[MAXSUB][130];
    int64_t last_seq[MAXSUB];
} slot;

static slot S[SLOTS];
static char LAST_SESSION[SLOTS][32]; /* the last session id each slot was told, kept across drops */
static rtws_router *R;
static uint64_t NOW;
static unsigned RSEED;
static int FLAGS;
static size_t N_INPUT; /* the input's length */
static rtws_json_tok TOKS[4096];

static int rnd(void *buf, size_t len, void *u) {
    size_t i;
    (void)u;
    for (i = 0; i < len; i++) {
        RSEED = RSEED * 1103515245u + 12345u;
        ((uint8_t *)buf)[i] = (uint8_t)(RSEED >> 16);
    }
    return 0;
}

static slot *slot_of_server(const rtws_conn *c) {
    int i;
    for (i = 0; i < SLOTS; i++)
        if (&S[i].sv == c) return &S[i];
    return NULL;
}

static void sv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    slot *s = slot_of_server(c);
    (void)user;
    if (s && ev->type == RTWS_EV_OPEN) {
        FUZZ_CHECK(!s->sv_open);
        s->sv_open = 1;
    }
    if (s && ev->type == RTWS_EV_CLOSE) {
        FUZZ_CHECK(s->sv_open && !s->sv_closed);
        s->sv_closed = 1;
    }
    rtws_router_handle_event(R, c, ev, NOW);
}
static int sv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    (void)proto;
    (void)user;
    return rtws_router_handle_accept(R, c, req, NOW);
}
static int sv_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *rep, void *user) {
    (void)user;
    return rtws_router_handle_http(R, c, req, rep, NOW);
}

static int sub_index(const slot *s, const char *ch) {
    int i;
    for (i = 0; i < s->nsub; i++)
        if (strcmp(s->sub[i], ch) == 0) return i;
    return -1;
}

static int is_code(const rtws_json *d, int v) {
    static const char *const codes[] = {"bad_request", "unauthorized", "forbidden",
                                        "not_subscribed", "rate_limited", "too_large",
                                        "limit_reached", "internal", "overloaded",
                                        "token_expired"};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (rtws_json_eq(d, v, codes[i])) return 1;
    return 0;
}

/* What a client receives from the router. */
static void check_message(slot *s, const uint8_t *p, size_t len) {
    rtws_json d;
    int tv, cv, sv;
    char ch[130];
    size_t cn = 0;
    int64_t seq = -1;
    FUZZ_CHECK(rtws_json_parse(&d, (const char *)p, len, TOKS, 4096, 0) == RTWS_OK);
    FUZZ_CHECK(TOKS[0].type == RTWS_JSON_OBJECT);
    tv = rtws_json_get(&d, 0, "type");
    FUZZ_CHECK(tv > 0 && TOKS[tv].type == RTWS_JSON_STRING);
    FUZZ_CHECK(s->nmsgs++ > 0 || s->app || rtws_json_eq(&d, tv, "welcome"));
    ch[0] = '\0';
    cv = rtws_json_get(&d, 0, "channel");
    if (cv > 0) {
        FUZZ_CHECK(TOKS[cv].type == RTWS_JSON_STRING);
        FUZZ_CHECK(rtws_json_unescape(&d, cv, ch, sizeof ch, &cn) == RTWS_OK && cn >= 1 &&
                   cn <= 128);
    }
    sv = rtws_json_get(&d, 0, "seq");
    if (sv > 0) FUZZ_CHECK(rtws_json_int64(&d, sv, &seq) == RTWS_OK && seq >= 0);
    if (rtws_json_eq(&d, tv, "welcome") || rtws_json_eq(&d, tv, "authenticated")) {
        int u = rtws_json_get(&d, 0, "user"), se = rtws_json_get(&d, 0, "session");
        size_t k;
        FUZZ_CHECK(u > 0 && se > 0);
        FUZZ_CHECK(rtws_json_unescape(&d, u, s->user, sizeof s->user, &k) == RTWS_OK && k > 0);
        FUZZ_CHECK(rtws_json_unescape(&d, se, s->session, sizeof s->session, &k) == RTWS_OK &&
                   k == 22);
        memcpy(LAST_SESSION[s - S], s->session, sizeof s->session);
        FUZZ_CHECK(!s->app || rtws_json_eq(&d, tv, "authenticated"));
        if (rtws_json_eq(&d, tv, "welcome"))
            FUZZ_CHECK(rtws_json_get(&d, 0, "time") > 0 && rtws_json_get(&d, 0, "heartbeat") > 0 &&
                       rtws_json_get(&d, 0, "auth") > 0 && rtws_json_get(&d, 0, "resumed") > 0);
    } else if (rtws_json_eq(&d, tv, "subscribed")) {
        int i = sub_index(s, ch), pv = rtws_json_get(&d, 0, "presence"), mv;
        int64_t members = 0;
        mv = rtws_json_get(&d, 0, "members");
        FUZZ_CHECK(cn && sv > 0 && mv > 0 && rtws_json_int64(&d, mv, &members) == RTWS_OK);
        FUZZ_CHECK(members >= 1); /* the subscriber itself is there */
        if (pv > 0) /* absent over max_presence */
            FUZZ_CHECK(TOKS[pv].type == RTWS_JSON_ARRAY && (int64_t)TOKS[pv].size == members);
        else
            FUZZ_CHECK(members > (FLAGS & F_SMALL ? 2 : 1000));
        if (i < 0) {
            FUZZ_CHECK(s->nsub < MAXSUB);
            i = s->nsub++;
            memcpy(s->sub[i], ch, cn + 1);
        }
        s->last_seq[i] = -1;
    } else if (rtws_json_eq(&d, tv, "unsubscribed")) {
        int i = sub_index(s, ch);
        FUZZ_CHECK(i >= 0);
        s->nsub--;
        if (i != s->nsub) {
            memcpy(s->sub[i], s->sub[s->nsub], sizeof s->sub[i]);
            s->last_seq[i] = s->last_seq[s->nsub];
        }
    } else if (rtws_json_eq(&d, tv, "message")) {
        int i = sub_index(s, ch);
        FUZZ_CHECK(i >= 0 && seq >= 1);
        FUZZ_CHECK(rtws_json_get(&d, 0, "event") > 0 && rtws_json_get(&d, 0, "data") > 0 &&
                   rtws_json_get(&d, 0, "from") > 0 && rtws_json_get(&d, 0, "ts") > 0);
        FUZZ_CHECK(seq > s->last_seq[i]);
        s->last_seq[i] = seq;
    } else if (rtws_json_eq(&d, tv, "reset")) {
        int i = sub_index(s, ch);
        FUZZ_CHECK(i >= 0 && seq >= 0);
        s->last_seq[i] = seq;
    } else if (rtws_json_eq(&d, tv, "presence")) {
        FUZZ_CHECK(sub_index(s, ch) >= 0);
        FUZZ_CHECK(rtws_json_get(&d, 0, "user") > 0 && rtws_json_get(&d, 0, "status") > 0);
    } else if (rtws_json_eq(&d, tv, "ack")) {
        FUZZ_CHECK(rtws_json_get(&d, 0, "id") > 0 && seq >= 1);
    } else if (rtws_json_eq(&d, tv, "error")) {
        int c = rtws_json_get(&d, 0, "code");
        FUZZ_CHECK(c > 0 && is_code(&d, c) && rtws_json_get(&d, 0, "message") > 0);
        if (rtws_json_eq(&d, c, "rate_limited") || rtws_json_eq(&d, c, "overloaded")) {
            int ra = rtws_json_get(&d, 0, "retry_after_ms");
            int64_t ms = 0;
            FUZZ_CHECK(ra > 0 && rtws_json_int64(&d, ra, &ms) == RTWS_OK && ms >= 1);
        }
    } else if (rtws_json_eq(&d, tv, "app_echo") || rtws_json_eq(&d, tv, "app_hi") ||
               rtws_json_eq(&d, tv, "app_authed") || rtws_json_eq(&d, tv, "app_error")) {
        FUZZ_CHECK(s->app && (N_INPUT & 1)); /* the table exists on /app of odd inputs */
        if (rtws_json_eq(&d, tv, "app_authed")) { /* the user the router now reports */
            size_t k;
            int u = rtws_json_get(&d, 0, "user");
            FUZZ_CHECK(u > 0 && rtws_json_unescape(&d, u, s->user, sizeof s->user, &k) == RTWS_OK &&
                       k > 0);
        }
    } else if (rtws_json_eq(&d, tv, "app_slow")) {
        FUZZ_CHECK(s->app); /* app_limited: only /app's rate limit calls it */
    } else {
        FUZZ_CHECK(rtws_json_eq(&d, tv, "pong"));
        FUZZ_CHECK(rtws_json_get(&d, 0, "ts") > 0 && rtws_json_get(&d, 0, "time") > 0);
    }
}

static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    slot *s = (slot *)user;
    (void)c;
#ifdef FUZZ_TRACE /* -DFUZZ_TRACE: print what every client gets */
    if (ev->type == RTWS_EV_MESSAGE)
        fprintf(stderr, "%d< %.*s\n", (int)(s - S), (int)ev->message.len, ev->message.data);
    if (ev->type == RTWS_EV_CLOSE) fprintf(stderr, "%d< CLOSE %u\n", (int)(s - S), ev->close.code);
#endif
    if (ev->type == RTWS_EV_MESSAGE) {
        FUZZ_CHECK(ev->message.opcode == RTWS_OP_TEXT);
        check_message(s, ev->message.data, ev->message.len);
    } else if (ev->type == RTWS_EV_ERROR) {
        /* the router's server must never break the protocol */
        FUZZ_CHECK(ev->error.err != RTWS_ERR_PROTOCOL && ev->error.err != RTWS_ERR_UTF8 &&
                   ev->error.err != RTWS_ERR_TOO_BIG);
    } else if (ev->type == RTWS_EV_CLOSE) {
        s->cl_closed = 1;
        if (ev->close.by_peer) s->closed_by_server = 1;
    }
}

static int app_authorize(rtws_router *r, rtws_conn *c, const char *user, int action,
                         const char *channel, void *app) {
    (void)r;
    (void)c;
    (void)app;
    FUZZ_CHECK(user && *user);
    if (action == RTWS_ACT_SUBSCRIBE) return strncmp(channel, "secret", 6) == 0;
    if (action == RTWS_ACT_PUBLISH) return strncmp(channel, "ro:", 3) == 0;
    return strncmp(channel, "quiet:", 6) == 0;
}

static void app_message(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *app) {
    (void)app;
    if (ev->message.len & 1) rtws_router_send_error(r, c, "bad_request", "the app says no", "app-1");
}

/* A message of /app refused by its own rate limit: never one of /ws (built-in
   protocol: "rate_limited"); answered in the application's protocol, or the
   connection closed by the hook (odd lengths). */
static void app_limited(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *app) {
    (void)app;
    FUZZ_CHECK(rtws_router_get_conn_endpoint(r, c) == 1);
    FUZZ_CHECK(rtws_conn_get_state(c) == RTWS_STATE_OPEN);
    FUZZ_CHECK(ev->type == RTWS_EV_MESSAGE);
    if (ev->message.len % 7 == 3) rtws_conn_close(c, 4000, "too fast");
    else rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, "{\"type\":\"app_slow\"}", 19);
}

/* ---- /app's message-type table (inputs of odd length): "echo" answers
   app_echo, "hi" (allowed before auth) app_hi, "sub" subscribes to "ch"
   server-side, the auth message "auth" (the router checks "token") answers
   app_authed with the user (so the user check above covers it); refusals
   reach app_error with a documented code ---- */
static void tbl_reply(rtws_router *r, rtws_conn *c, const char *type) {
    char out[64];
    size_t k = (size_t)snprintf(out, sizeof out, "{\"type\":\"%s\"}", type);
    FUZZ_CHECK(rtws_router_get_conn_endpoint(r, c) == 1);
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, out, k);
}
static void tbl_check(const rtws_json *msg, const char *type) {
    int tv = rtws_json_get(msg, 0, "type");
    FUZZ_CHECK(msg->toks[0].type == RTWS_JSON_OBJECT && tv > 0 && rtws_json_eq(msg, tv, type));
}
static void tbl_echo(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *app) {
    (void)app;
    tbl_check(msg, "echo");
    tbl_reply(r, c, "app_echo");
}
static void tbl_hi(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *app) {
    (void)app;
    tbl_check(msg, "hi");
    tbl_reply(r, c, "app_hi");
}
static int app_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *app);
static void tbl_sub(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *app) {
    char ch[130], cmd[140];
    rtws_event ev;
    tbl_check(msg, "sub");
    if (rtws_json_get_str(msg, 0, "ch", ch, sizeof ch) <= 0) return;
    snprintf(cmd, sizeof cmd, "!s%s", ch); /* as "!s<ch>": subscribed, and the client told */
    memset(&ev, 0, sizeof ev);
    ev.type = RTWS_EV_MESSAGE;
    ev.message.opcode = RTWS_OP_TEXT;
    ev.message.data = (const uint8_t *)cmd;
    ev.message.len = strlen(cmd);
    FUZZ_CHECK(app_hook(r, c, &ev, app) == RTWS_ROUTER_HANDLED);
}
static void tbl_auth(rtws_router *r, rtws_conn *c, const rtws_json *msg, void *app) {
    (void)app;
    tbl_check(msg, "auth");
    char out[160];
    size_t k;
    rtws_json_writer w;
    FUZZ_CHECK((FLAGS & F_JWT) && rtws_router_get_claims(r, c, NULL) != NULL); /* checked */
    rtws_json_writer_init(&w, out, sizeof out); /* the user, as "authenticated" tells it */
    rtws_json_write_fmt(&w, "{type:'app_authed', user:%s}", rtws_router_get_user(r, c));
    FUZZ_CHECK(rtws_json_writer_finish(&w, &k) == RTWS_OK);
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, out, k);
}
static void tbl_error(rtws_router *r, rtws_conn *c, const char *code, const char *message,
                      void *app) {
    (void)app;
    FUZZ_CHECK(message != NULL);
    FUZZ_CHECK(!strcmp(code, "invalid_message") || !strcmp(code, "unknown_message_type") ||
               !strcmp(code, "authentication_required") || !strcmp(code, "authentication_failed") ||
               !strcmp(code, "connection_limit_exceeded"));
    FUZZ_CHECK(rtws_conn_get_state(c) == RTWS_STATE_OPEN);
    tbl_reply(r, c, "app_error");
}
static const rtws_router_handler TABLE[] = {
    {"echo", tbl_echo, 0}, {"hi", tbl_hi, RTWS_ROUTER_BEFORE_AUTH}, {"sub", tbl_sub, 0},
    {"auth", tbl_auth, 0}, {"nop", NULL, 0}};

/* ---- the toolkit API, driven from the hook ---- */

static int count_conn(rtws_router *r, rtws_conn *c, void *user) {
    (void)r;
    FUZZ_CHECK(rtws_router_get_conn_id(R, c) != 0);
    ++*(size_t *)user;
    return 0;
}

static void pres_item(const char *user_id, const char *status, size_t conns, void *user) {
    rtws_json_writer *w = (rtws_json_writer *)user;
    FUZZ_CHECK(user_id[0] && status[0] && conns >= 1);
    rtws_json_write_object(w);
    rtws_json_write_key(w, "user", 4);
    rtws_json_write_string(w, user_id, strlen(user_id));
    rtws_json_write_key(w, "status", 6);
    rtws_json_write_string(w, status, strlen(status));
    rtws_json_write_object_end(w);
}

static uint64_t HIST_NEXT;
static void hist_item(rtws_router *r, const char *channel, uint64_t seq, int opcode,
                      const uint8_t *p, size_t len, void *user) {
    (void)r;
    (void)channel;
    (void)p;
    (void)len;
    (void)user;
    FUZZ_CHECK(opcode == RTWS_OP_TEXT && (HIST_NEXT == 0 || seq == HIST_NEXT));
    HIST_NEXT = seq + 1;
}

static rtws_err app_send(rtws_conn *c, const char *text, size_t n) {
    rtws_err e = rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, text, n);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_LIMIT || e == RTWS_ERR_CLOSED || e == RTWS_ERR_NOMEM);
    return e;
}

static int app_hook(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *app) {
    static char buf[4096];
    char arg[200];
    const char *p = (const char *)ev->message.data;
    size_t n = ev->message.len, an, k;
    rtws_json_writer w;
    (void)app;
    FUZZ_CHECK(r == R && rtws_router_get_conn_id(r, c) != 0);
    if (ev->message.opcode != RTWS_OP_TEXT || n < 2 || p[0] != '!') return RTWS_ROUTER_PASS;
    an = n - 2 < sizeof arg - 1 ? n - 2 : sizeof arg - 1;
    memcpy(arg, p + 2, an);
    arg[an] = '\0';
    for (k = 0; k < an; k++) /* names stop at the first space or control byte */
        if ((uint8_t)arg[k] <= 0x20) arg[an = k] = '\0';
    switch (p[1]) {
    case 's': {
        rtws_err e = rtws_router_subscribe(r, c, arg);
        size_t members, len;
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_INVALID || e == RTWS_ERR_LIMIT || e == RTWS_ERR_NOMEM);
        if (e != RTWS_OK) break;
        FUZZ_CHECK(rtws_router_is_subscribed(r, c, arg));
        members = rtws_router_get_presence(r, arg, NULL, NULL);
        rtws_json_writer_init(&w, buf, sizeof buf);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "type", 4);
        rtws_json_write_string(&w, "subscribed", 10);
        rtws_json_write_key(&w, "channel", 7);
        rtws_json_write_string(&w, arg, an);
        rtws_json_write_key(&w, "seq", 3);
        rtws_json_write_int64(&w, (int64_t)rtws_router_get_seq(r, arg));
        rtws_json_write_key(&w, "members", 7);
        rtws_json_write_int64(&w, (int64_t)members);
        if (members <= (FLAGS & F_SMALL ? 2u : 1000u)) {
            rtws_json_write_key(&w, "presence", 8);
            rtws_json_write_array(&w);
            FUZZ_CHECK(rtws_router_get_presence(r, arg, pres_item, &w) == members);
            rtws_json_write_array_end(&w);
        }
        rtws_json_write_object_end(&w);
        if (rtws_json_writer_finish(&w, &len) == RTWS_OK) app_send(c, buf, len);
        break;
    }
    case 'u':
        if (rtws_router_unsubscribe(r, c, arg) == RTWS_OK) {
            int len;
            FUZZ_CHECK(!rtws_router_is_subscribed(r, c, arg));
            len = snprintf(buf, sizeof buf, "{\"type\":\"unsubscribed\",\"channel\":\"%s\"}", arg);
            app_send(c, buf, (size_t)len);
        }
        break;
    case 'p': {
        uint64_t want = rtws_router_get_seq(r, arg) + 1, got;
        int len = snprintf(buf, sizeof buf,
                           "{\"type\":\"message\",\"channel\":\"%s\",\"event\":\"app\",\"data\":null,"
                           "\"seq\":%llu,\"from\":\"app\",\"ts\":0}",
                           arg, (unsigned long long)want);
        got = rtws_router_publish_raw(r, arg, RTWS_OP_TEXT, buf, (size_t)len, NOW);
        FUZZ_CHECK(got == 0 || got == want);
        break;
    }
    case 'i': {
        const char *claims = an + 3 <= n ? p + 2 + an : NULL;
        size_t cl = claims ? n - 2 - an : 0, gl;
        rtws_err e = rtws_router_set_identity(r, c, arg, claims, cl);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_INVALID || e == RTWS_ERR_LIMIT || e == RTWS_ERR_NOMEM);
        if (e == RTWS_OK) {
            int len;
            const char *g = rtws_router_get_claims(r, c, &gl);
            FUZZ_CHECK(strcmp(rtws_router_get_user(r, c), arg) == 0);
            FUZZ_CHECK(claims ? g && gl == cl && memcmp(g, claims, cl) == 0 : !g && !gl);
            len = snprintf(buf, sizeof buf, "{\"type\":\"authenticated\",\"user\":\"%s\",\"session\":\"%s\"}",
                           arg, rtws_router_get_session(r, c));
            if (strpbrk(arg, "\"\\") || app_send(c, buf, (size_t)len) != RTWS_OK) {
                slot *sl = slot_of_server(c); /* never told: it is closing */
                rtws_conn_close(c, 4000, "not told its name");
                if (sl && an < sizeof sl->user) memcpy(sl->user, arg, an + 1);
            }
        }
        break;
    }
    case 'U': {
        const char *u = rtws_router_get_user(r, c);
        size_t cnt = 0, sent;
        rtws_router_foreach_conn(r, u, NULL, count_conn, &cnt);
        static const char pong[] = "{\"type\":\"pong\",\"ts\":0,\"time\":0}";
        sent = rtws_router_send_to_user(r, u, RTWS_OP_TEXT, pong, sizeof pong - 1);
        FUZZ_CHECK(sent <= cnt && cnt >= 1);
        break;
    }
    case 'c': {
        rtws_router_stats st;
        size_t all = 0, in_ch = 0;
        rtws_router_get_stats(r, &st);
        FUZZ_CHECK(rtws_router_foreach_conn(r, NULL, NULL, count_conn, &all) == all);
        FUZZ_CHECK(all == st.active_connections);
        rtws_router_foreach_conn(r, NULL, arg[0] ? arg : NULL, count_conn, &in_ch);
        FUZZ_CHECK(in_ch <= all);
        break;
    }
    case 'h': {
        rtws_err e;
        HIST_NEXT = 0;
        e = rtws_router_get_history(r, arg, an % 3, an % 2, hist_item, NULL);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_RANGE);
        FUZZ_CHECK(HIST_NEXT == 0 || HIST_NEXT == rtws_router_get_seq(r, arg) + 1);
        break;
    }
    case 'f':
        FUZZ_CHECK(rtws_router_find_conn(r, rtws_router_get_conn_id(r, c)) == c);
        break;
    case 'd': { /* the app's publish ids: remembered ones are found in the window */
        uint64_t seq = 0;
        if (!an || an > 64) break;
        if (!rtws_router_find_id(r, c, arg, an, NOW, &seq)) {
            FUZZ_CHECK(rtws_router_remember_id(r, c, arg, an, an, NOW) == RTWS_OK);
            FUZZ_CHECK(rtws_router_find_id(r, c, arg, an, NOW, &seq) == 1 && seq == an);
        }
        break;
    }
    case 'm': { /* once per connection across channels: at most the union, less c */
        static const char pong[] = "{\"type\":\"pong\",\"ts\":0,\"time\":0}";
        const char *chs[4];
        size_t on_arg = 0, on_a = 0, sent;
        chs[0] = arg;
        chs[1] = NULL;
        chs[2] = "a";
        chs[3] = arg;
        rtws_router_foreach_conn(r, NULL, arg, count_conn, &on_arg);
        rtws_router_foreach_conn(r, NULL, "a", count_conn, &on_a);
        sent = rtws_router_send_to_channels(r, chs, 4, RTWS_OP_TEXT, pong, sizeof pong - 1, c);
        FUZZ_CHECK(sent <= on_arg + on_a);
        break;
    }
    case 'C': /* every connection of c's user, c among them */
        FUZZ_CHECK(rtws_router_close_user(r, rtws_router_get_user(r, c), 4000, "closed") >= 1);
        FUZZ_CHECK(rtws_conn_get_state(c) != RTWS_STATE_OPEN);
        break;
    case 'H': { /* the history into a writer: JSON, or NOSPACE in a small buffer */
        char hb[512];
        size_t len;
        rtws_err e, f;
        rtws_json d;
        rtws_json_writer_init(&w, hb, an % 2 ? sizeof hb : 64);
        rtws_json_write_array(&w);
        e = rtws_router_write_history(r, arg, an % 3, an % 4, &w);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_RANGE);
        rtws_json_write_array_end(&w);
        f = rtws_json_writer_finish(&w, &len);
        FUZZ_CHECK(f == RTWS_OK || f == RTWS_ERR_NOSPACE);
        if (f == RTWS_OK) FUZZ_CHECK(rtws_json_parse(&d, hb, len, NULL, 0, 0) == RTWS_OK);
        break;
    }
    case 'a': { /* the app's auth message: the rest is the token (F_JWT: the built-in check) */
        rtws_err e = rtws_router_authenticate(r, c, p + 2, n - 2);
        FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_INVALID || e == RTWS_ERR_LIMIT || e == RTWS_ERR_NOMEM);
        if (e == RTWS_OK) {
            const char *u = rtws_router_get_user(r, c);
            int len;
            FUZZ_CHECK(FLAGS & F_JWT);
            FUZZ_CHECK(u && u[0] && rtws_router_get_claims(r, c, NULL) != NULL);
            len = snprintf(buf, sizeof buf, "{\"type\":\"authenticated\",\"user\":\"%s\",\"session\":\"%s\"}",
                           u, rtws_router_get_session(r, c));
            if (strpbrk(u, "\"\\") || app_send(c, buf, (size_t)len) != RTWS_OK) {
                slot *sl = slot_of_server(c); /* never told: it is closing */
                rtws_conn_close(c, 4000, "not told its name");
                if (sl && strlen(u) < sizeof sl->user) memcpy(sl->user, u, strlen(u) + 1);
            }
        }
        break;
    }
    case 'x': return RTWS_ROUTER_PASS;
    default: break;
    }
    return RTWS_ROUTER_HANDLED;
}

static void app_presence(rtws_router *r, const char *channel, const char *user_id,
                         const char *status, void *app) {
    (void)app;
    FUZZ_CHECK(r == R && channel[0] && user_id[0] && status[0]);
}

static void app_status(rtws_router *r, rtws_json_writer *w, void *app) {
    (void)r;
    (void)app;
    rtws_json_write_key(w, "app", 3);
    rtws_json_write_bool(w, 1);
}

static void server_conn_init(rtws_conn *c) {
    rtws_config sc;
    memset(&sc, 0, sizeof sc);
    sc.role = RTWS_SERVER;
    sc.on_event = sv_event;
    sc.on_accept = sv_accept;
    sc.on_http = sv_http;
    sc.max_message = 65536;
    sc.idle_timeout_ms = 600000;
    sc.random = rnd;
    if (FLAGS & F_SMALL_Q) {
        sc.max_send_queue = 1024;
        sc.budget = rtws_router_get_budget(R); /* the queues count too */
    }
    rtws_conn_init(c, &sc);
}

/* Moves every pending byte between the two sides until nothing moves. */
static void move(rtws_conn *a, rtws_conn *b, int *moved) {
    const uint8_t *o;
    size_t len;
    static uint8_t tmp[1 << 16];
    while ((o = rtws_conn_out(a, &len)) != NULL && len) {
        if (len > sizeof tmp) len = sizeof tmp;
        memcpy(tmp, o, len);
        rtws_conn_out_done(a, len);
        if (b) rtws_conn_recv(b, tmp, len, NOW, NULL);
        *moved = 1;
    }
}

static void slot_free(slot *s) {
    if (!s->used) return;
    rtws_conn_recv_eof(&s->sv, NOW); /* a CLOSE for the router when it opened and did not close */
    if (s->used == 1) {
        rtws_conn_recv_eof(&s->cl, NOW);
        rtws_conn_free(&s->cl);
    }
    rtws_conn_free(&s->sv);
    memset(s, 0, sizeof *s);
}

static void pump(void) {
    int round, i;
    for (round = 0; round < 32; round++) {
        int moved = 0;
        for (i = 0; i < SLOTS; i++) {
            slot *s = &S[i];
            if (s->used == 1) {
                move(&s->cl, &s->sv, &moved);
                if (!s->stalled) move(&s->sv, &s->cl, &moved);
            } else if (s->used == 2 && !s->stalled) {
                move(&s->sv, NULL, &moved);
            }
        }
        if (!moved) break;
    }
    /* what the hosts do: a side that is done gets its socket closed, and the
       other side sees the end of the stream (a client that gave up, say on its
       pong timeout while its reader stalled, is gone for the server too) */
    for (i = 0; i < SLOTS; i++)
        if (S[i].used && (rtws_conn_want(&S[i].sv) == RTWS_WANT_CLOSE ||
                          (S[i].used == 1 && rtws_conn_want(&S[i].cl) == RTWS_WANT_CLOSE)))
            slot_free(&S[i]);
}

static void check_stats(void) {
    rtws_router_stats st;
    size_t open = 0;
    int i;
    rtws_router_get_stats(R, &st);
    for (i = 0; i < SLOTS; i++) {
        if (S[i].used && S[i].sv_open && !S[i].sv_closed) open++;
        if (S[i].used == 1 && S[i].sv_open && !S[i].sv_closed && S[i].user[0] &&
            rtws_conn_out_pending(&S[i].sv) == 0) { /* else the client may not be told yet */
            const char *u = rtws_router_get_user(R, &S[i].sv);
            if (!u || strcmp(u, S[i].user) != 0)
                fprintf(stderr, "slot %d: router says %s, client was told %s\n", i, u ? u : "(none)", S[i].user);
            FUZZ_CHECK(u && strcmp(u, S[i].user) == 0);
        }
    }
    FUZZ_CHECK(st.active_connections == open);
    FUZZ_CHECK(st.users_online <= st.active_connections);
    FUZZ_CHECK(st.total_connections >= st.active_connections);
    FUZZ_CHECK(st.subscriptions <= st.active_connections * (FLAGS & F_SMALL ? 3 : 100));
    FUZZ_CHECK(st.channels >= (st.subscriptions ? 1u : 0u));
    { /* channels the clients created (server publishes are not capped) */
        size_t k, owned = 0;
        for (k = 0; k < R->channels.nb; k++) {
            const rtws__hnode *e;
            for (e = R->channels.b[k]; e; e = e->hnext) owned += ((const rtws__channel *)e)->owner != NULL;
        }
        FUZZ_CHECK(owned <= (FLAGS & F_SMALL ? 6u : 10000u));
    }
    if (st.memory_budget) FUZZ_CHECK(st.history_bytes <= st.memory_budget - st.memory_budget / 8);
    FUZZ_CHECK(st.memory_router <= st.memory_used);
}

static size_t sign(const char *name, size_t n, char *out, size_t cap) {
    char claims[128], user[32];
    size_t k = 0, i;
    for (i = 0; i < n && k < 20; i++)
        if ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')) user[k++] = name[i];
    if (!k) user[k++] = 'u';
    user[k] = '\0';
    if (user[0] == 'x') /* expired */
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":1600000000}", user);
    else if (user[0] == 'y') /* not valid yet */
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"nbf\":1800000000}", user);
    else
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":1800000000}", user);
    return rtws_jwt_hs256_sign(claims, SECRET, sizeof SECRET - 1, out, cap);
}

/* Opens slot s as a client/server pair. p: payload ("S<k>" the session of
   slot k, "T<name>" a bearer token, "Q<name>" ?token=, "/..." a path, else
   query text after /ws?). */
static void slot_open(slot *s, const uint8_t *p, size_t n) {
    rtws_config cc;
    rtws_client_opts o;
    char path[600], auth[600], sid[32];
    memcpy(sid, LAST_SESSION[n >= 2 ? p[1] & 3 : 0], sizeof sid);
    slot_free(s);
    memset(&cc, 0, sizeof cc);
    cc.role = RTWS_CLIENT;
    cc.on_event = cl_event;
    cc.user = s;
    cc.random = rnd;
    cc.max_message = 1 << 20;
    rtws_conn_init(&s->cl, &cc);
    server_conn_init(&s->sv);
    s->used = 1;
    memset(&o, 0, sizeof o);
    o.host = "x";
    strcpy(path, "/ws");
    if (n >= 2 && p[0] == 'S') {
        snprintf(path, sizeof path, "/ws?session=%s", sid);
    } else if (n >= 1 && p[0] == 'T') {
        char tok[512];
        if (sign((const char *)p + 1, n - 1, tok, sizeof tok)) {
            snprintf(auth, sizeof auth, "Bearer %s", tok);
            o.authorization = auth;
        }
    } else if (n >= 1 && p[0] == 'Q') {
        char tok[512];
        if (sign((const char *)p + 1, n - 1, tok, sizeof tok))
            snprintf(path, sizeof path, "/ws?token=%s", tok);
    } else if (n >= 1) {
        size_t i, k = 0;
        char q[256];
        for (i = 0; i < n && k < sizeof q - 1; i++)
            if (p[i] > 0x20 && p[i] < 0x7f) q[k++] = (char)p[i];
        q[k] = '\0';
        if (q[0] == '/') snprintf(path, sizeof path, "%s", q);
        else snprintf(path, sizeof path, "/ws?%s", q);
    }
    s->app = strncmp(path, "/app", 4) == 0 && (path[4] == '\0' || path[4] == '?');
    o.path = path;
    rtws_conn_start(&s->cl, &o, NOW);
}

static void do_http(const uint8_t *p, size_t n) {
    rtws_conn c;
    char req[512];
    size_t i, k = 0, len, got = 0;
    static char out[1 << 16];
    const uint8_t *o;
    char path[256];
    for (i = 0; i < n && k < sizeof path - 1; i++)
        if (p[i] > 0x20 && p[i] < 0x7f) path[k++] = (char)p[i];
    path[k] = '\0';
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", k ? path : "/ws/status");
    server_conn_init(&c);
    rtws_conn_recv(&c, req, strlen(req), NOW, NULL);
    while ((o = rtws_conn_out(&c, &len)) != NULL && len) {
        if (got + len < sizeof out) {
            memcpy(out + got, o, len);
            got += len;
        }
        rtws_conn_out_done(&c, len);
    }
    out[got] = '\0';
    if (!strncmp(out, "HTTP/1.1 200", 12)) {
        const char *body = strstr(out, "\r\n\r\n");
        rtws_json d;
        FUZZ_CHECK(body != NULL);
        body += 4;
        FUZZ_CHECK(rtws_json_parse(&d, body, strlen(body), TOKS, 4096, 0) == RTWS_OK);
        FUZZ_CHECK(TOKS[0].type == RTWS_JSON_OBJECT && rtws_json_get(&d, 0, "active_connections") > 0);
    }
    rtws_conn_free(&c);
}

static void tick_all(void) {
    int i;
    rtws_router_run_timers(R, NOW);
    for (i = 0; i < SLOTS; i++) {
        if (!S[i].used) continue;
        rtws_conn_run_timers(&S[i].sv, NOW);
        if (S[i].used == 1) rtws_conn_run_timers(&S[i].cl, NOW);
    }
}

static void step(int op, const uint8_t *p, size_t n) {
    slot *s = &S[op & 3];
    int a = (op >> 2) % A_COUNT;
#ifdef FUZZ_TRACE
    fprintf(stderr, "op %d slot %d: %.*s\n", a, op & 3, (int)(n > 120 ? 120 : n), (const char *)p);
#endif
    switch (a) {
    case A_BINARY:
        if (s->used == 1) rtws_conn_send(&s->cl, RTWS_OP_BINARY, p, n);
        break;
    case A_FRAGMENTS:
        if (s->used == 1 && n >= 2) {
            size_t cut = 1 + p[0] % (n - 1);
            if (rtws_conn_send_frame(&s->cl, RTWS_OP_TEXT, p + 1, cut - 1, 0) == RTWS_OK)
                rtws_conn_send_frame(&s->cl, RTWS_OP_CONT, p + cut, n - cut, 1);
        }
        break;
    case A_RAW:
        if (!s->used) {
            server_conn_init(&s->sv);
            s->used = 2;
        }
        if (s->used == 2) rtws_conn_recv(&s->sv, p, n, NOW, NULL);
        break;
    case A_CLOCK: {
        static const uint32_t step_ms[8] = {1, 60, 250, 1000, 11000, 31000, 61000, 130000};
        NOW += n ? step_ms[p[0] & 7] : 200;
        tick_all();
        break;
    }
    case A_CLOSE:
        if (s->used == 1) rtws_conn_close(&s->cl, n ? 1000u + (p[0] & 3) * 1000u : 1000u, NULL);
        else slot_free(s);
        break;
    case A_DROP: slot_free(s); break;
    case A_OPEN: slot_open(s, p, n); break;
    case A_PUBLISH: {
        char ch[160];
        const uint8_t *sp = (const uint8_t *)memchr(p, ' ', n);
        size_t cn = sp ? (size_t)(sp - p) : n;
        if (cn >= sizeof ch) cn = sizeof ch - 1;
        memcpy(ch, p, cn);
        ch[cn] = '\0';
        if (sp) rtws_router_publish(R, ch, "fuzz", (const char *)sp + 1, n - cn - 1, NULL, NOW);
        else rtws_router_publish(R, ch, NULL, NULL, 0, "ops", NOW);
        break;
    }
    case A_HTTP: do_http(p, n); break;
    case A_AUTH:
        if (s->used == 1) {
            char tok[512], msg[700];
            const char *sid = LAST_SESSION[n ? p[0] & 3 : 0];
            if (sign((const char *)p + (n ? 1 : 0), n ? n - 1 : 0, tok, sizeof tok)) {
                if (n && (p[0] & 4) && sid[0])
                    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\",\"session\":\"%s\"}",
                             tok, sid);
                else
                    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
                rtws_conn_send_text(&s->cl, msg, strlen(msg));
            }
        }
        break;
    case A_STALL: s->stalled = !s->stalled; break;
    case A_RESUME:
        if (LAST_SESSION[op & 3][0]) {
            uint8_t q[2];
            q[0] = 'S';
            q[1] = (uint8_t)(op & 3);
            slot_free(s);
            slot_open(s, q, 2);
        }
        break;
    case A_USER:
        if (s->used && s->sv_open && !s->sv_closed)
            rtws_router_send_error(R, &s->sv, "internal", n ? "app error" : NULL, n ? NULL : "x");
        break;
    default:
        if (s->used == 1) rtws_conn_send(&s->cl, RTWS_OP_TEXT, p, n); /* invalid UTF-8 refused */
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    rtws_router_config rc;
    size_t off = 1;
    int i, steps = 0;
    if (n < 1) return 0;
    memset(S, 0, sizeof S);
    memset(LAST_SESSION, 0, sizeof LAST_SESSION);
    NOW = 1000000;
    RSEED = 1;
    FLAGS = d[0];
    N_INPUT = n;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.random = rnd;
    rc.wall_offset_ms = (int64_t)1700000000000 - (int64_t)NOW;
    rc.auth_required = FLAGS & F_AUTH_REQUIRED;
    if (FLAGS & F_JWT) {
        rc.jwt_secret = SECRET;
        rc.jwt_secret_len = sizeof SECRET - 1;
    }
    if (FLAGS & F_SMALL) {
        rc.history = 3;
        rc.max_channels = 3;
        rc.dedupe_max = 2;
        rc.dedupe_ms = 5000;
        rc.session_ttl_ms = 10000;
        rc.max_data = 64;
        rc.auth_timeout_ms = 5000;
        rc.max_tokens = 64;
        rc.max_presence = 2;
        rc.max_channels_total = 6;
        rc.max_user_channels = 3;
        rc.channel_ttl_ms = 3000;
    }
    if (FLAGS & F_SMALL_Q) rc.memory_budget = 2048 + 1024 * (n % 8); /* 2..9 KiB */
    if (FLAGS & F_RATE) {
        rc.rate_per_s = 5;
        rc.rate_burst = 4;
        rc.rate_abuse = 3;
    }
    if (FLAGS & F_PER_USER) rc.max_conns_per_user = 2;
    if (FLAGS & F_AUTHORIZE) rc.authorize = app_authorize;
    if (FLAGS & F_ON_MESSAGE) rc.on_message = app_message;
    {
        rtws_router_endpoint eps[2];
        memset(eps, 0, sizeof eps);
        eps[0].path = "/ws";
        eps[1].path = "/app";
        eps[1].builtin_protocol_off = 1;
        if ((FLAGS & F_RATE) || n % 4 == 0) { /* /app's own limit, whatever the router's */
            eps[1].rate_per_s = 2;
            eps[1].rate_burst = (uint32_t)(1 + n % 3);
            eps[1].rate_abuse = (uint32_t)(2 + n % 2);
            if (n % 3) eps[1].on_rate_limited = app_limited;
            else rc.on_rate_limited = app_limited; /* the endpoints' default */
        }
        if (n & 1) { /* /app's message-type table; on_message then sees nothing */
            eps[1].handlers = TABLE;
            eps[1].n_handlers = sizeof TABLE / sizeof TABLE[0];
            eps[1].on_error = tbl_error;
            eps[1].auth_type = "auth";
            eps[1].type_field = n % 3 ? "type" : NULL;
            eps[1].auth_close_code = (uint16_t)(n % 5 == 1 ? 1 : n % 5 == 3 ? 4003 : 0);
        }
        rc.endpoints = eps;
        rc.n_endpoints = 2;
        rc.on_receive = app_hook;
        rc.on_presence = app_presence;
        rc.on_status = app_status;
        R = rtws_router_new(&rc);
    }
    FUZZ_CHECK(R != NULL);
    while (off < n && steps++ < 256) {
        int op = d[off++];
        const uint8_t *p = d + off, *z = (const uint8_t *)memchr(p, 0, n - off);
        size_t len = z ? (size_t)(z - p) : n - off;
        off += len + (z ? 1 : 0);
        step(op, p, len);
        pump();
        check_stats();
    }
    /* everything ends: the router must be back to nothing */
    for (i = 0; i < SLOTS; i++) slot_free(&S[i]);
    {
        rtws_router_stats st;
        rtws_router_get_stats(R, &st);
        FUZZ_CHECK(st.active_connections == 0 && st.users_online == 0 && st.subscriptions == 0);
        NOW += 10000000;
        rtws_router_run_timers(R, NOW);
        rtws_router_get_stats(R, &st);
        FUZZ_CHECK(st.sessions == 0);
        FUZZ_CHECK(st.channels == 0 && st.history_bytes == 0); /* expired */
        FUZZ_CHECK(st.memory_router == 0 && st.memory_used == 0);
    }
    rtws_router_free(R);
    R = NULL;
    return 0;
}
