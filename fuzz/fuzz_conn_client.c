/* fuzz/fuzz_conn_client.c - rtws_conn as a client after rtws_conn_start,
   fed a byte stream from a server in chunks (input layout and checks:
   fuzz/fuzz_conn.h). */
#include "fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    fz_run(d, n, RTWS_CLIENT);
    return 0;
}
