#!/usr/bin/env bash
# Stands in for the wss:// tests when BearSSL (libbearssl-dev) is missing:
# a skip, or a failure under RTWS_REQUIRE_ALL=1.
if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then
    echo "FAILED: BearSSL missing (apt-get install libbearssl-dev) and RTWS_REQUIRE_ALL=1"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "skipped: wss:// tests (apt-get install libbearssl-dev)"
echo "0 passed, 0 failed, 1 skipped"
