/* End to end against build/echo_server (issue 15 item 5): a slow sender is
   closed with 1008 within --message-timeout-ms, however it keeps the
   connection busy (a text frame without FIN followed only by pings and
   pongs; a big frame trickled a byte at a time), while a sender that
   finishes its messages in time, or sends only pings, stays connected.
   The server is spawned on port 0 with a 1500 ms timeout; the whole test
   takes about 8 s. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT_MS 1500
static const char *server_bin = "build/echo_server";

static pid_t srv_pid = -1;
static int srv_port;

/* Spawns the server and reads its "listening on H:P" line (5 s at most). */
static int spawn_server(void) {
    int pfd[2];
    char line[256];
    size_t n = 0;
    uint64_t until;
    if (access(server_bin, X_OK) != 0 && system("make -s build/echo_server >/dev/null") != 0) return 0;
    if (pipe(pfd) != 0) return 0;
    srv_pid = fork();
    if (srv_pid < 0) return 0;
    if (srv_pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(server_bin, server_bin, "--host", "127.0.0.1", "--port", "0", "--message-timeout-ms", "1500",
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    until = rtws_time_now_ms() + 5000;
    while (n + 1 < sizeof line && rtws_time_now_ms() < until) {
        struct pollfd p;
        ssize_t k;
        p.fd = pfd[0];
        p.events = POLLIN;
        if (poll(&p, 1, 100) <= 0) continue;
        k = read(pfd[0], line + n, 1);
        if (k <= 0) break;
        n++;
        if (line[n - 1] == '\n') {
            line[n] = 0;
            if (sscanf(line, "listening on 127.0.0.1:%d", &srv_port) == 1) break;
            n = 0;
        }
    }
    close(pfd[0]);
    return srv_port > 0;
}

static int stop_server(void) {
    int st = 0;
    if (srv_pid <= 0) return 0;
    kill(srv_pid, SIGTERM);
    if (waitpid(srv_pid, &st, 0) != srv_pid) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- a hand-driven client ---- */
typedef struct peer {
    int fd;
    uint8_t in[1 << 16];
    size_t in_len;
    int eof;
    unsigned close_code; /* 0 until a close frame came */
    int pongs;
    int msgs;
    size_t msg_len;
} peer;

static int send_all(peer *p, const void *data, size_t len) {
    const uint8_t *d = (const uint8_t *)data;
    while (len) {
        ssize_t k = send(p->fd, d, len, MSG_NOSIGNAL);
        if (k <= 0) return 0;
        d += k;
        len -= (size_t)k;
    }
    return 1;
}

static int send_frame(peer *p, int fin, rtws_opcode op, const void *data, size_t len) {
    static const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    uint8_t buf[RTWS_FRAME_HEADER_MAX + 256];
    size_t h;
    if (len > 256) return 0;
    h = rtws_frame_header_encode(buf, fin, op, len, key);
    if (len) memcpy(buf + h, data, len);
    rtws_frame_mask(buf + h, len, key, 0);
    return send_all(p, buf, h + len);
}

/* Reads for up to ms and handles whole server frames (returns at a close or EOF). */
static void pump_in(peer *p, int ms) {
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    for (;;) {
        struct pollfd q;
        int64_t left = (int64_t)(until - rtws_time_now_ms());
        ssize_t k;
        for (;;) { /* whole frames first */
            rtws_frame_header fh;
            if (rtws_frame_header_decode(p->in, p->in_len, &fh) != RTWS_OK) break;
            if (fh.header_len + fh.len > p->in_len) break;
            if (fh.opcode == RTWS_OP_PONG) p->pongs++;
            if (fh.opcode == RTWS_OP_CLOSE)
                p->close_code = fh.len >= 2 ? (unsigned)p->in[fh.header_len] << 8 | p->in[fh.header_len + 1] : 1005;
            if (fh.opcode == RTWS_OP_TEXT || fh.opcode == RTWS_OP_BINARY) {
                p->msgs++;
                p->msg_len = (size_t)fh.len;
            }
            memmove(p->in, p->in + fh.header_len + fh.len, p->in_len - fh.header_len - (size_t)fh.len);
            p->in_len -= fh.header_len + (size_t)fh.len;
        }
        if (p->eof || p->close_code || left <= 0) return;
        q.fd = p->fd;
        q.events = POLLIN;
        if (poll(&q, 1, (int)left) <= 0) continue;
        k = recv(p->fd, p->in + p->in_len, sizeof p->in - p->in_len, 0);
        if (k <= 0) p->eof = 1;
        else p->in_len += (size_t)k;
    }
}

/* Waits up to ms for the server to close TCP. */
static int wait_eof(peer *p, int ms) {
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (!p->eof && rtws_time_now_ms() < until) {
        struct pollfd q;
        uint8_t junk[4096];
        q.fd = p->fd;
        q.events = POLLIN;
        if (poll(&q, 1, 100) > 0 && recv(p->fd, junk, sizeof junk, 0) <= 0) p->eof = 1;
    }
    return p->eof;
}

static int open_peer(peer *p) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    struct sockaddr_in a;
    uint64_t until;
    int one = 1;
    char *end;
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (p->fd < 0) return 0;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* one byte is one segment */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv_port);
    a.sin_addr.s_addr = htonl(0x7f000001u);
    if (connect(p->fd, (struct sockaddr *)&a, sizeof a) != 0) return 0;
    if (!send_all(p, req, sizeof req - 1)) return 0;
    until = rtws_time_now_ms() + 3000;
    while (rtws_time_now_ms() < until) {
        struct pollfd q;
        ssize_t k;
        q.fd = p->fd;
        q.events = POLLIN;
        if (poll(&q, 1, 100) <= 0) continue;
        k = recv(p->fd, p->in + p->in_len, sizeof p->in - 1 - p->in_len, 0);
        if (k <= 0) return 0;
        p->in_len += (size_t)k;
        p->in[p->in_len] = 0;
        end = strstr((char *)p->in, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end + 4 - (char *)p->in);
            int ok = strncmp((char *)p->in, "HTTP/1.1 101", 12) == 0;
            memmove(p->in, p->in + head, p->in_len - head);
            p->in_len -= head;
            return ok;
        }
    }
    return 0;
}

/* a text frame without FIN, then only pings and pongs: 1008 after ~TIMEOUT_MS */
static void test_fragment_then_control(void) {
    peer p;
    uint64_t t0, took;
    int pings = 0;
    CHECK(open_peer(&p));
    t0 = rtws_time_now_ms();
    CHECK(send_frame(&p, 0, RTWS_OP_TEXT, "never finished", 14));
    while (!p.close_code && !p.eof && rtws_time_now_ms() - t0 < 6000) {
        send_frame(&p, 1, RTWS_OP_PONG, "unsolicited", 11);
        if (send_frame(&p, 1, RTWS_OP_PING, "still here", 10)) pings++;
        pump_in(&p, 200);
    }
    took = rtws_time_now_ms() - t0;
    printf("fragment + control frames: close %u after %llu ms (%d pings, %d pongs)\n", p.close_code,
           (unsigned long long)took, pings, p.pongs);
    CHECK_EQ(p.close_code, 1008);
    CHECK(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 1500);
    CHECK(pings >= 3 && p.pongs >= pings - 1); /* every ping answered (but one after the close) */
    CHECK(p.msgs == 0);        /* nothing was echoed */
    CHECK(wait_eof(&p, 3000)); /* and the server closed TCP */
    close(p.fd);
}

/* a 100000-byte binary frame trickled a byte every 50 ms */
static void test_trickle(void) {
    peer p;
    uint8_t hdr[RTWS_FRAME_HEADER_MAX];
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t h, i;
    uint64_t t0, took;
    CHECK(open_peer(&p));
    h = rtws_frame_header_encode(hdr, 1, RTWS_OP_BINARY, 100000, key);
    t0 = rtws_time_now_ms();
    for (i = 0; i < h; i++) send_all(&p, hdr + i, 1); /* the header at once */
    for (i = 0; !p.close_code && !p.eof && rtws_time_now_ms() - t0 < 6000; i++) {
        uint8_t b = (uint8_t)('x' ^ key[i & 3]);
        send_all(&p, &b, 1);
        pump_in(&p, 50);
    }
    took = rtws_time_now_ms() - t0;
    printf("trickled frame: close %u after %llu ms (%u payload bytes sent)\n", p.close_code,
           (unsigned long long)took, (unsigned)i);
    CHECK_EQ(p.close_code, 1008);
    CHECK(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 1500);
    CHECK(wait_eof(&p, 3000));
    close(p.fd);
}

/* messages finished in time, and pings alone, never trip it */
static void test_in_time(void) {
    peer p;
    uint64_t t0;
    int round, pings = 0;
    CHECK(open_peer(&p));
    t0 = rtws_time_now_ms();
    for (round = 0; round < 3; round++) { /* 3 messages, each in 3 fragments over ~900 ms */
        send_frame(&p, 0, RTWS_OP_TEXT, "ab", 2);
        pump_in(&p, 400);
        send_frame(&p, 0, RTWS_OP_CONT, "cd", 2);
        pings += send_frame(&p, 1, RTWS_OP_PING, "hi", 2); /* between fragments */
        pump_in(&p, 400);
        send_frame(&p, 1, RTWS_OP_CONT, "ef", 2);
        pump_in(&p, 100);
    }
    while (rtws_time_now_ms() - t0 < 2 * TIMEOUT_MS + 1000 && !p.close_code && !p.eof) { /* pings only */
        pings += send_frame(&p, 1, RTWS_OP_PING, "p", 1);
        pump_in(&p, 200);
    }
    printf("in time: %d echoes, %d pongs, close %u, eof %d after %llu ms\n", p.msgs, p.pongs, p.close_code,
           p.eof, (unsigned long long)(rtws_time_now_ms() - t0));
    CHECK_EQ(p.msgs, 3);
    CHECK_EQ(p.msg_len, 6);
    CHECK_EQ(p.close_code, 0);
    CHECK(!p.eof);
    pump_in(&p, 300); /* the last pong */
    CHECK_EQ(p.pongs, pings);
    close(p.fd);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (!spawn_server()) {
        CHECK(0 && "echo_server did not start");
        if (srv_pid > 0) stop_server();
        return T_END();
    }
    test_fragment_then_control();
    test_trickle();
    test_in_time();
    CHECK(stop_server());
    return T_END();
}
