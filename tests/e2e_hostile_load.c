/* Every resource attack of issue 15 at once against build/chat_server with a
   64 MiB memory budget (the release build, so that its RSS means something),
   then a shorter pass against build/asan_chat_server (memory errors, UB and,
   at SIGTERM, leaks). One event loop in this process drives all of them for
   ATTACK_MS:

     (a) 8 subscribers of "load:big" that never read, while 4 publishers
         send 60 KiB messages there at 15/s each      -> cut: 1013 (or EOF)
     (b) 20 publishers of 60 KiB messages to a fresh channel each time, at
         15/s (the retention probe)                   -> kept open, refused
                                                         "overloaded" near the cap
     (c) 200 connections sending a header declaring 16 MiB and one byte
                                                      -> 1009 (max_message 256 KiB)
         and 100 declaring 250 KiB (allowed) and one byte, then holding
                                                      -> 1008 at the message timeout
     (d) slow senders: a text fragment without FIN followed only by pings and
         pongs, and a 200 KiB frame trickled          -> 1008 at the message timeout
     (e) ping floods (one reading its pongs, one never reading) and pong
         floods                                       -> kept open
     (f) slowloris: 40 handshakes trickled a byte per 100 ms, replaced as
         they are dropped                             -> dropped at the handshake
                                                         timeout (1 s)
     (g) a presence storm: 40 connections subscribing to "room:storm",
         setting their status, leaving, and reconnecting every 3 s
                                                      -> kept open (no 1008)
     (h) 8 never-reading "echo" clients publishing 60 KiB to their own
         channel                                      -> 1013, EOF or still open

   Checked: the server alive throughout (VmRSS read every 100 ms), peak RSS
   under RSS_BOUND (below), the budget's own figures on /ws/status (read
   every 500 ms) never over the budget, the close codes above, and after the
   attack a fresh client that connects, subscribes, publishes and receives.

   Usage: build/e2e_hostile_load [ATTACK_MS] (default 12000; the ASan pass
   takes half); RTWS_LOAD_NO_ASAN=1 skips the ASan pass. ~25 s in all.

   RSS bound. What the budget counts (send queues, receive buffers, channels,
   history, sessions) is held under 64 MiB; on top of it come, uncounted: the
   RSS the server has idle (code, the page, the JS client, its tables), the
   context's pool of big buffers that connections gave back (buffer_pool,
   32 MiB by default), per-connection structs and the parser's scratch
   (~1 KiB x ~500 connections), and the allocator's slack (freed 60 KiB
   frames are not always returned to the kernel at once: glibc keeps freed
   heap below its trim threshold). So: 64 MiB budget + 32 MiB pool + idle RSS
   + 32 MiB allocator slack.

   Findings of issue 15 and their regression tests:
     1  JWT exp/nbf overflow (2^63-1, 1e30) -> tests/unit_jwt.c;
        tests/e2e_hostile.c "?token= with exp 2^63-1", "Bearer with exp
        2^63-1", "auth message with exp 2^63-1", "?token= with exp 1e30"
     2  channels and history kept after their clients left -> tests/
        unit_router_budget.c (item 2), tests/e2e_budget.c test_fresh_channels,
        tests/e2e_hostile.c "channels expire after --channel-ttl", (b) here
     3  never-reading clients grow queues without a global cap -> tests/
        unit_budget.c, tests/e2e_budget.c test_echo_never_read,
        tests/e2e_hostile.c "echo_server --memory-budget: never-readers",
        (a) and (h) here
     4  16 MiB declared, one byte sent, reserved 16 MiB -> tests/unit_buffers.c
        test_declared_length, tests/e2e_buffers.c, (c) here
     5  slow senders (fragment + pings, trickle) -> tests/unit_conn_timeout.c,
        tests/e2e_slow_sender.c, (d) here
     6  Origin trusted Host (DNS rebinding) -> tests/e2e_hostile.c item 6 rows
     7  repeated Host/Sec-WebSocket-Key; token over 4096 bytes ignored ->
        tests/unit_hostile_http.c test_repeated, test_router_tokens;
        tests/e2e_hostile.c "two Host headers", "two keys", "?token= of 5000
        bytes", "Bearer of 4097 bytes"
     8  request line too long answered 431 -> tests/unit_hostile_http.c
        test_limits; tests/e2e_hostile.c "request line of 9000 bytes"
     9  example clients leaking on error paths -> tests/interop_client_errors.sh
    10  only the latest ping answered -> tests/unit_conn_ping.c,
        tests/autobahn 2.10/2.11/5.24/5.25, tests/e2e_hostile.c "ping flood",
        (e) here
    11  rate-limited publishes reordered, errors without ids -> tests/
        unit_router_budget.c (item 11), tests/e2e_ratelimit.c
    and the classes that passed the probe: slowloris, ping and pong floods
    (tests/e2e_hostile.c rows, (e), (f) here), never-reading clients ((a),
    (h)), channel and presence storms ((b), (g)). */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "hostile.h"
#include <fcntl.h>

#define BUDGET_MIB 64L
#define POOL_MIB 32L
#define SLACK_MIB 32L
#define MSG_TIMEOUT_MS 2000
#define HS_TIMEOUT_MS 1000

enum {
    K_SUB,      /* (a) never-reading subscriber */
    K_PUB,      /* (a) publisher to load:big */
    K_FRESH,    /* (b) */
    K_BIG16,    /* (c) 16 MiB declared */
    K_BIGHOLD,  /* (c) 250 KiB declared, held */
    K_FRAG,     /* (d) fragment + control frames */
    K_TRICKLE,  /* (d) */
    K_PINGF,    /* (e) ping flood, reading */
    K_PINGF_NR, /* (e) ping flood, never reading */
    K_PONGF,    /* (e) */
    K_LORIS,    /* (f) */
    K_STORM,    /* (g) */
    K_ECHO_NR,  /* (h) */
    K_STATUS,   /* GET /ws/status */
    K_COUNT
};
static const char *const kname[K_COUNT] = {
    "(a) never-reading subscribers", "(a) publishers to load:big",   "(b) fresh-channel publishers",
    "(c) 16 MiB declared + 1 byte",  "(c) 250 KiB declared + 1 byte", "(d) fragment + pings/pongs",
    "(d) 200 KiB trickled",          "(e) ping flood",                "(e) ping flood, never reading",
    "(e) pong flood",                "(f) slowloris",                 "(g) presence storm",
    "(h) never-reading echo clients", "status page"};
static const int kcount[K_COUNT] = {8, 4, 20, 200, 100, 2, 2, 2, 1, 2, 40, 40, 8, 0};

typedef struct lc {
    int fd, kind, idx, state; /* state: 0 handshake sent, 1 open, 2 done */
    int reading;              /* 0: never reads (until the drain) */
    uint64_t t0, next;        /* connected at; next action at */
    int close_code;           /* 0 none yet, a code, or HS_EOF */
    uint64_t closed_at;
    /* response head, then frames */
    char http[512];
    size_t httpn;
    int status;
    uint8_t hb[14];
    size_t hn, need;
    uint64_t plen, got;
    int op;
    char head[97];
    /* output */
    uint8_t *out;
    size_t outn, outoff, outcap;
    long step, overloaded, rate_limited, pongs, presence, errors;
    /* status page */
    char *body;
    size_t bodyn;
} lc;

typedef struct kstat {
    long conns, codes[8], code_val[8], eof, open_end, overloaded, rate_limited, pongs, presence,
        errors, not_upgraded;
    uint64_t life_min, life_max; /* (f) */
} kstat;

typedef struct run {
    const char *bin;
    int asan;
    unsigned attack_ms;
    hs_server srv;
    lc *c;
    size_t n, cap;
    kstat ks[K_COUNT];
    long rss_idle, rss_peak, samples;
    long long mem_used_max, mem_peak, mem_budget;
    long status_reads;
    int died;
    char payload[61440 + 3]; /* a JSON string of 61440 x */
    uint64_t started;
} run;

static uint8_t scratch[65536];

static int nonblock_connect(int port, int rcvbuf) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { /* loopback: at once */
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

/* appends bytes to the connection's output */
static void put(lc *c, const void *p, size_t n) {
    if (c->outn + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 4096;
        uint8_t *o;
        while (cap < c->outn + n) cap *= 2;
        o = (uint8_t *)realloc(c->out, cap);
        if (!o) return;
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outn, p, n);
    c->outn += n;
}
static void put_frame(lc *c, uint8_t b0, const void *p, size_t n) {
    static uint8_t f[70000];
    size_t k = hs_frame(f, sizeof f, b0, p, n);
    put(c, f, k);
}
static void put_text(lc *c, const char *s) { put_frame(c, 0x81, s, strlen(s)); }
static size_t pending(const lc *c) { return c->outn - c->outoff; }

static void flush_out(lc *c) {
    while (c->outoff < c->outn) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outn - c->outoff, MSG_NOSIGNAL);
        if (w <= 0) break;
        c->outoff += (size_t)w;
    }
    if (c->outoff == c->outn) c->outoff = c->outn = 0;
}

static lc *add(run *r, int kind, int idx, uint64_t now) {
    lc *c;
    int rcv = (kind == K_SUB || kind == K_ECHO_NR || kind == K_PINGF_NR) ? 4096 : 0;
    int fd = nonblock_connect(r->srv.port, rcv);
    if (fd < 0) return NULL;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 512;
        lc *m = (lc *)realloc(r->c, cap * sizeof *m);
        if (!m) {
            close(fd);
            return NULL;
        }
        r->c = m;
        r->cap = cap;
    }
    c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->kind = kind;
    c->idx = idx;
    c->t0 = c->next = now;
    c->reading = 1;
    if (kind != K_STATUS) r->ks[kind].conns++;
    if (kind == K_LORIS) return c; /* the request goes a byte at a time */
    if (kind == K_STATUS) {
        static const char req[] = "GET /ws/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        put(c, req, sizeof req - 1);
    } else {
        static const char req[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
        put(c, req, sizeof req - 1);
    }
    flush_out(c);
    return c;
}

static void finish(lc *c, int code, uint64_t now) {
    if (c->state == 2) return;
    c->state = 2;
    if (!c->close_code) c->close_code = code;
    c->closed_at = now;
    close(c->fd);
    c->fd = -1;
}

/* a JSON number after "key": in the "memory" object of the status body */
static long long json_num(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static void status_done(run *r, lc *c) {
    const char *m;
    if (!c->body) return;
    m = strstr(c->body, "\"memory\":{");
    if (m) {
        long long used = json_num(m, "\"used\":"), peak = json_num(m, "\"peak\":"),
                  budget = json_num(m, "\"budget\":");
        if (used > r->mem_used_max) r->mem_used_max = used;
        if (peak > r->mem_peak) r->mem_peak = peak;
        r->mem_budget = budget;
        r->status_reads++;
    }
}

static void on_frame(lc *c) {
    if (c->op == 8) {
        c->close_code = c->got >= 2 ? ((uint8_t)c->head[0] << 8 | (uint8_t)c->head[1]) : 1005;
    } else if (c->op == 0xA) {
        c->pongs++;
    } else if (c->op == 1) {
        if (strstr(c->head, "\"overloaded\"")) c->overloaded++;
        else if (strstr(c->head, "\"rate_limited\"")) c->rate_limited++;
        else if (strstr(c->head, "\"type\":\"error\"")) c->errors++;
        else if (strstr(c->head, "\"type\":\"presence\"")) c->presence++;
    }
}

/* bytes from the server: the response head, then frames (only the first 96
   bytes of each payload are kept) */
static void feed(run *r, lc *c, const uint8_t *p, size_t n) {
    if (c->kind == K_STATUS) {
        char *b = (char *)realloc(c->body, c->bodyn + n + 1);
        if (!b) return;
        memcpy(b + c->bodyn, p, n);
        c->body = b;
        c->bodyn += n;
        b[c->bodyn] = 0;
        { /* whole when Content-Length bytes follow the head */
            const char *e = strstr(b, "\r\n\r\n"), *cl = strstr(b, "Content-Length:");
            if (e && cl && c->bodyn >= (size_t)(e + 4 - b) + (size_t)atol(cl + 15)) c->state = 3;
        }
        return;
    }
    while (n && c->status != 101) { /* the head */
        if (c->httpn < sizeof c->http - 1) c->http[c->httpn++] = (char)*p;
        c->http[c->httpn] = 0;
        p++, n--;
        if (c->httpn >= 4 && !memcmp(c->http + c->httpn - 4, "\r\n\r\n", 4)) {
            c->status = atoi(c->http + 9);
            if (c->status != 101) return;
            c->state = 1;
        }
    }
    (void)r;
    while (n) {
        if (c->need == 0 || c->hn < c->need) { /* a header */
            c->hb[c->hn++] = *p++;
            n--;
            if (c->hn == 2) {
                unsigned l7 = c->hb[1] & 0x7fu;
                c->need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
            }
            if (c->hn >= 2 && c->hn == c->need) {
                size_t i;
                c->plen = c->hb[1] & 0x7fu;
                if (c->need == 4) c->plen = (uint64_t)c->hb[2] << 8 | c->hb[3];
                if (c->need == 10)
                    for (c->plen = 0, i = 0; i < 8; i++)
                        c->plen = c->plen << 8 | c->hb[2 + i];
                c->op = c->hb[0] & 0x0f;
                c->got = 0;
                c->head[0] = 0;
                if (c->plen == 0) {
                    on_frame(c);
                    c->hn = c->need = 0;
                }
            }
        } else { /* the payload */
            uint64_t left = c->plen - c->got;
            size_t k = left < n ? (size_t)left : n;
            if (c->got < 96) {
                size_t keep = 96 - (size_t)c->got < k ? 96 - (size_t)c->got : k;
                memcpy(c->head + c->got, p, keep);
                c->head[c->got + keep] = 0;
            }
            c->got += k;
            p += k;
            n -= k;
            if (c->got == c->plen) {
                on_frame(c);
                c->hn = c->need = 0;
            }
        }
    }
}

static void do_read(run *r, lc *c, uint64_t now) {
    for (;;) {
        ssize_t k = recv(c->fd, scratch, sizeof scratch, 0);
        if (k > 0) {
            feed(r, c, scratch, (size_t)k);
            if (c->state == 3) { /* a whole status page */
                status_done(r, c);
                finish(c, HS_EOF, now);
                return;
            }
            if (c->close_code > 0) { /* a close frame: we are done with it */
                finish(c, c->close_code, now);
                return;
            }
            continue;
        }
        if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (c->kind == K_STATUS && c->state != 2) status_done(r, c);
            finish(c, HS_EOF, now);
        }
        return;
    }
}

static void fmt_publish(run *r, char *out, size_t cap, const char *ch) {
    snprintf(out, cap, "{\"type\":\"publish\",\"channel\":\"%s\",\"event\":\"m\",\"data\":%s}", ch,
             r->payload);
}

/* what each kind does when its time comes (open connections only) */
static void act(run *r, lc *c, uint64_t now, int attacking) {
    static char msg[61440 + 256];
    char ch[64];
    uint8_t pl[100];
    size_t i;
    if (c->kind == K_LORIS) {
        static const char req[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        if (now < c->next || (size_t)c->step >= sizeof req - 3) return;
        put(c, req + c->step, 1);
        c->step++;
        c->next = now + 100;
        return;
    }
    if (c->state != 1 || now < c->next || !attacking) return;
    if (pending(c) > 0 && c->kind != K_PINGF_NR) return; /* one thing at a time */
    switch (c->kind) {
    case K_SUB:
        if (c->step++ == 0) put_text(c, "{\"type\":\"subscribe\",\"channel\":\"load:big\"}");
        c->reading = 0; /* reads nothing from now on */
        c->next = now + 1000000;
        break;
    case K_PUB:
    case K_FRESH:
        if (c->kind == K_PUB) snprintf(ch, sizeof ch, "load:big");
        else snprintf(ch, sizeof ch, "fresh-%d-%ld", c->idx, c->step);
        fmt_publish(r, msg, sizeof msg, ch);
        put_text(c, msg);
        c->step++;
        c->next = now + 66; /* 15/s: under the 20/s the server allows */
        break;
    case K_ECHO_NR:
        snprintf(ch, sizeof ch, "echo-%d", c->idx);
        if (c->step++ == 0) {
            snprintf(msg, sizeof msg, "{\"type\":\"subscribe\",\"channel\":\"%s\"}", ch);
            put_text(c, msg);
        } else {
            fmt_publish(r, msg, sizeof msg, ch);
            put_text(c, msg);
        }
        c->reading = 0;
        c->next = now + 66;
        break;
    case K_BIG16:
    case K_BIGHOLD:
        if (c->step++ == 0) {
            uint8_t f[15] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'x'};
            if (c->kind == K_BIG16) f[6] = 1; /* 16 MiB */
            else f[7] = 0x03, f[8] = 0xe8;    /* 0x03e800 = 256000 bytes: under 256 KiB */
            put(c, f, sizeof f);
        }
        c->next = now + 1000000;
        break;
    case K_FRAG:
        if (c->step++ == 0) put_frame(c, 0x01, "the start of a message", 22);
        else put_frame(c, (c->step & 1) ? 0x89 : 0x8a, "p", 1);
        c->next = now + 200;
        break;
    case K_TRICKLE:
        if (c->step++ == 0) {
            static const uint8_t h[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0x03, 0x20, 0x00, 0, 0, 0, 0};
            put(c, h, sizeof h); /* 204800 bytes, a zero mask */
        }
        memset(scratch, 't', 512);
        put(c, scratch, 512);
        c->next = now + 100;
        break;
    case K_PINGF:
    case K_PINGF_NR:
    case K_PONGF:
        if (c->kind == K_PINGF_NR) c->reading = 0;
        if (pending(c) > 65536) break;
        memset(pl, 'q', sizeof pl);
        for (i = 0; i < 160; i++) /* ~19 KB per 10 ms: ~2 MB/s each */
            put_frame(c, c->kind == K_PONGF ? 0x8a : 0x89, pl, sizeof pl);
        c->next = now + 10;
        break;
    case K_STORM: {
        static const char *const seq[] = {
            "{\"type\":\"subscribe\",\"channel\":\"room:storm\"}",
            "{\"type\":\"presence\",\"channel\":\"room:storm\",\"status\":\"typing\"}",
            "{\"type\":\"presence\",\"channel\":\"room:storm\",\"status\":\"online\"}",
            "{\"type\":\"unsubscribe\",\"channel\":\"room:storm\"}"};
        put_text(c, seq[c->step++ % 4]);
        c->next = now + 150;
        break;
    }
    default: break;
    }
}

static void tally(run *r, lc *c) {
    kstat *s;
    if (c->kind == K_STATUS) return;
    s = &r->ks[c->kind];
    if (c->kind != K_LORIS && c->status != 101) s->not_upgraded++;
    if (c->state != 2) s->open_end++;
    else if (c->close_code == HS_EOF) s->eof++;
    else {
        int j;
        for (j = 0; j < 8; j++)
            if (!s->codes[j] || s->code_val[j] == c->close_code) {
                s->code_val[j] = c->close_code;
                s->codes[j]++;
                break;
            }
    }
    s->overloaded += c->overloaded;
    s->rate_limited += c->rate_limited;
    s->pongs += c->pongs;
    s->presence += c->presence;
    s->errors += c->errors;
}

static long count_code(const kstat *s, int code) {
    int j;
    for (j = 0; j < 8; j++)
        if (s->codes[j] && s->code_val[j] == code) return s->codes[j];
    return 0;
}

/* the loop: acts, polls, reads; replaces slowloris and storm connections */
static void loop(run *r, uint64_t until, int attacking, int drain) {
    static struct pollfd pf[4096];
    static size_t map[4096];
    uint64_t next_rss = 0, next_status = 0;
    for (;;) {
        uint64_t now = hs_now_ms();
        size_t i, np = 0, n0 = r->n;
        int open_ = 0;
        if (now >= until) break;
        if (!hs_alive(&r->srv)) {
            r->died = 1;
            break;
        }
        if (now >= next_rss) {
            long kb = hs_rss_kb(r->srv.pid);
            if (kb > r->rss_peak) r->rss_peak = kb;
            r->samples++;
            next_rss = now + 100;
        }
        if (now >= next_status) {
            add(r, K_STATUS, 0, now);
            next_status = now + 500;
        }
        for (i = 0; i < n0; i++) {
            lc *c = &r->c[i];
            if (c->state == 2) continue;
            if (drain && c->kind != K_STATUS) c->reading = 1;
            /* (f): a slowloris connection the server dropped is replaced;
               (g): a storm connection leaves after 3 s and another comes */
            if (attacking && c->kind == K_STORM && c->state == 1 && now - c->t0 > 3000) {
                finish(c, -100, now); /* we left: not a server close */
                add(r, K_STORM, c->idx, now);
                c = &r->c[i];
                continue;
            }
            act(r, c, now, attacking);
            if (pending(c)) flush_out(c);
        }
        for (i = 0; i < r->n && np < sizeof pf / sizeof pf[0]; i++) {
            lc *c = &r->c[i];
            if (c->state == 2) continue;
            if (c->kind != K_STATUS) open_++;
            pf[np].fd = c->fd;
            pf[np].events = (short)((c->reading || c->state == 0 || c->kind == K_LORIS ? POLLIN : 0) |
                                    (pending(c) ? POLLOUT : 0));
            pf[np].revents = 0;
            map[np++] = i;
        }
        if (drain && open_ == 0) break;
        poll(pf, (nfds_t)np, 5);
        now = hs_now_ms();
        for (i = 0; i < np; i++) {
            lc *c = &r->c[map[i]];
            if (!pf[i].revents) continue;
            if (pf[i].revents & POLLOUT) flush_out(c);
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (c->reading || c->state == 0 || c->kind == K_LORIS) do_read(r, c, now);
            }
            if (c->kind == K_LORIS && c->state == 2) {
                uint64_t life = c->closed_at - c->t0;
                kstat *s = &r->ks[K_LORIS];
                if (!s->life_min || life < s->life_min) s->life_min = life;
                if (life > s->life_max) s->life_max = life;
                if (attacking) add(r, K_LORIS, c->idx, now);
            }
        }
    }
}

/* after the attack: a normal client connects, subscribes, publishes and gets
   its message and ack back */
static int normal_client(run *r, char *why, size_t cap) {
    static uint8_t buf[65536];
    static const char sub[] = "{\"type\":\"subscribe\",\"channel\":\"after:load\",\"id\":\"s1\"}";
    static const char pub[] =
        "{\"type\":\"publish\",\"channel\":\"after:load\",\"data\":\"still here\",\"id\":\"p1\"}";
    int fd = hs_connect(r->srv.port), got_sub = 0, got_msg = 0, got_ack = 0, st;
    uint64_t until = hs_now_ms() + 5000;
    size_t n;
    if (fd < 0) return snprintf(why, cap, "cannot connect"), 0;
    st = hs_upgrade(fd, "/ws", NULL, 3000);
    if (st != 101) {
        close(fd);
        return snprintf(why, cap, "upgrade answered %d", st), 0;
    }
    n = hs_frame(buf, sizeof buf, 0x81, sub, sizeof sub - 1);
    hs_send(fd, buf, n);
    while (hs_now_ms() < until && !(got_msg && got_ack)) {
        size_t len = 0;
        int op = hs_read_frame(fd, buf, sizeof buf - 1, &len, (unsigned)(until - hs_now_ms()));
        if (op < 0) break;
        buf[len < sizeof buf - 1 ? len : sizeof buf - 1] = 0;
        if (op != 1) continue;
        if (!got_sub && strstr((char *)buf, "\"type\":\"subscribed\"")) {
            got_sub = 1;
            n = hs_frame(buf, sizeof buf, 0x81, pub, sizeof pub - 1);
            hs_send(fd, buf, n);
        } else if (strstr((char *)buf, "\"type\":\"message\"") && strstr((char *)buf, "still here"))
            got_msg = 1;
        else if (strstr((char *)buf, "\"type\":\"ack\"") && strstr((char *)buf, "\"p1\""))
            got_ack = 1;
    }
    close(fd);
    snprintf(why, cap, "subscribed %d, message %d, ack %d", got_sub, got_msg, got_ack);
    return got_sub && got_msg && got_ack;
}

static void one_run(const char *bin, int asan, unsigned attack_ms) {
    static run rr;
    run *r = &rr;
    const char *argv[] = {bin, "--host", "127.0.0.1", "--port", "0", "--memory-budget", "64",
                          "--handshake-timeout", "1000", "--message-timeout-ms", "2000",
                          "--channel-ttl", "2", NULL};
    char why[256];
    int k, i, ok;
    uint64_t t0 = hs_now_ms(), t_attack;
    long bound_kb;
    memset(r, 0, sizeof *r);
    r->bin = bin;
    r->asan = asan;
    r->attack_ms = attack_ms;
    memset(r->payload, 'x', sizeof r->payload - 1);
    r->payload[0] = r->payload[sizeof r->payload - 2] = '"';
    r->payload[sizeof r->payload - 1] = 0;
    if (access(bin, X_OK) != 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "make -s %s >/dev/null", bin);
        if (system(cmd) != 0) {
            CHECK(0);
            printf("FAIL cannot build %s\n", bin);
            return;
        }
    }
    if (hs_spawn(&r->srv, argv) != 0) {
        CHECK(0);
        printf("FAIL %s did not start: %s\n", bin, r->srv.log);
        return;
    }
    hs_sleep_ms(300);
    r->rss_idle = hs_rss_kb(r->srv.pid);
    bound_kb = (BUDGET_MIB + POOL_MIB + SLACK_MIB) * 1024 + r->rss_idle;
    printf("%s: --memory-budget 64, idle RSS %ld KiB, attack %u ms\n", bin, r->rss_idle, attack_ms);
    t_attack = hs_now_ms();
    for (k = 0; k < K_COUNT; k++)
        for (i = 0; i < kcount[k]; i++)
            add(r, k, i, t_attack);
    loop(r, t_attack + attack_ms, 1, 0);
    /* the end of the attack: everyone still open reads what is left, up to
       the close frame; 3 s (the never-readers hold megabytes) */
    loop(r, hs_now_ms() + 3000, 0, 1);
    for (i = 0; i < (int)r->n; i++) tally(r, &r->c[i]);

    CHECK(!r->died);
    if (r->died) printf("FAIL the server died: %s\n", r->srv.log);
    for (k = 0; k < K_STATUS; k++) {
        kstat *s = &r->ks[k];
        int j;
        printf("  %-32s %4ld conns:", kname[k], s->conns);
        for (j = 0; j < 8 && s->codes[j]; j++)
            if (s->code_val[j] == -100) printf(" %ld left (the client closed)", s->codes[j]);
            else printf(" %ld x %ld", s->codes[j], s->code_val[j]);
        if (s->eof) printf(" %ld x EOF", s->eof);
        if (s->open_end) printf(" %ld open at the end", s->open_end);
        if (s->not_upgraded && k != K_LORIS) printf(" (%ld not upgraded)", s->not_upgraded);
        if (s->overloaded) printf(", %ld overloaded", s->overloaded);
        if (s->rate_limited) printf(", %ld rate_limited", s->rate_limited);
        if (s->errors) printf(", %ld other errors", s->errors);
        if (s->pongs) printf(", %ld pongs", s->pongs);
        if (s->presence) printf(", %ld presence events", s->presence);
        if (k == K_LORIS) printf(", lived %llu..%llu ms", (unsigned long long)s->life_min,
                                 (unsigned long long)s->life_max);
        printf("\n");
    }
    {
        const kstat *a = r->ks;
        /* (a) never-reading subscribers are cut with 1013 as the budget
           needs room (the largest queue first; not necessarily all of them).
           A client that never reads sees the close frame only when it
           starts reading (the drain) within the server's close timeout
           (5 s) of the cut; one cut earlier finds its socket closed: EOF.
           Nothing else closes them. */
        CHECK_EQ(a[K_SUB].not_upgraded, 0);
        CHECK(count_code(&a[K_SUB], 1013) + a[K_SUB].eof >= 1);
        CHECK_EQ(count_code(&a[K_SUB], 1013) + a[K_SUB].eof + a[K_SUB].open_end, a[K_SUB].conns);
        /* (a), (b) paced publishers are never closed for their rate */
        CHECK_EQ(count_code(&a[K_PUB], 1008) + count_code(&a[K_FRESH], 1008), 0);
        CHECK_EQ(a[K_PUB].rate_limited + a[K_FRESH].rate_limited, 0);
        CHECK_EQ(a[K_FRESH].open_end, a[K_FRESH].conns);
        /* (b) the retention probe ran into the budget: new channels refused */
        CHECK(a[K_FRESH].overloaded > 0);
        /* (c) */
        CHECK_EQ(count_code(&a[K_BIG16], 1009), a[K_BIG16].conns);
        CHECK_EQ(count_code(&a[K_BIGHOLD], 1008), a[K_BIGHOLD].conns);
        /* (d) */
        CHECK_EQ(count_code(&a[K_FRAG], 1008), a[K_FRAG].conns);
        CHECK_EQ(count_code(&a[K_TRICKLE], 1008), a[K_TRICKLE].conns);
        /* (e) floods are no reason to close; the reading one got its pongs */
        CHECK_EQ(a[K_PINGF].open_end, a[K_PINGF].conns);
        CHECK_EQ(a[K_PONGF].open_end, a[K_PONGF].conns);
        CHECK(a[K_PINGF].pongs > 0);
        CHECK(r->ks[K_PINGF_NR].not_upgraded == 0);
        /* (f) every slowloris connection dropped at the handshake timeout
           (1 s; up to 4 s on a loaded machine), none answered */
        CHECK(a[K_LORIS].eof + a[K_LORIS].open_end == a[K_LORIS].conns);
        CHECK(a[K_LORIS].eof >= 40);
        CHECK(a[K_LORIS].life_min >= HS_TIMEOUT_MS - 100 && a[K_LORIS].life_max <= 4000);
        /* (g) the storm: nobody closed by the server, presence went round */
        CHECK_EQ(a[K_STORM].eof, 0);
        CHECK_EQ(count_code(&a[K_STORM], -100) + a[K_STORM].open_end, a[K_STORM].conns);
        CHECK(a[K_STORM].presence > 0);
        /* (h) nothing but 1013 or the TCP close after it, or still open */
        CHECK_EQ(count_code(&a[K_ECHO_NR], 1013) + a[K_ECHO_NR].eof + a[K_ECHO_NR].open_end,
                 a[K_ECHO_NR].conns);
    }
    /* the budget's own figures: never over it */
    printf("  budget (/ws/status, %ld reads): used at most %lld KiB, peak %lld KiB, budget %lld KiB\n",
           r->status_reads, r->mem_used_max / 1024, r->mem_peak / 1024, r->mem_budget / 1024);
    CHECK(r->status_reads >= 5);
    CHECK_EQ(r->mem_budget, BUDGET_MIB << 20);
    CHECK(r->mem_peak > 0 && r->mem_peak <= BUDGET_MIB << 20);
    CHECK(r->mem_used_max <= r->mem_peak);
    /* the process */
    printf("  RSS: idle %ld KiB, peak %ld KiB over %ld samples", r->rss_idle, r->rss_peak, r->samples);
    if (!asan) printf(" (bound %ld KiB = 64 MiB budget + 32 MiB pool + 32 MiB slack + idle)", bound_kb);
    printf("\n");
    CHECK(r->samples >= (long)(attack_ms / 200));
    if (!asan) CHECK(r->rss_peak <= bound_kb);
    ok = normal_client(r, why, sizeof why);
    CHECK(ok);
    printf("  %s normal client after the attack: %s\n", ok ? "ok  " : "FAIL", why);
    for (i = 0; i < (int)r->n; i++) {
        if (r->c[i].fd >= 0) close(r->c[i].fd);
        free(r->c[i].out);
        free(r->c[i].body);
    }
    free(r->c);
    i = hs_stop(&r->srv);
    if (i != 0) printf("  exit %d; output:\n%s\n", i, r->srv.log);
    CHECK_EQ(i, 0); /* SIGTERM: a clean exit (and no leak under ASan) */
    printf("  took %.1f s\n", (double)(hs_now_ms() - t0) / 1000.0);
    fflush(stdout);
}

int main(int argc, char **argv) {
    unsigned ms = argc > 1 ? (unsigned)atoi(argv[1]) : 12000;
    signal(SIGPIPE, SIG_IGN);
    (void)hs_read_close; /* tests/hostile.h: not needed here */
    one_run("build/chat_server", 0, ms);
    if (!getenv("RTWS_LOAD_NO_ASAN")) one_run("build/asan_chat_server", 1, ms / 2);
    return T_END();
}
