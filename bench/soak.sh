#!/usr/bin/env bash
# bench/soak.sh - make soak: 1,000 connections echo and reconnect against the
# rtws echo_server for SOAK_SECONDS (default 300), while the server's VmRSS is
# sampled; passes when nothing failed and memory stayed flat.
#
#   SOAK_SECONDS=300 SOAK_CONNS=1000 SOAK_RECONNECT=200 bash bench/soak.sh
#
# Each connection sends messages of mixed sizes (2 B to 300 KB, text and
# binary, every length form), one in flight, checks every echo, and after
# SOAK_RECONNECT messages closes (close handshake) and connects again.
# Checks: the load generator saw no error; connections were really recycled;
# the server is alive at the end and exits cleanly on SIGTERM; its RSS in the
# last quarter of the run (after a warm-up) averages within 10% or 4 MiB of
# the first quarter. 127.0.0.1 only; every process started is stopped by PID.
# Ends with "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
B=build/bench
LOGS=$B/logs
SECS=${SOAK_SECONDS:-300}
CONNS=${SOAK_CONNS:-1000}
RECONNECT=${SOAK_RECONNECT:-200}
mkdir -p "$B" "$LOGS"
pass=0; fail=0; spid=
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; }
trap cleanup EXIT

make -s build/echo_server || { bad "build/echo_server does not build"; finish; }
gcc -std=c99 -O2 -Wall -Wextra bench/loadgen.c -o $B/loadgen || { bad "loadgen does not build"; finish; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null
SRV="" LG=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV="taskset -c 1" LG="taskset -c 0"
    echo "soak: server pinned to CPU 1, load generator to CPU 0"
fi
# sample often enough for a few points per quarter on short runs
SAMPLE=$(awk -v s="$SECS" 'BEGIN { v = s / 24; if (v > 5) v = 5; if (v < 0.5) v = 0.5; print v }')

log=$LOGS/soak_server.log
: >"$log"
$SRV build/echo_server --port 0 >"$log" 2>&1 &
spid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { bad "echo_server did not start: $(cat "$log")"; finish; }
echo "soak: $CONNS connections, reconnect every $RECONNECT messages, ${SECS}s, RSS every ${SAMPLE}s (server PID $spid, port $port)"

out=$LOGS/soak.log
$LG $B/loadgen --port "$port" --mode soak --conns "$CONNS" --reconnect "$RECONNECT" \
    --duration "$SECS" --sample "$SAMPLE" --pid "$spid" >"$out" 2>&1
rc=$?
grep '^sample ' "$out" | awk 'NR % 6 == 1' | sed 's/^/  /'
res=$(grep '^result ' "$out" | tail -n 1)
field() { echo "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
errs=$(field errors); msgs=$(field msgs); hs=$(field handshakes)
if [ $rc -eq 0 ] && [ "${errs:-x}" = 0 ]; then ok "no errors ($msgs echoes verified)"
else bad "load generator: exit $rc, errors ${errs:-?}"; grep -v -E '^(sample|result)' "$out" | head -n 12; fi
if [ -n "$hs" ] && [ "$hs" -ge $((CONNS * 2)) ]; then ok "connections recycled: $hs handshakes for $CONNS connections"
else bad "too few reconnects: ${hs:-?} handshakes for $CONNS connections"; fi

# RSS: skip the warm-up (first tenth, at least one sample), then compare quarters
verdict=$(grep '^sample ' "$out" | sed -n 's/.* t=\([0-9.]*\) rss_kb=\([0-9-]*\).*/\1 \2/p' | awk -v secs="$SECS" '
    { t[NR] = $1; r[NR] = $2 }
    END {
        warm = secs / 10; s = 0
        for (i = 1; i <= NR; i++) if (t[i] >= warm && r[i] > 0) { s++; v[s] = r[i] }
        if (s < 4) { print "few " s; exit }
        q = int(s / 4); a = 0; z = 0
        for (i = 1; i <= q; i++) a += v[i]
        for (i = s - q + 1; i <= s; i++) z += v[i]
        a /= q; z /= q
        printf "%s %.0f %.0f %d\n", (z <= a * 1.10 || z - a <= 4096) ? "flat" : "grew", a, z, s
    }')
set -- $verdict
case ${1:-} in
flat) ok "RSS flat: first quarter ${2} kB, last quarter ${3} kB ($4 samples after warm-up)" ;;
grew) bad "RSS grew: first quarter ${2} kB, last quarter ${3} kB ($4 samples after warm-up)" ;;
*) bad "not enough RSS samples (${2:-0}): run longer (SOAK_SECONDS)" ;;
esac

if kill -0 "$spid" 2>/dev/null; then
    ok "server alive after the soak"
    kill "$spid"
    for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$spid" 2>/dev/null; then
        bad "server did not exit within 5 s of SIGTERM"; kill -9 "$spid"; wait "$spid" 2>/dev/null
    else
        wait "$spid"; src=$?
        if [ $src -eq 0 ]; then ok "server exited cleanly on SIGTERM"; else bad "server exit status $src"; fi
    fi
    spid=
else
    bad "server died during the soak: $(tail -n 5 "$log")"
    spid=
fi
finish
