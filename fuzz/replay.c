/* fuzz/replay.c - runs a libFuzzer target without libFuzzer: every file named
   on the command line, and every regular file inside every directory named,
   goes once through LLVMFuzzerTestOneInput. A target reports a failure by
   aborting, so reaching the end means every input passed. Prints
   "N passed, 0 failed" (N = inputs run). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RTWS_FUZZ_NAME
#define RTWS_FUZZ_NAME "fuzz"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int replay_file(const char *path, unsigned long *count) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", RTWS_FUZZ_NAME, path);
        return -1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *nb = (uint8_t *)realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: read error on %s\n", RTWS_FUZZ_NAME, path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    /* an exact-size copy, so an over-read of the input is caught by ASan */
    {
        uint8_t *exact = (uint8_t *)malloc(len ? len : 1);
        if (!exact) {
            free(buf);
            return -1;
        }
        if (len) memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    (*count)++;
    return 0;
}

static int replay_path(const char *path, unsigned long *count) {
    struct stat st;
    DIR *dir;
    struct dirent *e;
    int rc = 0;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: no such file or directory: %s\n", RTWS_FUZZ_NAME, path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path, count);
    dir = opendir(path);
    if (!dir) return -1;
    while ((e = readdir(dir)) != NULL) {
        size_t need = strlen(path) + strlen(e->d_name) + 2;
        char *full;
        if (e->d_name[0] == '.') continue;
        full = (char *)malloc(need);
        if (!full) {
            rc = -1;
            break;
        }
        snprintf(full, need, "%s/%s", path, e->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && replay_file(full, count) != 0) rc = -1;
        free(full);
    }
    closedir(dir);
    return rc;
}

int main(int argc, char **argv) {
    unsigned long count = 0;
    int i, bad = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++)
        if (replay_path(argv[i], &count) != 0) bad = 1;
    printf("%s: %lu passed, %d failed\n", RTWS_FUZZ_NAME, count, bad);
    return bad;
}
