/* proc_util.h - what the bench's load programs read about processes: a
   server's CPU time and RSS from /proc/PID, their own CPU time. Linux only;
   static inline, include it where needed. */
#ifndef PROC_UTIL_H
#define PROC_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* VmRSS of PID in kB, or -1 */
static inline long rss_kb(long pid) {
    char path[64], line[256];
    long v = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = strtol(line + 6, NULL, 10);
    fclose(f);
    return v;
}

/* this process's user + system CPU seconds */
static inline double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* utime + stime of PID in seconds (/proc/PID/stat), or -1 */
static inline double cpu_s(long pid) {
    char path[64], buf[2048], *p;
    unsigned long ut = 0, st = 0;
    int i;
    size_t n;
    FILE *f;
    if (pid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f) return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    p += 2; /* field 3 (state) */
    for (i = 3; i < 14; i++) {
        p = strchr(p, ' ');
        if (!p) return -1;
        p++;
    }
    if (sscanf(p, "%lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#endif
