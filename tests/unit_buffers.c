/* Buffer discipline of layer 3 (issues 14 and 15): receive buffers grow as
   bytes arrive, never from a declared length; big buffers are kept while a
   connection is busy and given back by rtws_conn_trim; the host's pool of
   big blocks (reuse, budget, trim); no allocation per message in steady
   state, counted through the config's allocator. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

/* ---- a counting allocator ---- */
static size_t n_alloc, n_realloc, n_free;
static void *c_alloc(size_t n, void *u) {
    (void)u;
    n_alloc++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *u) {
    (void)u;
    n_realloc++;
    return realloc(p, n);
}
static void c_free(void *p, void *u) {
    (void)u;
    if (p) n_free++;
    free(p);
}
static size_t n_calls(void) { return n_alloc + n_realloc + n_free; }

static int seed_random(void *buf, size_t len, void *user) {
    unsigned *s = (unsigned *)user, i;
    for (i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        ((uint8_t *)buf)[i] = (uint8_t)(*s >> 16);
    }
    return 0;
}

static int n_msgs;
static size_t last_len;
static void echo(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type != RTWS_EV_MESSAGE) return;
    n_msgs++;
    last_len = ev->message.len;
    rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

static unsigned seed = 7;
static rtws_config server_cfg(void) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = RTWS_SERVER;
    cfg.on_event = echo;
    cfg.random = seed_random;
    cfg.random_user = &seed;
    cfg.allocator.alloc = c_alloc;
    cfg.allocator.realloc = c_realloc;
    cfg.allocator.free = c_free;
    return cfg;
}

/* drops all output of c, as a socket that takes everything would */
static size_t sink(rtws_conn *c) {
    rtws_iov v[8];
    size_t total = 0;
    int i, n;
    while ((n = rtws_conn_out_iov(c, v, 8)) > 0) {
        size_t k = 0;
        for (i = 0; i < n; i++) k += v[i].len;
        rtws_conn_out_done(c, k);
        total += k;
    }
    return total;
}

static int open_server(rtws_conn *c, const rtws_config *cfg) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    rtws_conn_init(c, cfg);
    rtws_conn_recv(c, req, sizeof req - 1, 1, NULL);
    sink(c);
    return rtws_conn_get_state(c) == RTWS_STATE_OPEN;
}

/* a masked binary frame of len bytes (pattern i * 7) */
static uint8_t *mkframe(size_t len, size_t *flen) {
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t *f = (uint8_t *)malloc(len + RTWS_FRAME_HEADER_MAX);
    size_t h = rtws_frame_header_encode(f, 1, RTWS_OP_BINARY, len, key), i;
    for (i = 0; i < len; i++) f[h + i] = (uint8_t)(i * 7);
    rtws_frame_mask(f + h, len, key, 0);
    *flen = h + len;
    return f;
}

/* feeds f the way the host does: reads of at most 64 KiB into recv_buf */
static void feed_reads(rtws_conn *c, const uint8_t *f, size_t n) {
    size_t off = 0;
    while (off < n) {
        size_t cap, k;
        uint8_t *b = rtws_conn_recv_buf(c, 0, &cap);
        if (!b || !cap) return;
        k = RTWS__MIN(RTWS__MIN(cap, n - off), (size_t)65536);
        memcpy(b, f + off, k);
        off += k;
        rtws_conn_recv_commit(c, k, 1);
    }
}

/* Issue 15 item 4: 16 MiB announced, one byte sent. */
static void test_declared_length(void) {
    rtws_config cfg = server_cfg();
    rtws_conn c;
    rtws_conn_stats st;
    uint8_t h[RTWS_FRAME_HEADER_MAX + 1];
    static const uint8_t key[4] = {9, 9, 9, 9};
    size_t n = rtws_frame_header_encode(h, 1, RTWS_OP_BINARY, (uint64_t)16 << 20, key), i;
    h[n++] = 0x55;
    /* through rtws_conn_recv */
    CHECK(open_server(&c, &cfg));
    CHECK_EQ(rtws_conn_recv(&c, h, n, 2, NULL), RTWS_EAGAIN);
    rtws_conn_get_stats(&c, &st);
    CHECK(st.buffer_cap < 70000); /* was 16 MiB + 14 + 64 KiB */
    CHECK_EQ(st.buffered, 1);
    /* through the host's recv_buf/commit: offers stay small too */
    for (i = 0; i < 10; i++) {
        size_t cap;
        uint8_t *b = rtws_conn_recv_buf(&c, 0, &cap);
        CHECK(b != NULL && cap > 0 && cap < 200000);
        b[0] = 0x55;
        rtws_conn_recv_commit(&c, 1, 3);
    }
    rtws_conn_get_stats(&c, &st);
    CHECK(st.buffer_cap < 200000);
    CHECK_EQ(st.buffered, 11);
    rtws_conn_free(&c);
    /* and the whole 16 MiB still arrives, growing as it comes: one message */
    {
        size_t flen, peak = 0, off = 0;
        uint8_t *f = mkframe((size_t)16 << 20, &flen);
        CHECK(open_server(&c, &cfg));
        n_msgs = 0;
        while (off < flen) {
            size_t cap, k;
            uint8_t *b = rtws_conn_recv_buf(&c, 0, &cap);
            if (!b) break;
            k = RTWS__MIN(RTWS__MIN(cap, flen - off), (size_t)65536);
            memcpy(b, f + off, k);
            off += k;
            rtws_conn_recv_commit(&c, k, 4);
            rtws_conn_get_stats(&c, &st);
            /* geometric: never more than about twice what has arrived */
            if (off < flen && st.buffer_cap > 2 * off + 200000 && !peak++) fprintf(stderr, "off %zu cap %zu\n", off, st.buffer_cap);
            sink(&c);
        }
        CHECK_EQ(peak, 0);
        CHECK_EQ(n_msgs, 1);
        CHECK_EQ(last_len, (size_t)16 << 20);
        free(f);
        rtws_conn_free(&c);
    }
}

/* Zero allocator calls per message once warm: rbuf, the spare output chunk
   and (for fragments) the reassembly buffer are kept between messages. */
static void steady_state(size_t len, int fragmented, int via_reads) {
    rtws_config cfg = server_cfg();
    rtws_conn c;
    rtws_conn_stats st;
    size_t flen, before, i;
    uint8_t *f = mkframe(len, &flen);
    if (fragmented) { /* the same payload as two frames: BINARY without FIN, then CONT */
        size_t h = flen - len, half = len / 2, h1, h2;
        static const uint8_t key[4] = {5, 6, 7, 8};
        uint8_t *g = (uint8_t *)malloc(len + 2 * RTWS_FRAME_HEADER_MAX), *p = f + h;
        rtws_frame_mask(p, len, (const uint8_t *)"\1\2\3\4", 0); /* back to plain */
        h1 = rtws_frame_header_encode(g, 0, RTWS_OP_BINARY, half, key);
        memcpy(g + h1, p, half);
        rtws_frame_mask(g + h1, half, key, 0);
        h2 = rtws_frame_header_encode(g + h1 + half, 1, RTWS_OP_CONT, len - half, key);
        memcpy(g + h1 + half + h2, p + half, len - half);
        rtws_frame_mask(g + h1 + half + h2, len - half, key, 0);
        free(f);
        f = g;
        flen = h1 + h2 + len;
    }
    CHECK(open_server(&c, &cfg));
    n_msgs = 0;
    for (i = 0; i < 3; i++) { /* warm up */
        if (via_reads) feed_reads(&c, f, flen);
        else rtws_conn_recv(&c, f, flen, 5, NULL);
        sink(&c);
    }
    before = n_calls();
    for (i = 0; i < 20; i++) {
        if (via_reads) feed_reads(&c, f, flen);
        else rtws_conn_recv(&c, f, flen, 5, NULL);
        CHECK(sink(&c) >= len);
    }
    if (n_calls() != before)
        fprintf(stderr, "len %zu fragmented %d reads %d: %zu allocator calls in 20 echoes\n", len,
                fragmented, via_reads, n_calls() - before);
    CHECK_EQ(n_calls() - before, 0);
    CHECK_EQ(n_msgs, 23);
    CHECK_EQ(last_len, len);
    rtws_conn_get_stats(&c, &st);
    CHECK(st.buffer_cap >= len); /* kept while busy */
    /* the idle trim gives everything back */
    before = n_free;
    rtws_conn_trim(&c);
    rtws_conn_get_stats(&c, &st);
    CHECK(n_free > before);
    CHECK(st.buffer_cap == 0);
    rtws_conn_free(&c);
    free(f);
}

static void test_steady_state(void) {
    steady_state(64 << 10, 0, 0);
    steady_state(64 << 10, 0, 1);
    steady_state(1 << 20, 0, 0);
    steady_state(1 << 20, 0, 1);
    steady_state(1 << 20, 1, 1);
    steady_state(100, 0, 1);
}

/* ---- the pool ---- */
static void test_pool(void) {
    rtws__pool p;
    rtws_allocator a;
    void *b1, *b2, *b3, *t;
    size_t cap = 0, before;
    memset(&p, 0, sizeof p);
    memset(&a, 0, sizeof a);
    a.alloc = c_alloc;
    a.realloc = c_realloc;
    a.free = c_free;
    p.alloc = a;
    p.budget = 380000;
    b1 = c_alloc(100000, NULL);
    b2 = c_alloc(280000, NULL);
    b3 = c_alloc(150000, NULL);
    /* reuse: the same block comes back, the smallest that fits */
    before = n_free;
    rtws__pool_give(&p, &a, b1, 100000);
    rtws__pool_give(&p, &a, b2, 280000);
    CHECK_EQ(n_free, before); /* both kept: 380000 <= budget */
    CHECK_EQ(p.bytes, 380000);
    t = rtws__pool_take(&p, 90000, &cap);
    CHECK(t == b1 && cap == 100000);
    CHECK(rtws__pool_take(&p, 1000, &cap) == NULL);    /* small: not from the pool */
    CHECK(rtws__pool_take(&p, 300000, &cap) == NULL);  /* nothing that big */
    CHECK(rtws__pool_take(&p, 65536, &cap) == NULL);   /* 280000 is over 4x: kept for bigger */
    rtws__pool_give(&p, &a, t, cap);
    /* budget: a block that does not fit is freed at once */
    before = n_free;
    rtws__pool_give(&p, &a, b3, 150000);
    CHECK_EQ(n_free, before + 1);
    CHECK_EQ(p.bytes, 380000);
    CHECK_EQ(p.nblk, 2);
    CHECK_EQ(p.released, 150000); /* big bytes given to the allocator are counted */
    /* small blocks are never kept */
    before = n_free;
    rtws__pool_give(&p, &a, c_alloc(1000, NULL), 1000);
    CHECK_EQ(n_free, before + 1);
    CHECK_EQ(p.released, 150000); /* (small ones are not) */
    /* trim: everything back to the allocator */
    before = n_free;
    rtws__pool_trim(&p);
    CHECK_EQ(n_free, before + 2);
    CHECK(p.bytes == 0 && p.nblk == 0 && p.head == NULL);
    CHECK_EQ(p.released, 150000 + 380000);
    /* budget 0 (the host's buffer_pool_off): nothing kept, what goes back counted */
    before = n_free;
    p.budget = 0;
    rtws__pool_give(&p, &a, c_alloc(100000, NULL), 100000);
    CHECK_EQ(n_free, before + 1);
    rtws__pool_give(NULL, &a, c_alloc(100000, NULL), 100000);
    CHECK_EQ(n_free, before + 2);
}

/* Several messages in flight (depth 4), on two connections sharing a pool:
   without the pool three of every four output chunks go back to the
   allocator and come again; with it nothing is allocated per message. The
   trim of both connections moves their buffers to the pool, and the pool's
   trim returns them. */
static void depth_run(size_t len, int with_pool, size_t *calls) {
    rtws_config cfg = server_cfg();
    rtws_conn c[2];
    rtws__pool p;
    rtws__conn_io io;
    size_t flen, i, k, before = 0;
    uint8_t *f = mkframe(len, &flen);
    memset(&p, 0, sizeof p);
    p.alloc = cfg.allocator;
    p.budget = (size_t)64 << 20;
    io.pool = with_pool ? &p : NULL;
    io.write = NULL;
    for (k = 0; k < 2; k++) {
        CHECK(open_server(&c[k], &cfg));
        c[k].priv_.io_ = &io;
    }
    n_msgs = 0;
    for (i = 0; i < 25; i++) {
        if (i == 5) before = n_calls();
        for (k = 0; k < 2; k++) {
            int d;
            for (d = 0; d < 4; d++) feed_reads(&c[k], f, flen); /* four echoes queued */
            sink(&c[k]);
        }
    }
    *calls = n_calls() - before;
    CHECK_EQ(n_msgs, 200);
    if (with_pool) {
        size_t held = p.nblk;
        for (k = 0; k < 2; k++) rtws_conn_trim(&c[k]);
        CHECK(p.nblk > held); /* the idle trim gave the connections' buffers to the pool */
        before = n_free;
        k = p.nblk;
        rtws__pool_trim(&p);
        CHECK_EQ(n_free - before, k);
    }
    for (k = 0; k < 2; k++) rtws_conn_free(&c[k]);
    rtws__pool_trim(&p);
    free(f);
}

static void test_pool_depth(void) {
    size_t without, with;
    depth_run(64 << 10, 0, &without);
    depth_run(64 << 10, 1, &with);
    CHECK(without > 0); /* the churn the pool removes */
    CHECK_EQ(with, 0);
    depth_run(1 << 20, 1, &with);
    CHECK_EQ(with, 0);
}

/* ---- direct writes: the host's write takes what the socket would ---- */
static uint8_t wire[(1 << 20) + 4096];
static size_t wire_len, take_max, n_writes;
static size_t fake_write(rtws_conn *c, const rtws_iov *iov, int n) {
    size_t k = 0;
    int i;
    (void)c;
    n_writes++;
    for (i = 0; i < n && k < take_max; i++) {
        size_t m = RTWS__MIN(iov[i].len, take_max - k);
        memcpy(wire + wire_len, iov[i].base, m);
        wire_len += m;
        k += m;
    }
    return k;
}
static void sink_to_wire(rtws_conn *c) {
    size_t len;
    const uint8_t *p;
    while ((p = rtws_conn_out(c, &len)) != NULL) {
        memcpy(wire + wire_len, p, len);
        wire_len += len;
        rtws_conn_out_done(c, len);
    }
}

/* The echo of a 300000-byte message, with the socket taking 0, 5 (inside the
   header), 1000 (inside the payload) or every byte at once; a ping right
   behind the message must be answered after the echo's last byte, never
   inside it. The wire must read: the echo frame, then the pong. */
static void test_direct_write(void) {
    static const size_t takes[] = {0, 5, 1000, 300000 + 10, (size_t)-1};
    rtws_config cfg = server_cfg();
    rtws__conn_io io;
    size_t t, flen, plen, len = 300000; /* 127-form header: 10 bytes */
    uint8_t *f = mkframe(len, &flen), *in = (uint8_t *)malloc(flen + 16);
    static const uint8_t key[4] = {7, 7, 7, 7};
    io.pool = NULL;
    io.write = fake_write;
    memcpy(in, f, flen);
    plen = rtws_frame_header_encode(in + flen, 1, RTWS_OP_PING, 2, key);
    in[flen + plen] = 'h' ^ 7;
    in[flen + plen + 1] = 'i' ^ 7;
    for (t = 0; t < sizeof takes / sizeof *takes; t++) {
        rtws_conn c;
        rtws_frame_header h;
        size_t i, bad = 0, before;
        CHECK(open_server(&c, &cfg));
        c.priv_.io_ = &io;
        wire_len = n_writes = 0;
        take_max = takes[t];
        n_msgs = 0;
        rtws_conn_recv(&c, in, flen + plen + 2, 9, NULL);
        CHECK_EQ(n_msgs, 1);
        CHECK_EQ(n_writes, 1);
        CHECK_EQ(wire_len, RTWS__MIN(take_max, len + 10));
        sink_to_wire(&c);
        CHECK_EQ(wire_len, 10 + len + 4); /* header, payload, pong "hi" */
        {
            /* nothing written yet: the pong may go ahead at the frame
               boundary (as for any queued data); once a byte of the frame
               is out, it waits for the frame's end */
            size_t d = take_max ? 0 : 4, pg = take_max ? 10 + len : 0;
            CHECK(rtws_frame_header_decode(wire + d, wire_len - d, &h) == RTWS_OK &&
                  h.opcode == RTWS_OP_BINARY && h.len == len && h.fin && !h.masked &&
                  h.header_len == 10);
            for (i = 0; i < len; i++)
                if (wire[d + 10 + i] != (uint8_t)(i * 7)) bad++;
            CHECK_EQ(bad, 0);
            CHECK(wire[pg] == 0x8A && wire[pg + 1] == 2 && wire[pg + 2] == 'h' && wire[pg + 3] == 'i');
        }
        /* the echo taken whole: no allocator call per message */
        if (take_max == (size_t)-1) {
            for (i = 0; i < 3; i++) {
                wire_len = 0;
                rtws_conn_recv(&c, f, flen, 9, NULL);
            }
            before = n_calls();
            for (i = 0; i < 10; i++) {
                wire_len = 0;
                rtws_conn_recv(&c, f, flen, 9, NULL);
                CHECK_EQ(wire_len, len + 10);
                CHECK_EQ(rtws_conn_out_pending(&c), 0);
            }
            CHECK_EQ(n_calls() - before, 0);
        }
        rtws_conn_free(&c);
    }
    /* small frames and client frames are never written directly */
    {
        rtws_conn c;
        CHECK(open_server(&c, &cfg));
        c.priv_.io_ = &io;
        n_writes = wire_len = 0;
        take_max = (size_t)-1;
        CHECK_EQ(rtws_conn_send_binary(&c, "small", 5), RTWS_OK);
        CHECK_EQ(n_writes, 0);
        CHECK_EQ(rtws_conn_out_pending(&c), 7);
        sink(&c);
        CHECK_EQ(rtws_conn_send_binary(&c, f, RTWS__DIRECT_MIN - 1), RTWS_OK); /* too small */
        CHECK_EQ(n_writes, 0);
        sink(&c);
        CHECK_EQ(rtws_conn_send_binary(&c, "small", 5), RTWS_OK);
        /* with output queued, a big one queues behind it */
        CHECK_EQ(rtws_conn_send_binary(&c, f, len), RTWS_OK);
        CHECK_EQ(n_writes, 0);
        rtws_conn_free(&c);
    }
    free(f);
    free(in);
}

/* The read offer: a read that fills it doubles the next one, up to 1 MiB
   (a socket with several large frames queued is emptied in one call); reads
   that take under a quarter of it halve it; the idle trim starts it small
   again. Input through rtws_conn_recv (a copy, not a read) never grows it. */
static void test_read_offer(void) {
    rtws_config cfg = server_cfg();
    rtws_conn c;
    size_t flen, cap = 0, maxcap = 0, i, off = 0, total;
    uint8_t *f = mkframe(256 * 1024, &flen), *s, *b;
    int reads = 0;
    total = 16 * flen; /* a socket holding 16 frames of 256 KiB */
    s = (uint8_t *)malloc(total);
    for (i = 0; i < 16; i++) memcpy(s + i * flen, f, flen);
    CHECK(open_server(&c, &cfg));
    n_msgs = 0;
    while (off < total && reads < 1000) { /* each read takes all it is offered */
        size_t k;
        b = rtws_conn_recv_buf(&c, 0, &cap);
        if (!b || !cap) break;
        if (cap > maxcap) maxcap = cap;
        k = RTWS__MIN(cap, total - off);
        memcpy(b, s + off, k);
        off += k;
        rtws_conn_recv_commit(&c, k, 2);
        sink(&c);
        reads++;
    }
    CHECK_EQ(n_msgs, 16);
    CHECK(maxcap >= (size_t)1 << 20);                   /* grew to whole frames at once */
    CHECK(maxcap <= ((size_t)2 << 20) + flen + 65536);  /* and no further */
    CHECK(reads < 40);                                  /* 4 MiB in far fewer than 64 KiB reads */
    if (reads >= 40 || maxcap < ((size_t)1 << 20)) fprintf(stderr, "read offer: %d reads, largest %zu\n", reads, maxcap);
    /* quiet: the trim frees the buffer and the next offer starts small */
    rtws_conn_trim(&c);
    b = rtws_conn_recv_buf(&c, 0, &cap);
    CHECK(b != NULL);
    CHECK(cap >= 1024 && cap < 65536);
    rtws_conn_recv_commit(&c, 0, 3);
    rtws_conn_free(&c);
    /* copies through rtws_conn_recv, each filling what it was lent: the offer
       stays at its start, 1 KiB */
    CHECK(open_server(&c, &cfg));
    n_msgs = 0;
    CHECK_EQ(rtws_conn_recv(&c, s, total, 4, NULL), RTWS_OK); /* 4 MiB in copies that fill */
    CHECK_EQ(n_msgs, 16);
    CHECK_EQ(c.priv_.rhint, 1024u);
    rtws_conn_free(&c);
    /* reads far under the offer shrink it */
    CHECK(open_server(&c, &cfg));
    c.priv_.rhint = 1u << 20;
    for (i = 0; i < 8; i++) {
        b = rtws_conn_recv_buf(&c, 0, &cap);
        CHECK(b != NULL);
        memcpy(b, s + 100 * i, 100); /* 800 bytes of a frame: no message yet */
        rtws_conn_recv_commit(&c, 100, 5);
    }
    CHECK(c.priv_.rhint <= 8192);
    rtws_conn_free(&c);
    free(s);
    free(f);
}

/* The host's reads into its big scratch buffer (rtws__recv_lent with own):
   c's own big buffer, holding nothing, is set aside for the call; whole
   frames are handled in the lent bytes, an incomplete one's tail goes to the
   own buffer (the same block, no allocation) and completes from reads into
   it; an own buffer holding bytes takes the lent ones as a copy. */
static int n_bad;
static void check_msg(rtws_conn *c, const rtws_event *ev, void *user) {
    size_t i;
    (void)c;
    (void)user;
    if (ev->type != RTWS_EV_MESSAGE) return;
    n_msgs++;
    last_len = ev->message.len;
    for (i = 0; i < ev->message.len; i++)
        if (ev->message.data[i] != (uint8_t)(i * 7)) {
            n_bad++;
            break;
        }
}
static void test_lent_own(void) {
    rtws_config cfg = server_cfg();
    rtws_conn c;
    size_t flen, i, before, cap, cut;
    uint8_t *f = mkframe(100000, &flen), *lent, *own, *b;
    int round;
    cfg.on_event = check_msg; /* (no echo: the output side is tested above) */
    lent = (uint8_t *)malloc(3 * flen);
    CHECK(open_server(&c, &cfg));
    n_msgs = n_bad = 0;
    feed_reads(&c, f, flen); /* c now has a big buffer of its own, empty */
    sink(&c);
    own = c.priv_.rbuf;
    CHECK(own != NULL && c.priv_.rcap >= flen && c.priv_.rstart == c.priv_.rend);
    cut = 2 * flen + flen / 2; /* two frames and half of the third */
    for (round = 0; round < 2; round++) {
        before = n_calls();
        for (i = 0; i < 3; i++) memcpy(lent + i * flen, f, flen); /* (unmasked in place) */
        rtws__recv_lent(&c, lent, cut, 3, 1);
        sink(&c);
        CHECK_EQ(n_msgs, 3 + 3 * round);
        CHECK(c.priv_.rbuf == own && !c.priv_.rborrow); /* the tail is in the own block */
        CHECK(c.priv_.have_h && c.priv_.rend - c.priv_.rstart > 0 &&
              c.priv_.rend - c.priv_.rstart <= flen / 2);
        /* the rest arrives by a read into the own buffer */
        b = rtws_conn_recv_buf(&c, 0, &cap);
        CHECK(b != NULL && cap >= flen / 2);
        if (b && cap >= flen / 2) {
            memcpy(b, lent + cut, 3 * flen - cut);
            rtws_conn_recv_commit(&c, 3 * flen - cut, 4);
        }
        sink(&c);
        CHECK_EQ(n_msgs, 4 + 3 * round);
        CHECK_EQ(last_len, 100000);
        CHECK(c.priv_.rbuf == own);
        CHECK_EQ(n_calls() - before, 0); /* no allocation on the way */
    }
    /* holding bytes (the start of a frame): the lent ones are copied in after them */
    memcpy(lent, f, flen);
    rtws_conn_recv(&c, lent, 100, 5, NULL);
    CHECK_EQ(rtws__recv_lent(&c, lent + 100, flen - 100, 5, 1), RTWS_OK);
    sink(&c);
    CHECK_EQ(n_msgs, 8);
    CHECK(c.priv_.rbuf == own);
    /* the public rtws_conn_recv_inplace never sets an own buffer aside */
    memcpy(lent, f, flen);
    CHECK_EQ(rtws_conn_recv_inplace(&c, lent, flen, 6), RTWS_OK);
    sink(&c);
    CHECK_EQ(n_msgs, 9);
    CHECK(c.priv_.rbuf == own && c.priv_.rstart == c.priv_.rend);
    CHECK_EQ(n_bad, 0);
    rtws_conn_free(&c);
    free(lent);
    free(f);
}

int main(void) {
    test_declared_length();
    test_steady_state();
    test_pool();
    test_pool_depth();
    test_direct_write();
    test_read_offer();
    test_lent_own();
    return T_END();
}
