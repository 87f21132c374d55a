/* tests/win_connect.c - Windows only (built and run under wine by
   tests/interop_windows.sh): a failed connect is found although the poller
   never reports it. WSAPoll on Windows before 10 version 2004 does not flag
   a socket whose non-blocking connect failed, so rtws asks each connecting
   socket for SO_ERROR at every timer pass. Here the loop reports no
   readiness at all: on_socket is recorded (style 2) but never answered with
   rtws_ctx_handle_writable, only rtws_ctx_run_timers runs, so the error can
   only come from that pass. Also: the detail is Winsock's code with the
   system's text, and a context's WSAStartup is undone by rtws_ctx_free. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#ifndef _WIN32
#error "tests/win_connect.c tests the Windows port only"
#endif

static int errors, detail;
static char text[256];
static unsigned watched;

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)c, (void)user;
    if (ev->type == RTWS_EV_ERROR) {
        errors++;
        detail = ev->error.detail;
        snprintf(text, sizeof text, "%s", ev->error.detail_text ? ev->error.detail_text : "");
    }
}

static void on_socket(rtws_ctx *ctx, int fd, unsigned want, void *user) {
    (void)ctx, (void)fd, (void)user;
    watched |= want;
}

/* a loopback port nobody listens on: bound by us, then closed */
static int closed_port(void) {
    struct sockaddr_in a;
    int len = (int)sizeof a, port = 0;
    SOCKET s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s != INVALID_SOCKET && bind(s, (struct sockaddr *)&a, (int)sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s != INVALID_SOCKET) closesocket(s);
    return port;
}

int main(void) {
    WSADATA wsa;
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    rtws_conn *c;
    rtws_err err = RTWS_OK;
    char url[64];
    uint64_t t0, took;
    int port;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0); /* our own, for closed_port */
    port = closed_port();
    CHECK(port > 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);

    memset(&cfg, 0, sizeof cfg);
    cfg.conn.on_event = on_event;
    cfg.on_socket = on_socket;
    ctx = rtws_ctx_new(&cfg);
    CHECK(ctx != NULL);
    if (!ctx) return T_END();
    t0 = rtws_time_now_ms();
    c = rtws_ctx_connect(ctx, url, NULL, t0, &err);
    CHECK(c != NULL);
    CHECK_EQ(err, RTWS_OK);
    CHECK_EQ(errors, 0);              /* not refused within the call */
    CHECK(watched & RTWS_WANT_WRITE); /* it waits for the connect */
    while (!errors && rtws_time_now_ms() - t0 < 10000) {
        int ms = rtws_ctx_get_timeout_ms(ctx, rtws_time_now_ms());
        CHECK(ms >= 0 && ms <= 100); /* passes every timer_ms while connecting */
        if (ms < 0 || ms > 100) break;
        Sleep((DWORD)(ms ? ms : 1));
        rtws_ctx_run_timers(ctx, rtws_time_now_ms());
    }
    took = rtws_time_now_ms() - t0;
    CHECK_EQ(errors, 1);
    rtws_ctx_run_timers(ctx, rtws_time_now_ms());
    CHECK_EQ(rtws_ctx_get_conn_count(ctx), 0); /* the failed socket is gone */
    CHECK_EQ(detail, WSAECONNREFUSED);
    CHECK(text[0] != '\0');
    /* well before the handshake timeout; real Windows retries a refused SYN
       for about 2 s, wine answers at once */
    CHECK(took < 5000);
    printf("refused connect found by the timer pass after %u ms: %d (%s)\n", (unsigned)took,
           detail, text);
    rtws_ctx_free(ctx);

    /* rtws_ctx_free undid its WSAStartup: ours is still there, and the last
       WSACleanup ends Winsock (a socket call then fails with WSANOTINITIALISED) */
    CHECK(closed_port() > 0);
    CHECK(WSACleanup() == 0);
    CHECK(socket(AF_INET, SOCK_STREAM, 0) == INVALID_SOCKET &&
          WSAGetLastError() == WSANOTINITIALISED);
    return T_END();
}
