/* The router's Redis engine as a cluster: a real redis-server on a free
   127.0.0.1 port and three examples/chat_server nodes (--redis) started by
   this test, stopped by PID.
   1. 300 clients, 100 per node, all in one channel; three of them (one per
      node) publish 20 numbered messages each: every client gets all 60
      exactly once, seq 1 apart (in order, no gap), and each publisher gets
      its acks after the message itself.
   2. Two publishers (nodes 0 and 1) stream 90 numbered messages into a
      second channel; node 2 is killed with SIGKILL during the stream. Its
      100 clients reconnect to nodes 0/1 with ?session= and subscribe with
      since = their last seq: each of the 300 ends with all 90, 0 lost, 0
      duplicated, in order.
   3. Redis itself is SIGKILLed under a stream of 60 numbered messages
      (published by an rtws_rt client on node 0) and restarted a second
      later on the same port from its append-only file (appendfsync
      always): the nodes reconnect with backoff, report the outage in
      /ws/status, refuse publishes meanwhile with "overloaded" (rtws_rt
      sends them again, same ids), and every client ends with all 60: 0
      lost, 0 duplicated, no reset.
   4. max_conns_per_user (5) across nodes: two more nodes with
      --jwt-secret; 7 connections of one user (a token each), alternating
      nodes, at once: 5 welcomed, 2 closed with 1008; after 2 of them close,
      2 new ones are welcomed.
   Then it prints (measures, checks nothing) the publish-to-delivery latency
   p50 over 40 publishes: same node and another node of the cluster, and
   one node without Redis (the memory engine). Nodes are build/asan_chat_server
   unless RTWS_CHAT_SERVER names another (build/chat_server for figures).
   Without redis-server (tests/deps.sh installs it when root) it says it
   skipped; RTWS_REQUIRE_ALL=1 makes that a failure. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "redis_proc.h"

#define NODES 3
#define CLIENTS 300
#define PER_PUB 20   /* phase 1: messages per publisher (3 publishers) */
#define STREAM 90    /* phase 2: numbered messages */
#define RSTREAM 60   /* phase 3: numbered messages across a Redis restart */

static const char *node_bin = "build/asan_chat_server"; /* RTWS_CHAT_SERVER: another */
static rtws_ctx *ctx;
static int node_port[NODES + 2]; /* + the two nodes with --jwt-secret of phase 4 */
static pid_t node_pid[NODES + 2];

static char redis_dir[64] = "build/e2e_cluster_redis.XXXXXX";
/* redis-server's arguments: an append-only file in redis_dir (fsync on
   every write: what was acked survives a SIGKILL) */
static const char *const redis_aof[] = {"--appendonly", "yes", "--appendfsync", "always",
                                        "--dir", redis_dir, NULL};

/* A chat_server node on an OS-chosen port: its pid, *port from its
   "listening on" line. */
static const char *node_secret; /* --jwt-secret for the next start_node */
static pid_t start_node(const char *redis_url, int *port) { /* redis_url NULL: memory */
    int fds[2];
    pid_t pid;
    FILE *f;
    char line[256];
    *port = 0;
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (redis_url && node_secret)
            execl(node_bin, node_bin, "--host", "127.0.0.1", "--port", "0", "--redis", redis_url,
                  "--jwt-secret", node_secret, (char *)NULL);
        else if (redis_url)
            execl(node_bin, node_bin, "--host", "127.0.0.1", "--port", "0", "--redis", redis_url,
                  (char *)NULL);
        else
            execl(node_bin, node_bin, "--host", "127.0.0.1", "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "listening on 127.0.0.1:%d", port) == 1) break;
    if (f) fclose(f); /* the node's later lines go to a closed pipe: it ignores SIGPIPE */
    return pid;
}

/* ---- clients ---- */
typedef struct peer {
    rtws_conn *c;
    int idx, node, open, subscribed, reconnects, welcomed;
    char session[64];
    const char *chan;   /* the channel this phase uses */
    uint64_t last;      /* the highest seq of chan received */
    uint64_t base;      /* chan's seq at the first subscribe */
    int got, dups, gaps, resets, acks, early_acks, refused;
    int resume;         /* subscribe with since = last after the next welcome */
    int resumed;        /* welcomes with "resumed":true */
    uint64_t arrived_us; /* when the latest message came */
    char user[64];      /* from the first welcome */
    const char *token;  /* ?token= on connect */
    int close_code;
    int same_user;      /* welcomes naming that user again */
} peer;

static peer peers[CLIENTS + 12];

static uint64_t num_after(const char *s, size_t n, const char *key) {
    size_t kl = strlen(key), i;
    uint64_t v = 0;
    for (i = 0; i + kl <= n; i++)
        if (memcmp(s + i, key, kl) == 0) {
            for (i += kl; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10u + (uint64_t)(s[i] - '0');
            return v;
        }
    return 0;
}

static void publish(peer *p, const char *chan, int n);
static void run_for(uint32_t ms);

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* p50 in microseconds of publish (by pub) to arrival at each of rx[0..nrx),
   over n publishes into chan, one at a time. */
static void latency(peer *pub, peer **rx, int nrx, const char *chan, int n, uint64_t *p50) {
    static uint64_t lat[4][64];
    int k, i;
    for (k = 0; k < n && k < 64; k++) {
        uint64_t t0 = now_us(), until = rtws_time_now_ms() + 1000;
        int before[4];
        for (i = 0; i < nrx; i++) before[i] = rx[i]->got;
        publish(pub, chan, k + 1);
        for (;;) {
            int all = 1;
            for (i = 0; i < nrx; i++)
                if (rx[i]->got == before[i]) all = 0;
            if (all || rtws_time_now_ms() > until) break;
            rtws_ctx_run_once(ctx, 0);
        }
        for (i = 0; i < nrx; i++) lat[i][k] = rx[i]->got > before[i] ? rx[i]->arrived_us - t0 : 1000000u;
        run_for(60); /* the ack, and below the rate limit (20/s) */
    }
    for (i = 0; i < nrx; i++) {
        qsort(lat[i], (size_t)k, sizeof lat[i][0], cmp_u64);
        p50[i] = lat[i][k / 2];
    }
}

static int has(const char *s, size_t n, const char *what) {
    size_t wl = strlen(what), i;
    for (i = 0; i + wl <= n; i++)
        if (memcmp(s + i, what, wl) == 0) return 1;
    return 0;
}

static void send_str(peer *p, const char *s) {
    if (p->c) rtws_conn_send_text(p->c, s, strlen(s));
}

static void subscribe(peer *p) {
    char buf[256];
    if (p->resume)
        snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%llu}",
                 p->chan, (unsigned long long)p->last);
    else
        snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"channel\":\"%s\"}", p->chan);
    send_str(p, buf);
}

static void on_text(peer *p, const char *s, size_t n) {
    if (has(s, n, "\"type\":\"welcome\"")) {
        const char *k = strstr(s, "\"session\":\"");
        if (k && (size_t)(k - s) < n) {
            size_t i = 0;
            k += 11;
            while (k[i] != '"' && i < sizeof p->session - 1) {
                p->session[i] = k[i];
                i++;
            }
            p->session[i] = '\0';
        }
        p->welcomed = 1;
        if (has(s, n, "\"resumed\":true")) p->resumed++;
        {
            const char *u = strstr(s, "\"user\":\"");
            char name[64];
            size_t i = 0;
            if (u && (size_t)(u - s) < n) {
                u += 8;
                while (u[i] != '"' && i < sizeof name - 1) {
                    name[i] = u[i];
                    i++;
                }
                name[i] = '\0';
                if (!p->user[0]) memcpy(p->user, name, i + 1);
                else if (!strcmp(p->user, name)) p->same_user++;
            }
        }
        subscribe(p);
    } else if (has(s, n, "\"type\":\"subscribed\"")) {
        if (!p->subscribed && !p->resume) p->last = p->base = num_after(s, n, "\"seq\":");
        p->subscribed = 1;
        p->resume = 0;
    } else if (has(s, n, "\"type\":\"message\"")) {
        uint64_t seq = num_after(s, n, ",\"seq\":");
        p->arrived_us = now_us();
        if (seq <= p->last) p->dups++;
        else {
            if (seq != p->last + 1) p->gaps++;
            p->last = seq;
            p->got++;
        }
    } else if (has(s, n, "\"type\":\"ack\"")) {
        p->acks++;
        if (num_after(s, n, "\"seq\":") > p->last && p->subscribed) p->early_acks++;
    } else if (has(s, n, "\"type\":\"reset\"")) {
        p->resets++;
        p->last = num_after(s, n, "\"seq\":");
    } else if (has(s, n, "\"type\":\"error\"")) {
        p->refused++;
        if (p->refused < 3) printf("client %d: %.*s\n", p->idx, (int)n, s);
    }
}

static void connect_peer(peer *p, int node) {
    char url[512];
    rtws_err e;
    if (p->token)
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws?token=%s", node_port[node], p->token);
    else if (p->session[0])
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws?session=%s", node_port[node], p->session);
    else
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", node_port[node]);
    p->node = node;
    p->open = p->welcomed = 0;
    p->c = rtws_ctx_connect(ctx, url, NULL, rtws_time_now_ms(), &e);
    if (p->c) rtws_conn_set_data(p->c, p);
}

static void on_event(rtws_conn *c, const rtws_event *ev, void *user) {
    peer *p = (peer *)rtws_conn_get_data(c);
    (void)user;
    if (!p) return;
    if (ev->type == RTWS_EV_OPEN) p->open = 1;
    else if (ev->type == RTWS_EV_MESSAGE && ev->message.opcode == RTWS_OP_TEXT)
        on_text(p, (const char *)ev->message.data, ev->message.len);
    else if (ev->type == RTWS_EV_CLOSE) {
        p->close_code = (int)ev->close.code;
        p->c = NULL;
        p->open = 0;
        if (p->idx < CLIENTS && node_pid[p->node] <= 0) { /* its node is gone: another one, resuming */
            p->reconnects++;
            p->resume = p->subscribed;
            p->subscribed = 0;
            connect_peer(p, p->idx % 2);
        }
    }
}

static void run_for(uint32_t ms) {
    uint64_t until = rtws_time_now_ms() + ms;
    while (rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 5);
}

static int all_subscribed(int n) {
    int i;
    for (i = 0; i < n; i++)
        if (!peers[i].subscribed) return 0;
    return 1;
}

static int all_got(int n, int want) {
    int i;
    for (i = 0; i < n; i++)
        if (peers[i].got < want) return 0;
    return 1;
}

static int run_until(int (*done)(int, int), int a, int b, uint32_t ms) {
    uint64_t until = rtws_time_now_ms() + ms;
    while (!done(a, b) && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 5);
    return done(a, b);
}
static int sub_done(int n, int unused) {
    (void)unused;
    return all_subscribed(n);
}

static void publish(peer *p, const char *chan, int n) {
    char buf[256];
    static int next_id; /* ids are per session: one never used before */
    snprintf(buf, sizeof buf,
             "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":{\"n\":%d},\"id\":\"p%d-%d\"}", chan,
             n, p->idx, ++next_id);
    send_str(p, buf);
}

/* GET /ws/status of a node: the body, NUL-terminated, in buf. */
static void get_status(int port, char *buf, size_t cap) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t n = 0;
    ssize_t k;
    const char *req = "GET /ws/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    buf[0] = '\0';
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req))
        while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)k;
    buf[n] = '\0';
    close(fd);
}

static int rt_welcomed, rt_acks, rt_errors;
static void rt_welcome(rtws_rt *rt, const char *u, const char *sess, int resumed, void *user) {
    (void)rt, (void)u, (void)sess, (void)resumed, (void)user;
    rt_welcomed = 1;
}
static void rt_ack(rtws_rt *rt, const char *id, uint64_t seq, void *user) {
    (void)rt, (void)id, (void)seq, (void)user;
    rt_acks++;
}
static void rt_error(rtws_rt *rt, const char *code, const char *msg, const char *id, void *user) {
    (void)rt, (void)msg, (void)id, (void)user;
    if (strcmp(code, "overloaded") && strcmp(code, "rate_limited")) printf("rt error %s\n", code);
    rt_errors++;
}

static int config_done;
static void on_config(rtws_redis *r, const rtws_resp_reply *rep, rtws_err err, void *user) {
    (void)r, (void)user;
    config_done = err == RTWS_OK && rep && rep->type == RTWS_RESP_STRING ? 1 : -1;
}

/* CONFIG SET appendfsync value on the test's Redis: 1 when it said OK. */
static int redis_fsync(const char *url, const char *value) {
    rtws_redis_config c;
    rtws_redis *r;
    rtws_err e;
    const char *argv[4];
    uint64_t until = rtws_time_now_ms() + 5000;
    memset(&c, 0, sizeof c);
    c.url = url;
    r = rtws_redis_new(ctx, &c, rtws_time_now_ms(), &e);
    if (!r) return 0;
    argv[0] = "CONFIG";
    argv[1] = "SET";
    argv[2] = "appendfsync";
    argv[3] = value;
    config_done = 0;
    if (rtws_redis_command(r, 4, argv, NULL, on_config, NULL) == RTWS_OK)
        while (!config_done && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 5);
    rtws_redis_free(r);
    return config_done == 1;
}

static void sums(int *got, int *dups, int *gaps, int *resets, int *refused) {
    int i;
    *got = *dups = *gaps = *resets = *refused = 0;
    for (i = 0; i < CLIENTS; i++) {
        *got += peers[i].got;
        *dups += peers[i].dups;
        *gaps += peers[i].gaps;
        *resets += peers[i].resets;
        *refused += peers[i].refused;
    }
}

static void new_phase(const char *chan) {
    int i;
    for (i = 0; i < CLIENTS; i++) {
        peer *p = &peers[i];
        p->chan = chan;
        p->subscribed = p->resume = 0;
        p->last = p->base = 0;
        p->got = p->dups = p->gaps = p->resets = p->acks = p->early_acks = p->refused = 0;
        if (p->c) subscribe(p);
    }
}

int main(void) {
    rtws_ctx_config cc;
    char url[64];
    int rport, i, k, got, dups, gaps, resets, refused, acks = 0, early = 0, min_got = 1 << 30;
    pid_t rpid;
    if (getenv("RTWS_CHAT_SERVER")) node_bin = getenv("RTWS_CHAT_SERVER");
    signal(SIGPIPE, SIG_IGN);
    if ((i = redis_find("e2e_cluster")) <= 0) return i < 0;
    CHECK(access(node_bin, X_OK) == 0); /* make builds it first */
    CHECK(mkdtemp(redis_dir) != NULL);
    rport = 0;
    rpid = redis_start(&rport, redis_aof);
    CHECK(rpid > 0);
    if (rpid <= 0) return T_END();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", rport);
    for (i = 0; i < NODES; i++) {
        node_pid[i] = start_node(url, &node_port[i]);
        CHECK(node_pid[i] > 0 && node_port[i] > 0);
    }
    memset(&cc, 0, sizeof cc);
    cc.conn.on_event = on_event;
    cc.timer_ms = 10;
    ctx = rtws_ctx_new(&cc);
    CHECK(ctx != NULL);
    if (!ctx || node_port[0] <= 0 || node_port[1] <= 0 || node_port[2] <= 0) goto out;

    /* ---- 1: 300 clients over 3 nodes, 60 messages from 3 nodes ---- */
    for (i = 0; i < CLIENTS; i++) {
        peers[i].idx = i;
        peers[i].chan = "room:all";
        connect_peer(&peers[i], i % NODES);
        if (i % 50 == 49) run_for(20);
    }
    CHECK(run_until(sub_done, CLIENTS, 0, 20000));
    for (k = 1; k <= PER_PUB; k++)
        for (i = 0; i < NODES; i++) publish(&peers[i], "room:all", k); /* burst 40: no pacing */
    run_until(all_got, CLIENTS, NODES * PER_PUB, 20000);
    run_for(200); /* anything extra (a duplicate) would come now */
    sums(&got, &dups, &gaps, &resets, &refused);
    for (i = 0; i < CLIENTS; i++) {
        if (peers[i].got < min_got) min_got = peers[i].got;
        CHECK_EQ(peers[i].last - peers[i].base, (uint64_t)(NODES * PER_PUB));
    }
    for (i = 0; i < NODES; i++) {
        acks += peers[i].acks;
        early += peers[i].early_acks;
    }
    printf("cluster: %d clients on %d nodes, %d messages published on 3 nodes: %d deliveries "
           "(want %d), fewest per client %d, %d duplicated, %d out of order, %d resets, "
           "%d acks (%d before their message), %d errors\n",
           CLIENTS, NODES, NODES * PER_PUB, got, CLIENTS * NODES * PER_PUB, min_got, dups, gaps,
           resets, acks, early, refused);
    CHECK_EQ(got, CLIENTS * NODES * PER_PUB);
    CHECK_EQ(dups, 0);
    CHECK_EQ(gaps, 0);
    CHECK_EQ(resets, 0);
    CHECK_EQ(acks, NODES * PER_PUB);
    CHECK_EQ(early, 0);
    CHECK_EQ(refused, 0);

    /* ---- 2: a numbered stream; node 2 killed with SIGKILL halfway ---- */
    new_phase("room:stream");
    CHECK(run_until(sub_done, CLIENTS, 0, 20000));
    {
        uint64_t t0 = rtws_time_now_ms();
        int sent = 0, reconnected = 0, resumed = 0, same = 0;
        while (sent < STREAM && rtws_time_now_ms() < t0 + 30000) {
            /* two publishers (nodes 0 and 1), 12 messages/s each (limit 20/s) */
            if (rtws_time_now_ms() >= t0 + (uint64_t)sent * 42u) {
                publish(&peers[sent % 2 ? 4 : 3], "room:stream", sent + 1);
                sent++;
                if (sent == STREAM / 3) { /* a third in: node 2 dies */
                    pid_t p = node_pid[2];
                    node_pid[2] = 0;
                    stop_pid(p, SIGKILL);
                }
            }
            rtws_ctx_run_once(ctx, 5);
        }
        run_until(all_got, CLIENTS, STREAM, 20000);
        run_for(300);
        sums(&got, &dups, &gaps, &resets, &refused);
        min_got = 1 << 30;
        for (i = 0; i < CLIENTS; i++) {
            if (peers[i].got < min_got) min_got = peers[i].got;
            if (peers[i].reconnects) reconnected++;
            resumed += peers[i].resumed;
            same += peers[i].same_user;
        }
        printf("kill: %d numbered messages, node 2 SIGKILLed after %d; %d clients reconnected "
               "to nodes 0/1 with ?session= and since (%d sessions resumed there, %d with the "
               "same user id): %d deliveries (want %d), fewest per client %d, %d duplicated, "
               "%d out of order, %d resets, %d errors\n",
               STREAM, STREAM / 3, reconnected, resumed, same, got, CLIENTS * STREAM, min_got, dups,
               gaps, resets, refused);
        CHECK_EQ(reconnected, CLIENTS / NODES);
        CHECK_EQ(resumed, CLIENTS / NODES);
        CHECK_EQ(same, CLIENTS / NODES);
        CHECK_EQ(got, CLIENTS * STREAM);
        CHECK_EQ(min_got, STREAM);
        CHECK_EQ(dups, 0);
        CHECK_EQ(gaps, 0);
        CHECK_EQ(resets, 0);
        CHECK_EQ(peers[3].acks + peers[4].acks, STREAM);
    }

    /* ---- 3: Redis SIGKILLed and restarted under a stream ---- */
    new_phase("room:redis");
    CHECK(run_until(sub_done, CLIENTS, 0, 20000));
    {
        rtws_ctx_config pc;
        rtws_ctx *pctx;
        rtws_rt_config rc;
        rtws_rt *rt = NULL;
        rtws_err e;
        char rurl[96], st[4096];
        int sent = 0, outage_seen = 0;
        uint64_t t0, restart_at = 0;
        memset(&pc, 0, sizeof pc);
        pc.timer_ms = 10;
        pctx = rtws_ctx_new(&pc);
        CHECK(pctx != NULL);
        memset(&rc, 0, sizeof rc);
        snprintf(rurl, sizeof rurl, "ws://127.0.0.1:%d/ws", node_port[0]);
        rc.client.url = rurl;
        rc.on_welcome = rt_welcome;
        rc.on_ack = rt_ack;
        rc.on_error = rt_error;
        if (pctx) rt = rtws_rt_new(pctx, &rc, rtws_time_now_ms(), &e);
        CHECK(rt != NULL);
        t0 = rtws_time_now_ms();
        while (rt && !rt_welcomed && rtws_time_now_ms() < t0 + 5000) {
            rtws_ctx_run_once(pctx, 5);
            rtws_ctx_run_once(ctx, 0);
        }
        t0 = rtws_time_now_ms();
        while (rt && (sent < RSTREAM || rtws_rt_get_unacked(rt)) && rtws_time_now_ms() < t0 + 40000) {
            if (sent < RSTREAM && rtws_time_now_ms() >= t0 + (uint64_t)sent * 60u) {
                char d[32];
                snprintf(d, sizeof d, "{\"n\":%d}", sent + 1);
                if (rtws_rt_publish(rt, "room:redis", "message", d, strlen(d), NULL) == RTWS_OK) sent++;
                if (sent == RSTREAM / 3 && !restart_at) { /* a third in: Redis dies */
                    stop_pid(rpid, SIGKILL);
                    rpid = 0;
                    restart_at = rtws_time_now_ms() + 1000;
                }
            }
            if (restart_at && !rpid && rtws_time_now_ms() >= restart_at) {
                get_status(node_port[1], st, sizeof st);
                outage_seen = strstr(st, "\"state\":\"down\"") != NULL;
                rpid = redis_start(&rport, redis_aof);
                CHECK(rpid > 0);
            }
            rtws_ctx_run_once(pctx, 2);
            rtws_ctx_run_once(ctx, 3);
        }
        run_until(all_got, CLIENTS, RSTREAM, 20000);
        run_for(300);
        sums(&got, &dups, &gaps, &resets, &refused);
        min_got = 1 << 30;
        for (i = 0; i < CLIENTS; i++)
            if (peers[i].got < min_got) min_got = peers[i].got;
        get_status(node_port[0], st, sizeof st);
        printf("redis restart: %d numbered messages, Redis SIGKILLed after %d and restarted 1 s "
               "later; node 1 said %s meanwhile; %d acked, %d publishes refused and sent again; "
               "%d deliveries (want %d), fewest per client %d, %d duplicated, %d out of order, "
               "%d resets\n",
               RSTREAM, RSTREAM / 3, outage_seen ? "\"down\"" : "nothing", rt_acks, rt_errors, got,
               CLIENTS * RSTREAM, min_got, dups, gaps, resets);
        printf("node 0 status after: %s\n", strstr(st, "\"redis\":{") ? strstr(st, "\"redis\":{") : "?");
        CHECK(outage_seen);
        CHECK(strstr(st, "\"state\":\"up\"") != NULL);
        CHECK(strstr(st, "\"outages\":0") == NULL);
        CHECK_EQ(rt_acks, RSTREAM);
        CHECK_EQ(got, CLIENTS * RSTREAM);
        CHECK_EQ(min_got, RSTREAM);
        CHECK_EQ(dups, 0);
        CHECK_EQ(gaps, 0);
        CHECK_EQ(resets, 0);
        if (rt) rtws_rt_free(rt);
        if (pctx) rtws_ctx_free(pctx);
    }

    /* ---- 4: max_conns_per_user across two nodes ---- */
    {
        char tok[256];
        int welcomed = 0, refused1008 = 0, again = 0, first = -1, second = -1;
        uint64_t until;
        node_secret = "e2e-cluster-secret";
        node_pid[3] = start_node(url, &node_port[3]);
        node_pid[4] = start_node(url, &node_port[4]);
        node_secret = NULL;
        CHECK(node_port[3] > 0 && node_port[4] > 0);
        CHECK(rtws_jwt_hs256_sign("{\"sub\":\"alice\"}", "e2e-cluster-secret", 18, tok, sizeof tok) > 0);
        for (i = 0; i < 7; i++) {
            peer *p = &peers[CLIENTS + 2 + i];
            memset(p, 0, sizeof *p);
            p->idx = CLIENTS + 2 + i;
            p->chan = "room:cap";
            p->token = tok;
            connect_peer(p, 3 + i % 2);
        }
        until = rtws_time_now_ms() + 10000;
        while (rtws_time_now_ms() < until) {
            welcomed = refused1008 = 0;
            for (i = 0; i < 7; i++) {
                peer *p = &peers[CLIENTS + 2 + i];
                if (p->welcomed && p->c) welcomed++;
                if (!p->c && p->close_code == RTWS_CLOSE_POLICY) refused1008++;
            }
            if (welcomed + refused1008 == 7) break;
            rtws_ctx_run_once(ctx, 5);
        }
        run_for(300);
        for (i = 0; i < 7; i++) { /* two welcomed ones go */
            peer *p = &peers[CLIENTS + 2 + i];
            if (p->welcomed && p->c && first < 0) first = i;
            else if (p->welcomed && p->c && second < 0) second = i;
        }
        welcomed = refused1008 = 0;
        for (i = 0; i < 7; i++) {
            peer *p = &peers[CLIENTS + 2 + i];
            if (p->welcomed && p->c) welcomed++;
            if (!p->c && p->close_code == RTWS_CLOSE_POLICY) refused1008++;
        }
        printf("per-user cap 5 over 2 nodes: 7 connections of one user at once: %d welcomed, "
               "%d closed with 1008\n", welcomed, refused1008);
        CHECK_EQ(welcomed, 5);
        CHECK_EQ(refused1008, 2);
        if (first >= 0 && second >= 0) {
            rtws_conn_close(peers[CLIENTS + 2 + first].c, RTWS_CLOSE_NORMAL, NULL);
            rtws_conn_close(peers[CLIENTS + 2 + second].c, RTWS_CLOSE_NORMAL, NULL);
            run_for(300);
            for (i = 9; i < 11; i++) {
                peer *p = &peers[CLIENTS + i];
                memset(p, 0, sizeof *p);
                p->idx = CLIENTS + i;
                p->chan = "room:cap";
                p->token = tok;
                connect_peer(p, 3 + i % 2);
            }
            until = rtws_time_now_ms() + 5000;
            while (!(peers[CLIENTS + 9].welcomed && peers[CLIENTS + 10].welcomed) &&
                   rtws_time_now_ms() < until)
                rtws_ctx_run_once(ctx, 5);
            run_for(200);
            again = (peers[CLIENTS + 9].welcomed && peers[CLIENTS + 9].c) +
                    (peers[CLIENTS + 10].welcomed && peers[CLIENTS + 10].c);
            printf("per-user cap: 2 of them closed, 2 new ones: %d welcomed\n", again);
        }
        CHECK_EQ(again, 2);
        for (i = CLIENTS + 2; i < CLIENTS + 11; i++)
            if (peers[i].c) rtws_conn_close(peers[i].c, RTWS_CLOSE_NORMAL, NULL);
        run_for(100);
        stop_pid(node_pid[3], SIGTERM);
        stop_pid(node_pid[4], SIGTERM);
        node_pid[3] = node_pid[4] = 0;
    }

    /* ---- figures: publish-to-delivery latency, p50 ---- */
    {
        uint64_t p50[4];
        int mport = 0;
        pid_t mpid = start_node(NULL, &mport);
        peer *rx[2];
        int lat_ids[3] = {0, 1, 3}; /* the publisher and two receivers: the same
                                       few clients as on the memory node below */
        uint64_t until = rtws_time_now_ms() + 5000;
        for (i = 0; i < 3; i++) {
            peer *p = &peers[lat_ids[i]];
            p->chan = "room:lat";
            p->subscribed = p->resume = 0;
            p->last = p->base = 0;
            p->got = 0;
            subscribe(p);
        }
        while (!(peers[0].subscribed && peers[1].subscribed && peers[3].subscribed) &&
               rtws_time_now_ms() < until)
            rtws_ctx_run_once(ctx, 5);
        rx[0] = &peers[3]; /* node 0, like the publisher */
        rx[1] = &peers[1]; /* node 1 */
        latency(&peers[0], rx, 2, "room:lat", 40, p50);
        printf("latency p50 over 40 publishes (3 clients in the channel), Redis appendfsync "
               "always: publisher's node %llu us, another node %llu us\n",
               (unsigned long long)p50[0], (unsigned long long)p50[1]);
        if (redis_fsync(url, "no")) { /* Redis replies without waiting for the disk */
            latency(&peers[0], rx, 2, "room:lat", 40, p50);
            printf("latency p50 over 40 publishes (3 clients in the channel), Redis appendfsync "
                   "no: publisher's node %llu us, another node %llu us\n",
                   (unsigned long long)p50[0], (unsigned long long)p50[1]);
        }
        if (mpid > 0 && mport > 0) { /* one node, memory engine, two clients */
            peer *m = &peers[CLIENTS], *mr = &peers[CLIENTS + 1];
            node_port[2] = mport;
            m->idx = CLIENTS;
            mr->idx = CLIENTS + 1;
            m->chan = mr->chan = "room:lat";
            connect_peer(m, 2);
            connect_peer(mr, 2);
            until = rtws_time_now_ms() + 5000;
            while (!(m->subscribed && mr->subscribed) && rtws_time_now_ms() < until)
                rtws_ctx_run_once(ctx, 5);
            rx[0] = mr;
            latency(m, rx, 1, "room:lat", 40, p50);
            printf("latency p50 over 40 publishes, one node without Redis (2 clients): %llu us\n",
                   (unsigned long long)p50[0]);
            if (m->c) rtws_conn_close(m->c, RTWS_CLOSE_NORMAL, NULL);
            if (mr->c) rtws_conn_close(mr->c, RTWS_CLOSE_NORMAL, NULL);
            run_for(100);
        }
        stop_pid(mpid, SIGTERM);
        node_port[2] = 0;
    }
out:
    for (i = 0; i < CLIENTS; i++)
        if (peers[i].c) rtws_conn_close(peers[i].c, RTWS_CLOSE_NORMAL, NULL);
    if (ctx) {
        run_for(100);
        rtws_ctx_free(ctx);
    }
    for (i = 0; i < NODES; i++) stop_pid(node_pid[i], SIGTERM);
    stop_pid(rpid, SIGTERM);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", redis_dir);
        (void)!system(cmd);
    }
    return T_END();
}
