/* Size probe: a program that uses rtws only as a server (listen, echo). */
#define RTWS_IMPLEMENTATION
#include "../../rtws.h"

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    (void)user;
    if (ev->type == RTWS_EV_MESSAGE)
        rtws_conn_send(c, ev->message.opcode, ev->message.data, ev->message.len);
}

int main(void) {
    rtws_ctx_config cfg = {0};
    rtws_ctx *ctx;
    cfg.conn.on_event = on_event;
    ctx = rtws_ctx_new(&cfg);
    if (!ctx || rtws_ctx_listen(ctx, "127.0.0.1", 9001, NULL) != RTWS_OK) return 1;
    for (;;) rtws_ctx_run_once(ctx, 1000);
}
