/* rtws_ctx_run and rtws_ctx_stop (layer 4) over real sockets on 127.0.0.1:
   a stop from a callback, from a signal handler, from another thread (with
   and without posting on), and before the run; each ends with every
   connection closed 1001 and the loop returned; a peer that never answers
   the close is left when drain_ms has passed. rtws_ctx_serve: its listening
   line, a SIGTERM that stops it, the signal dispositions it puts back, and
   a listen that fails. Every wait is bounded. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static rtws_ctx *CTX;
static int OPENS, CLOSES, CLOSED_1001;
static rtws_conn *LAST_CLIENT;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_OPEN && rtws_conn_get_config(c)->role == RTWS_CLIENT) {
        OPENS++;
        LAST_CLIENT = c;
    }
    if (ev->type == RTWS_EV_MESSAGE) rtws_ctx_stop(CTX); /* "stop", at the server */
    if (ev->type == RTWS_EV_CLOSE) {
        CLOSES++;
        CLOSED_1001 += ev->close.code == RTWS_CLOSE_GOING_AWAY;
    }
}

/* a context listening on 127.0.0.1 with n clients of its own, all open;
   *port: the listener's port */
static rtws_ctx *world(int n, size_t post_max, int *port) {
    rtws_ctx_config cfg;
    char url[64];
    int i;
    uint64_t end = rtws_time_now_ms() + 10000;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.post_queue_max = post_max;
    OPENS = CLOSES = CLOSED_1001 = 0;
    CTX = rtws_ctx_new(&cfg);
    CHECK(CTX != NULL);
    CHECK(rtws_ctx_listen(CTX, "127.0.0.1", 0, port) == RTWS_OK);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", *port);
    for (i = 0; i < n; i++) CHECK(rtws_ctx_connect(CTX, url, NULL, rtws_time_now_ms(), NULL) != NULL);
    while (OPENS < n && rtws_time_now_ms() < end) rtws_ctx_run_once(CTX, 20);
    CHECK_EQ(OPENS, n);
    return CTX;
}

/* runs CTX with drain_ms; how long it took, in ms; every connection closed 1001 */
static uint64_t run_all_closed(int n, int drain_ms) {
    uint64_t t0 = rtws_time_now_ms();
    CHECK_EQ(rtws_ctx_run(CTX, drain_ms), 0);
    t0 = rtws_time_now_ms() - t0;
    CHECK_EQ(rtws_ctx_get_conn_count(CTX), (size_t)0);
    CHECK_EQ(CLOSES, 2 * n); /* both ends of each */
    CHECK_EQ(CLOSED_1001, 2 * n);
    return t0;
}

static void test_from_callback(void) {
    int port;
    world(3, 0, &port);
    CHECK(rtws_conn_send_text(LAST_CLIENT, "stop", 4) == RTWS_OK); /* the server stops on it */
    CHECK(run_all_closed(3, 5000) < 4000);                          /* drained, not timed out */
    { /* the listener is gone: a new connection is refused */
        rtws_conn *c;
        char url[64];
        uint64_t end = rtws_time_now_ms() + 3000;
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
        OPENS = CLOSES = 0;
        c = rtws_ctx_connect(CTX, url, NULL, rtws_time_now_ms(), NULL);
        while (c && CLOSES == 0 && rtws_time_now_ms() < end) rtws_ctx_run_once(CTX, 20);
        CHECK(OPENS == 0);
    }
    rtws_ctx_free(CTX);
}

static void on_alarm(int sig) {
    (void)sig;
    rtws_ctx_stop(CTX);
}

static void test_from_signal(void) {
    struct itimerval it;
    uint64_t t;
    int port;
    world(2, 0, &port);
    signal(SIGALRM, on_alarm);
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 200000; /* in 200 ms, while the loop waits */
    setitimer(ITIMER_REAL, &it, NULL);
    t = run_all_closed(2, 5000);
    CHECK(t >= 150 && t < 900); /* the signal cut the wait short (it waits up to 1 s) */
    if (!(t >= 150 && t < 900)) printf("  signal: returned after %llu ms\n", (unsigned long long)t);
    signal(SIGALRM, SIG_DFL);
    rtws_ctx_free(CTX);
}

static void *stopper(void *arg) {
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    rtws_ctx_stop((rtws_ctx *)arg);
    return NULL;
}

static void test_from_thread(size_t post_max, uint64_t lo, uint64_t hi) {
    pthread_t th;
    uint64_t t;
    int port;
    world(2, post_max, &port);
    CHECK(pthread_create(&th, NULL, stopper, CTX) == 0);
    t = run_all_closed(2, 5000);
    pthread_join(th, NULL);
    CHECK(t >= lo && t < hi);
    if (!(t >= lo && t < hi))
        printf("  thread (posting %s): returned after %llu ms\n", post_max ? "on" : "off",
               (unsigned long long)t);
    rtws_ctx_free(CTX);
}

static void test_before_run(void) {
    int port;
    world(1, 0, &port);
    rtws_ctx_stop(CTX);
    CHECK(run_all_closed(1, 5000) < 3000);
    rtws_ctx_free(CTX);
}

/* a peer that is never run answers no close: the drain ends at drain_ms */
static void test_drain_deadline(void) {
    rtws_ctx_config cfg;
    rtws_ctx *peer;
    char url[64];
    uint64_t t, end = rtws_time_now_ms() + 10000;
    int port, before;
    world(0, 0, &port);
    OPENS = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    peer = rtws_ctx_new(&cfg);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    CHECK(rtws_ctx_connect(peer, url, NULL, rtws_time_now_ms(), NULL) != NULL);
    while (OPENS < 1 && rtws_time_now_ms() < end) { /* both loops until the client is open */
        rtws_ctx_run_once(CTX, 5);
        rtws_ctx_run_once(peer, 5);
    }
    while (rtws_ctx_get_ws_count(CTX) < 1 && rtws_time_now_ms() < end) rtws_ctx_run_once(CTX, 5);
    CHECK_EQ(OPENS, 1);
    before = CLOSES;
    rtws_ctx_stop(CTX);
    t = rtws_time_now_ms();
    CHECK_EQ(rtws_ctx_run(CTX, 300), 0);
    t = rtws_time_now_ms() - t;
    CHECK(t >= 290 && t < 2000);
    CHECK_EQ(rtws_ctx_get_conn_count(CTX), (size_t)1); /* still waiting for the reply */
    CHECK_EQ(CLOSES, before);
    rtws_ctx_free(CTX); /* frees it; the peer sees its socket end */
    rtws_ctx_free(peer);
}

static void on_term_before(int sig) { (void)sig; }
static rtws_err SERVED;
static void *serve_thread(void *arg) {
    SERVED = rtws_ctx_serve((rtws_ctx *)arg, "127.0.0.1", 0, 3000);
    return NULL;
}

/* rtws_ctx_serve in a thread, its stdout a pipe: the line, a client opens,
   SIGTERM to that thread ends the run (the client sees 1001), the previous
   SIGTERM handler and SIGPIPE's SIG_IGN are back */
static void test_serve(void) {
    rtws_ctx_config cfg;
    rtws_ctx *client;
    pthread_t th;
    char line[128] = "", url[64];
    int fds[2], saved, port = 0, got = 0;
    uint64_t end = rtws_time_now_ms() + 10000;
    void (*h)(int);
    memset(&cfg, 0, sizeof cfg);
    OPENS = CLOSES = CLOSED_1001 = 0;
    CHECK((CTX = rtws_ctx_new(&cfg)) != NULL); /* no hook: the counters are the client's,
                                                  touched by this thread only */
    cfg.conn.on_event = on_event;
    CHECK((client = rtws_ctx_new(&cfg)) != NULL);
    signal(SIGTERM, on_term_before);
    fflush(stdout);
    CHECK(pipe(fds) == 0);
    saved = dup(1);
    dup2(fds[1], 1);
    CHECK(pthread_create(&th, NULL, serve_thread, CTX) == 0);
    while (got < (int)sizeof line - 1 && rtws_time_now_ms() < end) { /* one line */
        if (read(fds[0], line + got, 1) != 1 || line[got] == '\n') break;
        got++;
    }
    line[got] = 0;
    dup2(saved, 1);
    close(saved);
    CHECK(sscanf(line, "listening on 127.0.0.1:%d", &port) == 1 && port > 0);
    printf("  serve printed: %s\n", line);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    CHECK(rtws_ctx_connect(client, url, NULL, rtws_time_now_ms(), NULL) != NULL);
    while (OPENS < 1 && rtws_time_now_ms() < end) rtws_ctx_run_once(client, 20);
    CHECK_EQ(OPENS, 1);
    pthread_kill(th, SIGTERM); /* the serving thread's wait is cut short */
    while (CLOSES < 1 && rtws_time_now_ms() < end) rtws_ctx_run_once(client, 20);
    CHECK(CLOSED_1001 >= 1);
    pthread_join(th, NULL);
    CHECK_EQ(SERVED, RTWS_OK);
    h = signal(SIGTERM, SIG_DFL);
    CHECK(h == on_term_before);
    h = signal(SIGPIPE, SIG_IGN);
    CHECK(h == SIG_IGN);
    close(fds[0]);
    close(fds[1]);
    rtws_ctx_free(client);
    rtws_ctx_free(CTX);
    /* a listen that fails: its error, nothing run */
    CHECK((CTX = rtws_ctx_new(&cfg)) != NULL);
    CHECK(rtws_ctx_serve(CTX, "no such host.invalid", 0, 100) != RTWS_OK);
    h = signal(SIGTERM, SIG_DFL);
    CHECK(h == SIG_DFL);
    rtws_ctx_free(CTX);
    rtws_ctx_free(NULL); /* nothing */
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_serve();
    test_from_callback();
    test_from_signal();
    test_from_thread(0, 150, 1500);  /* seen at the next 1 s wake-up at the latest */
    test_from_thread(64, 150, 900);  /* posting on: the wake-up fd, at once */
    test_before_run();
    test_drain_deadline();
    return T_END();
}
