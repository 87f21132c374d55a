/* tests/connect_proxy.h - a small HTTP CONNECT proxy for end-to-end tests
   (RFC 9110 §9.3.6), run in a child process on 127.0.0.1 (port from the OS)
   and stopped by its PID. Each tunnel is served by its own child, with
   blocking I/O. Modes: open, Basic auth required (407 otherwise), refuse
   (403), cut (close the tunnel cut_ms after it opened), hang up (close
   without an answer). Targets other than 127.0.0.1/localhost get a 502, and
   so does a target that refuses. What it saw is counted in shared memory.
   Start it before any listener the test closes later: the forked proxy
   holds every descriptor open at the fork. */
#ifndef RTWS_TEST_CONNECT_PROXY_H
#define RTWS_TEST_CONNECT_PROXY_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CP_OPEN, CP_AUTH, CP_REFUSE, CP_CUT, CP_HANGUP };

typedef struct cp_seen {
    volatile int requests;       /* heads read */
    volatile int tunnels;        /* 200s sent */
    char last_line[256];         /* request line of the latest head */
    char last_auth[256];         /* its Proxy-Authorization value ("" when none) */
} cp_seen;

typedef struct cproxy {
    int port, mode, cut_ms;
    pid_t pid;
    char auth[128];              /* CP_AUTH: the value expected ("Basic ...") */
    cp_seen *seen;               /* shared with the children */
} cproxy;

static void cp_copy_header(const char *head, const char *name, char *out, size_t cap) {
    const char *p = head;
    size_t nl = strlen(name);
    out[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;
            while (*v == ' ') v++;
            e = strstr(v, "\r\n");
            if (e && (size_t)(e - v) < cap) {
                memcpy(out, v, (size_t)(e - v));
                out[e - v] = '\0';
            }
            return;
        }
    }
}

static void cp_send(int fd, const char *s) {
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

static long cp_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One client of the proxy, in its own process. */
static void cp_serve(cproxy *p, int fd) {
    char head[8192], host[256], auth[256];
    size_t n = 0;
    unsigned port = 0;
    int up, i;
    struct sockaddr_in a;
    long opened;
    while (n < sizeof head - 1) {
        ssize_t r = recv(fd, head + n, sizeof head - 1 - n, 0);
        if (r <= 0) _exit(0);
        n += (size_t)r;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n")) break;
    }
    p->seen->requests++;
    for (i = 0; head[i] && head[i] != '\r' && i < 255; i++) p->seen->last_line[i] = head[i];
    p->seen->last_line[i] = '\0';
    cp_copy_header(head, "Proxy-Authorization", auth, sizeof auth);
    memcpy(p->seen->last_auth, auth, sizeof auth);
    if (p->mode == CP_HANGUP) _exit(0);
    if (p->mode == CP_REFUSE) {
        cp_send(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way");
        _exit(0);
    }
    if (p->mode == CP_AUTH && strcmp(auth, p->auth) != 0) {
        cp_send(fd, "HTTP/1.1 407 Proxy Authentication Required\r\n"
                    "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n");
        _exit(0);
    }
    if (sscanf(head, "CONNECT %255[^:]:%u HTTP/1.1", host, &port) != 2 ||
        (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0)) {
        cp_send(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        _exit(0);
    }
    up = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (connect(up, (struct sockaddr *)&a, sizeof a) != 0) {
        cp_send(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        _exit(0);
    }
    cp_send(fd, "HTTP/1.1 200 Connection established\r\n\r\n");
    p->seen->tunnels++;
    opened = cp_ms();
    for (;;) { /* relay both ways */
        struct pollfd pf[2];
        char buf[16384];
        int k, wait = 1000;
        if (p->mode == CP_CUT) {
            long left = opened + p->cut_ms - cp_ms();
            if (left <= 0) _exit(0); /* mid-tunnel: both sockets close with us */
            wait = (int)left;
        }
        pf[0].fd = fd, pf[1].fd = up;
        pf[0].events = pf[1].events = POLLIN;
        if (poll(pf, 2, wait) < 0 && errno != EINTR) _exit(0);
        for (k = 0; k < 2; k++) {
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(pf[k].fd, buf, sizeof buf, 0);
                size_t off = 0;
                if (r <= 0) _exit(0);
                while (off < (size_t)r) {
                    ssize_t w = send(pf[1 - k].fd, buf + off, (size_t)r - off, MSG_NOSIGNAL);
                    if (w <= 0) _exit(0);
                    off += (size_t)w;
                }
            }
        }
    }
}

/* Starts the proxy; 0 on success. */
static int cp_start(cproxy *p, int mode, const char *auth) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int lfd, one = 1;
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->cut_ms = 300;
    if (auth) snprintf(p->auth, sizeof p->auth, "%s", auth);
    p->seen = (cp_seen *)mmap(NULL, sizeof *p->seen, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->seen == MAP_FAILED) return -1;
    memset(p->seen, 0, sizeof *p->seen);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64)) return -1;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    p->pid = fork();
    if (p->pid < 0) return -1;
    if (p->pid == 0) {
        signal(SIGCHLD, SIG_IGN); /* no zombies from the tunnels */
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0) continue;
            if (fork() == 0) {
                close(lfd);
                cp_serve(p, fd);
                _exit(0);
            }
            close(fd);
        }
    }
    close(lfd);
    return 0;
}

/* Stops the proxy (its tunnels die with their sockets' peers or the cut). */
static void cp_stop(cproxy *p) {
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->seen && p->seen != MAP_FAILED) munmap(p->seen, sizeof *p->seen);
    p->seen = NULL;
}
#endif
