#!/usr/bin/env bash
# Interop with third-party peers in both directions: Python `websockets` and
# Node `ws` as clients of examples/echo_server and as servers for
# examples/echo_client. Text, binary, 0/1/125/126/127/65535/65536 bytes and
# 8 MiB, fragmented input, ping/pong, close codes. 127.0.0.1 only; every
# process started here is stopped by its PID. Installs missing peers as root.
set -u
cd "$(dirname "$0")/.."
B=build
pass=0; fail=0; skip=0; pids=()
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
skipped() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then bad "$* (peer missing and RTWS_REQUIRE_ALL=1)"
    else skip=$((skip + 1)); echo "skipped: $*"; fi
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT

PY=/usr/bin/python3
. tests/deps.sh
ensure_py() {
    "$PY" -c 'import websockets' 2>/dev/null && return 0
    rtws_apt python3-websockets
    "$PY" -c 'import websockets' 2>/dev/null
}
ensure_node() { rtws_npm ws; }

# start_server LOG CMD...: runs CMD in the background, waits for its
# "listening on HOST:PORT" line, sets $port and $spid
start_server() {
    local log=$1; shift
    : >"$log" # truncate here: the background redirection may come too late
    "$@" >"$log" 2>&1 &
    spid=$!; pids+=("$spid"); port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start: $*"; cat "$log"; return 1
}
stop_server() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }

# counts a peer client's own "N passed, M failed" line into ours
peer_result() {
    local name=$1 out=$2 rc=$3 line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -z "$line" ] || [ "$rc" -ne 0 ]; then
        bad "$name (exit $rc)"; grep -v '^ok' "$out" | tail -n 20; return
    fi
    p=${line%% passed*}; f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    pass=$((pass + p)); fail=$((fail + f))
    echo "$name: $line"
    [ "$f" -ne 0 ] && grep FAILED "$out"
}

# rtws as server, the peer as client
peer_client() {
    local name=$1; shift
    start_server "$B/interop_srv.log" "$B/echo_server" --port 0 || { bad "$name: echo_server"; return; }
    timeout 120 "$@" "ws://127.0.0.1:$port/" >"$B/interop_cli.log" 2>&1
    peer_result "$name client -> rtws echo_server" "$B/interop_cli.log" $?
    stop_server
}

# the peer as server, rtws echo_client as client
peer_server() {
    local name=$1; shift
    start_server "$B/interop_srv.log" "$@" || { bad "$name server"; return; }
    local runs=0 s mode
    for s in 0 1 125 126 127 65535 65536 8388608; do
        for mode in "" --binary; do
            runs=$((runs + 1))
            if timeout 60 "$B/echo_client" -n 3 -s "$s" $mode "ws://127.0.0.1:$port/" >"$B/interop_cli.log" 2>&1; then
                ok "rtws echo_client -> $name: $s bytes ${mode:-text}"
            else
                bad "rtws echo_client -> $name: $s bytes ${mode:-text} (port $port)"; cat "$B/interop_cli.log"; head -n 3 "$B/interop_srv.log"
            fi
        done
    done
    sleep 0.3
    local closed; closed=$(grep -c '^closed 1000$' "$B/interop_srv.log")
    if [ "$closed" -eq "$runs" ]; then ok "$name saw $runs clean closes with 1000"
    else bad "$name saw $closed of $runs clean closes with 1000"; fi
    stop_server
}

for t in echo_server echo_client; do
    [ -x "$B/$t" ] || make -s "$B/$t" >/dev/null || bad "build $t"
done

if ensure_py; then
    peer_client "python websockets" "$PY" tests/peers/py_peer.py client
    peer_server "python websockets" "$PY" tests/peers/py_peer.py server
else
    skipped "python websockets (apt-get install python3-websockets)"
fi
if ensure_node; then
    peer_client "node ws" node tests/peers/node_peer.js client
    peer_server "node ws" node tests/peers/node_peer.js server
else
    skipped "node ws (npm install ws)"
fi

if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]
