/* The Redis engine, continued (tests/e2e_cluster.c has delivery, a node
   killed, Redis restarted): a real redis-server on a free 127.0.0.1 port,
   started and stopped (by PID) by this test.
   1. Publishes allocate nothing in steady state: a router in this process
      with a counting allocator publishes 2,000 messages through Redis
      (rtws_router_publish, 50 in flight at a time) after a warm-up; the
      router's allocator is called 0 times meanwhile (its job records and
      its message buffer are reused).
   2. Presence across nodes (three nodes: forks of this test, each a router
      with redis_node_ttl_ms 1500 on an OS-chosen port): alice connected on
      nodes A and B appears once in the presence lists (subscribed, and
      rtws_router_get_presence on two nodes through a test page) and bob,
      on node C, hears one "joined" for her; a status she sets reaches bob
      once. Node A is SIGKILLed: dave, only there, leaves within the
      documented 1500 ms + one heartbeat period of 1 s (bob and carol each
      hear one "left"; 500 ms more allowed for a loaded machine), alice
      stays (node B still has her); her last connection closing then
      announces her "left" once.
   3. max_conns_per_user 5 across nodes for users who get their identity
      after the open: 7 connections of eve authenticating with an "auth"
      message, and 7 of frank named by rtws_router_set_identity (a "hello"
      message of the test's own protocol), alternating between nodes B and
      C: 5 of each stay, 2 are closed with 1008; 2 of frank's closing lets
      2 new ones stay.
   Without redis-server (tests/deps.sh installs it when root) it says it
   skipped; RTWS_REQUIRE_ALL=1 makes that a failure. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "redis_proc.h"

static char url[64];

/* ---- 1: a counting allocator ---- */
static size_t n_alloc;
static void *c_alloc(size_t n, void *u) {
    (void)u;
    n_alloc++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *u) {
    (void)u;
    n_alloc++;
    return realloc(p, n);
}
static void c_free(void *p, void *u) {
    (void)u;
    free(p);
}

static void alloc_phase(void) {
    rtws_router_config rc;
    rtws_ctx_config cc;
    rtws_router *r;
    rtws_ctx *ctx = NULL;
    rtws_router_stats st;
    uint64_t until, want = 0;
    size_t before = 0, during = 0;
    int i, k, up = 0;
    memset(&rc, 0, sizeof rc);
    rc.redis_url = url;
    rc.redis_prefix = "alloc";
    rc.history = 100;
    rc.allocator.alloc = c_alloc;
    rc.allocator.realloc = c_realloc;
    rc.allocator.free = c_free;
    r = rtws_router_new(&rc);
    CHECK(r != NULL);
    if (!r) return;
    memset(&cc, 0, sizeof cc);
    cc.timer_ms = 10;
    rtws_router_install(r, &cc);
    ctx = rtws_ctx_new(&cc);
    CHECK(ctx != NULL);
    until = rtws_time_now_ms() + 5000;
    while (ctx && !up && rtws_time_now_ms() < until) {
        rtws_ctx_run_once(ctx, 10);
        rtws_router_get_stats(r, &st);
        up = st.redis_up;
    }
    CHECK(up);
    /* 3 rounds: a warm-up (500), then 2,000 counted; 50 in flight at a time */
    for (k = 0; ctx && up && k < 2; k++) {
        int total = k == 0 ? 500 : 2000;
        if (k == 1) before = n_alloc;
        for (i = 0; i < total; i += 50) {
            int j;
            for (j = 0; j < 50; j++) {
                char d[32];
                snprintf(d, sizeof d, "{\"n\":%d}", i + j);
                if (rtws_router_publish(r, "room:alloc", "m", d, strlen(d), NULL,
                                        rtws_time_now_ms()) == UINT64_MAX)
                    want++;
            }
            until = rtws_time_now_ms() + 5000;
            do {
                rtws_ctx_run_once(ctx, 1);
                rtws_router_get_stats(r, &st);
            } while (st.publishes < want && rtws_time_now_ms() < until);
        }
        if (k == 1) during = n_alloc - before;
    }
    rtws_router_get_stats(r, &st);
    printf("alloc: %llu publishes through Redis acknowledged (want %llu); the router's allocator "
           "was called %zu times during the last 2000\n",
           (unsigned long long)st.publishes, (unsigned long long)want, during);
    CHECK_EQ(st.publishes, (uint64_t)2500);
    CHECK_EQ(during, (size_t)0);
    rtws_router_free(r);
    if (ctx) rtws_ctx_free(ctx);
}

/* ---- 2 and 3: nodes as forks of this test ---- */
#define SECRET "e2e-presence-secret"
#define NODE_TTL 1500u
#define NODE_BOUND (NODE_TTL + 1000u) /* documented: the ttl and one heartbeat period
                                          (a third of it, at least the 1 s timer tick) */
static rtws_router *node_r;
static volatile sig_atomic_t node_stop;
static char pres_body[2048];
static size_t pres_len;

static void node_term(int sig) {
    (void)sig;
    node_stop = 1;
}

static void pres_fn(const char *user_id, const char *status, size_t conns, void *user) {
    (void)user;
    pres_len += (size_t)snprintf(pres_body + pres_len, sizeof pres_body - pres_len, " %s:%s:%zu",
                                 user_id, status, conns);
    if (pres_len >= sizeof pres_body) pres_len = sizeof pres_body - 1;
}

/* GET /presence: "<users>" then " user:status:conns" for each (room:p). */
static int node_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *reply, void *user) {
    size_t n;
    (void)c;
    (void)user;
    if (req->path.len != 9 || memcmp(req->path.p, "/presence", 9) != 0) return 0;
    pres_len = 0;
    n = rtws_router_get_presence(node_r, "room:p", pres_fn, NULL);
    pres_len = (size_t)snprintf(pres_body, sizeof pres_body, "%zu", n);
    rtws_router_get_presence(node_r, "room:p", pres_fn, NULL);
    reply->status = 200;
    reply->body = pres_body;
    reply->body_len = pres_len;
    return 1;
}

/* {"type":"hello","user":"X"}: rtws_router_set_identity(X); answers
   {"type":"hello","err":N}. */
static int node_recv(rtws_router *r, rtws_conn *c, const rtws_event *ev, void *user) {
    const char *d = (const char *)ev->message.data, *k = "{\"type\":\"hello\",\"user\":\"";
    size_t n = ev->message.len, kl = strlen(k), u = 0;
    char name[64], out[64];
    rtws_err e;
    (void)user;
    if (ev->message.opcode != RTWS_OP_TEXT || n < kl || memcmp(d, k, kl) != 0) return RTWS_ROUTER_PASS;
    while (kl + u < n && d[kl + u] != '"' && u < 63) {
        name[u] = d[kl + u];
        u++;
    }
    name[u] = '\0';
    e = rtws_router_set_identity(r, c, name, NULL, 0);
    snprintf(out, sizeof out, "{\"type\":\"hello\",\"err\":%d}", (int)e);
    rtws_router_send_to_conn(r, c, RTWS_OP_TEXT, out, strlen(out));
    return RTWS_ROUTER_HANDLED;
}

static void node_main(int wfd) {
    rtws_router_config rc;
    rtws_ctx_config cc;
    rtws_ctx *nctx;
    int port = 0;
    char line[32];
    signal(SIGTERM, node_term);
    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.status_path = "/ws/status";
    rc.jwt_secret = SECRET;
    rc.jwt_secret_len = strlen(SECRET);
    rc.max_conns_per_user = 5;
    rc.redis_url = url;
    rc.redis_prefix = "pres";
    rc.redis_node_ttl_ms = NODE_TTL;
    rc.on_receive = node_recv;
    rc.on_http = node_http;
    node_r = rtws_router_new(&rc);
    if (!node_r) _exit(1);
    memset(&cc, 0, sizeof cc);
    cc.timer_ms = 10;
    rtws_router_install(node_r, &cc);
    nctx = rtws_ctx_new(&cc);
    if (!nctx || rtws_ctx_listen(nctx, "127.0.0.1", 0, &port) != RTWS_OK) _exit(1);
    snprintf(line, sizeof line, "%d\n", port);
    if (write(wfd, line, strlen(line)) < 0) _exit(1);
    close(wfd);
    while (!node_stop) rtws_ctx_run_once(nctx, 20);
    rtws_router_free(node_r);
    rtws_ctx_free(nctx);
    exit(0); /* (not _exit: LeakSanitizer checks the node too) */
}

static pid_t start_node(int *port) {
    int fds[2];
    pid_t pid;
    char line[32];
    ssize_t k;
    *port = 0;
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        node_main(fds[1]);
    }
    close(fds[1]);
    k = read(fds[0], line, sizeof line - 1);
    if (k > 0) {
        line[k] = '\0';
        *port = atoi(line);
    }
    close(fds[0]);
    return pid;
}

static int node_port[3];
static pid_t node_pid[3];
static rtws_ctx *ctx;

typedef struct cl {
    rtws_conn *c;
    int open, welcomed, authed, subscribed, hello, hello_err, closed, close_code;
    int joined[4], left[4], away;  /* presence messages about alice, dave, eve, frank */
    char subscribed_msg[1024];
} cl;
static const char *who[4] = {"alice", "dave", "eve", "frank"};

static int count_of(const char *s, const char *what) {
    int n = 0;
    size_t wl = strlen(what);
    while ((s = strstr(s, what)) != NULL) {
        n++;
        s += wl;
    }
    return n;
}

static void cl_text(cl *p, const char *s, size_t n) {
    char b[1024];
    int i;
    if (n >= sizeof b) n = sizeof b - 1;
    memcpy(b, s, n);
    b[n] = '\0';
    if (strstr(b, "\"type\":\"welcome\"")) p->welcomed = 1;
    else if (strstr(b, "\"type\":\"authenticated\"")) p->authed = 1;
    else if (strstr(b, "\"type\":\"subscribed\"")) {
        p->subscribed = 1;
        memcpy(p->subscribed_msg, b, n + 1);
    } else if (strstr(b, "\"type\":\"hello\"")) {
        if (strstr(b, "\"err\":0")) p->hello = 1;
        else p->hello_err = 1;
    } else if (strstr(b, "\"type\":\"presence\"")) {
        for (i = 0; i < 4; i++) {
            char u[32];
            snprintf(u, sizeof u, "\"user\":\"%s\"", who[i]);
            if (!strstr(b, u)) continue;
            if (strstr(b, "\"status\":\"joined\"")) p->joined[i]++;
            if (strstr(b, "\"status\":\"left\"")) p->left[i]++;
            if (strstr(b, "\"status\":\"away\"")) p->away++;
        }
    }
}

static void cl_event(rtws_conn *c, const rtws_event *ev, void *user) {
    cl *p = (cl *)rtws_conn_get_data(c);
    (void)user;
    if (!p) return;
    if (ev->type == RTWS_EV_OPEN) p->open = 1;
    else if (ev->type == RTWS_EV_MESSAGE && ev->message.opcode == RTWS_OP_TEXT)
        cl_text(p, (const char *)ev->message.data, ev->message.len);
    else if (ev->type == RTWS_EV_CLOSE) {
        p->close_code = (int)ev->close.code;
        p->closed = 1;
        p->c = NULL;
        p->open = 0;
    }
}

static void cl_connect(cl *p, int node, const char *user) {
    char u[512], tok[256];
    rtws_err e;
    memset(p, 0, sizeof *p);
    if (user) {
        char claims[64];
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", user);
        if (rtws_jwt_hs256_sign(claims, SECRET, strlen(SECRET), tok, sizeof tok) <= 0) return;
        snprintf(u, sizeof u, "ws://127.0.0.1:%d/ws?token=%s", node_port[node], tok);
    } else {
        snprintf(u, sizeof u, "ws://127.0.0.1:%d/ws", node_port[node]);
    }
    p->c = rtws_ctx_connect(ctx, u, NULL, rtws_time_now_ms(), &e);
    if (p->c) rtws_conn_set_data(p->c, p);
}

static void cl_send(cl *p, const char *s) {
    if (p->c) rtws_conn_send_text(p->c, s, strlen(s));
}

static void run_ms(uint32_t ms) {
    uint64_t until = rtws_time_now_ms() + ms;
    while (rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 5);
}

/* Runs until *flag (or ms pass); returns *flag. */
static int wait_for(const int *flag, uint32_t ms) {
    uint64_t until = rtws_time_now_ms() + ms;
    while (!*flag && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 5);
    return *flag;
}

/* GET /presence of a node. */
static void get_presence(int port, char *buf, size_t cap) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t n = 0;
    ssize_t k;
    const char *req = "GET /presence HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", *body;
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
    body = strstr(buf, "\r\n\r\n");
    if (body) memmove(buf, body + 4, strlen(body + 4) + 1);
}

static void presence_phase(void) {
    static cl bob, carol, alice1, alice2, dave;
    char pa[2048], pc[2048];
    const char *sub = "{\"type\":\"subscribe\",\"channel\":\"room:p\"}";
    uint64_t t0, t_dave = 0;
    /* bob on C first, then alice on A and on B, dave on A, carol on C */
    cl_connect(&bob, 2, "bob");
    CHECK(wait_for(&bob.welcomed, 5000));
    cl_send(&bob, sub);
    CHECK(wait_for(&bob.subscribed, 5000));
    cl_connect(&alice1, 0, "alice");
    CHECK(wait_for(&alice1.welcomed, 5000));
    cl_send(&alice1, sub);
    CHECK(wait_for(&alice1.subscribed, 5000));
    cl_connect(&alice2, 1, "alice");
    CHECK(wait_for(&alice2.welcomed, 5000));
    cl_send(&alice2, sub);
    CHECK(wait_for(&alice2.subscribed, 5000));
    cl_connect(&dave, 0, "dave");
    CHECK(wait_for(&dave.welcomed, 5000));
    cl_send(&dave, sub);
    CHECK(wait_for(&dave.subscribed, 5000));
    cl_connect(&carol, 2, "carol");
    CHECK(wait_for(&carol.welcomed, 5000));
    cl_send(&carol, sub);
    CHECK(wait_for(&carol.subscribed, 5000));
    cl_send(&alice2, "{\"type\":\"presence\",\"channel\":\"room:p\",\"status\":\"away\"}");
    run_ms(500);
    get_presence(node_port[2], pc, sizeof pc);
    get_presence(node_port[0], pa, sizeof pa);
    printf("presence: alice on nodes A and B, dave on A, bob and carol on C; bob heard alice "
           "joined %d time(s), away %d; carol's subscribed: %s\n",
           bob.joined[0], bob.away, carol.subscribed_msg);
    printf("presence: rtws_router_get_presence on node C: %s; on node A: %s\n", pc, pa);
    CHECK_EQ(bob.joined[0], 1);
    CHECK_EQ(bob.joined[1], 1);
    CHECK_EQ(bob.away, 1);
    CHECK_EQ(alice1.joined[0] + alice2.joined[0], 0); /* not her own */
    CHECK_EQ(count_of(alice2.subscribed_msg, "\"user\":\"alice\""), 1);
    CHECK(strstr(alice2.subscribed_msg, "\"members\":2") != NULL); /* bob and alice */
    CHECK_EQ(count_of(carol.subscribed_msg, "\"user\":\"alice\""), 1);
    CHECK(strstr(carol.subscribed_msg, "\"members\":4") != NULL);
    CHECK(strncmp(pc, "4 ", 2) == 0);
    CHECK_EQ(count_of(pc, " alice:away:0"), 1); /* node C has none of her connections */
    CHECK_EQ(count_of(pc, " bob:online:1"), 1);
    CHECK(strncmp(pa, "4 ", 2) == 0);
    CHECK_EQ(count_of(pa, " alice:"), 1);
    CHECK_EQ(count_of(pa, " dave:online:1"), 1);

    /* node A dies without a goodbye */
    stop_pid(node_pid[0], SIGKILL);
    node_pid[0] = 0;
    t0 = rtws_time_now_ms();
    while (rtws_time_now_ms() < t0 + NODE_BOUND + 3000 && !(bob.left[1] && carol.left[1]))
        rtws_ctx_run_once(ctx, 5);
    if (bob.left[1]) t_dave = rtws_time_now_ms() - t0;
    run_ms(NODE_TTL); /* another sweep: nothing more is announced */
    get_presence(node_port[2], pc, sizeof pc);
    printf("presence: node A SIGKILLed; dave left after %llu ms (documented: within %u ms); "
           "bob heard dave left %d time(s), carol %d; alice left %d; node C now: %s\n",
           (unsigned long long)t_dave, NODE_BOUND, bob.left[1], carol.left[1], bob.left[0], pc);
    CHECK_EQ(bob.left[1], 1);
    CHECK_EQ(carol.left[1], 1);
    CHECK(t_dave > 0 && t_dave <= NODE_BOUND + 500); /* + scheduling on a loaded machine */
    CHECK_EQ(bob.left[0], 0);
    CHECK(strncmp(pc, "3 ", 2) == 0);
    CHECK_EQ(count_of(pc, " dave:"), 0);
    CHECK_EQ(count_of(pc, " alice:"), 1);

    /* alice's last connection goes: one "left" */
    if (alice2.c) rtws_conn_close(alice2.c, RTWS_CLOSE_NORMAL, NULL);
    t0 = rtws_time_now_ms();
    while (rtws_time_now_ms() < t0 + 3000 && !(bob.left[0] && carol.left[0])) rtws_ctx_run_once(ctx, 5);
    run_ms(300);
    get_presence(node_port[2], pc, sizeof pc);
    printf("presence: alice's last connection closed: bob heard her left %d time(s), carol %d; "
           "node C now: %s\n", bob.left[0], carol.left[0], pc);
    CHECK_EQ(bob.left[0], 1);
    CHECK_EQ(carol.left[0], 1);
    CHECK(strncmp(pc, "2 ", 2) == 0);
    if (bob.c) rtws_conn_close(bob.c, RTWS_CLOSE_NORMAL, NULL);
    if (carol.c) rtws_conn_close(carol.c, RTWS_CLOSE_NORMAL, NULL);
    run_ms(100);
}

/* 7 connections of one user alternating between nodes B and C, named
   after the open by an auth message (hello 0) or set_identity (hello 1). */
static void cap_round(cl *cs, const char *user, int hello, int *stayed, int *refused) {
    char m[512], tok[256], claims[64];
    uint64_t until;
    int i, k;
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", user);
    CHECK(rtws_jwt_hs256_sign(claims, SECRET, strlen(SECRET), tok, sizeof tok) > 0);
    if (hello) snprintf(m, sizeof m, "{\"type\":\"hello\",\"user\":\"%s\"}", user);
    else snprintf(m, sizeof m, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    for (i = 0; i < 7; i++) cl_connect(&cs[i], 1 + i % 2, NULL);
    until = rtws_time_now_ms() + 5000;
    for (k = 0; k < 7 && rtws_time_now_ms() < until;) { /* all welcomed: then 7 at once */
        for (k = 0, i = 0; i < 7; i++) k += cs[i].welcomed;
        rtws_ctx_run_once(ctx, 5);
    }
    for (i = 0; i < 7; i++) cl_send(&cs[i], m);
    until = rtws_time_now_ms() + 5000;
    for (;;) {
        *stayed = *refused = 0;
        for (i = 0; i < 7; i++) {
            if (cs[i].c && (hello ? cs[i].hello : cs[i].authed)) (*stayed)++;
            if (cs[i].closed && cs[i].close_code == RTWS_CLOSE_POLICY) (*refused)++;
        }
        if (*refused == 2 || rtws_time_now_ms() > until) break;
        rtws_ctx_run_once(ctx, 5);
    }
    run_ms(300); /* anything more would come now */
    *stayed = *refused = 0;
    for (i = 0; i < 7; i++) {
        if (cs[i].c && (hello ? cs[i].hello : cs[i].authed)) (*stayed)++;
        if (cs[i].closed && cs[i].close_code == RTWS_CLOSE_POLICY) (*refused)++;
    }
}

static void cap_phase(void) {
    static cl eve[7], frank[9];
    int stayed, refused, i, k = 0, again = 0;
    cap_round(eve, "eve", 0, &stayed, &refused);
    printf("cap 5 over nodes B and C: 7 connections authenticating as eve with an auth message: "
           "%d stay, %d closed with 1008\n", stayed, refused);
    CHECK_EQ(stayed, 5);
    CHECK_EQ(refused, 2);
    cap_round(frank, "frank", 1, &stayed, &refused);
    printf("cap 5 over nodes B and C: 7 connections named frank by rtws_router_set_identity: "
           "%d stay, %d closed with 1008\n", stayed, refused);
    CHECK_EQ(stayed, 5);
    CHECK_EQ(refused, 2);
    for (i = 0; i < 7 && k < 2; i++) /* two of frank's go */
        if (frank[i].c) {
            rtws_conn_close(frank[i].c, RTWS_CLOSE_NORMAL, NULL);
            k++;
        }
    run_ms(300);
    for (i = 7; i < 9; i++) {
        cl_connect(&frank[i], i % 2 ? 1 : 2, NULL);
        CHECK(wait_for(&frank[i].welcomed, 5000));
        cl_send(&frank[i], "{\"type\":\"hello\",\"user\":\"frank\"}");
    }
    run_ms(800);
    for (i = 7; i < 9; i++) again += frank[i].c != NULL && frank[i].hello;
    printf("cap: 2 of frank's closed, 2 new ones named frank: %d stay\n", again);
    CHECK_EQ(again, 2);
    for (i = 0; i < 7; i++)
        if (eve[i].c) rtws_conn_close(eve[i].c, RTWS_CLOSE_NORMAL, NULL);
    for (i = 0; i < 9; i++)
        if (frank[i].c) rtws_conn_close(frank[i].c, RTWS_CLOSE_NORMAL, NULL);
    run_ms(100);
}

int main(void) {
    int rport = 0, found;
    pid_t rpid;
    signal(SIGPIPE, SIG_IGN);
    if ((found = redis_find("e2e_cluster_presence")) <= 0) return found < 0;
    rpid = redis_start(&rport, NULL);
    CHECK(rpid > 0);
    if (rpid <= 0) return T_END();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", rport);

    alloc_phase();
    {
        rtws_ctx_config cc;
        int i;
        for (i = 0; i < 3; i++) {
            node_pid[i] = start_node(&node_port[i]);
            CHECK(node_pid[i] > 0 && node_port[i] > 0);
        }
        memset(&cc, 0, sizeof cc);
        cc.conn.on_event = cl_event;
        cc.timer_ms = 10;
        ctx = rtws_ctx_new(&cc);
        CHECK(ctx != NULL);
        if (ctx && node_port[0] > 0 && node_port[1] > 0 && node_port[2] > 0) {
            presence_phase();
            cap_phase();
        }
        if (ctx) rtws_ctx_free(ctx);
        for (i = 0; i < 3; i++) /* nodes B and C exit cleanly (LeakSanitizer: 23) */
            if (node_pid[i] > 0) CHECK_EQ(stop_pid(node_pid[i], SIGTERM), 0);
    }

    stop_pid(rpid, SIGTERM);
    return T_END();
}
