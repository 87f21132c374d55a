#!/usr/bin/env bash
# bench/latency_load.sh - latency under load: the round trip of a 16-byte
# WebSocket text message (a data message echoed by the server, not a control
# ping) on one connection, p50/p99/p99.9, while 100 other connections stream
# 64 KiB binary echoes (1 in flight each) against the same server; and the
# same probe on the idle server as the baseline. rtws's echo_server next to
# uWebSockets.js (bench/peers/uws_echo.js), runs alternating between them
# (the order flipped every round), median over the rounds.
#
#   bash bench/latency_load.sh [--rounds 3] [--seconds 5] [--streams 100]
#        [--stream-size 65536] [--stream-depth 1] [--peers "rtws uws"] [--out DIR]
#
# Two load generator processes (bench/loadgen.c): the streams (--mode echo)
# and the probe (--mode latency), both on CPU 0, the server on CPU 1
# (taskset). The probe sleeps between its messages, so the scheduler wakes
# it ahead of the busy stream process, but it shares CPU 0 with it: its
# figures include some load generator delay, alike for every server.
# Every process is stopped by its PID. Output: DIR/latency_load.md (default
# build/bench/latency_load).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=3 SECS=5 STREAMS=100 SSIZE=65536 SDEPTH=1 PEERS="rtws uws"
OUT=build/bench/latency_load
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --streams) STREAMS=$2; shift ;;
    --stream-size) SSIZE=$2; shift ;;
    --stream-depth) SDEPTH=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "latency_load.sh: unknown option $1"; exit 2 ;;
    esac
    shift
done
LOGS=$OUT/logs
mkdir -p "$OUT" "$LOGS"
RAW=$OUT/raw.tsv
: >"$RAW"
make -s build/echo_server || exit 1
gcc -std=c99 -O2 -Wall -Wextra bench/loadgen.c -o "$OUT/loadgen" || exit 1
export NODE_PATH=$ROOT/build/bench/npm/node_modules
declare -A START SPID SPORT
START[rtws]="build/echo_server --port 0"
START[uws]="node bench/peers/uws_echo.js 0"
SRV="" LG=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 1" LG="taskset -c 0"; fi
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
running=()
for p in $PEERS; do
    if [ $p = uws ] && ! node -e "require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null; then
        echo "note: uws not installed (bash bench/grid.sh or bench/run.sh installs it): skipped"; continue
    fi
    [ -n "${START[$p]:-}" ] || { echo "note: no server for $p: skipped"; continue; }
    log=$LOGS/server_$p.log
    $SRV ${START[$p]} >"$log" 2>&1 &
    SPID[$p]=$!
    pids+=("${SPID[$p]}")
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then echo "note: $p did not start"; continue; fi
    SPORT[$p]=$port
    running+=("$p")
done
field() { grep '^result ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
PROBE="--mode latency --conns 1 --size 16 --warmup 0.5 --duration $SECS"
LOAD="--mode echo --conns $STREAMS --size $SSIZE --binary --pipeline $SDEPTH --warmup 0 --duration $((SECS + 3))"
for r in $(seq "$ROUNDS"); do
    order=("${running[@]}")
    if [ $((r % 2)) = 0 ]; then order=(); for p in "${running[@]}"; do order=("$p" "${order[@]}"); done; fi
    for p in "${order[@]}"; do
        port=${SPORT[$p]}
        # baseline: the probe alone
        out=$LOGS/idle_${p}_$r.log
        $LG "$OUT/loadgen" --port "$port" $PROBE --pid "${SPID[$p]}" >"$out" 2>&1
        printf 'idle\t%s\t%s\t%s\t%s\t%s\t%s\t\t%s\n' "$p" "$r" "$(field "$out" p50_us)" "$(field "$out" p99_us)" \
            "$(field "$out" p999_us)" "$(field "$out" samples)" "$(field "$out" errors)" >>"$RAW"
        # under load: streams first, the probe once they run
        sout=$LOGS/streams_${p}_$r.log
        $LG "$OUT/loadgen" --port "$port" $LOAD >"$sout" 2>&1 &
        spid=$!
        pids+=("$spid")
        sleep 1.5
        out=$LOGS/load_${p}_$r.log
        $LG "$OUT/loadgen" --port "$port" $PROBE --pid "${SPID[$p]}" >"$out" 2>&1
        wait "$spid"
        e1=$(field "$out" errors) e2=$(field "$sout" errors)
        printf 'load\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$r" "$(field "$out" p50_us)" "$(field "$out" p99_us)" \
            "$(field "$out" p999_us)" "$(field "$out" samples)" "$(field "$sout" msgs_per_s)" \
            "$(( ${e1:-1} + ${e2:-1} ))" >>"$RAW"
        echo "round $r $p: idle p50/p99/p99.9 $(field "$LOGS/idle_${p}_$r.log" p50_us)/$(field "$LOGS/idle_${p}_$r.log" p99_us)/$(field "$LOGS/idle_${p}_$r.log" p999_us) us;" \
            "under load $(field "$out" p50_us)/$(field "$out" p99_us)/$(field "$out" p999_us) us, streams $(field "$sout" msgs_per_s) msg/s"
    done
done
python3 - "$RAW" "$OUT/latency_load.md" "$SRV" "$LG" "$OUT/loadgen" "$PROBE" "$LOAD" <<'EOF'
import statistics, sys, collections
raw, md, srv, lg, bin_, probe, load = sys.argv[1:8]
d = collections.defaultdict(lambda: collections.defaultdict(list))
peers = []
for line in open(raw):
    r = line.rstrip("\n").split("\t")
    if len(r) != 9:
        continue
    kind, p, _, p50, p99, p999, n, mps, err = r
    if p not in peers:
        peers.append(p)
    for k, v in (("p50", p50), ("p99", p99), ("p999", p999), ("n", n), ("mps", mps), ("err", err)):
        try:
            d[(kind, p)][k].append(float(v))
        except ValueError:
            pass
def m(kind, p, k, nd=1):
    v = d[(kind, p)].get(k)
    return f"{statistics.median(v):,.{nd}f}" if v else "n/a"
names = {"rtws": "rtws", "uws": "uWebSockets.js"}
out = ["| server | probe alone p50 / p99 / p99.9 µs | under load p50 / p99 / p99.9 µs | "
       "probe round trips (under load, per run) | streams 64 KiB msg/s | errors |", "|---|---|---|---|---|---|"]
for p in peers:
    err = sum(d[("idle", p)].get("err", [])) + sum(d[("load", p)].get("err", []))
    out.append(f"| {names.get(p, p)} | {m('idle', p, 'p50')} / {m('idle', p, 'p99')} / {m('idle', p, 'p999')} | "
               f"**{m('load', p, 'p50')} / {m('load', p, 'p99')} / {m('load', p, 'p999')}** | "
               f"{m('load', p, 'n', 0)} | {m('load', p, 'mps', 0)} | {int(err)} |")
out.append("")
out.append(f"Probe: `{lg} {bin_} --port PORT {probe} --pid SERVER_PID`; streams: `{lg} {bin_} --port PORT {load}`; "
           f"servers under `{srv}`. Medians over the rounds of each run's percentile.")
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
