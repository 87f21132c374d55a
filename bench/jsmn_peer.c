/* jsmn, built twice for bench_json.c: JSMN_VARIANT 0 is jsmn as shipped
   (lenient, no parent links, the fastest configuration), 1 is JSMN_STRICT +
   JSMN_PARENT_LINKS (the closest to what rtws_json_parse does). */
#if JSMN_VARIANT == 1
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#define PEER_FN jsmn_strict_count
#else
#define PEER_FN jsmn_plain_count
#endif
#define JSMN_STATIC /* both variants in one program */
#include <jsmn.h>
#include <stddef.h>

int PEER_FN(const char *text, size_t len, void *toks, unsigned cap);
int PEER_FN(const char *text, size_t len, void *toks, unsigned cap) {
    jsmn_parser p;
    jsmn_init(&p);
    return jsmn_parse(&p, text, len, (jsmntok_t *)toks, cap);
}
