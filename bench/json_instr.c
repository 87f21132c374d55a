/* Instructions of rtws_json_parse, counted by callgrind (repeatable where
   timings on a shared machine are not): 40,000 parses of one realtime
   envelope (no argument) or 40 parses of 4,000 of them in one array
   ("big"). Built once per header by bench/json_instr.sh. */
#define RTWS_IMPLEMENTATION
#include RTWS_HDR
#include <stdio.h>
static char buf[1 << 20];

int main(int argc, char **argv) {
    static rtws_json_tok toks[200000];
    size_t n = 0; int i; long sum = 0; rtws_json d;
    const char *env = "{\"type\":\"publish\",\"channel\":\"room:42\",\"id\":1234,\"data\":{\"text\":\"hello world \\u00e9\",\"ts\":1.5e3,\"ok\":true,\"n\":null}}";
    (void)argv;
    n += (size_t)sprintf(buf, "[");
    for (i = 0; i < 4000; i++) n += (size_t)sprintf(buf + n, "%s%s", i ? "," : "", env);
    n += (size_t)sprintf(buf + n, "]");
    if (argc > 1) for (i = 0; i < 40; i++) { rtws_json_parse(&d, buf, n, toks, 200000, 0); sum += (long)d.count; }
    else for (i = 0; i < 40000; i++) { rtws_json_parse(&d, env, strlen(env), toks, 64, 0); sum += (long)d.count; }
    printf("%ld\n", sum);
    return 0;
}
