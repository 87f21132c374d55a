/* permessage-deflate on a connection (RFC 7692): the negotiation matrices of
   both roles (§5, §7.1), and compressed messages both ways (§6, §7.2):
   RSV1 rules, takeover and window combinations, thresholds and the per-
   message opt-out, bounded inflation (a bomb fails with 1009 after at most
   max_message bytes of output), corrupt streams (1007), BFINAL streams, the
   budget, and no allocation per message once warm. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

typedef struct ev_log {
    int open, close, error, msgs, pieces;
    unsigned close_code;
    rtws_err err;
    rtws_opcode op;
    unsigned char msg[1 << 20];
    size_t msg_len;
} ev_log;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    ev_log *L = (ev_log *)user;
    (void)c;
    switch (ev->type) {
    case RTWS_EV_OPEN: L->open++; break;
    case RTWS_EV_CLOSE: L->close++; L->close_code = ev->close.code; break;
    case RTWS_EV_ERROR: L->error++; L->err = ev->error.err; break;
    case RTWS_EV_MESSAGE:
        L->pieces++;
        if (ev->message.first) L->msg_len = 0;
        if (L->msg_len + ev->message.len <= sizeof L->msg)
            memcpy(L->msg + L->msg_len, ev->message.data, ev->message.len);
        L->msg_len += ev->message.len;
        L->op = ev->message.opcode;
        if (ev->message.fin) L->msgs++;
        break;
    default: break;
    }
}

static unsigned seed = 7;
static int fixed_random(void *buf, size_t len, void *user) {
    unsigned *s = (unsigned *)user;
    unsigned char *p = (unsigned char *)buf;
    size_t i;
    for (i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        p[i] = (unsigned char)(*s >> 16);
    }
    return 0;
}

/* an allocator that counts calls */
static size_t n_alloc;
static void *c_alloc(size_t n, void *u) { (void)u; n_alloc++; return malloc(n); }
static void *c_realloc(void *p, size_t n, void *u) { (void)u; n_alloc++; return realloc(p, n); }
static void c_free(void *p, void *u) { (void)u; free(p); }

static rtws_config mkcfg(rtws_role role, ev_log *L) {
    rtws_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.on_event = on_event;
    cfg.user = L;
    cfg.random = fixed_random;
    cfg.random_user = &seed;
    cfg.heartbeat_off = 1;
    cfg.allocator.alloc = c_alloc;
    cfg.allocator.realloc = c_realloc;
    cfg.allocator.free = c_free;
    /* the matrices below are about context takeover: a server keeps it when
       offered (its default, 0, answers no takeover both ways: see
       test_server_default) */
    if (role == RTWS_SERVER) cfg.deflate_takeover = 1;
    return cfg;
}

static uint8_t wire[1 << 22];

static size_t drain(rtws_conn *a, uint8_t *buf, size_t cap) {
    size_t total = 0, len;
    const uint8_t *p;
    while ((p = rtws_conn_out(a, &len)) != NULL) {
        if (total + len > cap) len = cap - total;
        memcpy(buf + total, p, len);
        rtws_conn_out_done(a, len);
        total += len;
        if (total == cap) break;
    }
    return total;
}

/* moves a's output into b; returns the bytes moved */
static size_t pump(rtws_conn *a, rtws_conn *b) {
    size_t n = drain(a, wire, sizeof wire);
    if (n) rtws_conn_recv(b, wire, n, 0, NULL);
    return n;
}

static int pair(rtws_conn *cl, const rtws_config *cc, rtws_conn *sv, const rtws_config *sc) {
    rtws_client_opts o;
    memset(&o, 0, sizeof o);
    o.host = "h";
    rtws_conn_init(cl, cc);
    rtws_conn_init(sv, sc);
    if (rtws_conn_start(cl, &o, 0) != RTWS_OK) return 0;
    pump(cl, sv);
    pump(sv, cl);
    return rtws_conn_get_state(cl) == RTWS_STATE_OPEN && rtws_conn_get_state(sv) == RTWS_STATE_OPEN;
}

/* ---- server: the answer to each offer ---- */

/* Feeds a request with Sec-WebSocket-Extensions lines ext (NULL: none) to a
   server with cfg; the response's extension value goes into ext_out ("" when
   none). Returns 1 when it opened. */
static int server_answer(rtws_config cfg, const char *ext, char *ext_out, size_t cap,
                         rtws_pmd_offer *agreed, int *have) {
    rtws_conn sv;
    char req[1024], out[1024];
    const char *h;
    size_t n;
    int open;
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             ext ? ext : "");
    rtws_conn_init(&sv, &cfg);
    rtws_conn_recv(&sv, req, strlen(req), 0, NULL);
    n = drain(&sv, (uint8_t *)out, sizeof out - 1);
    out[n] = 0;
    open = rtws_conn_get_state(&sv) == RTWS_STATE_OPEN;
    ext_out[0] = 0;
    h = strstr(out, "Sec-WebSocket-Extensions: ");
    if (h) {
        const char *e = strstr(h, "\r\n");
        size_t l = (size_t)(e - h) - 26;
        if (l >= cap) l = cap - 1;
        memcpy(ext_out, h + 26, l);
        ext_out[l] = 0;
    }
    *have = rtws_conn_get_deflate(&sv, agreed);
    rtws_conn_free(&sv);
    return open;
}

static void test_server_matrix(void) {
    ev_log L;
    rtws_config base = mkcfg(RTWS_SERVER, &L);
    static const struct {
        const char *ext;      /* the request's header line(s) */
        unsigned own, peer;   /* deflate_window_bits, deflate_peer_window_bits (0: default) */
        int own_nt, peer_nt, off;
        const char *answer;   /* "" when declined */
    } m[] = {
        {NULL, 0, 0, 0, 0, 0, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 0, 0, 0, 0, "permessage-deflate"},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 0, 0, 0, 1, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", 0, 0, 0, 0, 0,
         "permessage-deflate"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n", 0, 0, 0, 0,
         0, "permessage-deflate; client_max_window_bits=10"},
        /* a peer window limit we cannot ask for: declined; asked for when offered */
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 10, 0, 0, 0, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", 0, 10, 0, 0, 0,
         "permessage-deflate; client_max_window_bits=10"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n", 0, 10, 0, 0,
         0, "permessage-deflate; client_max_window_bits=10"},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n", 0, 0, 0, 0,
         0, "permessage-deflate; server_max_window_bits=10"},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=13\r\n", 11, 0, 0, 0,
         0, "permessage-deflate; server_max_window_bits=11"},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 12, 0, 0, 0, 0,
         "permessage-deflate; server_max_window_bits=12"},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", 0, 0, 0, 0,
         0, "permessage-deflate; server_no_context_takeover"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n", 0, 0, 0, 0,
         0, "permessage-deflate; client_no_context_takeover"},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 0, 1, 1, 0,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        /* declined offers: the next one is taken */
        {"Sec-WebSocket-Extensions: permessage-deflate; foo, permessage-deflate; "
         "server_max_window_bits=12\r\n",
         0, 0, 0, 0, 0, "permessage-deflate; server_max_window_bits=12"},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n", 0, 0, 0, 0,
         0, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits\r\n", 0, 0, 0, 0, 0,
         ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
         "server_no_context_takeover\r\n",
         0, 0, 0, 0, 0, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=08x\r\n", 0, 0, 0, 0,
         0, ""},
        {"Sec-WebSocket-Extensions: permessage-deflate;;\r\n", 0, 0, 0, 0, 0, ""},
        {"Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", 0, 0, 0, 0, 0, ""},
        {"Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; "
         "client_max_window_bits\r\n",
         0, 0, 0, 0, 0, "permessage-deflate"},
        /* over two header lines */
        {"Sec-WebSocket-Extensions: permessage-deflate; bogus=1\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"9\"\r\n",
         0, 0, 0, 0, 0, "permessage-deflate; server_max_window_bits=9"},
    };
    size_t i;
    for (i = 0; i < sizeof m / sizeof m[0]; i++) {
        rtws_config cfg = base;
        char ans[256];
        rtws_pmd_offer ag;
        int have = 0;
        cfg.deflate_window_bits = m[i].own;
        cfg.deflate_peer_window_bits = m[i].peer;
        cfg.deflate_own_no_takeover = m[i].own_nt;
        cfg.deflate_peer_no_takeover = m[i].peer_nt;
        cfg.deflate_off = m[i].off;
        CHECK(server_answer(cfg, m[i].ext, ans, sizeof ans, &ag, &have));
        CHECK(strcmp(ans, m[i].answer) == 0);
        CHECK_EQ(have, m[i].answer[0] != 0);
        if (strcmp(ans, m[i].answer) != 0) fprintf(stderr, "case %u: got '%s'\n", (unsigned)i, ans);
    }
    /* the agreed parameters as the connection reports them */
    {
        char ans[256];
        rtws_pmd_offer ag;
        int have = 0;
        rtws_config cfg = base;
        cfg.deflate_peer_window_bits = 11;
        server_answer(cfg,
                      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; "
                      "server_max_window_bits=10; server_no_context_takeover\r\n",
                      ans, sizeof ans, &ag, &have);
        CHECK(have);
        CHECK_EQ(ag.server_max_window_bits, 10);
        CHECK_EQ(ag.client_max_window_bits, 11);
        CHECK_EQ(ag.server_no_context_takeover, 1);
        CHECK_EQ(ag.client_no_context_takeover, 0);
    }
}

/* ---- client: the offer, and what it makes of each answer ---- */

/* Starts a client with cfg, answers it with a 101 carrying ext (NULL: no
   header); returns 1 when it opened. The request goes into req. */
static int client_answer(rtws_config cfg, const char *ext, char *req, size_t cap,
                         rtws_pmd_offer *agreed, int *have, ev_log *L) {
    rtws_conn cl;
    rtws_client_opts o;
    char resp[1024], acc[29];
    const char *k;
    size_t n;
    int open;
    memset(&o, 0, sizeof o);
    memset(L, 0, sizeof *L);
    o.host = "h";
    rtws_conn_init(&cl, &cfg);
    CHECK_EQ(rtws_conn_start(&cl, &o, 0), RTWS_OK);
    n = drain(&cl, (uint8_t *)req, cap - 1);
    req[n] = 0;
    k = strstr(req, "Sec-WebSocket-Key: ");
    rtws_upgrade_accept_key(k + 19, 24, acc);
    snprintf(resp, sizeof resp,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s\r\n",
             acc, ext ? ext : "");
    rtws_conn_recv(&cl, resp, strlen(resp), 0, NULL);
    open = rtws_conn_get_state(&cl) == RTWS_STATE_OPEN;
    *have = rtws_conn_get_deflate(&cl, agreed);
    rtws_conn_free(&cl);
    return open;
}

static void test_client_matrix(void) {
    ev_log L;
    rtws_config base = mkcfg(RTWS_CLIENT, &L);
    static const struct {
        const char *ext;
        unsigned peer;
        int peer_nt, own_nt, off;
        int ok;            /* opens */
        int on;            /* with the extension */
        unsigned rx, tx;   /* agreed windows: server's (ours to read), client's */
    } m[] = {
        {NULL, 0, 0, 0, 0, 1, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 0, 0, 0, 1, 1, 15, 15},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n", 0, 0, 0, 0,
         1, 1, 10, 15},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n", 0, 0, 0, 0, 1,
         1, 15, 9},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
         "client_no_context_takeover\r\n",
         0, 0, 0, 0, 1, 1, 15, 15},
        /* failures: §7.1 and the grammar */
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", 0, 0, 0, 0, 0,
         0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; foo\r\n", 0, 0, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: x-foo\r\n", 0, 0, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate, x-foo\r\n", 0, 0, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n", 0, 0, 0, 0, 0, 0,
         0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: "
         "permessage-deflate\r\n",
         0, 0, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n", 0, 0, 0, 0,
         0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=1x\r\n", 0, 0, 0, 0,
         0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate;\r\n", 0, 0, 0, 0, 0, 0, 0, 0},
        /* what we asked for must be granted */
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 10, 0, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=11\r\n", 10, 0, 0, 0,
         0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n", 10, 0, 0, 0,
         1, 1, 9, 15},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 1, 0, 0, 0, 0, 0, 0},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", 0, 1, 0, 0,
         1, 1, 15, 15},
        /* not offered: any extension in the answer fails */
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", 0, 0, 0, 1, 0, 0, 0, 0},
        {NULL, 0, 0, 0, 1, 1, 0, 0, 0},
    };
    size_t i;
    char req[2048];
    for (i = 0; i < sizeof m / sizeof m[0]; i++) {
        rtws_config cfg = base;
        rtws_pmd_offer ag;
        int have = 0, ok;
        cfg.deflate_peer_window_bits = m[i].peer;
        cfg.deflate_peer_no_takeover = m[i].peer_nt;
        cfg.deflate_own_no_takeover = m[i].own_nt;
        cfg.deflate_off = m[i].off;
        ok = client_answer(cfg, m[i].ext, req, sizeof req, &ag, &have, &L);
        CHECK_EQ(ok, m[i].ok);
        CHECK_EQ(have, m[i].on);
        if (ok != m[i].ok) fprintf(stderr, "client case %u\n", (unsigned)i);
        if (!m[i].ok) {
            CHECK_EQ(L.err, RTWS_ERR_HANDSHAKE);
        }
        if (have) {
            CHECK_EQ(ag.server_max_window_bits, m[i].rx);
            CHECK_EQ(ag.client_max_window_bits, m[i].tx);
        }
    }
    /* the offers themselves */
    {
        rtws_config cfg = base;
        rtws_pmd_offer ag;
        int have;
        client_answer(cfg, NULL, req, sizeof req, &ag, &have, &L);
        CHECK(strstr(req, "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
        cfg.deflate_peer_window_bits = 10;
        cfg.deflate_own_no_takeover = 1;
        cfg.deflate_peer_no_takeover = 1;
        client_answer(cfg, NULL, req, sizeof req, &ag, &have, &L);
        CHECK(strstr(req, "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; "
                          "server_max_window_bits=10; client_no_context_takeover; "
                          "server_no_context_takeover\r\n"));
        cfg.deflate_off = 1;
        client_answer(cfg, NULL, req, sizeof req, &ag, &have, &L);
        CHECK(strstr(req, "Extensions") == NULL);
    }
}

/* ---- messages ---- */

static void fill_json(uint8_t *p, size_t n, unsigned salt) {
    size_t i = 0;
    unsigned k = salt;
    while (i < n) {
        char tmp[96];
        int w = snprintf(tmp, sizeof tmp, "{\"type\":\"message\",\"channel\":\"chat:%u\",\"seq\":%u},",
                         k % 7, k);
        size_t l = (size_t)w;
        if (l > n - i) l = n - i;
        memcpy(p + i, tmp, l);
        i += l;
        k++;
    }
}

static uint8_t big[300200];

/* sends a message from a to b and checks it arrives whole; returns the
   first header byte of the frame on the wire */
static int roundtrip(rtws_conn *a, rtws_conn *b, ev_log *lb, rtws_opcode op, const uint8_t *p,
                     size_t n, unsigned flags, size_t *wire_len) {
    size_t w;
    int msgs = lb->msgs;
    CHECK_EQ(rtws_conn_send_flags(a, op, p, n, flags), RTWS_OK);
    w = drain(a, wire, sizeof wire);
    if (wire_len) *wire_len = w;
    rtws_conn_recv(b, wire, w, 0, NULL);
    CHECK_EQ(lb->msgs, msgs + 1);
    CHECK_EQ(lb->msg_len, n);
    CHECK(lb->msg_len == n && memcmp(lb->msg, p, n) == 0);
    CHECK_EQ(lb->op, op);
    return wire[0];
}

static void test_messages_matrix(void) {
    static const unsigned bits[] = {9, 12, 15};
    int own_nt, peer_nt;
    size_t bi;
    fill_json(big, sizeof big, 1);
    for (own_nt = 0; own_nt < 2; own_nt++)
        for (peer_nt = 0; peer_nt < 2; peer_nt++)
            for (bi = 0; bi < 3; bi++) {
                static ev_log lc, ls;
                rtws_conn cl, sv;
                rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &ls);
                rtws_pmd_offer ag;
                size_t sizes[] = {64, 100, 1000, 70000, 300000}, si, w1 = 0, w2 = 0;
                memset(&lc, 0, sizeof lc);
                memset(&ls, 0, sizeof ls);
                /* the client asks these of itself and of the server */
                cc.deflate_own_no_takeover = own_nt;
                cc.deflate_peer_no_takeover = peer_nt;
                cc.deflate_window_bits = bits[bi];
                cc.deflate_peer_window_bits = bits[bi];
                sc.deflate_window_bits = bits[bi];
                CHECK(pair(&cl, &cc, &sv, &sc));
                CHECK(rtws_conn_get_deflate(&cl, &ag));
                CHECK_EQ(ag.client_no_context_takeover, own_nt);
                CHECK_EQ(ag.server_no_context_takeover, peer_nt);
                CHECK_EQ(ag.server_max_window_bits, bi == 2 ? 15 : bits[bi]);
                for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                    CHECK((roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big, sizes[si], 0, NULL) & 0x40) != 0);
                    CHECK((roundtrip(&sv, &cl, &lc, RTWS_OP_BINARY, big + 7, sizes[si], 0, NULL) & 0x40) != 0);
                }
                /* context takeover: the same message again costs less (or,
                   without it, the same) */
                roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 500, 0, &w1);
                roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 500, 0, &w2);
                if (peer_nt) CHECK_EQ(w1, w2);
                else CHECK(w2 < w1);
                roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big, 500, 0, &w1);
                roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big, 500, 0, &w2);
                if (own_nt) CHECK_EQ(w1, w2);
                else CHECK(w2 < w1);
                /* below the threshold, and opted out: plain frames */
                CHECK((roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big, 63, 0, NULL) & 0x40) == 0);
                CHECK((roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 1000, RTWS_SEND_UNCOMPRESSED, NULL) & 0x40) == 0);
                /* after a plain one, compressed ones still decode */
                CHECK((roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 2000, 0, NULL) & 0x40) != 0);
                CHECK_EQ(lc.error + ls.error, 0);
                rtws_conn_free(&cl);
                rtws_conn_free(&sv);
            }
}

static void test_fragments_and_stream(void) {
    static ev_log lc, ls;
    rtws_conn cl, sv;
    rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &ls);
    size_t w;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    cc.stream = 1;
    cc.max_message = 200000;
    fill_json(big, sizeof big, 3);
    CHECK(pair(&cl, &cc, &sv, &sc));
    /* rtws_conn_send_frame's frames go plain */
    CHECK_EQ(rtws_conn_send_frame(&sv, RTWS_OP_TEXT, big, 100, 0), RTWS_OK);
    CHECK_EQ(rtws_conn_send_frame(&sv, RTWS_OP_CONT, big + 100, 100, 1), RTWS_OK);
    w = drain(&sv, wire, sizeof wire);
    CHECK((wire[0] & 0x70) == 0);
    rtws_conn_recv(&cl, wire, w, 0, NULL);
    CHECK_EQ(lc.msgs, 1);
    CHECK(lc.msg_len == 200 && memcmp(lc.msg, big, 200) == 0);
    /* stream mode: a compressed message comes out in pieces of <= 64 KiB */
    lc.pieces = 0;
    CHECK_EQ(rtws_conn_send_text(&sv, (const char *)big, 200000), RTWS_OK);
    pump(&sv, &cl);
    CHECK_EQ(lc.msgs, 2);
    CHECK(lc.pieces >= 4);
    CHECK(lc.msg_len == 200000 && memcmp(lc.msg, big, 200000) == 0);
    /* one byte over the limit: 1009 */
    CHECK_EQ(rtws_conn_send_text(&sv, (const char *)big, 200001), RTWS_OK);
    pump(&sv, &cl);
    CHECK_EQ(lc.close_code, RTWS_CLOSE_TOO_BIG);
    CHECK_EQ(lc.err, RTWS_ERR_TOO_BIG);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

/* a server frame (unmasked) built by hand, with byte 0 as given */
static size_t mkframe(uint8_t *out, int b0, const void *payload, size_t len) {
    size_t n = rtws_frame_header_encode(out, 1, RTWS_OP_TEXT, len, NULL);
    out[0] = (uint8_t)b0;
    memcpy(out + n, payload, len);
    return n + len;
}

/* raw DEFLATE of p[0..n) by our codec: sync flush with the tail taken off,
   or finish (BFINAL) */
static size_t zraw(const uint8_t *p, size_t n, uint8_t *out, size_t cap, int finish) {
    rtws_deflate d;
    size_t used = 0, len = 0;
    rtws_deflate_init(&d, NULL, NULL, 0);
    rtws_deflate_compress(&d, p, n, &used, out, cap, &len, finish ? RTWS_Z_FINISH : RTWS_Z_SYNC_FLUSH);
    rtws_deflate_free(&d);
    return finish ? len : len - 4;
}

/* a client with the extension agreed, its server side played by hand */
static void open_client(rtws_conn *cl, ev_log *L, rtws_config *cfgp, int deflate) {
    rtws_config cfg = cfgp ? *cfgp : mkcfg(RTWS_CLIENT, L);
    rtws_pmd_offer ag;
    char req[1024];
    int have;
    (void)req;
    (void)ag;
    memset(L, 0, sizeof *L);
    {
        rtws_client_opts o;
        char rq[1024], resp[512], acc[29];
        const char *k;
        size_t n;
        memset(&o, 0, sizeof o);
        o.host = "h";
        rtws_conn_init(cl, &cfg);
        rtws_conn_start(cl, &o, 0);
        n = drain(cl, (uint8_t *)rq, sizeof rq - 1);
        rq[n] = 0;
        k = strstr(rq, "Sec-WebSocket-Key: ");
        rtws_upgrade_accept_key(k + 19, 24, acc);
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                 acc, deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
        rtws_conn_recv(cl, resp, strlen(resp), 0, NULL);
    }
    have = rtws_conn_get_deflate(cl, NULL);
    CHECK_EQ(have, deflate);
}

static int close_code_sent(rtws_conn *c) {
    uint8_t out[256];
    size_t n = drain(c, out, sizeof out);
    /* the client's close frame is masked: unmask the code */
    if (n < 8 || (out[0] & 15) != RTWS_OP_CLOSE) return -1;
    return ((out[6] ^ out[2]) << 8) | (out[7] ^ out[3]);
}

static void test_violations(void) {
    static ev_log L;
    rtws_conn cl;
    uint8_t z[4096], f[8192];
    const char *text = "hello hello hello hello hello hello";
    size_t zn, fn;
    zn = zraw((const uint8_t *)text, strlen(text), z, sizeof z, 0);
    /* a good one first */
    open_client(&cl, &L, NULL, 1);
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_TEXT, z, zn);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 1);
    CHECK(L.msg_len == strlen(text) && memcmp(L.msg, text, L.msg_len) == 0);
    /* RSV1 on a ping: 1002 */
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_PING, "x", 1);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.close_code, RTWS_CLOSE_PROTOCOL_ERROR);
    CHECK_EQ(close_code_sent(&cl), RTWS_CLOSE_PROTOCOL_ERROR);
    rtws_conn_free(&cl);
    /* RSV1 on a continuation: 1002 */
    open_client(&cl, &L, NULL, 1);
    fn = mkframe(f, 0x40 | RTWS_OP_TEXT, z, 5);
    fn += mkframe(f + fn, 0x80 | 0x40 | RTWS_OP_CONT, z + 5, zn - 5);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 0);
    CHECK_EQ(L.close_code, RTWS_CLOSE_PROTOCOL_ERROR);
    rtws_conn_free(&cl);
    /* a compressed message in two frames, RSV1 on the first only: fine */
    open_client(&cl, &L, NULL, 1);
    fn = mkframe(f, 0x40 | RTWS_OP_TEXT, z, 5);
    fn += mkframe(f + fn, 0x80 | RTWS_OP_CONT, z + 5, zn - 5);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 1);
    CHECK(L.msg_len == strlen(text) && memcmp(L.msg, text, L.msg_len) == 0);
    rtws_conn_free(&cl);
    /* RSV1 without the extension: 1002; RSV2 with it: 1002 */
    open_client(&cl, &L, NULL, 0);
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_TEXT, z, zn);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.close_code, RTWS_CLOSE_PROTOCOL_ERROR);
    rtws_conn_free(&cl);
    open_client(&cl, &L, NULL, 1);
    fn = mkframe(f, 0x80 | 0x20 | RTWS_OP_TEXT, z, zn);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.close_code, RTWS_CLOSE_PROTOCOL_ERROR);
    rtws_conn_free(&cl);
    /* a corrupt stream (reserved block type 3): 1007 */
    open_client(&cl, &L, NULL, 1);
    {
        static const uint8_t bad[] = {0x07, 0x00};
        fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_BINARY, bad, sizeof bad);
    }
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.close_code, RTWS_CLOSE_INVALID_DATA);
    CHECK_EQ(close_code_sent(&cl), RTWS_CLOSE_INVALID_DATA);
    rtws_conn_free(&cl);
    /* invalid UTF-8 inside a compressed text message: 1007 */
    open_client(&cl, &L, NULL, 1);
    {
        static const uint8_t t[] = {'a', 0xff, 'b'};
        zn = zraw(t, sizeof t, z, sizeof z, 0);
        fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_TEXT, z, zn);
    }
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 0);
    CHECK_EQ(L.close_code, RTWS_CLOSE_INVALID_DATA);
    rtws_conn_free(&cl);
    /* a stream ended with BFINAL: accepted, and the next message too */
    open_client(&cl, &L, NULL, 1);
    zn = zraw((const uint8_t *)text, strlen(text), z, sizeof z, 1);
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_TEXT, z, zn);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 2);
    CHECK(L.msg_len == strlen(text) && memcmp(L.msg, text, L.msg_len) == 0);
    /* ... but bytes after the final block are not */
    f[fn] = 0x00;
    f[1] = (uint8_t)(f[1] + 1);
    rtws_conn_recv(&cl, f, fn + 1, 0, NULL);
    CHECK_EQ(L.msgs, 2);
    CHECK_EQ(L.close_code, RTWS_CLOSE_INVALID_DATA);
    rtws_conn_free(&cl);
}

/* a zip bomb: 8 MiB of zeros in about 8 KiB; max_message 100000 */
static void test_bomb(void) {
    static ev_log L;
    static uint8_t zeros[8 << 20], zb[1 << 16];
    rtws_conn cl;
    rtws_config cfg;
    rtws_conn_stats st;
    uint8_t *f;
    size_t zn, fn;
    memset(&L, 0, sizeof L);
    cfg = mkcfg(RTWS_CLIENT, &L);
    cfg.max_message = 100000;
    zn = zraw(zeros, sizeof zeros, zb, sizeof zb, 0);
    CHECK(zn < 20000);
    f = (uint8_t *)malloc(zn + 16);
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_BINARY, zb, zn);
    open_client(&cl, &L, &cfg, 1);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 0);
    CHECK_EQ(L.close_code, RTWS_CLOSE_TOO_BIG);
    CHECK_EQ(L.err, RTWS_ERR_TOO_BIG);
    rtws_conn_get_stats(&cl, &st);
    /* what was held: the reassembly buffer up to the limit (+1), the
       inflater, the receive buffer; not 8 MiB */
    CHECK(st.buffer_cap < 100001 + 60000 + 2 * 20000);
    rtws_conn_free(&cl);
    /* exactly the limit passes */
    zn = zraw(zeros, 100000, zb, sizeof zb, 0);
    fn = mkframe(f, 0x80 | 0x40 | RTWS_OP_BINARY, zb, zn);
    open_client(&cl, &L, &cfg, 1);
    rtws_conn_recv(&cl, f, fn, 0, NULL);
    CHECK_EQ(L.msgs, 1);
    CHECK_EQ(L.msg_len, 100000);
    rtws_conn_free(&cl);
    free(f);
}

/* the budget counts the extension's memory, and a warm connection
   allocates nothing per message */
static void test_budget_and_allocs(void) {
    static ev_log lc, ls;
    rtws_conn cl, sv;
    rtws_budget b;
    rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &ls);
    rtws_conn_stats st;
    size_t before, i;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    rtws_budget_init(&b, 0);
    sc.budget = &b;
    fill_json(big, sizeof big, 5);
    CHECK(pair(&cl, &cc, &sv, &sc));
    CHECK(b.used > 0); /* the state, before any message */
    for (i = 0; i < 3; i++) { /* warm: a small spare chunk is kept from the third message */
        roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 5000, 0, NULL);
        roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big, 5000, 0, NULL);
    }
    CHECK(b.used > 200000); /* both codecs at window 15 */
    rtws_conn_get_stats(&sv, &st);
    CHECK(st.buffer_cap >= b.used);
    before = n_alloc;
    for (i = 0; i < 100; i++) {
        roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big + i, 3000, 0, NULL);
        roundtrip(&cl, &sv, &ls, RTWS_OP_TEXT, big + i, 3000, 0, NULL);
    }
    CHECK_EQ(n_alloc, before);
    rtws_conn_free(&sv);
    CHECK_EQ(b.used, 0);
    rtws_conn_free(&cl);
    /* a budget with no room: the offer is declined, the connection opens plain */
    rtws_budget_init(&b, 10);
    CHECK(pair(&cl, &cc, &sv, &sc));
    CHECK_EQ(rtws_conn_get_deflate(&sv, NULL), 0);
    CHECK_EQ(rtws_conn_get_deflate(&cl, NULL), 0);
    rtws_conn_free(&sv);
    rtws_conn_free(&cl);
}

/* A server's defaults: its own messages each on their own
   (server_no_context_takeover in the answer), the client's window kept as the
   client likes, level 1; the server's same message sent twice costs about the
   same (with a window kept, the second would be a few bytes), the client's
   second one less, and round trips still decode. */
static void test_server_default(void) {
    static ev_log lc, ls;
    rtws_conn cl, sv;
    rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &ls);
    rtws_pmd_offer ag;
    size_t w1 = 0, w2 = 0;
    memset(&lc, 0, sizeof lc);
    memset(&ls, 0, sizeof ls);
    sc.deflate_takeover = 0;
    fill_json(big, sizeof big, 1);
    CHECK(pair(&cl, &cc, &sv, &sc));
    CHECK(rtws_conn_get_deflate(&cl, &ag));
    CHECK(ag.server_no_context_takeover == 1 && ag.client_no_context_takeover == 0);
    CHECK((roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 5000, 0, &w1) & 0x40) != 0);
    roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big, 5000, 0, &w2);
    CHECK(w1 < 5000 && w2 * 2 > w1); /* no window kept: not a back-reference to the first */
    CHECK((roundtrip(&cl, &sv, &ls, RTWS_OP_BINARY, big, 70000, 0, &w1) & 0x40) != 0);
    roundtrip(&cl, &sv, &ls, RTWS_OP_BINARY, big, 70000, 0, &w2);
    CHECK(w1 < 70000 && w2 < w1); /* the client keeps its window */
    CHECK_EQ(lc.error + ls.error, 0);
    rtws_conn_free(&cl);
    rtws_conn_free(&sv);
}

/* The idle trim parks a state it left without codec or buffer (no context
   takeover, or no codec yet): the budget gets all of it back, the agreed
   parameters and the run count stay, and the next messages both ways are
   compressed and decode (the state made again); a state that keeps a window
   is not parked. */
static void test_parked(void) {
    static ev_log lc, ls;
    int own_nt;
    fill_json(big, sizeof big, 3);
    for (own_nt = 0; own_nt < 2; own_nt++) {
        rtws_conn cl, sv;
        rtws_budget b;
        rtws_config cc = mkcfg(RTWS_CLIENT, &lc), sc = mkcfg(RTWS_SERVER, &ls);
        rtws_pmd_offer ag, ag2;
        rtws_conn_stats st;
        uint64_t runs;
        int i;
        memset(&lc, 0, sizeof lc);
        memset(&ls, 0, sizeof ls);
        rtws_budget_init(&b, 0);
        sc.budget = &b;
        sc.deflate_takeover = 0;        /* the server's own: none */
        cc.deflate_own_no_takeover = own_nt; /* the client's: kept unless own_nt */
        cc.deflate_window_bits = 12;
        cc.deflate_peer_window_bits = 11;
        sc.deflate_window_bits = 13;
        CHECK(pair(&cl, &cc, &sv, &sc));
        CHECK(rtws_conn_get_deflate(&sv, &ag));
        rtws_conn_trim(&sv); /* before any message: no codec yet, parked */
        CHECK_EQ(b.used, 0);
        CHECK(rtws_conn_get_deflate(&sv, &ag2));
        CHECK(memcmp(&ag, &ag2, sizeof ag) == 0);
        for (i = 0; i < 3; i++) {
            CHECK((roundtrip(&sv, &cl, &lc, RTWS_OP_TEXT, big + i, 3000, 0, NULL) & 0x40) != 0);
            CHECK((roundtrip(&cl, &sv, &ls, RTWS_OP_BINARY, big + i, 5000, 0, NULL) & 0x40) != 0);
            rtws_conn_get_stats(&sv, &st);
            runs = st.deflate_runs;
            CHECK_EQ(runs, (uint64_t)(i + 1));
            rtws_conn_trim(&sv);
            rtws_conn_get_stats(&sv, &st);
            CHECK_EQ(st.deflate_runs, runs);
            CHECK(rtws_conn_get_deflate(&sv, &ag2));
            CHECK(memcmp(&ag, &ag2, sizeof ag) == 0);
            if (own_nt) CHECK_EQ(b.used, 0); /* parked */
            else CHECK(b.used > 1000);       /* the client's window is kept */
        }
        CHECK_EQ(lc.error + ls.error, 0);
        rtws_conn_free(&sv);
        CHECK_EQ(b.used, 0);
        rtws_conn_free(&cl);
    }
}

int main(void) {
    test_parked();
    test_server_default();
    test_server_matrix();
    test_client_matrix();
    test_messages_matrix();
    test_fragments_and_stream();
    test_violations();
    test_bomb();
    test_budget_and_allocs();
    return T_END();
}
