#!/usr/bin/env bash
# bench/run.sh - the rtws benchmark suite (make bench): rtws next to
# uWebSockets, Node ws, libwebsockets, wslay and Python websockets, all
# measured in this one run on 127.0.0.1.
#
#   bash bench/run.sh            # whole suite, about 25 minutes on 2 cores
#   BENCH_RUNS=3 BENCH_SECONDS=5 BENCH_WARMUP=1 BENCH_IDLE_CONNS=10000 \
#   BENCH_IDLE_SECONDS=35 BENCH_PEERS="rtws uws ws lws wslay python" \
#   BENCH_FANOUT_SUBS="1000 10000" BENCH_FANOUT_PIPELINE=16 bash bench/run.sh
#   BENCH_ONLY=fanout bash bench/run.sh   # some sections only: codec echo idle size fanout tls json router
#                                         #   grid latload scale deflate post echo-deflate
#   BENCH_DEFLATE_SECONDS=2 BENCH_ONLY=deflate,echo-deflate bash bench/run.sh
#                                         # (echo-deflate: seconds per run, 2 by default)
#   BENCH_GRID_ARGS="--quick" BENCH_SCALE_ARGS="--conns 20000" bash bench/run.sh
#   (options of bench/grid.sh and bench/scale.sh; the grid alone: bash bench/grid.sh)
#
# Installs its peers when missing (apt-get as root; npm into build/bench/npm),
# skips a peer only with a printed reason, stops every process it started by
# its PID, and writes bench/results.md and bench/charts/*.png. Raw data:
# build/bench/raw.tsv. With BENCH_ONLY the report of that partial run goes to
# build/bench/report/ instead, so it never replaces the full one.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=build/bench
RAW=$B/raw.tsv
LOGS=$B/logs
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-5}
WARM=${BENCH_WARMUP:-1}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
IDLE_SECS=${BENCH_IDLE_SECONDS:-35} # > 30 s: one heartbeat round of every server
PEERS=${BENCH_PEERS:-"rtws uws ws lws wslay python"}
FAN_SUBS=${BENCH_FANOUT_SUBS:-"1000 10000"}
ONLY=${BENCH_ONLY:-}
ONLY=" ${ONLY//,/ } "
OUT=bench
[ "$ONLY" = "  " ] || OUT=$B/report
# section NAME: true when NAME is to run (every section without BENCH_ONLY)
section() { [ "$ONLY" = "  " ] || [[ $ONLY == *" $1 "* ]]; }
PY=/usr/bin/python3
UWS_PKG="@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0"
WS_PKG="ws@8.23.0"
mkdir -p "$B" "$LOGS" "$OUT/charts"
: >"$RAW"
: >"$B/notes.txt"
: >"$B/commands.tsv"
: >"$B/versions.tsv"
: >"$B/json.txt"
: >"$B/router.txt"
# sections 9-11 write their markdown there: none of an earlier run may remain
rm -f $B/grid/grid.md $B/grid/goals.tsv $B/latency_load/latency_load.md $B/scale/scale.md $B/scale/goals.tsv
: >"$B/deflate.txt"
: >"$B/post.txt"
START=$(date +%s)

note() { echo "note: $*"; echo "$*" >>"$B/notes.txt"; }
# the progress line of each section, with the time since the start
step() { echo "== $* [at $(( $(date +%s) - START )) s]"; }
version() { printf '%s\t%s\n' "$1" "$2" >>"$B/versions.tsv"; }
cmdline() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$B/commands.tsv"; }

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- install --------------------------------------------------------------
need=()
[ -f /usr/include/libwebsockets.h ] || need+=(libwebsockets-dev)
[ -f /usr/include/wslay/wslay.h ] || need+=(libwslay-dev)
"$PY" -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v taskset >/dev/null || need+=(util-linux)
[ -f /usr/include/bearssl.h ] || need+=(libbearssl-dev) # the TLS section
command -v openssl >/dev/null || need+=(openssl)       # its throwaway certificates
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing ${need[*]} (apt-get)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") \
            >"$LOGS/apt.log" 2>&1 || note "apt-get install ${need[*]} failed (see $LOGS/apt.log)"
    else
        note "missing ${need[*]} and not root: those peers are skipped"
    fi
fi
NPM=$B/npm
export NODE_PATH=$ROOT/$NPM/node_modules
if command -v node >/dev/null && command -v npm >/dev/null; then
    if ! node -e "require('ws'); require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null; then
        step "installing $WS_PKG $UWS_PKG (npm, into $NPM)"
        mkdir -p "$NPM"
        [ -f "$NPM/package.json" ] || echo '{"name":"rtws-bench-peers","private":true}' >"$NPM/package.json"
        (cd "$NPM" && npm install --no-audit --no-fund "$WS_PKG" "$UWS_PKG") >"$LOGS/npm.log" 2>&1 ||
            note "npm install failed (see $LOGS/npm.log)"
    fi
fi

# ---- build ----------------------------------------------------------------
step "building"
CFLAGS_B="-std=c99 -O2 -Wall -Wextra"
make -s build/echo_server || { echo "bench: cannot build build/echo_server"; exit 1; }
gcc $CFLAGS_B -I. bench/bench_codec.c -o $B/bench_codec || exit 1
gcc $CFLAGS_B bench/loadgen.c -o $B/loadgen || exit 1
have_rtws_fanout=0
if gcc $CFLAGS_B bench/peers/rtws_fanout.c -o $B/rtws_fanout 2>"$LOGS/rtws_fanout_build.log"; then have_rtws_fanout=1
else note "rtws: bench/peers/rtws_fanout.c does not build (see $LOGS/rtws_fanout_build.log): skipped in fan-out"; fi
have_tls=0
if [ -f /usr/include/bearssl.h ] && make -s build/tls_echo_server >"$LOGS/tls_build.log" 2>&1 &&
    gcc $CFLAGS_B -DRTWS_USE_BEARSSL -I. bench/tls_load.c -o $B/tls_load -lbearssl 2>>"$LOGS/tls_build.log" &&
    bash tests/tls_certs.sh $B/tls >>"$LOGS/tls_build.log" 2>&1; then have_tls=1
else note "tls: BearSSL build or test certificates failed (see $LOGS/tls_build.log): TLS section skipped"; fi
have_lws=0; have_wslay=0
if gcc $CFLAGS_B bench/peers/lws_echo.c -o $B/lws_echo -lwebsockets 2>"$LOGS/lws_build.log"; then have_lws=1
else note "libwebsockets: lws_echo does not build (see $LOGS/lws_build.log): skipped"; fi
if gcc $CFLAGS_B bench/peers/wslay_echo.c -o $B/wslay_echo -lwslay 2>"$LOGS/wslay_build.log"; then have_wslay=1
else note "wslay: wslay_echo does not build (see $LOGS/wslay_build.log): skipped"; fi

# ---- machine --------------------------------------------------------------
SRV="" LG=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV="taskset -c 1" LG="taskset -c 0"
    note "pinned: every server on CPU 1, the load generator on CPU 0 (taskset)"
else
    note "not pinned (taskset missing or fewer than 2 CPUs)"
fi
hard=$(ulimit -Hn)
most=$IDLE_CONNS
for n in $FAN_SUBS; do [ "$n" -gt "$most" ] && most=$n; done
want=$((most + 200))
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
    [ "$hard" = unlimited ] && hard=$((want > 65536 ? want : 65536))
    [ "$(ulimit -n)" -ge "$hard" ] || ulimit -n "$hard" 2>/dev/null || ulimit -n "$want"
else
    ulimit -n "$hard"
    if [ "$hard" -lt $((IDLE_CONNS + 200)) ]; then
        IDLE_CONNS=9000
        [ "$hard" -lt 9200 ] && IDLE_CONNS=$((hard - 200))
        note "fd hard limit $hard is below $want: the idle scenario uses $IDLE_CONNS connections"
    fi
    subs=""
    for n in $FAN_SUBS; do
        if [ "$hard" -lt $((n + 200)) ]; then
            note "fd hard limit $hard is below $((n + 200)): fan-out to $n subscribers uses $((hard - 200))"
            n=$((hard - 200))
        fi
        subs="$subs $n"
    done
    FAN_SUBS=$subs
fi
note "fd limit (ulimit -n) for servers and the load generator: $(ulimit -n)"
version machine "$(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/^Mem/{print $2}') GiB, Linux $(uname -r)"
version load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
version gcc "$(gcc -dumpfullversion)"
version rtws "$(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h) ($(git rev-parse --short HEAD 2>/dev/null || echo no-git))"

# ---- peers ----------------------------------------------------------------
# peer table: name, start command (PORT replaced), version
declare -A START VER
START[rtws]="build/echo_server --port PORT"
VER[rtws]="rtws $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h), echo_server -O2"
avail=()
for p in $PEERS; do
    case $p in
    rtws) avail+=(rtws) ;;
    uws | ws)
        if ! command -v node >/dev/null; then note "$p: node not found: skipped"; continue; fi
        if [ $p = uws ]; then
            if ! node -e "require('@trufflesuite/uws-js-unofficial/package.json')" 2>/dev/null; then
                note "uws: npm package $UWS_PKG not installed: skipped"; continue; fi
            START[uws]="node bench/peers/uws_echo.js PORT"
            VER[uws]="uWebSockets.js $(node -p "require('@trufflesuite/uws-js-unofficial/package.json').version") (native, Node $(node -v))"
        else
            if ! node -e "require('ws')" 2>/dev/null; then note "ws: npm package ws not installed: skipped"; continue; fi
            bu=$(node -e "try{require('bufferutil');console.log('with bufferutil')}catch(e){console.log('without bufferutil')}")
            START[ws]="node bench/peers/ws_echo.js PORT"
            VER[ws]="ws $(node -p "require('ws/package.json').version") ($bu, Node $(node -v))"
        fi
        avail+=("$p") ;;
    lws)
        [ $have_lws = 1 ] || continue
        START[lws]="$B/lws_echo PORT"
        VER[lws]="libwebsockets $(dpkg-query -W -f='${Version}' libwebsockets-dev 2>/dev/null)"
        avail+=(lws) ;;
    wslay)
        [ $have_wslay = 1 ] || continue
        START[wslay]="$B/wslay_echo PORT"
        VER[wslay]="wslay $(dpkg-query -W -f='${Version}' libwslay-dev 2>/dev/null)"
        avail+=(wslay) ;;
    python)
        if ! "$PY" -c 'import websockets' 2>/dev/null; then note "python: websockets not importable by $PY: skipped"; continue; fi
        START[python]="$PY bench/peers/py_echo.py PORT"
        VER[python]="websockets $("$PY" -c 'import websockets; print(websockets.version.version)') (Python $("$PY" -c 'import platform; print(platform.python_version())'), asyncio)"
        avail+=(python) ;;
    *) note "unknown peer $p: skipped" ;;
    esac
done
for p in "${avail[@]}"; do version "peer_$p" "${VER[$p]}"; done

# start_server NAME [COMMAND [LOG]]: starts it on a port the OS picks (PORT
# in COMMAND becomes 0), sets spid (the server's own PID: taskset execs it)
# and sport (the port it printed); COMMAND defaults to START[NAME]
start_server() {
    local name=$1 cmd=${2:-${START[$1]}} log=$LOGS/server_${3:-$1}.log
    cmd=${cmd//PORT/0}
    : >"$log"
    $SRV $cmd >"$log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for _ in $(seq 100); do
        sport=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$sport" ] && { SRVCMD="$SRV $cmd"; return 0; }
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    note "$name: server did not start ($(head -c 300 "$log" | tr '\n' ' ')): skipped"
    stop_server "$spid"
    return 1
}
stop_server() {
    local p=$1 i
    kill "$p" 2>/dev/null
    for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

# store_result SCENARIO PEER RUN LOG RC: the "result" fields of a load
# program's LOG into raw.tsv, and its summary lines on the terminal
store_result() {
    local sc=$1 peer=$2 run=$3 out=$4 rc=$5 line
    line=$(grep '^result ' "$out" | tail -n 1)
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "   $peer run $run: FAILED (exit $rc): $(grep -v '^result' "$out" | tail -n 3 | tr '\n' ' ')"
        printf '%s\t%s\t%s\terror\t1\n' "$sc" "$peer" "$run" >>"$RAW"
    fi
    if [ -n "$line" ]; then
        echo "$line" | tr ' ' '\n' | grep '=' | while IFS='=' read -r k v; do
            printf '%s\t%s\t%s\t%s\t%s\n' "$sc" "$peer" "$run" "$k" "$v" >>"$RAW"
        done
        grep -v '^result' "$out" | grep -E '^(echo|latency|idle|fanout):' | sed "s/^/   $peer run $run: /"
    fi
}

# loadgen SCENARIO PEER RUN PORT ARGS...: runs it, stores "result" fields in raw.tsv
loadgen() {
    local sc=$1 peer=$2 run=$3 port=$4 out
    shift 4
    out=$LOGS/${sc}_${peer}_$run.log
    $LG $B/loadgen --port "$port" "$@" >"$out" 2>&1
    store_result "$sc" "$peer" "$run" "$out" $?
    [ "$run" = 1 ] && cmdline "$sc" "$peer" "server: $SRVCMD ; load: $LG $B/loadgen --port $port $*"
    return 0
}

# ---- 1. codec -------------------------------------------------------------
if section codec; then
step "1. codec: frame parse + unmask vs memcpy (bench_codec, -O2, ${SRV:-unpinned})"
if $SRV $B/bench_codec >"$LOGS/codec.log" 2>&1; then
    while read -r _ size method gbps pct; do
        printf 'codec\t%s\t1\t%s\t%s\n' "$method" "$size" "$gbps" >>"$RAW"
        printf 'codec_pct\t%s\t1\t%s\t%s\n' "$method" "$size" "$pct" >>"$RAW"
    done < <(grep '^codec ' "$LOGS/codec.log")
    grep '^codec ' "$LOGS/codec.log" | sed 's/^/   /'
else
    note "bench_codec failed: $(tail -n 3 "$LOGS/codec.log" | tr '\n' ' ')"
fi
cmdline codec rtws "$SRV $B/bench_codec   (built: gcc $CFLAGS_B -I. bench/bench_codec.c)"
fi

# ---- 2. echo --------------------------------------------------------------
# every server runs at once on its own port (idle ones cost nothing), and the
# runs go round-robin over them, so a change in machine load hits all alike
declare -A PORT SPID
if section echo; then
running=()
for p in "${avail[@]}"; do
    if start_server "$p"; then
        PORT[$p]=$sport; SPID[$p]=$spid; running+=("$p")
        cmdline server "$p" "$SRVCMD"
    fi
done
ECHO_SCEN=(
    "echo64|--mode echo --conns 100 --pipeline 16 --size 64 --warmup $WARM --duration $SECS"
    "echo64k|--mode echo --conns 10 --pipeline 2 --size 65536 --binary --warmup $WARM --duration $SECS"
    "latency|--mode latency --conns 1 --size 16 --warmup $WARM --duration $SECS"
)
for s in "${ECHO_SCEN[@]}"; do
    sc=${s%%|*}; args=${s#*|}
    step "2. $sc: $args ($RUNS runs, round-robin)"
    for r in $(seq "$RUNS"); do
        for p in "${running[@]}"; do
            SRVCMD="$SRV ${START[$p]//PORT/0}"
            # shellcheck disable=SC2086
            loadgen "$sc" "$p" "$r" "${PORT[$p]}" $args --pid "${SPID[$p]}"
        done
    done
done
for p in "${running[@]}"; do stop_server "${SPID[$p]}"; done
fi

# ---- 3. connections -------------------------------------------------------
if section idle; then
step "3. idle: $IDLE_CONNS connections, ${IDLE_SECS}s idle, heartbeats on (a fresh server each)"
for p in "${avail[@]}"; do
    start_server "$p" || continue
    sleep 0.5
    loadgen idle "$p" 1 "$sport" --mode idle --conns "$IDLE_CONNS" --duration "$IDLE_SECS" --pid "$spid"
    stop_server "$spid"
done
fi

# ---- 4. size --------------------------------------------------------------
if section size; then
step "4. size (gcc -Os)"
text_of() { size -A "$1" | awk '$1==".text"{print $2}'; }
gcc -std=c99 -Os bench/size/size_empty.c -Wl,--gc-sections -o $B/size_empty
empty=$(size $B/size_empty | awk 'NR==2{print $1}')
for u in client server both; do
    gcc -std=c99 -Os -DRTWS_STATIC -c bench/size/size_$u.c -o $B/size_$u.o
    gcc -std=c99 -Os -ffunction-sections -fdata-sections bench/size/size_$u.c -Wl,--gc-sections -o $B/size_$u
    printf 'size\trtws-%s\t1\tobj_text\t%s\n' "$u" "$(text_of $B/size_$u.o)" >>"$RAW"
    printf 'size\trtws-%s\t1\tbin_text\t%s\n' "$u" "$(( $(size $B/size_$u | awk 'NR==2{print $1}') - empty ))" >>"$RAW"
done
cmdline size rtws "gcc -std=c99 -Os -DRTWS_STATIC -c bench/size/size_{client,server,both}.c; size -A (.text). Linked: gcc -std=c99 -Os -ffunction-sections -fdata-sections ... -Wl,--gc-sections; size (text) minus an empty program's ($empty)"
printf 'size\trtws\t1\tloc\t%s\n' "$(wc -l <rtws.h)" >>"$RAW"
printf 'size\trtws\t1\tsloc\t%s\n' "$(gcc -fpreprocessed -dD -E -P rtws.h 2>/dev/null | grep -cv '^\s*$')" >>"$RAW"
for lib in libwebsockets.so libwslay.so; do
    f=$(readlink -f /usr/lib/x86_64-linux-gnu/$lib 2>/dev/null)
    [ -f "$f" ] || f=$(ldconfig -p | awk -v l="$lib" '$1 ~ l {print $NF; exit}')
    if [ -n "$f" ] && [ -f "$f" ]; then
        printf 'size\t%s\t1\tso_text\t%s\n' "${lib%.so}" "$(text_of "$f")" >>"$RAW"
        cmdline size "${lib%.so}" "size -A $f (.text)"
    else note "size: $lib not found"; fi
done
if [ -n "${NODE_PATH:-}" ]; then
    f=$(ls "$NODE_PATH"/@trufflesuite/uws-js-unofficial/binaries/uws_linux_x64_"$(node -p process.versions.modules 2>/dev/null)".node 2>/dev/null)
    if [ -n "$f" ]; then
        printf 'size\tuWebSockets.js\t1\tso_text\t%s\n' "$(text_of "$f")" >>"$RAW"
        cmdline size uWebSockets.js "size -A $(basename "$f") (.text; uWS + uSockets + the Node binding)"
    fi
fi
fi

# ---- 5. fan-out -----------------------------------------------------------
# One publisher, N subscribers of channel "bench", the realtime protocol of
# docs/PROTOCOL.md: rtws's router next to uWebSockets.js topics and a Node ws
# broadcast loop speaking the same JSON. A fresh server per peer and per
# scenario (the servers of one scenario idle on their own ports while another
# is measured), runs round-robin as in the echo scenarios.
if section fanout; then
declare -A FSTART
FSTART[rtws]="$B/rtws_fanout PORT"
FSTART[uws]="node bench/peers/uws_fanout.js PORT"
FSTART[ws]="node bench/peers/ws_fanout.js PORT"
fpeers=()
for p in "${avail[@]}"; do
    case $p in
    rtws)
        [ $have_rtws_fanout = 1 ] || continue
        version peer_rtws_fanout "rtws $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h), router (bench/peers/rtws_fanout.c -O2)"
        fpeers+=(rtws) ;;
    uws | ws) fpeers+=("$p") ;;
    *) ;; # no fan-out server for the echo-only peers
    esac
done
[ ${#fpeers[@]} -gt 0 ] || note "fan-out: none of rtws, uws, ws available: skipped"
for n in $FAN_SUBS; do
    sc=fanout$n
    [ $((n % 1000)) = 0 ] && sc=fanout$((n / 1000))k # fanout1k, fanout10k
    # 16 publishes in flight, as the echo pipeline: every server has work
    # queued at all times and may write several messages per send(); the
    # latency includes that queue (about 16 fan-outs)
    args="--mode fanout --conns $n --pipeline ${BENCH_FANOUT_PIPELINE:-16} --warmup $WARM --duration $SECS"
    step "5. $sc: $args ($RUNS runs, round-robin, a fresh server per peer)"
    running=()
    for p in "${fpeers[@]}"; do
        if start_server "$p" "${FSTART[$p]}" "${p}_$sc"; then
            PORT[$p]=$sport; SPID[$p]=$spid; running+=("$p")
            cmdline "server_$sc" "$p" "$SRVCMD"
        fi
    done
    sleep 0.5
    for r in $(seq "$RUNS"); do
        for p in "${running[@]}"; do
            SRVCMD="$SRV ${FSTART[$p]//PORT/0}"
            # shellcheck disable=SC2086
            loadgen "$sc" "$p" "$r" "${PORT[$p]}" $args --pid "${SPID[$p]}"
        done
    done
    for p in "${running[@]}"; do stop_server "${SPID[$p]}"; done
done
fi

# ---- 6. TLS ---------------------------------------------------------------
# wss:// next to ws://: the same echo_server program (its BearSSL build), the
# same client (bench/tls_load.c, rtws's own client, every echo checked) and
# the same scenario on both transports, runs round-robin.
if section tls && [ $have_tls = 1 ]; then
declare -A TSTART
TSTART[plain]="build/echo_server --port PORT"
TSTART[tls]="build/tls_echo_server --port PORT --tls-cert $B/tls/srv_rsa.pem --tls-key $B/tls/rsa.key"
version peer_tls_plain "rtws $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h), echo_server -O2, ws://"
version peer_tls_tls "rtws $(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h), tls_echo_server -O2, wss:// (BearSSL $(dpkg-query -W -f='${Version}' libbearssl-dev 2>/dev/null), RSA 2048 certificate)"
running=()
for p in plain tls; do
    if start_server "$p" "${TSTART[$p]}" "tls_$p"; then
        PORT[$p]=$sport; SPID[$p]=$spid; running+=("$p")
    fi
done
TLS_SCEN=(
    "tls64|--conns 100 --pipeline 16 --size 64 --warmup $WARM --duration $SECS"
    "tls64k|--conns 10 --pipeline 2 --size 65536 --binary --warmup $WARM --duration $SECS"
)
for s in "${TLS_SCEN[@]}"; do
    sc=${s%%|*}; args=${s#*|}
    step "6. $sc: $args ($RUNS runs, round-robin)"
    for r in $(seq "$RUNS"); do
        for p in "${running[@]}"; do
            url=ws://127.0.0.1:${PORT[$p]}/ extra=""
            [ $p = tls ] && url=wss://127.0.0.1:${PORT[$p]}/ extra="--ca $B/tls/ca.pem"
            out=$LOGS/${sc}_${p}_$r.log
            # shellcheck disable=SC2086
            $LG $B/tls_load "$url" $extra $args --pid "${SPID[$p]}" >"$out" 2>&1
            store_result "$sc" "$p" "$r" "$out" $?
            # shellcheck disable=SC2086
            [ "$r" = 1 ] && cmdline "$sc" "$p" "server: $SRV ${TSTART[$p]//PORT/0} ; load: $LG $B/tls_load $url $extra $args --pid ${SPID[$p]}"
        done
    done
done
for p in "${running[@]}"; do stop_server "${SPID[$p]}"; done
fi

# ---- 7. JSON ---------------------------------------------------------------
# bench/json.sh: the layer 6 parser next to cJSON and jsmn on the same inputs
if section json; then
step "7. json: bench/json.sh (rtws vs cJSON and jsmn, ${SRV:-unpinned})"
if $SRV bash bench/json.sh >"$B/json.txt" 2>"$LOGS/json.log"; then
    sed 's/^/   /' "$B/json.txt"
    cmdline json rtws "$SRV bash bench/json.sh"
else
    : >"$B/json.txt"
    note "json: bench/json.sh failed: $(tail -n 3 "$LOGS/json.log" | tr '\n' ' ')"
fi
fi

# ---- 8. router ------------------------------------------------------------
# bench/bench_router.c: one publish to 5,000 in-memory subscribers (sans-I/O)
# and the server heap per idle subscribed connection
if section router; then
step "8. router: bench_router 5000 (${SRV:-unpinned})"
if gcc $CFLAGS_B -I. bench/bench_router.c -o $B/bench_router 2>"$LOGS/router.log" &&
    $SRV $B/bench_router 5000 >"$B/router.txt" 2>>"$LOGS/router.log"; then
    sed 's/^/   /' "$B/router.txt"
    cmdline router rtws "$SRV $B/bench_router 5000   (built: gcc $CFLAGS_B -I. bench/bench_router.c)"
else
    : >"$B/router.txt"
    note "router: bench_router failed: $(tail -n 3 "$LOGS/router.log" | tr '\n' ' ')"
fi
fi

# ---- 9. grid ---------------------------------------------------------------
# bench/grid.sh: rtws and uWebSockets.js over sizes x depths (10 connections)
# and connection counts, A/B per cell; its own servers and pinning
if section grid; then
echo "== 9. grid: bash bench/grid.sh ${BENCH_GRID_ARGS:-}"
# shellcheck disable=SC2086
bash bench/grid.sh ${BENCH_GRID_ARGS:-} --out $B/grid --charts "$OUT/charts" || note "grid: bench/grid.sh failed"
fi

# ---- 10. latency under load ---------------------------------------------------
if section latload; then
echo "== 10. latency under load: bash bench/latency_load.sh"
bash bench/latency_load.sh --out $B/latency_load || note "latload: bench/latency_load.sh failed"
fi

# ---- 11. scale ---------------------------------------------------------------
# bench/scale.sh: 100,000 idle connections with heartbeats, 10,000 subscribed
if section scale; then
echo "== 11. scale: bash bench/scale.sh ${BENCH_SCALE_ARGS:-}"
# shellcheck disable=SC2086
bash bench/scale.sh ${BENCH_SCALE_ARGS:-} --out $B/scale || note "scale: bench/scale.sh failed"
fi

# ---- 12. deflate ----------------------------------------------------------
# bench/bench_deflate.c: rtws's DEFLATE codec next to zlib and libdeflate
# (levels 1 and 6, compress and inflate) on JSON envelopes and a 1 MiB mixed
# document; libdeflate when Debian's libdeflate-dev is there (-DHAVE_LIBDEFLATE)
if section deflate; then
echo "== 12. deflate: bench_deflate vs zlib and libdeflate (${SRV:-unpinned})"
dneed=()
echo '#include <zlib.h>' | gcc -E -x c - >/dev/null 2>&1 || dneed+=(zlib1g-dev)
[ -f /usr/include/libdeflate.h ] || dneed+=(libdeflate-dev)
if [ ${#dneed[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${dneed[@]}") >"$LOGS/zlib_install.log" 2>&1
fi
DFLAGS="-lz"
if [ -f /usr/include/libdeflate.h ]; then DFLAGS="-DHAVE_LIBDEFLATE -lz -ldeflate"
else note "deflate: libdeflate.h missing (Debian libdeflate-dev): libdeflate left out"; fi
# shellcheck disable=SC2086
if gcc $CFLAGS_B -I. bench/bench_deflate.c -o $B/bench_deflate $DFLAGS 2>"$LOGS/deflate.log" &&
    $SRV $B/bench_deflate >"$B/deflate.txt" 2>>"$LOGS/deflate.log"; then
    sed 's/^/   /' "$B/deflate.txt"
    version zlib "$(sed -n 's/^# rtws [^,]*, zlib \([^;]*\);.*/\1/p' "$B/deflate.txt")"
    grep -q '; libdeflate ' "$B/deflate.txt" &&
        version libdeflate "$(sed -n 's/^# .*; libdeflate \([^;]*\);.*/\1/p' "$B/deflate.txt") (Debian libdeflate-dev $(dpkg-query -W -f='${Version}' libdeflate-dev 2>/dev/null))"
    cmdline deflate rtws "$SRV $B/bench_deflate   (built: gcc $CFLAGS_B -I. bench/bench_deflate.c $DFLAGS)"
else
    : >"$B/deflate.txt"
    note "deflate: bench_deflate failed or zlib missing: $(tail -n 3 "$LOGS/deflate.log" | tr '\n' ' ')"
fi
fi

# ---- 13. cross-thread posting ------------------------------------------
# bench/bench_post.c: rtws_ctx_post from 1 and 4 threads next to rtws_conn_send
# on the loop's thread; the loop's CPU per message and per wake-up
if section post; then
echo "== 13. post: bench_post 1000000 (${SRV:-unpinned})"
if gcc $CFLAGS_B -I. -pthread bench/bench_post.c -o $B/bench_post 2>"$LOGS/post.log" &&
    $SRV $B/bench_post 1000000 >"$B/post.txt" 2>>"$LOGS/post.log"; then
    sed 's/^/   /' "$B/post.txt"
    cmdline post rtws "$SRV $B/bench_post 1000000   (built: gcc $CFLAGS_B -I. -pthread bench/bench_post.c)"
else
    : >"$B/post.txt"
    note "post: bench_post failed: $(tail -n 3 "$LOGS/post.log" | tr '\n' ' ')"
fi
fi

# ---- 14. echo with permessage-deflate ---------------------------------------
# rtws's echo_server (compression on by default: server_no_context_takeover,
# level 1, its compressor lent from the context's pool per message) next to
# uWebSockets.js with SHARED_COMPRESSOR | SHARED_DECOMPRESSOR (the closest uWS
# mode: no window kept either way, one compressor for every socket), under
# loadgen --deflate: JSON text, every message compressed by the client
# (prebuilt, client_no_context_takeover), every echo inflated and checked.
# Plus rtws with compression off (loadgen --json offers none, the same
# payloads) at 4 KiB x 16: the cost of compressing. 10 connections; sizes x
# pipelines below, $RUNS runs round-robin of BENCH_DEFLATE_SECONDS (2) each:
# about 2 minutes.
if section echo-deflate; then
DSECS=${BENCH_DEFLATE_SECONDS:-2}
declare -A DSTART
DSTART[rtws]="build/echo_server --port PORT"
DSTART[uws]="node bench/peers/uws_echo.js PORT shared"
dpeers=()
for p in "${avail[@]}"; do
    case $p in
    rtws) dpeers+=(rtws) ;;
    uws) dpeers+=(uws) ;;
    *) ;; # the other echo peers are not measured with compression
    esac
done
version peer_dfl_rtws "${VER[rtws]}, permessage-deflate on (its defaults)"
[ -n "${VER[uws]:-}" ] && version peer_dfl_uws "${VER[uws]}, compression SHARED_COMPRESSOR + SHARED_DECOMPRESSOR (bitwise or)"
version peer_dfl_rtws-off "${VER[rtws]}, no permessage-deflate (not offered)"
running=()
for p in "${dpeers[@]}"; do
    if start_server "$p" "${DSTART[$p]}" "dfl_$p"; then
        PORT[$p]=$sport; SPID[$p]=$spid; running+=("$p")
    fi
done
DFL_SCEN=()
for size in 256 4096 65536; do
    for pl in 1 16; do
        lab=$size; [ "$size" -ge 1024 ] && lab=$((size / 1024))k
        DFL_SCEN+=("dfl${lab}x$pl|--mode echo --deflate --conns 10 --pipeline $pl --size $size --warmup 0.5 --duration $DSECS")
    done
done
for s in "${DFL_SCEN[@]}"; do
    sc=${s%%|*}; args=${s#*|}
    step "14. $sc: $args ($RUNS runs, round-robin)"
    for r in $(seq "$RUNS"); do
        for p in "${running[@]}"; do
            SRVCMD="$SRV ${DSTART[$p]//PORT/0}"
            # shellcheck disable=SC2086
            loadgen "$sc" "$p" "$r" "${PORT[$p]}" $args --pid "${SPID[$p]}"
            if [ "$p" = rtws ] && [ "$sc" = dfl4kx16 ]; then # the same without compression
                # shellcheck disable=SC2086
                loadgen "$sc" rtws-off "$r" "${PORT[$p]}" ${args/--deflate/--json} --pid "${SPID[$p]}"
            fi
        done
    done
done
for p in "${running[@]}"; do stop_server "${SPID[$p]}"; done
fi

version load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
version duration_s "$(( $(date +%s) - START ))"

# ---- report ---------------------------------------------------------------
step "report"
"$PY" bench/report.py "$B" "$OUT" || { echo "bench: report failed"; exit 1; }
echo "bench: done in $(( $(date +%s) - START )) s: $OUT/results.md, $OUT/charts/"
