/* permessage-deflate on a server's defaults, through real sockets
   (127.0.0.1): 16 clients send compressed JSON messages of 1-9 KB, the
   server echoes them compressed, every echo is checked byte for byte. With
   the server's default (no context takeover either way) its codecs are lent
   from the context's pool for one message at a time, so a connection holds
   no codec memory between messages; with deflate_takeover = 1 each holds
   its own (~300 KB). Both servers run the same traffic and their
   connections' buffer_cap is compared. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <poll.h>
#include <stdlib.h>

#define N_CONNS 16
#define PER_CONN 40

typedef struct peer {
    int sent, got, bad, compressed;
} peer;

typedef struct side {
    rtws_conn *conns[N_CONNS];
    int n;
} side;

static void srv_event(rtws_conn *c, const rtws_event *ev, void *user) {
    side *s = (side *)user;
    if (ev->type == RTWS_EV_OPEN && s->n < N_CONNS) s->conns[s->n++] = c;
    if (ev->type == RTWS_EV_CLOSE) {
        int i;
        for (i = 0; i < s->n; i++)
            if (s->conns[i] == c) s->conns[i] = NULL;
    }
    if (ev->type == RTWS_EV_MESSAGE)
        CHECK_EQ(rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len), RTWS_OK);
}

/* message k of peer i: a JSON array of numbered records, 1-9 KB */
static size_t make_msg(char *buf, size_t cap, int i, int k) {
    size_t n = 0;
    int r, recs = 10 + (k * 7 + i) % 90;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (r = 0; r < recs && n + 100 < cap; r++)
        n += (size_t)snprintf(buf + n, cap - n, "%s{\"user\":%d,\"seq\":%d,\"text\":\"message %d\"}",
                              r ? "," : "", i, k, r * 13 + k);
    n += (size_t)snprintf(buf + n, cap - n, "]");
    return n;
}

static char out[16384];
static void send_next(rtws_conn *c, peer *p, int i) {
    size_t n = make_msg(out, sizeof out, i, p->sent);
    if (rtws_conn_send_text(c, out, n) == RTWS_OK) p->sent++;
}

static peer peers[2][N_CONNS];
static void cli_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)rtws_conn_get_data(c);
    int i = (int)(p - peers[(intptr_t)user]);
    if (ev->type == RTWS_EV_OPEN) {
        rtws_pmd_offer ag;
        p->compressed = rtws_conn_get_deflate(c, &ag) && ag.server_no_context_takeover ==
                                                             ((intptr_t)user == 0);
        send_next(c, p, i);
    }
    if (ev->type == RTWS_EV_MESSAGE) {
        char want[16384];
        size_t n = make_msg(want, sizeof want, i, p->got);
        if (ev->message.len != n || memcmp(ev->message.data, want, n) != 0) p->bad++;
        p->got++;
        if (p->sent < PER_CONN) send_next(c, p, i);
    }
}

static rtws_ctx *ctxs[4];
static int all_got(void) {
    int s, i;
    for (s = 0; s < 2; s++)
        for (i = 0; i < N_CONNS; i++)
            if (peers[s][i].got < PER_CONN) return 0;
    return 1;
}

static void run(int ms, int (*cond)(void)) {
    struct pollfd fds[128];
    uint64_t until = rtws_time_now_ms() + (uint64_t)ms;
    while (rtws_time_now_ms() < until && !(cond && cond())) {
        int n[4], k, tot = 0;
        for (k = 0; k < 4; k++) {
            n[k] = rtws_ctx_fill_pollfds(ctxs[k], fds + tot, 32);
            tot += n[k];
        }
        poll(fds, (nfds_t)tot, 10);
        for (k = 0, tot = 0; k < 4; k++) {
            rtws_ctx_service(ctxs[k], fds + tot, n[k], rtws_time_now_ms());
            tot += n[k];
        }
    }
}

static size_t held(const side *s) {
    size_t h = 0;
    int i;
    for (i = 0; i < s->n; i++) {
        rtws_conn_stats st;
        if (!s->conns[i]) continue;
        rtws_conn_get_stats(s->conns[i], &st);
        h += st.buffer_cap;
    }
    return h;
}

int main(void) {
    static side sides[2];
    int s, i, port[2] = {0, 0}, got = 0, bad = 0, agreed = 0;
    for (s = 0; s < 2; s++) {
        rtws_ctx_config sc, cc;
        char url[64];
        memset(&sc, 0, sizeof sc);
        sc.conn.on_event = srv_event;
        sc.conn.user = &sides[s];
        sc.conn.deflate_takeover = s; /* 0: the default */
        sc.trim_ms = 60000;           /* no trim during the test */
        memset(&cc, 0, sizeof cc);
        cc.conn.on_event = cli_event;
        cc.conn.user = (void *)(intptr_t)s;
        ctxs[2 * s] = rtws_ctx_new(&sc);
        ctxs[2 * s + 1] = rtws_ctx_new(&cc);
        CHECK(ctxs[2 * s] && ctxs[2 * s + 1]);
        if (!ctxs[2 * s] || !ctxs[2 * s + 1]) return T_END();
        CHECK_EQ(rtws_ctx_listen(ctxs[2 * s], "127.0.0.1", 0, &port[s]), RTWS_OK);
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port[s]);
        for (i = 0; i < N_CONNS; i++) {
            rtws_err e;
            rtws_conn *c = rtws_ctx_connect(ctxs[2 * s + 1], url, NULL, rtws_time_now_ms(), &e);
            CHECK(c != NULL);
            if (c) rtws_conn_set_data(c, &peers[s][i]);
        }
    }
    run(60000, all_got);
    for (s = 0; s < 2; s++)
        for (i = 0; i < N_CONNS; i++) {
            got += peers[s][i].got;
            bad += peers[s][i].bad;
            agreed += peers[s][i].compressed;
        }
    CHECK_EQ(got, 2 * N_CONNS * PER_CONN);
    CHECK_EQ(bad, 0);
    CHECK_EQ(agreed, 2 * N_CONNS); /* compression agreed, takeover as configured */
    {
        size_t lent = held(&sides[0]), own = held(&sides[1]);
        printf("server connections' buffers after %d compressed echoes each: %zu bytes with the "
               "default (compressor lent per message), %zu with deflate_takeover (kept)\n",
               PER_CONN, lent, own);
        CHECK(own >= (size_t)N_CONNS * 250000);
        CHECK(lent < (size_t)N_CONNS * 100000);
    }
    for (s = 0; s < 4; s++) rtws_ctx_free(ctxs[s]);
    return T_END();
}
