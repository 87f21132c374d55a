/* Layer 7 router, sans-I/O: in-memory client connections, a fake clock, and
   every message type and error code of docs/PROTOCOL.md. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#define ROUTER_PEER_MSG 2048
#include "router_peer.h"

/* abrupt end of the server side (TCP lost) */
static void peer_drop(peer *p) {
    rtws_conn_recv_eof(&p->sv, NOW);
    rtws_conn_free(&p->cl);
    rtws_conn_free(&p->sv);
}

static void new_router(int auth_required, uint32_t rate) {
    rtws_router_config rc;
    static const char secret[] = "s3cret";
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.jwt_secret = secret;
    rc.jwt_secret_len = 6;
    rc.auth_required = auth_required;
    rc.random = rnd;
    rc.history = 5;
    rc.max_channels = 3;
    rc.rate_per_s = rate;
    rc.rate_abuse = 3;
    rc.max_data = 200;
    rc.max_conns_per_user = 2;
    if (R) rtws_router_free(R);
    R = rtws_router_new(&rc);
}

static char *token(const char *claims) {
    static char buf[512];
    rtws_jwt_hs256_sign(claims, "s3cret", 6, buf, sizeof buf);
    return buf;
}

/* an Authorization header value */
static char *bearer(const char *claims) {
    static char buf[600];
    snprintf(buf, sizeof buf, "Bearer %s", token(claims));
    return buf;
}

static void test_welcome_ping_errors(void) {
    peer a;
    char sid[64];
    const char *s;
    new_router(0, 0);
    peer_open(&a, "/ws");
    CHECK_EQ(a.n, 1);
    CHECK(strstr(a.msgs[0], "\"type\":\"welcome\"") && strstr(a.msgs[0], "\"user\":\"anon-") &&
          strstr(a.msgs[0], "\"auth\":\"optional\"") && strstr(a.msgs[0], "\"resumed\":false") &&
          strstr(a.msgs[0], "\"heartbeat\":30000"));
    s = strstr(a.msgs[0], "\"session\":\"");
    CHECK(s != NULL);
    if (s) {
        memcpy(sid, s + 11, 22);
        sid[22] = 0;
    }
    say(&a, "{\"type\":\"ping\",\"ts\":1732200000000}");
    CHECK(strstr(LAST(&a), "{\"type\":\"pong\",\"ts\":1732200000000"));
    say(&a, "not json");
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\""));
    say(&a, "{\"type\":\"frobnicate\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\"") && strstr(LAST(&a), "unknown message type"));
    say(&a, "{\"type\":\"subscribe\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\""));
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"bad name\",\"id\":\"q1\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"bad_request\"") && strstr(LAST(&a), "\"id\":\"q1\""));
    say(&a, "{\"type\":\"unsubscribe\",\"channel\":\"c\",\"id\":\"q2\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"not_subscribed\"") && strstr(LAST(&a), "\"id\":\"q2\""));
    say(&a, "{\"type\":\"presence\",\"channel\":\"c\",\"status\":\"away\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"not_subscribed\""));
    {
        char big[400];
        memset(big, 'x', sizeof big);
        snprintf(big, sizeof big, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":\"%0300d\"}", 0);
        say(&a, big);
        CHECK(strstr(LAST(&a), "\"code\":\"too_large\""));
    }
    CHECK_EQ(rtws_conn_get_state(&a.cl), RTWS_STATE_OPEN); /* errors keep it open */
    peer_close(&a);
    /* a path the router does not serve: 404 */
    peer_open(&a, "/elsewhere");
    CHECK_EQ(a.n, 0);
    CHECK_EQ(rtws_conn_get_error(&a.cl), RTWS_ERR_HANDSHAKE);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* resuming the session keeps the user */
    {
        peer b;
        char path[128], user[64] = "";
        const char *u = strstr(a.msgs[0], "\"user\":\"");
        (void)u;
        peer_open(&b, "/ws");
        s = strstr(b.msgs[0], "\"user\":\"");
        if (s) {
            memcpy(user, s, 21);
            user[21] = 0;
        }
        s = strstr(b.msgs[0], "\"session\":\"");
        memcpy(sid, s + 11, 22);
        sid[22] = 0;
        peer_drop(&b);
        snprintf(path, sizeof path, "/ws?session=%s", sid);
        peer_open(&b, path);
        CHECK(strstr(b.msgs[0], "\"resumed\":true") && strstr(b.msgs[0], user));
        if (!strstr(b.msgs[0], "\"resumed\":true")) fprintf(stderr, "%s | %s | %d %s\n", path, user, b.n, b.msgs[0]);
        peer_close(&b);
        NOW += 130000; /* past the session TTL */
        rtws_router_run_timers(R, NOW);
        peer_open(&b, path);
        CHECK(strstr(b.msgs[0], "\"resumed\":false") && !strstr(b.msgs[0], user));
        peer_close(&b);
    }
}

static void test_pubsub_history_presence(void) {
    peer a, b, c;
    int i;
    char msg[256];
    new_router(0, 0);
    peer_open_auth(&a, "/ws", bearer("{\"sub\":\"alice\"}"));
    CHECK(HAS(&a, "\"type\":\"authenticated\",\"user\":\"alice\""));
    peer_open(&b, "/ws?token="); /* an empty token is no token */
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"chat:42\"}");
    CHECK(strstr(LAST(&a), "{\"type\":\"subscribed\",\"channel\":\"chat:42\",\"seq\":0,\"members\":1,\"presence\":[{\"user\":\"alice\",\"status\":\"online\"}]}"));
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"chat:42\"}");
    CHECK(strstr(LAST(&b), "\"type\":\"subscribed\"") && strstr(LAST(&b), "alice") && strstr(LAST(&b), "anon-"));
    pump(&a);
    CHECK(strstr(LAST(&a), "\"type\":\"presence\",\"channel\":\"chat:42\",\"user\":\"anon-") &&
          strstr(LAST(&a), "\"status\":\"joined\""));
    /* publish: acked, delivered to both, the publisher included */
    say(&b, "{\"type\":\"publish\",\"channel\":\"chat:42\",\"event\":\"message\",\"data\":{\"text\":\"hi\"},\"id\":\"c-9\"}");
    pump(&a);
    CHECK(strstr(a.msgs[a.n - 1], "{\"type\":\"message\",\"channel\":\"chat:42\",\"event\":\"message\",\"data\":{\"text\":\"hi\"},\"seq\":1,\"from\":\"anon-"));
    CHECK(find(&b, 0, "\"type\":\"message\"") >= 0 && find(&b, 0, "{\"type\":\"ack\",\"id\":\"c-9\",\"seq\":1}") >= 0);
    /* the same id again: acked with the same seq, not published twice */
    i = a.n;
    say(&b, "{\"type\":\"publish\",\"channel\":\"chat:42\",\"data\":1,\"id\":\"c-9\"}");
    pump(&a);
    CHECK_EQ(a.n, i);
    CHECK(strstr(LAST(&b), "\"type\":\"ack\",\"id\":\"c-9\",\"seq\":1,\"duplicate\":true"));
    /* more than the history holds (5) */
    for (i = 2; i <= 8; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"channel\":\"chat:42\",\"data\":%d}", i);
        say(&a, msg);
    }
    /* resume: since inside the ring replays in order; too old resets */
    peer_open(&c, "/ws");
    say(&c, "{\"type\":\"subscribe\",\"channel\":\"chat:42\",\"since\":5}");
    i = find(&c, 0, "\"type\":\"subscribed\"");
    CHECK(i >= 0 && strstr(c.msgs[i], "\"seq\":8"));
    CHECK(i >= 0 && c.n >= i + 4 && strstr(c.msgs[i + 1], "\"seq\":6,") && strstr(c.msgs[i + 2], "\"seq\":7,") &&
          strstr(c.msgs[i + 3], "\"seq\":8,"));
    say(&c, "{\"type\":\"unsubscribe\",\"channel\":\"chat:42\"}");
    CHECK(strstr(LAST(&c), "{\"type\":\"unsubscribed\",\"channel\":\"chat:42\"}"));
    c.n = 0;
    say(&c, "{\"type\":\"subscribe\",\"channel\":\"chat:42\",\"since\":1}");
    CHECK(c.n >= 2 && strstr(c.msgs[c.n - 1], "{\"type\":\"reset\",\"channel\":\"chat:42\",\"seq\":8}"));
    say(&c, "{\"type\":\"unsubscribe\",\"channel\":\"chat:42\"}");
    c.n = 0;
    say(&c, "{\"type\":\"subscribe\",\"channel\":\"chat:42\",\"since\":99}"); /* ahead: server restarted */
    CHECK(c.n == 2 && strstr(c.msgs[1], "\"type\":\"reset\"") && strstr(c.msgs[1], "\"seq\":8"));
    say(&c, "{\"type\":\"unsubscribe\",\"channel\":\"chat:42\"}");
    c.n = 0;
    say(&c, "{\"type\":\"subscribe\",\"channel\":\"chat:42\",\"since\":8}"); /* up to date */
    CHECK_EQ(c.n, 1);
    /* presence status */
    say(&a, "{\"type\":\"presence\",\"channel\":\"chat:42\",\"status\":\"away\"}");
    pump(&b);
    CHECK(strstr(LAST(&b), "{\"type\":\"presence\",\"channel\":\"chat:42\",\"user\":\"alice\",\"status\":\"away\"}"));
    /* alice's second connection does not make her join again; leaving one
       does not make her leave; losing the last does */
    {
        peer a2;
        int nb = b.n;
        peer_open_auth(&a2, "/ws", bearer("{\"sub\":\"alice\"}"));
        say(&a2, "{\"type\":\"subscribe\",\"channel\":\"chat:42\"}");
        pump(&b);
        CHECK_EQ(b.n, nb);
        peer_drop(&a2);
        pump(&b);
        CHECK_EQ(b.n, nb);
        peer_drop(&a); /* silently gone: e.g. a heartbeat timeout */
        pump(&b);
        CHECK(strstr(LAST(&b), "\"user\":\"alice\",\"status\":\"left\""));
    }
    /* limits: channels per connection, connections per user */
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"x1\"}");
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"x2\"}");
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"x3\"}");
    CHECK(strstr(LAST(&b), "\"code\":\"limit_reached\""));
    {
        peer u1, u2, u3;
        peer_open_auth(&u1, "/ws", bearer("{\"sub\":\"bob\"}"));
        peer_open_auth(&u2, "/ws", bearer("{\"sub\":\"bob\"}"));
        peer_open_auth(&u3, "/ws", bearer("{\"sub\":\"bob\"}"));
        CHECK(!u1.closed && !u2.closed);
        CHECK(u3.closed && u3.close_code == 1008);
        peer_close(&u1);
        peer_close(&u2);
        rtws_conn_free(&u3.cl);
        rtws_conn_free(&u3.sv);
    }
    {
        rtws_router_stats st;
        rtws_router_get_stats(R, &st);
        CHECK_EQ(st.active_connections, 2);
        CHECK(st.publishes == 8 && st.subscriptions == 4);
        if (st.publishes != 8 || st.subscriptions != 4) fprintf(stderr, "publishes %llu subs %zu\n", (unsigned long long)st.publishes, st.subscriptions);
    }
    CHECK_EQ(rtws_router_publish(R, "chat:42", "notice", "{\"from\":\"ops\"}", 14, NULL, NOW), 9);
    pump(&b);
    CHECK(strstr(LAST(&b), "\"event\":\"notice\",\"data\":{\"from\":\"ops\"},\"seq\":9,\"from\":\"server\""));
    CHECK_EQ(rtws_router_publish(R, "chat:42", NULL, "{bad", 4, NULL, NOW), 0);
    peer_close(&b);
    peer_close(&c);
}

static int deny_secret(rtws_router *r, rtws_conn *c, const char *user, int action,
                       const char *channel, void *app) {
    (void)r; (void)c; (void)user; (void)app;
    return strncmp(channel, "secret", 6) == 0 && action == RTWS_ACT_SUBSCRIBE;
}

static void test_auth_and_limits(void) {
    peer a;
    int i;
    new_router(1, 5);
    peer_open(&a, "/ws");
    CHECK(strstr(a.msgs[0], "\"auth\":\"required\""));
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"unauthorized\""));
    say(&a, "{\"type\":\"auth\",\"token\":\"not.a.token\"}");
    CHECK(strstr(LAST(&a), "\"code\":\"unauthorized\""));
    {
        char m[600];
        snprintf(m, sizeof m, "{\"type\":\"auth\",\"token\":\"%s\"}", token("{\"sub\":\"carol\"}"));
        say(&a, m);
    }
    CHECK(strstr(LAST(&a), "\"type\":\"authenticated\",\"user\":\"carol\""));
    /* rate limit: burst 10, then rate_limited, then 1008 after 3 more */
    NOW += 10000; /* the bucket refills to its burst */
    for (i = 0; i < 13; i++) say(&a, "{\"type\":\"ping\"}");
    CHECK(find(&a, 0, "rate_limited") >= 0);
    CHECK(!a.closed);
    say(&a, "{\"type\":\"ping\"}");
    CHECK(a.closed && a.close_code == 1008);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* no auth within the deadline: 1008 */
    peer_open(&a, "/ws");
    NOW += 10001;
    rtws_router_run_timers(R, NOW);
    pump(&a);
    CHECK(a.closed && a.close_code == 1008);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* a bad token in the request: 401 at the handshake */
    peer_open(&a, "/ws?token=abc.def.ghi");
    CHECK_EQ(rtws_conn_get_error(&a.cl), RTWS_ERR_HANDSHAKE);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* authorize hook */
    {
        rtws_router_config rc;
        memset(&rc, 0, sizeof rc);
        rc.authorize = deny_secret;
        rc.random = rnd;
        rtws_router_free(R);
        R = rtws_router_new(&rc);
        peer_open(&a, "/any/path");
        say(&a, "{\"type\":\"subscribe\",\"channel\":\"secret-room\",\"id\":\"s1\"}");
        CHECK(strstr(LAST(&a), "\"code\":\"forbidden\"") && strstr(LAST(&a), "\"id\":\"s1\""));
        say(&a, "{\"type\":\"subscribe\",\"channel\":\"public\"}");
        CHECK(strstr(LAST(&a), "\"type\":\"subscribed\""));
        peer_close(&a);
    }
}

static void test_presence_cap(void) {
    rtws_router_config rc;
    peer a, b, c;
    memset(&rc, 0, sizeof rc);
    rc.random = rnd;
    rc.max_presence = 2;
    rtws_router_free(R);
    R = rtws_router_new(&rc);
    peer_open(&a, "/");
    peer_open(&b, "/");
    peer_open(&c, "/");
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"big\"}");
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"big\"}");
    pump(&a);
    CHECK(strstr(LAST(&a), "\"status\":\"joined\"")); /* 2 users: announced */
    a.n = 0;
    say(&c, "{\"type\":\"subscribe\",\"channel\":\"big\"}");
    pump(&a);
    CHECK_EQ(a.n, 0); /* the third is not: over max_presence */
    CHECK(strstr(LAST(&c), "\"members\":3}") && !strstr(LAST(&c), "\"presence\""));
    peer_close(&c);
    pump(&a);
    CHECK_EQ(a.n, 0); /* leaving back to 2: not announced either */
    peer_close(&b);
    pump(&a);
    CHECK(strstr(LAST(&a), "\"status\":\"left\""));
    peer_close(&a);
}

/* regressions from fuzz_router and the demo: reserved presence words, a
   reply that does not fit the queue, the auth deadline's close, a small
   max_tokens */
static void test_regressions(void) {
    rtws_router_config rc;
    peer a, b;
    int before;
    new_router(0, 0);
    peer_open(&a, "/ws");
    peer_open(&b, "/ws");
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    say(&b, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
    pump(&a);
    before = a.n;
    say(&b, "{\"type\":\"presence\",\"channel\":\"c\",\"status\":\"left\"}");
    pump(&a);
    CHECK_EQ(a.n, before);
    CHECK(strstr(LAST(&b), "\"code\":\"bad_request\""));
    peer_close(&a);
    peer_close(&b);
    /* a reply that does not fit: closed as a slow consumer, never dropped */
    peer_open(&a, "/ws");
    ((rtws_config *)(uintptr_t)rtws_conn_get_config(&a.sv))->max_send_queue = 400;
    /* the figures are for an uncompressed queue (the publish would shrink) */
    ((rtws_config *)(uintptr_t)rtws_conn_get_config(&a.sv))->deflate_threshold = 100000;
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"x\"}");
    {
        static char blob[260];
        memset(blob, 'z', sizeof blob - 1);
        blob[0] = blob[sizeof blob - 2] = '"';
        CHECK(rtws_router_publish(R, "x", NULL, blob, strlen(blob), NULL, NOW) == 1);
        CHECK(!a.sv.priv_.close_sent && rtws_conn_out_pending(&a.sv) > 340); /* it fit, just */
    }
    rtws_conn_send_text(&a.cl, "{\"type\":\"subscribe\",\"channel\":\"y\"}", 34);
    move(&a.cl, &a.sv); /* the server answers into a queue nobody drains */
    CHECK(a.sv.priv_.close_sent && a.sv.priv_.close_code == 1013);
    pump(&a);
    CHECK(a.closed && a.close_code == 1013);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* the auth deadline's close counts its own timeout from the tick's time */
    new_router(1, 0);
    peer_open(&a, "/ws");
    NOW += 10001;
    rtws_router_run_timers(R, NOW);
    rtws_conn_run_timers(&a.sv, NOW);
    pump(&a);
    CHECK(HAS(&a, "\"code\":\"unauthorized\""));
    CHECK(a.closed && a.close_code == 1008);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&a.sv);
    /* max_tokens below the initial 256 */
    memset(&rc, 0, sizeof rc);
    rc.random = rnd;
    rc.max_tokens = 16;
    rtws_router_free(R);
    R = rtws_router_new(&rc);
    CHECK(R != NULL);
    peer_open(&a, "/");
    say(&a, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14]}");
    CHECK(strstr(LAST(&a), "\"code\":\"too_large\""));
    peer_close(&a);
}

static void test_status_page(void) {
    rtws_conn sv;
    rtws_config sc;
    char out[4096];
    size_t n = 0, len;
    const uint8_t *o;
    static const char req[] = "GET /ws/status HTTP/1.1\r\nHost: x\r\n\r\n";
    peer a;
    new_router(0, 0);
    peer_open(&a, "/ws");
    say(&a, "{\"type\":\"subscribe\",\"channel\":\"room\"}");
    memset(&sc, 0, sizeof sc);
    sc.role = RTWS_SERVER;
    sc.on_event = sv_event;
    sc.on_accept = sv_accept;
    sc.on_http = sv_http;
    rtws_conn_init(&sv, &sc);
    rtws_conn_recv(&sv, req, sizeof req - 1, NOW, NULL);
    while ((o = rtws_conn_out(&sv, &len)) != NULL && n + len < sizeof out) {
        memcpy(out + n, o, len);
        n += len;
        rtws_conn_out_done(&sv, len);
    }
    out[n] = 0;
    CHECK(strncmp(out, "HTTP/1.1 200 OK", 15) == 0);
    CHECK(strstr(out, "\"status\":\"ok\",\"active_connections\":1,") != NULL);
    CHECK(strstr(out, "\"users_online\":1") && strstr(out, "\"subscriptions\":{\"room\":1}") &&
          strstr(out, "\"messages_in\":1") && strstr(out, "\"uptime_s\":") && strstr(out, "\"timestamp\":"));
    {
        /* the body is valid JSON */
        const char *body = strstr(out, "\r\n\r\n") + 4;
        rtws_json d;
        rtws_json_tok t[128];
        CHECK(rtws_json_parse(&d, body, strlen(body), t, 128, 0) == RTWS_OK);
    }
    rtws_conn_free(&sv);
    peer_close(&a);
}

static void test_jwt(void) {
    char user[64], tok[600];
    static const char k[] = "s3cret";
    int64_t now = 1700000000;
    size_t n;
    /* valid; exp in the future; nbf in the past */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"exp\":1700000100,\"nbf\":1699999000}", k, 6, tok, sizeof tok);
    CHECK(n > 0);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user), RTWS_OK);
    CHECK(strcmp(user, "u1") == 0);
    /* expired, not yet valid */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"exp\":1699999999}", k, 6, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user), RTWS_ERR_TIMEOUT);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 5, user), RTWS_OK); /* leeway */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\",\"nbf\":1700000500}", k, 6, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user), RTWS_ERR_TIMEOUT);
    /* wrong signature (other secret; one flipped character) */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", "other", 5, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user), RTWS_ERR_INVALID);
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", k, 6, tok, sizeof tok);
    tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
    CHECK(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user) != RTWS_OK);
    /* alg none (unsigned), alg RS256: refused */
    {
        static const char none[] = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSJ9.";
        CHECK_EQ(rtws_jwt_hs256_verify(none, sizeof none - 1, k, 6, now, 0, user), RTWS_ERR_INVALID);
        /* {"alg":"none"} with a made-up signature of the right length */
        static const char none2[] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        CHECK_EQ(rtws_jwt_hs256_verify(none2, sizeof none2 - 1, k, 6, now, 0, user), RTWS_ERR_INVALID);
        static const char rs[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        CHECK_EQ(rtws_jwt_hs256_verify(rs, sizeof rs - 1, k, 6, now, 0, user), RTWS_ERR_INVALID);
    }
    /* malformed base64, too few parts, oversize */
    CHECK_EQ(rtws_jwt_hs256_verify("e$J.e30.AAAA", 12, k, 6, now, 0, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify("abc.def", 7, k, 6, now, 0, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify("a.b.c.d", 7, k, 6, now, 0, user), RTWS_ERR_SYNTAX);
    {
        static char big[5000];
        memset(big, 'a', sizeof big);
        CHECK_EQ(rtws_jwt_hs256_verify(big, sizeof big, k, 6, now, 0, user), RTWS_ERR_TOO_BIG);
    }
    /* a sub with a control character is refused */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u\\n1\"}", k, 6, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, k, 6, now, 0, user), RTWS_ERR_SYNTAX);
}

/* The router's two growth shapes over rtws__grow: a full ring keeps its
   order, oldest first, and a hash table keeps every node reachable. */
static void test_growth(void) {
    rtws_allocator a;
    void *p;
    int *ring, i, ok = 1;
    size_t cap = 16, head = 5;
    memset(&a, 0, sizeof a);
    ring = (int *)malloc(16 * sizeof *ring);
    for (i = 0; i < 16; i++) ring[(head + (size_t)i) % cap] = i; /* full, wrapped */
    p = ring;
    CHECK_EQ(rtws__ring_grow(&a, &p, &cap, &head, sizeof *ring, 40), RTWS_OK);
    ring = (int *)p;
    CHECK_EQ(cap, 32);
    for (i = 0; i < 16; i++) ok &= ring[(head + (size_t)i) % cap] == i;
    CHECK(ok);
    for (i = 16; i < 32; i++) ring[(head + (size_t)i) % cap] = i; /* the free slots follow */
    for (i = 0, ok = 1; i < 32; i++) ok &= ring[(head + (size_t)i) % cap] == i;
    CHECK(ok);
    CHECK_EQ(rtws__ring_grow(&a, &p, &cap, &head, sizeof *ring, 40), RTWS_OK); /* to the max */
    ring = (int *)p;
    CHECK_EQ(cap, 40);
    for (i = 0, ok = 1; i < 32; i++) ok &= ring[(head + (size_t)i) % cap] == i;
    CHECK(ok);
    CHECK_EQ(rtws__ring_grow(&a, &p, &cap, &head, sizeof *ring, 40), RTWS_ERR_TOO_BIG);
    free(p);
    {
        rtws__htab t;
        rtws__hnode nodes[300];
        char keys[300][8];
        size_t k, added = 0, found = 0, placed = 0;
        memset(&t, 0, sizeof t);
        for (k = 0; k < 300; k++) {
            snprintf(keys[k], sizeof keys[k], "k%u", (unsigned)k);
            nodes[k].key = keys[k];
            nodes[k].klen = (uint32_t)strlen(keys[k]);
            nodes[k].hash = rtws__hash(keys[k], nodes[k].klen);
            added += (size_t)rtws__hadd(&t, &nodes[k], &a);
        }
        CHECK_EQ(added, 300);
        CHECK_EQ(t.count, 300);
        CHECK_EQ(t.nb, 128); /* grows at load 4: 16, 32, .. 128 (256 at 512 nodes) */
        for (k = 0; k < 300; k++)
            found += rtws__hfind(&t, keys[k], nodes[k].klen, nodes[k].hash) == &nodes[k];
        for (k = 0; k < t.nb; k++) {
            rtws__hnode *e;
            for (e = t.b[k]; e; e = e->hnext) placed += (e->hash & (t.nb - 1)) == k;
        }
        CHECK_EQ(found, 300);
        CHECK_EQ(placed, 300);
        free(t.b);
    }
}

/* A session held by 255 open connections (RTWS__SESS_CONNS: its count is a
   byte) is not resumed by one more: that one gets a session of its own; once
   one of them goes, the session may be resumed again. */
static void test_session_conns_cap(void) {
    peer *ps = (peer *)calloc(257, sizeof *ps);
    char sid[23], path[64];
    const char *s;
    int i, resumed = 0;
    CHECK(ps != NULL);
    if (!ps) return;
    new_router(0, 0);
    peer_open(&ps[0], "/ws");
    s = ps[0].n ? strstr(ps[0].msgs[0], "\"session\":\"") : NULL;
    CHECK(s != NULL);
    if (!s) {
        free(ps);
        return;
    }
    memcpy(sid, s + 11, 22);
    sid[22] = 0;
    snprintf(path, sizeof path, "/ws?session=%s", sid);
    for (i = 1; i <= 255; i++) {
        peer_open(&ps[i], path);
        if (ps[i].n && strstr(ps[i].msgs[0], "\"resumed\":true") && strstr(ps[i].msgs[0], sid))
            resumed++;
    }
    CHECK_EQ(resumed, 254); /* 255 attached: the first and 254 resumed */
    CHECK(ps[255].n && strstr(ps[255].msgs[0], "\"resumed\":false") &&
          !strstr(ps[255].msgs[0], sid));
    peer_close(&ps[1]);
    peer_open(&ps[256], path);
    CHECK(ps[256].n && strstr(ps[256].msgs[0], "\"resumed\":true") && strstr(ps[256].msgs[0], sid));
    for (i = 0; i <= 256; i++)
        if (i != 1) peer_close(&ps[i]);
    free(ps);
}

int main(void) {
    test_growth();
    test_jwt();
    test_welcome_ping_errors();
    test_pubsub_history_presence();
    test_auth_and_limits();
    test_status_page();
    test_presence_cap();
    test_regressions();
    test_session_conns_cap();
    rtws_router_free(R);
    return T_END();
}
