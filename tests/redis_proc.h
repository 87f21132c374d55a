/* tests/redis_proc.h - what the tests that run a real redis-server share:
   finding it (installing it when root), a free loopback port, a TCP probe,
   a nap, redis-server started in the foreground and stopped by pid.
   Include after rtws.h and t.h (POSIX only). */
#ifndef RTWS_TESTS_REDIS_PROC_H
#define RTWS_TESTS_REDIS_PROC_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *redis_bin = "/usr/bin/redis-server"; /* RTWS_REDIS_SERVER: another */

/* 1: redis_bin can run (installed by tests/deps.sh when root and missing);
   0: it cannot and the test is skipped (a result line saying so printed);
   -1: it cannot and RTWS_REQUIRE_ALL=1 makes that a failure (printed). */
static int redis_find(const char *test) {
    const char *req = getenv("RTWS_REQUIRE_ALL");
    if (getenv("RTWS_REDIS_SERVER")) redis_bin = getenv("RTWS_REDIS_SERVER");
    if (access(redis_bin, X_OK) != 0 && getuid() == 0)
        (void)!system("bash -c '. tests/deps.sh && rtws_apt redis-server' >/dev/null 2>&1");
    if (access(redis_bin, X_OK) == 0) return 1;
    if (req && !strcmp(req, "1")) {
        printf("%s: redis-server is missing and RTWS_REQUIRE_ALL=1\n0 passed, 1 failed\n", test);
        return -1;
    }
    printf("%s: skipped, no redis-server (tests/deps.sh installs it)\n", test);
    printf("0 passed, 0 failed, 1 skipped\n");
    return 0;
}

/* a loopback port nobody listened on a moment ago (0: none found) */
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

/* redis-server in the foreground on 127.0.0.1:*port, no snapshots, with
   the extra arguments (NULL-terminated, up to 12; NULL: none), its output
   to /dev/null; ready to accept when it returns its pid (-1: it did not
   start within 5 s). *port 0: a free port is chosen and stored. Another
   process can take a port between free_port() and redis's bind (the tests
   run side by side): when redis exits at once, a chosen port is chosen
   again and a given one retried, up to 5 times. */
static pid_t redis_start(int *port, const char *const *extra) {
    int chosen = *port == 0, attempt, st, n = 0;
    const char *argv[32];
    char p[16];
    pid_t pid;
    argv[n++] = redis_bin;
    argv[n++] = "--port";
    argv[n++] = p;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    while (extra && *extra && n < 31) argv[n++] = *extra++;
    argv[n] = NULL;
    for (attempt = 0; attempt < 5; attempt++) {
        uint64_t until = rtws_time_now_ms() + 5000;
        if (chosen) *port = free_port();
        snprintf(p, sizeof p, "%d", *port);
        fflush(stdout); /* the child must not write our buffered lines again */
        pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout)) _exit(127);
            execv(redis_bin, (char *const *)(void *)argv);
            _exit(127);
        }
        while (rtws_time_now_ms() < until) {
            if (waitpid(pid, &st, WNOHANG) == pid) break; /* it exited: port taken? */
            if (can_connect(*port)) {
                nap_ms(50); /* whoever answered, redis is still there */
                if (waitpid(pid, &st, WNOHANG) == 0) return pid;
                break;
            }
            nap_ms(20);
        }
        if (waitpid(pid, &st, WNOHANG) == 0) { /* neither up nor gone in 5 s */
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        nap_ms(100);
    }
    return -1;
}

/* kill(pid, sig) and wait: its exit status (-1 when it did not exit by
   itself, or pid <= 0) */
static int stop_pid(pid_t pid, int sig) {
    int st = 0;
    if (pid <= 0) return -1;
    kill(pid, sig);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}
#endif
