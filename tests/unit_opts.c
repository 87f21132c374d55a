/* Layer 4: rtws_opts_parse, the command line of rtws's programs: defaults,
   values (both "--name value" and "--name=value"), flags, numbers and their
   ranges, required options, every refusal with its message on stderr, and
   the usage written from the table (--help on stdout); and layer 7's
   rtws_server_opts_parse, the shared options of a server written into its
   configurations. POSIX: stdout and stderr are caught with dup2 into
   temporary files. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <limits.h>

#include <unistd.h>

static char OUT[8192], ERR[8192];

static void slurp(FILE *f, char *buf, size_t cap) {
    size_t n;
    rewind(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* the table every case starts from */
static void table(rtws_opt *o) {
    memset(o, 0, 4 * sizeof *o);
    o[0].name = "--host", o[0].arg = "H", o[0].value = "127.0.0.1", o[0].help = "address";
    o[1].name = "--port", o[1].arg = "P", o[1].value = "8080", o[1].max = 65535;
    o[1].help = "port (0: any)";
    o[2].name = "--jwt-secret", o[2].arg = "S", o[2].required = 1, o[2].help = "HS256 key";
    o[3].name = "--verbose", o[3].help = "say more";
}

/* the server's command line (rtws_server_opts_parse) instead of o, when set */
static rtws_server_opts *SO;
static rtws_ctx_config *SCFG;
static rtws_router_config *SRC;

/* parses the NULL-terminated arguments (argv[0] first) with o (or SO); OUT
   and ERR get what it wrote */
static int parse(rtws_opt *o, size_t n, const char *const *args) {
    char *argv[48];
    int argc = 0, r, so, se;
    FILE *fo = tmpfile(), *fe = tmpfile();
    CHECK(fo != NULL && fe != NULL);
    while (args[argc] && argc < 47) {
        argv[argc] = (char *)(size_t)args[argc]; /* (never written) */
        argc++;
    }
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    so = dup(1);
    se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    r = SO ? rtws_server_opts_parse(SO, SCFG, SRC, argc, argv, "A server.")
           : rtws_opts_parse(o, n, argc, argv, "A test program.\nSecond line.");
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, OUT, sizeof OUT);
    slurp(fe, ERR, sizeof ERR);
    return r;
}
static int parse_server(rtws_server_opts *so, rtws_ctx_config *cfg, rtws_router_config *rc,
                        const char *const *args) {
    int r;
    SO = so, SCFG = cfg, SRC = rc;
    r = parse(NULL, 0, args);
    SO = NULL;
    return r;
}

static void test_values(void) {
    rtws_opt o[4];
    static const char *const none[] = {"prog", "--jwt-secret", "k", NULL};
    static const char *const given[] = {
        "/usr/bin/prog", "--port", "9000", "--verbose", "--host", "::1", "--jwt-secret=a=b", NULL};
    table(o);
    CHECK_EQ(parse(o, 4, none), 0);
    CHECK(!strcmp(o[0].value, "127.0.0.1") && !strcmp(o[1].value, "8080") && o[1].num == 8080);
    CHECK(!strcmp(o[2].value, "k") && o[3].value == NULL && o[3].num == 0);
    CHECK(OUT[0] == '\0' && ERR[0] == '\0');
    table(o);
    CHECK_EQ(parse(o, 4, given), 0);
    CHECK(!strcmp(o[0].value, "::1") && o[1].num == 9000 && !strcmp(o[1].value, "9000"));
    CHECK(!strcmp(o[2].value, "a=b")); /* "=" splits once: the value keeps the rest */
    CHECK(!strcmp(o[3].value, "1") && o[3].num == 1);
    CHECK(OUT[0] == '\0' && ERR[0] == '\0');
    { /* the last one given counts; the range's ends are in it */
        static const char *const twice[] = {"p", "--port", "1", "--port=0", "--jwt-secret",
                                            "",  NULL};
        static const char *const top[] = {"p", "--jwt-secret", "x", "--port", "65535", NULL};
        table(o);
        CHECK_EQ(parse(o, 4, twice), 0);
        CHECK(o[1].num == 0 && !strcmp(o[2].value, ""));
        table(o);
        CHECK_EQ(parse(o, 4, top), 0);
        CHECK(o[1].num == 65535);
    }
}

/* each refusal: -1, why on stderr with the usage after it, nothing on stdout */
static void refused(const char *const *args, const char *why) {
    rtws_opt o[4];
    table(o);
    CHECK_EQ(parse(o, 4, args), -1);
    CHECK(strstr(ERR, why) == ERR);
    CHECK(strstr(ERR, "\nusage: prog ") != NULL);
    CHECK(OUT[0] == '\0');
    if (strstr(ERR, why) != ERR)
        printf("  stderr was: %s\n", ERR);
}

static void test_refusals(void) {
    static const char *const unknown[] = {"prog", "--jwt-secret", "k", "--nope", NULL};
    static const char *const positional[] = {"prog", "file.txt", NULL};
    static const char *const missing[] = {"prog", "--jwt-secret", "k", "--port", NULL};
    static const char *const range[] = {"prog", "--jwt-secret", "k", "--port", "65536", NULL};
    static const char *const negative[] = {"prog", "--jwt-secret", "k", "--port", "-1", NULL};
    static const char *const junk[] = {"prog", "--jwt-secret", "k", "--port", "80x", NULL};
    static const char *const empty[] = {"prog", "--jwt-secret", "k", "--port=", NULL};
    static const char *const huge[] = {
        "prog", "--jwt-secret", "k", "--port", "99999999999999999999999", NULL};
    static const char *const required[] = {"prog", "--port", "1", NULL};
    static const char *const flagval[] = {"prog", "--jwt-secret", "k", "--verbose=yes", NULL};
    static const char *const prefix[] = {"prog", "--jwt-secret", "k", "--por", "1", NULL};
    refused(unknown, "prog: unknown option --nope\n");
    refused(positional, "prog: unknown option file.txt\n");
    refused(prefix, "prog: unknown option --por\n");
    refused(missing, "prog: --port needs a value (P)\n");
    refused(range, "prog: --port wants a whole number from 0 to 65535, not \"65536\"\n");
    refused(negative, "prog: --port wants a whole number from 0 to 65535, not \"-1\"\n");
    refused(junk, "prog: --port wants a whole number from 0 to 65535, not \"80x\"\n");
    refused(empty, "prog: --port wants a whole number from 0 to 65535, not \"\"\n");
    refused(huge, "prog: --port wants a whole number");
    refused(required, "prog: --jwt-secret S is required\n");
    refused(flagval, "prog: --verbose takes no value\n");
    {
        static const char *const blank[] = {"prog", "--jwt-secret", "k", "--port", " 80", NULL};
        refused(blank, "prog: --port wants a whole number from 0 to 65535, not \" 80\"\n");
    }
    { /* a default out of its range is the program's mistake, and said the same way */
        rtws_opt o[4];
        static const char *const ok[] = {"prog", "--jwt-secret", "k", NULL};
        table(o);
        o[1].value = "http";
        CHECK_EQ(parse(o, 4, ok), -1);
        CHECK(strstr(ERR, "prog: --port wants a whole number from 0 to 65535, not \"http\"") ==
              ERR);
    }
}

static void test_usage(void) {
    rtws_opt o[4], many[12];
    static const char *const help[] = {"./bin/prog", "--port", "1", "--help", "--nope", NULL};
    static const char *const h[] = {"prog", "-h", NULL};
    static const char *const as_value[] = {"prog", "--jwt-secret", "--help", NULL};
    static const char *const names[] = {"--alpha", "--bravo",   "--charlie", "--delta",
                                        "--echo",  "--foxtrot", "--golf",    "--hotel",
                                        "--india", "--juliett", "--kilo",    "--lima"};
    const char *line, *nl;
    size_t i;
    table(o);
    CHECK_EQ(parse(o, 4, help), 1); /* at once: what follows is not read */
    CHECK(ERR[0] == '\0');
    CHECK(strstr(OUT, "usage: prog [--host H] [--port P] --jwt-secret S [--verbose]\n"
                      "A test program.\nSecond line.\n") == OUT);
    CHECK(strstr(OUT, "\n  --host H        address (default 127.0.0.1)\n") != NULL);
    CHECK(strstr(OUT, "\n  --port P        port (0: any) (default 8080)\n") != NULL);
    CHECK(strstr(OUT, "\n  --jwt-secret S  HS256 key (required)\n") != NULL);
    CHECK(strstr(OUT, "\n  --verbose       say more\n") != NULL);
    table(o);
    CHECK_EQ(parse(o, 4, h), 1);
    CHECK(strstr(OUT, "usage: prog ") == OUT);
    table(o); /* "--help" as an option's value is that value */
    CHECK_EQ(parse(o, 4, as_value), 0);
    CHECK(!strcmp(o[2].value, "--help") && OUT[0] == '\0');
    /* a long synopsis is wrapped before column 80 */
    memset(many, 0, sizeof many);
    for (i = 0; i < 12; i++)
        many[i].name = names[i], many[i].arg = "VALUE";
    CHECK_EQ(parse(many, 12, h), 1);
    for (line = OUT, i = 0; (nl = strchr(line, '\n')) != NULL && i < 3; line = nl + 1, i++)
        CHECK(nl - line < 80);
    CHECK(strstr(OUT, "\n       [--") != NULL); /* a continuation line */
    CHECK(strstr(OUT, "[--lima VALUE]\n") != NULL);
}

static int custom_auth(rtws_router *r, rtws_conn *c, const char *token, size_t len,
                       char user_id[64], void *user) {
    (void)r, (void)c, (void)token, (void)len, (void)user_id, (void)user;
    return -1;
}

/* rtws_server_opts_parse: the shared options land in their fields, given
   ones only; ranges; the router's only with a router; the program's own */
static void test_server(void) {
    rtws_ctx_config cfg;
    rtws_router_config rc;
    rtws_opt own[1];
    rtws_server_opts so;
    static const char *const none[] = {"srv", NULL};
    static const char *const all[] = {"srv",
                                      "--host",
                                      "::1",
                                      "--port",
                                      "0",
                                      "--max-connections",
                                      "7",
                                      "--idle-timeout-ms",
                                      "0",
                                      "--ping-interval-ms=0",
                                      "--handshake-timeout-ms",
                                      "2500",
                                      "--message-timeout-ms",
                                      "900",
                                      "--max-message",
                                      "33554432",
                                      "--jwt-secret",
                                      "k3y",
                                      "--auth-timeout-ms",
                                      "1500",
                                      "--token-grace-ms",
                                      "40",
                                      "--max-per-user",
                                      "0",
                                      "--max-channels",
                                      "3",
                                      "--history",
                                      "9",
                                      "--rate",
                                      "50",
                                      "--redis",
                                      "redis://127.0.0.1:1",
                                      "--sent",
                                      "4",
                                      NULL};
    static const char *const ping[] = {"srv", "--ping-interval-ms", "5000", NULL};
    static const char *const help[] = {"srv", "--help", NULL};
    static const char *const bad_port[] = {"srv", "--port", "70000", "--jwt-secret", "s", NULL};
    static const char *const bad_hist[] = {"srv", "--history", "0", NULL};
    static const char *const bad_conns[] = {"srv", "--max-connections", "-1", NULL};
    static const char *const routerless[] = {"srv", "--jwt-secret", "s", NULL};
#define RESET()                                                                                    \
    (memset(&cfg, 0, sizeof cfg), memset(&rc, 0, sizeof rc), memset(own, 0, sizeof own),           \
     own[0].name = "--sent", own[0].arg = "N", own[0].value = "50", own[0].max = 1000,             \
     own[0].help = "sent on join", memset(&so, 0, sizeof so), so.port = 8000, so.own = own,        \
     so.n_own = 1, cfg.conn.idle_timeout_ms = 3600000, rc.max_conns_per_user = 5)
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, none), 0); /* nothing given: nothing written */
    CHECK(!strcmp(so.host, "127.0.0.1") && so.port == 8000 && own[0].num == 50);
    CHECK(cfg.max_connections == 0 && cfg.conn.idle_timeout_ms == 3600000 &&
          cfg.conn.ping_interval_ms == 0 && !cfg.conn.heartbeat_off && cfg.conn.max_message == 0);
    CHECK(rc.jwt_secret == NULL && rc.auth_timeout_ms == 0 && rc.max_conns_per_user == 5 &&
          rc.history == 0 && rc.redis_url == NULL);
    CHECK(OUT[0] == '\0' && ERR[0] == '\0');
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, all), 0);
    CHECK(!strcmp(so.host, "::1") && so.port == 0 && own[0].num == 4);
    CHECK(cfg.max_connections == 7 && cfg.conn.idle_timeout_ms == 0 && cfg.conn.heartbeat_off);
    CHECK(cfg.conn.handshake_timeout_ms == 2500 && cfg.conn.message_timeout_ms == 900);
    CHECK(cfg.conn.max_message == 33554432 && cfg.conn.max_frame == 33554432);
    CHECK(rc.jwt_secret_len == 3 && !memcmp(rc.jwt_secret, "k3y", 3));
    CHECK(rc.auth_timeout_ms == 1500 && rc.token_grace_ms == 40 && rc.max_conns_per_user == 0);
    CHECK(rc.max_channels == 3 && rc.history == 9 && rc.rate_per_s == 50);
    CHECK(rc.redis_url && !strcmp(rc.redis_url, "redis://127.0.0.1:1"));
    RESET();
    cfg.conn.heartbeat_off = 1; /* a ping interval given turns the heartbeat on */
    CHECK_EQ(parse_server(&so, &cfg, &rc, ping), 0);
    CHECK(cfg.conn.ping_interval_ms == 5000 && !cfg.conn.heartbeat_off);
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, help), 1);
    CHECK(strstr(OUT, "usage: srv [--host H] [--port P] [--max-connections N]") == OUT);
    CHECK(strstr(OUT, "\nA server.\n") != NULL);
    CHECK(strstr(OUT, "(0: off) (default 3600000)\n") != NULL);      /* the field's value */
    CHECK(strstr(OUT, "else close 1008 (default 10000)\n") != NULL); /* 0: the library's */
    CHECK(strstr(OUT, "no limit) (default 5)\n") != NULL);
    CHECK(strstr(OUT, "  --sent N ") != NULL && strstr(OUT, "--redis URL") != NULL);
    RESET();
    so.need_secret = 1;
    CHECK_EQ(parse_server(&so, &cfg, &rc, none), -1);
    CHECK(strstr(ERR, "srv: --jwt-secret S is required\n") == ERR);
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, bad_port), -1);
    CHECK(strstr(ERR, "srv: --port wants a whole number from 0 to 65535, not \"70000\"\n") == ERR);
    /* the usage after a refusal shows the defaults, not what was given (nor the secret) */
    CHECK(strstr(ERR, "(default 8000)") != NULL && strstr(ERR, "70000)") == NULL);
    CHECK(strstr(ERR, "(default s)") == NULL);
    CHECK(so.port == 8000 && rc.jwt_secret == NULL);
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, bad_hist), -1);
    CHECK(strstr(ERR, "srv: --history wants a whole number from 1 to") == ERR && rc.history == 0);
    RESET();
    CHECK_EQ(parse_server(&so, &cfg, &rc, bad_conns), -1);
    CHECK(strstr(ERR, "srv: --max-connections wants a whole number from 0 to") == ERR);
    RESET();
    so.need_secret = 1; /* without a router there is no secret to need */
    CHECK_EQ(parse_server(&so, &cfg, NULL, routerless), -1);
    CHECK(strstr(ERR, "srv: unknown option --jwt-secret\n") == ERR);
    CHECK_EQ(parse_server(&so, &cfg, NULL, none), 0);
    RESET(); /* nor with the application's own token check */
    rc.auth = custom_auth;
    CHECK_EQ(parse_server(&so, &cfg, &rc, routerless), -1);
    CHECK(strstr(ERR, "srv: unknown option --jwt-secret\n") == ERR);
    CHECK_EQ(parse_server(&so, &cfg, &rc, all + 0), -1); /* (all has --jwt-secret) */
    {
        static const char *const port_only[] = {"srv", "--port", "5", "--max-per-user", "2", NULL};
        CHECK_EQ(parse_server(&so, &cfg, &rc, port_only), 0);
        CHECK(rc.jwt_secret == NULL && rc.jwt_secret_len == 0 && so.port == 5); /* nothing else */
        CHECK(rc.max_conns_per_user == 2 && rc.redis_url == NULL && rc.history == 0);
    }
    {
        static const char *const grace[] = {"srv", "--token-grace-ms", "5", NULL};
        CHECK_EQ(parse_server(&so, &cfg, &rc, grace), -1); /* a JWT setting: not offered */
        CHECK(strstr(ERR, "srv: unknown option --token-grace-ms\n") == ERR);
        CHECK_EQ(parse_server(&so, &cfg, &rc, help), 1);
        CHECK(strstr(OUT, "--jwt-secret") == NULL && strstr(OUT, "--token-grace-ms") == NULL);
        CHECK(strstr(OUT, "--max-per-user N") != NULL);
    }
#undef RESET
}

/* the rule on its own, for numbers a program reads itself */
static void test_number(void) {
    long v = 7;
    CHECK(rtws_opt_number("0", 0, 10, &v) && v == 0);
    CHECK(rtws_opt_number("10", 0, 10, &v) && v == 10);
    CHECK(rtws_opt_number("-5", -10, 10, &v) && v == -5);
    CHECK(rtws_opt_number("+5", -10, 10, &v) && v == 5);
    CHECK(rtws_opt_number("0012", 0, 100, &v) && v == 12);
    v = 7;
    CHECK(!rtws_opt_number("11", 0, 10, &v));
    CHECK(!rtws_opt_number("-1", 0, 10, &v));
    CHECK(!rtws_opt_number("", 0, 10, &v));
    CHECK(!rtws_opt_number(NULL, 0, 10, &v));
    CHECK(!rtws_opt_number("5x", 0, 10, &v));
    CHECK(!rtws_opt_number("5 ", 0, 10, &v));
    CHECK(!rtws_opt_number(" 5", 0, 10, &v));
    CHECK(!rtws_opt_number("\t5", 0, 10, &v));
    CHECK(!rtws_opt_number("0x5", 0, 10, &v));
    CHECK(!rtws_opt_number("5.0", 0, 10, &v));
    CHECK(!rtws_opt_number("-", -10, 10, &v));
    CHECK(!rtws_opt_number("99999999999999999999999", 0, LONG_MAX, &v)); /* overflow */
    CHECK(!rtws_opt_number("-99999999999999999999999", LONG_MIN, 0, &v));
    CHECK_EQ(v, 7); /* untouched by every refusal */
    CHECK(rtws_opt_number("9223372036854775807", 0, LONG_MAX, &v) || sizeof(long) < 8);
}

int main(void) {
    test_number();
    test_values();
    test_refusals();
    test_usage();
    test_server();
    return T_END();
}
