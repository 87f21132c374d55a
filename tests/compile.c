/* Compile test: the implementation in this unit, declarations only in
   compile2.c. Calls functions, so a misspelt RTWS_IMPLEMENTATION fails to link. */
#ifdef COMPILE_ALLOC_MACROS
/* another header first: then POSIX must be asked for explicitly */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
static size_t compile_allocs;
static void *compile_malloc(size_t n) { compile_allocs++; return malloc(n); }
#define RTWS_MALLOC(n) compile_malloc(n)
#define RTWS_REALLOC(p, n) realloc(p, n)
#define RTWS_FREE(p) free(p)
#endif
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <string.h>

#ifndef COMPILE_ONE
int compile_other_unit(void);
#else
static int compile_other_unit(void) { return 0; }
#endif

int main(void) {
    char acc[29];
    rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    if (strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) return 1;
    if (compile_other_unit() != 0) return 2;
    {
        rtws_config cfg;
        rtws_conn c;
        memset(&cfg, 0, sizeof cfg);
        cfg.role = RTWS_SERVER;
        rtws_conn_init(&c, &cfg);
        if (rtws_conn_recv(&c, "GET / HTTP/1.1\r\n", 16, 0, NULL) != RTWS_EAGAIN) return 3;
        rtws_conn_free(&c);
    }
    {
        rtws_json_tok t[4];
        rtws_json d;
        rtws_router *r = rtws_router_new(NULL);
        if (rtws_json_parse(&d, "[1,2]", 5, t, 4, 0) != RTWS_OK || d.count != 3) return 4;
        if (!r) return 5;
        rtws_router_free(r);
    }
    printf("compiled with %s, rtws %s\n", rtws_err_str(RTWS_OK), rtws_version());
    return 0;
}
