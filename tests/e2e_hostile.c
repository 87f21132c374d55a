/* Hostile input against the real example servers (issue 15). Starts
   build/asan_echo_server and build/asan_chat_server (ASan+UBSan: a memory
   error or UB aborts the server, which the liveness check after every case
   sees) as child processes on port 0, sends raw bytes over TCP to 127.0.0.1
   and checks, case by case:
     - the answer: an HTTP status (with a header it must carry), a close
       code, a frame, or the connection being dropped;
     - that the server is still alive and answering afterwards (a fresh
       upgrade and an echo, or a welcome from the chat server);
     - that its RSS (/proc/PID/status VmRSS) stays within RSS_GROWTH_KB of
       what it was at start;
   and at the end that both exit 0 on SIGTERM (LeakSanitizer included).
   Two cases start a server of their own: build/echo_server --memory-budget 8
   under never-reading clients (1013, RSS bounded; the release build, whose
   RSS means something) and build/asan_chat_server --channel-ttl 1 (every
   channel of clients that left expires). All attacks at once, under a
   64 MiB budget: tests/e2e_hostile_load.c.

   To add a case, add a row to `cases` below: raw bytes (RAW("...")), or a
   build function for bytes made at run time (lengths, tokens, the port), or
   a run function for a case that is a whole dialogue (floods, slowloris).
   Helpers (spawn, connect, send, read status/close code, RSS) live in
   tests/hostile.h for other e2e_* files. The whole run takes ~15 s. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "hostile.h"

#define SECRET "hostile-secret"
#define RSS_GROWTH_KB (64L * 1024) /* per server, over its RSS after start-up */

enum { S_ECHO, S_CHAT, S_COUNT };
enum {
    X_STATUS, /* HTTP status want; contains: in the head */
    X_CLOSE,  /* close code want */
    X_FRAME,  /* first frame: opcode want, payload length clen */
    X_TEXT,   /* a text frame containing contains arrives (others skipped) */
    X_DROP,   /* the server closes TCP (EOF) */
    X_RUN     /* run() decides */
};

typedef struct henv {
    hs_server srv[S_COUNT];
    long rss0[S_COUNT];
    int died[S_COUNT]; /* restarted after a case killed it: the exit check fails */
} henv;

typedef struct hcase {
    const char *name;
    int server;       /* S_ECHO or S_CHAT */
    const char *path; /* a valid upgrade of this path first (101), NULL: none */
    const char *bytes;
    size_t len;
    size_t (*build)(uint8_t *out, size_t cap, const henv *env);
    int kind, want;
    size_t clen;                                  /* X_FRAME: payload length */
    const char *contains;                         /* X_STATUS: in the head; X_TEXT: in the text */
    int (*run)(henv *env, char *why, size_t cap); /* X_RUN: 1 passed, 0 failed (why says) */
} hcase;

#define RAW(s) s, sizeof(s) - 1, NULL
#define BUILD(f) NULL, 0, f
#define NONE NULL, 0, NULL

/* ---- bytes made at run time ---- */

static uint8_t big[(1 << 20) + 4096];

static size_t b_len7(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    return hs_frame(o, cap, 0x82, "hello", 5);
}
static size_t b_len16(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'x', 300);
    return hs_frame(o, cap, 0x82, big, 300);
}
static size_t b_len64(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'y', 70000);
    return hs_frame(o, cap, 0x82, big, 70000);
}
/* 126 with length 5 / 127 with length 200: not the minimal form (RFC 6455 §5.2) */
static size_t b_nonmin16(uint8_t *o, size_t cap, const henv *e) {
    static const uint8_t f[] = {0x82, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    (void)e;
    (void)cap;
    memcpy(o, f, sizeof f);
    return sizeof f;
}
static size_t b_nonmin64(uint8_t *o, size_t cap, const henv *e) {
    static const uint8_t f[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x00, 0xc8, 0, 0, 0, 0};
    (void)e;
    memcpy(o, f, sizeof f);
    memset(o + sizeof f, 'z', 200);
    return cap >= sizeof f + 200 ? sizeof f + 200 : 0;
}
static size_t b_ping126(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'p', 126);
    return hs_frame(o, cap, 0x89, big, 126);
}
static size_t b_close126(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'c', 126);
    big[0] = 0x03;
    big[1] = 0xe8;
    return hs_frame(o, cap, 0x88, big, 126);
}
/* one request line of 9,000 bytes (the probe's); one header of 9,000 bytes */
static size_t b_long_line(uint8_t *o, size_t cap, const henv *e) {
    size_t n = 0;
    (void)e;
    (void)cap;
    memcpy(o, "GET /", 5);
    memset(o + 5, 'a', 9000);
    n = 9005;
    n += (size_t)sprintf((char *)o + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    return n;
}
static size_t b_long_header(uint8_t *o, size_t cap, const henv *e) {
    int n = sprintf((char *)o, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    (void)e;
    (void)cap;
    memset(o + n, 'b', 9000);
    memcpy(o + n + 9000, "\r\n\r\n", 4);
    return (size_t)n + 9004;
}
static size_t b_garbage(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    (void)cap;
    memset(o, 0xff, 9000);
    return 9000;
}
static size_t b_many_headers(uint8_t *o, size_t cap, const henv *e) {
    int n = sprintf((char *)o, "GET / HTTP/1.1\r\nHost: x\r\n"), i;
    (void)e;
    (void)cap;
    for (i = 0; i < 100; i++)
        n += sprintf((char *)o + n, "X-%d: y\r\n", i);
    n += sprintf((char *)o + n, "\r\n");
    return (size_t)n;
}

#define UPG                                                                                        \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                   \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

/* DNS rebinding: a hostile page at evil.example:P, the name pointed at us */
static size_t b_rebind(uint8_t *o, size_t cap, const henv *e) {
    int p = e->srv[S_CHAT].port;
    return (size_t)snprintf(
        (char *)o, cap,
        "GET /ws HTTP/1.1\r\nHost: evil.example:%d\r\nOrigin: http://evil.example:%d\r\n" UPG
        "\r\n",
        p, p);
}
static size_t b_origin_own(uint8_t *o, size_t cap, const henv *e) {
    int p = e->srv[S_CHAT].port;
    return (size_t)snprintf(
        (char *)o, cap,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n" UPG "\r\n", p,
        p);
}
static size_t b_origin_localhost(uint8_t *o, size_t cap, const henv *e) {
    int p = e->srv[S_CHAT].port;
    return (size_t)snprintf(
        (char *)o, cap,
        "GET /ws HTTP/1.1\r\nHost: localhost:%d\r\nOrigin: http://LocalHost:%d\r\n" UPG "\r\n", p,
        p);
}
static size_t b_origin_other_port(uint8_t *o, size_t cap, const henv *e) {
    int p = e->srv[S_CHAT].port;
    return (size_t)snprintf(
        (char *)o, cap,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n" UPG "\r\n", p,
        p == 1 ? 2 : p - 1);
}

/* upgrade requests carrying a token, in the query or the header */
static size_t with_token(uint8_t *o, size_t cap, const char *tok, size_t tn, int header) {
    size_t n = 0;
    n += (size_t)snprintf((char *)o, cap, "GET /ws%s", header ? "" : "?token=");
    if (!header) {
        memcpy(o + n, tok, tn);
        n += tn;
    }
    n += (size_t)snprintf((char *)o + n, cap - n, " HTTP/1.1\r\nHost: 127.0.0.1\r\n" UPG);
    if (header) {
        n += (size_t)snprintf((char *)o + n, cap - n, "Authorization: Bearer ");
        memcpy(o + n, tok, tn);
        n += tn;
        n += (size_t)snprintf((char *)o + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf((char *)o + n, cap - n, "\r\n");
    return n;
}
static size_t signed_token(const char *claims, char *tok, size_t cap) {
    return rtws_jwt_hs256_sign(claims, SECRET, strlen(SECRET), tok, cap);
}
static size_t b_tok_huge_exp_query(uint8_t *o, size_t cap, const henv *e) {
    char tok[600];
    size_t n = signed_token("{\"sub\":\"u1\",\"exp\":9223372036854775807}", tok, sizeof tok);
    (void)e;
    return with_token(o, cap, tok, n, 0);
}
static size_t b_tok_huge_exp_header(uint8_t *o, size_t cap, const henv *e) {
    char tok[600];
    size_t n = signed_token("{\"sub\":\"u2\",\"exp\":9223372036854775807}", tok, sizeof tok);
    (void)e;
    return with_token(o, cap, tok, n, 1);
}
static size_t b_tok_range(uint8_t *o, size_t cap, const henv *e) {
    char tok[600];
    size_t n = signed_token("{\"sub\":\"u1\",\"exp\":1e30}", tok, sizeof tok);
    (void)e;
    return with_token(o, cap, tok, n, 0);
}
static size_t b_tok_long_query(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'a', 5000);
    return with_token(o, cap, (const char *)big, 5000, 0);
}
static size_t b_tok_long_header(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'a', 4097);
    return with_token(o, cap, (const char *)big, 4097, 1);
}
static size_t b_tok_header_too_big(uint8_t *o, size_t cap, const henv *e) {
    (void)e;
    memset(big, 'a', 9000);
    return with_token(o, cap, (const char *)big, 9000, 1);
}
/* the auth message with the probe's never-expiring token */
static size_t b_auth_huge_exp(uint8_t *o, size_t cap, const henv *e) {
    char tok[600], msg[800];
    size_t n = signed_token("{\"sub\":\"u3\",\"exp\":9223372036854775807}", tok, sizeof tok);
    int m = snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%.*s\"}", (int)n, tok);
    (void)e;
    return hs_frame(o, cap, 0x81, msg, (size_t)m);
}
static size_t b_auth_long(uint8_t *o, size_t cap, const henv *e) {
    size_t n;
    (void)e;
    n = (size_t)sprintf((char *)big + 5000, "{\"type\":\"auth\",\"token\":\"");
    memset(big + 5000 + n, 'a', 5000);
    n += 5000;
    n += (size_t)sprintf((char *)big + 5000 + n, "\"}");
    return hs_frame(o, cap, 0x81, big + 5000, n);
}

/* ---- whole dialogues ---- */

static int upgrade_new(const henv *env, int server, const char *path) {
    int fd = hs_connect(env->srv[server].port);
    if (fd >= 0 && hs_upgrade(fd, path, NULL, 3000) != 101) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* reads frames until a text frame equal to want; counts pongs on the way */
static int await_text(int fd, const char *want, long *pongs, unsigned ms) {
    uint64_t until = hs_now_ms() + ms;
    size_t wl = strlen(want);
    for (;;) {
        size_t len = 0;
        uint64_t now = hs_now_ms();
        int op =
            hs_read_frame(fd, big, sizeof big, &len, now < until ? (unsigned)(until - now) : 0);
        if (op < 0) return 0;
        if (op == 0xA && pongs) (*pongs)++;
        if (op == 1 && len == wl && memcmp(big, want, wl) == 0) return 1;
    }
}

/* many connections trickling a handshake one byte at a time: every one is
   dropped at --handshake-timeout (1000 ms), none lives to 3 s */
static int r_slowloris(henv *env, char *why, size_t cap) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" UPG "\r\n";
    enum { N = 20 };
    int fds[N], open_ = N, i, ok = 1;
    size_t sent = 0;
    uint64_t t0 = hs_now_ms(), first = 0, last = 0;
    for (i = 0; i < N; i++)
        fds[i] = hs_connect(env->srv[S_ECHO].port);
    while (open_ > 0 && hs_now_ms() - t0 < 4000 && sent < sizeof req - 2) {
        for (i = 0; i < N; i++) {
            char c;
            struct pollfd p;
            if (fds[i] < 0) continue;
            p.fd = fds[i];
            p.events = POLLIN;
            if (poll(&p, 1, 0) > 0 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_--;
                last = hs_now_ms() - t0;
                if (!first) first = last;
                continue;
            }
            send(fds[i], req + sent, 1, MSG_NOSIGNAL);
        }
        sent++;
        hs_sleep_ms(50);
    }
    if (open_ > 0 || first < 700 || last > 3000) {
        snprintf(why, cap, "%d of %d still open; dropped from %llu to %llu ms (want 1000-3000)",
                 open_, N, (unsigned long long)first, (unsigned long long)last);
        ok = 0;
    } else {
        snprintf(why, cap, "all %d dropped from %llu to %llu ms", N, (unsigned long long)first,
                 (unsigned long long)last);
    }
    for (i = 0; i < N; i++)
        if (fds[i] >= 0) close(fds[i]);
    return ok;
}

/* 50,000 pongs nobody asked for, then an echo that must come back */
static int r_pong_flood(henv *env, char *why, size_t cap) {
    int fd = upgrade_new(env, S_ECHO, "/"), i, ok;
    size_t n = 0, f;
    if (fd < 0) return snprintf(why, cap, "no upgrade"), 0;
    for (i = 0; i < 50000; i++) {
        f = hs_frame(big + n, sizeof big - n, 0x8a, "unsolicited-pong", 16);
        n += f;
        if (sizeof big - n < 64 || i == 49999) {
            hs_send(fd, big, n);
            n = 0;
        }
    }
    n = hs_frame(big, sizeof big, 0x81, "after pongs", 11);
    hs_send(fd, big, n);
    ok = await_text(fd, "after pongs", NULL, 10000);
    if (!ok) snprintf(why, cap, "no echo after the pong flood");
    close(fd);
    return ok;
}

/* 20,000 pings sent as fast as the socket takes them while the answers are
   read; every ping is answered or superseded (RFC 6455 §5.5.3 lets a pong
   answer only the latest), and the echo after them comes back */
static int r_ping_flood(henv *env, char *why, size_t cap) {
    int fd = upgrade_new(env, S_ECHO, "/"), i, ok;
    long pongs = 0;
    size_t n = 0;
    uint8_t payload[100];
    if (fd < 0) return snprintf(why, cap, "no upgrade"), 0;
    memset(payload, 'q', sizeof payload);
    for (i = 0; i < 20000; i++) {
        n += hs_frame(big + n, sizeof big - n, 0x89, payload, sizeof payload);
        if (n > 100000 || i == 19999) {
            hs_send(fd, big, n);
            n = 0;
            for (;;) { /* read what is there, without waiting */
                size_t len;
                int op = hs_read_frame(fd, NULL, 0, &len, 0);
                if (op < 0) break;
                if (op == 0xA) pongs++;
            }
        }
    }
    n = hs_frame(big, sizeof big, 0x81, "after pings", 11);
    hs_send(fd, big, n);
    ok = await_text(fd, "after pings", &pongs, 15000);
    if (!ok)
        snprintf(why, cap, "no echo after the ping flood (%ld pongs)", pongs);
    else if (pongs < 1)
        ok = 0, snprintf(why, cap, "no pong at all");
    close(fd);
    return ok;
}

/* the "fragments over 16 MiB" row: 8 MiB declared in the first fragment is
   fine, a second one of 8 MiB + 1 passes the message cap: 1009 at its header */
static int r_fragments_over(henv *env, char *why, size_t cap) {
    int fd = upgrade_new(env, S_ECHO, "/"), code;
    size_t left = (size_t)8 << 20;
    if (fd < 0) return snprintf(why, cap, "no upgrade"), 0;
    {
        static const uint8_t h1[] = {0x02, 0xff, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0};
        hs_send(fd, h1, sizeof h1);
    }
    memset(big, 0, sizeof big);
    while (left) {
        size_t n = left < sizeof big ? left : sizeof big;
        if (hs_send(fd, big, n) != n) break;
        left -= n;
    }
    {
        static const uint8_t h2[] = {0x80, 0xff, 0, 0, 0, 0, 0, 0x80, 0, 0x01, 0, 0, 0, 0};
        hs_send(fd, h2, sizeof h2);
    }
    hs_rest.n = 0;
    code = hs_read_close(fd, 10000);
    close(fd);
    if (code != 1009) return snprintf(why, cap, "close code %d, want 1009", code), 0;
    return 1;
}

/* starts a server of its own for a case; 1 when it runs */
static int own_server(hs_server *s, const char *const *argv, char *why, size_t cap) {
    if (access(argv[0], X_OK) != 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "make -s %s >/dev/null", argv[0]);
        if (system(cmd) != 0) return snprintf(why, cap, "cannot build %s", argv[0]), 0;
    }
    if (hs_spawn(s, argv) != 0) return snprintf(why, cap, "%s did not start", argv[0]), 0;
    return 1;
}

/* GET /ws/status: a number of its JSON (after "memory" for the memory
   figures), or -1 */
static long long status_num(int port, const char *key, int in_memory) {
    static const char req[] = "GET /ws/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    static char body[65536];
    size_t n = 0;
    const char *p;
    uint64_t until = hs_now_ms() + 3000;
    int fd = hs_connect(port);
    if (fd < 0) return -1;
    hs_send(fd, req, sizeof req - 1);
    for (;;) {
        ssize_t r = hs_read_some(fd, (uint8_t *)body + n, sizeof body - 1 - n, until);
        const char *e, *cl;
        if (r <= 0) break;
        n += (size_t)r;
        body[n] = 0;
        e = strstr(body, "\r\n\r\n");
        cl = strstr(body, "Content-Length:");
        if (e && cl && n >= (size_t)(e + 4 - body) + (size_t)atol(cl + 15)) break;
    }
    close(fd);
    body[n] = 0;
    p = in_memory ? strstr(body, "\"memory\":{") : body;
    if (!p || !(p = strstr(p, key))) return -1;
    return atoll(p + strlen(key));
}

/* item 2: 5 clients publish 60 KiB messages to 20 fresh channels each,
   then leave; with --channel-ttl 1 every channel and its history is gone
   within 4 s, and the budget's figure comes back down */
static int r_channel_expiry(henv *env, char *why, size_t cap) {
    const char *argv[] = {"build/asan_chat_server", "--host", "127.0.0.1", "--port", "0",
                          "--channel-ttl", "1", "--memory-budget", "64", NULL};
    static char msg[61440 + 200];
    hs_server s;
    int fds[5], i, k, ok = 1, rc;
    long long ch = -1, hist = -1, used = -1, peak_ch;
    uint64_t until;
    (void)env;
    if (!own_server(&s, argv, why, cap)) return 0;
    for (i = 0; i < 5; i++) {
        fds[i] = hs_connect(s.port);
        if (fds[i] < 0 || hs_upgrade(fds[i], "/ws", NULL, 3000) != 101) ok = 0;
    }
    for (k = 0; ok && k < 20; k++) /* 20 each: within the burst of 40 */
        for (i = 0; i < 5; i++) {
            int m = snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"channel\":\"fresh-%d-%d\","
                                              "\"data\":\"%061440d\"}", i, k, 0);
            size_t n = hs_frame(big, sizeof big, 0x81, msg, (size_t)m);
            hs_send(fds[i], big, n);
        }
    hs_sleep_ms(300);
    peak_ch = status_num(s.port, "\"channels\":", 0);
    for (i = 0; i < 5; i++)
        if (fds[i] >= 0) close(fds[i]);
    until = hs_now_ms() + 4000;
    while (hs_now_ms() < until) {
        ch = status_num(s.port, "\"channels\":", 0);
        hist = status_num(s.port, "\"history\":", 1);
        used = status_num(s.port, "\"used\":", 1);
        if (ch == 0 && hist == 0) break;
        hs_sleep_ms(100);
    }
    rc = hs_stop(&s);
    if (!ok || peak_ch < 100 || ch != 0 || hist != 0 || used < 0 || used > 256 * 1024 || rc != 0) {
        snprintf(why, cap, "channels %lld after the publishes, %lld at the end, history %lld, used %lld,"
                 " exit %d", peak_ch, ch, hist, used, rc);
        return 0;
    }
    snprintf(why, cap, "%lld channels, 0 within 4 s; budget used %lld bytes after", peak_ch, used);
    return 1;
}

/* item 3: 8 clients send 60 KiB frames to build/echo_server --memory-budget
   8 and never read. Without the budget each echo queue may reach
   max_send_queue (64 MiB: 512 MiB in all); with it, the largest queues are
   closed with 1013 and the server's RSS stays within the 8 MiB budget + its
   32 MiB buffer pool + 24 MiB of allocator slack over its idle RSS. (The
   release build: ASan's quarantine would hide what the budget saves.) */
static int r_echo_budget(henv *env, char *why, size_t cap) {
    const char *argv[] = {"build/echo_server", "--host", "127.0.0.1", "--port", "0",
                          "--memory-budget", "8", NULL};
    enum { NC = 8, FRAME = 61440 };
    static uint8_t frame[FRAME + 8];
    hs_server s;
    int fds[NC], i, c1013 = 0, ceof = 0, cother = 0, copen = 0, rc, small = 4096;
    size_t off[NC];
    long rss0, peak = 0, bound;
    unsigned long long sent = 0;
    uint64_t until, next_rss = 0;
    (void)env;
    if (!own_server(&s, argv, why, cap)) return 0;
    hs_sleep_ms(100);
    rss0 = hs_rss_kb(s.pid);
    bound = rss0 + (8 + 32 + 24) * 1024L;
    frame[0] = 0x82;
    frame[1] = 0xfe;
    frame[2] = (uint8_t)(FRAME >> 8);
    frame[3] = (uint8_t)FRAME;
    memset(frame + 4, 0, 4);
    memset(frame + 8, 'e', FRAME);
    for (i = 0; i < NC; i++) {
        off[i] = 0;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        {
            struct sockaddr_in a;
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)s.port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
                hs_upgrade(fds[i], "/", NULL, 3000) != 101) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        if (fds[i] >= 0) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL, 0) | O_NONBLOCK);
    }
    until = hs_now_ms() + 2500;
    while (hs_now_ms() < until) {
        int any = 0;
        for (i = 0; i < NC; i++) {
            ssize_t w;
            if (fds[i] < 0) continue;
            w = send(fds[i], frame + off[i], sizeof frame - off[i], MSG_NOSIGNAL);
            if (w > 0) {
                off[i] = (off[i] + (size_t)w) % sizeof frame, sent += (unsigned long long)w;
                any = 1;
            }
        }
        if (hs_now_ms() >= next_rss) {
            long kb = hs_rss_kb(s.pid);
            if (kb > peak) peak = kb;
            next_rss = hs_now_ms() + 20;
        }
        if (!any) hs_sleep_ms(1);
    }
    for (i = 0; i < NC; i++) { /* now read: the close frame, if any, comes last */
        int code;
        if (fds[i] < 0) {
            cother++;
            continue;
        }
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL, 0) & ~O_NONBLOCK);
        hs_rest.n = 0;
        code = hs_read_close(fds[i], 1500);
        if (code == 1013) c1013++;
        else if (code == HS_EOF) ceof++;
        else if (code == HS_TIMEOUT) copen++;
        else cother++;
        close(fds[i]);
    }
    {
        long kb = hs_rss_kb(s.pid);
        if (kb > peak) peak = kb;
    }
    rc = hs_alive(&s) ? hs_stop(&s) : -1;
    snprintf(why, cap, "%llu MiB sent; %d closed 1013, %d EOF, %d open, %d other; RSS %ld -> peak %ld"
             " KiB (bound %ld)", sent >> 20, c1013, ceof, copen, cother, rss0, peak, bound);
    return c1013 >= 1 && cother == 0 && sent > (64ull << 20) && peak <= bound && rc == 0;
}

/* ---- the cases ---- */

#define E S_ECHO
#define C S_CHAT
static const hcase cases[] = {
    /* item 8: request line over its limit -> 414, header fields over theirs -> 431 */
    {"request line of 9000 bytes", E, NULL, BUILD(b_long_line), X_STATUS, 414, 0, NULL, NULL},
    {"header of 9000 bytes", E, NULL, BUILD(b_long_header), X_STATUS, 431, 0, NULL, NULL},
    {"100 headers", E, NULL, BUILD(b_many_headers), X_STATUS, 431, 0, NULL, NULL},
    /* handshake abuse */
    {"valid handshake", E, NULL, RAW("GET / HTTP/1.1\r\nHost: x\r\n" UPG "\r\n"), X_STATUS, 101, 0,
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL},
    {"version 8", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
     X_STATUS, 426, 0, "Sec-WebSocket-Version: 13", NULL},
    {"no version", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
     X_STATUS, 426, 0, "Sec-WebSocket-Version: 13", NULL},
    {"no key", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n"),
     X_STATUS, 400, 0, NULL, NULL},
    {"key of 15 bytes", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n\r\n"),
     X_STATUS, 400, 0, NULL, NULL},
    {"key of 17 bytes", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"),
     X_STATUS, 400, 0, NULL, NULL},
    {"POST", E, NULL, RAW("POST / HTTP/1.1\r\nHost: x\r\n" UPG "\r\n"), X_STATUS, 405, 0, NULL,
     NULL},
    {"get in lower case", E, NULL, RAW("get / HTTP/1.1\r\nHost: x\r\n" UPG "\r\n"), X_STATUS, 405,
     0, NULL, NULL},
    {"HTTP/1.0", E, NULL, RAW("GET / HTTP/1.0\r\nHost: x\r\n" UPG "\r\n"), X_STATUS, 400, 0, NULL,
     NULL},
    {"no Host", E, NULL, RAW("GET / HTTP/1.1\r\n" UPG "\r\n"), X_STATUS, 400, 0, NULL, NULL},
    {"two Host headers", E, NULL, RAW("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n" UPG "\r\n"),
     X_STATUS, 400, 0, NULL, NULL},
    {"two keys", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\n" UPG "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"),
     X_STATUS, 400, 0, NULL, NULL},
    {"no Upgrade", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
     X_STATUS, 426, 0, NULL, NULL},
    {"header without a colon", E, NULL,
     RAW("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n" UPG "\r\n"), X_STATUS, 400, 0, NULL, NULL},
    {"NUL in a header", E, NULL, RAW("GET / HTTP/1.1\r\nHost: x\0y\r\n" UPG "\r\n"), X_STATUS, 400,
     0, NULL, NULL},
    {"garbage", E, NULL, RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), X_STATUS, 400,
     0, NULL, NULL},
    {"9000 bytes of garbage, no line end", E, NULL, BUILD(b_garbage), X_STATUS, 414, 0, NULL, NULL},
    /* frames: payload length forms */
    {"7-bit length", E, "/", BUILD(b_len7), X_FRAME, 2, 5, NULL, NULL},
    {"16-bit length", E, "/", BUILD(b_len16), X_FRAME, 2, 300, NULL, NULL},
    {"64-bit length", E, "/", BUILD(b_len64), X_FRAME, 2, 70000, NULL, NULL},
    {"16-bit form for 5 bytes", E, "/", BUILD(b_nonmin16), X_CLOSE, 1002, 0, NULL, NULL},
    {"64-bit form for 200 bytes", E, "/", BUILD(b_nonmin64), X_CLOSE, 1002, 0, NULL, NULL},
    {"64-bit length, top bit set", E, "/",
     RAW("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"), X_CLOSE, 1002, 0, NULL, NULL},
    {"unmasked client frame", E, "/", RAW("\x81\x02hi"), X_CLOSE, 1002, 0, NULL, NULL},
    /* opcodes and reserved bits */
    {"reserved opcode 3", E, "/", RAW("\x83\x80\0\0\0\0"), X_CLOSE, 1002, 0, NULL, NULL},
    {"reserved opcode 7", E, "/", RAW("\x87\x80\0\0\0\0"), X_CLOSE, 1002, 0, NULL, NULL},
    {"reserved opcode 0xB", E, "/", RAW("\x8b\x80\0\0\0\0"), X_CLOSE, 1002, 0, NULL, NULL},
    {"reserved opcode 0xF", E, "/", RAW("\x8f\x80\0\0\0\0"), X_CLOSE, 1002, 0, NULL, NULL},
    {"RSV1 without extension", E, "/", RAW("\xc1\x81\0\0\0\0a"), X_CLOSE, 1002, 0, NULL, NULL},
    {"RSV2", E, "/", RAW("\xa1\x81\0\0\0\0a"), X_CLOSE, 1002, 0, NULL, NULL},
    {"RSV3", E, "/", RAW("\x91\x81\0\0\0\0a"), X_CLOSE, 1002, 0, NULL, NULL},
    /* fragmentation */
    {"continuation without a start", E, "/", RAW("\x80\x81\0\0\0\0a"), X_CLOSE, 1002, 0, NULL,
     NULL},
    {"data frame inside a fragmented message", E, "/", RAW("\x01\x81\0\0\0\0a\x81\x81\0\0\0\0b"),
     X_CLOSE, 1002, 0, NULL, NULL},
    {"fragmented ping", E, "/", RAW("\x09\x81\0\0\0\0a\x80\x81\0\0\0\0b"), X_CLOSE, 1002, 0, NULL,
     NULL},
    {"ping of 126 bytes", E, "/", BUILD(b_ping126), X_CLOSE, 1002, 0, NULL, NULL},
    {"close of 126 bytes", E, "/", BUILD(b_close126), X_CLOSE, 1002, 0, NULL, NULL},
    {"ping between fragments (allowed)", E, "/",
     RAW("\x01\x81\0\0\0\0a\x89\x80\0\0\0\0\x80\x81\0\0\0\0b"), X_FRAME, 0xA, 0, NULL, NULL},
    /* UTF-8 */
    {"invalid UTF-8 text", E, "/", RAW("\x81\x82\0\0\0\0\xc3\x28"), X_CLOSE, 1007, 0, NULL, NULL},
    {"overlong UTF-8", E, "/", RAW("\x81\x82\0\0\0\0\xc0\xaf"), X_CLOSE, 1007, 0, NULL, NULL},
    {"UTF-16 surrogate", E, "/", RAW("\x81\x83\0\0\0\0\xed\xa0\x80"), X_CLOSE, 1007, 0, NULL, NULL},
    {"invalid UTF-8 across fragments", E, "/", RAW("\x01\x81\0\0\0\0\xe2\x80\x82\0\0\0\0\x82\x28"),
     X_CLOSE, 1007, 0, NULL, NULL},
    {"invalid UTF-8 close reason", E, "/", RAW("\x88\x84\0\0\0\0\x03\xe8\xff\xfe"), X_CLOSE, 1007,
     0, NULL, NULL},
    /* close codes */
    {"close payload of 1 byte", E, "/", RAW("\x88\x81\0\0\0\0\x03"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 999", E, "/", RAW("\x88\x82\0\0\0\0\x03\xe7"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 1004", E, "/", RAW("\x88\x82\0\0\0\0\x03\xec"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 1005", E, "/", RAW("\x88\x82\0\0\0\0\x03\xed"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 1006", E, "/", RAW("\x88\x82\0\0\0\0\x03\xee"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 1015", E, "/", RAW("\x88\x82\0\0\0\0\x03\xf7"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 2999", E, "/", RAW("\x88\x82\0\0\0\0\x0b\xb7"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 5000", E, "/", RAW("\x88\x82\0\0\0\0\x13\x88"), X_CLOSE, 1002, 0, NULL, NULL},
    {"close code 1000 (echoed)", E, "/", RAW("\x88\x82\0\0\0\0\x03\xe8"), X_CLOSE, 1000, 0, NULL,
     NULL},
    {"close code 4999 (echoed)", E, "/", RAW("\x88\x82\0\0\0\0\x13\x87"), X_CLOSE, 4999, 0, NULL,
     NULL},
    /* size limit: echo_server takes 16 MiB; the header alone decides */
    {"message of 16 MiB + 1", E, "/", RAW("\x82\xff\0\0\0\0\x01\0\0\x01\0\0\0\0"), X_CLOSE, 1009, 0,
     NULL, NULL},
    {"fragments over 16 MiB", E, NULL, NONE, X_RUN, 0, 0, NULL, r_fragments_over},
    /* slowloris and floods */
    {"slowloris (20 connections)", E, NULL, NONE, X_RUN, 0, 0, NULL, r_slowloris},
    {"pong flood", E, NULL, NONE, X_RUN, 0, 0, NULL, r_pong_flood},
    {"ping flood", E, NULL, NONE, X_RUN, 0, 0, NULL, r_ping_flood},
    /* item 3: one cap over every send queue (a server of its own) */
    {"echo_server --memory-budget: never-readers", E, NULL, NONE, X_RUN, 0, 0, NULL, r_echo_budget},
    /* item 2: channels of clients that left expire (a server of its own) */
    {"channels expire after --channel-ttl", C, NULL, NONE, X_RUN, 0, 0, NULL, r_channel_expiry},
    /* item 6: the Origin list, never Host */
    {"DNS rebinding: Origin = http:// + Host", C, NULL, BUILD(b_rebind), X_STATUS, 403, 0, NULL,
     NULL},
    {"Origin of the page itself", C, NULL, BUILD(b_origin_own), X_STATUS, 101, 0, NULL, NULL},
    {"Origin localhost (any case)", C, NULL, BUILD(b_origin_localhost), X_STATUS, 101, 0, NULL,
     NULL},
    {"Origin on another port", C, NULL, BUILD(b_origin_other_port), X_STATUS, 403, 0, NULL, NULL},
    {"Origin null", C, NULL,
     RAW("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: null\r\n" UPG "\r\n"), X_STATUS, 403, 0,
     NULL, NULL},
    /* items 1 and 7: tokens */
    {"?token= with exp 2^63-1", C, NULL, BUILD(b_tok_huge_exp_query), X_STATUS, 101, 0, NULL, NULL},
    {"Bearer with exp 2^63-1", C, NULL, BUILD(b_tok_huge_exp_header), X_STATUS, 101, 0, NULL, NULL},
    {"auth message with exp 2^63-1", C, "/ws", BUILD(b_auth_huge_exp), X_TEXT, 0, 0,
     "\"type\":\"authenticated\",\"user\":\"u3\"", NULL},
    {"?token= with exp 1e30", C, NULL, BUILD(b_tok_range), X_STATUS, 401, 0, NULL, NULL},
    {"?token= of 5000 bytes", C, NULL, BUILD(b_tok_long_query), X_STATUS, 401, 0, NULL, NULL},
    {"Bearer of 4097 bytes", C, NULL, BUILD(b_tok_long_header), X_STATUS, 401, 0, NULL, NULL},
    {"Bearer over the head limit", C, NULL, BUILD(b_tok_header_too_big), X_STATUS, 431, 0, NULL,
     NULL},
    {"auth message with 5000 bytes of token", C, "/ws", BUILD(b_auth_long), X_TEXT, 0, 0,
     "\"type\":\"error\"", NULL},
    {"request line of 9000 bytes (chat)", C, NULL, BUILD(b_long_line), X_STATUS, 414, 0, NULL,
     NULL},
};
#undef E
#undef C

static int start(henv *env, int which) {
    const char *echo[] = {"build/asan_echo_server", "--host", "127.0.0.1", "--port", "0",
                          "--handshake-timeout",    "1000",   NULL};
    const char *chat[] = {"build/asan_chat_server", "--host", "127.0.0.1", "--port", "0",
                          "--jwt-secret",           SECRET,   NULL};
    const char *const *argv = which == S_ECHO ? echo : chat;
    if (access(argv[0], X_OK) != 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "make -s %s >/dev/null", argv[0]);
        if (system(cmd) != 0) return 0;
    }
    if (hs_spawn(&env->srv[which], argv) != 0) {
        fprintf(stderr, "e2e_hostile: %s did not start: %s\n", argv[0], env->srv[which].log);
        return 0;
    }
    env->rss0[which] = hs_rss_kb(env->srv[which].pid);
    return env->rss0[which] > 0;
}

/* 1 when the server answers a fresh connection as it should */
static int answering(henv *env, int server) {
    int fd = upgrade_new(env, server, server == S_CHAT ? "/ws" : "/"), ok;
    uint8_t f[64];
    if (fd < 0) return 0;
    if (server == S_CHAT) {
        ok = 0;
        for (;;) { /* the welcome comes first */
            size_t len = 0;
            int op = hs_read_frame(fd, big, sizeof big - 1, &len, 3000);
            if (op < 0) break;
            big[len < sizeof big - 1 ? len : sizeof big - 1] = 0;
            if (op == 1) {
                ok = strstr((char *)big, "\"type\":\"welcome\"") != NULL;
                break;
            }
        }
    } else {
        size_t n = hs_frame(f, sizeof f, 0x81, "alive?", 6);
        hs_send(fd, f, n);
        ok = await_text(fd, "alive?", NULL, 3000);
    }
    close(fd);
    return ok;
}

static void run_case(henv *env, const hcase *k) {
    static uint8_t out[(1 << 20) + 4096];
    char why[512], head[2048];
    int ok = 1, fd = -1, got = 0, alive;
    long rss;
    why[0] = '\0';
    if (k->kind == X_RUN) {
        ok = k->run(env, why, sizeof why);
    } else {
        size_t n = k->build ? k->build(out, sizeof out, env) : k->len;
        const void *bytes = k->build ? (const void *)out : (const void *)k->bytes;
        fd = hs_connect(env->srv[k->server].port);
        if (fd < 0) {
            ok = 0;
            snprintf(why, sizeof why, "cannot connect");
        } else if (k->path && (got = hs_upgrade(fd, k->path, NULL, 3000)) != 101) {
            ok = 0;
            snprintf(why, sizeof why, "upgrade of %s: %d", k->path, got);
        } else {
            hs_send(fd, bytes, n);
            switch (k->kind) {
            case X_STATUS:
                got = hs_read_status(fd, head, sizeof head, 5000);
                if (got != k->want)
                    ok = 0;
                else if (k->contains && !strstr(head, k->contains))
                    ok = 0;
                if (!ok)
                    snprintf(why, sizeof why, "status %d (want %d%s%s); head: %.200s", got, k->want,
                             k->contains ? " with " : "", k->contains ? k->contains : "",
                             got > 0 ? head : "");
                break;
            case X_CLOSE:
                got = hs_read_close(fd, 5000);
                if (got != k->want)
                    ok = 0, snprintf(why, sizeof why, "close %d, want %d", got, k->want);
                break;
            case X_FRAME: {
                size_t len = 0;
                got = hs_read_frame(fd, NULL, 0, &len, 5000);
                if (got != k->want || len != k->clen)
                    ok = 0,
                    snprintf(why, sizeof why, "frame opcode %d length %zu, want %d length %zu", got,
                             len, k->want, k->clen);
                break;
            }
            case X_TEXT: {
                uint64_t until = hs_now_ms() + 5000;
                ok = 0;
                while (!ok) {
                    size_t len = 0;
                    uint64_t now = hs_now_ms();
                    got = hs_read_frame(fd, big, sizeof big - 1, &len,
                                        now < until ? (unsigned)(until - now) : 0);
                    if (got < 0) break;
                    big[len < sizeof big - 1 ? len : sizeof big - 1] = 0;
                    if (got == 1 && strstr((char *)big, k->contains)) ok = 1;
                }
                if (!ok)
                    snprintf(why, sizeof why, "no text with %s (last: %d %.200s)", k->contains, got,
                             got == 1 ? (char *)big : "");
                break;
            }
            case X_DROP:
                got = hs_read_frame(fd, NULL, 0, NULL, 5000);
                if (got != HS_EOF) ok = 0, snprintf(why, sizeof why, "not dropped (%d)", got);
                break;
            }
        }
        if (fd >= 0) close(fd);
    }
    alive = hs_alive(&env->srv[k->server]);
    if (!alive || !answering(env, k->server)) {
        ok = 0;
        snprintf(why + strlen(why), sizeof why - strlen(why), " [SERVER %s] %s",
                 alive ? "NO LONGER ANSWERING" : "DIED", env->srv[k->server].log);
        hs_stop(&env->srv[k->server]); /* then a fresh one for the next cases */
        env->died[k->server]++;
        if (!start(env, k->server)) { /* the next cases need one */
            CHECK(0);
            printf("FAIL %s: cannot restart the server\n", k->name);
            return;
        }
    }
    rss = hs_rss_kb(env->srv[k->server].pid);
    if (rss < 0 || rss > env->rss0[k->server] + RSS_GROWTH_KB) {
        ok = 0;
        snprintf(why + strlen(why), sizeof why - strlen(why), " [RSS %ld KiB, start %ld KiB]", rss,
                 env->rss0[k->server]);
    }
    CHECK(ok);
    printf("%s %-44s %s\n", ok ? "ok  " : "FAIL", k->name, why);
    fflush(stdout);
}

int main(void) {
    static henv env;
    size_t i;
    int s, rc;
    uint64_t t0 = hs_now_ms();
    signal(SIGPIPE, SIG_IGN);
    for (s = 0; s < S_COUNT; s++)
        CHECK(start(&env, s));
    if (!t_fail) {
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(&env, &cases[i]);
        for (s = 0; s < S_COUNT; s++)
            printf("%s: RSS %ld KiB at start, %ld KiB at the end\n",
                   s == S_ECHO ? "asan_echo_server" : "asan_chat_server", env.rss0[s],
                   hs_rss_kb(env.srv[s].pid));
    }
    for (s = 0; s < S_COUNT; s++) {
        rc = hs_stop(&env.srv[s]);
        if (rc != 0) fprintf(stderr, "server %d exit %d; output:\n%s\n", s, rc, env.srv[s].log);
        CHECK_EQ(rc, 0); /* SIGTERM: clean exit, LeakSanitizer found nothing */
        CHECK_EQ(env.died[s], 0);
    }
    printf("took %.1f s\n", (double)(hs_now_ms() - t0) / 1000.0);
    return T_END();
}
