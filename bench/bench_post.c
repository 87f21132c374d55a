/* bench/bench_post.c - cross-thread posting (rtws_ctx_post) next to a plain
   send on the loop's thread, over 127.0.0.1.

   usage: bench_post [messages] [connections] [bytes]   (1000000 100 64)

   The sending context runs its loop on the main thread; its peers are client
   connections of a second context, looped by a thread of their own, which
   counts what arrives (and checks the count, so nothing is lost or doubled).
   The same messages go out four ways:
     send      the loop's thread calls rtws_conn_send, 4096 per pass
     post x1   one producer thread calls rtws_ctx_post (copied)
     post x4   four producer threads, a quarter each
     trickle   one producer posting one message every 100 us, so that every
               message costs the loop a wake-up of its own
     wake only the trickle to an id of no connection: each post is taken and
               dropped, so the loop's CPU is the wake-up's alone
     send trickle  the same pace from the loop's thread: a send, a pass
               (rtws_ctx_run_once(ctx, 0)) and a 100 us sleep per message
   and it prints, per way: messages per second handed over (posted by the
   producers, or sent by the loop), end to end (all received), the loop
   thread's CPU per message (CLOCK_THREAD_CPUTIME_ID around the loop), and
   for posting the wake-ups and the loop's CPU per wake-up. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXC 1000
#define ALOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ASTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

static long received;   /* by the receiving thread (atomic) */
static int stop_rx;
static int rx_port, rx_ready;
static uint64_t ids[MAXC];
static rtws_conn *conns[MAXC];
static int nopen;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tx_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_OPEN && nopen < MAXC) {
        conns[nopen] = c;
        ids[nopen++] = rtws_conn_get_id(c);
    }
}
static void rx_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)user;
    if (ev->type == RTWS_EV_MESSAGE) __atomic_fetch_add(&received, 1, __ATOMIC_RELAXED);
}

static int nconn;
static void *receiver(void *arg) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    char url[64];
    int i;
    (void)arg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = rx_event;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) exit(1);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", rx_port);
    for (i = 0; i < nconn; i++)
        if (!rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), NULL)) exit(1);
    ASTORE(&rx_ready, 1);
    while (!ALOAD(&stop_rx)) rtws_ctx_run_once(ctx, 10);
    rtws_ctx_free(ctx);
    return NULL;
}

typedef struct prod {
    pthread_t th;
    rtws_ctx *ctx;
    long from, n;
    size_t len;
    int trickle_us, nobody;
    long refused;
    double took;
} prod;

static void *producer(void *arg) {
    prod *p = (prod *)arg;
    uint8_t msg[65536];
    double t0 = now_s();
    long i;
    memset(msg, 'm', sizeof msg);
    for (i = p->from; i < p->from + p->n; i++) {
        uint64_t id = p->nobody ? 1 : ids[i % nconn]; /* 1: no connection's id */
        while (rtws_ctx_post(p->ctx, id, RTWS_OP_BINARY, msg, p->len) != RTWS_OK) {
            p->refused++;
            sched_yield();
        }
        if (p->trickle_us) {
            struct timespec ts;
            ts.tv_sec = 0;
            ts.tv_nsec = p->trickle_us * 1000L;
            nanosleep(&ts, NULL);
        }
    }
    p->took = now_s() - t0;
    return NULL;
}

/* Runs the loop until target messages arrived (or, when nobody, target
   posts were taken); returns the loop's CPU. */
static double run_until_of(rtws_ctx *ctx, long target, int ms, int nobody) {
    double c0 = cpu_s();
    double end = now_s() + 120;
    for (;;) {
        rtws_post_stats st;
        rtws_ctx_get_post_stats(ctx, &st);
        if ((nobody ? (long)st.taken : ALOAD(&received)) >= target || now_s() >= end) break;
        rtws_ctx_run_once(ctx, ms);
    }
    return cpu_s() - c0;
}
static double run_until(rtws_ctx *ctx, long target, int ms) {
    return run_until_of(ctx, target, ms, 0);
}

static void report(const char *way, long n, double handed, double wall, double cpu,
                   const rtws_post_stats *a, const rtws_post_stats *b, long refused) {
    printf("%-13s %7ld msgs: handed over %5.0f k/s, end to end %5.0f k/s, loop CPU %5.0f ns/msg",
           way, n, (double)n / handed / 1e3, (double)n / wall / 1e3, cpu * 1e9 / (double)n);
    if (a && b) {
        uint64_t w = b->wakeups - a->wakeups;
        printf(", %llu wake-ups (%.1f us loop CPU each), %llu passes, %ld full-queue retries",
               (unsigned long long)w, w ? cpu * 1e6 / (double)w : 0.0,
               (unsigned long long)(b->batches - a->batches), refused);
    }
    printf("\n");
}

static void run_posts(rtws_ctx *ctx, const char *way, int np, long n, size_t len, int trickle_us,
                      int nobody) {
    prod ps[4];
    rtws_post_stats a, b;
    long base = ALOAD(&received), refused = 0;
    double t0, wall, cpu, handed = 0;
    int i;
    rtws_ctx_get_post_stats(ctx, &a);
    t0 = now_s();
    for (i = 0; i < np; i++) {
        memset(&ps[i], 0, sizeof ps[i]);
        ps[i].ctx = ctx;
        ps[i].from = n / np * i;
        ps[i].n = n / np;
        ps[i].len = len;
        ps[i].trickle_us = trickle_us;
        ps[i].nobody = nobody;
        if (pthread_create(&ps[i].th, NULL, producer, &ps[i]) != 0) exit(1);
    }
    cpu = nobody ? run_until_of(ctx, (long)a.taken + n / np * np, 10, 1)
                 : run_until(ctx, base + n / np * np, 10);
    wall = now_s() - t0;
    for (i = 0; i < np; i++) {
        pthread_join(ps[i].th, NULL);
        refused += ps[i].refused;
        if (ps[i].took > handed) handed = ps[i].took;
    }
    rtws_ctx_get_post_stats(ctx, &b);
    if (!nobody && (ALOAD(&received) != base + n / np * np || b.dropped != a.dropped))
        printf("%s: LOST: received %ld of %ld, %llu dropped\n", way, ALOAD(&received) - base, n,
               (unsigned long long)(b.dropped - a.dropped));
    report(way, n / np * np, handed, wall, cpu, &a, &b, refused);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000, i, base;
    size_t len = argc > 3 ? (size_t)atol(argv[3]) : 64;
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    pthread_t rx;
    uint8_t msg[65536];
    double t0, c0, wall, cpu, sent_at = 0;
    nconn = argc > 2 ? atoi(argv[2]) : 100;
    if (nconn < 1 || nconn > MAXC || n < 4 || len > sizeof msg) {
        fprintf(stderr, "usage: bench_post [messages] [connections <= %d] [bytes <= 65536]\n", MAXC);
        return 2;
    }
    memset(msg, 'm', sizeof msg);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = tx_event;
    cfg.post_queue_max = 65536;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || rtws_ctx_listen(ctx, "127.0.0.1", 0, &rx_port) != RTWS_OK) return 1;
    if (pthread_create(&rx, NULL, receiver, NULL) != 0) return 1;
    t0 = now_s();
    while (nopen < nconn && now_s() < t0 + 30) rtws_ctx_run_once(ctx, 10);
    if (nopen < nconn) return 1;
    printf("bench_post: %ld messages of %zu bytes to %d connections, receivers on their own thread\n",
           n, len, nconn);

    /* the loop's own thread sends them */
    base = ALOAD(&received);
    t0 = now_s();
    c0 = cpu_s();
    for (i = 0; i < n; i++) {
        if (rtws_conn_send(conns[i % nconn], RTWS_OP_BINARY, msg, len) != RTWS_OK) return 1;
        if ((i & 4095) == 4095) rtws_ctx_run_once(ctx, 0);
    }
    sent_at = now_s() - t0;
    cpu = cpu_s() - c0;
    cpu += run_until(ctx, base + n, 10);
    wall = now_s() - t0;
    report("send", n, sent_at, wall, cpu, NULL, NULL, 0);

    run_posts(ctx, "post x1", 1, n, len, 0, 0);
    run_posts(ctx, "post x4", 4, n, len, 0, 0);
    run_posts(ctx, "trickle", 1, n / 200 < 2000 ? 2000 : n / 200, len, 100, 0);
    /* the wake-up alone: posts to no connection are taken and dropped, no socket is written */
    run_posts(ctx, "wake only", 1, n / 200 < 2000 ? 2000 : n / 200, len, 100, 1);

    {   /* the trickle's pace without posting */
        long m = n / 200 < 2000 ? 2000 : n / 200;
        struct timespec ts;
        ts.tv_sec = 0;
        ts.tv_nsec = 100000;
        base = ALOAD(&received);
        t0 = now_s();
        c0 = cpu_s();
        cpu = 0;
        for (i = 0; i < m; i++) {
            if (rtws_conn_send(conns[i % nconn], RTWS_OP_BINARY, msg, len) != RTWS_OK) return 1;
            rtws_ctx_run_once(ctx, 0);
            cpu += cpu_s() - c0; /* the loop's CPU, not the sleep's */
            nanosleep(&ts, NULL);
            c0 = cpu_s();
        }
        sent_at = now_s() - t0;
        cpu += run_until(ctx, base + m, 10);
        report("send trickle", m, sent_at, now_s() - t0, cpu, NULL, NULL, 0);
    }

    ASTORE(&stop_rx, 1);
    pthread_join(rx, NULL);
    rtws_ctx_free(ctx);
    return 0;
}
