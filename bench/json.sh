#!/bin/sh
# Benchmark of the layer 6 JSON parser against cJSON and jsmn (Debian
# libcjson-dev, libjsmn-dev; installed here when missing and run as root).
# Usage, from the repository root: bench/json.sh   (CC=clang bench/json.sh)
# Prints a markdown table: median MB/s of 31 interleaved batches, -O2, no sanitizers.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-cc}
if [ ! -f /usr/include/cjson/cJSON.h ] || [ ! -f /usr/include/jsmn.h ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq libcjson-dev libjsmn-dev >/dev/null
    else
        echo "bench/json.sh: needs libcjson-dev and libjsmn-dev (run as root to install)" >&2
        exit 1
    fi
fi
mkdir -p build
$CC -std=c99 -O2 -I. -DJSMN_VARIANT=0 -c bench/jsmn_peer.c -o build/bench_jsmn_plain.o
$CC -std=c99 -O2 -I. -DJSMN_VARIANT=1 -c bench/jsmn_peer.c -o build/bench_jsmn_strict.o
$CC -std=c99 -O2 -I. bench/bench_json.c build/bench_jsmn_plain.o build/bench_jsmn_strict.o \
    -o build/bench_json -lcjson
echo "rtws $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $($CC --version | head -n 1), $(uname -m)"
echo
build/bench_json
