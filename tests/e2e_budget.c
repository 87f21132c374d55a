/* Issue 15 items 2 and 3 over real sockets: the context's memory budget.
   Item 3: 8 clients that send and never read push an echo server; with a
   memory budget its queued output stays under the cap, the largest queues
   are closed with 1013 instead of growing, and the memory comes back.
   Item 2: 20 anonymous clients publish 60 KiB messages to fresh channels at
   the allowed rate, then leave: the router stays under the budget (new
   channels refused, history shed) and every channel expires. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <stdlib.h>

#define MiB ((size_t)1 << 20)

static int g_closed_1013, g_closes;

static void echo_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE) rtws_conn_send(c, (rtws_opcode)ev->message.opcode, ev->message.data, ev->message.len);
    if (ev->type == RTWS_EV_CLOSE) {
        g_closes++;
        if (c->priv_.close_code == 1013) g_closed_1013++; /* the close we sent */
    }
}

/* a raw client: upgrade, then masked 60 KiB binary frames, never reading */
static int raw_client(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

static void test_echo_never_read(void) {
    enum { NC = 8, FRAME = 61440 };
    rtws_ctx_config cfg;
    rtws_ctx *sv;
    rtws_ctx_stats st;
    static uint8_t frame[FRAME + 8];
    static struct pollfd f[64];
    size_t off[NC], limit = 8 * MiB, sent = 0, worst = 0, worst_q = 0;
    int fds[NC], port = 0, i, alive;
    uint64_t until;
    memset(&cfg, 0, sizeof cfg);
    cfg.memory_budget = limit;
    cfg.timer_ms = 10;
    cfg.linger_ms = 200;
    cfg.conn.role = RTWS_SERVER;
    cfg.conn.heartbeat_off = 1;
    cfg.conn.close_timeout_ms = 200;
    cfg.conn.on_event = echo_event;
    sv = rtws_ctx_new(&cfg);
    CHECK(sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    frame[0] = 0x82; /* binary, fin */
    frame[1] = 0xFE; /* masked, 16-bit length */
    frame[2] = (uint8_t)(FRAME >> 8);
    frame[3] = (uint8_t)FRAME;
    memset(frame + 4, 0, 4); /* a zero key: the payload goes as it is */
    memset(frame + 8, 'e', FRAME);
    for (i = 0; i < NC; i++) {
        fds[i] = raw_client(port);
        off[i] = 0;
        CHECK(fds[i] >= 0);
    }
    until = rtws_time_now_ms() + 4000;
    do {
        int n = rtws_ctx_fill_pollfds(sv, f, 64);
        alive = 0;
        for (i = 0; i < NC; i++) { /* each keeps writing frames while it can */
            ssize_t w;
            if (fds[i] < 0) continue;
            alive++;
            w = send(fds[i], frame + off[i], sizeof frame - off[i], MSG_NOSIGNAL);
            if (w > 0) {
                off[i] = (off[i] + (size_t)w) % sizeof frame;
                sent += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        poll(f, (nfds_t)n, 1);
        rtws_ctx_service(sv, f, n, rtws_time_now_ms());
        rtws_ctx_get_stats(sv, &st);
        if (st.memory_used > worst) worst = st.memory_used;
        {
            size_t q = 0, k; /* the send queues alone, summed right now */
            for (k = 0; k < sv->nsocks; k++) q += sv->socks[k]->conn.priv_.qbytes;
            if (q > worst_q) worst_q = q;
        }
    } while (rtws_time_now_ms() < until && sent < (size_t)400 * MiB);
    /* the 400 MiB can be sent within close_timeout_ms once every queue is
       shed (the server then reads and drops): let the closes finish */
    until = rtws_time_now_ms() + 2000;
    while (g_closes < NC && rtws_time_now_ms() < until) {
        int n = rtws_ctx_fill_pollfds(sv, f, 64);
        poll(f, (nfds_t)n, 10);
        rtws_ctx_service(sv, f, n, rtws_time_now_ms());
    }
    rtws_ctx_get_stats(sv, &st);
    printf("  8 never-reading clients: %zu MiB sent to the echo server, budget %zu MiB, peak %zu KiB"
           " (send queues at most %zu KiB), %d closed with 1013\n",
           sent / MiB, limit / MiB, st.memory_peak / 1024, worst_q / 1024, g_closed_1013);
    CHECK(sent > 3 * limit);           /* the load really was over the budget */
    CHECK(g_closed_1013 >= 1);         /* the largest queues went */
    CHECK_EQ(st.memory_budget, limit);
    /* the queues stay under the cap; receive buffers (counted at the timer
       pass, not refused) come on top: a few hundred KiB each at most */
    CHECK(worst_q <= limit);
    CHECK(st.memory_peak <= limit + NC * 512 * 1024);
    CHECK(worst <= st.memory_peak);
    for (i = 0; i < NC; i++)
        if (fds[i] >= 0) close(fds[i]);
    until = rtws_time_now_ms() + 2000;
    while (rtws_ctx_get_conn_count(sv) && rtws_time_now_ms() < until) rtws_ctx_run_once(sv, 5);
    rtws_ctx_run_timers(sv, rtws_time_now_ms() + 1000);
    rtws_ctx_get_stats(sv, &st);
    CHECK_EQ(rtws_ctx_get_conn_count(sv), 0);
    CHECK_EQ(st.memory_used, 0); /* everything came back */
    (void)alive;
    rtws_ctx_free(sv);
}

static void test_fresh_channels(void) {
    enum { NCL = 20 };
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_router *r;
    rtws_router_stats st;
    rtws_ctx *sv, *cl;
    rtws_rt *c[NCL];
    static char data[61442];
    char url[64], ch[32];
    int port = 0, i, k = 0, refused = 0;
    size_t limit = 16 * MiB;
    uint64_t until;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.rate_per_s = 20;
    rc.channel_ttl_ms = 300;
    rc.session_ttl_ms = 300;
    r = rtws_router_new(&rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.memory_budget = limit;
    cfg.timer_ms = 10;
    cfg.conn.heartbeat_off = 1;
    rtws_router_install(r, &cfg);
    sv = rtws_ctx_new(&cfg);
    CHECK(sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    memset(&cfg, 0, sizeof cfg);
    cfg.timer_ms = 10;
    cfg.conn.heartbeat_off = 1;
    cfg.conn.deflate_off = 1; /* the publish rate matters here, not the ratio */
    cl = rtws_ctx_new(&cfg);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    for (i = 0; i < NCL; i++) {
        rtws_rt_config c1;
        memset(&c1, 0, sizeof c1);
        c1.client.url = url;
        c[i] = rtws_rt_new(cl, &c1, rtws_time_now_ms(), NULL);
        CHECK(c[i] != NULL);
    }
    memset(data, 'x', sizeof data - 1);
    data[0] = data[sizeof data - 2] = '"';
    until = rtws_time_now_ms() + 2000;
    do { /* each client: a fresh channel per message, as fast as the rate allows */
        static struct pollfd f[64];
        int na = rtws_ctx_fill_pollfds(sv, f, 32), nb = rtws_ctx_fill_pollfds(cl, f + na, 32);
        for (i = 0; i < NCL; i++)
            if (rtws_rt_get_unacked(c[i]) < 2) {
                snprintf(ch, sizeof ch, "fresh-%d-%d", i, k++);
                rtws_rt_publish(c[i], ch, "m", data, sizeof data - 1, NULL);
            }
        poll(f, (nfds_t)(na + nb), 2);
        rtws_ctx_service(sv, f, na, rtws_time_now_ms());
        rtws_ctx_service(cl, f + na, nb, rtws_time_now_ms());
    } while (rtws_time_now_ms() < until);
    rtws_router_get_stats(r, &st);
    refused = (int)st.refused_overloaded;
    printf("  20 publishers of 60 KiB to fresh channels: %llu published, %zu channels, peak %zu KiB"
           " of %zu KiB, %d new channels refused (overloaded), %llu history messages shed\n",
           (unsigned long long)st.publishes, st.channels, st.memory_peak / 1024, limit / 1024,
           refused, (unsigned long long)st.history_shed);
    CHECK(st.publishes * 61440 > limit);     /* more than the budget went through */
    CHECK(refused > 0 || st.history_shed > 0); /* and the budget acted */
    CHECK_EQ(st.memory_budget, limit);
    CHECK(st.memory_peak <= limit + NCL * 512 * 1024); /* + receive buffers, counted late */
    /* everyone leaves: channels and sessions expire, the memory comes back */
    for (i = 0; i < NCL; i++) rtws_rt_free(c[i]);
    until = rtws_time_now_ms() + 1500;
    while (rtws_time_now_ms() < until) {
        rtws_ctx_run_once(sv, 5);
        rtws_ctx_run_once(cl, 0);
    }
    rtws_router_get_stats(r, &st);
    CHECK_EQ(st.channels, 0);
    CHECK_EQ(st.sessions, 0);
    CHECK_EQ(st.history_bytes, 0);
    CHECK_EQ(st.memory_router, 0);
    CHECK(st.channels_expired > 0);
    CHECK(st.memory_used < 64 * 1024); /* what is left: idle receive buffers at most */
    rtws_ctx_free(cl);
    rtws_ctx_free(sv);
    rtws_router_free(r);
}

/* chat_server's order: the router goes first, with connections, channels
   and history still charged to the context's budget */
static void test_router_freed_first(void) {
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_router *r;
    rtws_ctx *sv, *cl;
    rtws_rt *c;
    rtws_rt_config c1;
    char url[64];
    int port = 0, i;
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    r = rtws_router_new(&rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.memory_budget = 4 * MiB;
    cfg.conn.heartbeat_off = 1;
    rtws_router_install(r, &cfg);
    sv = rtws_ctx_new(&cfg);
    CHECK(sv && rtws_ctx_listen(sv, "127.0.0.1", 0, &port) == RTWS_OK);
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.heartbeat_off = 1;
    cl = rtws_ctx_new(&cfg);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    memset(&c1, 0, sizeof c1);
    c1.client.url = url;
    c = rtws_rt_new(cl, &c1, rtws_time_now_ms(), NULL);
    rtws_rt_subscribe(c, "kept", NULL, NULL);
    for (i = 0; i < 5; i++) rtws_rt_publish(c, "kept", NULL, "1", 1, NULL);
    for (i = 0; i < 100 && rtws_rt_get_unacked(c); i++) {
        rtws_ctx_run_once(sv, 2);
        rtws_ctx_run_once(cl, 2);
    }
    CHECK_EQ(rtws_rt_get_unacked(c), 0);
    CHECK(rtws_ctx_get_budget(sv)->used > 0);
    rtws_router_free(r); /* a connection, a channel with history, a session */
    rtws_ctx_free(sv);   /* no router callback may run now: it is gone */
    rtws_rt_free(c);
    rtws_ctx_free(cl);
}

int main(void) {
    test_echo_never_read();
    test_fresh_channels();
    test_router_freed_first();
    return T_END();
}
