/* Plain main() that replays fuzz inputs through LLVMFuzzerTestOneInput, so
   `make test` runs every corpus under ASan+UBSan without libFuzzer.
   Usage: replay_<target> DIR_OR_FILE... ; prints "N passed, 0 failed". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static long replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (uint8_t *)malloc(len > 0 ? (size_t)len : 1);
    if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    return 1;
}

static long replay_path(const char *path) {
    struct stat st;
    long n = 0;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        if (!d) return -1;
        while ((e = readdir(d)) != NULL) {
            char sub[4096];
            long k;
            if (e->d_name[0] == '.') continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            k = replay_path(sub);
            if (k < 0) {
                closedir(d);
                return -1;
            }
            n += k;
        }
        closedir(d);
        return n;
    }
    return replay_file(path);
}

int main(int argc, char **argv) {
    long total = 0;
    int i;
    for (i = 1; i < argc; i++) {
        long k = replay_path(argv[i]);
        if (k < 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            printf("0 passed, 1 failed\n");
            return 1;
        }
        total += k;
    }
    printf("%ld passed, 0 failed\n", total);
    return 0;
}
