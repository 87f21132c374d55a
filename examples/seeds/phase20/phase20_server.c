/* phase20_server - the "Phase 20" server (seed 002): channels, presence with metadata and data
   sync (insert/update/delete, a snapshot on subscribe) in the document's {type, payload} messages,
   on the rtws router in own-protocol mode (README.md). Clients connect to ws://H:P/?token=JWT. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <string.h>

static rtws_router *R;
static char out[300000];     /* the message being written (the router copies what it sends) */
static const char *cur_chan; /* the channel whose presence list is being written */

/* the data sync db: records per channel, as JSON objects with an "id" */
#define NSTORE 256
static struct record { char chan[64], id[40], json[1024]; } db[NSTORE];
static unsigned next_id;

/* {"type":T[,"channel":C][,"payload":[{]] ... then finish(): [}][,"timestamp":now]}
   obj: 1 the payload is an object, 0 another value, -1 there is none (nor a timestamp) */
static void begin(rtws_json_writer *w, const char *type, const char *chan, int obj) {
    rtws_json_writer_init(w, out, sizeof out);
    rtws_json_write_object(w);
    rtws_json_write_str_field(w, "type", type);
    if (chan)
        rtws_json_write_str_field(w, "channel", chan);
    if (obj >= 0)
        rtws_json_write_key(w, "payload", 7);
    if (obj > 0)
        rtws_json_write_object(w);
}

/* to c, or (c NULL) to every subscriber of chan */
static void finish(rtws_json_writer *w, rtws_conn *c, const char *chan, int obj) {
    size_t n;
    rtws_err e;
    if (obj > 0)
        rtws_json_write_object_end(w);
    if (obj >= 0)
        rtws_json_write_int64_field(w, "timestamp", (int64_t)rtws_time_wall_ms());
    rtws_json_write_object_end(w);
    if ((e = rtws_json_writer_finish(w, &n)) == RTWS_OK && c)
        rtws_router_send_to_conn(R, c, RTWS_OP_TEXT, out, n);
    else if (e == RTWS_OK)
        rtws_router_send_to_channel(R, chan, RTWS_OP_TEXT, out, n, NULL);
}

static int send_error(rtws_conn *c, const char *message) {
    rtws_json_writer w;
    begin(&w, "error", NULL, 1);
    rtws_json_write_str_field(&w, "message", message);
    finish(&w, c, NULL, 1);
    return RTWS_ROUTER_HANDLED;
}

static int first_conn(rtws_router *r, rtws_conn *c, void *user) {
    (void)r;
    return (*(rtws_conn **)user = c) != NULL; /* stop at the first */
}

/* one entry of the presence list: {id, name, status, joinedAt (its connection's open, wall)} */
static void one_user(const char *uid, const char *status, size_t conns, void *user) {
    rtws_json_writer *w = (rtws_json_writer *)user;
    rtws_conn *c = NULL;
    rtws_conn_stats st = {0};
    rtws_json d;
    rtws_json_tok t[64];
    size_t cl = 0;
    char name[128] = ""; /* the JWT's "name" claim, else the user id */
    (void)conns;
    if (rtws_router_foreach_conn(R, uid, cur_chan, first_conn, &c)) { /* its connection there */
        const char *claims = rtws_router_get_claims(R, c, &cl);
        if (claims && rtws_json_parse(&d, claims, cl, t, 64, 0) == RTWS_OK)
            rtws_json_get_str(&d, 0, "name", name, sizeof name);
        rtws_conn_get_stats(c, &st);
    }
    rtws_json_write_object(w);
    rtws_json_write_str_field(w, "id", uid);
    rtws_json_write_str_field(w, "name", name[0] ? name : uid);
    rtws_json_write_str_field(w, "status", status);
    rtws_json_write_int64_field(
        w, "joinedAt", (int64_t)(st.opened_at_ms + rtws_time_wall_ms() - rtws_time_now_ms()));
    rtws_json_write_object_end(w);
}

/* the router tracks who is in a channel; every change goes out as the whole list */
static void on_presence(rtws_router *r, const char *ch, const char *uid, const char *st, void *u) {
    rtws_json_writer w;
    (void)u;
    begin(&w, "presence", ch, 1);
    rtws_json_write_str_field(&w, "event", st);
    rtws_json_write_str_field(&w, "user", uid);
    rtws_json_write_int64_field(&w, "onlineCount",
                                (int64_t)rtws_router_get_presence(r, ch, NULL, NULL));
    rtws_json_write_key(&w, "users", 5);
    rtws_json_write_array(&w);
    cur_chan = ch;
    rtws_router_get_presence(r, ch, one_user, &w);
    rtws_json_write_array_end(&w);
    finish(&w, NULL, ch, 1);
}

/* the fields of object obj of d, but "id" and the keys object sk of s has */
static void copy(rtws_json_writer *w, const rtws_json *d, int obj, const rtws_json *s, int sk) {
    char k[64];
    size_t n;
    int i;
    for (i = rtws_json_child(d, obj); i >= 0; i = rtws_json_next(d, i))
        if (rtws_json_unescape(d, i, k, sizeof k, &n) == RTWS_OK && strcmp(k, "id") &&
            rtws_json_get(s, sk, k) < 0)
            rtws_json_write_tok_field(w, k, d, i + 1);
}

/* sync {channel, action: insert|update|delete, resource, id, record|changes} */
static int on_sync(rtws_conn *c, const rtws_json *d, int p, const char *chan) {
    char action[16], id[40], res[24], rj[sizeof db[0].json];
    rtws_json_writer w;
    struct record *rec = NULL;
    rtws_json o;
    rtws_json_tok t[128];
    size_t i, n;
    rtws_json_get_str(d, p, "action", action, sizeof action);
    rtws_json_get_str(d, p, "id", id, sizeof id);
    rtws_json_get_str(d, p, "resource", res, sizeof res);
    int ins = !strcmp(action, "insert");
    for (i = 0; i < NSTORE && !rec; i++) /* a free slot, or the record */
        if (ins ? !db[i].id[0] : id[0] && !strcmp(db[i].id, id) && !strcmp(db[i].chan, chan))
            rec = &db[i];
    if (!rec || (!ins && strcmp(action, "update") && strcmp(action, "delete")))
        return send_error(c, rec ? "unknown sync action" : "no such record (or db full)");
    if (ins) {
        snprintf(rec->chan, sizeof rec->chan, "%s", chan);
        snprintf(rec->id, sizeof rec->id, "%s-%u", res[0] ? res : "item", ++next_id);
    }
    if (strcmp(action, "delete")) { /* {"id":..} + the old fields not in record/changes + those */
        int ch = rtws_json_get(d, p, ins ? "record" : "changes");
        rtws_json_writer_init(&w, rj, sizeof rj);
        rtws_json_write_object(&w);
        rtws_json_write_str_field(&w, "id", rec->id);
        if (rec->json[0] && rtws_json_parse(&o, rec->json, strlen(rec->json), t, 128, 0) == RTWS_OK)
            copy(&w, &o, 0, d, ch);
        copy(&w, d, ch, d, -1);
        rtws_json_write_object_end(&w);
        if (rtws_json_writer_finish(&w, &n) != RTWS_OK) {
            if (ins)
                rec->id[0] = 0;
            return send_error(c, "bad record");
        }
        memcpy(rec->json, rj, n + 1);
    } else
        rec->id[0] = rec->json[0] = 0; /* a free slot */
    begin(&w, "sync", chan, 1);
    rtws_json_write_str_field(&w, "action", action);
    if (!strcmp(action, "delete"))
        rtws_json_write_str_field(&w, "id", id);
    else
        rtws_json_write_raw_field(&w, "record", rec->json, strlen(rec->json));
    finish(&w, NULL, chan, 1);
    return RTWS_ROUTER_HANDLED;
}

/* every message, first: the document's {type, payload} protocol */
static int on_receive(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    static rtws_json_tok t[1024];
    rtws_json d;
    char type[64], chan[64];
    rtws_json_writer w;
    const char *raw;
    size_t i, n;
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws_json_parse(&d, (const char *)ev->message.data, ev->message.len, t, 1024, 0) != RTWS_OK)
        return send_error(c, "invalid message");
    rtws_json_get_str(&d, 0, "type", type, sizeof type);
    int p = rtws_json_get(&d, 0, "payload");
    rtws_json_get_str(&d, p, "channel", chan, sizeof chan);
    if (!strcmp(type, "ping")) { /* {"type":"pong","timestamp": the ping's} */
        begin(&w, "pong", NULL, -1);
        raw = rtws_json_raw(&d, rtws_json_get(&d, p, "timestamp"), &n); /* NULL: absent */
        rtws_json_write_raw_field(&w, "timestamp", raw ? raw : "null", raw ? n : 4);
        finish(&w, c, NULL, -1);
    } else if (!strcmp(type, "subscribe")) { /* a snapshot of the records, then presence */
        begin(&w, "snapshot", chan, 1);
        rtws_json_write_key(&w, "records", 7);
        rtws_json_write_array(&w);
        for (i = 0; i < NSTORE; i++)
            if (db[i].id[0] && !strcmp(db[i].chan, chan))
                rtws_json_write_raw(&w, db[i].json, strlen(db[i].json));
        rtws_json_write_array_end(&w);
        finish(&w, c, NULL, 1);
        if (rtws_router_subscribe(r, c, chan) != RTWS_OK)
            send_error(c, "cannot subscribe");
    } else if (!strcmp(type, "unsubscribe")) {
        rtws_router_unsubscribe(r, c, chan);
    } else if (!strcmp(type, "channel_message")) { /* {type: event, channel, payload, timestamp} */
        if (rtws_json_get_str(&d, p, "event", type, sizeof type) <= 0)
            return send_error(c, "payload.event required");
        begin(&w, type, chan, 0);
        raw = rtws_json_raw(&d, rtws_json_get(&d, p, "payload"), &n);
        rtws_json_write_raw(&w, raw ? raw : "null", raw ? n : 4);
        finish(&w, NULL, chan, 0);
    } else if (!strcmp(type, "presence")) {
        rtws_json_get_str(&d, p, "status", type, sizeof type);
        if (rtws_router_set_presence(r, c, chan, type) != RTWS_OK)
            send_error(c, "subscribe first (status: 1-32 bytes)");
    } else {
        return strcmp(type, "sync") ? send_error(c, "unknown type") : on_sync(c, &d, p, chan);
    }
    return RTWS_ROUTER_HANDLED;
}

int main(int argc, char **argv) {
    rtws_router_config rc = {0};
    rtws_ctx_config cfg = {0};
    rtws_server_opts so = {"127.0.0.1", 8080, 0, NULL, 0};
    rtws_ctx *ctx;
    int i;
    if ((i = rtws_server_opts_parse(&so, &cfg, &rc, argc, argv,
                                    "The Phase 20 server: channels, presence, data sync at "
                                    "ws://H:P/?token=JWT\n(--jwt-secret: its HS256 key; sub: "
                                    "the user id, name: for presence).")))
        return i < 0 ? 2 : 0;
    rc.builtin_protocol_off = 1; /* the document's protocol, not rtws's */
    rc.on_receive = on_receive;
    rc.on_presence = on_presence;
    if (!(R = rtws_router_new(&rc)))
        return fprintf(stderr, "phase20_server: no memory\n"), 1;
    rtws_router_install(R, &cfg);
    if (!(ctx = rtws_ctx_new(&cfg)))
        return 1;
    i = rtws_ctx_serve(ctx, so.host, so.port, 2000) != RTWS_OK; /* to SIGINT/SIGTERM; 1001 */
    rtws_router_free(R);
    rtws_ctx_free(ctx);
    return i;
}
