#!/usr/bin/env bash
# permessage-deflate (RFC 7692) with third-party peers, both roles: Python
# websockets (compression on by default) and Node ws (perMessageDeflate),
# with every takeover and window combination they take. rtws's side is
# tests/peers/pmd_rtws.c (built here under ASan+UBSan), the peers' are
# tests/peers/pmd_py.py and pmd_node.js. Each run sends text and binary
# messages of 0 B to 1 MiB both ways and checks every echo and the
# agreement. 127.0.0.1 only; every process started here is stopped by its
# PID. Installs missing peers as root, else says it skipped
# (RTWS_REQUIRE_ALL=1: a failure).
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

mkdir -p "$B"
cc -std=c99 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
    -I. tests/peers/pmd_rtws.c -o "$B/pmd_rtws" -lm || { echo "0 passed, 1 failed"; exit 1; }

start_server() { # LOG CMD...: sets $port and $spid once "listening on" is printed
    local log=$1; shift
    : >"$log"
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

# Combinations: peer flags (--snt --cnt --sbits N --cbits N, the same names
# on every side), and the agreement rtws must report for them.
#   NAME | PEER SERVER FLAGS | AGREED (rtws client)
SERVER_CASES=(
    "defaults||snt=0 cnt=0 sbits=15 cbits=15"
    "server no takeover|--snt|snt=1 cnt=0 sbits=15 cbits=15"
    "client no takeover|--cnt|snt=0 cnt=1 sbits=15 cbits=15"
    "no takeover both|--snt --cnt|snt=1 cnt=1 sbits=15 cbits=15"
    "server window 9|--sbits 9|snt=0 cnt=0 sbits=9 cbits=15"
    "client window 9|--cbits 9|snt=0 cnt=0 sbits=15 cbits=9"
    "windows 12, no takeover|--snt --cnt --sbits 12 --cbits 12|snt=1 cnt=1 sbits=12 cbits=12"
    "rtws asks: no takeover, server window 10|--|snt=1 cnt=1 sbits=10 cbits=15|--own-nt --peer-nt --peer-bits 10"
)
#   NAME | PEER CLIENT FLAGS | AGREED (rtws server)
CLIENT_CASES=(
    "defaults||snt=0 cnt=0 sbits=15 cbits=15"
    "server no takeover|--snt|snt=1 cnt=0 sbits=15 cbits=15"
    "client no takeover|--cnt|snt=0 cnt=1 sbits=15 cbits=15"
    "no takeover both|--snt --cnt|snt=1 cnt=1 sbits=15 cbits=15"
    "server window 9|--sbits 9|snt=0 cnt=0 sbits=9 cbits=15"
    "client window 9|--cbits 9|snt=0 cnt=0 sbits=15 cbits=9"
    "windows 12, no takeover|--snt --cnt --sbits 12 --cbits 12|snt=1 cnt=1 sbits=12 cbits=12"
)

# rtws client -> peer server, for each combination
peer_server() {
    local name=$1; shift
    local c label flags want own
    for c in "${SERVER_CASES[@]}"; do
        IFS='|' read -r label flags want own <<<"$c"
        [ "$flags" = "--" ] && flags=
        # shellcheck disable=SC2086
        start_server "$B/pmd_srv.log" "$@" server --port 0 $flags || { bad "$name server ($label)"; continue; }
        # shellcheck disable=SC2086
        if timeout 60 "$B/pmd_rtws" "ws://127.0.0.1:$port/" --expect "$want" $own >"$B/pmd_cli.log" 2>&1; then
            ok "rtws client -> $name server, $label: $(grep -E '^[0-9]+ passed' "$B/pmd_cli.log")"
        else
            bad "rtws client -> $name server, $label"; cat "$B/pmd_cli.log" "$B/pmd_srv.log" | tail -n 15
        fi
        stop_server
    done
}

# peer client -> rtws server, for each combination
peer_client() {
    local name=$1; shift
    local c label flags want
    # --takeover: the combinations are about takeover (a server's default
    # answers server_no_context_takeover: peer_client_asks)
    start_server "$B/pmd_srv.log" "$B/pmd_rtws" server --port 0 --takeover || { bad "rtws server"; return; }
    for c in "${CLIENT_CASES[@]}"; do
        [ "${c%%|*}" = "rtws asks" ] && continue
        IFS='|' read -r label flags want <<<"$c"
        local before; before=$(grep -c '^agreed:' "$B/pmd_srv.log")
        # shellcheck disable=SC2086
        if timeout 60 "$@" client "ws://127.0.0.1:$port/" $flags >"$B/pmd_cli.log" 2>&1; then
            local got; got=$(grep '^agreed:' "$B/pmd_srv.log" | sed -n "$((before + 1))p")
            if [ "$got" = "agreed: $want" ]; then
                ok "$name client -> rtws server, $label: $(grep -E '^[0-9]+ passed' "$B/pmd_cli.log")"
            else
                bad "$name client -> rtws server, $label: rtws reported '$got', expected '$want'"
            fi
        else
            bad "$name client -> rtws server, $label"; tail -n 15 "$B/pmd_cli.log"
        fi
    done
    if grep -q Sanitizer "$B/pmd_srv.log"; then bad "rtws server: sanitizer report"; grep -A15 Sanitizer "$B/pmd_srv.log"; fi
    stop_server
}

# a peer client -> rtws server on its defaults (its own messages without
# takeover, the client's window as the client likes) with a server window of 11
peer_client_asks() {
    local name=$1; shift
    local want="snt=1 cnt=0 sbits=11 cbits=15"
    start_server "$B/pmd_srv.log" "$B/pmd_rtws" server --port 0 --bits 11 ||
        { bad "rtws server"; return; }
    if timeout 60 "$@" client "ws://127.0.0.1:$port/" >"$B/pmd_cli.log" 2>&1 &&
        grep -q "^agreed: $want$" "$B/pmd_srv.log"; then
        ok "$name client -> rtws server, rtws defaults (server no takeover), server window 11: $(grep -E '^[0-9]+ passed' "$B/pmd_cli.log")"
    else
        bad "$name client -> rtws server, rtws defaults"; tail -n 15 "$B/pmd_cli.log" "$B/pmd_srv.log"
    fi
    stop_server
}

if "$PY" -c 'import websockets' 2>/dev/null || rtws_apt python3-websockets; then
    peer_server "python websockets" "$PY" tests/peers/pmd_py.py
    peer_client "python websockets" "$PY" tests/peers/pmd_py.py
    peer_client_asks "python websockets" "$PY" tests/peers/pmd_py.py
else
    skipped "python websockets (apt-get install python3-websockets)"
fi
if rtws_npm ws; then
    peer_server "node ws" node tests/peers/pmd_node.js
    peer_client "node ws" node tests/peers/pmd_node.js
    peer_client_asks "node ws" node tests/peers/pmd_node.js
else
    skipped "node ws (npm install ws)"
fi

if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]
