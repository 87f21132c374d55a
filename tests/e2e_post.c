/* Sending from other threads (rtws_ctx_post*, layer 4) over real sockets on
   127.0.0.1: producer threads post to connections of a context whose loop
   runs on the main thread; the receiving ends are client connections of the
   same context. Built twice by make: under ASan+UBSan (build/e2e_post) and
   under ThreadSanitizer (build/tsan_e2e_post, run by tests/interop_tsan.sh).

   usage: e2e_post [messages per producer]   (default 100000; E2E_POST_N too)

   Scenarios: 4 producers x N messages to 100 connections, every message
   delivered once and in per-producer order (two producers hand their bytes
   over, two have them copied); a connection closed by a posted close while
   every producer keeps posting to it; a stale id whose fd was reused; queue
   full and the other refusals; the wake-up in the three loop styles; the
   context freed with posts still queued after the producers stopped. (A
   post after rtws_ctx_free is undefined and not tested.) Every loop is
   bounded in time. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NPROD 4
#define NCONN 100
#define AINC(p) __atomic_fetch_add((p), 1, __ATOMIC_SEQ_CST)
#define ALOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ASTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* ---- the receiving side: client connections checking the order ---- */
typedef struct rx {
    int k;                 /* which connection: sent to the server as a hello */
    uint32_t next[NPROD];  /* the next seq expected from each producer */
    int got, bad, open, closed;
    unsigned close_code;
} rx;

/* the loop's view, touched on the main thread only */
typedef struct world {
    uint64_t ids[NCONN];   /* server-side connection ids, by client index */
    int nids;
    long received;         /* messages at the clients */
    long dropped_by_prod[NPROD];
    uint64_t drop_id;      /* the id drops are expected for (0: any) */
    int drop_wrong;        /* drops for another id, or with an unexpected error */
    long drops;
    long owned_freed;
    int port;              /* mk_world's listener */
} world;

static world W;

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A message: producer, connection index, seq of (producer, connection). */
static void mk_msg(uint8_t m[8], int p, int k, uint32_t seq) {
    m[0] = (uint8_t)p;
    m[1] = 0xA5;
    m[2] = (uint8_t)k;
    m[3] = (uint8_t)(k >> 8);
    put32(m + 4, seq);
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (rtws_conn_get_config(c)->role == RTWS_SERVER) {
        /* the hello names the client: remember this end's id for it */
        if (ev->type == RTWS_EV_MESSAGE && ev->message.len == 2) {
            int k = ev->message.data[0] | ev->message.data[1] << 8;
            if (k >= 0 && k < NCONN && !W.ids[k]) {
                W.ids[k] = rtws_conn_get_id(c);
                W.nids++;
            }
        }
        return;
    }
    {
        rx *r = (rx *)rtws_conn_get_data(c);
        uint8_t hello[2];
        if (!r) return;
        switch (ev->type) {
        case RTWS_EV_OPEN:
            r->open = 1;
            hello[0] = (uint8_t)r->k;
            hello[1] = (uint8_t)(r->k >> 8);
            rtws_conn_send_binary(c, hello, 2);
            break;
        case RTWS_EV_MESSAGE: {
            const uint8_t *m = ev->message.data;
            int p = m[0];
            W.received++;
            r->got++;
            if (ev->message.len != 8 || p >= NPROD || m[1] != 0xA5 || (m[2] | m[3] << 8) != r->k ||
                get32(m + 4) != r->next[p])
                r->bad++;
            else
                r->next[p]++;
            break;
        }
        case RTWS_EV_CLOSE:
            r->closed = 1;
            r->close_code = ev->close.code;
            break;
        default: break;
        }
    }
}

static void on_dropped(rtws_ctx *ctx, const rtws_post_dropped *d, void *user) {
    (void)ctx, (void)user;
    W.drops++;
    if ((W.drop_id && d->conn_id != W.drop_id) || d->err != RTWS_ERR_CLOSED) W.drop_wrong++;
    if (d->op == RTWS_OP_BINARY && d->len == 8 && d->data[0] < NPROD) W.dropped_by_prod[d->data[0]]++;
}

static void owned_free(void *data, void *user) {
    (void)user;
    free(data);
    W.owned_freed++;
}

/* A context listening on 127.0.0.1 with n client connections to itself,
   each told its index; returns once every server end is known (W.ids). */
static rtws_ctx *mk_world(int n, rx *rs, size_t qmax) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    int port = 0, i;
    char url[64];
    uint64_t end;
    memset(&W, 0, sizeof W);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.timer_ms = 20;
    cfg.post_queue_max = qmax;
    cfg.on_post_dropped = on_dropped;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    if (!ctx) return NULL;
    CHECK(rtws_ctx_listen(ctx, "127.0.0.1", 0, &port) == RTWS_OK);
    W.port = port;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (i = 0; i < n; i++) {
        rtws_conn *c = rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), NULL);
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].k = i;
        CHECK(c != NULL);
        if (c) rtws_conn_set_data(c, &rs[i]);
    }
    end = rtws_time_now_ms() + 20000;
    while (W.nids < n && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 20);
    CHECK_EQ(W.nids, n);
    return ctx;
}

/* ---- producers ---- */
typedef struct prod {
    pthread_t th;
    rtws_ctx *ctx;
    int p, owned, n, nconn;
    const uint64_t *ids;
    long refused, errors;
    /* the close scenario: conn 0 is the victim, producer 0 closes it after close_at */
    int close_at;
    long victim_posted;
    /* the free scenario: after the n messages wait for *gate, then post tail more */
    int tail, *gate, *phase_done;
} prod;

/* posts message seq of producer pr to connection k (id), or with close set a
   close of 1000 "bye"; a full queue (RTWS_ERR_LIMIT) is tried again */
static void post_one_or_close(prod *pr, uint64_t id, int k, uint32_t seq, int close) {
    long tries = 0;
    uint64_t give_up = 0;
    for (;;) {
        rtws_err e;
        if (close) {
            e = rtws_ctx_post_close(pr->ctx, id, 1000, "bye");
        } else if (pr->owned) {
            uint8_t *m = (uint8_t *)malloc(8);
            if (!m) {
                pr->errors++;
                return;
            }
            mk_msg(m, pr->p, k, seq);
            e = rtws_ctx_post_owned(pr->ctx, id, RTWS_OP_BINARY, m, 8, owned_free, NULL);
            if (e != RTWS_OK) free(m); /* not handed over */
        } else {
            uint8_t m[8];
            mk_msg(m, pr->p, k, seq);
            e = rtws_ctx_post(pr->ctx, id, RTWS_OP_BINARY, m, 8);
        }
        if (e == RTWS_OK) return;
        if (e != RTWS_ERR_LIMIT) {
            pr->errors++;
            return;
        }
        pr->refused++; /* full: let the loop run, then again */
        if ((++tries & 1023) == 0) { /* but never forever: a stuck loop fails the test */
            if (!give_up) give_up = rtws_time_now_ms() + 60000;
            else if (rtws_time_now_ms() > give_up) {
                pr->errors++;
                return;
            }
        }
        sched_yield();
    }
}

static void post_one(prod *pr, uint64_t id, int k, uint32_t seq) {
    post_one_or_close(pr, id, k, seq, 0);
}

static int started; /* producers begin together */

static void *producer(void *arg) {
    prod *pr = (prod *)arg;
    int i;
    AINC(&started);
    while (ALOAD(&started) < NPROD) sched_yield();
    for (i = 0; i < pr->n; i++) {
        int k = i % pr->nconn;
        if (pr->close_at && pr->p == 0 && i == pr->close_at * pr->nconn)
            post_one_or_close(pr, pr->ids[0], 0, 0, 1); /* a full queue takes it later */
        post_one(pr, pr->ids[k], k, (uint32_t)(i / pr->nconn));
        if (k == 0) pr->victim_posted++;
    }
    if (pr->gate) {
        AINC(pr->phase_done);
        while (!ALOAD(pr->gate)) sched_yield();
        for (i = 0; i < pr->tail; i++) {
            int k = (pr->n + i) % pr->nconn;
            post_one(pr, pr->ids[k], k, (uint32_t)((pr->n + i) / pr->nconn));
        }
    }
    return NULL;
}

static void start(prod *ps, rtws_ctx *ctx, int n, int nconn) {
    int p;
    for (p = 0; p < NPROD; p++) {
        memset(&ps[p], 0, sizeof ps[p]);
        ps[p].ctx = ctx;
        ps[p].p = p;
        ps[p].owned = p & 1;
        ps[p].n = n;
        ps[p].nconn = nconn;
        ps[p].ids = W.ids;
    }
}
static void launch(prod *ps) {
    int p;
    ASTORE(&started, 0);
    for (p = 0; p < NPROD; p++) CHECK(pthread_create(&ps[p].th, NULL, producer, &ps[p]) == 0);
}
static void join(prod *ps) {
    int p;
    for (p = 0; p < NPROD; p++) {
        pthread_join(ps[p].th, NULL);
        CHECK_EQ(ps[p].errors, 0);
    }
}

/* 4 producers x n messages to NCONN connections: each delivered once, in order */
static void test_many(int n) {
    static rx rs[NCONN];
    prod ps[NPROD];
    rtws_post_stats st;
    rtws_ctx *ctx = mk_world(NCONN, rs, 4096);
    long total = (long)NPROD * n, refused = 0;
    int k, p, bad = 0, order = 1;
    uint64_t t0, end;
    if (!ctx) return;
    start(ps, ctx, n, NCONN);
    t0 = rtws_time_now_ms();
    end = t0 + 120000;
    launch(ps);
    while (W.received < total && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 50);
    join(ps);
    for (k = 0; k < NCONN; k++) {
        bad += rs[k].bad;
        for (p = 0; p < NPROD; p++)
            if ((long)rs[k].next[p] != n / NCONN + (k < n % NCONN)) order = 0;
    }
    for (p = 0; p < NPROD; p++) refused += ps[p].refused;
    rtws_ctx_get_post_stats(ctx, &st);
    printf("many: %d producers x %d messages to %d connections in %llu ms (%llu wake-ups, "
           "%llu passes with posts, %ld full-queue retries)\n",
           NPROD, n, NCONN, (unsigned long long)(rtws_time_now_ms() - t0),
           (unsigned long long)st.wakeups, (unsigned long long)st.batches, refused);
    CHECK_EQ(W.received, total);
    CHECK_EQ(bad, 0);
    CHECK(order);
    CHECK_EQ(st.taken, total);
    CHECK_EQ(st.delivered, total);
    CHECK_EQ(st.dropped, 0);
    CHECK_EQ(W.drops, 0);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.refused, refused);
    CHECK(st.wakeups > 0 && st.wakeups <= st.batches + 1);
    CHECK_EQ(W.owned_freed, total / 2); /* producers 1 and 3 */
    rtws_ctx_free(ctx);
}

/* a connection closed (by a posted close) while every producer posts to it */
static void test_close_while_posting(int n) {
    static rx rs[2];
    prod ps[NPROD];
    rtws_post_stats st;
    rtws_ctx *ctx = mk_world(2, rs, 512);
    long victim_posted = 0, got = 0;
    int p, i, prefix = 1;
    uint64_t end;
    if (!ctx) return;
    start(ps, ctx, n, 2);
    ps[0].close_at = n / 4; /* after half of its messages to the victim */
    W.drop_id = W.ids[0];
    launch(ps);
    end = rtws_time_now_ms() + 60000;
    while ((W.received < (long)NPROD * (n / 2) + (long)rs[0].got || !rs[0].closed ||
            rtws_ctx_get_conn_count(ctx) > 2) &&
           rtws_time_now_ms() < end)
        rtws_ctx_run_once(ctx, 20);
    join(ps);
    for (i = 0; i < 20; i++) rtws_ctx_run_once(ctx, 5); /* what was posted last */
    rtws_ctx_get_post_stats(ctx, &st);
    for (p = 0; p < NPROD; p++) {
        victim_posted += ps[p].victim_posted;
        /* the victim got a prefix of each producer's messages, the rest was dropped */
        if ((long)rs[0].next[p] + W.dropped_by_prod[p] != ps[p].victim_posted) prefix = 0;
        got += rs[0].next[p];
        CHECK_EQ(rs[1].next[p], n / 2); /* the other connection got everything */
    }
    printf("close: the victim got %ld of %ld messages (%u %u %u %u by producer), %ld dropped\n",
           got, victim_posted, rs[0].next[0], rs[0].next[1], rs[0].next[2], rs[0].next[3], W.drops);
    CHECK(prefix);
    CHECK_EQ(rs[0].bad, 0);
    CHECK_EQ(rs[1].bad, 0);
    CHECK_EQ(rs[0].next[0], n / 4); /* what producer 0 posted before its close */
    CHECK(rs[0].closed && rs[0].close_code == 1000);
    CHECK(!rs[1].closed);
    CHECK_EQ(W.drop_wrong, 0);
    CHECK(W.drops >= victim_posted - got && W.drops == (long)st.dropped);
    CHECK_EQ(st.delivered + st.dropped, st.taken);
    CHECK_EQ(st.taken, (uint64_t)NPROD * (uint64_t)n + 1); /* + the close */
    CHECK_EQ(W.owned_freed, 2 * n); /* producers 1 and 3, delivered or dropped */
    rtws_ctx_free(ctx);
}

/* the context freed with posts still queued, after its producers stopped */
static void test_free_after_producers(int n) {
    static rx rs[10];
    prod ps[NPROD];
    rtws_post_stats st;
    rtws_ctx *ctx = mk_world(10, rs, 4096);
    int gate = 0, phase = 0, p;
    long delivered, total = (long)NPROD * (n + 25);
    uint64_t end;
    if (!ctx) return;
    start(ps, ctx, n, 10);
    for (p = 0; p < NPROD; p++) {
        ps[p].gate = &gate;
        ps[p].phase_done = &phase;
        ps[p].tail = 25;
    }
    launch(ps);
    end = rtws_time_now_ms() + 60000;
    while (ALOAD(&phase) < NPROD && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 20);
    /* every producer is at the gate: take what they posted, so the tails fit */
    do {
        rtws_ctx_run_once(ctx, 20);
        rtws_ctx_get_post_stats(ctx, &st);
    } while (st.queued && rtws_time_now_ms() < end);
    CHECK_EQ(st.queued, 0);
    ASTORE(&gate, 1); /* the loop has stopped: the tails stay queued */
    join(ps);
    rtws_ctx_get_post_stats(ctx, &st);
    delivered = (long)st.delivered;
    CHECK_EQ(st.queued, (size_t)NPROD * 25);
    CHECK_EQ((long)st.taken + (long)st.queued, total);
    rtws_ctx_free(ctx); /* reports every queued post dropped, frees owned bytes */
    CHECK_EQ(delivered + W.drops, total);
    CHECK_EQ(W.drop_wrong, 0);
    CHECK_EQ(W.owned_freed, total / 2);
}

/* an id outlives its connection: posts to it are dropped even when a new
   connection got the same fd */
static void test_stale_id(void) {
    static rx rs[2];
    rtws_ctx *ctx = mk_world(1, rs, 64);
    rtws_conn *c;
    rtws_post_stats st;
    char url[64];
    uint64_t old, end;
    uint8_t m[8];
    if (!ctx) return;
    old = W.ids[0];
    CHECK(old != 0 && (old >> 32) != 0);
    CHECK(rtws_ctx_post_close(ctx, old, 1001, NULL) == RTWS_OK);
    end = rtws_time_now_ms() + 10000;
    while (rtws_ctx_get_conn_count(ctx) > 0 && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 20);
    CHECK(rs[0].closed && rs[0].close_code == 1001);
    CHECK_EQ(rtws_ctx_get_conn_count(ctx), 0);
    /* a new pair: its server end may well get the old one's fd */
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", W.port);
    memset(&rs[1], 0, sizeof rs[1]);
    rs[1].k = 1;
    c = rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), NULL);
    CHECK(c != NULL);
    if (c) rtws_conn_set_data(c, &rs[1]);
    end = rtws_time_now_ms() + 10000;
    while (W.nids < 2 && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 20);
    CHECK(W.ids[1] != 0 && W.ids[1] != old);
    if ((W.ids[1] & 0xffffffffu) == (old & 0xffffffffu))
        printf("stale: the new connection reused fd %u\n", (unsigned)(old & 0xffffffffu));
    mk_msg(m, 0, 1, 0);
    W.drop_id = old;
    CHECK(rtws_ctx_post(ctx, old, RTWS_OP_BINARY, m, 8) == RTWS_OK);
    CHECK(rtws_ctx_post(ctx, W.ids[1], RTWS_OP_BINARY, m, 8) == RTWS_OK);
    end = rtws_time_now_ms() + 10000;
    while (rs[1].got < 1 && rtws_time_now_ms() < end) rtws_ctx_run_once(ctx, 20);
    rtws_ctx_get_post_stats(ctx, &st);
    CHECK_EQ(rs[1].got, 1);
    CHECK_EQ(rs[1].bad, 0);
    CHECK_EQ(W.drops, 1);
    CHECK_EQ(W.drop_wrong, 0);
    CHECK_EQ(st.dropped, 1);
    rtws_ctx_free(ctx);
}

/* queue full, and the other refusals, with no loop running */
static void test_refusals(void) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx, *off;
    rtws_post_stats st;
    uint8_t big[200], *own;
    char reason[130];
    int i, ok = 1;
    memset(&W, 0, sizeof W);
    memset(&cfg, 0, sizeof cfg);
    memset(big, 'x', sizeof big);
    cfg.post_queue_max = 8;
    cfg.post_queue_max_bytes = 100;
    cfg.on_post_dropped = on_dropped;
    W.drop_id = 12345;
    ctx = rtws_ctx_new(&cfg);
    off = rtws_ctx_new(NULL);
    CHECK(ctx != NULL && off != NULL);
    if (!ctx || !off) return;
    /* posting off: INVALID; a context with only the wake-up fd counts 0 sockets */
    CHECK(rtws_ctx_post(off, 1, RTWS_OP_BINARY, big, 1) == RTWS_ERR_INVALID);
    CHECK(rtws_ctx_post_close(off, 1, 1000, NULL) == RTWS_ERR_INVALID);
    CHECK_EQ(rtws_ctx_run_once(ctx, 0), 0);
    CHECK_EQ(rtws_ctx_fill_pollfds(ctx, NULL, 0), 1);
    /* bad arguments */
    CHECK(rtws_ctx_post(ctx, 1, RTWS_OP_CLOSE, big, 1) == RTWS_ERR_INVALID);
    CHECK(rtws_ctx_post(ctx, 1, RTWS_OP_BINARY, NULL, 1) == RTWS_ERR_INVALID);
    CHECK(rtws_ctx_post(ctx, 1, RTWS_OP_TEXT, "\xff", 1) == RTWS_ERR_UTF8);
    CHECK(rtws_ctx_post_close(ctx, 1, 999, NULL) == RTWS_ERR_INVALID);
    CHECK(rtws_ctx_post_close(ctx, 1, 0, "reason without a code") == RTWS_ERR_INVALID);
    memset(reason, 'r', sizeof reason);
    reason[124] = '\0';
    CHECK(rtws_ctx_post_close(ctx, 1, 1000, reason) == RTWS_ERR_INVALID);
    /* the message bound */
    for (i = 0; i < 8; i++) ok &= rtws_ctx_post(ctx, 12345, RTWS_OP_BINARY, big, 1) == RTWS_OK;
    CHECK(ok);
    CHECK(rtws_ctx_post(ctx, 12345, RTWS_OP_BINARY, big, 1) == RTWS_ERR_LIMIT);
    CHECK(rtws_ctx_post_close(ctx, 12345, 1000, NULL) == RTWS_ERR_LIMIT);
    CHECK(strstr(rtws_err_str(RTWS_ERR_LIMIT), "post_queue_max") != NULL);
    rtws_ctx_get_post_stats(ctx, &st);
    CHECK_EQ(st.queued, 8);
    CHECK_EQ(st.refused, 2);
    /* the loop takes them: to no connection, so all are dropped and reported */
    rtws_ctx_run_timers(ctx, rtws_time_now_ms());
    rtws_ctx_get_post_stats(ctx, &st);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.taken, 8);
    CHECK_EQ(st.dropped, 8);
    CHECK_EQ(W.drops, 8);
    CHECK_EQ(W.drop_wrong, 0);
    /* the byte bound */
    CHECK(rtws_ctx_post(ctx, 12345, RTWS_OP_BINARY, big, 101) == RTWS_ERR_LIMIT);
    CHECK(rtws_ctx_post(ctx, 12345, RTWS_OP_BINARY, big, 60) == RTWS_OK);
    CHECK(rtws_ctx_post(ctx, 12345, RTWS_OP_BINARY, big, 60) == RTWS_ERR_LIMIT);
    CHECK(rtws_ctx_post(ctx, 12345, RTWS_OP_TEXT, "hello", 5) == RTWS_OK);
    /* handed over: freed (and reported) when the context is freed */
    own = (uint8_t *)malloc(8);
    CHECK(own != NULL);
    if (own) {
        memset(own, 1, 8);
        CHECK(rtws_ctx_post_owned(ctx, 12345, RTWS_OP_BINARY, own, 8, owned_free, NULL) == RTWS_OK);
    }
    CHECK(rtws_ctx_post_close(ctx, 12345, 1000, "bye") == RTWS_OK);
    /* shutdown stops listening but keeps posting on */
    rtws_ctx_shutdown(ctx, 1001, NULL, rtws_time_now_ms());
    CHECK_EQ(rtws_ctx_fill_pollfds(ctx, NULL, 0), 1);
    W.drops = 0;
    rtws_ctx_free(ctx);
    CHECK_EQ(W.drops, 4);
    CHECK_EQ(W.owned_freed, 1);
    /* posting off: no wake-up fd, and ids are 0 */
    {
        int port = 0;
        char url[64];
        rtws_conn *c;
        uint64_t end = rtws_time_now_ms() + 10000;
        CHECK(rtws_ctx_listen(off, "127.0.0.1", 0, &port) == RTWS_OK);
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
        c = rtws_ctx_connect(off, url, NULL, rtws_time_now_ms(), NULL);
        CHECK(c != NULL);
        while (c && rtws_conn_get_state(c) != RTWS_STATE_OPEN && rtws_time_now_ms() < end)
            rtws_ctx_run_once(off, 20);
        CHECK(c && rtws_conn_get_state(c) == RTWS_STATE_OPEN);
        if (c) CHECK_EQ(rtws_conn_get_id(c), 0);
        CHECK_EQ(rtws_ctx_fill_pollfds(off, NULL, 0), 3); /* listener, both ends */
    }
    rtws_ctx_free(off);
}

/* ---- the wake-up in each loop style ---- */
typedef struct waker {
    pthread_t th;
    rtws_ctx *ctx;
    int delay_ms;
} waker;

static void *wake_later(void *arg) {
    waker *w = (waker *)arg;
    struct timespec ts;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)w->delay_ms * 1000000L;
    nanosleep(&ts, NULL);
    rtws_ctx_post(w->ctx, 7, RTWS_OP_BINARY, "x", 1);
    return NULL;
}

typedef struct sock_seen {
    int fd, want, calls;
} sock_seen;

static void on_sock(rtws_ctx *ctx, int fd, unsigned want, void *user) {
    sock_seen *s = (sock_seen *)user;
    (void)ctx;
    s->fd = fd;
    s->want = (int)want;
    s->calls++;
}

static void test_styles(void) {
    int style;
    for (style = 0; style < 3; style++) {
        rtws_ctx_config cfg;
        rtws_ctx *ctx;
        waker w;
        sock_seen seen;
        rtws_post_stats st;
        uint64_t t0, took;
        memset(&W, 0, sizeof W);
        memset(&cfg, 0, sizeof cfg);
        memset(&seen, 0, sizeof seen);
        seen.fd = -1;
        cfg.post_queue_max = 16;
        cfg.on_post_dropped = on_dropped;
        if (style == 2) {
            cfg.on_socket = on_sock;
            cfg.socket_user = &seen;
        }
        ctx = rtws_ctx_new(&cfg);
        CHECK(ctx != NULL);
        if (!ctx) continue;
        if (style == 2) CHECK(seen.calls == 1 && seen.fd >= 0 && seen.want == RTWS_WANT_READ);
        w.ctx = ctx;
        w.delay_ms = 100;
        t0 = rtws_time_now_ms();
        CHECK(pthread_create(&w.th, NULL, wake_later, &w) == 0);
        if (style == 0) {
            /* run_once (epoll on Linux): after a first pass there is no
               socket and no timer, only the post wakes it */
            rtws_ctx_run_once(ctx, 0);
            rtws_ctx_run_once(ctx, 4000);
        } else if (style == 1) {
            struct pollfd fds[4];
            int n = rtws_ctx_fill_pollfds(ctx, fds, 4);
            CHECK_EQ(n, 1);
            CHECK(fds[0].events == POLLIN);
            CHECK_EQ(poll(fds, (nfds_t)n, 4000), 1);
            rtws_ctx_service(ctx, fds, n, rtws_time_now_ms());
        } else {
            struct pollfd one;
            one.fd = seen.fd;
            one.events = POLLIN;
            one.revents = 0;
            CHECK_EQ(poll(&one, 1, 4000), 1);
            rtws_ctx_handle_readable(ctx, seen.fd, rtws_time_now_ms());
        }
        took = rtws_time_now_ms() - t0;
        pthread_join(w.th, NULL);
        rtws_ctx_get_post_stats(ctx, &st);
        printf("style %d: woken after %llu ms\n", style, (unsigned long long)took);
        CHECK(took < 3000);
        CHECK_EQ(st.taken, 1);
        CHECK_EQ(st.wakeups, 1);
        CHECK_EQ(W.drops, 1);
        rtws_ctx_free(ctx);
        if (style == 2) CHECK(seen.want == 0); /* told before the fd closed */
    }
}

int main(int argc, char **argv) {
    const char *env = getenv("E2E_POST_N");
    int n = argc > 1 ? atoi(argv[1]) : env ? atoi(env) : 100000;
    if (n < NCONN) n = NCONN;
    test_refusals();
    test_styles();
    test_stale_id();
    test_close_while_posting(n / 50 < 400 ? 400 : n / 50);
    test_free_after_producers(n / 100 < 200 ? 200 : n / 100);
    test_many(n);
    return T_END();
}
