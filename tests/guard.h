/* tests/guard.h - guarded buffers for parser tests: a copy of n bytes that
   ends exactly where a PROT_NONE page begins, so reading one byte past the
   input faults. Needs _DEFAULT_SOURCE (MAP_ANONYMOUS) before any include. */
#ifndef RTWS_TEST_GUARD_H
#define RTWS_TEST_GUARD_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guard {
    uint8_t *map;
    size_t maplen;
} guard;

static void *guard_copy(guard *g, const void *src, size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (n + page - 1) / page + 1;
    uint8_t *p;
    g->maplen = (data_pages + 1) * page;
    g->map = (uint8_t *)mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0);
    if (g->map == MAP_FAILED || mprotect(g->map + data_pages * page, page, PROT_NONE) != 0) {
        perror("mmap");
        exit(2);
    }
    p = g->map + data_pages * page - n;
    if (n) memcpy(p, src, n);
    return p;
}

static void guard_free(guard *g) { munmap(g->map, g->maplen); }
#endif
