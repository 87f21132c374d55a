/* chat_client - a terminal client for chat_server (or any rtws router).

   usage: ./chat_client [URL] [--room NAME] [--token JWT]
     URL          the router's endpoint (default ws://127.0.0.1:8080/ws, `make run`)
     --room NAME  the room to join (default lobby: channel "room:lobby")
     --token JWT  authenticate with this token (chat_server --jwt-secret S checks it)
     --help       print this and exit
   Type a line to send it to the room; "/away", "/back" set your presence;
   "/quit" (or end of input) leaves. Messages, joins and leaves are printed as
   they come. It reconnects by itself and resumes where it left off: no
   message is shown twice or skipped. Shows how to poll your own fd (stdin)
   in the same loop as rtws. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char room[160] = "room:lobby";

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [URL] [--room NAME] [--token JWT]\n"
            "A terminal client for chat_server (or any rtws router).\n"
            "  URL          the router's endpoint (default ws://127.0.0.1:8080/ws, `make run`)\n"
            "  --room NAME  the room to join (default lobby: channel \"room:lobby\")\n"
            "  --token JWT  authenticate with this token (chat_server --jwt-secret S checks it)\n"
            "  --help       print this and exit\n"
            "Type a line to send it to the room; \"/away\", \"/back\" set your presence;\n"
            "\"/quit\" (or end of input) leaves. It reconnects by itself and resumes where\n"
            "it left off.\n",
            argv0);
}

static void on_msg(rtws_rt *rt, const rtws_rt_message *m, void *user) {
    rtws_json_tok t[16];
    rtws_json d;
    char text[1024];
    size_t n = 0;
    int v;
    (void)rt;
    (void)user;
    if (m->reset) {
        printf("-- (history before #%llu is no longer available)\n", (unsigned long long)m->seq);
        return;
    }
    if (strcmp(m->event, "message") != 0) return; /* typing indicators and the like */
    text[0] = '\0';
    if (rtws_json_parse(&d, m->data, m->data_len, t, 16, 4) == RTWS_OK &&
        (v = rtws_json_get(&d, 0, "text")) >= 0)
        rtws_json_unescape(&d, v, text, sizeof text, &n);
    printf("[%s] %s\n", m->from, text);
    fflush(stdout);
}

static void on_presence(rtws_rt *rt, const char *channel, const char *user, const char *status,
                        void *u) {
    (void)u;
    (void)channel;
    if (strcmp(user, rtws_rt_get_user(rt)) == 0) return;
    printf("-- %s is %s\n", user, status);
    fflush(stdout);
}

static void on_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    (void)cl;
    (void)user;
    if (ev->type != RTWS_CLIENT_EV_STATE) return;
    if (ev->state.state == RTWS_CLIENT_RECONNECTING)
        fprintf(stderr, "-- connection lost; retrying in %u ms\n", ev->state.delay_ms);
    else if (ev->state.state == RTWS_CLIENT_FAILED)
        fprintf(stderr, "-- giving up: %s\n", rtws_err_str(ev->state.reason));
}

static void on_welcome(rtws_rt *rt, const char *u, const char *session, int resumed, void *user) {
    (void)rt;
    (void)session;
    (void)user;
    fprintf(stderr, "-- %s as %s\n", resumed ? "back" : "connected", u);
}

static void on_error(rtws_rt *rt, const char *code, const char *message, const char *id, void *u) {
    (void)rt;
    (void)id;
    (void)u;
    fprintf(stderr, "-- error %s: %s\n", code, message);
}

/* a chat line as {"text": line}, escaped by the writer */
static void say(rtws_rt *rt, const char *line) {
    char buf[2048];
    rtws_json_writer w;
    size_t n;
    rtws_json_writer_init(&w, buf, sizeof buf);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "text", 4);
    rtws_json_write_string(&w, line, strlen(line));
    rtws_json_write_object_end(&w);
    if (rtws_json_writer_finish(&w, &n) != RTWS_OK) {
        fprintf(stderr, "-- not sent (too long, or not UTF-8)\n");
        return;
    }
    if (rtws_rt_publish(rt, room, "message", buf, n, NULL) != RTWS_OK)
        fprintf(stderr, "-- not sent (too many unacknowledged messages)\n");
}

int main(int argc, char **argv) {
    const char *url = "ws://127.0.0.1:8080/ws", *token = NULL;
    rtws_ctx_config cfg;
    rtws_rt_config rc;
    rtws_ctx *ctx;
    rtws_rt *rt;
    struct pollfd fds[64];
    char line[1024];
    size_t have = 0;
    int i, running = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (i == 1 && argv[i][0] != '-') url = argv[i];
        else if (!strcmp(argv[i], "--room") && i + 1 < argc) snprintf(room, sizeof room, "room:%s", argv[++i]);
        else if (!strcmp(argv[i], "--token") && i + 1 < argc) token = argv[++i];
        else {
            fprintf(stderr, "chat_client: unexpected argument %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    memset(&cfg, 0, sizeof cfg);
    ctx = rtws_ctx_new(&cfg);
    memset(&rc, 0, sizeof rc);
    rc.client.url = url;
    rc.token = token;
    rc.on_event = on_event;
    rc.on_presence = on_presence;
    rc.on_welcome = on_welcome;
    rc.on_error = on_error;
    if (!ctx) {
        fprintf(stderr, "chat_client: no memory\n");
        return 1;
    }
    if (!(rt = rtws_rt_new(ctx, &rc, rtws_time_now_ms(), NULL))) {
        fprintf(stderr, "chat_client: bad url %s\n", url);
        rtws_ctx_free(ctx);
        return 1;
    }
    rtws_rt_subscribe(rt, room, on_msg, NULL);
    while (running) {
        int n = rtws_ctx_fill_pollfds(ctx, fds, 63);
        if (n > 63) n = 63;
        fds[n].fd = 0; /* our own fd in the same poll */
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        poll(fds, (nfds_t)n + 1, rtws_ctx_get_timeout_ms(ctx, rtws_time_now_ms()));
        rtws_ctx_service(ctx, fds, n, rtws_time_now_ms());
        if (fds[n].revents) {
            ssize_t r = read(0, line + have, sizeof line - 1 - have);
            if (r <= 0) {
                running = 0;
                break;
            }
            have += (size_t)r;
            for (;;) {
                char *nl = (char *)memchr(line, '\n', have);
                size_t k;
                if (!nl && have < sizeof line - 1) break;
                k = nl ? (size_t)(nl - line) : have;
                line[k] = '\0';
                if (!strcmp(line, "/quit")) running = 0;
                else if (!strcmp(line, "/away")) rtws_rt_set_presence(rt, room, "away");
                else if (!strcmp(line, "/back")) rtws_rt_set_presence(rt, room, "online");
                else if (k) say(rt, line);
                k += nl ? 1 : 0;
                memmove(line, line + k, have - k);
                have -= k;
            }
            rtws_ctx_run_timers(ctx, rtws_time_now_ms()); /* sends made outside a callback go out now */
        }
    }
    {
        uint64_t until = rtws_time_now_ms() + 2000; /* let the last messages get their acks */
        while (rtws_rt_get_unacked(rt) && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 50);
    }
    rtws_rt_free(rt);
    {
        uint64_t until = rtws_time_now_ms() + 500;
        while (rtws_ctx_get_conn_count(ctx) && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 50);
    }
    rtws_ctx_free(ctx);
    return 0;
}
