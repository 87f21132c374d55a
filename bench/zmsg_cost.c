/* Per-message cost of rtws's DEFLATE codec on small messages, for
   valgrind --tool=callgrind (instruction counts are steady on a loaded
   machine, wall time is not). Each of N 256-byte JSON envelopes is
   compressed or inflated on its own, as permessage-deflate without context
   takeover does:

     zmsg_cost MODE N
       c    one compressor, rtws_deflate_reset(d, 0) before each message
       cl   the lent path: rtws_deflate_init on the same block per message,
            with the window rtws__pmd_send_lent picks for the size (8 bits)
       i    one inflater, rtws_inflate_reset(z, 0) before each message
       il   the lent path: rtws_inflate_init on the same block per message
       zc   zlib level 1, deflateReset before each message (for comparison)
       zi   zlib's inflate, inflateReset before each message

   Inflate reads the streams zlib makes at level 6 (-lz), or with NOZLIB
   defined those of rtws at effort 1. Per message: (Ir at N=1001 - Ir at
   N=1) / 1000. Build: gcc -std=c99 -O2 -I. bench/zmsg_cost.c -o
   build/zmsg_cost -lz */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef NOZLIB
#include <zlib.h>
#endif

static size_t msg(char *p, unsigned i) { /* exactly 256 bytes */
    static const char *const users[4] = {"alice", "bob", "carol", "dave"};
    int n = snprintf(p, 300,
                     "{\"type\":\"message\",\"channel\":\"room:%u\",\"id\":\"%08x-%04x\",\"serial\":%u,"
                     "\"ts\":%u,\"data\":{\"user\":\"%s\",\"text\":\"",
                     i % 17, i * 2654435761u, i & 0xFFFF, 1000 + i, 1700000000u + i * 7, users[i & 3]);
    for (; n < 254; n++) p[n] = "see you at the meeting tomorrow "[(unsigned)n % 32];
    p[n++] = '"';
    p[n++] = '}';
    return 256;
}

/* the measured part of c and cl (callgrind --toggle-collect=compress_all) */
#if defined(__GNUC__)
__attribute__((noinline, noclone))
#endif
static size_t compress_all(const char *mode, unsigned n, const rtws_z_config *cfg, char (*ms)[300]) {
    rtws_z_config lent = *cfg;
    rtws_deflate d;
    uint8_t out[600];
    size_t used, olen, sum = 0;
    unsigned i;
    void *block = malloc(rtws_deflate_mem_size(cfg));
    if (rtws_deflate_init(&d, cfg, block, rtws_deflate_mem_size(cfg)) != RTWS_Z_OK) exit(1);
    lent.window_bits = 8; /* as rtws__pmd_send_lent picks for a 256-byte message */
    for (i = 0; i < n; i++) {
        if (mode[1] == 'l')
            rtws_deflate_init(&d, &lent, block, rtws_deflate_mem_size(&lent));
        else
            rtws_deflate_reset(&d, 0);
        if (rtws_deflate_compress(&d, (const uint8_t *)ms[i], 256, &used, out, sizeof out, &olen,
                                  RTWS_Z_SYNC_FLUSH) != RTWS_Z_OK)
            exit(1);
        sum += olen;
    }
    free(block);
    return sum;
}

/* the measured part of i and il (callgrind --toggle-collect=inflate_all) */
#if defined(__GNUC__)
__attribute__((noinline, noclone))
#endif
static size_t inflate_all(const char *mode, unsigned n, uint8_t (*z)[400], const size_t *zl,
                          char (*ms)[300]) {
    rtws_inflate s;
    uint8_t out[600];
    size_t used, olen, sum = 0;
    unsigned i;
    void *block = malloc(rtws_inflate_mem_size(NULL));
    if (rtws_inflate_init(&s, NULL, block, rtws_inflate_mem_size(NULL)) != RTWS_Z_OK) exit(1);
    for (i = 0; i < n; i++) {
        if (mode[1] == 'l')
            rtws_inflate_init(&s, NULL, block, rtws_inflate_mem_size(NULL));
        else
            rtws_inflate_reset(&s, 0);
        if (rtws_inflate_feed(&s, z[i], zl[i], &used, out, sizeof out, &olen) != RTWS_Z_OK ||
            olen != 256 || memcmp(out, ms[i], 256) != 0)
            exit(1);
        sum += olen;
    }
    free(block);
    return sum;
}

#ifndef NOZLIB
/* the same work by zlib, for comparison: zc (level 1, deflateReset per
   message; --toggle-collect=zlib_all) and zi (inflateReset per message) */
#if defined(__GNUC__)
__attribute__((noinline, noclone))
#endif
static size_t zlib_all(const char *mode, unsigned n, uint8_t (*z)[400], const size_t *zl,
                       char (*ms)[300]) {
    z_stream zs;
    uint8_t out[600];
    size_t sum = 0;
    unsigned i;
    memset(&zs, 0, sizeof zs);
    if (mode[1] == 'c' ? deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK
                       : inflateInit2(&zs, -15) != Z_OK)
        exit(1);
    for (i = 0; i < n; i++) {
        if (mode[1] == 'c') {
            if (deflateReset(&zs) != Z_OK) exit(1);
            zs.next_in = (Bytef *)ms[i];
            zs.avail_in = 256;
        } else {
            if (inflateReset(&zs) != Z_OK) exit(1);
            zs.next_in = z[i];
            zs.avail_in = (uInt)zl[i];
        }
        zs.next_out = out;
        zs.avail_out = sizeof out;
        if ((mode[1] == 'c' ? deflate(&zs, Z_SYNC_FLUSH) : inflate(&zs, Z_SYNC_FLUSH)) != Z_OK)
            exit(1);
        sum += sizeof out - zs.avail_out;
    }
    if (mode[1] == 'c')
        deflateEnd(&zs);
    else
        inflateEnd(&zs);
    return sum;
}
#endif

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "c";
    unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 1001, i;
    static uint8_t z[1001][400];
    static size_t zl[1001];
    static char ms[1001][300];
    char *m;
    size_t used = 0, sum = 0;
    rtws_z_config cfg;
    if (n > 1001) n = 1001;
    for (i = 0; i < n; i++) msg(ms[i], i); /* made before the measured part */
    memset(&cfg, 0, sizeof cfg);
    cfg.level = 1;
    if (mode[0] == 'c') {
        sum = compress_all(mode, n, &cfg, ms);
#ifndef NOZLIB
    } else if (mode[0] == 'z' && mode[1] == 'c') {
        sum = zlib_all(mode, n, z, zl, ms);
#endif
    } else {
        for (i = 0; i < n; i++) { /* the streams, made before the measured part */
#ifndef NOZLIB
            z_stream zs;
            m = ms[i];
            memset(&zs, 0, sizeof zs);
            if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 1;
            zs.next_in = (Bytef *)m;
            zs.avail_in = 256;
            zs.next_out = z[i];
            zs.avail_out = sizeof z[i];
            if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK) return 1;
            zl[i] = sizeof z[i] - zs.avail_out;
            deflateEnd(&zs);
#else
            rtws_deflate d;
            m = ms[i];
            if (rtws_deflate_init(&d, &cfg, NULL, 0) != RTWS_Z_OK ||
                rtws_deflate_compress(&d, (const uint8_t *)m, 256, &used, z[i], sizeof z[i], &zl[i],
                                      RTWS_Z_SYNC_FLUSH) != RTWS_Z_OK)
                return 1;
            rtws_deflate_free(&d);
#endif
        }
#ifndef NOZLIB
        if (mode[0] == 'z') {
            sum = zlib_all(mode, n, z, zl, ms);
        } else
#endif
            sum = inflate_all(mode, n, z, zl, ms);
    }
    (void)used;
    printf("%s %u messages: %zu bytes out\n", mode, n, sum);
    return 0;
}
