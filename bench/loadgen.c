/* loadgen - WebSocket load generator for the rtws bench (one thread, epoll).

   usage: ./loadgen --port P [options]
     --host H          server address (default 127.0.0.1; loopback only)
     --ports P,Q,..    several servers (nodes of a cluster, up to 8): the
                       connections go round-robin over them (fanout: the
                       subscribers; the publisher goes to --pub-port)
     --pub-port P      fanout: the publisher's server (default the first)
     --mode M          echo | latency | idle | soak | fanout (default echo)
     --conns N         connections (default 100); fanout: subscribers, plus
                       one publisher connection
     --pipeline K      messages in flight per connection (default 16);
                       fanout: publishes in flight
     --size B          payload bytes (default 64)
     --binary          binary messages (default text)
     --warmup S        seconds run before measuring (default 1)
     --duration S      seconds measured (echo/latency), idle window (idle),
                       whole run (soak) (default 5)
     --pid PID         server process: echo/latency read its CPU time over the
                       measured window, idle its VmRSS and CPU time, soak
                       samples its VmRSS
     --concurrency C   handshakes in progress at once (default 256)
     --reconnect M     soak: close and reconnect every M messages (default 200)
     --sample S        soak: seconds between RSS samples (default 5)
     --src-ips N       spread the connections over N source addresses
                       127.1.0.1, 127.1.0.2, ... (bound before connect, the
                       port picked at connect time): past the ~28k ephemeral
                       ports one address has towards one server (default 0:
                       let the kernel pick, 127.0.0.1)
     --idle S          fanout: once everyone is subscribed, sit idle S seconds
                       (answering pings) and report the server's VmRSS per
                       subscribed connection before publishing (default 0)

   With more connections than the fd limit allows (the soft limit is raised
   to the hard one first), idle and fanout go on with as many as fit and say
   so ("capped"); the other modes stop.

   Every connection's opening handshake is checked (101, Upgrade, the
   Sec-WebSocket-Accept value for our random key). Client frames are masked
   (prebuilt frames, each with its own random key); reads and writes may be
   partial at any byte. Every echo is checked in order: opcode, length, and
   the content (all of it up to 4 KiB, else 4 samples of 16 bytes). Pings
   from the server are answered with pongs.

   fanout speaks the realtime protocol of docs/PROTOCOL.md: every connection
   must first get a text "welcome"; each subscriber sends a masked
   {"type":"subscribe","channel":"bench"} and must get "subscribed" for
   "bench" (its "seq" is where the channel stands). Once all are subscribed,
   the publisher sends {"type":"publish","channel":"bench","data":{"n":N,"t":T}}
   (N counts from 0, T is the send time in ns), keeping K publishes in flight;
   a publish is complete when every subscriber has it. Every subscriber must
   get every publish once, in order: a text "message" of channel "bench"
   with data n = the next N, its send time, "seq" = the previous seq + 1,
   "from" and "ts"; anything else (a gap, a repeat, another message, garbage)
   is an error. Figures over the measured window: deliveries/s (messages
   received by subscribers), publishes/s, and delivery latency (receive time
   minus T, per delivery: p50, p99, max), with K publishes queued ahead.

   idle also counts heartbeat rounds (pings answered / connections open) and
   the server CPU per round over the window. fanout also gives the latency
   of each publish to its last subscriber (complete_p50_us, complete_p99_us).

   Output: human lines, then one machine line starting "result " with
   key=value pairs. Exit status 0 only when there was no error. */
#define _GNU_SOURCE
#include "proc_util.h"
#include "ws_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_LATENCY, MODE_IDLE, MODE_SOAK, MODE_FANOUT };
enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

/* ---- options ---- */
static const char *o_host = "127.0.0.1";
static int o_ports[8], o_nports, o_pub_port;
static int o_port, o_mode = MODE_ECHO, o_conns = 100, o_pipeline = 16, o_binary;
static size_t o_size = 64;
static double o_warmup = 1, o_duration = 5, o_sample = 5;
static long o_pid;
static int o_concurrency = 256, o_reconnect = 200, o_src_ips;
static double o_idle;

/* ---- time, randomness ---- */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static uint64_t rng_s;
static uint64_t rng(void) {
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return rng_s * 2685821657736338717ull;
}

/* ---- prebuilt messages ---- */
typedef struct variant {
    uint8_t *frame; /* header + masked payload */
    size_t frame_len;
    const uint8_t *plain; /* the payload the echo must carry */
    size_t len;
    uint8_t op;
} variant;
static variant *vars;
static int nvars;
static uint8_t *plain_base;

static void make_variants(void) {
    /* soak: mixed sizes across every length form, text and binary, and one
       big message that makes a server grow and release its buffers */
    static const size_t soak_sizes[16] = {2,   16,   64,   125,  126, 300,   1000, 4000,
                                          16,  64,   8000, 20000, 16, 64, 65541, 300000};
    size_t maxlen = o_size, base_len, i;
    int v;
    nvars = o_mode == MODE_SOAK ? 16 : (o_size >= 65536 ? 16 : 64);
    if (o_mode == MODE_SOAK) maxlen = 300000;
    if (o_mode == MODE_IDLE) maxlen = 16;
    base_len = maxlen + (size_t)nvars * 7 + 16;
    plain_base = (uint8_t *)malloc(base_len);
    vars = (variant *)calloc((size_t)nvars, sizeof *vars);
    if (!plain_base || !vars) exit(1);
    for (i = 0; i < base_len; i++) plain_base[i] = (uint8_t)('!' + rng() % 94); /* ASCII: valid text */
    for (v = 0; v < nvars; v++) {
        variant *x = &vars[v];
        size_t len = o_mode == MODE_SOAK ? soak_sizes[v] : o_mode == MODE_IDLE ? 16 : o_size, h = 0, j;
        uint8_t key[4];
        uint64_t r = rng();
        memcpy(key, &r, 4);
        x->len = len;
        x->plain = plain_base + (size_t)v * 7;
        x->op = o_mode == MODE_SOAK ? (uint8_t)(v & 1 ? 2 : 1) : (uint8_t)(o_binary ? 2 : 1);
        x->frame = (uint8_t *)malloc(len + 14);
        if (!x->frame) exit(1);
        x->frame[h++] = (uint8_t)(0x80 | x->op);
        if (len < 126) {
            x->frame[h++] = (uint8_t)(0x80 | len);
        } else if (len <= 0xFFFF) {
            x->frame[h++] = 0x80 | 126;
            x->frame[h++] = (uint8_t)(len >> 8);
            x->frame[h++] = (uint8_t)len;
        } else {
            x->frame[h++] = 0x80 | 127;
            for (j = 0; j < 8; j++) x->frame[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * j));
        }
        memcpy(x->frame + h, key, 4);
        h += 4;
        for (j = 0; j < len; j++) x->frame[h + j] = (uint8_t)(x->plain[j] ^ key[j & 3]);
        x->frame_len = h + len;
    }
}

/* ---- connections ---- */
typedef struct outpiece {
    const uint8_t *p;
    size_t len;
} outpiece;

typedef struct expect {
    int v;
    uint64_t t; /* send time (latency) */
} expect;

typedef struct conn {
    int fd, state, idx, epout, closing_sent;
    uint64_t t_start;
    char accept[29];
    uint8_t *rbuf;
    size_t rcap, rlen;
    outpiece *oq; /* ring */
    size_t oq_cap, oq_head, oq_n, oq_off;
    uint8_t ctl[512]; /* handshake request, pongs, close frames */
    size_t ctl_len;
    expect *ex; /* ring of messages in flight */
    size_t ex_cap, ex_head, ex_n;
    uint8_t *mbuf; /* fragmented message being assembled */
    size_t mlen, mcap;
    uint8_t mop;
    uint64_t counter, since_connect;
    int fo;          /* fanout: FO_* */
    uint64_t fo_seq; /* fanout: the seq the next message must carry */
} conn;

/* fanout: where a connection is in the protocol */
enum { FO_WELCOME, FO_SUBSCRIBING, FO_SUBSCRIBED, FO_PUBLISHER };

static conn *conns;
static int n_conns; /* o_conns, and the publisher in fanout mode */
static int ep;
static int n_open, n_pending, n_started;
static uint64_t msgs, bytes, errors, handshakes, reconnects, n_pings;
static int sending = 1;
static uint64_t *lat, *clat; /* clat: fanout, publish to its last subscriber */
static size_t nlat, latcap, nclat, clatcap;
static int measuring;
static struct sockaddr_in addr;

/* fanout: the publisher, and a ring of the publishes in flight */
typedef struct publish {
    uint64_t n, t; /* number, send time (ns) */
    int got;       /* subscribers that have it */
    uint8_t frame[128];
} publish;
static conn *pub;
static publish *pubs;
static uint64_t pub_next, pub_done, pub_measured, deliveries, delivered_bytes;
static int n_ready, n_subscribed; /* ready: subscribers subscribed + publisher welcomed */
static uint64_t first_seq;

static void error_at(conn *c, const char *fmt, ...) {
    va_list ap;
    errors++;
    if (errors <= 10) {
        fprintf(stderr, "loadgen: conn %d: ", c ? c->idx : -1);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

static void ep_set(conn *c, int out) {
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN | (out ? EPOLLOUT : 0);
    e.data.ptr = c;
    c->epout = out;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void oq_push(conn *c, const uint8_t *p, size_t len) {
    if (c->oq_n == c->oq_cap) {
        size_t ncap = c->oq_cap * 2, i;
        outpiece *n = (outpiece *)malloc(ncap * sizeof *n);
        if (!n) exit(1);
        for (i = 0; i < c->oq_n; i++) n[i] = c->oq[(c->oq_head + i) % c->oq_cap];
        free(c->oq);
        c->oq = n;
        c->oq_cap = ncap;
        c->oq_head = 0;
    }
    c->oq[(c->oq_head + c->oq_n) % c->oq_cap].p = p;
    c->oq[(c->oq_head + c->oq_n) % c->oq_cap].len = len;
    c->oq_n++;
}

/* Small frames we build (pongs, close) go through ctl, appended while output
   that points into it is pending. */
static uint8_t *ctl_reserve(conn *c, size_t n) {
    if (c->oq_n == 0) c->ctl_len = 0;
    if (c->ctl_len + n > sizeof c->ctl) return NULL;
    c->ctl_len += n;
    return c->ctl + c->ctl_len - n;
}

static void conn_close_fd(conn *c);

/* Writes what is queued; partial writes keep their offset. */
static void flush(conn *c) {
    while (c->oq_n) {
        struct iovec io[64];
        int n = 0;
        size_t i, total = 0;
        ssize_t w, written;
        for (i = 0; i < c->oq_n && n < 64; i++) {
            const outpiece *o = &c->oq[(c->oq_head + i) % c->oq_cap];
            size_t skip = i == 0 ? c->oq_off : 0;
            io[n].iov_base = (void *)(uintptr_t)(o->p + skip);
            io[n].iov_len = o->len - skip;
            total += io[n].iov_len;
            n++;
        }
        w = writev(c->fd, io, n);
        written = w;
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (!c->epout) ep_set(c, 1);
                return;
            }
            if (c->state != ST_CLOSING) error_at(c, "write: %s", strerror(errno));
            conn_close_fd(c);
            return;
        }
        while (w > 0) {
            outpiece *o = &c->oq[c->oq_head];
            size_t k = o->len - c->oq_off;
            if ((size_t)w >= k) {
                w -= (ssize_t)k;
                c->oq_off = 0;
                c->oq_head = (c->oq_head + 1) % c->oq_cap;
                c->oq_n--;
            } else {
                c->oq_off += (size_t)w;
                w = 0;
            }
        }
        if ((size_t)written < total && c->oq_n) {
            if (!c->epout) ep_set(c, 1);
            return;
        }
    }
    if (c->epout) ep_set(c, 0);
}

static void send_message(conn *c) {
    int v = (int)((c->counter++ + (uint64_t)c->idx) % (uint64_t)nvars);
    expect *e;
    if (c->ex_n == c->ex_cap) {
        size_t ncap = c->ex_cap * 2, i;
        expect *n = (expect *)malloc(ncap * sizeof *n);
        if (!n) exit(1);
        for (i = 0; i < c->ex_n; i++) n[i] = c->ex[(c->ex_head + i) % c->ex_cap];
        free(c->ex);
        c->ex = n;
        c->ex_cap = ncap;
        c->ex_head = 0;
    }
    e = &c->ex[(c->ex_head + c->ex_n) % c->ex_cap];
    e->v = v;
    e->t = o_mode == MODE_LATENCY ? now_ns() : 0;
    c->ex_n++;
    oq_push(c, vars[v].frame, vars[v].frame_len);
}

static void send_close(conn *c) {
    uint8_t *f = ctl_reserve(c, 8), key[4];
    uint64_t r = rng();
    if (!f) return;
    memcpy(key, &r, 4);
    f[0] = 0x88;
    f[1] = 0x80 | 2;
    memcpy(f + 2, key, 4);
    f[6] = (uint8_t)((1000 >> 8) ^ key[0]);
    f[7] = (uint8_t)((1000 & 255) ^ key[1]);
    oq_push(c, f, 8);
    c->closing_sent = 1;
    c->state = ST_CLOSING;
}

static void start_connect(conn *c);

static void conn_close_fd(conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->state == ST_OPEN || c->state == ST_CLOSING) n_open--;
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) n_pending--;
    c->fd = -1;
    c->state = ST_FREE;
    c->oq_n = c->oq_head = c->oq_off = 0;
    c->ex_n = c->ex_head = 0;
    c->rlen = c->mlen = 0;
    c->mop = 0;
    c->closing_sent = 0;
}

static int sample_ok(const uint8_t *got, const uint8_t *want, size_t len, uint64_t salt) {
    size_t i;
    if (len <= 4096) return memcmp(got, want, len) == 0;
    if (memcmp(got, want, 16) || memcmp(got + len - 16, want + len - 16, 16)) return 0;
    for (i = 0; i < 2; i++) {
        size_t off = (size_t)((salt * 2654435761u + i * 40503u) % (len - 16));
        if (memcmp(got + off, want + off, 16)) return 0;
    }
    return 1;
}

/* Where the value after key is in p[0..len), or NULL. */
static const uint8_t *fo_find(const uint8_t *p, size_t len, const char *key) {
    size_t kl = strlen(key);
    const uint8_t *f = (const uint8_t *)memmem(p, len, key, kl);
    return f ? f + kl : NULL;
}
/* Parses the unsigned integer at *q (before end): 0 when there is none. */
static int fo_uint(const uint8_t **q, const uint8_t *end, uint64_t *v) {
    const uint8_t *s = *q;
    *v = 0;
    if (!s || s >= end || *s < '0' || *s > '9') return 0;
    while (s < end && *s >= '0' && *s <= '9' && *v < 100000000000000000ull)
        *v = *v * 10 + (uint64_t)(*s++ - '0');
    *q = s;
    return 1;
}

static void fo_send_subscribe(conn *c) {
    static const char msg[] = "{\"type\":\"subscribe\",\"channel\":\"bench\"}";
    size_t n = sizeof msg - 1, i;
    uint8_t *f = ctl_reserve(c, n + 6);
    uint64_t r = rng();
    if (!f) {
        error_at(c, "no room for the subscribe");
        return;
    }
    f[0] = 0x81;
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, &r, 4);
    for (i = 0; i < n; i++) f[6 + i] = (uint8_t)(msg[i] ^ f[2 + (i & 3)]);
    oq_push(c, f, n + 6);
}

/* Keeps o_pipeline publishes in flight: publish N goes out once N - K is
   complete, so its ring slot is free (and its frame long written). */
static void fo_fill(void) {
    int queued = 0;
    while (sending && pub->state == ST_OPEN && pub_next - pub_done < (uint64_t)o_pipeline) {
        publish *x = &pubs[pub_next % (uint64_t)o_pipeline];
        char msg[120];
        int n;
        size_t i;
        uint64_t r = rng();
        x->n = pub_next++;
        x->t = now_ns();
        x->got = 0;
        n = snprintf(msg, sizeof msg,
                     "{\"type\":\"publish\",\"channel\":\"bench\",\"data\":{\"n\":%llu,\"t\":%llu}}",
                     (unsigned long long)x->n, (unsigned long long)x->t);
        x->frame[0] = 0x81;
        x->frame[1] = (uint8_t)(0x80 | n);
        memcpy(x->frame + 2, &r, 4);
        for (i = 0; i < (size_t)n; i++) x->frame[6 + i] = (uint8_t)(msg[i] ^ x->frame[2 + (i & 3)]);
        oq_push(pub, x->frame, (size_t)n + 6);
        queued = 1;
    }
    if (queued) flush(pub);
}

static void fo_message(conn *c, uint8_t op, const uint8_t *p, size_t len) {
    const uint8_t *end = p + len, *q;
    uint64_t n, t, seq;
    publish *x;
    if (op != 1) {
        error_at(c, "binary message (%zu bytes)", len);
        return;
    }
    if (c->fo == FO_WELCOME) {
        if (!fo_find(p, len, "\"type\":\"welcome\"")) {
            error_at(c, "expected welcome, got: %.*s", (int)(len < 100 ? len : 100), p);
            return;
        }
        if (c == pub) {
            c->fo = FO_PUBLISHER;
            n_ready++;
        } else {
            c->fo = FO_SUBSCRIBING;
        }
        return;
    }
    if (c->fo == FO_SUBSCRIBING) {
        q = fo_find(p, len, "\"seq\":");
        if (!fo_find(p, len, "\"type\":\"subscribed\"") || !fo_find(p, len, "\"channel\":\"bench\"") ||
            !fo_uint(&q, end, &seq)) {
            error_at(c, "expected subscribed, got: %.*s", (int)(len < 100 ? len : 100), p);
            return;
        }
        if (n_subscribed++ == 0) first_seq = seq;
        else if (seq != first_seq)
            error_at(c, "subscribed at seq %llu, others at %llu", (unsigned long long)seq,
                     (unsigned long long)first_seq);
        c->fo_seq = seq + 1;
        c->fo = FO_SUBSCRIBED;
        n_ready++;
        return;
    }
    if (c->fo != FO_SUBSCRIBED) {
        error_at(c, "unexpected message to the publisher: %.*s", (int)(len < 100 ? len : 100), p);
        return;
    }
    q = fo_find(p, len, "\"data\":{\"n\":");
    if (!fo_find(p, len, "\"type\":\"message\"") || !fo_find(p, len, "\"channel\":\"bench\"") ||
        !fo_find(p, len, "\"from\":\"") || !fo_find(p, len, "\"ts\":") || !fo_uint(&q, end, &n) ||
        end - q < 5 || memcmp(q, ",\"t\":", 5)) {
        error_at(c, "expected a message of channel bench, got: %.*s", (int)(len < 100 ? len : 100), p);
        return;
    }
    q += 5;
    if (!fo_uint(&q, end, &t) || q == end || *q != '}') {
        error_at(c, "bad data in: %.*s", (int)(len < 100 ? len : 100), p);
        return;
    }
    q = fo_find(p, len, "\"seq\":");
    if (!fo_uint(&q, end, &seq) || seq != c->fo_seq) {
        error_at(c, "message seq %llu, expected %llu", (unsigned long long)seq,
                 (unsigned long long)c->fo_seq);
        return;
    }
    if (n != c->counter || n >= pub_next) {
        error_at(c, "got publish %llu, expected %llu (%s)", (unsigned long long)n,
                 (unsigned long long)c->counter, n < c->counter ? "repeat" : "gap");
        return;
    }
    x = &pubs[n % (uint64_t)o_pipeline];
    if (x->n != n || x->t != t) {
        error_at(c, "publish %llu arrived with another send time", (unsigned long long)n);
        return;
    }
    c->counter++;
    c->fo_seq++;
    deliveries++;
    delivered_bytes += len;
    if (measuring) {
        if (nlat == latcap) {
            latcap = latcap ? latcap * 2 : 1 << 20;
            lat = (uint64_t *)realloc(lat, latcap * sizeof *lat);
            if (!lat) exit(1);
        }
        lat[nlat++] = now_ns() - t;
    }
    if (++x->got == o_conns) { /* every subscriber has it: complete (in order, see below) */
        if (n != pub_done) error_at(c, "publish %llu complete before %llu", (unsigned long long)n,
                                    (unsigned long long)pub_done);
        pub_done = n + 1;
        if (measuring) {
            pub_measured++;
            if (nclat == clatcap) {
                clatcap = clatcap ? clatcap * 2 : 1 << 16;
                clat = (uint64_t *)realloc(clat, clatcap * sizeof *clat);
                if (!clat) exit(1);
            }
            clat[nclat++] = now_ns() - x->t;
        }
        fo_fill();
    }
}

static void on_message(conn *c, uint8_t op, const uint8_t *p, size_t len) {
    expect *e;
    const variant *x;
    if (o_mode == MODE_FANOUT) {
        fo_message(c, op, p, len);
        return;
    }
    if (c->ex_n == 0) {
        error_at(c, "unexpected message of %zu bytes", len);
        return;
    }
    e = &c->ex[c->ex_head];
    x = &vars[e->v];
    if (op != x->op || len != x->len || !sample_ok(p, x->plain, len, c->counter)) {
        error_at(c, "echo mismatch: op %u len %zu, expected op %u len %zu", op, len, x->op, x->len);
    } else {
        msgs++;
        bytes += len;
        if (o_mode == MODE_LATENCY && measuring) {
            if (nlat == latcap) {
                latcap = latcap ? latcap * 2 : 1 << 20;
                lat = (uint64_t *)realloc(lat, latcap * sizeof *lat);
                if (!lat) exit(1);
            }
            lat[nlat++] = now_ns() - e->t;
        }
    }
    c->ex_head = (c->ex_head + 1) % c->ex_cap;
    c->ex_n--;
    c->since_connect++;
    if (o_mode == MODE_SOAK && c->since_connect >= (uint64_t)o_reconnect) {
        if (c->ex_n == 0 && c->state == ST_OPEN) send_close(c);
        return;
    }
    if (sending && c->state == ST_OPEN && o_mode != MODE_IDLE) send_message(c);
}

/* Parses the server's frames in rbuf; returns 0 when the connection ended. */
static int parse_frames(conn *c) {
    size_t off = 0;
    while (c->rlen - off >= 2) {
        uint8_t *p = c->rbuf + off;
        size_t avail = c->rlen - off, hl = 2;
        uint64_t len = p[1] & 127u;
        int fin = p[0] >> 7, op = p[0] & 15;
        if (p[1] & 0x80) {
            error_at(c, "masked frame from the server");
            conn_close_fd(c);
            return 0;
        }
        if (p[0] & 0x70) {
            error_at(c, "reserved bits set");
            conn_close_fd(c);
            return 0;
        }
        if (len == 126) hl = 4;
        else if (len == 127) hl = 10;
        if (avail < hl) break;
        if (len == 126) len = (uint64_t)p[2] << 8 | p[3];
        else if (len == 127) {
            int i;
            len = 0;
            for (i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        }
        if (len > ((uint64_t)64 << 20)) {
            error_at(c, "frame too big");
            conn_close_fd(c);
            return 0;
        }
        if (avail < hl + len) {
            if (hl + len > c->rcap) { /* grow: the whole frame must fit */
                size_t ncap = c->rcap;
                uint8_t *nb;
                while (ncap < hl + len) ncap *= 2;
                memmove(c->rbuf, p, avail);
                c->rlen = avail;
                off = 0;
                nb = (uint8_t *)realloc(c->rbuf, ncap);
                if (!nb) exit(1);
                c->rbuf = nb;
                c->rcap = ncap;
                return 1;
            }
            break;
        }
        {
            uint8_t *pl = p + hl;
            size_t n = (size_t)len;
            off += hl + n;
            switch (op) {
            case 1:
            case 2:
            case 0:
                if (op == 0 && !c->mop) {
                    error_at(c, "continuation without a message");
                    break;
                }
                if (op != 0 && c->mop) {
                    error_at(c, "new message inside a fragmented one");
                    break;
                }
                if (fin && op != 0) {
                    on_message(c, (uint8_t)op, pl, n);
                    break;
                }
                if (op != 0) c->mop = (uint8_t)op, c->mlen = 0;
                if (c->mlen + n > c->mcap) {
                    size_t ncap = c->mcap ? c->mcap : 4096;
                    while (ncap < c->mlen + n) ncap *= 2;
                    c->mbuf = (uint8_t *)realloc(c->mbuf, ncap);
                    if (!c->mbuf) exit(1);
                    c->mcap = ncap;
                }
                memcpy(c->mbuf + c->mlen, pl, n);
                c->mlen += n;
                if (fin) {
                    uint8_t mop = c->mop;
                    c->mop = 0;
                    on_message(c, mop, c->mbuf, c->mlen);
                }
                break;
            case 9: { /* ping: answer with a masked pong */
                uint8_t *f;
                size_t i;
                uint64_t r = rng();
                n_pings++;
                if (n > 125) {
                    error_at(c, "ping over 125 bytes");
                    break;
                }
                f = ctl_reserve(c, n + 6);
                if (!f) break; /* an earlier pong is still pending: it answers too */
                f[0] = 0x8A;
                f[1] = (uint8_t)(0x80 | n);
                memcpy(f + 2, &r, 4);
                for (i = 0; i < n; i++) f[6 + i] = (uint8_t)(pl[i] ^ f[2 + (i & 3)]);
                oq_push(c, f, n + 6);
                break;
            }
            case 10:
                break;
            case 8:
                if (c->state == ST_CLOSING) {
                    unsigned code = n >= 2 ? (unsigned)pl[0] << 8 | pl[1] : 1005;
                    if (code != 1000) error_at(c, "close answered with %u", code);
                } else {
                    error_at(c, "server closed the connection (%u)",
                             n >= 2 ? (unsigned)pl[0] << 8 | pl[1] : 1005);
                }
                conn_close_fd(c);
                return 0;
            default:
                error_at(c, "unknown opcode %d", op);
                conn_close_fd(c);
                return 0;
            }
        }
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 1;
}

static int check_handshake(conn *c) {
    const char *h = (const char *)c->rbuf, *v;
    size_t n, i, vl;
    for (n = 0; n + 4 <= c->rlen; n++)
        if (!memcmp(h + n, "\r\n\r\n", 4)) break;
    if (n + 4 > c->rlen) {
        if (c->rlen > 8192) {
            error_at(c, "handshake response too long");
            conn_close_fd(c);
        }
        return 0;
    }
    n += 4;
    if (c->rlen < 12 || memcmp(h, "HTTP/1.1 101", 12)) {
        error_at(c, "handshake refused: %.*s", (int)(c->rlen < 40 ? c->rlen : 40), h);
        conn_close_fd(c);
        return 0;
    }
    v = wsu_header(h, n, "sec-websocket-accept:", &vl);
    if (!v || vl != 28 || memcmp(v, c->accept, 28)) {
        error_at(c, "bad Sec-WebSocket-Accept");
        conn_close_fd(c);
        return 0;
    }
    v = wsu_header(h, n, "upgrade:", &vl);
    if (!v || vl != 9 || strncasecmp(v, "websocket", 9)) {
        error_at(c, "bad Upgrade header");
        conn_close_fd(c);
        return 0;
    }
    for (i = n; i < c->rlen; i++) c->rbuf[i - n] = c->rbuf[i];
    c->rlen -= n;
    c->state = ST_OPEN;
    c->since_connect = 0;
    n_open++;
    n_pending--;
    handshakes++;
    return 1;
}

static void start_pipeline(conn *c) {
    int i;
    if (o_mode == MODE_FANOUT) {
        if (c != pub) fo_send_subscribe(c);
        return;
    }
    if (o_mode == MODE_IDLE || !sending) return;
    for (i = 0; i < o_pipeline; i++) send_message(c);
}

static void on_readable(conn *c) {
    for (;;) {
        size_t space;
        ssize_t r;
        if (c->rlen == c->rcap) {
            c->rcap *= 2;
            c->rbuf = (uint8_t *)realloc(c->rbuf, c->rcap);
            if (!c->rbuf) exit(1);
        }
        space = c->rcap - c->rlen;
        r = read(c->fd, c->rbuf + c->rlen, space);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            if (c->state != ST_CLOSING) error_at(c, "read: %s", strerror(errno));
            conn_close_fd(c);
            return;
        }
        if (r == 0) {
            if (c->state != ST_CLOSING) error_at(c, "server ended the connection");
            conn_close_fd(c);
            return;
        }
        c->rlen += (size_t)r;
        if (c->state == ST_HANDSHAKE) {
            if (!check_handshake(c)) {
                if (c->fd < 0) return;
                if ((size_t)r < space) break;
                continue;
            }
            start_pipeline(c);
        }
        if (!parse_frames(c)) return;
        if ((size_t)r < space) break; /* drained: spare the EAGAIN read */
    }
    if (c->fd >= 0) flush(c);
}

static void start_connect(conn *c) {
    struct epoll_event e;
    uint8_t keyraw[16];
    char key[25];
    int fd, one = 1, len;
    size_t i;
    for (i = 0; i < 16; i++) keyraw[i] = (uint8_t)rng();
    wsu_base64(keyraw, 16, key);
    wsu_accept(key, 24, c->accept);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_at(c, "socket: %s", strerror(errno));
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_src_ips > 0) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24 | 1u << 16) + 1u + (uint32_t)(c->idx % o_src_ips));
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            error_at(c, "bind 127.1.x.y: %s", strerror(errno));
            close(fd);
            return;
        }
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->t_start = now_ns();
    n_pending++;
    n_started++;
    {
        struct sockaddr_in to = addr;
        int port = o_port;
        if (o_nports) port = c == pub && o_pub_port ? o_pub_port : o_ports[c->idx % o_nports];
        to.sin_port = htons((uint16_t)port);
        if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
            error_at(c, "connect: %s", strerror(errno));
            conn_close_fd(c);
            return;
        }
        c->ctl_len = 0;
        len = snprintf((char *)c->ctl, sizeof c->ctl,
                       "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       o_host, port, key);
    }
    c->ctl_len = (size_t)len;
    oq_push(c, c->ctl, (size_t)len);
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN | EPOLLOUT;
    e.data.ptr = c;
    c->epout = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void on_writable(conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            error_at(c, "connect: %s", strerror(err));
            conn_close_fd(c);
            return;
        }
        c->state = ST_HANDSHAKE;
    }
    flush(c);
}

/* ---- the loop ---- */
static void run_loop(uint64_t until_ns, int (*done)(void)) {
    /* fanout: thousands of sockets turn readable at once, take them in one go */
    static struct epoll_event ev[8192];
    int batch = o_mode == MODE_FANOUT ? 8192 : 512;
    while (now_ns() < until_ns && !(done && done())) {
        int i, n;
        /* keep handshakes flowing up to the concurrency limit */
        if (o_mode == MODE_SOAK || n_started < n_conns) {
            int k;
            for (k = 0; k < n_conns && n_pending < o_concurrency; k++) {
                conn *c;
                if (o_mode != MODE_SOAK && n_started >= n_conns) break;
                c = &conns[o_mode == MODE_SOAK ? k : n_started];
                if (c->state != ST_FREE) continue;
                if (o_mode == MODE_SOAK && !sending) break;
                if (o_mode == MODE_SOAK && c->fd < 0 && c->counter) reconnects++;
                start_connect(c);
            }
        }
        n = epoll_wait(ep, ev, batch, 10);
        for (i = 0; i < n; i++) {
            conn *c = (conn *)ev[i].data.ptr;
            if (c->fd < 0) continue;
            if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                if (c->state == ST_CONNECTING || (ev[i].events & EPOLLOUT)) on_writable(c);
            }
            if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
        }
    }
}

static int all_open(void) { return n_open >= n_conns || (n_started >= n_conns && n_pending == 0); }
static int all_drained(void) {
    int i;
    for (i = 0; i < n_conns; i++)
        if (conns[i].state == ST_OPEN && conns[i].ex_n) return 0;
    return 1;
}
static int all_closed(void) { return n_open == 0 && n_pending == 0; }
/* fanout: everyone subscribed, or nothing more can happen */
static int all_ready(void) {
    return n_ready >= n_conns || (n_started >= n_conns && n_pending == 0 && n_open < n_conns);
}
static int all_complete(void) { return pub_done == pub_next || pub->state != ST_OPEN; }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void close_all(void) {
    int i;
    sending = 0;
    for (i = 0; i < n_conns; i++) {
        conn *c = &conns[i];
        if (c->state == ST_OPEN) {
            send_close(c);
            flush(c);
        } else if (c->state != ST_FREE && c->state != ST_CLOSING) {
            conn_close_fd(c);
        }
    }
    run_loop(now_ns() + 3000000000ull, all_closed);
    for (i = 0; i < n_conns; i++)
        if (conns[i].fd >= 0) conn_close_fd(&conns[i]);
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port P [--host H] [--mode echo|latency|idle|soak|fanout] [--conns N]\n"
                    "  [--pipeline K] [--size B] [--binary] [--warmup S] [--duration S] [--pid PID]\n"
                    "  [--concurrency C] [--reconnect M] [--sample S] [--src-ips N] [--idle S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int i, requested;
    uint64_t t0, seed;
    struct rlimit rl;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--binary")) {
            o_binary = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--host")) o_host = v;
        else if (!strcmp(a, "--port")) o_port = atoi(v);
        else if (!strcmp(a, "--pub-port")) o_pub_port = atoi(v);
        else if (!strcmp(a, "--ports")) {
            const char *q = v;
            while (*q && o_nports < 8) {
                o_ports[o_nports++] = atoi(q);
                while (*q && *q != ',') q++;
                if (*q == ',') q++;
            }
            o_port = o_ports[0];
        }
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "echo")) o_mode = MODE_ECHO;
            else if (!strcmp(v, "latency")) o_mode = MODE_LATENCY;
            else if (!strcmp(v, "idle")) o_mode = MODE_IDLE;
            else if (!strcmp(v, "soak")) o_mode = MODE_SOAK;
            else if (!strcmp(v, "fanout")) o_mode = MODE_FANOUT;
            else usage();
        } else if (!strcmp(a, "--conns")) o_conns = atoi(v);
        else if (!strcmp(a, "--pipeline")) o_pipeline = atoi(v);
        else if (!strcmp(a, "--size")) o_size = (size_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--warmup")) o_warmup = atof(v);
        else if (!strcmp(a, "--duration")) o_duration = atof(v);
        else if (!strcmp(a, "--pid")) o_pid = atol(v);
        else if (!strcmp(a, "--concurrency")) o_concurrency = atoi(v);
        else if (!strcmp(a, "--reconnect")) o_reconnect = atoi(v);
        else if (!strcmp(a, "--sample")) o_sample = atof(v);
        else if (!strcmp(a, "--src-ips")) o_src_ips = atoi(v);
        else if (!strcmp(a, "--idle")) o_idle = atof(v);
        else usage();
    }
    if (o_port <= 0 || o_conns <= 0 || o_pipeline <= 0 || o_concurrency <= 0 || o_reconnect <= 0)
        usage();
    if (o_mode == MODE_LATENCY) o_pipeline = 1;
    requested = o_conns;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o_port);
    if (inet_pton(AF_INET, o_host, &addr.sin_addr) != 1 ||
        (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: --host must be an IPv4 loopback address (127.x.y.z)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* one fd per connection plus a few: raise the soft limit when we can */
    n_conns = o_conns + (o_mode == MODE_FANOUT);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n_conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n_conns + 64 ? rl.rlim_max : (rlim_t)n_conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((rlim_t)n_conns + 64 > rl.rlim_cur) {
            if ((o_mode != MODE_IDLE && o_mode != MODE_FANOUT) || rl.rlim_cur < 128) {
                fprintf(stderr, "loadgen: fd limit %lu is below %d connections\n",
                        (unsigned long)rl.rlim_cur, n_conns);
                return 2;
            }
            o_conns = (int)rl.rlim_cur - 64 - (o_mode == MODE_FANOUT);
            fprintf(stderr, "loadgen: fd limit %lu: capped to %d of %d connections\n",
                    (unsigned long)rl.rlim_cur, o_conns, requested);
            printf("capped: fd limit %lu, %d of %d connections\n", (unsigned long)rl.rlim_cur,
                   o_conns, requested);
        }
    }
    n_conns = o_conns + (o_mode == MODE_FANOUT);
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = now_ns();
    rng_s = seed | 1;
    make_variants();
    conns = (conn *)calloc((size_t)n_conns, sizeof *conns);
    if (!conns) return 1;
    if (o_mode == MODE_FANOUT) {
        pub = &conns[o_conns]; /* connects last */
        pubs = (publish *)calloc((size_t)o_pipeline, sizeof *pubs);
        if (!pubs) return 1;
    }
    for (i = 0; i < n_conns; i++) {
        conn *c = &conns[i];
        c->fd = -1;
        c->idx = i;
        c->rcap = o_mode == MODE_IDLE ? 1024 : 16384;
        c->rbuf = (uint8_t *)malloc(c->rcap);
        c->oq_cap = (size_t)o_pipeline * 2 + 8;
        c->oq = (outpiece *)malloc(c->oq_cap * sizeof *c->oq);
        c->ex_cap = (size_t)o_pipeline + 4;
        c->ex = (expect *)malloc(c->ex_cap * sizeof *c->ex);
        if (!c->rbuf || !c->oq || !c->ex) return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return 1;

    if (o_mode == MODE_FANOUT) {
        uint64_t d0, db0, d1, db1, t1, t2;
        double secs, scpu0, scpu1, lcpu0, lcpu1, spct, lpct, us_per_del, setup_s, p50 = 0, p99 = 0,
               pmax = 0, c50 = 0, c99 = 0, idle_bpc = -1;
        long frss0 = o_pid ? rss_kb(o_pid) : -1, frss1 = -1;
        t0 = now_ns();
        run_loop(t0 + 120000000000ull, all_ready);
        setup_s = (double)(now_ns() - t0) / 1e9;
        if (n_ready < n_conns || errors) {
            error_at(NULL, "only %d of %d subscribers subscribed (%d connections open)", n_subscribed,
                     o_conns, n_open);
            printf("result mode=fanout conns=%d opened=%d subscribed=%d errors=%llu\n", o_conns, n_open,
                   n_subscribed, (unsigned long long)errors);
            return 1;
        }
        printf("fanout: %d subscribers and 1 publisher connected and subscribed in %.2f s\n", o_conns,
               setup_s);
        if (o_idle > 0) { /* idle subscribed connections: the server's memory */
            uint64_t pings0 = n_pings;
            run_loop(now_ns() + (uint64_t)(o_idle * 1e9), NULL);
            frss1 = o_pid ? rss_kb(o_pid) : -1;
            if (frss0 >= 0 && frss1 >= 0) idle_bpc = (double)(frss1 - frss0) * 1024.0 / (double)n_conns;
            printf("fanout: after %.1f s idle: server RSS %ld kB before connecting, %ld kB now: %.0f "
                   "bytes per subscribed connection (%llu pings answered)\n",
                   o_idle, frss0, frss1, idle_bpc, (unsigned long long)(n_pings - pings0));
        }
        fflush(stdout);
        fo_fill();
        run_loop(now_ns() + (uint64_t)(o_warmup * 1e9), NULL);
        d0 = deliveries;
        db0 = delivered_bytes;
        measuring = 1;
        scpu0 = o_pid ? cpu_s(o_pid) : 0;
        lcpu0 = self_cpu_s();
        t1 = now_ns();
        run_loop(t1 + (uint64_t)(o_duration * 1e9), NULL);
        t2 = now_ns();
        scpu1 = o_pid ? cpu_s(o_pid) : 0;
        lcpu1 = self_cpu_s();
        measuring = 0;
        d1 = deliveries;
        db1 = delivered_bytes;
        secs = (double)(t2 - t1) / 1e9;
        spct = o_pid ? 100.0 * (scpu1 - scpu0) / secs : -1;
        lpct = 100.0 * (lcpu1 - lcpu0) / secs;
        us_per_del = o_pid && d1 > d0 ? (scpu1 - scpu0) * 1e6 / (double)(d1 - d0) : -1;
        sending = 0;
        run_loop(now_ns() + 30000000000ull, all_complete); /* the publishes in flight arrive too */
        if (pub_done != pub_next)
            error_at(NULL, "%llu of %llu publishes incomplete after the run",
                     (unsigned long long)(pub_next - pub_done), (unsigned long long)pub_next);
        for (i = 0; i < o_conns; i++)
            if (conns[i].counter != pub_done) {
                error_at(&conns[i], "got %llu of %llu publishes", (unsigned long long)conns[i].counter,
                         (unsigned long long)pub_done);
                break;
            }
        close_all();
        if (nlat) {
            qsort(lat, nlat, sizeof *lat, cmp_u64);
            p50 = (double)lat[nlat / 2] / 1e3;
            p99 = (double)lat[(size_t)((double)nlat * 0.99)] / 1e3;
            pmax = (double)lat[nlat - 1] / 1e3;
        }
        if (nclat) {
            qsort(clat, nclat, sizeof *clat, cmp_u64);
            c50 = (double)clat[nclat / 2] / 1e3;
            c99 = (double)clat[(size_t)((double)nclat * 0.99)] / 1e3;
        }
        printf("fanout: publish to its last subscriber p50 %.1f us, p99 %.1f us (%zu publishes)\n", c50,
               c99, nclat);
        printf("fanout: %d subscribers, %d publishes in flight: %.0f deliveries/s, %.1f publishes/s, "
               "%llu errors\n",
               o_conns, o_pipeline, (double)(d1 - d0) / secs, (double)pub_measured / secs,
               (unsigned long long)errors);
        printf("fanout: delivery latency p50 %.1f us, p99 %.1f us, max %.1f us (%zu deliveries of "
               "%.0f bytes)\n",
               p50, p99, pmax, nlat,
               d1 > d0 ? (double)(db1 - db0) / (double)(d1 - d0) : 0.0);
        printf("fanout: server CPU %.1f%% of a core (%.3f us per delivery), load generator CPU %.1f%%\n",
               spct, us_per_del, lpct);
        printf("result mode=fanout conns=%d pipeline=%d deliveries_per_s=%.0f publishes_per_s=%.2f "
               "deliveries=%llu publishes=%llu msg_bytes=%.0f p50_us=%.2f p99_us=%.2f max_us=%.2f "
               "samples=%zu setup_s=%.3f server_cpu_pct=%.1f server_us_per_delivery=%.4f "
               "loadgen_cpu_pct=%.1f complete_p50_us=%.2f complete_p99_us=%.2f idle_s=%.1f "
               "rss0_kb=%ld rss_idle_kb=%ld idle_bytes_per_conn=%.0f requested=%d errors=%llu\n",
               o_conns, o_pipeline, (double)(d1 - d0) / secs, (double)pub_measured / secs,
               (unsigned long long)(d1 - d0), (unsigned long long)pub_measured,
               d1 > d0 ? (double)(db1 - db0) / (double)(d1 - d0) : 0.0,
               p50, p99, pmax, nlat, setup_s, spct, us_per_del, lpct, c50, c99, o_idle, frss0, frss1,
               idle_bpc, requested, (unsigned long long)errors);
    } else if (o_mode == MODE_ECHO || o_mode == MODE_LATENCY) {
        uint64_t m0, b0, t1, t2;
        double secs, scpu0, scpu1, lcpu0, lcpu1, spct, lpct, us_per_msg;
        t0 = now_ns();
        run_loop(t0 + 20000000000ull, all_open);
        if (n_open < o_conns) {
            error_at(NULL, "only %d of %d connections opened", n_open, o_conns);
            printf("result mode=%s conns=%d opened=%d errors=%llu\n",
                   o_mode == MODE_ECHO ? "echo" : "latency", o_conns, n_open,
                   (unsigned long long)errors);
            return 1;
        }
        t1 = now_ns();
        run_loop(t1 + (uint64_t)(o_warmup * 1e9), NULL);
        m0 = msgs;
        b0 = bytes;
        measuring = 1;
        scpu0 = o_pid ? cpu_s(o_pid) : 0;
        lcpu0 = self_cpu_s();
        t1 = now_ns();
        run_loop(t1 + (uint64_t)(o_duration * 1e9), NULL);
        t2 = now_ns();
        scpu1 = o_pid ? cpu_s(o_pid) : 0;
        lcpu1 = self_cpu_s();
        measuring = 0;
        secs = (double)(t2 - t1) / 1e9;
        spct = o_pid ? 100.0 * (scpu1 - scpu0) / secs : -1;
        lpct = 100.0 * (lcpu1 - lcpu0) / secs;
        us_per_msg = o_pid && msgs > m0 ? (scpu1 - scpu0) * 1e6 / (double)(msgs - m0) : -1;
        sending = 0;
        run_loop(now_ns() + 10000000000ull, all_drained); /* every message in flight must come back */
        if (!all_drained()) error_at(NULL, "echoes missing after the run");
        close_all();
        if (o_mode == MODE_ECHO) {
            printf("echo: %d conns x pipeline %d, %zu-byte %s: %.0f msg/s, %.2f MB/s (echoed payload), %llu errors\n",
                   o_conns, o_pipeline, o_size, o_binary ? "binary" : "text",
                   (double)(msgs - m0) / secs, (double)(bytes - b0) / secs / 1e6,
                   (unsigned long long)errors);
            printf("echo: server CPU %.1f%% of a core (%.2f us per message), load generator CPU %.1f%%\n",
                   spct, us_per_msg, lpct);
            printf("result mode=echo conns=%d pipeline=%d size=%zu msgs_per_s=%.0f mb_per_s=%.3f msgs=%llu "
                   "server_cpu_pct=%.1f server_us_per_msg=%.3f loadgen_cpu_pct=%.1f errors=%llu\n",
                   o_conns, o_pipeline, o_size, (double)(msgs - m0) / secs,
                   (double)(bytes - b0) / secs / 1e6, (unsigned long long)(msgs - m0), spct, us_per_msg,
                   lpct, (unsigned long long)errors);
        } else {
            double p50 = 0, p99 = 0, p999 = 0;
            if (nlat) {
                qsort(lat, nlat, sizeof *lat, cmp_u64);
                p50 = (double)lat[nlat / 2] / 1e3;
                p99 = (double)lat[(size_t)((double)nlat * 0.99)] / 1e3;
                p999 = (double)lat[(size_t)((double)nlat * 0.999)] / 1e3;
            }
            printf("latency: %d conn(s), %zu-byte round trips: p50 %.1f us, p99 %.1f us, p99.9 %.1f us (%zu samples), %llu errors\n",
                   o_conns, o_size, p50, p99, p999, nlat, (unsigned long long)errors);
            printf("latency: server CPU %.1f%% of a core (%.2f us per round trip), load generator CPU %.1f%%\n",
                   spct, us_per_msg, lpct);
            printf("result mode=latency size=%zu p50_us=%.2f p99_us=%.2f p999_us=%.2f samples=%zu msgs_per_s=%.0f "
                   "server_cpu_pct=%.1f server_us_per_msg=%.3f loadgen_cpu_pct=%.1f errors=%llu\n",
                   o_size, p50, p99, p999, nlat, (double)nlat / secs, spct, us_per_msg, lpct,
                   (unsigned long long)errors);
        }
    } else if (o_mode == MODE_IDLE) {
        long rss0 = o_pid ? rss_kb(o_pid) : -1, rss1, rss2, rss_peak;
        double cpu0, cpu1, setup_s, per_conn, peak_per_conn, rounds;
        uint64_t t1, t2, pings_w0;
        t0 = now_ns();
        run_loop(t0 + 120000000000ull, all_open);
        t1 = now_ns();
        setup_s = (double)(t1 - t0) / 1e9;
        if (n_open < o_conns) error_at(NULL, "only %d of %d connections opened", n_open, o_conns);
        printf("idle: %d connections open in %.2f s (%.0f handshakes/s)\n", n_open, setup_s,
               (double)n_open / setup_s);
        run_loop(now_ns() + 1000000000ull, NULL); /* settle */
        rss1 = o_pid ? rss_kb(o_pid) : -1;
        cpu0 = o_pid ? cpu_s(o_pid) : 0;
        pings_w0 = n_pings;
        t1 = now_ns();
        rss_peak = rss1;
        /* the server's RSS every 100 ms of the window: its peak shows any
           transient cost of heartbeats (pings to every connection at once) */
        for (;;) {
            uint64_t t = now_ns(), end = t1 + (uint64_t)(o_duration * 1e9);
            long r;
            if (t >= end) break;
            run_loop(t + 100000000ull < end ? t + 100000000ull : end, NULL);
            r = o_pid ? rss_kb(o_pid) : -1;
            if (r > rss_peak) rss_peak = r;
        }
        t2 = now_ns();
        cpu1 = o_pid ? cpu_s(o_pid) : 0;
        rss2 = o_pid ? rss_kb(o_pid) : -1;
        if (rss2 > rss_peak) rss_peak = rss2;
        /* still alive? one 16-byte echo on every connection */
        for (i = 0; i < o_conns; i++) {
            conn *c = &conns[i];
            if (c->state != ST_OPEN) continue;
            send_message(c);
            flush(c);
        }
        run_loop(now_ns() + 30000000000ull, all_drained);
        if (!all_drained()) error_at(NULL, "some idle connections did not echo afterwards");
        if (msgs != (uint64_t)n_open)
            error_at(NULL, "%llu of %d connections echoed after the idle window",
                     (unsigned long long)msgs, n_open);
        per_conn = rss0 >= 0 ? (double)(rss2 - rss0) * 1024.0 / (double)o_conns : -1;
        peak_per_conn = rss0 >= 0 ? (double)(rss_peak - rss0) * 1024.0 / (double)o_conns : -1;
        /* heartbeat rounds in the window: pings answered over it per open connection */
        rounds = n_open ? (double)(n_pings - pings_w0) / (double)n_open : 0;
        printf("idle: %.2f heartbeat rounds in the window: %.3f s of server CPU per round "
               "(all of the window's CPU / rounds)\n",
               rounds, rounds > 0 ? (cpu1 - cpu0) / rounds : -1.0);
        printf("idle: server RSS %ld kB before, %ld kB open, %ld kB after %.1f s idle (peak %ld kB): "
               "%.0f bytes/conn (peak %.0f); server CPU while idle %.2f%% of a core; %llu pings "
               "answered\n",
               rss0, rss1, rss2, (double)(t2 - t1) / 1e9, rss_peak, per_conn, peak_per_conn,
               100.0 * (cpu1 - cpu0) / ((double)(t2 - t1) / 1e9), (unsigned long long)n_pings);
        printf("result mode=idle conns=%d opened=%d setup_s=%.3f handshakes_per_s=%.0f rss0_kb=%ld "
               "rss1_kb=%ld rss2_kb=%ld rss_peak_kb=%ld bytes_per_conn=%.0f peak_bytes_per_conn=%.0f "
               "idle_cpu_pct=%.3f pings=%llu idle_s=%.1f cpu_s=%.3f hb_rounds=%.2f cpu_per_round_s=%.4f "
               "requested=%d errors=%llu\n",
               o_conns, n_open, setup_s, (double)n_open / setup_s, rss0, rss1, rss2, rss_peak, per_conn,
               peak_per_conn, 100.0 * (cpu1 - cpu0) / ((double)(t2 - t1) / 1e9),
               (unsigned long long)n_pings, (double)(t2 - t1) / 1e9, cpu1 - cpu0, rounds,
               rounds > 0 ? (cpu1 - cpu0) / rounds : -1.0, requested, (unsigned long long)errors);
        close_all();
    } else { /* soak */
        uint64_t end, next_sample;
        t0 = now_ns();
        end = t0 + (uint64_t)(o_duration * 1e9);
        next_sample = t0;
        while (now_ns() < end) {
            uint64_t t = now_ns();
            if (t >= next_sample) {
                printf("sample t=%.0f rss_kb=%ld msgs=%llu handshakes=%llu errors=%llu open=%d\n",
                       (double)(t - t0) / 1e9, o_pid ? rss_kb(o_pid) : -1L,
                       (unsigned long long)msgs, (unsigned long long)handshakes,
                       (unsigned long long)errors, n_open);
                fflush(stdout);
                next_sample += (uint64_t)(o_sample * 1e9);
            }
            run_loop(next_sample < end ? next_sample : end, NULL);
        }
        sending = 0;
        run_loop(now_ns() + 10000000000ull, all_drained);
        close_all();
        printf("result mode=soak conns=%d seconds=%.0f msgs=%llu handshakes=%llu errors=%llu rss_end_kb=%ld\n",
               o_conns, o_duration, (unsigned long long)msgs, (unsigned long long)handshakes,
               (unsigned long long)errors, o_pid ? rss_kb(o_pid) : -1L);
    }
    fflush(stdout);
    return errors ? 1 : 0;
}
