/* lws_echo - libwebsockets echo server for the rtws bench.

   usage: ./lws_echo PORT   (prints "listening on 127.0.0.1:PORT")
   One process, one service thread, the library's own poll loop. Messages are
   reassembled from RECEIVE pieces and echoed whole with the same opcode;
   pipelined messages wait in a per-connection FIFO and are written while
   lws_send_pipe_choked() says the socket takes more. No compression, UTF-8
   validation on (LWS_SERVER_OPTION_VALIDATE_UTF8, as RFC 6455 asks and rtws
   does), 64 KiB receive buffer and no send-size cap (no artificial limit),
   16 MiB message cap (as rtws), pings after 30 s of silence. 127.0.0.1 only. */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (16u << 20)

typedef struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char *buf; /* LWS_PRE bytes of headroom, then the payload */
} msg;

typedef struct session {
    msg *head, *tail;    /* waiting to be echoed */
    unsigned char *rx;   /* message being reassembled (LWS_PRE headroom) */
    size_t rx_len, rx_cap;
    int rx_binary;
} session;

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void drop_all(session *s) {
    while (s->head) {
        msg *m = s->head;
        s->head = m->next;
        free(m->buf);
        free(m);
    }
    s->tail = NULL;
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    session *s = (session *)user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        break;
    case LWS_CALLBACK_RECEIVE: {
        if (lws_is_first_fragment(wsi)) {
            s->rx_len = 0;
            s->rx_binary = lws_frame_is_binary(wsi);
        }
        if (s->rx_len + len > MAX_MESSAGE) return -1;
        if (LWS_PRE + s->rx_len + len > s->rx_cap) {
            size_t ncap = s->rx_cap ? s->rx_cap : 4096;
            unsigned char *nb;
            while (ncap < LWS_PRE + s->rx_len + len) ncap *= 2;
            nb = (unsigned char *)realloc(s->rx, ncap);
            if (!nb) return -1;
            s->rx = nb;
            s->rx_cap = ncap;
        }
        memcpy(s->rx + LWS_PRE + s->rx_len, in, len);
        s->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            msg *m = (msg *)malloc(sizeof *m);
            if (!m) return -1;
            m->next = NULL;
            m->len = s->rx_len;
            m->binary = s->rx_binary;
            m->buf = s->rx; /* hand the buffer over; the next message gets a new one */
            s->rx = NULL;
            s->rx_len = s->rx_cap = 0;
            if (s->tail) s->tail->next = m;
            else s->head = m;
            s->tail = m;
            lws_callback_on_writable(wsi);
        }
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        while (s->head) {
            msg *m = s->head;
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len,
                              m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            if (n < (int)m->len) return -1;
            s->head = m->next;
            if (!s->head) s->tail = NULL;
            free(m->buf);
            free(m);
            if (s->head && lws_send_pipe_choked(wsi)) {
                lws_callback_on_writable(wsi);
                break;
            }
        }
        break;
    case LWS_CALLBACK_CLOSED:
        drop_all(s);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", callback, sizeof(session), 65536, 0, NULL, (size_t)MAX_MESSAGE + 16},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static const lws_retry_bo_t heartbeat = {NULL, 0, 0, 30, 60, 0};

int main(int argc, char **argv) {
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port = argc > 1 ? atoi(argv[1]) : 9001;
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.retry_and_idle_policy = &heartbeat;
    info.count_threads = 1;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_echo: cannot create the context on port %d\n", port);
        return 1;
    }
    vh = lws_get_vhost_by_name(ctx, "default");
    printf("listening on 127.0.0.1:%d\n", vh ? lws_get_vhost_listen_port(vh) : port);
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop && lws_service(ctx, 0) >= 0) {
    }
    lws_context_destroy(ctx);
    return 0;
}
