#!/usr/bin/env bash
# The bench's measuring tools measure what they say (issue 14):
#  - echo_server --ping-interval-ms: with 300 ms, 200 idle connections
#    (loadgen --src-ips 2: bound to 127.1.0.1 and 127.1.0.2) see about one
#    heartbeat round every 300 ms; with 0 none at all;
#  - loadgen --mode fanout --idle reports the server's RSS per subscribed
#    connection and the publish-to-last-subscriber latency;
#  - bench/grid_report.py turns a grid's raw.tsv into the ratio table, the
#    goal line and a well-formed SVG heatmap (made-up figures, checked).
# 127.0.0.1 / 127.1.0.x only; every process started here is stopped by its
# PID and runs under `timeout`.
set -u
cd "$(dirname "$0")/.." || exit 1
pass=0; fail=0; spid=
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
mkdir -p build
tmp=$(mktemp -d build/bench_tools.XXXXXX)
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
make -s build/echo_server || { echo "0 passed, 1 failed"; exit 1; }
gcc -std=c99 -O2 -Wall -Wextra -Werror bench/loadgen.c -o "$tmp/loadgen" || { echo "0 passed, 1 failed"; exit 1; }
gcc -std=c99 -O2 -Wall -Wextra bench/peers/rtws_fanout.c -o "$tmp/rtws_fanout" || { echo "0 passed, 1 failed"; exit 1; }

# start CMD...: sets spid and port
start() {
    "$@" >"$tmp/server.log" 2>&1 &
    spid=$!
    port=
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/server.log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=; }
field() { grep '^result ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

for ms in 300 0; do
    if ! start build/echo_server --port 0 --ping-interval-ms $ms; then bad "echo_server --ping-interval-ms $ms did not start"; stop; continue; fi
    timeout 60 "$tmp/loadgen" --port "$port" --mode idle --conns 200 --src-ips 2 --duration 1.5 --pid "$spid" >"$tmp/idle.log" 2>&1
    rc=$?
    if [ "$(field "$tmp/idle.log" opened)" = 0 ]; then
        # not one connection opened (seen once in CI, not reproduced): say
        # what loadgen said, then measure once more against the same server
        echo "note: --ping-interval-ms $ms: no connection opened (exit $rc), once more; loadgen said:"
        tail -n 5 "$tmp/idle.log" | sed 's/^/    /'
        timeout 60 "$tmp/loadgen" --port "$port" --mode idle --conns 200 --src-ips 2 --duration 1.5 --pid "$spid" >"$tmp/idle.log" 2>&1
        rc=$?
    fi
    stop
    r=$(field "$tmp/idle.log" hb_rounds) o=$(field "$tmp/idle.log" opened)
    if [ $ms = 300 ]; then
        # 1.5 s / 300 ms = 5 rounds; a busy machine may delay some
        if [ $rc = 0 ] && [ "$o" = 200 ] && awk -v r="$r" 'BEGIN{exit !(r >= 3 && r <= 6)}'; then
            ok "--ping-interval-ms 300: $r heartbeat rounds in 1.5 s over 200 connections from 2 source addresses"
        else bad "--ping-interval-ms 300: exit $rc, opened $o, rounds $r: $(tail -n 3 "$tmp/idle.log")"; fi
    else
        if [ $rc = 0 ] && [ "$o" = 200 ] && [ "$(field "$tmp/idle.log" pings)" = 0 ]; then
            ok "--ping-interval-ms 0: no pings"
        else bad "--ping-interval-ms 0: exit $rc, opened $o, pings $(field "$tmp/idle.log" pings): $(tail -n 3 "$tmp/idle.log")"; fi
    fi
done

if start "$tmp/rtws_fanout" 0; then
    timeout 60 "$tmp/loadgen" --port "$port" --mode fanout --conns 300 --pipeline 1 --idle 0.5 --warmup 0.2 \
        --duration 1 --pid "$spid" >"$tmp/fan.log" 2>&1
    rc=$?
    b=$(field "$tmp/fan.log" idle_bytes_per_conn) c=$(field "$tmp/fan.log" complete_p50_us) d=$(field "$tmp/fan.log" p50_us)
    if [ $rc = 0 ] && awk -v b="$b" -v c="$c" -v d="$d" 'BEGIN{exit !(b > 0 && c > 0 && c >= d)}'; then
        ok "fanout --idle: $b bytes per subscribed connection; publish to last subscriber p50 $c us >= per delivery $d us"
    else bad "fanout --idle: exit $rc, bytes $b, complete p50 $c, delivery p50 $d: $(tail -n 3 "$tmp/fan.log")"; fi
else bad "rtws_fanout did not start"; fi
stop

# grid_report.py on made-up figures: 3 sizes x 1 depth, rtws 2x, 0.5x and (paired) 1.1x uWS
mkdir -p "$tmp/grid" "$tmp/charts"
printf 'grid\t64\t1\t10\trtws\t1\t2000\t1.5\t50\t0\ngrid\t64\t1\t10\tuws\t1\t1000\t2\t60\t0\n' >"$tmp/grid/raw.tsv"
printf 'grid\t65536\t1\t10\trtws\t1\t500\t20\t90\t0\ngrid\t65536\t1\t10\tuws\t1\t1000\t10\t90\t0\n' >>"$tmp/grid/raw.tsv"
# paired: rounds 1.1x, 1.1x, 0.5x (median 1.10) where the medians' ratio is 550/1000
for r in "1 1100 1000" "2 550 500" "3 500 1000"; do
    set -- $r
    printf 'grid\t16384\t1\t10\trtws\t%s\t%s\t5\t90\t0\ngrid\t16384\t1\t10\tuws\t%s\t%s\t5\t90\t0\n' "$1" "$2" "$1" "$3" >>"$tmp/grid/raw.tsv"
done
if python3 bench/grid_report.py "$tmp/grid" "$tmp/charts" >"$tmp/grid.md" &&
    grep -q '| 64 B | 2.00x |' "$tmp/grid.md" && grep -q '| 64 KiB | 0.50x |' "$tmp/grid.md" &&
    grep -q '| 16 KiB | 1.10x |' "$tmp/grid.md" && grep -q '| 550 | 1,000 | 1.10 | 0.55 |' "$tmp/grid.md" &&
    grep -q 'lowest 0.50x (64 KiB x depth 1 x 10 conns); 1 of 3 cells below 1.0	NOT met' "$tmp/grid/goals.tsv" &&
    python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert len(d.getElementsByTagName("rect")) >= 3' \
        "$tmp/charts/grid_ratio.svg"; then
    ok "grid_report.py: ratios 2.00x and 0.50x, a paired 1.10x (0.55 of the medians), the goal NOT met, an SVG heatmap"
else bad "grid_report.py: $(head -c 600 "$tmp/grid.md") $(cat "$tmp/grid/goals.tsv" 2>/dev/null)"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
