/* tests/proxy.h - a TCP proxy on 127.0.0.1 for end-to-end tests, serviced
   from the test's own poll loop: it forwards, freezes (stops reading and
   writing, like a half-open path) or drops every connection at once. */
#ifndef RTWS_TEST_PROXY_H
#define RTWS_TEST_PROXY_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PX_FORWARD, PX_FREEZE };
typedef struct px_pair {
    int a, b; /* client side, server side; -1 when unused */
} px_pair;
typedef struct proxy {
    int lfd, port, target, mode;
    px_pair pairs[64];
} proxy;

static int px_listen(proxy *p, int target) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int one = 1, i;
    memset(p, 0, sizeof *p);
    for (i = 0; i < 64; i++) p->pairs[i].a = p->pairs[i].b = -1;
    p->target = target;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) || listen(p->lfd, 64)) return -1;
    getsockname(p->lfd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    return 0;
}

static void px_drop_all(proxy *p) {
    int i;
    for (i = 0; i < 64; i++) {
        if (p->pairs[i].a >= 0) close(p->pairs[i].a);
        if (p->pairs[i].b >= 0) close(p->pairs[i].b);
        p->pairs[i].a = p->pairs[i].b = -1;
    }
}

static int px_fds(proxy *p, struct pollfd *f) {
    int n = 0, i;
    f[n].fd = p->lfd;
    f[n++].events = POLLIN;
    for (i = 0; i < 64; i++) {
        if (p->pairs[i].a < 0) continue;
        f[n].fd = p->pairs[i].a;
        f[n++].events = p->mode == PX_FORWARD ? POLLIN : 0;
        f[n].fd = p->pairs[i].b;
        f[n++].events = p->mode == PX_FORWARD ? POLLIN : 0;
    }
    return n;
}

static void px_service(proxy *p, struct pollfd *f, int n) {
    int k, i;
    for (k = 0; k < n; k++) {
        if (!f[k].revents) continue;
        if (f[k].fd == p->lfd) {
            int c = accept(p->lfd, NULL, NULL), s;
            struct sockaddr_in a;
            if (c < 0) continue;
            s = socket(AF_INET, SOCK_STREAM, 0);
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)p->target);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { /* server down */
                close(c);
                close(s);
                continue;
            }
            for (i = 0; i < 64 && p->pairs[i].a >= 0; i++) {
            }
            if (i == 64) {
                close(c);
                close(s);
                continue;
            }
            p->pairs[i].a = c;
            p->pairs[i].b = s;
            continue;
        }
        for (i = 0; i < 64; i++) {
            int from = -1, to = -1;
            char buf[65536];
            ssize_t r;
            if (p->pairs[i].a == f[k].fd) from = p->pairs[i].a, to = p->pairs[i].b;
            else if (p->pairs[i].b == f[k].fd) from = p->pairs[i].b, to = p->pairs[i].a;
            if (from < 0) continue;
            r = recv(from, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                ssize_t off = 0; /* loopback: a blocking send of this much completes */
                while (off < r) {
                    ssize_t w = send(to, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
                    if (w <= 0) break;
                    off += w;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(p->pairs[i].a);
                close(p->pairs[i].b);
                p->pairs[i].a = p->pairs[i].b = -1;
            }
            break;
        }
    }
}

#endif
