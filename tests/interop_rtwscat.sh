#!/usr/bin/env bash
# tools/rtwscat from a script and from a terminal:
#  - against build/echo_server: lines both ways, --base64, --jsonl/--pretty,
#    --count/--timeout and the exit codes (0, 1, 2, 3), --ping, --exec, and
#    --reconnect across a server restart;
#  - server mode (--listen): stdin to clients and clients to stdout,
#    subprotocol choice, --exec cat as an echo server for build/echo_client;
#  - Python websockets as a server (request headers, Origin, subprotocol) and
#    Node ws as server and client;
#  - --protocol rtws against build/chat_server: sub, pub, presence, acks;
#  - an interactive session in tmux (typed lines, /ping, /close).
# 127.0.0.1 only; every process started here is stopped by its PID; peers and
# tmux are installed when root and missing, else skipped (a failure under
# RTWS_REQUIRE_ALL=1).
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
pass=0; fail=0; skip=0; pids=()
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
skipped() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then bad "$* (missing and RTWS_REQUIRE_ALL=1)"
    else skip=$((skip + 1)); echo "skipped: $*"; fi
}
mkdir -p "$B"
T=$(mktemp -d "$PWD/$B/rtwscat_test.XXXXXX")
TMUX_S=rtwscat_test_$$
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    command -v tmux >/dev/null && tmux kill-session -t "$TMUX_S" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
CAT=${RTWSCAT:-$B/rtwscat} # RTWSCAT=build/asan_rtwscat: the same under ASan+UBSan

for t in rtwscat ${RTWSCAT:+${RTWSCAT#$B/}} echo_server echo_client chat_server; do
    make -s "$B/$t" >"$T/build.log" 2>&1 || { bad "build $t"; cat "$T/build.log"; }
done

# start_server LOG CMD...: CMD in the background (stdin from $STDIN, else
# /dev/null); waits for "listening on H:P" (stdout or stderr), sets $port and $spid
start_server() {
    local log=$1; shift
    : >"$log"
    "$@" <"${STDIN:-/dev/null}" >"$log" 2>&1 7>&- &
    spid=$!; pids+=("$spid"); port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start: $*"; cat "$log"; return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# wait_for FILE PATTERN [TENTHS]: until grep -q PATTERN FILE
wait_for() {
    for _ in $(seq "${3:-50}"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
# check NAME WANT GOT
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want [$2], got [$3]"; fi; }

# ---- usage -------------------------------------------------------------------
"$CAT" --help >"$T/out" 2>"$T/err"; rc=$?
if [ $rc = 0 ] && grep -q '^usage: rtwscat URL' "$T/out" && grep -q 'Exit codes' "$T/out" && [ ! -s "$T/err" ]; then
    ok "--help: the manual on stdout, exit 0"
else bad "--help: exit $rc"; fi
"$CAT" --no-such >"$T/out" 2>"$T/err"; rc=$?
if [ $rc = 2 ] && grep -q usage "$T/err" && [ ! -s "$T/out" ]; then ok "unknown option: usage on stderr, exit 2"
else bad "unknown option: exit $rc"; fi
"$CAT" http://127.0.0.1:1/ </dev/null >/dev/null 2>"$T/err"; check "a URL that is not ws:// exits 2" 2 $?

# ---- against echo_server -----------------------------------------------------
start_server "$T/echo.log" "$B/echo_server" --port 0 || bad "echo_server"
U=ws://127.0.0.1:$port/
EPORT=$port; EPID=$spid
out=$(printf 'hello\nwörld\n\nlast line without newline' | timeout 10 "$CAT" "$U" 2>"$T/err"); rc=$?
check "lines echoed in order (empty line too), exit 0" "$(printf 'hello\nwörld\n\nlast line without newline')|0" "$out|$rc"
grep -q "closed 1000" "$T/err" && ok "status on stderr: closed 1000" || bad "stderr: $(cat "$T/err")"
out=$(printf 'AAEC/w==\n!!\n' | timeout 10 "$CAT" "$U" --base64 -q 2>"$T/err"); rc=$?
check "--base64: binary round trip" "AAEC/w==|0" "$out|$rc"
grep -q "not base64" "$T/err" && ok "--base64: a bad line refused" || bad "--base64 bad line: $(cat "$T/err")"
out=$(printf '{ "a" : [1, 2.5e3, {"b": null}], "s": "x\\u00e9" }\nnot json\n' | timeout 10 "$CAT" "$U" --jsonl -q 2>"$T/err")
check "--jsonl: compact JSON line" '{"a":[1,2.5e3,{"b":null}],"s":"x\u00e9"}' "$out"
grep -q "not JSON (expected a value at byte 0)" "$T/err" && ok "--jsonl: invalid line refused with where" || bad "--jsonl err: $(cat "$T/err")"
out=$(printf '{"a":[1,{}],"b":[]}\n' | timeout 10 "$CAT" "$U" --pretty -q 2>&1)
check "--pretty" "$(printf '{\n  "a": [\n    1,\n    {}\n  ],\n  "b": []\n}')" "$out"
out=$(printf 'a\nb\nc\nd\n' | timeout 10 "$CAT" "$U" --count 2 -q 2>&1); rc=$?
check "--count 2: two messages, exit 0" "$(printf 'a\nb')|0" "$out|$rc"
t0=$(date +%s%N)
timeout 10 "$CAT" "$U" --count 1 --timeout 0.5 --ping 0.1 </dev/null >"$T/out" 2>"$T/err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc = 3 ] && [ $ms -ge 450 ] && [ $ms -lt 5000 ]; then ok "--timeout 0.5 without a message: exit 3 after $ms ms"
else bad "--timeout: exit $rc after $ms ms"; cat "$T/err"; fi
grep -Eq "pong from .*: rtt [0-9]+\.[0-9]{3} ms" "$T/err" && ok "--ping: round trips shown ($(grep -c pong "$T/err"))" || bad "--ping: $(cat "$T/err")"
timeout 10 "$CAT" ws://127.0.0.1:1/ </dev/null >/dev/null 2>"$T/err"; rc=$?
check "connection refused: exit 1" 1 $rc
out=$(timeout 10 "$CAT" "$U" -q --exec "echo first; read -r l; echo \"child got \$l\" >$T/exec.out" </dev/null 2>&1); rc=$?
check "--exec (client): the program's line sent, the echo to its stdin, exit 0" "child got first|0" "$(cat "$T/exec.out" 2>/dev/null)|$rc"

# --reconnect: the server goes away and comes back on the same port
mkfifo "$T/in"
timeout 30 "$CAT" "$U" --reconnect <"$T/in" >"$T/rc.out" 2>"$T/rc.err" &
rcpid=$!; pids+=("$rcpid")
exec 7>"$T/in"
echo one >&7
wait_for "$T/rc.out" '^one$' || bad "--reconnect: no first echo"
stop "$EPID"
wait_for "$T/rc.err" 'reconnecting in' || bad "--reconnect: no reconnecting status: $(cat "$T/rc.err")"
echo two >&7 # queued while offline
start_server "$T/echo2.log" "$B/echo_server" --port "$EPORT" || bad "echo_server restart"
EPID=$spid
wait_for "$T/rc.out" '^two$' 100 && ok "--reconnect: a line sent while the server was down arrives after it is back" ||
    bad "--reconnect: $(cat "$T/rc.out" "$T/rc.err")"
exec 7>&-
wait "$rcpid"; check "--reconnect: end of input closes, exit 0" 0 $?

# ---- server mode -------------------------------------------------------------
rm -f "$T/in"; mkfifo "$T/in"
exec 7<>"$T/in" # read-write: the open does not wait for a reader
STDIN=$T/in start_server "$T/srv.log" "$CAT" --listen 127.0.0.1:0 -s chat -s superchat --count 1
SPID=$spid
timeout 10 "$CAT" "ws://127.0.0.1:$port/" -s superchat -s chat --count 1 </dev/null >"$T/cli.out" 2>"$T/cli.err" 7>&- &
cpid=$!; pids+=("$cpid")
wait_for "$T/srv.log" ' connected' || bad "server: no connected line"
echo "from the server" >&7
wait "$cpid"; rc=$?
check "--listen: a stdin line reaches the client, which exits 0 at --count 1" "from the server|0" "$(cat "$T/cli.out")|$rc"
grep -q 'connected to .* (subprotocol superchat)$' "$T/cli.err" && ok "server picks the client's first offered subprotocol it knows" ||
    bad "subprotocol: $(cat "$T/cli.err")"
echo "from the client" | timeout 10 "$CAT" "ws://127.0.0.1:$port/" -q >/dev/null 2>&1
wait "$SPID"; rc=$?
exec 7>&-
if grep -q '^from the client$' "$T/srv.log" && [ $rc = 0 ]; then ok "--listen: a client's message on stdout; --count 1 ends the server, exit 0"
else bad "--listen: exit $rc: $(cat "$T/srv.log")"; fi
start_server "$T/srv.log" "$CAT" --listen 127.0.0.1:0 -q --exec cat </dev/null
SPID=$spid
if timeout 20 "$B/echo_client" "ws://127.0.0.1:$port/" -n 20 -s 300 >"$T/out" 2>&1; then ok "--listen --exec cat echoes for echo_client: $(head -c 40 "$T/out")"
else bad "--listen --exec cat: $(cat "$T/out")"; fi
out=$(printf 'x\ny\n' | timeout 10 "$CAT" "ws://127.0.0.1:$port/" --count 2 -q 2>&1)
check "--listen --exec: a second client gets its own program" "$(printf 'x\ny')" "$out"
stop "$SPID"

# ---- wss:// (rtwscat built with BearSSL: make builds it so when libbearssl-dev is there)
if "$CAT" --listen 127.0.0.1:0 --cert /nonexistent --key /nonexistent </dev/null 2>&1 | grep -q 'needs an rtwscat built with BearSSL'; then
    skipped "wss:// (rtwscat built without BearSSL: apt-get install libbearssl-dev)"
elif bash tests/tls_certs.sh >"$T/certs.log" 2>&1; then
    start_server "$T/tls.log" "$CAT" --listen 127.0.0.1:0 --cert build/tls/srv_ec.pem --key build/tls/ec.key --exec cat
    out=$(printf 'secret\n' | timeout 10 "$CAT" "wss://127.0.0.1:$port/" --ca build/tls/ca.pem --count 1 -q 2>&1)
    check "wss://: rtwscat --listen --cert/--key and a client with --ca" "secret" "$out"
    printf 'x\n' | timeout 10 "$CAT" "wss://127.0.0.1:$port/" --count 1 -q >/dev/null 2>"$T/err"; rc=$?
    if [ $rc = 1 ] && grep -qi 'tls' "$T/err"; then ok "wss://: an unknown CA fails with exit 1 and says why"
    else bad "wss:// without --ca: exit $rc: $(cat "$T/err")"; fi
    out=$(printf 'y\n' | timeout 10 "$CAT" "wss://127.0.0.1:$port/" --insecure --count 1 -q 2>&1)
    check "wss://: --insecure" "y" "$out"
    stop "$spid"
else bad "tests/tls_certs.sh"; cat "$T/certs.log"; fi

# ---- third-party peers ---------------------------------------------------------
PY=/usr/bin/python3
. tests/deps.sh
"$PY" -c 'import websockets' 2>/dev/null || rtws_apt python3-websockets
if "$PY" -c 'import websockets' 2>/dev/null; then
    cat >"$T/hdr.py" <<'EOF'
import asyncio, websockets
async def handler(ws, path=None):
    h = ws.request_headers
    await ws.send("%s|%s|%s" % (h.get("X-Test"), h.get("Origin"), ws.subprotocol))
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["v2.rtwscat"]) as srv:
        print("listening on 127.0.0.1:%d" % srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
EOF
    start_server "$T/py.log" "$PY" "$T/hdr.py"
    out=$(printf '\x01bin\n' | timeout 10 "$CAT" "ws://127.0.0.1:$port/x" -H 'X-Test: 42' --origin http://example.test \
        -s v1.rtwscat -s v2.rtwscat --binary --count 2 -q 2>&1)
    check "python websockets: -H, --origin, -s seen by the server; --binary echoed" \
        "$(printf '42|http://example.test|v2.rtwscat\n\x01bin')" "$out"
    stop "$spid"
    start_server "$T/py.log" "$PY" tests/peers/py_peer.py server
    out=$(printf 'AAECAwQ=\n' | timeout 10 "$CAT" "ws://127.0.0.1:$port/" --base64 --count 1 2>/dev/null)
    check "python websockets echo server (--base64)" "AAECAwQ=" "$out"
    wait_for "$T/py.log" '^closed 1000$' # (its close handler may run after our exit)
    stop "$spid"
    grep -q '^closed 1000$' "$T/py.log" && ok "python websockets saw a clean close 1000" || bad "python close: $(cat "$T/py.log")"
else skipped "python websockets (apt-get install python3-websockets)"; fi

node_ok() { rtws_npm ws; }
if node_ok; then
    start_server "$T/node.log" node tests/peers/node_peer.js server
    out=$(printf 'über\n' | timeout 10 "$CAT" "ws://127.0.0.1:$port/" 2>/dev/null); rc=$?
    check "node ws echo server" "über|0" "$out|$rc"
    stop "$spid"
    start_server "$T/srv.log" "$CAT" --listen 127.0.0.1:0 -q --exec 'while read -r l; do echo "re: $l"; done' </dev/null
    SPID=$spid
    out=$(timeout 10 node -e '
        const ws = new (require("ws"))(process.argv[1]);
        ws.on("open", () => ws.send("hi from node"));
        ws.on("message", (d) => { console.log(d.toString()); ws.close(1000); });
        ws.on("close", (c) => { console.log("close " + c); process.exit(0); });
        ws.on("error", (e) => { console.log("error " + e.message); process.exit(1); });' "ws://127.0.0.1:$port/" 2>&1)
    check "node ws client of rtwscat --listen --exec" "$(printf 're: hi from node\nclose 1000')" "$out"
    stop "$SPID"
else skipped "node ws (npm install ws)"; fi

# ---- --protocol rtws against chat_server ---------------------------------------
start_server "$T/chat.log" "$B/chat_server" --port 0
CPID=$spid
W=ws://127.0.0.1:$port/ws
timeout 20 "$CAT" "$W" --protocol rtws --sub room:t --jsonl --count 2 --timeout 15 </dev/null \
    >"$T/sub.out" 2>"$T/sub.err" &
subpid=$!; pids+=("$subpid")
wait_for "$T/sub.err" 'welcome as' || bad "rtws subscriber: no welcome: $(cat "$T/sub.err")"
printf 'sub room:t\npresence room:t away\npub room:t {"text":"hi"}\npub room:t nope\npub room:t [1,2]\nfrob x\n' |
    timeout 10 "$CAT" "$W" --protocol rtws >"$T/pub.out" 2>"$T/pub.err"; rc=$?
check "rtws publisher: exit 0 after its publishes were acked" 0 $rc
if grep -q 'ack c-1 #1' "$T/pub.err" && grep -q 'ack c-2 #2' "$T/pub.err"; then ok "rtws: both publishes acked (#1, #2)"
else bad "rtws acks: $(cat "$T/pub.err")"; fi
grep -q 'not sent: not JSON' "$T/pub.err" && grep -q 'unknown command frob' "$T/pub.err" &&
    ok "rtws: a non-JSON pub and an unknown command refused" || bad "rtws refusals: $(cat "$T/pub.err")"
wait "$subpid"; rc=$?
check "rtws subscriber: --count 2 reached, exit 0" 0 $rc
if grep -q '^{"type":"message","channel":"room:t","seq":1,"from":"anon-[^"]*","event":"message","data":{"text":"hi"}}$' "$T/sub.out" &&
    grep -q '"seq":2,.*"data":\[1,2\]}$' "$T/sub.out"; then ok "rtws: the subscriber got both messages as JSON lines"
else bad "rtws messages: $(cat "$T/sub.out")"; fi
grep -q '^{"type":"presence","channel":"room:t","user":"anon-[^"]*","status":"away"}$' "$T/sub.out" &&
    ok "rtws: presence shown" || bad "rtws presence: $(cat "$T/sub.out")"
out=$(printf 'sub room:u\n' | timeout 10 "$CAT" "$W" --protocol rtws --count 1 --timeout 0.8 2>/dev/null); rc=$?
check "rtws: --timeout while subscribed and quiet: exit 3" 3 $rc

# ---- interactive, in tmux --------------------------------------------------------
if ! command -v tmux >/dev/null; then
    rtws_apt tmux
fi
if command -v tmux >/dev/null; then
    pane() { tmux capture-pane -p -t "$TMUX_S" >"$T/pane" 2>/dev/null; }
    # pane_wait PATTERN [MIN_COUNT]: until the screen shows PATTERN (MIN_COUNT times)
    pane_wait() {
        for _ in $(seq 50); do
            pane; [ "$(grep -c -- "$1" "$T/pane")" -ge "${2:-1}" ] && return 0; sleep 0.1
        done
        return 1
    }
    tmux new-session -d -s "$TMUX_S" -x 100 -y 30 \
        "$PWD/$CAT $U --slash; echo \"exit=\$?\"; sleep 30"
    if pane_wait 'type lines to send'; then ok "tmux: rtwscat says how to use it at a terminal"
    else bad "tmux: no greeting"; cat "$T/pane"; fi
    tmux send-keys -t "$TMUX_S" 'typed in tmux' Enter
    # the terminal echoes what was typed, then the server's echo is printed
    pane_wait '^typed in tmux$' 2 && ok "tmux: a typed line comes back" || { bad "tmux: echo"; cat "$T/pane"; }
    tmux send-keys -t "$TMUX_S" '/ping' Enter
    pane_wait 'pong from .*rtt' && ok "tmux: /ping shows the round trip" || { bad "tmux: /ping"; cat "$T/pane"; }
    tmux send-keys -t "$TMUX_S" '/close 4000 bye now' Enter
    if pane_wait '^exit=0$' && grep -q 'closed 4000' "$T/pane"; then ok "tmux: /close 4000 with a reason, exit 0"
    else bad "tmux: /close"; cat "$T/pane"; fi
    tmux kill-session -t "$TMUX_S" 2>/dev/null
else skipped "tmux (apt-get install tmux)"; fi

stop "$EPID"; stop "$CPID"
if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]
