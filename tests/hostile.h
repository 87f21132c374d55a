/* tests/hostile.h - helpers for hostile-input tests against the real example
   servers: spawn one as a child on port 0, talk raw bytes to it over TCP on
   127.0.0.1, read back the HTTP status or the close code, watch its RSS.
   Header-only, POSIX/Linux (/proc), no rtws.h needed. Used by
   tests/e2e_hostile.c; include it from new e2e_*.c files the same way.

     hs_server s;
     const char *argv[] = {"build/asan_echo_server", "--port", "0", NULL};
     if (hs_spawn(&s, argv) != 0) ...;          // waits for "listening on H:P"
     int fd = hs_connect(s.port);
     hs_upgrade(fd, "/", NULL, 2000);            // 101 or the status it got
     hs_send(fd, frame, n);
     int code = hs_read_close(fd, 2000);         // close code, HS_EOF, HS_TIMEOUT
     long kb = hs_rss_kb(s.pid);
     hs_stop(&s);                                // SIGTERM, wait, exit status

   Every wait is bounded by a timeout in milliseconds. */
#ifndef RTWS_HOSTILE_H
#define RTWS_HOSTILE_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HS_EOF (-1)     /* the server closed TCP without (another) frame or head */
#define HS_TIMEOUT (-2) /* nothing decisive within the time given */
#define HS_ERROR (-3)   /* malformed answer, or a local failure */

typedef struct hs_server {
    pid_t pid;
    int port;
    int out;        /* read end of the child's stdout+stderr */
    char log[4096]; /* what it printed so far (start-up, mostly) */
    size_t loglen;
} hs_server;

static uint64_t hs_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hs_sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* reads whatever the child printed, without blocking */
static void hs_drain_log(hs_server *s) {
    char tmp[1024];
    for (;;) {
        struct pollfd p;
        ssize_t r;
        p.fd = s->out;
        p.events = POLLIN;
        if (s->out < 0 || poll(&p, 1, 0) <= 0) return;
        r = read(s->out, tmp, sizeof tmp);
        if (r <= 0) return;
        if (s->loglen + (size_t)r < sizeof s->log) {
            memcpy(s->log + s->loglen, tmp, (size_t)r);
            s->loglen += (size_t)r;
            s->log[s->loglen] = '\0';
        }
    }
}

/* Starts argv[0] with argv (NULL-terminated) and waits up to 10 s for its
   "listening on H:P" line. Returns 0 with s->pid and s->port set. */
static int hs_spawn(hs_server *s, const char *const *argv) {
    int pfd[2];
    uint64_t until = hs_now_ms() + 10000;
    memset(s, 0, sizeof *s);
    s->out = -1;
    if (pipe(pfd) != 0) return -1;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->out = pfd[0];
    while (hs_now_ms() < until) {
        const char *l;
        struct pollfd p;
        p.fd = s->out;
        p.events = POLLIN;
        poll(&p, 1, 100);
        hs_drain_log(s);
        l = strstr(s->log, "listening on ");
        if (l && strchr(l, '\n')) {
            const char *colon = strchr(l, '\n');
            while (colon > l && *colon != ':')
                colon--;
            s->port = atoi(colon + 1);
            return s->port > 0 ? 0 : -1;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
    }
    return -1;
}

/* 1 while the child runs */
static int hs_alive(hs_server *s) {
    int st;
    if (s->pid <= 0) return 0;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
        s->pid = -s->pid; /* reaped: remember it died */
        return 0;
    }
    return 1;
}

/* SIGTERM, then up to 5 s for it to exit (SIGKILL after that). Returns its
   exit status, 128 + the signal that ended it, or -1. */
static int hs_stop(hs_server *s) {
    int st = 0, rc = -1;
    uint64_t until = hs_now_ms() + 5000;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        while (hs_now_ms() < until) {
            pid_t w = waitpid(s->pid, &st, WNOHANG);
            if (w == s->pid) break;
            hs_sleep_ms(20);
            hs_drain_log(s);
        }
        if (waitpid(s->pid, &st, WNOHANG) == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
        }
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        s->pid = 0;
    }
    hs_drain_log(s);
    if (s->out >= 0) close(s->out);
    s->out = -1;
    return rc;
}

/* VmRSS of a process in KiB, or -1 */
static long hs_rss_kb(pid_t pid) {
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* A blocking TCP connection to 127.0.0.1:port, or -1 */
static int hs_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of it (a peer that closed early is not an error here: the
   answer it sent is what the test reads). Returns bytes sent. */
static size_t hs_send(int fd, const void *data, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    return off;
}

/* Reads into buf[*have..cap) until pred-less: one read with a deadline.
   Returns bytes read, 0 on EOF, -1 on timeout or error. */
static ssize_t hs_read_some(int fd, uint8_t *buf, size_t cap, uint64_t until) {
    for (;;) {
        struct pollfd p;
        uint64_t now = hs_now_ms();
        int r;
        if (now >= until) return -1;
        p.fd = fd;
        p.events = POLLIN;
        r = poll(&p, 1, (int)(until - now));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        {
            ssize_t n = recv(fd, buf, cap, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno == ECONNRESET ? 0 : -1;
            return n;
        }
    }
}

/* Bytes read past an HTTP head, kept for the frame reader: one connection
   is read at a time (hs_read_status starts it afresh). */
typedef struct hs_conn_buf {
    uint8_t b[(1 << 20) + 64];
    size_t n;
} hs_conn_buf;
static hs_conn_buf hs_rest;

/* Reads an HTTP response head. Returns its status (101, 400, ...), HS_EOF,
   HS_TIMEOUT or HS_ERROR; the head (NUL-terminated, up to cap - 1 bytes)
   goes to head when not NULL. Bytes after the head stay for hs_read_frame. */
static int hs_read_status(int fd, char *head, size_t cap, unsigned timeout_ms) {
    uint8_t buf[16384];
    size_t n = 0;
    uint64_t until = hs_now_ms() + timeout_ms;
    hs_rest.n = 0;
    for (;;) {
        ssize_t r;
        uint8_t *end = NULL;
        size_t i;
        for (i = 0; n >= 4 && i + 4 <= n; i++)
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                end = buf + i + 4;
                break;
            }
        if (end) {
            size_t hl = (size_t)(end - buf);
            if (head && cap) {
                size_t k = hl < cap - 1 ? hl : cap - 1;
                memcpy(head, buf, k);
                head[k] = '\0';
            }
            memcpy(hs_rest.b, end, n - hl);
            hs_rest.n = n - hl;
            if (hl < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0) return HS_ERROR;
            return atoi((const char *)buf + 9);
        }
        if (n == sizeof buf) return HS_ERROR;
        r = hs_read_some(fd, buf + n, sizeof buf - n, until);
        if (r < 0) return HS_TIMEOUT;
        if (r == 0) return n ? HS_ERROR : HS_EOF;
        n += (size_t)r;
    }
}

/* A client frame: b0 (FIN, RSV and opcode bits as given), minimal length
   form, masked with the key 11 22 33 44. Returns its size, or 0 when cap is
   too small. */
static size_t hs_frame(uint8_t *out, size_t cap, uint8_t b0, const void *payload, size_t len) {
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = 2, i;
    if (cap < len + 14) return 0;
    out[0] = b0;
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        h = 4;
    } else {
        out[1] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + h, key, 4);
    for (i = 0; i < len; i++)
        out[h + 4 + i] = (uint8_t)(((const uint8_t *)payload)[i] ^ key[i & 3]);
    return h + 4 + len;
}

/* One server frame (unmasked). Returns its opcode with *len and up to cap
   payload bytes in payload; HS_EOF, HS_TIMEOUT or HS_ERROR. */
static int hs_read_frame(int fd, uint8_t *payload, size_t cap, size_t *len, unsigned timeout_ms) {
    uint64_t until = hs_now_ms() + timeout_ms;
    for (;;) {
        uint8_t *b = hs_rest.b;
        size_t n = hs_rest.n, h = 2;
        uint64_t pl;
        ssize_t r;
        if (n >= 2) {
            pl = b[1] & 0x7f;
            if (b[1] & 0x80) return HS_ERROR; /* servers never mask */
            if (pl == 126)
                h = 4;
            else if (pl == 127)
                h = 10;
            if (n >= h) {
                size_t i;
                if (h == 4) pl = (uint64_t)b[2] << 8 | b[3];
                if (h == 10)
                    for (pl = 0, i = 0; i < 8; i++)
                        pl = pl << 8 | b[2 + i];
                if (pl > sizeof hs_rest.b - h) return HS_ERROR;
                if (n >= h + pl) {
                    int op = b[0] & 0x0f;
                    size_t k = (size_t)pl < cap ? (size_t)pl : cap;
                    if (payload) memcpy(payload, b + h, k);
                    if (len) *len = (size_t)pl;
                    memmove(b, b + h + pl, n - h - (size_t)pl);
                    hs_rest.n = n - h - (size_t)pl;
                    return op;
                }
            }
        }
        if (hs_rest.n == sizeof hs_rest.b) return HS_ERROR;
        r = hs_read_some(fd, hs_rest.b + hs_rest.n, sizeof hs_rest.b - hs_rest.n, until);
        if (r < 0) return HS_TIMEOUT;
        if (r == 0) return HS_EOF;
        hs_rest.n += (size_t)r;
    }
}

/* Reads frames until a close frame: returns its code (1005 when it has
   none), or HS_EOF / HS_TIMEOUT / HS_ERROR. Data, ping and pong frames on
   the way are skipped. */
static int hs_read_close(int fd, unsigned timeout_ms) {
    uint64_t until = hs_now_ms() + timeout_ms;
    for (;;) {
        uint8_t p[125];
        size_t len = 0;
        uint64_t now = hs_now_ms();
        int op = hs_read_frame(fd, p, sizeof p, &len, now < until ? (unsigned)(until - now) : 0);
        if (op < 0) return op;
        if (op == 8) return len >= 2 ? (p[0] << 8 | p[1]) : 1005;
    }
}

/* A valid upgrade of path with extra raw header lines (may be NULL).
   Returns the status (101 when it opened). */
static int hs_upgrade(int fd, const char *path, const char *extra, unsigned timeout_ms) {
    char req[16384];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, extra ? extra : "");
    if (n <= 0 || (size_t)n >= sizeof req) return HS_ERROR;
    hs_send(fd, req, (size_t)n);
    return hs_read_status(fd, NULL, 0, timeout_ms);
}

#endif /* RTWS_HOSTILE_H */
