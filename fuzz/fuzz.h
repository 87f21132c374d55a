/* fuzz/fuzz.h - what every fuzz target starts with: the implementation, and
   FUZZ_CHECK, which names the broken invariant and aborts (libFuzzer and
   fuzz/replay.c both report an abort as a finding). */
#ifndef RTWS_FUZZ_H
#define RTWS_FUZZ_H
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #c);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
#endif
