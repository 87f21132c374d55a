#!/usr/bin/env bash
# bench/ab_echo.sh - two echo_server builds (say the last release and this
# tree) under the same load, alternating, so a change in machine load hits
# both alike. For regression checks; peers are compared by bench/run.sh.
#   bash bench/ab_echo.sh OLD_SERVER NEW_SERVER [RUNS] -- LOADGEN_ARGS...
#   e.g. bash bench/ab_echo.sh ../old/build/echo_server build/echo_server 5 -- \
#          --mode echo --conns 100 --pipeline 16 --size 64 --warmup 1 --duration 5
# Needs build/bench/loadgen (bash bench/run.sh builds it, or:
# gcc -std=c99 -O2 bench/loadgen.c -o build/bench/loadgen). Each server
# runs on CPU 1 and the load on CPU 0 when taskset is there; every server
# is stopped by its PID.
set -u
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
old=$1 new=$2; shift 2
runs=5
if [ "$1" != -- ]; then runs=$1; shift; fi
[ "${1:-}" = -- ] && shift
LG=build/bench/loadgen
[ -x "$LG" ] || { mkdir -p build/bench && gcc -std=c99 -O2 bench/loadgen.c -o "$LG"; } || exit 1
SRV="" L=""
command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && SRV="taskset -c 1" L="taskset -c 0"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq "$runs"); do
    for v in old new; do
        bin=$old; [ $v = new ] && bin=$new
        $SRV "$bin" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
        pid=$!
        port=
        for _ in $(seq 50); do
            port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log"); [ -n "$port" ] && break; sleep 0.1
        done
        if [ -z "$port" ]; then echo "$v: $bin did not start"; kill "$pid" 2>/dev/null; exit 1; fi
        out=$($L "$LG" --port "$port" "$@" --pid "$pid" 2>&1)
        # minor page faults of the server over its whole life (fresh pages touched)
        flt=$(awk '{print $10}' "/proc/$pid/stat" 2>/dev/null)
        printf '%s run %s: %s%s\n' "$v" "$r" "$(echo "$out" | grep -oE '[0-9]+ msg/s|\([0-9.]+ us per [a-z ]+\)|p50 [0-9.]+ us' | tr '\n' ' ')" "${flt:+minflt $flt}"
        echo "$out" | grep -q 'msg/s' || { echo "$v run $r: no result; loadgen said:"; echo "$out" | tail -5; }
        kill "$pid"; wait "$pid" 2>/dev/null
    done
done
