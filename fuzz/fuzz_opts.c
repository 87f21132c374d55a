/* libFuzzer target for rtws_opts_parse (layer 4: a program's command line).

   Input: byte 0 chooses the table's variant (bit 0: --port's default is
   out of its range; bit 1: --key is required; bit 2: no about text); the
   rest, split at NULs, gives up to 31 arguments after argv[0] = "prog".

   Invariants, abort() when broken:
   - no read outside the arguments or the table (ASan), no UB (UBSan);
   - the result is -1, 0 or 1;
   - on 0: a number option's num is within [min, max] and is its value read
     as a number; a flag's value is NULL or "1" (num 0 or 1); a required
     option has a value; every other value is its default or one of the
     arguments (or the part of one after "--name=");
   - a default out of range is never accepted: 0 only when the argument
     replaced it.
   With bit 3 of byte 0 the same arguments go to rtws_server_opts_parse
   (the server's shared options and one own option; bit 4: a router config,
   bit 5: --jwt-secret required, bit 6: a custom token check, so no
   --jwt-secret), and:
   - the result is -1, 0 or 1; on -1 and 1 the configs are unchanged;
   - on 0: the port is in 0..65535 and the host non-NULL; every limit is
     its value before or one in its option's range; --max-message given
     leaves max_frame at least as large; a secret's length is its strlen
     and it is one of the arguments (no secret and no token grace with the
     custom check); the own
     option's num is in range.
   What it writes (the usage, the refusals) goes to /dev/null. */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#define NOPT 5
#define NARG 32

static int from_args(const char *v, char **argv, int argc) {
    int i;
    for (i = 1; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (v >= argv[i] && v <= argv[i] + len)
            return 1;
    }
    return 0;
}

static int custom_auth(rtws_router *r, rtws_conn *c, const char *token, size_t len,
                       char user_id[64], void *user) {
    (void)r, (void)c, (void)token, (void)len, (void)user_id, (void)user;
    return -1;
}

/* rtws_server_opts_parse on argv; SERVER_OK: its invariants held (checked
   after stdout and stderr are back) */
static int SERVER_OK;
static void server(uint8_t how, int argc, char **argv) {
    rtws_ctx_config cfg, cfg0;
    rtws_router_config rc, rc0;
    rtws_opt own;
    rtws_server_opts so;
    int r, ok = 1;
    memset(&cfg, 0, sizeof cfg);
    memset(&rc, 0, sizeof rc);
    memset(&own, 0, sizeof own);
    cfg.conn.idle_timeout_ms = 5000, cfg.max_connections = 7, rc.max_conns_per_user = 3;
    own.name = "--sent", own.arg = "N", own.value = "5", own.min = 1, own.max = 9;
    memset(&so, 0, sizeof so);
    so.port = 8080, so.need_secret = (how & 32) != 0, so.own = &own, so.n_own = 1;
    if (how & 64)
        rc.auth = custom_auth; /* the application checks tokens: no --jwt-secret */
    cfg0 = cfg, rc0 = rc;
    r = rtws_server_opts_parse(&so, &cfg, how & 16 ? &rc : NULL, argc, argv, "About.");
    ok = r == -1 || r == 0 || r == 1;
    if (r != 0) {
        ok = ok && !memcmp(&cfg, &cfg0, sizeof cfg) && !memcmp(&rc, &rc0, sizeof rc);
    } else {
        ok = ok && so.host && so.port >= 0 && so.port <= 65535 && own.num >= 1 && own.num <= 9;
        ok = ok && (cfg.max_connections == 7 || cfg.max_connections <= 100000000u);
        ok = ok && (cfg.conn.idle_timeout_ms == 5000 || cfg.conn.idle_timeout_ms <= 86400000u);
        ok = ok && cfg.conn.ping_interval_ms <= 86400000u &&
             cfg.conn.message_timeout_ms <= 86400000u;
        ok = ok && cfg.conn.handshake_timeout_ms <= 86400000u;
        ok = ok && cfg.conn.max_message <= ((size_t)1 << 30);
        ok = ok &&
             cfg.conn.max_message <= (cfg.conn.max_frame ? cfg.conn.max_frame : (size_t)16 << 20);
        ok = ok && (!cfg.conn.heartbeat_off || cfg.conn.ping_interval_ms == 0);
        if (how & 16) {
            ok = ok && (rc.max_conns_per_user == 3 || rc.max_conns_per_user <= 100000000u);
            ok = ok && (rc.history == 0 || (rc.history >= 1 && rc.history <= 10000000u));
            ok = ok && (rc.max_channels == 0 || rc.max_channels >= 1) && rc.rate_per_s <= 1000000u;
            ok = ok && (rc.auth_timeout_ms == 0 || rc.auth_timeout_ms >= 1);
            ok = ok && (!(how & 32) || (how & 64) || rc.jwt_secret);
            ok = ok && (!(how & 64) || (!rc.jwt_secret && !rc.token_grace_ms));
            ok = ok &&
                 (!rc.jwt_secret || (rc.jwt_secret_len == strlen((const char *)rc.jwt_secret) &&
                                     from_args((const char *)rc.jwt_secret, argv, argc)));
            ok = ok && (!rc.redis_url || from_args(rc.redis_url, argv, argc));
        }
    }
    SERVER_OK = ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static char buf[4096];
    static int null_fd = -1, out_fd = -1, err_fd = -1;
    static const char *const defaults[NOPT] = {"127.0.0.1", "8080", NULL, "-3", NULL};
    char *argv[NARG + 1], *p, *end;
    const char *init[NOPT];
    rtws_opt o[NOPT];
    int argc = 1, r, k;
    if (n < 1)
        return 0;
    if (n - 1 >= sizeof buf)
        n = sizeof buf;
    memset(o, 0, sizeof o);
    o[0].name = "--host", o[0].arg = "H", o[0].help = "address";
    o[1].name = "--port", o[1].arg = "P", o[1].max = 65535, o[1].help = "port";
    o[2].name = "--key", o[2].arg = "S", o[2].required = d[0] & 2, o[2].help = "secret";
    o[3].name = "--level", o[3].arg = "N", o[3].min = -5, o[3].max = 5, o[3].help = "level";
    o[4].name = "--verbose", o[4].help = "flag";
    for (k = 0; k < NOPT; k++)
        o[k].value = defaults[k];
    if (d[0] & 1)
        o[1].value = "70000";
    for (k = 0; k < NOPT; k++)
        init[k] = o[k].value;
    /* the arguments, NUL-terminated copies in buf */
    memcpy(buf, d + 1, n - 1);
    buf[n - 1] = '\0';
    argv[0] = (char *)(size_t) "prog";
    for (p = buf, end = buf + n - 1; p < end && argc < NARG; argc++) {
        argv[argc] = p;
        p += strlen(p) + 1;
    }
    argv[argc] = NULL;
    if (null_fd < 0) {
        null_fd = open("/dev/null", O_WRONLY);
        out_fd = dup(1);
        err_fd = dup(2);
        FUZZ_CHECK(null_fd >= 0 && out_fd >= 0 && err_fd >= 0);
    }
    fflush(stdout);
    fflush(stderr);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    if (d[0] & 8) {
        server(d[0], argc, argv);
        r = 0;
        goto restore;
    }
    r = rtws_opts_parse(o, NOPT, argc, argv, d[0] & 4 ? NULL : "About it.");
restore:
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    FUZZ_CHECK(r == -1 || r == 0 || r == 1);
    if (d[0] & 8) {
        FUZZ_CHECK(SERVER_OK);
        return 0;
    }
    if (r != 0)
        return 0;
    if (d[0] & 1)
        FUZZ_CHECK(o[1].value != init[1]); /* an out-of-range default is never used */
    for (k = 0; k < NOPT; k++) {
        const rtws_opt *x = &o[k];
        if (x->arg && x->value && x->value != init[k])
            FUZZ_CHECK(from_args(x->value, argv, argc));
        if (x->required)
            FUZZ_CHECK(x->value != NULL);
        if (!x->arg) {
            FUZZ_CHECK(x->value == NULL ? x->num == 0 : !strcmp(x->value, "1") && x->num == 1);
        } else if (x->min < x->max && x->value) {
            FUZZ_CHECK(x->num >= x->min && x->num <= x->max &&
                       strtol(x->value, NULL, 10) == x->num);
        }
    }
    return 0;
}
