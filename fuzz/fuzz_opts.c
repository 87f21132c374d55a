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
        if (v >= argv[i] && v <= argv[i] + len) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static char buf[4096];
    static int null_fd = -1, out_fd = -1, err_fd = -1;
    static const char *const defaults[NOPT] = {"127.0.0.1", "8080", NULL, "-3", NULL};
    char *argv[NARG + 1], *p, *end;
    const char *init[NOPT];
    rtws_opt o[NOPT];
    int argc = 1, r, k;
    if (n < 1) return 0;
    if (n - 1 >= sizeof buf) n = sizeof buf;
    memset(o, 0, sizeof o);
    o[0].name = "--host", o[0].arg = "H", o[0].help = "address";
    o[1].name = "--port", o[1].arg = "P", o[1].max = 65535, o[1].help = "port";
    o[2].name = "--key", o[2].arg = "S", o[2].required = d[0] & 2, o[2].help = "secret";
    o[3].name = "--level", o[3].arg = "N", o[3].min = -5, o[3].max = 5, o[3].help = "level";
    o[4].name = "--verbose", o[4].help = "flag";
    for (k = 0; k < NOPT; k++) o[k].value = defaults[k];
    if (d[0] & 1) o[1].value = "70000";
    for (k = 0; k < NOPT; k++) init[k] = o[k].value;
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
    r = rtws_opts_parse(o, NOPT, argc, argv, d[0] & 4 ? NULL : "About it.");
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    FUZZ_CHECK(r == -1 || r == 0 || r == 1);
    if (r != 0) return 0;
    if (d[0] & 1) FUZZ_CHECK(o[1].value != init[1]); /* an out-of-range default is never used */
    for (k = 0; k < NOPT; k++) {
        const rtws_opt *x = &o[k];
        if (x->arg && x->value && x->value != init[k]) FUZZ_CHECK(from_args(x->value, argv, argc));
        if (x->required) FUZZ_CHECK(x->value != NULL);
        if (!x->arg) {
            FUZZ_CHECK(x->value == NULL ? x->num == 0 : !strcmp(x->value, "1") && x->num == 1);
        } else if (x->min < x->max && x->value) {
            FUZZ_CHECK(x->num >= x->min && x->num <= x->max && strtol(x->value, NULL, 10) == x->num);
        }
    }
    return 0;
}
