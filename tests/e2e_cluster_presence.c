/* The Redis engine, continued (tests/e2e_cluster.c has delivery, a node
   killed, Redis restarted): a real redis-server on a free 127.0.0.1 port,
   started and stopped (by PID) by this test.
   1. Publishes allocate nothing in steady state: a router in this process
      with a counting allocator publishes 2,000 messages through Redis
      (rtws_router_publish, 50 in flight at a time) after a warm-up; the
      router's allocator is called 0 times meanwhile (its job records and
      its message buffer are reused).
   Without redis-server (tests/deps.sh installs it when root) it says it
   skipped; RTWS_REQUIRE_ALL=1 makes that a failure. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *redis_bin = "/usr/bin/redis-server"; /* RTWS_REDIS_SERVER: another */
static char url[64];

static int free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static int can_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static void nap_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static pid_t start_redis(int port) {
    char p[16];
    uint64_t until = rtws_time_now_ms() + 5000;
    pid_t pid;
    snprintf(p, sizeof p, "%d", port);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execl(redis_bin, redis_bin, "--port", p, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    while (pid > 0 && rtws_time_now_ms() < until) {
        if (can_connect(port)) return pid;
        nap_ms(20);
    }
    return -1;
}

static void stop_pid(pid_t pid, int sig) {
    int st;
    if (pid <= 0) return;
    kill(pid, sig);
    waitpid(pid, &st, 0);
}

/* ---- 1: a counting allocator ---- */
static size_t n_alloc;
static void *c_alloc(size_t n, void *u) {
    (void)u;
    n_alloc++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *u) {
    (void)u;
    n_alloc++;
    return realloc(p, n);
}
static void c_free(void *p, void *u) {
    (void)u;
    free(p);
}

static void alloc_phase(void) {
    rtws_router_config rc;
    rtws_ctx_config cc;
    rtws_router *r;
    rtws_ctx *ctx = NULL;
    rtws_router_stats st;
    uint64_t until, want = 0;
    size_t before = 0, during = 0;
    int i, k, up = 0;
    memset(&rc, 0, sizeof rc);
    rc.redis_url = url;
    rc.redis_prefix = "alloc";
    rc.history = 100;
    rc.allocator.alloc = c_alloc;
    rc.allocator.realloc = c_realloc;
    rc.allocator.free = c_free;
    r = rtws_router_new(&rc);
    CHECK(r != NULL);
    if (!r) return;
    memset(&cc, 0, sizeof cc);
    cc.timer_ms = 10;
    rtws_router_install(r, &cc);
    ctx = rtws_ctx_new(&cc);
    CHECK(ctx != NULL);
    until = rtws_time_now_ms() + 5000;
    while (ctx && !up && rtws_time_now_ms() < until) {
        rtws_ctx_run_once(ctx, 10);
        rtws_router_get_stats(r, &st);
        up = st.redis_up;
    }
    CHECK(up);
    /* 3 rounds: a warm-up (500), then 2,000 counted; 50 in flight at a time */
    for (k = 0; ctx && up && k < 2; k++) {
        int total = k == 0 ? 500 : 2000;
        if (k == 1) before = n_alloc;
        for (i = 0; i < total; i += 50) {
            int j;
            for (j = 0; j < 50; j++) {
                char d[32];
                snprintf(d, sizeof d, "{\"n\":%d}", i + j);
                if (rtws_router_publish(r, "room:alloc", "m", d, strlen(d), NULL,
                                        rtws_time_now_ms()) == UINT64_MAX)
                    want++;
            }
            until = rtws_time_now_ms() + 5000;
            do {
                rtws_ctx_run_once(ctx, 1);
                rtws_router_get_stats(r, &st);
            } while (st.publishes < want && rtws_time_now_ms() < until);
        }
        if (k == 1) during = n_alloc - before;
    }
    rtws_router_get_stats(r, &st);
    printf("alloc: %llu publishes through Redis acknowledged (want %llu); the router's allocator "
           "was called %zu times during the last 2000\n",
           (unsigned long long)st.publishes, (unsigned long long)want, during);
    CHECK_EQ(st.publishes, (uint64_t)2500);
    CHECK_EQ(during, (size_t)0);
    rtws_router_free(r);
    if (ctx) rtws_ctx_free(ctx);
}

int main(void) {
    int rport;
    pid_t rpid;
    if (getenv("RTWS_REDIS_SERVER")) redis_bin = getenv("RTWS_REDIS_SERVER");
    signal(SIGPIPE, SIG_IGN);
    if (access(redis_bin, X_OK) != 0 && getuid() == 0)
        (void)!system("bash -c '. tests/deps.sh && rtws_apt redis-server' >/dev/null 2>&1");
    if (access(redis_bin, X_OK) != 0) {
        if (getenv("RTWS_REQUIRE_ALL") && !strcmp(getenv("RTWS_REQUIRE_ALL"), "1")) {
            printf("e2e_cluster_presence: redis-server is missing and RTWS_REQUIRE_ALL=1\n");
            return 1;
        }
        printf("e2e_cluster_presence: skipped, no redis-server (tests/deps.sh installs it)\n");
        return 0;
    }
    rport = free_port();
    rpid = start_redis(rport);
    CHECK(rpid > 0);
    if (rpid <= 0) return T_END();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", rport);

    alloc_phase();

    stop_pid(rpid, SIGTERM);
    return T_END();
}
