/* Linked into the programs of tests/interop_bsdsim.sh. They are built with
   RTWS__SIMULATE_BSD: no MSG_NOSIGNAL, as on macOS, where rtws sets
   SO_NOSIGPIPE on every socket instead. Linux has no SO_NOSIGPIPE (rtws's
   setsockopt gets ENOPROTOOPT), so a write to a closed peer raises SIGPIPE
   here where macOS would give EPIPE: this counts and ignores it before main
   runs, and says at exit how many came (each one is a send that went out
   without MSG_NOSIGNAL, the path under test). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t bsdsim_pipes;

static void bsdsim_on_pipe(int sig) {
    (void)sig;
    bsdsim_pipes++;
}

static void bsdsim_report(void) {
    if (bsdsim_pipes) fprintf(stderr, "bsdsim: %d SIGPIPE counted and ignored\n", (int)bsdsim_pipes);
}

__attribute__((constructor)) static void bsdsim_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bsdsim_on_pipe;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    atexit(bsdsim_report);
}
