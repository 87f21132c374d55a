/* Layer 6b (redis) against a real redis-server on 127.0.0.1 (a port the OS
   picked): SET/GET, 10,000 pipelined commands in order, WRONGTYPE, SELECT,
   AUTH with requirepass and with an ACL user (and a wrong password), pub/sub
   across two connections (channel, pattern, shard), and a server killed and
   restarted: the command in flight gets an error, a command queued while
   down runs after the reconnect, the subscriber subscribes again; a refused
   connect retried until the server comes; the caller's own poll loop. A
   fake server (a socket of the test) sends what Redis would not: bytes that
   are not RESP, a bulk over the limit, a reply nobody asked for, an early
   close. Without
   redis-server (tests/deps.sh installs it when root) it says it skipped;
   RTWS_REQUIRE_ALL=1 makes that a failure. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include "redis_proc.h"
#include <poll.h>

static rtws_ctx *ctx;
static int poll_style; /* 1: the caller's own poll(2) loop drives ctx */

/* Runs the loop until *flag becomes nonzero or ms pass; returns *flag. */
static int run_until(volatile int *flag, uint32_t ms) {
    uint64_t until = rtws_time_now_ms() + ms;
    while (!*flag && rtws_time_now_ms() < until) {
        if (poll_style) { /* style 1 by hand: fill, poll, service */
            struct pollfd fds[16];
            int n = rtws_ctx_fill_pollfds(ctx, fds, 16), t = rtws_ctx_get_timeout_ms(ctx, rtws_time_now_ms());
            CHECK(n <= 16);
            poll(fds, (nfds_t)n, t < 0 || t > 10 ? 10 : t);
            rtws_ctx_service(ctx, fds, n, rtws_time_now_ms());
        } else {
            rtws_ctx_run_once(ctx, 10);
        }
    }
    return *flag;
}

/* ---- what callbacks record ---- */
typedef struct got {
    int done;
    rtws_err err;
    rtws_resp_type type;
    char text[256];
    int64_t integer;
} got;

static void on_reply(rtws_redis *r, const rtws_resp_reply *rep, rtws_err err, void *user) {
    got *g = (got *)user;
    (void)r;
    g->done = 1;
    g->err = err;
    if (!rep) return;
    g->type = rep->type;
    g->integer = rep->integer;
    if (rep->str) {
        size_t n = rep->len < sizeof g->text - 1 ? rep->len : sizeof g->text - 1;
        memcpy(g->text, rep->str, n);
        g->text[n] = 0;
    }
}

static got cmd(rtws_redis *r, const char *a0, const char *a1, const char *a2, const char *a3) {
    const char *argv[4];
    int argc = 0;
    got g;
    memset(&g, 0, sizeof g);
    argv[argc++] = a0;
    if (a1) argv[argc++] = a1;
    if (a2) argv[argc++] = a2;
    if (a3) argv[argc++] = a3;
    CHECK_EQ(rtws_redis_command(r, argc, argv, NULL, on_reply, &g), RTWS_OK);
    CHECK(run_until(&g.done, 3000));
    return g;
}

typedef struct watch {
    int open, reconnecting, handshake_failed;
    rtws_redis_state state;
    rtws_err last;
} watch;

static void on_state(rtws_redis *r, rtws_redis_state s, rtws_err err, void *user) {
    watch *w = (watch *)user;
    (void)r;
    w->state = s;
    if (s == RTWS_REDIS_OPEN) w->open++;
    if (s == RTWS_REDIS_RECONNECTING) {
        w->reconnecting++;
        w->last = err;
        if (err == RTWS_ERR_HANDSHAKE) w->handshake_failed = 1;
    }
}

static rtws_redis *connect_to(const char *url, watch *w, int subscriber,
                              void (*on_msg)(rtws_redis *, const rtws_redis_message *, void *)) {
    rtws_redis_config cfg;
    rtws_err err = RTWS_OK;
    rtws_redis *r;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = url;
    cfg.on_state = on_state;
    cfg.on_message = on_msg;
    cfg.subscriber = subscriber;
    cfg.user = w;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 300;
    r = rtws_redis_new(ctx, &cfg, rtws_time_now_ms(), &err);
    CHECK(r != NULL && err == RTWS_OK);
    return r;
}

/* ---- pipelining: replies in order ---- */
static int pipe_next = 1, pipe_bad = 0, pipe_done = 0;
static void on_incr(rtws_redis *r, const rtws_resp_reply *rep, rtws_err err, void *user) {
    (void)r;
    if (err != RTWS_OK || !rep || rep->type != RTWS_RESP_INTEGER || rep->integer != pipe_next ||
        (intptr_t)user != pipe_next)
        pipe_bad++;
    pipe_next++;
    if (pipe_next > 10000) pipe_done = 1;
}

/* ---- pub/sub ---- */
typedef struct subs {
    int subscribed, messages, pmessages, smessages;
    char last[64];
} subs;
static subs S;
static void on_msg(rtws_redis *r, const rtws_redis_message *m, void *user) {
    (void)r, (void)user;
    if (m->type == RTWS_REDIS_SUBSCRIBED) S.subscribed++;
    if (m->type != RTWS_REDIS_MESSAGE) return;
    if (m->kind == RTWS_REDIS_CHANNEL) S.messages++;
    if (m->kind == RTWS_REDIS_PATTERN) S.pmessages++;
    if (m->kind == RTWS_REDIS_SHARD) S.smessages++;
    snprintf(S.last, sizeof S.last, "%.*s=%.*s", (int)m->channel_len, m->channel, (int)m->len,
             m->data);
}


/* ---- a fake server: bytes that are not RESP, a reply nobody asked for ---- */
static int fake_listen(int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* Runs the loop until the listener has a connection, accepts it. */
static int fake_accept(int lfd) {
    uint64_t until = rtws_time_now_ms() + 3000;
    while (rtws_time_now_ms() < until) {
        struct pollfd p;
        p.fd = lfd;
        p.events = POLLIN;
        if (poll(&p, 1, 0) == 1) return accept(lfd, NULL, NULL);
        rtws_ctx_run_once(ctx, 10);
    }
    return -1;
}

/* Runs the loop until fd has bytes (a command), reads them. */
static size_t fake_read(int fd, char *buf, size_t cap) {
    uint64_t until = rtws_time_now_ms() + 3000;
    while (rtws_time_now_ms() < until) {
        struct pollfd p;
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, 0) == 1) {
            ssize_t n = read(fd, buf, cap);
            return n > 0 ? (size_t)n : 0;
        }
        rtws_ctx_run_once(ctx, 10);
    }
    return 0;
}

static void test_fake_server(void) {
    int port = 0, lfd = fake_listen(&port), c;
    char url[64], buf[256];
    watch w;
    rtws_redis *r;
    got g;
    const char *ping[] = {"PING"};
    rtws_redis_config cfg;
    rtws_err err;
    CHECK(lfd >= 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    memset(&w, 0, sizeof w);
    memset(&cfg, 0, sizeof cfg);
    cfg.url = url;
    cfg.on_state = on_state;
    cfg.user = &w;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 100;
    cfg.resp.max_bulk = 16;
    r = rtws_redis_new(ctx, &cfg, rtws_time_now_ms(), &err);
    /* 1: a reply that is not RESP fails the command with RTWS_ERR_PROTOCOL */
    c = fake_accept(lfd);
    CHECK(c >= 0);
    memset(&g, 0, sizeof g);
    CHECK_EQ(rtws_redis_command(r, 1, ping, NULL, on_reply, &g), RTWS_OK);
    CHECK(fake_read(c, buf, sizeof buf) == 14 && !memcmp(buf, "*1\r\n$4\r\nPING\r\n", 14));
    CHECK(write(c, "%%%\r\n", 5) == 5);
    CHECK(run_until(&g.done, 3000));
    CHECK(g.err == RTWS_ERR_PROTOCOL && w.last == RTWS_ERR_PROTOCOL);
    close(c);
    /* 2: over cfg.resp.max_bulk: the same */
    c = fake_accept(lfd);
    CHECK(c >= 0);
    memset(&g, 0, sizeof g);
    CHECK_EQ(rtws_redis_command(r, 1, ping, NULL, on_reply, &g), RTWS_OK);
    CHECK(fake_read(c, buf, sizeof buf) == 14);
    CHECK(write(c, "$17\r\n", 5) == 5);
    CHECK(run_until(&g.done, 3000));
    CHECK(g.err == RTWS_ERR_PROTOCOL);
    close(c);
    /* 3: a reply nobody asked for drops the connection, which comes back */
    c = fake_accept(lfd);
    CHECK(c >= 0);
    {
        int before = w.reconnecting;
        uint64_t until = rtws_time_now_ms() + 3000;
        CHECK(run_until(&w.open, 3000));
        CHECK(write(c, "+OK\r\n", 5) == 5);
        while (w.reconnecting == before && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
        CHECK(w.reconnecting == before + 1 && w.last == RTWS_ERR_PROTOCOL);
    }
    close(c);
    /* 4: the server closes: a command in flight gets RTWS_ERR_ABNORMAL */
    c = fake_accept(lfd);
    CHECK(c >= 0);
    memset(&g, 0, sizeof g);
    CHECK_EQ(rtws_redis_command(r, 1, ping, NULL, on_reply, &g), RTWS_OK);
    CHECK(fake_read(c, buf, sizeof buf) == 14);
    close(c);
    CHECK(run_until(&g.done, 3000));
    CHECK(g.err == RTWS_ERR_ABNORMAL);
    rtws_redis_free(r);
    close(lfd);
}

static void test_url(void) {
    rtws_redis_url u;
    CHECK_EQ(rtws_redis_url_parse("redis://alice:p@ss@h.example:6380/4", &u), RTWS_OK);
    CHECK(u.host_len == 9 && !memcmp(u.host, "h.example", 9) && u.port == 6380 && u.db == 4);
    CHECK(u.user_len == 5 && !memcmp(u.user, "alice", 5));
    CHECK(u.password_len == 4 && !memcmp(u.password, "p@ss", 4));
    CHECK_EQ(rtws_redis_url_parse("redis://:secret@127.0.0.1", &u), RTWS_OK);
    CHECK(u.user == NULL && u.password_len == 6 && u.port == 6379 && u.db == 0);
    CHECK_EQ(rtws_redis_url_parse("redis://[::1]:7000/", &u), RTWS_OK);
    CHECK(u.host_len == 3 && !memcmp(u.host, "::1", 3) && u.port == 7000);
    CHECK_EQ(rtws_redis_url_parse("redis://h:0", &u), RTWS_ERR_URL);
    CHECK_EQ(rtws_redis_url_parse("redis://h:70000", &u), RTWS_ERR_URL);
    CHECK_EQ(rtws_redis_url_parse("redis://h/x", &u), RTWS_ERR_URL);
    CHECK_EQ(rtws_redis_url_parse("redis://", &u), RTWS_ERR_URL);
    CHECK_EQ(rtws_redis_url_parse("http://h", &u), RTWS_ERR_URL);
    CHECK_EQ(rtws_redis_url_parse("rediss://h", &u), RTWS_ERR_TLS);
}

int main(void) {
    rtws_ctx_config cc;
    char url[128], url3[128], urlp[128];
    int port, port2;
    pid_t pid, pid2;
    watch w1, w2, w3, ws, wp, wbad, wacl;
    rtws_redis *r, *r3, *sub, *pub, *rp, *bad, *acl;
    got g, blk;
    static const char *const pass[] = {"--requirepass", "s3cret", NULL};
    test_url();
    if ((port = redis_find("e2e_redis")) <= 0) return port < 0;
    signal(SIGPIPE, SIG_IGN);
    memset(&cc, 0, sizeof cc);
    ctx = rtws_ctx_new(&cc);
    test_fake_server();
    port = 0;
    pid = redis_start(&port, NULL);
    CHECK(pid > 0);
    if (pid <= 0) return T_END();
    memset(&w1, 0, sizeof w1);
    memset(&w3, 0, sizeof w3);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    snprintf(url3, sizeof url3, "redis://127.0.0.1:%d/3", port);
    r = connect_to(url, &w1, 0, NULL);
    /* queued before the connection is up, sent after it */
    g = cmd(r, "SET", "greeting", "hello", NULL);
    CHECK(w1.open == 1 && g.err == RTWS_OK && g.type == RTWS_RESP_STRING && !strcmp(g.text, "OK"));
    g = cmd(r, "GET", "greeting", NULL, NULL);
    CHECK(g.type == RTWS_RESP_BULK && !strcmp(g.text, "hello"));
    g = cmd(r, "GET", "nothing-here", NULL, NULL);
    CHECK(g.err == RTWS_OK && g.type == RTWS_RESP_NIL);
    g = cmd(r, "LPUSH", "greeting", "x", NULL);
    CHECK(g.type == RTWS_RESP_ERROR && !strncmp(g.text, "WRONGTYPE", 9));
    { /* binary-safe arguments */
        const char *argv[] = {"SET", "bin", "a\0b\r\nc"};
        size_t lens[] = {3, 3, 6};
        got gb;
        memset(&gb, 0, sizeof gb);
        CHECK_EQ(rtws_redis_command(r, 3, argv, lens, on_reply, &gb), RTWS_OK);
        CHECK(run_until(&gb.done, 3000));
        g = cmd(r, "STRLEN", "bin", NULL, NULL);
        CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 6);
    }

    /* 10,000 commands at once, replies in order */
    {
        int i;
        uint64_t t0 = rtws_time_now_ms();
        const char *argv[] = {"INCR", "counter"};
        for (i = 1; i <= 10000; i++)
            if (rtws_redis_command(r, 2, argv, NULL, on_incr, (void *)(intptr_t)i) != RTWS_OK) pipe_bad++;
        CHECK_EQ(rtws_redis_get_pending(r), 10000);
        CHECK(run_until(&pipe_done, 10000));
        CHECK_EQ(pipe_bad, 0);
        CHECK_EQ(pipe_next, 10001);
        CHECK_EQ(rtws_redis_get_pending(r), 0);
        printf("10000 pipelined INCRs: %llu ms\n", (unsigned long long)(rtws_time_now_ms() - t0));
    }

    /* SELECT: db 3 holds its own keys */
    r3 = connect_to(url3, &w3, 0, NULL);
    g = cmd(r3, "SET", "only-in-3", "yes", NULL);
    CHECK(g.type == RTWS_RESP_STRING);
    g = cmd(r3, "GET", "only-in-3", NULL, NULL);
    CHECK(g.type == RTWS_RESP_BULK && !strcmp(g.text, "yes"));
    g = cmd(r, "GET", "only-in-3", NULL, NULL);
    CHECK(g.type == RTWS_RESP_NIL);
    g = cmd(r3, "CLIENT", "INFO", NULL, NULL);
    CHECK(strstr(g.text, " db=3 ") != NULL);

    /* pub/sub across two connections */
    memset(&ws, 0, sizeof ws);
    sub = connect_to(url, &ws, 1, on_msg);
    CHECK_EQ(rtws_redis_command(sub, 1, (const char *const *)&url, NULL, NULL, NULL), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_redis_subscribe(r, RTWS_REDIS_CHANNEL, "x", 1), RTWS_ERR_INVALID);
    rtws_redis_subscribe(sub, RTWS_REDIS_CHANNEL, "news", 4);
    rtws_redis_subscribe(sub, RTWS_REDIS_PATTERN, "n*", 2);
    rtws_redis_subscribe(sub, RTWS_REDIS_SHARD, "shard1", 6);
    {
        volatile int three = 0;
        uint64_t until = rtws_time_now_ms() + 3000;
        while (S.subscribed < 3 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
        three = S.subscribed == 3;
        CHECK(three);
    }
    pub = r;
    g = cmd(pub, "PUBLISH", "news", "extra", NULL);
    CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 2); /* the channel and the pattern */
    g = cmd(pub, "SPUBLISH", "shard1", "sharded", NULL);
    CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 1);
    {
        uint64_t until = rtws_time_now_ms() + 3000;
        while ((S.messages < 1 || S.pmessages < 1 || S.smessages < 1) && rtws_time_now_ms() < until)
            rtws_ctx_run_once(ctx, 10);
        CHECK(S.messages == 1 && S.pmessages == 1 && S.smessages == 1);
        CHECK(!strcmp(S.last, "shard1=sharded"));
    }

    /* the server dies: the command in flight fails, the subscriber and the
       command connections come back when it does */
    memset(&blk, 0, sizeof blk);
    {
        const char *argv[] = {"BLPOP", "never", "0"};
        CHECK_EQ(rtws_redis_command(r, 3, argv, NULL, on_reply, &blk), RTWS_OK);
        rtws_ctx_run_once(ctx, 50);
        rtws_ctx_run_once(ctx, 50);
    }
    stop_pid(pid, SIGKILL);
    CHECK(run_until(&blk.done, 3000));
    CHECK(blk.err != RTWS_OK && blk.type == RTWS_RESP_NONE);
    printf("BLPOP in flight when the server died: %s\n", rtws_err_str(blk.err));
    {
        volatile int down = 0;
        uint64_t until = rtws_time_now_ms() + 3000;
        while (!(w1.reconnecting && ws.reconnecting) && rtws_time_now_ms() < until)
            rtws_ctx_run_once(ctx, 10);
        down = w1.reconnecting && ws.reconnecting;
        CHECK(down);
    }
    memset(&g, 0, sizeof g);
    {
        const char *argv[] = {"SET", "after", "restart"};
        CHECK_EQ(rtws_redis_command(r, 3, argv, NULL, on_reply, &g), RTWS_OK); /* waits */
    }
    rtws_ctx_run_once(ctx, 200);
    CHECK(!g.done);
    S.subscribed = 0;
    pid = redis_start(&port, NULL);
    CHECK(pid > 0);
    CHECK(run_until(&g.done, 5000));
    CHECK(g.err == RTWS_OK && g.type == RTWS_RESP_STRING);
    CHECK(w1.open >= 2);
    {
        uint64_t until = rtws_time_now_ms() + 5000;
        while (S.subscribed < 3 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
        CHECK_EQ(S.subscribed, 3);
    }
    g = cmd(pub, "PUBLISH", "news", "again", NULL);
    CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 2);
    {
        uint64_t until = rtws_time_now_ms() + 3000;
        while (S.messages < 2 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
        CHECK(S.messages == 2 && !strcmp(S.last, "news=again"));
    }
    /* unsubscribe: no more messages from it */
    rtws_redis_unsubscribe(sub, RTWS_REDIS_CHANNEL, "news", 4);
    rtws_ctx_run_once(ctx, 100);
    g = cmd(pub, "PUBLISH", "news", "late", NULL);
    CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 1); /* the pattern only */

    /* AUTH: requirepass, then an ACL user, then a wrong password */
    port2 = free_port();
    memset(&wp, 0, sizeof wp);
    snprintf(urlp, sizeof urlp, "redis://:s3cret@127.0.0.1:%d/2", port2);
    rp = connect_to(urlp, &wp, 0, NULL); /* nobody listens yet: refused, retried */
    {
        uint64_t until = rtws_time_now_ms() + 3000;
        while (wp.reconnecting < 2 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
        CHECK(wp.reconnecting >= 2 && wp.last == RTWS_ERR_IO && wp.open == 0);
    }
    pid2 = redis_start(&port2, pass);
    CHECK(pid2 > 0);
    g = cmd(rp, "PING", NULL, NULL, NULL);
    CHECK(g.type == RTWS_RESP_STRING && !strcmp(g.text, "PONG"));
    g = cmd(rp, "ACL", "SETUSER", "alice", "on");
    CHECK(g.type == RTWS_RESP_STRING);
    {
        const char *argv[] = {"ACL", "SETUSER", "alice", ">wonder", "~*", "&*", "+@all"};
        memset(&g, 0, sizeof g);
        CHECK_EQ(rtws_redis_command(rp, 7, argv, NULL, on_reply, &g), RTWS_OK);
        CHECK(run_until(&g.done, 3000) && g.type == RTWS_RESP_STRING);
    }
    memset(&wacl, 0, sizeof wacl);
    snprintf(urlp, sizeof urlp, "redis://alice:wonder@127.0.0.1:%d", port2);
    acl = connect_to(urlp, &wacl, 0, NULL);
    g = cmd(acl, "ACL", "WHOAMI", NULL, NULL);
    CHECK(g.type == RTWS_RESP_BULK && !strcmp(g.text, "alice"));
    memset(&wbad, 0, sizeof wbad);
    snprintf(urlp, sizeof urlp, "redis://alice:wrong@127.0.0.1:%d", port2);
    bad = connect_to(urlp, &wbad, 0, NULL);
    memset(&g, 0, sizeof g);
    {
        const char *argv[] = {"PING"};
        CHECK_EQ(rtws_redis_command(bad, 1, argv, NULL, on_reply, &g), RTWS_OK);
    }
    CHECK(run_until(&wbad.handshake_failed, 3000));
    CHECK(!strncmp(rtws_redis_get_error_text(bad), "WRONGPASS", 9));
    CHECK(!g.done); /* never sent: it waits for a handshake that succeeds */
    rtws_redis_free(bad); /* and fails now */
    CHECK(g.done && g.err == RTWS_ERR_CLOSED);

    /* RESP3 (HELLO 3 with the AUTH): maps, and a subscriber that takes commands */
    {
        rtws_redis_config rc;
        rtws_redis *c3, *s3;
        watch w5, w6;
        rtws_err err;
        const char *hset[] = {"HSET", "h", "field", "1"};
        const char *hgetall[] = {"HGETALL", "h"};
        snprintf(urlp, sizeof urlp, "redis://alice:wonder@127.0.0.1:%d", port2);
        memset(&rc, 0, sizeof rc);
        memset(&w5, 0, sizeof w5);
        memset(&w6, 0, sizeof w6);
        rc.url = urlp;
        rc.resp3 = 1;
        rc.on_state = on_state;
        rc.user = &w5;
        c3 = rtws_redis_new(ctx, &rc, rtws_time_now_ms(), &err);
        g = cmd(c3, "ACL", "WHOAMI", NULL, NULL);
        CHECK(g.type == RTWS_RESP_BULK && !strcmp(g.text, "alice"));
        memset(&g, 0, sizeof g);
        CHECK_EQ(rtws_redis_command(c3, 4, hset, NULL, on_reply, &g), RTWS_OK);
        CHECK(run_until(&g.done, 3000) && g.type == RTWS_RESP_INTEGER);
        memset(&g, 0, sizeof g);
        CHECK_EQ(rtws_redis_command(c3, 2, hgetall, NULL, on_reply, &g), RTWS_OK);
        CHECK(run_until(&g.done, 3000) && g.type == RTWS_RESP_MAP);
        rc.subscriber = 1;
        rc.on_message = on_msg;
        rc.user = &w6;
        s3 = rtws_redis_new(ctx, &rc, rtws_time_now_ms(), &err);
        S.subscribed = S.messages = 0;
        rtws_redis_subscribe(s3, RTWS_REDIS_CHANNEL, "c3", 2);
        {
            uint64_t until = rtws_time_now_ms() + 3000;
            while (S.subscribed < 1 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
            CHECK_EQ(S.subscribed, 1);
        }
        g = cmd(s3, "PING", NULL, NULL, NULL); /* a command on the subscriber */
        CHECK(g.type == RTWS_RESP_STRING && !strcmp(g.text, "PONG"));
        g = cmd(c3, "PUBLISH", "c3", "pushed", NULL);
        CHECK(g.type == RTWS_RESP_INTEGER && g.integer == 1);
        {
            uint64_t until = rtws_time_now_ms() + 3000;
            while (S.messages < 1 && rtws_time_now_ms() < until) rtws_ctx_run_once(ctx, 10);
            CHECK(S.messages == 1 && !strcmp(S.last, "c3=pushed"));
        }
        rtws_redis_free(s3);
        rtws_redis_free(c3);
    }

    /* a command of a connection freed before its reply comes */
    memset(&g, 0, sizeof g);
    {
        const char *argv[] = {"PING"};
        CHECK_EQ(rtws_redis_command(acl, 1, argv, NULL, on_reply, &g), RTWS_OK);
    }
    rtws_redis_free(acl);
    CHECK(g.done && g.err == RTWS_ERR_CLOSED);

    /* the caller's own poll loop drives a second context */
    {
        rtws_ctx *keep = ctx;
        watch wq;
        rtws_redis *rq;
        ctx = rtws_ctx_new(&cc);
        poll_style = 1;
        memset(&wq, 0, sizeof wq);
        rq = connect_to(url, &wq, 0, NULL);
        g = cmd(rq, "SET", "polled", "yes", NULL);
        CHECK(g.type == RTWS_RESP_STRING && wq.open == 1);
        g = cmd(rq, "GET", "polled", NULL, NULL);
        CHECK(g.type == RTWS_RESP_BULK && !strcmp(g.text, "yes"));
        rtws_redis_free(rq);
        rtws_ctx_free(ctx);
        ctx = keep;
        poll_style = 0;
    }

    rtws_redis_free(rp);
    rtws_redis_free(sub);
    rtws_redis_free(r3);
    rtws_redis_free(r);
    rtws_ctx_run_once(ctx, 0);
    CHECK_EQ(rtws_ctx_get_conn_count(ctx), 0);
    rtws_ctx_free(ctx);
    stop_pid(pid, SIGTERM);
    stop_pid(pid2, SIGTERM);
    (void)w2;
    return T_END();
}
