/* wslay_echo - wslay echo server for the rtws bench (one thread, epoll).

   usage: ./wslay_echo PORT   (prints "listening on 127.0.0.1:PORT")
   wslay is a frame engine without sockets or handshake, so this program does
   the HTTP upgrade itself (the helpers in ../ws_util.h) and drives one
   wslay_event context per connection from epoll: EPOLLIN -> wslay_event_recv,
   then wslay_event_send at once while it wants to write (EPOLLOUT only when
   the socket is full), gathering each batch into one send. Every text and binary message is echoed whole with
   wslay_event_queue_msg. 16 MiB message cap (as rtws), pings after 30 s of
   silence, no compression. wslay does not validate UTF-8 and this server does
   not add it. 127.0.0.1 only. */
#define _GNU_SOURCE
#include "../ws_util.h"

#include <wslay/wslay.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 8192
#define WBUF_CAP 65536

typedef struct conn {
    int fd;
    int upgraded;
    unsigned events;
    wslay_event_context_ptr ws;
    char *head; /* request head, freed after the upgrade */
    size_t head_len;
    uint8_t *wbuf; /* frames wslay produced, written with one send per batch */
    size_t wlen, woff;
    char *out; /* handshake response still to write */
    size_t out_len, out_off;
    time_t last_rx;
    struct conn *prev, *next; /* every connection, for the heartbeat scan */
} conn;

static int ep;
static conn *all;
static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void set_events(conn *c, unsigned ev) {
    struct epoll_event e;
    if (c->events == ev) return;
    memset(&e, 0, sizeof e);
    e.events = ev;
    e.data.ptr = c;
    c->events = ev;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void destroy(conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->ws) wslay_event_context_free(c->ws);
    free(c->out);
    free(c->head);
    free(c->wbuf);
    if (c->prev) c->prev->next = c->next;
    else all = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user) {
    conn *c = (conn *)user;
    ssize_t r;
    (void)flags;
    while ((r = recv(c->fd, buf, len, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
                                                                            : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (r == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    c->last_rx = time(NULL);
    return r;
}

/* Writes the batch buffer; 0 when empty, 1 when the socket is full, -1 on error. */
static int flush_wbuf(conn *c) {
    while (c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
        if (w < 0) return -1;
        c->woff += (size_t)w;
    }
    c->woff = c->wlen = 0;
    return 0;
}

/* wslay hands over a frame header and its payload in separate calls; they
   are gathered here and go out together (one send per batch, not two per
   message), which is how a program that cares about speed drives wslay. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user) {
    conn *c = (conn *)user;
    size_t k;
    (void)flags;
    if (!c->wbuf && !(c->wbuf = (uint8_t *)malloc(WBUF_CAP))) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (c->wlen == WBUF_CAP) {
        int f = flush_wbuf(c);
        if (f != 0) {
            wslay_event_set_error(ctx, f > 0 ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
    }
    k = WBUF_CAP - c->wlen < len ? WBUF_CAP - c->wlen : len;
    memcpy(c->wbuf + c->wlen, data, k);
    c->wlen += k;
    return (ssize_t)k;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user) {
    (void)user;
    if (!wslay_is_ctrl_frame(arg->opcode)) {
        struct wslay_event_msg m;
        m.opcode = arg->opcode;
        m.msg = arg->msg;
        m.msg_length = arg->msg_length;
        wslay_event_queue_msg(ctx, &m);
    }
}

static const struct wslay_event_callbacks callbacks = {recv_cb, send_cb, NULL, NULL, NULL, NULL,
                                                        on_msg};

/* Sends what wslay has queued, then watches for what it wants next. */
static int pump(conn *c) {
    unsigned ev = 0;
    int f;
    if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) return -1;
    f = flush_wbuf(c);
    if (f < 0) return -1;
    if (wslay_event_want_read(c->ws)) ev |= EPOLLIN;
    if (f > 0 || wslay_event_want_write(c->ws)) ev |= EPOLLOUT;
    if (!ev) return -1; /* close handshake done */
    set_events(c, ev);
    return 0;
}

static int handshake(conn *c) {
    ssize_t r;
    char *end, accept[29], *resp;
    const char *key;
    size_t klen;
    int n;
    for (;;) {
        r = recv(c->fd, c->head + c->head_len, MAX_HEAD - 1 - c->head_len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (r <= 0) return -1;
        c->head_len += (size_t)r;
        c->head[c->head_len] = '\0';
        end = strstr(c->head, "\r\n\r\n");
        if (end) break;
        if (c->head_len >= MAX_HEAD - 1) return -1;
    }
    if (strncmp(c->head, "GET ", 4)) return -1;
    key = wsu_header(c->head, (size_t)(end + 4 - c->head), "sec-websocket-key:", &klen);
    if (!key || klen != 24) return -1;
    wsu_accept(key, klen, accept);
    resp = (char *)malloc(256);
    if (!resp) return -1;
    n = snprintf(resp, 256,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    c->out = resp;
    c->out_len = (size_t)n;
    c->out_off = 0;
    if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) return -1;
    wslay_event_config_set_max_recv_msg_length(c->ws, 16u << 20);
    c->upgraded = 1;
    c->last_rx = time(NULL);
    /* clients of this bench wait for the 101 before they send a frame */
    if ((size_t)(end + 4 - c->head) != c->head_len) return -1;
    free(c->head);
    c->head = NULL;
    return 1;
}

static int flush_head(conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, EPOLLOUT);
            return 0;
        }
        if (w < 0) return -1;
        c->out_off += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
    return 1;
}

static void on_event(conn *c, unsigned ev) {
    if (!c->upgraded) {
        int h = handshake(c);
        if (h < 0) {
            destroy(c);
            return;
        }
        if (h == 0) return;
    }
    if (c->out) {
        int f = flush_head(c);
        if (f < 0) {
            destroy(c);
            return;
        }
        if (f == 0) return;
        set_events(c, EPOLLIN);
        return;
    }
    if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) && wslay_event_recv(c->ws) != 0) {
        destroy(c);
        return;
    }
    if (pump(c) != 0) destroy(c);
}

static void heartbeat(time_t now) {
    conn *c, *next;
    for (c = all; c; c = next) {
        next = c->next;
        if (!c->upgraded || c->out) continue;
        if (now - c->last_rx >= 60) {
            destroy(c);
        } else if (now - c->last_rx >= 30 && !wslay_event_want_write(c->ws)) {
            struct wslay_event_msg m;
            m.opcode = WSLAY_PING;
            m.msg = (const uint8_t *)"hb";
            m.msg_length = 2;
            wslay_event_queue_msg(c->ws, &m);
            if (pump(c) != 0) destroy(c);
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9001, lfd, one = 1;
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    struct epoll_event e, evs[256];
    time_t last_beat = time(NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, SOMAXCONN)) {
        perror("wslay_echo: bind/listen");
        return 1;
    }
    getsockname(lfd, (struct sockaddr *)&a, &al);
    ep = epoll_create1(EPOLL_CLOEXEC);
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    while (!stop) {
        int i, n = epoll_wait(ep, evs, 256, 1000);
        time_t now;
        for (i = 0; i < n; i++) {
            conn *c = (conn *)evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn *nc = (conn *)calloc(1, sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    nc->fd = fd;
                    nc->head = (char *)malloc(MAX_HEAD);
                    if (!nc->head) {
                        free(nc);
                        close(fd);
                        continue;
                    }
                    nc->events = EPOLLIN;
                    nc->next = all;
                    if (all) all->prev = nc;
                    all = nc;
                    memset(&e, 0, sizeof e);
                    e.events = EPOLLIN;
                    e.data.ptr = nc;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            on_event(c, evs[i].events);
        }
        now = time(NULL);
        if (now != last_beat) {
            last_beat = now;
            heartbeat(now);
        }
    }
    while (all) destroy(all);
    close(lfd);
    return 0;
}
