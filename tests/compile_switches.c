/* Compile test of the switches (RTWS_NO_HOST, _JSON, _REALTIME, _CLIENT,
   _SERVER, _DEFLATE, _REDIS), built by tests/compile_switches.sh once per combination, as C99
   and as C++11. It calls a function of every part the switches leave in, so
   a part whose declarations stay while its code goes (a misspelt switch)
   fails to link; for every part left out it declares a typedef of the same
   name as one of its functions, which does not compile while the header still
   declares that function. The script checks with nm that the code is gone.
   No sockets are opened: the host calls take arguments they refuse at once. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <string.h>

/* What the switches leave, as CONFIGURATION in rtws.h says (RTWS_NO_JSON
   implies RTWS_NO_REALTIME there) */
#if !defined(RTWS_NO_REALTIME) && !defined(RTWS_NO_SERVER)
#define SW_ROUTER 1
#endif
#if !defined(RTWS_NO_REALTIME) && !defined(RTWS_NO_CLIENT) && !defined(RTWS_NO_HOST)
#define SW_RT 1
#endif
#if defined(RTWS_NO_JSON) && !defined(RTWS_NO_REALTIME)
#error "RTWS_NO_JSON should imply RTWS_NO_REALTIME"
#endif

/* absence probes: each typedef clashes with a declaration left in by mistake */
#if defined(RTWS_NO_HOST)
typedef int rtws_ctx_new, rtws_ctx_run_once, rtws_conn_get_fd, rtws_tls_err_str;
#endif
#if defined(RTWS_NO_HOST) || defined(RTWS_NO_CLIENT)
typedef int rtws_ctx_connect, rtws_ctx_connect_addr, rtws_client_new, rtws_client_free;
#endif
#if defined(RTWS_NO_HOST) || defined(RTWS_NO_SERVER)
typedef int rtws_ctx_listen, rtws_ctx_listen_tls;
#endif
#if defined(RTWS_NO_CLIENT)
typedef int rtws_conn_start, rtws_http_parse_response, rtws_url_parse, rtws_url_target;
#endif
#if defined(RTWS_NO_SERVER)
typedef int rtws_http_parse_request, rtws_http_check_upgrade, rtws_http_get_query, rtws_http_get_cookie,
    rtws_http_match;
#endif
#if defined(RTWS_NO_JSON)
typedef int rtws_json_parse, rtws_json_writer_init;
#endif
#if defined(RTWS_NO_REALTIME)
typedef int rtws_jwt_hs256_sign, rtws_jwt_hs256_verify;
#endif
#if defined(RTWS_NO_REDIS)
typedef int rtws_resp_parse, rtws_resp_encode_command;
#endif
#if defined(RTWS_NO_REDIS) || defined(RTWS_NO_HOST) || defined(RTWS_NO_CLIENT)
typedef int rtws_redis_new, rtws_redis_command, rtws_redis_free;
#endif
#if defined(RTWS_NO_HOST) || defined(RTWS_NO_CLIENT)
typedef int rtws_stream_new, rtws_stream_connect;
#endif
#if !defined(SW_ROUTER)
typedef int rtws_router_new, rtws_router_handle_event, rtws_router_publish;
#endif
#if !defined(SW_ROUTER) || defined(RTWS_NO_HOST)
typedef int rtws_router_install;
#endif
#if !defined(SW_RT)
typedef int rtws_rt_new, rtws_rt_publish;
#endif
#if defined(RTWS_NO_DEFLATE)
typedef int rtws_inflate_feed, rtws_deflate_compress, rtws_z_err_str;
#endif
#if defined(RTWS_NO_HOST) || defined(RTWS_NO_THREADS)
typedef int rtws_ctx_post, rtws_ctx_post_owned, rtws_ctx_post_close, rtws_ctx_get_post_stats;
#endif

static int fails;
#define SW_CHECK(x)                                                                               \
    do {                                                                                          \
        if (!(x)) {                                                                               \
            fails++;                                                                              \
            printf("FAILED line %d: %s\n", __LINE__, #x);                                         \
        }                                                                                         \
    } while (0)

static int sw_random(void *buf, size_t len, void *user) {
    (void)user;
    memset(buf, 7, len);
    return 0;
}

static const char sw_request[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

static void sw_layers_0_to_3(void) {
    uint8_t hdr[RTWS_FRAME_HEADER_MAX], dig[20];
    rtws_frame_header h;
    char acc[29];
    size_t scanned = 0;
    rtws_config cfg;
    rtws_conn c;

    SW_CHECK(strcmp(rtws_err_str(RTWS_OK), "ok") == 0); /* 0 base */
    rtws_sha1("abc", 3, dig);
    SW_CHECK(dig[0] == 0xA9);
    SW_CHECK(rtws_frame_header_encode(hdr, 1, RTWS_OP_TEXT, 5, NULL) == 2); /* 1 frame */
    SW_CHECK(rtws_frame_header_decode(hdr, 2, &h) == RTWS_OK && h.len == 5);
    SW_CHECK(rtws_http_head_end(sw_request, sizeof sw_request - 1, &scanned) == /* 2 */
             sizeof sw_request - 1);
    rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    SW_CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

    memset(&cfg, 0, sizeof cfg); /* 3 conn, server role */
    cfg.role = RTWS_SERVER;
    cfg.random = sw_random;
    rtws_conn_init(&c, &cfg);
    rtws_conn_recv(&c, sw_request, sizeof sw_request - 1, 1, NULL);
#if !defined(RTWS_NO_SERVER)
    SW_CHECK(rtws_conn_get_state(&c) == RTWS_STATE_OPEN);
    {
        rtws_http req;
        rtws_upgrade u;
        SW_CHECK(rtws_http_parse_request(sw_request, sizeof sw_request - 1, &req, 64, NULL) ==
                 RTWS_OK);
        SW_CHECK(rtws_http_check_upgrade(&req, &u) == 101);
    }
#else /* the server handshake is left out: the connection fails */
    SW_CHECK(rtws_conn_get_state(&c) == RTWS_STATE_CLOSED);
    SW_CHECK(rtws_conn_get_error(&c) == RTWS_ERR_INVALID);
#endif
    rtws_conn_free(&c);

#if !defined(RTWS_NO_CLIENT)
    {
        static const char res[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        rtws_client_opts o;
        rtws_http r;
        rtws_url u;
        memset(&o, 0, sizeof o);
        o.host = "x";
        cfg.role = RTWS_CLIENT;
        rtws_conn_init(&c, &cfg);
        SW_CHECK(rtws_conn_start(&c, &o, 1) == RTWS_OK);
        SW_CHECK(rtws_conn_get_state(&c) == RTWS_STATE_HANDSHAKE);
        rtws_conn_free(&c);
        SW_CHECK(rtws_http_parse_response(res, sizeof res - 1, &r, 64, NULL) == RTWS_OK &&
                 r.status == 101);
        SW_CHECK(rtws_url_parse("ws://x:81/a", 11, &u, NULL) == RTWS_OK && u.port == 81);
    }
#endif
}

#if !defined(RTWS_NO_HOST)
static void sw_layers_4_5(void) {
    rtws_ctx_config cfg;
    rtws_ctx *ctx;
    memset(&cfg, 0, sizeof cfg);
    cfg.conn.random = sw_random;
    ctx = rtws_ctx_new(&cfg); /* 4 host: no socket yet */
    SW_CHECK(ctx != NULL);
    if (!ctx) return;
    SW_CHECK(rtws_ctx_get_conn_count(ctx) == 0);
#if !defined(RTWS_NO_SERVER)
    SW_CHECK(rtws_ctx_listen(ctx, "127.0.0.1", -1, NULL) == RTWS_ERR_INVALID);
#endif
#if !defined(RTWS_NO_CLIENT)
    {
        rtws_err err = RTWS_OK;
        rtws_client_config cc;
        memset(&cc, 0, sizeof cc);
        SW_CHECK(rtws_ctx_connect(ctx, "bad url", NULL, 1, &err) == NULL && err == RTWS_ERR_URL);
        SW_CHECK(rtws_client_new(ctx, &cc, 1, &err) == NULL && err == RTWS_ERR_INVALID);
    }
#endif
#if !defined(RTWS_NO_THREADS) /* posting is off in this context */
    SW_CHECK(rtws_ctx_post(ctx, 1, RTWS_OP_BINARY, "x", 1) == RTWS_ERR_INVALID);
#endif
    SW_CHECK(rtws_tls_err_str(0) != NULL); /* 5 tls */
    (void)rtws_ctx_get_tls_error(ctx);
#if defined(SW_RT) /* 7: the realtime client */
    {
        rtws_err err = RTWS_OK;
        rtws_rt_config rc;
        memset(&rc, 0, sizeof rc);
        SW_CHECK(rtws_rt_new(ctx, &rc, 1, &err) == NULL && err == RTWS_ERR_INVALID);
    }
#endif
    rtws_ctx_free(ctx);
}
#endif

#if !defined(RTWS_NO_DEFLATE)
static void sw_layer_1_deflate(void) { /* "hello" through the codec and back */
    rtws_deflate d;
    rtws_inflate z;
    uint8_t c[64], o[16];
    size_t used = 0, clen = 0, olen = 0;
    SW_CHECK(rtws_deflate_init(&d, NULL, NULL, 0) == RTWS_Z_OK);
    SW_CHECK(rtws_deflate_compress(&d, (const uint8_t *)"hello", 5, &used, c, sizeof c, &clen,
                                   RTWS_Z_SYNC_FLUSH) == RTWS_Z_OK);
    rtws_deflate_free(&d);
    SW_CHECK(rtws_inflate_init(&z, NULL, NULL, 0) == RTWS_Z_OK);
    SW_CHECK(rtws_inflate_feed(&z, c, clen, &used, o, sizeof o, &olen) == RTWS_Z_OK);
    SW_CHECK(olen == 5 && memcmp(o, "hello", 5) == 0);
    rtws_inflate_free(&z);
    SW_CHECK(strcmp(rtws_z_err_str(RTWS_Z_OK), rtws_z_err_str(RTWS_Z_END)) != 0);
}
#endif

#if !defined(RTWS_NO_JSON)
static void sw_layer_6(void) {
    rtws_json_tok t[4];
    rtws_json d;
    SW_CHECK(rtws_json_parse(&d, "[1,2]", 5, t, 4, 0) == RTWS_OK && d.count == 3);
}
#endif

#if !defined(RTWS_NO_REDIS)
static void sw_layer_6a(void) {
    rtws_resp_parser p;
    size_t used = 0;
    const char *argv[] = {"PING"};
    char buf[32];
    SW_CHECK(rtws_resp_encode_command(buf, sizeof buf, 1, argv, NULL) == 14);
    rtws_resp_init(&p, NULL);
    SW_CHECK(rtws_resp_parse(&p, buf, 14, &used) == RTWS_OK && used == 14);
    rtws_resp_free(&p);
#if !defined(RTWS_NO_HOST) && !defined(RTWS_NO_CLIENT)
    { /* refused before any socket: not a redis:// URL */
        rtws_redis_config rc;
        rtws_err err = RTWS_OK;
        memset(&rc, 0, sizeof rc);
        rc.url = "http://x";
        SW_CHECK(rtws_redis_new(NULL, &rc, 0, &err) == NULL);
        SW_CHECK(rtws_stream_new(NULL, NULL, &err) == NULL && err == RTWS_ERR_INVALID);
    }
#endif
}
#endif

#if !defined(RTWS_NO_REALTIME)
static void sw_layer_7(void) {
    char tok[256], user[64];
    size_t n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", "k", 1, tok, sizeof tok);
    SW_CHECK(n > 0);
    SW_CHECK(rtws_jwt_hs256_verify(tok, n, "k", 1, 0, 0, user) == RTWS_OK &&
             strcmp(user, "u1") == 0);
#if defined(SW_ROUTER)
    {
        rtws_router *r = rtws_router_new(NULL);
        SW_CHECK(r != NULL);
#if !defined(RTWS_NO_HOST)
        if (r) {
            rtws_ctx_config cfg;
            memset(&cfg, 0, sizeof cfg);
            rtws_router_install(r, &cfg);
            SW_CHECK(cfg.conn.role == RTWS_SERVER);
        }
#endif
        if (r) rtws_router_free(r);
    }
#endif
}
#endif

int main(void) {
    sw_layers_0_to_3();
#if !defined(RTWS_NO_DEFLATE)
    sw_layer_1_deflate();
#endif
#if !defined(RTWS_NO_HOST)
    sw_layers_4_5();
#endif
#if !defined(RTWS_NO_JSON)
    sw_layer_6();
#endif
#if !defined(RTWS_NO_REDIS)
    sw_layer_6a();
#endif
#if !defined(RTWS_NO_REALTIME)
    sw_layer_7();
#endif
    printf("switches:");
#if defined(RTWS_NO_HOST)
    printf(" NO_HOST");
#endif
#if defined(RTWS_NO_JSON)
    printf(" NO_JSON");
#endif
#if defined(RTWS_NO_REALTIME)
    printf(" NO_REALTIME");
#endif
#if defined(RTWS_NO_CLIENT)
    printf(" NO_CLIENT");
#endif
#if defined(RTWS_NO_SERVER)
    printf(" NO_SERVER");
#endif
#if defined(RTWS_NO_DEFLATE)
    printf(" NO_DEFLATE");
#endif
#if defined(RTWS_NO_REDIS)
    printf(" NO_REDIS");
#endif
    printf(", %d failed\n", fails);
    return fails != 0;
}
