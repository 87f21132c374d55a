/* JSONTestSuite (test_parsing/) against the layer 6 parser: every y_ file is
   accepted, every n_ file rejected, and the i_ files (either is allowed) are
   recorded. With an argument, writes the i_ table as markdown to that file
   (docs/JSON.md is made from it). Runs from the repository root; without the
   corpus it skips, unless RTWS_REQUIRE_ALL=1. */
/* rtws.h first: it asks for POSIX before any system header. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <dirent.h>
#include <stdlib.h>

#define CORPUS "../shared/testdata/JSONTestSuite/test_parsing/"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = (char *)malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* Parses twice: count-only, then into exactly that many tokens. */
static rtws_err parse(const char *text, size_t len, rtws_json *d, rtws_json_tok **toks) {
    rtws_err e = rtws_json_parse(d, text, len, NULL, 0, 0);
    size_t need;
    *toks = NULL;
    if (e != RTWS_OK) return e;
    need = d->count;
    *toks = (rtws_json_tok *)malloc(need * sizeof **toks);
    e = rtws_json_parse(d, text, len, *toks, need, 0);
    CHECK(e == RTWS_OK && d->count == need);
    if (need > 1) CHECK(rtws_json_parse(d, text, len, *toks, need - 1, 0) == RTWS_ERR_NOSPACE &&
                        d->count == need);
    return e;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    DIR *dir = opendir(CORPUS);
    struct dirent *de;
    char **names = NULL, path[1024];
    size_t count = 0, i, len, ni = 0, nacc = 0;
    FILE *table = NULL;
    if (!dir) {
        const char *req = getenv("RTWS_REQUIRE_ALL");
        if (req && strcmp(req, "1") == 0) {
            printf("conformance_json: %s is missing and RTWS_REQUIRE_ALL=1\n", CORPUS);
            printf("0 passed, 1 failed\n");
            return 1;
        }
        printf("conformance_json: skipped, %s not found\n", CORPUS);
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    while ((de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        names = (char **)realloc(names, (count + 1) * sizeof *names);
        names[count++] = strdup(de->d_name);
    }
    closedir(dir);
    /* a listing that found nothing is no pass: readdir fails so (EOVERFLOW)
       in a 32-bit build without _FILE_OFFSET_BITS=64 under qemu-i386 */
    CHECK(count > 0);
    qsort(names, count, sizeof *names, by_name);
    if (argc > 1) {
        table = fopen(argv[1], "w");
        if (!table) {
            perror(argv[1]);
            return 1;
        }
        fprintf(table, "| file | rtws | reason |\n|---|---|---|\n");
    }
    for (i = 0; i < count; i++) {
        char *text;
        rtws_json d;
        rtws_json_tok *toks;
        rtws_err e;
        snprintf(path, sizeof path, "%s%s", CORPUS, names[i]);
        text = slurp(path, &len);
        CHECK(text != NULL);
        if (!text) continue;
        e = parse(text, len, &d, &toks);
        if (names[i][0] == 'y') {
            CHECK(e == RTWS_OK);
            if (e != RTWS_OK)
                fprintf(stderr, "%s: rejected: %s at %zu\n", names[i], d.err, d.err_off);
        } else if (names[i][0] == 'n') {
            CHECK(e != RTWS_OK);
            CHECK(e == RTWS_OK || (d.err[0] != '\0' && d.err_off <= len));
            if (e == RTWS_OK) fprintf(stderr, "%s: accepted\n", names[i]);
        } else if (names[i][0] == 'i') {
            ni++;
            nacc += e == RTWS_OK;
            if (table)
                fprintf(table, "| `%s` | %s | %s |\n", names[i], e == RTWS_OK ? "accept" : "reject",
                        e == RTWS_OK ? "" : d.err);
        }
        free(toks);
        free(text);
        free(names[i]);
    }
    free(names);
    if (table) fclose(table);
    printf("conformance_json: %zu files, i_ files: %zu accepted, %zu rejected\n", count, nacc,
           ni - nacc);
    return T_END();
}
