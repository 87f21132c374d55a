/* Issue 18, encode once for fan-out: a shared frame (rtws_shared_new) sent
   to many server connections with permessage-deflate is compressed once per
   window key and the compressed copy queued by reference; deflate_off peers
   get the plain frame, deflate_takeover = 1 connections compress it each
   with their own window, short messages and RTWS_SEND_UNCOMPRESSED go plain,
   a message that does not shrink is tried once. Then the router: a publish
   to many subscribers reaches the deflate ones compressed, with one
   compressor run. Compressor runs are counted by rtws_conn_stats.deflate_runs. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

typedef struct ev_log {
    int msgs;
    unsigned char msg[1 << 17];
    size_t msg_len;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    (void)c;
    if (ev->type != RTWS_EV_MESSAGE) return;
    if (ev->message.first) L->msg_len = 0;
    if (L->msg_len + ev->message.len <= sizeof L->msg)
        memcpy(L->msg + L->msg_len, ev->message.data, ev->message.len);
    L->msg_len += ev->message.len;
    if (ev->message.fin) L->msgs++;
}

static int rnd(void *buf, size_t n, void *u) {
    static unsigned s = 7;
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) ((unsigned char *)buf)[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
    return 0;
}

/* the shared frames' allocator, counting what is live */
static long sh_live;
static void *s_alloc(size_t n, void *u) { (void)u; sh_live++; return malloc(n); }
static void *s_realloc(void *p, size_t n, void *u) { (void)u; if (!p) sh_live++; return realloc(p, n); }
static void s_free(void *p, void *u) { (void)u; if (p) sh_live--; free(p); }

static uint8_t wire[1 << 22];

static size_t drain(rtws_conn *a, uint8_t *buf, size_t cap) {
    size_t total = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(a, &len)) != NULL) {
        if (total + len > cap) len = cap - total;
        memcpy(buf + total, p, len);
        rtws_conn_out_done(a, len);
        total += len;
        if (total == cap) break;
    }
    return total;
}

static size_t pump(rtws_conn *a, rtws_conn *b) {
    size_t n = drain(a, wire, sizeof wire);
    if (n) rtws_conn_recv(b, wire, n, 0, NULL);
    return n;
}

typedef struct peer {
    rtws_conn cl, sv;
    rtws_config cc;
    ev_log log;
    const char *name;
    int deflate; /* expected: compressed frames from the server */
} peer;

static rtws_config SVC, SVC_TAKE;
static rtws_budget BUDGET;

static int peer_open(peer *p, const char *name, const rtws_config *sc, int off, unsigned bits) {
    rtws_client_opts o;
    rtws_pmd_offer ag;
    memset(&p->cc, 0, sizeof p->cc);
    p->name = name;
    p->cc.role = RTWS_CLIENT;
    p->cc.on_event = on_event;
    p->cc.user = &p->log;
    p->cc.random = rnd;
    p->cc.heartbeat_off = 1;
    p->cc.deflate_off = off;
    p->cc.deflate_peer_window_bits = bits; /* offers server_max_window_bits */
    p->log.msgs = 0;
    memset(&o, 0, sizeof o);
    o.host = "h";
    rtws_conn_init(&p->cl, &p->cc);
    rtws_conn_init(&p->sv, sc);
    if (rtws_conn_start(&p->cl, &o, 0) != RTWS_OK) return 0;
    pump(&p->cl, &p->sv);
    pump(&p->sv, &p->cl);
    p->deflate = rtws_conn_get_deflate(&p->sv, &ag);
    if (p->deflate && bits) CHECK_EQ(ag.server_max_window_bits, bits);
    return rtws_conn_get_state(&p->cl) == RTWS_STATE_OPEN;
}

#if defined(FANOUT_BASE)
/* built against the header before encode-once (the measurement's "before":
   cc -DFANOUT_BASE -I<that header's dir> -I. tests/unit_pmd_shared.c), which
   has no deflate_runs and never compressed a shared frame */
static uint64_t runs(const rtws_conn *c) {
    (void)c;
    return 0;
}
#else
static uint64_t runs(const rtws_conn *c) {
    rtws_conn_stats st;
    rtws_conn_get_stats(c, &st);
    return st.deflate_runs;
}
#endif

#define NP 9
static peer P[NP];
static const char *NAMES[NP] = {"default", "default2", "off", "bits9", "bits12", "bits15",
                                "takeover", "takeover2", "bits9b"};

static void open_all(void) {
    CHECK(peer_open(&P[0], NAMES[0], &SVC, 0, 0));
    CHECK(peer_open(&P[1], NAMES[1], &SVC, 0, 0));
    CHECK(peer_open(&P[2], NAMES[2], &SVC, 1, 0));
    CHECK(peer_open(&P[3], NAMES[3], &SVC, 0, 9));
    CHECK(peer_open(&P[4], NAMES[4], &SVC, 0, 12));
    CHECK(peer_open(&P[5], NAMES[5], &SVC, 0, 15));
    CHECK(peer_open(&P[6], NAMES[6], &SVC_TAKE, 0, 0));
    CHECK(peer_open(&P[7], NAMES[7], &SVC_TAKE, 0, 0));
    CHECK(peer_open(&P[8], NAMES[8], &SVC, 0, 9));
    CHECK(!P[2].deflate);
}

static void close_all(void) {
    int i;
    for (i = 0; i < NP; i++) {
        rtws_conn_free(&P[i].cl);
        rtws_conn_free(&P[i].sv);
    }
}

static uint64_t total_runs(void) {
    uint64_t n = 0;
    int i;
    for (i = 0; i < NP; i++) n += runs(&P[i].sv);
    return n;
}

/* Sends s to every peer, then delivers: every one must get msg[0..len), and
   the first frame byte says whether it came compressed (RSV1). compressed:
   which peers must see RSV1 (bit i). Returns the bytes on the wire. */
static size_t fan(rtws_shared *s, const uint8_t *msg, size_t len, unsigned compressed, int release_first) {
    size_t total = 0, pend = 0;
    int i;
    for (i = 0; i < NP; i++) {
        P[i].log.msgs = 0;
        CHECK_EQ(rtws_conn_send_shared(&P[i].sv, s), RTWS_OK);
        pend += rtws_conn_out_pending(&P[i].sv);
    }
    /* the budget carries the bytes queued, compressed or not */
    CHECK_EQ(BUDGET.used >= pend, 1);
    if (release_first) rtws_shared_release(s);
    for (i = 0; i < NP; i++) {
        size_t n = drain(&P[i].sv, wire, sizeof wire);
        int want = (compressed >> i) & 1;
        total += n;
        CHECK(n > 0);
        if (!n) continue;
        if ((wire[0] & 0x40) != (want ? 0x40 : 0)) printf("  peer %s: rsv1 %d, wanted %d\n", P[i].name, !!(wire[0] & 0x40), want);
        CHECK_EQ(wire[0] & 0x40, want ? 0x40 : 0);
        if (want) CHECK(n < len);
        rtws_conn_recv(&P[i].cl, wire, n, 0, NULL);
        CHECK_EQ(P[i].log.msgs, 1);
        CHECK_EQ(P[i].log.msg_len, len);
        CHECK(P[i].log.msg_len == len && memcmp(P[i].log.msg, msg, len) == 0);
        CHECK_EQ(rtws_conn_get_state(&P[i].cl), RTWS_STATE_OPEN);
    }
    if (!release_first) rtws_shared_release(s);
    return total;
}

static size_t json_like(uint8_t *buf, size_t len) {
    size_t n = 0;
    int k = 0;
    while (n < len) {
        char item[96];
        int m = snprintf(item, sizeof item, "{\"id\":%d,\"user\":\"user-%d\",\"status\":\"%s\"},", k,
                         (k * 37) % 101, (k % 3) ? "online" : "away");
        size_t c = (size_t)m < len - n ? (size_t)m : len - n;
        memcpy(buf + n, item, c);
        n += c;
        k++;
    }
    return n;
}

#if !defined(FANOUT_BASE)
static uint8_t MSG[65536];

/* the mix: one compression per distinct window key, takeover ones each
   their own, everybody inflates the same bytes */
static void test_mix(void) {
    rtws_allocator a;
    rtws_shared *s;
    uint64_t r0, r1;
    unsigned deflaters = 0x1ff & ~(1u << 2); /* all but "off" */
    int i;
    a.alloc = s_alloc;
    a.realloc = s_realloc;
    a.free = s_free;
    a.user = NULL;
    open_all();

    /* 3000 bytes: window 9 gets a copy of its own; the default (15), 12 and
       15 share one made with a 12-bit window (the message fits 4 KiB) */
    json_like(MSG, 3000);
    r0 = total_runs();
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 3000);
    CHECK(s != NULL);
    fan(s, MSG, 3000, deflaters, 0);
    r1 = total_runs();
    CHECK_EQ(r1 - r0, 2 + 2); /* keys {9, 12} + the two takeover connections */
    /* the first no-takeover connection of each key compressed, the rest did not */
    CHECK_EQ(runs(&P[0].sv), 1); /* made the 12-bit copy... */
    CHECK_EQ(runs(&P[1].sv), 0); /* ...which these found */
    CHECK_EQ(runs(&P[4].sv), 0);
    CHECK_EQ(runs(&P[5].sv), 0);
    CHECK_EQ(runs(&P[3].sv), 1); /* made the 9-bit copy */
    CHECK_EQ(runs(&P[8].sv), 0);
    CHECK_EQ(sh_live, 0); /* frame and copies freed with the last queue */
    {
        rtws_conn_stats st;
        rtws_conn_get_stats(&P[1].sv, &st);
        CHECK_EQ(st.bytes_out, 3000); /* the payload, as sent */
        CHECK_EQ(st.msgs_out, 1);
    }

    /* 40,000 bytes: windows 9, 12 and 15 are three keys (the default is 15) */
    json_like(MSG, 40000);
    r0 = total_runs();
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 40000);
    fan(s, MSG, 40000, deflaters, 1); /* released before the queues drain */
    CHECK_EQ(total_runs() - r0, 3 + 2);
    CHECK_EQ(sh_live, 0);

    /* the takeover connections keep their window across shared messages:
       a second one inflates too (and compresses better) */
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 40000);
    r0 = total_runs();
    fan(s, MSG, 40000, deflaters, 0);
    CHECK_EQ(total_runs() - r0, 3 + 2);

    /* short: under deflate_threshold (64) nobody compresses */
    r0 = total_runs();
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 63);
    fan(s, MSG, 63, 0, 0);
    CHECK_EQ(total_runs(), r0);

    /* opted out: plain for all */
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 40000);
    rtws_shared_set_flags(s, RTWS_SEND_UNCOMPRESSED);
    fan(s, MSG, 40000, 0, 0);
    CHECK_EQ(total_runs(), r0);
    /* and back in */
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 40000);
    rtws_shared_set_flags(s, RTWS_SEND_UNCOMPRESSED);
    rtws_shared_set_flags(s, 0);
    fan(s, MSG, 40000, deflaters, 0);
    CHECK_EQ(total_runs() - r0, 3 + 2);

    /* noise does not shrink: the first connection tries, and once marked
       nobody tries again, the takeover connections (later in the list)
       neither */
    for (i = 0; i < 5000; i++) MSG[i] = (uint8_t)(rand() >> 7);
    r0 = total_runs();
    s = rtws_shared_new(&a, RTWS_OP_BINARY, MSG, 5000);
    fan(s, MSG, 5000, 0, 0);
    CHECK_EQ(total_runs() - r0, 1);

    CHECK_EQ(sh_live, 0);
    close_all();
    CHECK_EQ(BUDGET.used, 0);
}

/* a shared frame dropped by its owner first while copies are queued, and a
   connection freed with a copy still queued */
static void test_lifetimes(void) {
    rtws_allocator a;
    rtws_shared *s;
    a.alloc = s_alloc;
    a.realloc = s_realloc;
    a.free = s_free;
    a.user = NULL;
    open_all();
    json_like(MSG, 2000);
    s = rtws_shared_new(&a, RTWS_OP_TEXT, MSG, 2000);
    CHECK_EQ(rtws_conn_send_shared(&P[0].sv, s), RTWS_OK);
    CHECK_EQ(rtws_conn_send_shared(&P[3].sv, s), RTWS_OK);
    CHECK_EQ(sh_live, 3); /* the frame, a 11-bit copy, a 9-bit copy */
    rtws_conn_free(&P[0].sv); /* its copy goes with it */
    CHECK_EQ(sh_live, 2);
    CHECK_EQ(rtws_conn_send_shared(&P[1].sv, s), RTWS_OK); /* a new 11-bit copy */
    CHECK_EQ(runs(&P[1].sv), 1);
    rtws_shared_release(s);
    CHECK_EQ(sh_live, 2); /* the frame is gone, its copies live on in their queues */
    {
        size_t k = drain(&P[3].sv, wire, sizeof wire);
        CHECK_EQ(wire[0], 0xc1);
        rtws_conn_recv(&P[3].cl, wire, k, 0, NULL);
        CHECK(P[3].log.msg_len == 2000 && memcmp(P[3].log.msg, MSG, 2000) == 0);
        CHECK_EQ(sh_live, 1);
    }
    CHECK_EQ(rtws_conn_send_shared(&P[1].sv, NULL), RTWS_ERR_INVALID);
    rtws_conn_free(&P[1].sv);
    rtws_conn_free(&P[3].sv);
    CHECK_EQ(sh_live, 0);
    rtws_conn_init(&P[0].sv, &SVC); /* close_all frees them again */
    rtws_conn_init(&P[1].sv, &SVC);
    rtws_conn_init(&P[3].sv, &SVC);
    close_all();
}

#endif /* !FANOUT_BASE */

/* ---- the router: one publish, many subscribers ---- */

static rtws_router *R;
static rtws_config RSC;

typedef struct sub {
    rtws_conn cl, sv;
    ev_log log;
} sub;

static void rsv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    rtws_router_handle_event(R, c, ev, 1000);
}
static int rsv_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    (void)proto;
    (void)user;
    return rtws_router_handle_accept(R, c, req, 1000);
}

static void sub_open(sub *p, rtws_config *cc, int off) {
    rtws_client_opts o;
    memset(cc, 0, sizeof *cc);
    cc->role = RTWS_CLIENT;
    cc->on_event = on_event;
    cc->user = &p->log;
    cc->random = rnd;
    cc->heartbeat_off = 1;
    cc->deflate_off = off;
    rtws_conn_init(&p->cl, cc);
    rtws_conn_init(&p->sv, &RSC);
    memset(&o, 0, sizeof o);
    o.host = "x";
    o.path = "/ws";
    rtws_conn_start(&p->cl, &o, 1000);
    pump(&p->cl, &p->sv);
    pump(&p->sv, &p->cl);
    rtws_conn_send_text(&p->cl, "{\"type\":\"subscribe\",\"channel\":\"room\"}", 37);
    pump(&p->cl, &p->sv);
    pump(&p->sv, &p->cl);
}

/* Publishes a ~300-byte JSON message to n subscribers (every 10th without
   deflate; takeover: the server keeps its window); prints the bytes on the
   wire and compressor runs of the publish. */
static void router_fanout(int n, int takeover, int check) {
    rtws_router_config rc;
    static sub subs[1000];
    static rtws_config ccs[1000];
    const char *data = "{\"text\":\"Deploy finished: api-gateway v2.14.3 rolled out to eu-west-1 "
                       "(12/12 pods healthy), p99 latency 41 ms, error rate 0.02%\",\"author\":"
                       "{\"id\":\"u-1842\",\"name\":\"release-bot\"},\"tags\":[\"deploy\",\"prod\"]}";
    uint64_t r0 = 0, r1 = 0, seq;
    size_t wire_total = 0, plain_frame = 0, got = 0, zframes = 0;
    int i;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.random = rnd;
    R = rtws_router_new(&rc);
    memset(&RSC, 0, sizeof RSC);
    RSC.role = RTWS_SERVER;
    RSC.on_event = rsv_event;
    RSC.on_accept = rsv_accept;
    RSC.heartbeat_off = 1;
    RSC.deflate_takeover = takeover;
    RSC.budget = rtws_router_get_budget(R);
    for (i = 0; i < n; i++) sub_open(&subs[i], &ccs[i], i % 10 == 9);
    for (i = 0; i < n; i++) { /* the presence events of later joins */
        pump(&subs[i].sv, &subs[i].cl);
        r0 += runs(&subs[i].sv);
        subs[i].log.msgs = 0;
    }
    seq = rtws_router_publish(R, "room", "note", data, strlen(data), NULL, 1000);
    CHECK(seq > 0);
    for (i = 0; i < n; i++) {
        size_t k = drain(&subs[i].sv, wire, sizeof wire);
        r1 += runs(&subs[i].sv);
        wire_total += k;
        if (k && (wire[0] & 0x40)) zframes++;
        if (i % 10 == 9) {
            plain_frame = k;
            if (check) CHECK_EQ(wire[0] & 0x40, 0);
        } else if (check) {
            CHECK_EQ(wire[0] & 0x40, 0x40);
        }
        rtws_conn_recv(&subs[i].cl, wire, k, 1000, NULL);
    }
    /* every subscriber inflated what the plain one got, the whole frame's payload */
    for (i = 0; i < n; i++)
        got += subs[i].log.msgs == 1 && subs[i].log.msg_len == subs[9].log.msg_len &&
               subs[i].log.msg_len == plain_frame - 4 &&
               memcmp(subs[i].log.msg, subs[9].log.msg, subs[9].log.msg_len) == 0 &&
               strstr((const char *)subs[i].log.msg, "api-gateway v2.14.3") != NULL;
    printf("router publish (data %zu bytes, a %zu-byte frame) to %d subscribers (%d with "
           "deflate, deflate_takeover = %d): %zu compressed frames, %zu bytes on the wire, %llu "
           "compressor runs\n",
           strlen(data), plain_frame, n, n - n / 10, takeover, zframes, wire_total,
           (unsigned long long)(r1 - r0));
    if (check) {
        CHECK_EQ(got, (size_t)n);
        CHECK_EQ(zframes, (size_t)(n - n / 10));
        CHECK_EQ(r1 - r0, takeover ? (uint64_t)(n - n / 10) : 1u);
        CHECK(wire_total < (size_t)n * plain_frame);
    }
    for (i = 0; i < n; i++) {
        rtws_conn_recv_eof(&subs[i].sv, 1000);
        rtws_conn_free(&subs[i].cl);
        rtws_conn_free(&subs[i].sv);
    }
    rtws_router_free(R);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    memset(&SVC, 0, sizeof SVC);
    rtws_budget_init(&BUDGET, 0);
    SVC.role = RTWS_SERVER;
    SVC.heartbeat_off = 1;
    SVC.budget = &BUDGET;
    SVC_TAKE = SVC;
    SVC_TAKE.deflate_takeover = 1;
#if defined(FANOUT_BASE)
    router_fanout(n, 0, 0);
#else
    test_mix();
    test_lifetimes();
    router_fanout(n, 0, 1);
    router_fanout(n, 1, 1);
#endif
    return T_END();
}
