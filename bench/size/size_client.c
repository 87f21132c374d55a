/* Size probe: a program that uses rtws only as a client (connect, send, close). */
#define RTWS_IMPLEMENTATION
#include "../../rtws.h"

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_OPEN) rtws_conn_send_text(c, "hi", 2);
    else if (ev->type == RTWS_EV_MESSAGE) rtws_conn_close(c, RTWS_CLOSE_NORMAL, "bye");
}

int main(int argc, char **argv) {
    rtws_ctx_config cfg = {0};
    rtws_ctx *ctx;
    rtws_err err;
    cfg.conn.on_event = on_event;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || !rtws_ctx_connect(ctx, argc > 1 ? argv[1] : "ws://127.0.0.1:9001/", NULL,
                              rtws_time_now_ms(), &err))
        return 1;
    while (rtws_ctx_get_conn_count(ctx) > 0) rtws_ctx_run_once(ctx, 1000);
    rtws_ctx_free(ctx);
    return 0;
}
