/* fuzz/fuzz_conn_server.c - rtws_conn as a server, fed a byte stream from a
   client in chunks (input layout and checks: fuzz/fuzz_conn.h). */
#include "fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    fz_run(d, n, RTWS_SERVER);
    return 0;
}
