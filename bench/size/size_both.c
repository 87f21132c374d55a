/* Size probe: a program that uses rtws as a server and as a client. */
#define RTWS_IMPLEMENTATION
#include "../../rtws.h"

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_OPEN && rtws_conn_get_config(c)->role == RTWS_CLIENT)
        rtws_conn_send_text(c, "hi", 2);
    else if (ev->type == RTWS_EV_MESSAGE)
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

int main(int argc, char **argv) {
    rtws_ctx_config cfg = {0};
    rtws_ctx *ctx;
    rtws_err err;
    int port = 0;
    cfg.conn.on_event = on_event;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || rtws_ctx_listen(ctx, "127.0.0.1", 0, &port) != RTWS_OK) return 1;
    if (!rtws_ctx_connect(ctx, argc > 1 ? argv[1] : "ws://127.0.0.1:9001/", NULL, rtws_time_now_ms(), &err))
        return 1;
    for (;;) rtws_ctx_run_once(ctx, 1000);
}
