/* frame_loop - a game-style frame loop that drives an rtws_conn (layer 3)
   over its own socket: no rtws_ctx, no host layer, no poll().

   usage: ./frame_loop URL [--frames N] [--every K]
     URL         ws://host[:port]/path, e.g. ws://127.0.0.1:9001/ (build/echo_server)
     --frames N  frames to run before closing (default 300: 5 s at 60 frames/s)
     --every K   send the player's position every K frames (default 10)
     --help      print this and exit
   Every frame (about 16.7 ms) it reads what the socket has into the
   connection, moves a "player" and now and then sends its position as JSON,
   runs the connection's timers and writes what is queued. What comes back is
   printed. After N frames it starts the close handshake, keeps running frames
   until the CLOSE event and the server's end of TCP, then closes the socket.
   Exits 0 after a clean close.
   ws:// only. For wss:// a TLS engine goes between the socket and the
   connection, as the host layer does with BearSSL (layer 5): records from the
   socket into the engine, its plaintext into rtws_conn_recv; rtws_conn_out
   into the engine, its records to the socket. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct game {
    int open, closed, clean, echoes;
} game;

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s URL [--frames N] [--every K]\n"
            "A game-style frame loop driving an rtws_conn over its own socket.\n"
            "  URL         ws://host[:port]/path, e.g. ws://127.0.0.1:9001/ (build/echo_server)\n"
            "  --frames N  frames to run before closing (default 300: 5 s at 60 frames/s)\n"
            "  --every K   send the player's position every K frames (default 10)\n"
            "  --help      print this and exit\n"
            "Prints every message that comes back; exits 0 after a clean close. ws:// only.\n",
            argv0);
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    game *g = (game *)user;
    (void)c;
    if (ev->type == RTWS_EV_OPEN) {
        g->open = 1;
        printf("open\n");
    } else if (ev->type == RTWS_EV_MESSAGE) {
        g->echoes++;
        printf("echo: %.*s\n", (int)ev->message.len, (const char *)ev->message.data);
    } else if (ev->type == RTWS_EV_CLOSE) {
        g->closed = 1;
        g->clean = ev->close.clean;
        printf("closed: code %u, %s\n", ev->close.code, ev->close.clean ? "clean" : "not clean");
    } else if (ev->type == RTWS_EV_ERROR) {
        fprintf(stderr, "frame_loop: %s (HTTP status %d)\n", rtws_err_str(ev->error.err),
                ev->error.status);
    }
}

/* Splits ws://host[:port]/path into the Host header value, host, port, path. */
static int parse_url(const char *url, char *auth, char *host, char *port, const char **path) {
    const char *a = url + 5, *end;
    size_t n;
    if (strncmp(url, "ws://", 5) != 0) return -1;
    end = a + strcspn(a, "/?");
    n = (size_t)(end - a);
    if (n == 0 || n >= 256) return -1;
    memcpy(auth, a, n);
    auth[n] = '\0';
    *path = *end ? end : "/";
    if (auth[0] == '[') { /* [IPv6]:port */
        const char *close = strchr(auth, ']');
        if (!close) return -1;
        memcpy(host, auth + 1, (size_t)(close - auth - 1));
        host[close - auth - 1] = '\0';
        strcpy(port, close[1] == ':' ? close + 2 : "80");
    } else {
        const char *colon = strchr(auth, ':');
        n = colon ? (size_t)(colon - auth) : strlen(auth);
        memcpy(host, auth, n);
        host[n] = '\0';
        strcpy(port, colon ? colon + 1 : "80");
    }
    return 0;
}

/* Resolving and connecting block: a game does this on a loading screen (or a
   thread). Only the frame loop below has to be non-blocking. */
static int dial(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    int fd = -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Whatever the socket has, into the connection (events fire in here). */
static void pump_in(rtws_conn *c, int fd, uint64_t now) {
    for (;;) {
        size_t cap;
        uint8_t *buf = rtws_conn_recv_buf(c, 0, &cap);
        ssize_t r = buf ? read(fd, buf, cap) : -1;
        if (r > 0) rtws_conn_recv_commit(c, (size_t)r, now);
        else if (r < 0 && errno == EINTR) continue;
        else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        else { /* 0: the peer closed TCP; or an error */
            rtws_conn_recv_eof(c, now);
            return;
        }
        if ((size_t)r < cap) return; /* drained */
    }
}

/* What the connection has queued, to the socket, as far as it takes it.
   sendmsg is writev with MSG_NOSIGNAL: a vanished peer gives EPIPE, not SIGPIPE. */
static void pump_out(rtws_conn *c, int fd) {
    rtws_iov v[8];
    struct iovec io[8];
    struct msghdr mh;
    int i, n;
    while ((n = rtws_conn_out_iov(c, v, 8)) > 0) {
        ssize_t w;
        for (i = 0; i < n; i++) {
            io[i].iov_base = (void *)(uintptr_t)v[i].base;
            io[i].iov_len = v[i].len;
        }
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = io;
        mh.msg_iovlen = (size_t)n;
        w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* kernel buffer full (next frame), or the peer is gone
                               (the next read reports it) */
        rtws_conn_out_done(c, (size_t)w);
    }
}

int main(int argc, char **argv) {
    const char *url = NULL, *path;
    char auth[256], host[256], port[256], msg[128];
    long frames = 300, every = 10, frame;
    int fd, i, x = 0, y = 50, dx = 3, dy = 2, sent = 0;
    struct timespec next;
    rtws_client_opts opts;
    rtws_config cfg;
    rtws_conn c;
    rtws_err e;
    game g;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (i == 1 && argv[i][0] != '-') url = argv[i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) frames = atol(argv[++i]);
        else if (!strcmp(argv[i], "--every") && i + 1 < argc) every = atol(argv[++i]);
        else {
            fprintf(stderr, "frame_loop: unexpected argument %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (url && !strncmp(url, "wss://", 6)) {
        fprintf(stderr, "frame_loop: ws:// only (TLS would go between the socket and the "
                        "connection, as layer 5 does)\n");
        return 2;
    }
    if (!url || parse_url(url, auth, host, port, &path) != 0 || every < 1) {
        fprintf(stderr, "frame_loop: needs a ws://host[:port]/path URL first\n");
        usage(stderr, argv[0]);
        return 2;
    }
    if ((fd = dial(host, port)) < 0) {
        fprintf(stderr, "frame_loop: cannot connect to %s:%s\n", host, port);
        return 1;
    }
    memset(&g, 0, sizeof g);
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_CLIENT;
    cfg.on_event = on_event;
    cfg.user = &g;
    rtws_conn_init(&c, &cfg);
    memset(&opts, 0, sizeof opts);
    opts.host = auth;
    opts.path = path;
    if ((e = rtws_conn_start(&c, &opts, rtws_time_now_ms())) != RTWS_OK) {
        fprintf(stderr, "frame_loop: bad URL: its host or path holds a byte a request line "
                        "cannot carry, such as CR or LF (%s)\n", rtws_err_str(e));
        close(fd);
        rtws_conn_free(&c);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &next);
    /* the connection says when it is done: all output written, socket to close */
    for (frame = 0; rtws_conn_want(&c) != RTWS_WANT_CLOSE; frame++) {
        uint64_t now = rtws_time_now_ms();
        pump_in(&c, fd, now);
        /* the game's update: bounce the player around a 100 x 100 field */
        x += dx;
        y += dy;
        if (x <= 0 || x >= 100) dx = -dx;
        if (y <= 0 || y >= 100) dy = -dy;
        if (g.open && frame < frames && frame % every == 0) {
            int n = snprintf(msg, sizeof msg, "{\"type\":\"pos\",\"frame\":%ld,\"x\":%d,\"y\":%d}",
                             frame, x, y);
            if (rtws_conn_send_text(&c, msg, (size_t)n) == RTWS_OK) sent++;
        }
        if (frame == frames && !g.open)
            fprintf(stderr, "frame_loop: not open after %ld frames, giving up\n", frames);
        if (frame == frames) rtws_conn_close(&c, RTWS_CLOSE_NORMAL, "game over");
        rtws_conn_run_timers(&c, now); /* heartbeat, handshake and close timeouts */
        pump_out(&c, fd);
        /* sleep to the next frame, 1/60 s after the last one */
        next.tv_nsec += 1000000000L / 60;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
    close(fd);
    rtws_conn_free(&c);
    printf("%ld frames, %d sent, %d echoed, %s close\n", frame, sent, g.echoes,
           g.clean ? "clean" : "unclean");
    return g.closed && g.clean ? 0 : 1;
}
