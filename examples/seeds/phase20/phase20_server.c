/* phase20_server - the "Phase 20" server (seed 002): channels, presence with metadata and data
   sync (insert/update/delete, a snapshot on subscribe) in the document's {type, payload} messages,
   on the rtws router in own-protocol mode (README.md). Clients connect to ws://H:P/?token=JWT.
   usage: phase20_server [--host H] [--port P] [--jwt-secret S (HS256; sub: user, name: shown)] */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <string.h>

static rtws_router *R;
static const char *cur_chan; /* the channel whose presence list is being written */

/* the data sync store: records per channel, as JSON objects with an "id" */
static struct record {
    char chan[64], id[40], json[1024];
} store[256];
static unsigned next_id;

static void usage(FILE *f) {
    fprintf(f, "usage: phase20_server [--host H (127.0.0.1)] [--port P (8080; 0: any)] [--help]\n"
               "The Phase 20 server: channels, presence, data sync at ws://H:P/?token=JWT.\n"
               "  --jwt-secret S   HS256 secret of ?token= (sub: user id, name: for presence)\n");
}

static void put_str(rtws_json_writer *w, const char *k, const char *v) {
    rtws_json_write_key(w, k, strlen(k));
    rtws_json_write_string(w, v, strlen(v));
}

/* {"type":T[,"channel":C][,"payload":[{]] ... then finish(): [}][,"timestamp":now]}
   obj: 1 the payload is an object, 0 another value, -1 there is none (nor a timestamp) */
static void begin(rtws_json_writer *w, char *buf, size_t cap, const char *type, const char *chan, int obj) {
    rtws_json_writer_init(w, buf, cap);
    rtws_json_write_object(w);
    put_str(w, "type", type);
    if (chan) put_str(w, "channel", chan);
    if (obj >= 0) rtws_json_write_key(w, "payload", 7);
    if (obj > 0) rtws_json_write_object(w);
}

/* to c, or (c NULL) to every subscriber of chan */
static void finish(rtws_json_writer *w, char *buf, rtws_conn *c, const char *chan, int obj) {
    size_t n;
    if (obj > 0) rtws_json_write_object_end(w);
    if (obj >= 0) rtws_json_write_key(w, "timestamp", 9), rtws_json_write_int64(w, (int64_t)rtws_time_wall_ms());
    rtws_json_write_object_end(w);
    if (rtws_json_writer_finish(w, &n) != RTWS_OK) return;
    if (c) rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, buf, n);
    else rtws_router_send_to_channel(R, chan, RTWS_OP_TEXT, buf, n, NULL);
}

static int send_error(rtws_conn *c, const char *message) {
    char buf[256];
    rtws_json_writer w;
    begin(&w, buf, sizeof buf, "error", NULL, 1);
    put_str(&w, "message", message);
    finish(&w, buf, c, NULL, 1);
    return RTWS_ROUTER_HANDLED;
}

/* string field key of object obj into out ("" when absent) */
static void str(const rtws_json *d, int obj, const char *key, char *out, size_t cap) {
    size_t n;
    int v = rtws_json_get(d, obj, key);
    if (v < 0 || rtws_json_unescape(d, v, out, cap, &n) != RTWS_OK) out[0] = 0;
}

static int first_conn(rtws_router *r, rtws_conn *c, void *user) {
    (void)r;
    return (*(rtws_conn **)user = c) != NULL; /* stop at the first */
}

/* one entry of the presence list: {id, name, status, joinedAt} */
static void one_user(const char *uid, const char *status, size_t conns, void *user) {
    rtws_json_writer *w = (rtws_json_writer *)user;
    rtws_conn *c = NULL;
    rtws_conn_stats st = {0};
    rtws_json d;
    rtws_json_tok t[64];
    size_t cl = 0;
    int v = -1;
    (void)conns;
    if (rtws_router_foreach_conn(R, uid, cur_chan, first_conn, &c)) { /* the user's connection there */
        const char *claims = rtws_router_get_claims(R, c, &cl);        /* its JWT's payload */
        if (claims && rtws_json_parse(&d, claims, cl, t, 64, 0) == RTWS_OK) v = rtws_json_get(&d, 0, "name");
        rtws_conn_get_stats(c, &st);
    }
    rtws_json_write_object(w);
    put_str(w, "id", uid);
    rtws_json_write_key(w, "name", 4);
    if (v >= 0) rtws_json_write_tok(w, &d, v);
    else rtws_json_write_string(w, uid, strlen(uid));
    put_str(w, "status", status);
    rtws_json_write_key(w, "joinedAt", 8); /* when that connection opened, wall clock */
    rtws_json_write_int64(w, (int64_t)(st.opened_at_ms + rtws_time_wall_ms() - rtws_time_now_ms()));
    rtws_json_write_object_end(w);
}

/* the router tracks who is in a channel; every change goes out as the whole list */
static void on_presence(rtws_router *r, const char *chan, const char *uid, const char *status, void *u) {
    static char buf[65536];
    rtws_json_writer w;
    (void)u;
    begin(&w, buf, sizeof buf, "presence", chan, 1);
    put_str(&w, "event", status);
    put_str(&w, "user", uid);
    rtws_json_write_key(&w, "onlineCount", 11);
    rtws_json_write_int64(&w, (int64_t)rtws_router_get_presence(r, chan, NULL, NULL));
    rtws_json_write_key(&w, "users", 5);
    rtws_json_write_array(&w);
    cur_chan = chan;
    rtws_router_get_presence(r, chan, one_user, &w);
    rtws_json_write_array_end(&w);
    finish(&w, buf, NULL, chan, 1);
}

/* the fields of object obj of d, but "id" and the keys object sk of s has */
static void copy_fields(rtws_json_writer *w, const rtws_json *d, int obj, const rtws_json *s, int sk) {
    char k[64];
    size_t n;
    int i;
    for (i = rtws_json_child(d, obj); i >= 0; i = rtws_json_next(d, i))
        if (rtws_json_unescape(d, i, k, sizeof k, &n) == RTWS_OK && strcmp(k, "id") && rtws_json_get(s, sk, k) < 0)
            rtws_json_write_key(w, k, n), rtws_json_write_tok(w, d, i + 1);
}

/* sync {channel, action: insert|update|delete, resource, id, record|changes} */
static int on_sync(rtws_conn *c, const rtws_json *d, int p, const char *chan) {
    char action[16], id[40], res[24], buf[2048], out[sizeof store[0].json];
    rtws_json_writer w;
    struct record *rec = NULL;
    rtws_json o;
    rtws_json_tok t[128];
    size_t i, n;
    int ins;
    str(d, p, "action", action, sizeof action);
    str(d, p, "id", id, sizeof id);
    str(d, p, "resource", res, sizeof res);
    ins = !strcmp(action, "insert");
    for (i = 0; i < sizeof store / sizeof store[0] && !rec; i++) /* a free slot, or the record */
        if (ins ? !store[i].id[0] : id[0] && !strcmp(store[i].id, id) && !strcmp(store[i].chan, chan))
            rec = &store[i];
    if (!rec || (!ins && strcmp(action, "update") && strcmp(action, "delete")))
        return send_error(c, rec ? "unknown sync action" : "no such record (or store full)");
    if (ins) {
        snprintf(rec->chan, sizeof rec->chan, "%s", chan);
        snprintf(rec->id, sizeof rec->id, "%s-%u", res[0] ? res : "item", ++next_id);
        rec->json[0] = 0;
    }
    if (!strcmp(action, "delete")) {
        rec->id[0] = 0;
    } else { /* {"id":..} + the old fields not in the record/changes + those */
        int ch = rtws_json_get(d, p, ins ? "record" : "changes");
        rtws_json_writer_init(&w, out, sizeof out);
        rtws_json_write_object(&w);
        put_str(&w, "id", rec->id);
        if (rec->json[0] && rtws_json_parse(&o, rec->json, strlen(rec->json), t, 128, 0) == RTWS_OK)
            copy_fields(&w, &o, 0, d, ch);
        copy_fields(&w, d, ch, d, -1);
        rtws_json_write_object_end(&w);
        if (rtws_json_writer_finish(&w, &n) != RTWS_OK) {
            if (ins) rec->id[0] = 0;
            return send_error(c, "bad record");
        }
        memcpy(rec->json, out, n + 1);
    }
    begin(&w, buf, sizeof buf, "sync", chan, 1);
    put_str(&w, "action", action);
    if (!strcmp(action, "delete")) put_str(&w, "id", id);
    else rtws_json_write_key(&w, "record", 6), rtws_json_write_raw(&w, rec->json, strlen(rec->json));
    finish(&w, buf, NULL, chan, 1);
    return RTWS_ROUTER_HANDLED;
}

/* every message, first: the document's {type, payload} protocol */
static int on_receive(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    static rtws_json_tok t[1024];
    rtws_json d;
    static char buf[300000];
    char type[64], chan[64];
    rtws_json_writer w;
    size_t i;
    int p, v;
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 1024, 0) != RTWS_OK)
        return send_error(c, "invalid message");
    str(&d, 0, "type", type, sizeof type);
    p = rtws_json_get(&d, 0, "payload");
    str(&d, p, "channel", chan, sizeof chan);
    if (!strcmp(type, "ping")) { /* {"type":"pong","timestamp": the ping's} */
        begin(&w, buf, sizeof buf, "pong", NULL, -1);
        rtws_json_write_key(&w, "timestamp", 9);
        if ((v = rtws_json_get(&d, p, "timestamp")) >= 0) rtws_json_write_tok(&w, &d, v);
        else rtws_json_write_null(&w);
        finish(&w, buf, c, NULL, -1);
    } else if (!strcmp(type, "subscribe")) { /* a snapshot of the records, then presence */
        begin(&w, buf, sizeof buf, "snapshot", chan, 1);
        rtws_json_write_key(&w, "records", 7);
        rtws_json_write_array(&w);
        for (i = 0; i < sizeof store / sizeof store[0]; i++)
            if (store[i].id[0] && !strcmp(store[i].chan, chan))
                rtws_json_write_raw(&w, store[i].json, strlen(store[i].json));
        rtws_json_write_array_end(&w);
        finish(&w, buf, c, NULL, 1);
        if (rtws_router_subscribe(r, c, chan) != RTWS_OK) send_error(c, "cannot subscribe");
    } else if (!strcmp(type, "unsubscribe")) {
        rtws_router_unsubscribe(r, c, chan);
    } else if (!strcmp(type, "channel_message")) { /* {type: event, channel, payload, timestamp} */
        str(&d, p, "event", type, sizeof type);
        if (!type[0]) return send_error(c, "payload.event required");
        begin(&w, buf, sizeof buf, type, chan, 0);
        if ((v = rtws_json_get(&d, p, "payload")) >= 0) rtws_json_write_tok(&w, &d, v);
        else rtws_json_write_null(&w);
        finish(&w, buf, NULL, chan, 0);
    } else if (!strcmp(type, "presence")) {
        str(&d, p, "status", type, sizeof type);
        if (rtws_router_set_presence(r, c, chan, type) != RTWS_OK) send_error(c, "subscribe first (status: 1-32 bytes)");
    } else {
        return strcmp(type, "sync") ? send_error(c, "unknown type") : on_sync(c, &d, p, chan);
    }
    return RTWS_ROUTER_HANDLED;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *secret = NULL;
    int port = 8080, bound = 0, i;
    rtws_router_config rc = {0};
    rtws_ctx_config cfg = {0};
    rtws_ctx *ctx;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) sscanf(argv[++i], "%d", &port);
        else if (!strcmp(argv[i], "--jwt-secret") && i + 1 < argc) secret = argv[++i];
        else return fprintf(stderr, "phase20_server: unknown or incomplete option %s\n", argv[i]), usage(stderr), 2;
    }
    rc.builtin_protocol_off = 1; /* the document's protocol, not rtws's */
    rc.on_receive = on_receive;
    rc.on_presence = on_presence;
    rc.jwt_secret = secret;
    rc.jwt_secret_len = secret ? strlen(secret) : 0;
    if (!(R = rtws_router_new(&rc))) return fprintf(stderr, "phase20_server: no memory\n"), 1;
    rtws_router_install(R, &cfg);
    if (!(ctx = rtws_ctx_new(&cfg)) || rtws_ctx_listen(ctx, host, port, &bound) != RTWS_OK)
        return fprintf(stderr, "phase20_server: cannot listen on %s:%d\n", host, port), 1;
    printf("listening on %s:%d\n", host, bound);
    fflush(stdout);
    for (;;) rtws_ctx_run_once(ctx, 1000); /* until a signal ends the process */
}
