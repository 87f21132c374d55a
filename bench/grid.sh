#!/usr/bin/env bash
# bench/grid.sh - the echo grid: rtws's echo_server next to uWebSockets.js
# (and the other echo peers where they run) over message sizes x messages in
# flight per connection (depth), binary messages, the same load generator
# (bench/loadgen.c) for every server, runs alternating between the servers
# (A/B, the order flipped every round) and the median of the rounds per
# cell; the ratio to a peer is paired: the median over the rounds of the
# two back-to-back runs' ratio (bench/grid_report.py says why). Plus
# connection-count rows: 1, 100 and 1,000 connections at 64 B (depth 16)
# and 64 KiB (depth 1). Uncompressed: the load generator offers no
# permessage-deflate, so echo_server (compression on by default) and
# uWebSockets.js (compression disabled) both run without it; echo with
# compression is bench/run.sh's section echo-deflate.
#
#   bash bench/grid.sh                 # full grid, about 10 minutes on 2 cores
#   bash bench/grid.sh --quick         # 16 B, 64 KiB, 1 MiB x depth 1, 16; 1 round of 1 s
#   bash bench/grid.sh --sizes "65536 1048576" --depths "1 4" --conns 10 \
#       --seconds 2 --rounds 3 --warmup 0.5 --peers "rtws uws" --conn-rows "1 100 1000"
#   --conn-rows "" skips the connection-count rows; --out DIR (default
#   build/bench/grid) gets raw.tsv, grid.md and the logs; --charts DIR
#   (default bench/charts) gets grid_ratio.svg and grid_conns_ratio.svg.
#
# Server CPU per message: the server's utime+stime (/proc/PID/stat) over the
# measured window / echoed messages (loadgen --pid). Servers on CPU 1, the
# load generator on CPU 0 (taskset, when there are 2 CPUs). One server runs
# at a time: each is started for its run (on a port the OS picks) after the
# other is stopped by its PID, since a second server idle on the same CPU
# still takes time from it (a runtime's collector and timers after its own
# round: rounds 2x apart, 2026-12-07); one that died is started again (and
# said so). Installs nothing itself except the
# npm peers the way bench/run.sh does (into build/bench/npm).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES="16 1024 16384 65536 262144 1048576"
DEPTHS="1 4 16"
CONNS=10
CONN_ROWS="1 100 1000"
SECS=2 ROUNDS=3 WARM=0.5
PEERS="rtws uws"
OUT=build/bench/grid
CHARTS=bench/charts
while [ $# -gt 0 ]; do
    case $1 in
    --quick) SIZES="16 65536 1048576" DEPTHS="1 16" CONN_ROWS="1 1000" SECS=1 ROUNDS=1 ;;
    --sizes) SIZES=$2; shift ;;
    --depths) DEPTHS=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    --conn-rows) CONN_ROWS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --warmup) WARM=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --charts) CHARTS=$2; shift ;;
    -h | --help) sed -n 2,22p "$0"; exit 0 ;;
    *) echo "grid.sh: unknown option $1 (--help)"; exit 2 ;;
    esac
    shift
done
LOGS=$OUT/logs
RAW=$OUT/raw.tsv
mkdir -p "$OUT" "$LOGS" "$CHARTS"
: >"$RAW"
: >"$OUT/notes.txt"
note() { echo "note: $*"; echo "$*" >>"$OUT/notes.txt"; }
START_T=$(date +%s)

# ---- build and peers ------------------------------------------------------
CFLAGS_B="-std=c99 -O2 -Wall -Wextra"
make -s build/echo_server || { echo "grid.sh: cannot build build/echo_server"; exit 1; }
gcc $CFLAGS_B bench/loadgen.c -o "$OUT/loadgen" || exit 1
NPM=build/bench/npm
export NODE_PATH=$ROOT/$NPM/node_modules
UWS_PKG="@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0"
WS_PKG="ws@8.23.0"
declare -A START VER
avail=()
for p in $PEERS; do
    case $p in
    rtws)
        START[rtws]="build/echo_server --port 0"
        VER[rtws]="rtws $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h) ($(git rev-parse --short HEAD 2>/dev/null)), examples/echo_server.c -O2"
        avail+=(rtws) ;;
    uws | ws)
        if ! command -v node >/dev/null; then note "$p: node not found: skipped"; continue; fi
        if ! node -e "require('ws'); require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null &&
            command -v npm >/dev/null; then
            echo "== installing $WS_PKG $UWS_PKG (npm, into $NPM)"
            mkdir -p "$NPM"
            [ -f "$NPM/package.json" ] || echo '{"name":"rtws-bench-peers","private":true}' >"$NPM/package.json"
            (cd "$NPM" && npm install --no-audit --no-fund "$WS_PKG" "$UWS_PKG") >"$LOGS/npm.log" 2>&1 ||
                note "npm install failed (see $LOGS/npm.log)"
        fi
        if [ $p = uws ]; then
            if ! node -e "require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null; then
                note "uws: npm package $UWS_PKG not installed: skipped"; continue; fi
            START[uws]="node bench/peers/uws_echo.js 0"
            VER[uws]="uWebSockets.js $(node -p "require('@trufflesuite/uws-js-unofficial/package.json').version") (native addon, Node $(node -v))"
        else
            if ! node -e "require('ws')" 2>/dev/null; then note "ws: npm package ws not installed: skipped"; continue; fi
            START[ws]="node bench/peers/ws_echo.js 0"
            VER[ws]="ws $(node -p "require('ws/package.json').version") (Node $(node -v))"
        fi
        avail+=("$p") ;;
    lws | wslay)
        lib=websockets; [ $p = wslay ] && lib=wslay
        if ! gcc $CFLAGS_B bench/peers/${p}_echo.c -o "$OUT/${p}_echo" -l$lib 2>"$LOGS/${p}_build.log"; then
            note "$p: bench/peers/${p}_echo.c does not build (see $LOGS/${p}_build.log): skipped"; continue; fi
        START[$p]="$OUT/${p}_echo 0"
        VER[$p]="$p $(dpkg-query -W -f='${Version}' lib$lib-dev 2>/dev/null)"
        avail+=("$p") ;;
    *) note "unknown peer $p: skipped" ;;
    esac
done
[ ${#avail[@]} -gt 0 ] || { echo "grid.sh: no server to measure"; exit 1; }

SRV="" LG=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV="taskset -c 1" LG="taskset -c 0"
fi
most=$CONNS
for n in $CONN_ROWS; do [ "$n" -gt "$most" ] && most=$n; done
[ "$(ulimit -n)" -ge $((most + 100)) ] || ulimit -n $((most + 100)) 2>/dev/null ||
    note "fd limit $(ulimit -n) is below $((most + 100)): the largest cells may fail"

{
    echo "machine	$(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/^Mem/{print $2}') GiB, Linux $(uname -r)"
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "load_start	$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "pinning	${SRV:-none} (servers), ${LG:-none} (load generator)"
    echo "settings	$SECS s measured after $WARM s warm-up, $ROUNDS round(s), binary messages, no permessage-deflate (not offered)"
    for p in "${avail[@]}"; do echo "peer_$p	${VER[$p]}"; done
} >"$OUT/meta.tsv"

declare -A SPID SPORT
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME: (re)starts the server, sets SPID[NAME] and SPORT[NAME]
start() {
    local name=$1 log=$LOGS/server_$1.log pid port=
    : >"$log"
    $SRV ${START[$name]} >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        note "$name: server did not start ($(head -c 300 "$log" | tr '\n' ' '))"
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        return 1
    fi
    SPID[$name]=$pid SPORT[$name]=$port
}
stop() {
    local p=$1
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
running=()
for p in "${avail[@]}"; do start "$p" && running+=("$p"); done

# cell KIND SIZE DEPTH CONNS: every server ROUNDS times, the order flipped each round
cells=0
cell() {
    local kind=$1 size=$2 depth=$3 conns=$4 r p order out line rc
    cells=$((cells + 1))
    printf '== %s: %s B x depth %s x %s conns:' "$kind" "$size" "$depth" "$conns"
    for r in $(seq "$ROUNDS"); do
        order=("${running[@]}")
        if [ $((r % 2)) = 0 ]; then # reversed on even rounds
            order=(); for p in "${running[@]}"; do order=("$p" "${order[@]}"); done
        fi
        for p in "${order[@]}"; do
            # one server alive at a time: on the same CPU an idle peer is
            # not idle (a runtime's collector and timers after its round)
            for q in "${running[@]}"; do
                [ "$q" != "$p" ] && [ -n "${SPID[$q]:-}" ] && { stop "${SPID[$q]}"; SPID[$q]=; }
            done
            if [ -z "${SPID[$p]:-}" ]; then
                start "$p" || continue
            elif ! kill -0 "${SPID[$p]}" 2>/dev/null; then
                note "$p: the server had exited before $kind $size x $depth x $conns round $r (see $LOGS/server_$p.log): started again"
                start "$p" || continue
            fi
            out=$LOGS/${kind}_${size}_${depth}_${conns}_${p}_$r.log
            $LG "$OUT/loadgen" --port "${SPORT[$p]}" --mode echo --binary --size "$size" \
                --pipeline "$depth" --conns "$conns" --warmup "$WARM" --duration "$SECS" \
                --pid "${SPID[$p]}" >"$out" 2>&1
            rc=$?
            line=$(grep '^result ' "$out" | tail -n 1)
            get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
            if [ $rc -ne 0 ] || [ -z "$line" ] || [ -z "$(get msgs_per_s)" ]; then
                printf '%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t1\t\n' "$kind" "$size" "$depth" "$conns" "$p" "$r" >>"$RAW"
                printf ' %s FAILED' "$p"
                note "$p failed at $kind $size x $depth x $conns round $r (exit $rc): $(grep -v '^result' "$out" | tail -n 2 | tr '\n' ' ')"
            else
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$size" "$depth" "$conns" "$p" "$r" \
                    "$(get msgs_per_s)" "$(get server_us_per_msg)" "$(get server_cpu_pct)" "$(get errors)" \
                    "$(get loadgen_cpu_pct)" >>"$RAW"
                printf ' %s %s' "$p" "$(get msgs_per_s)"
            fi
        done
    done
    echo
}
for size in $SIZES; do
    for depth in $DEPTHS; do cell grid "$size" "$depth" "$CONNS"; done
done
for n in $CONN_ROWS; do
    cell conns 64 16 "$n"
    cell conns 65536 1 "$n"
done
for p in "${running[@]}"; do [ -n "${SPID[$p]:-}" ] && stop "${SPID[$p]}"; done
pids=()
{
    echo "load_end	$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "duration_s	$(( $(date +%s) - START_T ))"
    echo "command	bash bench/grid.sh $(printf '%q ' --sizes "$SIZES" --depths "$DEPTHS" --conns "$CONNS" --conn-rows "$CONN_ROWS" --seconds "$SECS" --rounds "$ROUNDS" --warmup "$WARM" --peers "$PEERS")"
    echo "loadgen	$LG $OUT/loadgen --port PORT --mode echo --binary --size SIZE --pipeline DEPTH --conns CONNS --warmup $WARM --duration $SECS --pid SERVER_PID"
    for p in "${avail[@]}"; do echo "server_$p	$SRV ${START[$p]}"; done
} >>"$OUT/meta.tsv"
python3 bench/grid_report.py "$OUT" "$CHARTS" >"$OUT/grid.md" || { echo "grid.sh: report failed"; exit 1; }
cat "$OUT/grid.md"
echo "grid.sh: $cells cells in $(( $(date +%s) - START_T )) s: $OUT/grid.md, $CHARTS/grid_ratio.svg"
