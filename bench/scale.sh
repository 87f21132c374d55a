#!/usr/bin/env bash
# bench/scale.sh - many connections on one server process:
#  1. N idle WebSocket connections (default 100,000) held by one
#     build/echo_server with heartbeats on (--ping-interval-ms, default 5000,
#     so the idle window holds several rounds): time to open them all (the
#     handshakes, at most 512 in progress), server VmRSS per connection,
#     server CPU per heartbeat round (utime+stime over the window / rounds,
#     rounds = pings answered / connections), and that every connection still
#     echoes afterwards. uWebSockets.js (bench/peers/uws_echo.js) the same
#     way for comparison unless --peers says otherwise (its pings come about
#     30 s into the silence, so its window usually holds no round).
#  2. M connections (default 10,000) subscribed to one channel of the rtws
#     router (bench/peers/rtws_fanout.c) and of uWebSockets.js topics
#     (bench/peers/uws_fanout.js), idle for a while: server VmRSS per
#     subscribed idle connection; then one publisher, one publish in flight:
#     latency from the publish to each delivery and to its last subscriber
#     (p50/p99), deliveries/s. Plus bench/bench_router.c's heap count per
#     idle subscribed connection (the allocator's view, without malloc's
#     overhead and the kernel's part).
#
#   bash bench/scale.sh [--conns 100000] [--subs 10000] [--ping-ms 5000]
#        [--idle 22] [--peers "rtws uws"] [--rounds 2] [--out DIR]
#
# One socket per connection on each side: the load generator spreads its
# connections over several source addresses 127.1.0.x (loadgen --src-ips,
# past the ~28k ephemeral ports of one address), and the fd limit is raised
# for the test's own processes only: loadgen raises its soft limit to the
# hard one, and as root every process here starts under
# `prlimit --nofile=L:L` (L = connections + 1000); without root the run uses
# what the hard limit allows and says how far it got. Servers on CPU 1, the
# load generator on CPU 0 (taskset). Everything started is stopped by its
# PID. Output: DIR/scale.md (default build/bench/scale).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
N=100000 SUBS=10000 PING=5000 IDLE=22 PEERS="rtws uws" ROUNDS=2
OUT=build/bench/scale
while [ $# -gt 0 ]; do
    case $1 in
    --conns) N=$2; shift ;;
    --subs) SUBS=$2; shift ;;
    --ping-ms) PING=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n 2,34p "$0"; exit 0 ;;
    *) echo "scale.sh: unknown option $1"; exit 2 ;;
    esac
    shift
done
LOGS=$OUT/logs
mkdir -p "$OUT" "$LOGS"
MD=$OUT/scale.md
RAW=$OUT/raw.tsv
: >"$MD"
: >"$RAW"
: >"$OUT/goals.tsv"
CF="-std=c99 -O2 -Wall -Wextra"
make -s build/echo_server || exit 1
gcc $CF bench/loadgen.c -o "$OUT/loadgen" || exit 1
gcc $CF bench/peers/rtws_fanout.c -o "$OUT/rtws_fanout" || exit 1
gcc $CF -I. bench/bench_router.c -o "$OUT/bench_router" || exit 1
export NODE_PATH=$ROOT/build/bench/npm/node_modules
have_uws=0
node -e "require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null && have_uws=1
SRV="" LG=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 1" LG="taskset -c 0"; fi

# the fd limit, for this test's processes only
most=$((N > SUBS ? N : SUBS))
LIM=$(( (N > 2 * SUBS ? N : 2 * SUBS) + 1000 )) # bench_router holds both ends
PL=""
hard=$(ulimit -Hn)
BRN=$SUBS # bench_router's clients (both ends in one process)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$LIM" ]; then
    why="not root"
    if [ "$(id -u)" = 0 ] && command -v prlimit >/dev/null; then
        if prlimit --nofile=$LIM:$LIM true 2>"$LOGS/prlimit.log"; then
            PL="prlimit --nofile=$LIM:$LIM"
        else
            capeff=$(sed -n 's/^CapEff:\s*//p' /proc/self/status)
            sysres="lacks"
            [ -n "$capeff" ] && [ $(( (0x$capeff >> 24) & 1 )) = 1 ] && sysres="has"
            why="root, but raising it failed ($(tr '\n' ' ' <"$LOGS/prlimit.log"| head -c 200); CapEff $capeff $sysres CAP_SYS_RESOURCE (bit 24): without it no process here may go past the hard limit it inherited, and the hard limit is not raised on the system config by this test"
        fi
    fi
    if [ -z "$PL" ]; then
        fit=$((hard - 100))
        echo "note: the fd hard limit is $hard and cannot be raised for this test ($why). One server process holds one fd per connection, so the runs use at most $fit connections (asked: $N idle, $SUBS subscribed)." | tee -a "$MD"
        [ "$N" -gt "$fit" ] && N=$fit
        [ "$SUBS" -gt "$fit" ] && SUBS=$fit
        [ "$BRN" -gt $((fit / 2)) ] && BRN=$((fit / 2))
        echo >>"$MD"
    fi
fi
NIPS=$(( most / 20000 + 2 ))

# kernel limits that could bite, read only (nothing on the system is changed):
# the ephemeral port range counts per source address, the listen backlog is
# min(SOMAXCONN, net.core.somaxconn) against loadgen's 512 handshakes in
# progress, conntrack (when loaded) holds one entry per connection
kv() { cat "/proc/sys/$1" 2>/dev/null | tr '\t' ' ' || true; }
read -r plo phi <<<"$(kv net/ipv4/ip_local_port_range)"
ports=$(( ${phi:-60999} - ${plo:-32768} + 1 ))
somax=$(kv net/core/somaxconn) synb=$(kv net/ipv4/tcp_max_syn_backlog)
ctmax=$(kv net/netfilter/nf_conntrack_max) nropen=$(kv fs/nr_open) fmax=$(kv fs/file-max)
KLIM="ports ${plo:-?}-${phi:-?}: $ports per source address x $NIPS addresses = $((ports * NIPS)); somaxconn ${somax:-?}; tcp_max_syn_backlog ${synb:-?}; nf_conntrack_max ${ctmax:-not loaded}; fs.nr_open ${nropen:-?}; fs.file-max ${fmax:-?}"
kwarn=""
[ $((ports * NIPS)) -lt "$most" ] && kwarn="$kwarn the port range over $NIPS addresses holds fewer than $most connections;"
[ -n "$somax" ] && [ "$somax" -lt 512 ] && kwarn="$kwarn somaxconn $somax is below loadgen's 512 handshakes in progress (SYNs get dropped and retried: slower setup);"
[ -n "$ctmax" ] && [ "$ctmax" -lt $((N + SUBS + 1000)) ] && kwarn="$kwarn nf_conntrack_max $ctmax may fill (new connections dropped);"
[ -n "$nropen" ] && [ "$nropen" -lt "$LIM" ] && kwarn="$kwarn fs.nr_open $nropen is below the $LIM descriptors one process needs;"
[ -n "$kwarn" ] && echo "note: kernel limits:$kwarn" | tee -a "$MD"

pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# start NAME CMD...: sets spid, sport
start() {
    local name=$1 log=$LOGS/server_$1.log
    shift
    : >"$log"
    $SRV $PL "$@" >"$log" 2>&1 &
    spid=$!
    pids+=("$spid")
    sport=
    for _ in $(seq 100); do
        sport=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$sport" ] && return 0
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    echo "note: $name did not start: $(head -c 300 "$log")" | tee -a "$MD"
    return 1
}
stop() {
    local p=$1
    kill "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
field() { grep '^result ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
num() { printf "%'.${2:-0}f" "${1:-0}" 2>/dev/null || echo "$1"; }
NAMES_rtws=rtws NAMES_uws=uWebSockets.js
name() { local v=NAMES_$1; echo "${!v}"; }

{
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| machine | $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/^Mem/{print $2}') GiB, Linux $(uname -r) |"
    echo "| load at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| rtws | $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h) ($(git rev-parse --short HEAD 2>/dev/null)) |"
    [ $have_uws = 1 ] && echo "| uWebSockets.js | $(node -p "require('@trufflesuite/uws-js-unofficial/package.json').version") (native addon, Node $(node -v)) |"
    echo "| fd limit | ${PL:-ulimit -n $(ulimit -n) (hard $hard)} for the servers; loadgen raises its own soft limit |"
    echo "| kernel limits | $KLIM |"
    echo
} >>"$MD"

# ---- 1. idle connections --------------------------------------------------
LOAD1="--mode idle --conns $N --src-ips $NIPS --concurrency 512 --duration $IDLE"
{
    echo "### Idle connections, heartbeats on"
    echo
    echo "| server | connections open | time to open all | handshakes/s | server RSS per connection | peak per connection | heartbeat rounds in ${IDLE} s | server CPU per round | per connection | idle CPU % | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$MD"
cmds=""
for p in $PEERS; do
    case $p in
    rtws) cmd="build/echo_server --port 0 --ping-interval-ms $PING" ;;
    uws) [ $have_uws = 1 ] || { echo "note: uws not installed: skipped" | tee -a "$MD"; continue; }
        cmd="node bench/peers/uws_echo.js 0" ;;
    *) continue ;;
    esac
    start "idle_$p" $cmd || continue
    sleep 0.5
    out=$LOGS/idle_$p.log
    echo "== idle: $p, $N connections"
    $LG $PL "$OUT/loadgen" --port "$sport" $LOAD1 --pid "$spid" >"$out" 2>&1
    grep -E '^(idle|capped)' "$out" | sed 's/^/   /'
    grep -E '^loadgen:' "$out" | head -n 5 | sed 's/^/   /'
    stop "$spid"
    for k in opened requested bytes_per_conn cpu_per_round_s hb_rounds setup_s errors; do
        printf 'idle\t%s\t1\t%s\t%s\n' "$p" "$k" "$(field "$out" $k)" >>"$RAW"
    done
    echo "| $(name $p) | $(num "$(field "$out" opened)") of $(num "$(field "$out" requested)") | $(field "$out" setup_s) s | $(num "$(field "$out" handshakes_per_s)") | **$(num "$(field "$out" bytes_per_conn)") B** | $(num "$(field "$out" peak_bytes_per_conn)") B | $(field "$out" hb_rounds) ($(num "$(field "$out" pings)") pings) | **$(awk -v c="$(field "$out" cpu_per_round_s)" 'BEGIN{if (c < 0) print "no round"; else printf "%.3f s", c}')** | $(awk -v c="$(field "$out" cpu_per_round_s)" -v n="$(field "$out" opened)" 'BEGIN{if (c < 0 || n <= 0) print "-"; else printf "%.1f µs", c / n * 1e6}') | $(field "$out" idle_cpu_pct) | $(field "$out" errors) |" >>"$MD"
    cmds="$cmds
- $(name $p): server \`$SRV $PL $cmd\`; load \`$LG $PL $OUT/loadgen --port PORT $LOAD1 --pid SERVER_PID\`"
    sleep 2 # the closed sockets' TIME_WAIT stay on the load generator's side, spread over $NIPS addresses
done
echo "$cmds" >>"$MD"
echo >>"$MD"

# ---- 2. subscribed connections --------------------------------------------
LOAD2="--mode fanout --conns $SUBS --src-ips $NIPS --concurrency 512 --pipeline 1 --idle 10 --warmup 1 --duration 5"
{
    echo "### $SUBS connections subscribed to one channel: memory, publish latency"
    echo
    echo "| server | run | subscribed | server RSS per idle subscribed connection | publish → each delivery p50 / p99 | publish → last subscriber p50 / p99 | deliveries/s | server CPU µs per delivery | server CPU % | loadgen CPU % | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$MD"
cmds=""
fpeers=()
for p in $PEERS; do
    case $p in
    rtws) fpeers+=(rtws) ;;
    uws) [ $have_uws = 1 ] && fpeers+=(uws) ;;
    esac
done
for r in $(seq "$ROUNDS"); do
    order=("${fpeers[@]}")
    if [ $((r % 2)) = 0 ]; then order=(); for p in "${fpeers[@]}"; do order=("$p" "${order[@]}"); done; fi
    for p in "${order[@]}"; do
        cmd="$OUT/rtws_fanout 0"
        [ $p = uws ] && cmd="node bench/peers/uws_fanout.js 0"
        start "fanout_$p" $cmd || continue
        sleep 0.5
        out=$LOGS/fanout_${p}_$r.log
        echo "== fan-out: $p, $SUBS subscribers, round $r"
        $LG $PL "$OUT/loadgen" --port "$sport" $LOAD2 --pid "$spid" >"$out" 2>&1
        grep -E '^(fanout|capped)' "$out" | sed 's/^/   /'
        grep -E '^loadgen:' "$out" | head -n 5 | sed 's/^/   /'
        stop "$spid"
        for k in conns requested idle_bytes_per_conn deliveries_per_s complete_p50_us p50_us server_us_per_delivery errors; do
            printf 'fanout\t%s\t%s\t%s\t%s\n' "$p" "$r" "$k" "$(field "$out" $k)" >>"$RAW"
        done
        us() { awk -v v="$1" 'BEGIN{printf "%.2f ms", v / 1000}'; }
        echo "| $(name $p) | $r | $(num "$(field "$out" conns)") of $(num "$(field "$out" requested)") | **$(num "$(field "$out" idle_bytes_per_conn)") B** | $(us "$(field "$out" p50_us)") / $(us "$(field "$out" p99_us)") | **$(us "$(field "$out" complete_p50_us)") / $(us "$(field "$out" complete_p99_us)")** | $(num "$(field "$out" deliveries_per_s)") | $(num "$(field "$out" server_us_per_delivery)" 2) | $(field "$out" server_cpu_pct) | $(field "$out" loadgen_cpu_pct) | $(field "$out" errors) |" >>"$MD"
        [ "$r" = 1 ] && cmds="$cmds
- $(name $p): server \`$SRV $PL $cmd\`; load \`$LG $PL $OUT/loadgen --port PORT $LOAD2 --pid SERVER_PID\`"
        sleep 2
    done
done
echo "$cmds" >>"$MD"
echo >>"$MD"
echo "== bench_router $SUBS $BRN (heap per idle subscribed connection)"
if $SRV $PL "$OUT/bench_router" "$SUBS" "$BRN" >"$LOGS/bench_router.log" 2>&1; then
    sed 's/^/   /' "$LOGS/bench_router.log"
    {
        echo "bench/bench_router.c (rtws only; its idle part counts the server context's and router's heap with a counting allocator):"
        echo
        echo '```'
        cat "$LOGS/bench_router.log"
        echo '```'
        echo
        echo "Command: \`$SRV $PL $OUT/bench_router $SUBS $BRN\` (built: \`gcc $CF -I. bench/bench_router.c\`)"
        echo
    } >>"$MD"
else
    echo "note: bench_router failed: $(tail -n 3 "$LOGS/bench_router.log")" | tee -a "$MD"
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$MD"
# the goals, for bench/report.py (medians over the rounds)
python3 - "$RAW" "$OUT/goals.tsv" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = line.rstrip("\n").split("\t")
    if len(r) == 5:
        try:
            d[(r[0], r[1], r[3])].append(float(r[4]))
        except ValueError:
            pass
def m(*k):
    return statistics.median(d[k]) if d.get(k) else None
g = []
n, b, c = m("idle", "rtws", "opened"), m("idle", "rtws", "bytes_per_conn"), m("idle", "rtws", "cpu_per_round_s")
if n and b is not None:
    g.append((f"{n:,.0f} idle connections: <= 512 bytes of server RSS each", f"{b:,.0f} bytes", b <= 512))
if n and c is not None and c >= 0:
    g.append((f"{n:,.0f} idle connections: a heartbeat round in under 1 s of server CPU", f"{c:.3f} s", c < 1))
s, rb = m("fanout", "rtws", "conns"), m("fanout", "rtws", "idle_bytes_per_conn")
if s and rb is not None:
    g.append((f"router: <= 512 bytes of server RSS per idle subscribed connection ({s:,.0f})", f"{rb:,.0f} bytes", rb <= 512))
rd, ud = m("fanout", "rtws", "deliveries_per_s"), m("fanout", "uws", "deliveries_per_s")
if s and rd and ud:
    g.append((f"fan-out to {s:,.0f} subscribers (1 publish in flight): >= 1.1x uWebSockets' publish",
              f"rtws/uWS = {rd / ud:.2f} (deliveries/s)", rd >= 1.1 * ud))
rc, uc = m("fanout", "rtws", "server_us_per_delivery"), m("fanout", "uws", "server_us_per_delivery")
if s and rc and uc:
    g.append((f"fan-out to {s:,.0f} subscribers, server CPU per delivery: uWS >= 1.1x rtws (the same goal "
              "by CPU cost, less sensitive to a shared machine)", f"uWS/rtws = {uc / rc:.2f}", uc >= 1.1 * rc))
with open(sys.argv[2], "w") as f:
    for name, val, ok in g:
        f.write(f"{name}\t{val}\t{'met' if ok else 'NOT met'}\n")
if g:
    print("\nGoals:\n\n| goal | measured | |\n|---|---|---|")
    for name, val, ok in g:
        print(f"| {name} | {val} | {'met' if ok else 'NOT met'} |")
PY
[ -s "$OUT/goals.tsv" ] && python3 - "$OUT/goals.tsv" >>"$MD" <<'PY'
import sys
print("Goals (rtws; medians over the rounds):\n\n| goal | measured | |\n|---|---|---|")
for line in open(sys.argv[1]):
    name, val, ok = line.rstrip("\n").split("\t")
    print(f"| {name} | {val} | {ok} |")
PY
cat "$MD"
