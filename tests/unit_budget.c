/* The memory budget (issue 15): rtws_budget's accounting and levels, and a
   sans-I/O connection charging its send queue to one, the global cap on
   queued output that closes the largest queue with 1013; and its receive
   buffers, asked for before they grow (a growth that does not fit closes
   its own connection with 1013). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static uint64_t NOW = 1000;

typedef struct pair {
    rtws_conn cl, sv;
    unsigned close_code;
    int closed;
    size_t got;
} pair;

static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    pair *p = (pair *)user;
    (void)c;
    if (ev->type == RTWS_EV_MESSAGE) p->got += ev->message.len;
    if (ev->type == RTWS_EV_CLOSE) {
        p->closed = 1;
        p->close_code = ev->close.code;
    }
}

static int rnd(void *buf, size_t n, void *u) {
    static unsigned s = 9;
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) ((unsigned char *)buf)[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
    return 0;
}

/* moves at most max bytes from a's output to b */
static void move(rtws_conn *a, rtws_conn *b, size_t max) {
    const uint8_t *o;
    size_t len;
    static uint8_t tmp[1 << 16];
    while (max && (o = rtws_conn_out(a, &len)) != NULL) {
        if (len > sizeof tmp) len = sizeof tmp;
        if (len > max) len = max;
        memcpy(tmp, o, len);
        rtws_conn_out_done(a, len);
        rtws_conn_recv(b, tmp, len, NOW, NULL);
        max -= len;
    }
}

static void open_pair(pair *p, rtws_config *sc) {
    rtws_config cc;
    rtws_client_opts o;
    int i;
    memset(p, 0, sizeof *p);
    memset(&cc, 0, sizeof cc);
    cc.role = RTWS_CLIENT;
    cc.on_event = cl_event;
    cc.user = p;
    cc.random = rnd;
    cc.heartbeat_off = 1;
    cc.deflate_off = 1; /* exact queue bytes; tests/unit_pmd.c charges the extension */
    rtws_conn_init(&p->cl, &cc);
    rtws_conn_init(&p->sv, sc);
    memset(&o, 0, sizeof o);
    o.host = "x";
    rtws_conn_start(&p->cl, &o, NOW);
    for (i = 0; i < 4; i++) {
        move(&p->cl, &p->sv, SIZE_MAX);
        move(&p->sv, &p->cl, SIZE_MAX);
    }
}

static void test_accounting(void) {
    rtws_budget b;
    rtws_budget_init(&b, 800);
    CHECK_EQ(b.limit, 800);
    CHECK_EQ(b.used, 0);
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_OK);
    rtws_budget_charge(&b, 599);
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_OK);
    rtws_budget_charge(&b, 1); /* 600 = 3/4 */
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_NO_NEW);
    rtws_budget_charge(&b, 100); /* 700 = 7/8 */
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_SHED_HISTORY);
    CHECK(rtws_budget_make_room(&b, 100));
    CHECK(!rtws_budget_make_room(&b, 101)); /* no reclaim: refused */
    rtws_budget_charge(&b, 100);
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_FULL);
    rtws_budget_charge(&b, 50); /* charging never refuses */
    CHECK_EQ(b.used, 850);
    CHECK_EQ(b.peak, 850);
    CHECK(!rtws_budget_make_room(&b, 0)); /* over: not even 0 more */
    rtws_budget_credit(&b, 850);
    CHECK_EQ(b.used, 0);
    CHECK_EQ(b.peak, 850);
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_OK);
    rtws_budget_init(&b, 0); /* unlimited: kept, never refused */
    rtws_budget_charge(&b, SIZE_MAX / 4); /* 1 GiB with a 32-bit size_t */
    CHECK(rtws_budget_make_room(&b, SIZE_MAX / 4));
    CHECK_EQ(rtws_budget_get_level(&b), RTWS_BUDGET_OK);
    rtws_budget_charge(&b, SIZE_MAX); /* saturates instead of wrapping */
    CHECK_EQ(b.used, SIZE_MAX);
}

static size_t g_nested, g_inner_fit;
/* a reclaim whose work asks the budget again (as a shed connection's close
   frame does): the inner ask does not run the reclaim a second time */
static void reclaim_nested(rtws_budget *b, size_t need, void *user) {
    (void)user;
    g_nested++;
    g_inner_fit = (size_t)rtws_budget_make_room(b, need);
    rtws_budget_credit(b, 100);
}

static void test_reentry(void) {
    rtws_budget b;
    rtws_budget_init(&b, 1000);
    b.reclaim = reclaim_nested;
    rtws_budget_charge(&b, 950);
    CHECK(rtws_budget_make_room(&b, 100)); /* the reclaim gave 100 back */
    CHECK_EQ(g_nested, 1u);
    CHECK_EQ(g_inner_fit, 0u); /* asked inside, not reclaimed again: no room yet */
    CHECK_EQ(b.used, 850);
    CHECK_EQ(b.in_reclaim_, 0);
}

static size_t g_asked, g_calls;
static pair *g_victim;
static void reclaim_shed(rtws_budget *b, size_t need, void *user) {
    (void)b;
    (void)user;
    g_calls++;
    g_asked = need;
    if (g_victim) rtws__conn_shed(&g_victim->sv);
}

/* b with limit and the reclaim that sheds g_victim; sc a server's config
   charging it */
static void budget_setup(rtws_budget *b, size_t limit, rtws_config *sc) {
    rtws_budget_init(b, limit);
    b->reclaim = reclaim_shed;
    memset(sc, 0, sizeof *sc);
    sc->role = RTWS_SERVER;
    sc->heartbeat_off = 1;
    sc->budget = b;
}

/* a connection's unsent bytes are charged as they queue and given back as
   they go out, by shedding and at free */
static void test_conn_queue(void) {
    rtws_budget b;
    rtws_config sc;
    pair a, z;
    static char big[4000];
    size_t before;
    int i;
    budget_setup(&b, 21000, &sc);
    open_pair(&a, &sc);
    open_pair(&z, &sc);
    CHECK_EQ(rtws_conn_get_state(&a.sv), RTWS_STATE_OPEN);
    CHECK_EQ(b.used, 0); /* the 101s went out */
    memset(big, 'x', sizeof big);
    CHECK_EQ(rtws_conn_send_text(&a.sv, big, sizeof big), RTWS_OK);
    CHECK_EQ(b.used, rtws_conn_out_pending(&a.sv));
    CHECK_EQ(rtws_conn_send_text(&z.sv, big, 1000), RTWS_OK);
    CHECK_EQ(b.used, rtws_conn_out_pending(&a.sv) + rtws_conn_out_pending(&z.sv));
    move(&z.sv, &z.cl, 500); /* half out: the segment is held until all of it went */
    CHECK_EQ(b.used, a.sv.priv_.qbytes + z.sv.priv_.qbytes);
    CHECK(rtws_conn_out_pending(&z.sv) < z.sv.priv_.qbytes);
    move(&z.sv, &z.cl, SIZE_MAX);
    CHECK_EQ(z.got, 1000u);
    CHECK_EQ(b.used, rtws_conn_out_pending(&a.sv));
    /* a's client never reads: a grows until the budget is hit */
    for (i = 0; i < 4; i++) CHECK_EQ(rtws_conn_send_text(&a.sv, big, sizeof big), RTWS_OK);
    CHECK(b.used > 20000 && b.used <= 21000);
    CHECK_EQ(g_calls, 0u);
    /* z's next send would pass the cap: reclaim is asked, sheds a (the
       largest queue), and z's send fits */
    g_victim = &a;
    before = b.used;
    CHECK_EQ(rtws_conn_send_text(&z.sv, big, sizeof big), RTWS_OK);
    CHECK_EQ(g_calls, 1u);
    CHECK_EQ(g_asked, sizeof big + RTWS_FRAME_HEADER_MAX); /* its header asked for too */
    CHECK(b.used < before);
    CHECK_EQ(rtws_conn_get_state(&a.sv), RTWS_STATE_CLOSING);
    CHECK_EQ(rtws_conn_send_text(&a.sv, "x", 1), RTWS_ERR_CLOSED);
    /* the client gets what had started (nothing) and the 1013 */
    move(&a.sv, &a.cl, SIZE_MAX);
    CHECK(a.closed);
    CHECK_EQ(a.close_code, 1013u);
    CHECK(a.got < 5 * sizeof big); /* the unsent data was dropped, not sent */
    /* no reclaim left to help: a send over the cap fails with LIMIT */
    g_victim = NULL;
    b.limit = b.used + 10;
    CHECK_EQ(rtws_conn_send_text(&z.sv, big, 100), RTWS_ERR_LIMIT);
    CHECK_EQ(rtws_conn_get_state(&z.sv), RTWS_STATE_OPEN);
    b.limit = 21000;
    CHECK_EQ(rtws_conn_send_text(&z.sv, big, 100), RTWS_OK);
    /* shared frames count per queue */
    {
        rtws_shared *sh = rtws_shared_new(NULL, RTWS_OP_TEXT, big, 300);
        before = b.used;
        CHECK_EQ(rtws_conn_send_shared(&z.sv, sh), RTWS_OK);
        CHECK_EQ(b.used, before + 304); /* 4-byte header */
        rtws_shared_release(sh);
    }
    rtws_conn_free(&a.sv);
    rtws_conn_free(&z.sv);
    CHECK_EQ(b.used, 0); /* everything given back */
    CHECK(b.peak > 20000 && b.peak <= 21000);
    rtws_conn_free(&a.cl);
    rtws_conn_free(&z.cl);
}

static size_t rx_bytes(const rtws_conn *c) { return c->priv_.rcap + c->priv_.mcap; }

/* The receive buffers are charged as they grow, before: the budget's peak
   never passes its limit for them. (They used to be counted by the host's
   timer pass, after they had grown: the peak could pass the limit by what
   grew in between.) */
static void test_conn_recv(void) {
    rtws_budget b;
    rtws_config sc;
    pair a, z;
    static char big[50000];
    size_t lim;
    int i;
    budget_setup(&b, 40000, &sc);
    sc.deflate_off = 1;
    g_calls = 0;
    g_victim = NULL;
    open_pair(&a, &sc);
    open_pair(&z, &sc);
    CHECK_EQ(b.used, 0); /* the handshakes were read in place: no buffer */
    memset(big, 'y', sizeof big);
    /* a 10,000-byte message: a receive buffer for it, charged */
    CHECK_EQ(rtws_conn_send_binary(&a.cl, big, 10000), RTWS_OK);
    move(&a.cl, &a.sv, SIZE_MAX);
    CHECK(rx_bytes(&a.sv) >= 10000);
    CHECK_EQ(b.used, rx_bytes(&a.sv));
    CHECK_EQ(g_calls, 0u);
    /* a message in fragments reassembles in mbuf: charged too */
    CHECK_EQ(rtws_conn_send_frame(&a.cl, RTWS_OP_BINARY, big, 3000, 0), RTWS_OK);
    CHECK_EQ(rtws_conn_send_frame(&a.cl, RTWS_OP_CONT, big, 3000, 1), RTWS_OK);
    move(&a.cl, &a.sv, SIZE_MAX);
    CHECK(a.sv.priv_.mcap >= 6000);
    CHECK_EQ(b.used, rx_bytes(&a.sv));
    rtws_conn_trim(&a.sv); /* idle: both go back */
    CHECK_EQ(rx_bytes(&a.sv), 0u);
    CHECK_EQ(b.used, 0);
    /* z's client never reads: its queue takes most of the budget */
    for (i = 0; i < 7; i++) CHECK_EQ(rtws_conn_send_binary(&z.sv, big, 4000), RTWS_OK);
    CHECK(b.used > 28000);
    /* a 20,000-byte message does not fit beside it: the budget's reclaim
       sheds z (1013), and a's buffer grows */
    g_victim = &z;
    CHECK_EQ(rtws_conn_send_binary(&a.cl, big, 20000), RTWS_OK);
    move(&a.cl, &a.sv, SIZE_MAX);
    CHECK_EQ(g_calls, 1u);
    CHECK_EQ(rtws_conn_get_state(&z.sv), RTWS_STATE_CLOSING);
    CHECK_EQ(rtws_conn_get_state(&a.sv), RTWS_STATE_OPEN);
    CHECK(rx_bytes(&a.sv) >= 20000);
    CHECK_EQ(b.used, rx_bytes(&a.sv) + z.sv.priv_.qbytes);
    CHECK(b.peak <= b.limit);
    /* nothing left to shed: a message that needs more than the room left
       closes its own connection with 1013, nothing grows */
    g_victim = NULL;
    rtws_conn_trim(&a.sv);
    lim = b.used + 30000;
    b.limit = lim;
    CHECK_EQ(rtws_conn_send_binary(&a.cl, big, 40000), RTWS_OK);
    move(&a.cl, &a.sv, SIZE_MAX);
    CHECK_EQ(rtws_conn_get_state(&a.sv), RTWS_STATE_CLOSED);
    CHECK_EQ(rtws_conn_get_error(&a.sv), RTWS_ERR_LIMIT);
    CHECK(rx_bytes(&a.sv) <= 30000);
    CHECK(b.used <= lim);
    CHECK(b.peak <= 40000);
    move(&a.sv, &a.cl, SIZE_MAX);
    CHECK(a.closed);
    CHECK_EQ(a.close_code, 1013u);
    rtws_conn_free(&a.sv);
    rtws_conn_free(&z.sv);
    CHECK_EQ(b.used, 0); /* everything given back */
    rtws_conn_free(&a.cl);
    rtws_conn_free(&z.cl);
}

int main(void) {
    test_accounting();
    test_reentry();
    test_conn_queue();
    test_conn_recv();
    return T_END();
}
