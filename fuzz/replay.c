/* Replays fuzz inputs without libFuzzer: every file named on the command
   line, or every file in a named directory, goes once through
   LLVMFuzzerTestOneInput. Linked with one fuzz/fuzz_<name>.c at a time
   (RTWS_FUZZ_NAME is that name); `make test` runs it over the corpus under
   ASan+UBSan. An invariant violation aborts, so reaching the end means all
   inputs passed. */
#define _DEFAULT_SOURCE
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

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    /* an exact-size heap copy, so ASan sees any read past the input */
    buf = (uint8_t *)malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    size_t runs = 0, failed = 0;
    int i;
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed++;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            char path[4096];
            while (dir && (de = readdir(dir)) != NULL) {
                if (de->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
                if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
                if (run_file(path) == 0) runs++;
                else failed++;
            }
            if (dir) closedir(dir);
        } else if (run_file(argv[i]) == 0) {
            runs++;
        } else {
            failed++;
        }
    }
    printf("%s: %zu inputs replayed\n", RTWS_FUZZ_NAME, runs);
    printf("%zu passed, %zu failed\n", runs, failed);
    return failed ? 1 : 0;
}
