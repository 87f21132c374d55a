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
     --json            echo/latency: JSON text payloads (see below) instead
                       of random printable ASCII; no compression offered
     --deflate         echo/latency: offer permessage-deflate and compress
                       every message (implies --json; text only, so not with
                       --binary)

   --deflate: the handshake offers "permessage-deflate;
   client_no_context_takeover; client_max_window_bits" (we compress each
   message on its own, so every frame can be built once before the run; any
   window the server likes for its own messages). The server must accept it
   (a 101 without the extension, with another extension, a
   client_max_window_bits below 15 or a malformed answer is an error); its
   answer is printed. Each of the payload variants is compressed once at
   startup with rtws's own compressor (rtws.h layer 1, RTWS_Z_DEFAULT = level
   6, window 15, sync flush, the 00 00 ff ff tail removed) into a masked frame
   with RSV1 set, so the generator spends no CPU compressing during the run.
   Every echo is inflated with rtws's inflater (one per connection; reset
   before each message, keeping the window when the server did not answer
   server_no_context_takeover) and then checked like any other; an echo the
   server sent uncompressed (RSV1 clear) is checked as it is. Reported: the
   wire ratio each way (payload bytes on the wire / payload bytes, over all
   messages sent or received) and how many echoes came compressed.
   --json payloads: a JSON array of realtime-protocol envelopes (message,
   presence, ack, history: channel, id, serial, timestamp, user, a few words
   of text), made by a xorshift generator with a fixed seed per variant (the
   same bytes in every run, for every server), envelopes added while they
   fit and the rest padded with spaces before the closing bracket, so each
   payload is valid JSON of exactly --size bytes (from 2 bytes up).

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

/* rtws's DEFLATE codec (layer 1) for --deflate */
#define RTWS_IMPLEMENTATION
#include "../rtws.h"

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
static int o_json, o_deflate;

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
    size_t frame_len, wire_len; /* wire_len: the payload in the frame (compressed) */
    const uint8_t *plain; /* the payload the echo must carry */
    size_t len;
    uint8_t op;
} variant;
static variant *vars;
static int nvars;
static uint8_t *plain_base;

/* --json payloads: envelopes from a xorshift generator of our own */
static const char *const js_users[8] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"};
static const char *const js_words[16] = {"hello", "the", "meeting", "starts", "at", "noon", "see", "you",
                                         "there", "ok", "thanks", "great", "deploy", "is", "done", "lunch?"};
static uint32_t js_rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}
static size_t js_envelope(char *p, size_t cap, uint64_t *s, unsigned i) {
    unsigned kind = js_rnd(s) % 10, ch = js_rnd(s) % 12, u = js_rnd(s) % 8;
    unsigned long long ts = 1733400000000ull + i * 173ull;
    int n;
    if (kind < 6) {
        char text[160];
        size_t t = 0;
        unsigned w, nw = 2 + js_rnd(s) % 10;
        for (w = 0; w < nw; w++)
            t += (size_t)snprintf(text + t, sizeof text - t, "%s%s", w ? " " : "", js_words[js_rnd(s) % 16]);
        n = snprintf(p, cap,
                     "{\"type\":\"message\",\"channel\":\"room:%u\",\"id\":\"%08x-%04x\",\"serial\":%u,"
                     "\"ts\":%llu,\"data\":{\"user\":\"%s\",\"text\":\"%s\"}}",
                     ch, js_rnd(s), js_rnd(s) & 0xFFFF, 1000 + i, ts, js_users[u], text);
    } else if (kind < 8) {
        n = snprintf(p, cap,
                     "{\"type\":\"presence\",\"channel\":\"room:%u\",\"action\":\"%s\",\"member\":"
                     "{\"id\":\"%s\",\"meta\":{\"status\":\"%s\",\"device\":\"web\"}},\"ts\":%llu}",
                     ch, js_rnd(s) & 1 ? "join" : "leave", js_users[u], js_rnd(s) & 1 ? "online" : "away", ts);
    } else if (kind < 9) {
        n = snprintf(p, cap, "{\"type\":\"ack\",\"ref\":%u,\"ok\":true}", i);
    } else {
        n = snprintf(p, cap,
                     "{\"type\":\"history\",\"channel\":\"room:%u\",\"since\":%u,\"limit\":50,"
                     "\"cursor\":\"c%08x\"}",
                     ch, 900 + i, js_rnd(s));
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
/* len bytes of JSON: "[" envelopes separated by "," "]", padded with
   spaces before the "]"; an envelope that does not fit is skipped for
   another (8 tries in a row), so small sizes are still mostly envelopes */
static void json_payload(uint8_t *p, size_t len, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull | 1;
    size_t off = 0;
    unsigned i = 0, misses = 0;
    char env[512];
    if (len < 2) {
        memset(p, ' ', len);
        return;
    }
    p[off++] = '[';
    while (misses < 8) {
        size_t n = js_envelope(env, sizeof env, &s, i), need = n + (i ? 1 : 0);
        if (!n || off + need + 1 > len) {
            misses++;
            continue;
        }
        misses = 0;
        if (i) p[off++] = ',';
        memcpy(p + off, env, n);
        off += n;
        i++;
    }
    memset(p + off, ' ', len - 1 - off);
    p[len - 1] = ']';
}

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
    rtws_deflate zd;
    uint8_t *zbuf = NULL;
    size_t zcap = 0;
    base_len = maxlen + (size_t)nvars * 7 + 16;
    if (o_json) base_len = maxlen * (size_t)nvars + 1; /* a payload of its own per variant */
    plain_base = (uint8_t *)malloc(base_len);
    vars = (variant *)calloc((size_t)nvars, sizeof *vars);
    if (!plain_base || !vars) exit(1);
    if (!o_json)
        for (i = 0; i < base_len; i++) plain_base[i] = (uint8_t)('!' + rng() % 94); /* ASCII: valid text */
    if (o_deflate) {
        rtws_z_config zc;
        memset(&zc, 0, sizeof zc);
        zc.level = RTWS_Z_DEFAULT;
        zc.window_bits = 15;
        zcap = maxlen + maxlen / 8 + 1024;
        zbuf = (uint8_t *)malloc(zcap);
        if (!zbuf || rtws_deflate_init(&zd, &zc, NULL, 0) != RTWS_Z_OK) exit(1);
    }
    for (v = 0; v < nvars; v++) {
        variant *x = &vars[v];
        size_t len = o_mode == MODE_SOAK ? soak_sizes[v] : o_mode == MODE_IDLE ? 16 : o_size, h = 0, j;
        size_t plen = len; /* bytes in the frame */
        const uint8_t *pl;
        uint8_t key[4];
        uint64_t r = rng();
        memcpy(key, &r, 4);
        x->len = len;
        x->plain = plain_base + (size_t)v * 7;
        if (o_json) {
            x->plain = plain_base + (size_t)v * maxlen;
            json_payload(plain_base + (size_t)v * maxlen, len, (uint64_t)v + 1);
        }
        pl = x->plain;
        x->op = o_mode == MODE_SOAK ? (uint8_t)(v & 1 ? 2 : 1) : (uint8_t)(o_binary ? 2 : 1);
        if (o_deflate) { /* each message on its own: client_no_context_takeover */
            size_t used = 0;
            rtws_deflate_reset(&zd, 0);
            if (rtws_deflate_compress(&zd, x->plain, len, &used, zbuf, zcap, &plen, RTWS_Z_SYNC_FLUSH) !=
                    RTWS_Z_OK ||
                used != len || plen < 4) {
                fprintf(stderr, "loadgen: compressing variant %d failed\n", v);
                exit(1);
            }
            plen -= 4; /* the 00 00 ff ff the receiver puts back */
            pl = zbuf;
        }
        x->wire_len = plen;
        x->frame = (uint8_t *)malloc(plen + 14);
        if (!x->frame) exit(1);
        x->frame[h++] = (uint8_t)(0x80 | (o_deflate ? 0x40 : 0) | x->op);
        if (plen < 126) {
            x->frame[h++] = (uint8_t)(0x80 | plen);
        } else if (plen <= 0xFFFF) {
            x->frame[h++] = 0x80 | 126;
            x->frame[h++] = (uint8_t)(plen >> 8);
            x->frame[h++] = (uint8_t)plen;
        } else {
            x->frame[h++] = 0x80 | 127;
            for (j = 0; j < 8; j++) x->frame[h++] = (uint8_t)((uint64_t)plen >> (56 - 8 * j));
        }
        memcpy(x->frame + h, key, 4);
        h += 4;
        for (j = 0; j < plen; j++) x->frame[h + j] = (uint8_t)(pl[j] ^ key[j & 3]);
        x->frame_len = h + plen;
    }
    if (o_deflate) {
        rtws_deflate_free(&zd);
        free(zbuf);
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
    rtws_inflate *inf; /* --deflate: the echoes' inflater (made once, kept across reconnects) */
    uint8_t *zout;     /* ... and where an echo inflates to */
    size_t zcap;
    int srv_takeover;  /* the server keeps its window (no server_no_context_takeover) */
    uint8_t mz;        /* the fragmented message being assembled is compressed */
} conn;

/* fanout: where a connection is in the protocol */
enum { FO_WELCOME, FO_SUBSCRIBING, FO_SUBSCRIBED, FO_PUBLISHER };

static conn *conns;
static int n_conns; /* o_conns, and the publisher in fanout mode */
static int ep;
static int n_open, n_pending, n_started;
static uint64_t msgs, bytes, errors, handshakes, reconnects, n_pings;
/* --deflate: payload bytes on the wire and inflated, each way; echoes that came compressed */
static uint64_t tx_wire, tx_plain, rx_wire, rx_plain, rx_z, rx_n;
static char z_agreed[160]; /* the first Sec-WebSocket-Extensions answer */
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
    tx_wire += vars[v].wire_len;
    tx_plain += vars[v].len;
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

/* A whole data message from the server: inflated first when it came
   compressed (RSV1 on its first frame), then checked by on_message. */
static void on_data(conn *c, uint8_t op, const uint8_t *p, size_t len, int z) {
    static const uint8_t tail[4] = {0, 0, 0xFF, 0xFF};
    size_t used, olen = 0, olen2 = 0;
    rtws_z_err e;
    if (!o_deflate) {
        on_message(c, op, p, len);
        return;
    }
    rx_wire += len;
    rx_n++;
    if (!z) {
        rx_plain += len;
        on_message(c, op, p, len);
        return;
    }
    rx_z++;
    rtws_inflate_reset(c->inf, c->srv_takeover);
    e = rtws_inflate_feed(c->inf, p, len, &used, c->zout, c->zcap, &olen);
    if (e == RTWS_Z_OK) /* (RTWS_Z_END: the server ended with a final block) */
        e = rtws_inflate_feed(c->inf, tail, 4, &used, c->zout + olen, c->zcap - olen, &olen2);
    olen += olen2;
    if (e != RTWS_Z_OK && e != RTWS_Z_END)
        error_at(c, "echo of %zu bytes does not inflate: %s", len, rtws_z_err_str(e));
    rx_plain += olen;
    on_message(c, op, c->zout, olen);
}

/* Parses the server's frames in rbuf; returns 0 when the connection ended. */
static int parse_frames(conn *c) {
    size_t off = 0;
    while (c->rlen - off >= 2) {
        uint8_t *p = c->rbuf + off;
        size_t avail = c->rlen - off, hl = 2;
        uint64_t len = p[1] & 127u;
        int fin = p[0] >> 7, op = p[0] & 15, rsv1 = (p[0] & 0x40) != 0;
        if (p[1] & 0x80) {
            error_at(c, "masked frame from the server");
            conn_close_fd(c);
            return 0;
        }
        /* RSV1: a compressed message, on its first frame only (RFC 7692 §6) */
        if ((p[0] & 0x30) || (rsv1 && (!o_deflate || (op != 1 && op != 2)))) {
            error_at(c, "reserved bits set (opcode %d)", op);
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
                    on_data(c, (uint8_t)op, pl, n, rsv1);
                    break;
                }
                if (op != 0) c->mop = (uint8_t)op, c->mlen = 0, c->mz = (uint8_t)rsv1;
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
                    on_data(c, mop, c->mbuf, c->mlen, c->mz);
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
    v = wsu_header(h, n, "sec-websocket-extensions:", &vl);
    if (v && !o_deflate) {
        error_at(c, "extension not offered: %.*s", (int)(vl < 80 ? vl : 80), v);
        conn_close_fd(c);
        return 0;
    }
    if (o_deflate) { /* exactly permessage-deflate, well-formed, our window 15 */
        rtws_pmd_offer pmd[2];
        size_t count = 0;
        if (!v || memchr(v, ',', vl) ||
            rtws_pmd_parse(v, vl, 1, pmd, 2, &count, NULL) != RTWS_OK || count != 1 ||
            pmd[0].status != RTWS_PMD_OK ||
            (pmd[0].client_max_window_bits && pmd[0].client_max_window_bits != 15)) {
            if (v) error_at(c, "permessage-deflate answer we cannot take: %.*s", (int)(vl < 100 ? vl : 100), v);
            else error_at(c, "the server declined permessage-deflate (no Sec-WebSocket-Extensions)");
            conn_close_fd(c);
            return 0;
        }
        if (!z_agreed[0]) snprintf(z_agreed, sizeof z_agreed, "%.*s", (int)(vl < 150 ? vl : 150), v);
        c->srv_takeover = !pmd[0].server_no_context_takeover;
        if (!c->inf) {
            size_t most = 0;
            int k;
            for (k = 0; k < nvars; k++)
                if (vars[k].len > most) most = vars[k].len;
            c->inf = (rtws_inflate *)malloc(sizeof *c->inf);
            c->zcap = most + 64;
            c->zout = (uint8_t *)malloc(c->zcap);
            if (!c->inf || !c->zout || rtws_inflate_init(c->inf, NULL, NULL, 0) != RTWS_Z_OK) exit(1);
        }
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
                       "Sec-WebSocket-Version: 13\r\n%s\r\n",
                       o_host, port, key,
                       o_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                   "client_no_context_takeover; client_max_window_bits\r\n"
                                 : "");
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
                    "  [--concurrency C] [--reconnect M] [--sample S] [--src-ips N] [--idle S]\n"
                    "  [--json] [--deflate]\n");
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
        if (!strcmp(a, "--json") || !strcmp(a, "--deflate")) {
            o_json = 1;
            if (a[2] == 'd') o_deflate = 1;
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
    if (o_json && (o_binary || (o_mode != MODE_ECHO && o_mode != MODE_LATENCY))) {
        fprintf(stderr, "loadgen: --json and --deflate are for text in echo and latency modes\n");
        return 2;
    }
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
        char zres[160];
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
        zres[0] = 0;
        if (o_deflate) {
            double txr = tx_plain ? (double)tx_wire / (double)tx_plain : 0,
                   rxr = rx_plain ? (double)rx_wire / (double)rx_plain : 0,
                   zpct = rx_n ? 100.0 * (double)rx_z / (double)rx_n : 0;
            printf("%s: permessage-deflate agreed: %s\n", o_mode == MODE_ECHO ? "echo" : "latency",
                   z_agreed);
            printf("%s: on the wire: client->server %.3f of the payload (rtws level %d, each message "
                   "alone), server->client %.3f (%.1f%% of the echoes compressed)\n",
                   o_mode == MODE_ECHO ? "echo" : "latency", txr, RTWS_Z_DEFAULT, rxr, zpct);
            snprintf(zres, sizeof zres, " json=1 deflate=1 tx_ratio=%.4f rx_ratio=%.4f rx_compressed_pct=%.1f",
                     txr, rxr, zpct);
        } else if (o_json) {
            snprintf(zres, sizeof zres, " json=1 deflate=0");
        }
        if (o_mode == MODE_ECHO) {
            printf("echo: %d conns x pipeline %d, %zu-byte %s: %.0f msg/s, %.2f MB/s (echoed payload), %llu errors\n",
                   o_conns, o_pipeline, o_size, o_binary ? "binary" : "text",
                   (double)(msgs - m0) / secs, (double)(bytes - b0) / secs / 1e6,
                   (unsigned long long)errors);
            printf("echo: server CPU %.1f%% of a core (%.2f us per message), load generator CPU %.1f%%\n",
                   spct, us_per_msg, lpct);
            printf("result mode=echo conns=%d pipeline=%d size=%zu msgs_per_s=%.0f mb_per_s=%.3f msgs=%llu "
                   "server_cpu_pct=%.1f server_us_per_msg=%.3f loadgen_cpu_pct=%.1f%s errors=%llu\n",
                   o_conns, o_pipeline, o_size, (double)(msgs - m0) / secs,
                   (double)(bytes - b0) / secs / 1e6, (unsigned long long)(msgs - m0), spct, us_per_msg,
                   lpct, zres, (unsigned long long)errors);
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
                   "server_cpu_pct=%.1f server_us_per_msg=%.3f loadgen_cpu_pct=%.1f%s errors=%llu\n",
                   o_size, p50, p99, p999, nlat, (double)nlat / secs, spct, us_per_msg, lpct, zres,
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
