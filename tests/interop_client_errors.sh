#!/usr/bin/env bash
# The example clients on bad input, under ASan+UBSan with LeakSanitizer on
# (issue 15 item 9: echo_client leaked its context and buffers when
# rtws_ctx_connect failed). Each client is given a URL it must refuse (CR/LF
# that would inject a header, a space, no scheme, an unclosed IPv6 bracket)
# and must print its name and a clear error to stderr, exit 1, and leave no
# leak and no sanitizer report. frame_loop dials before it checks the URL
# with rtws_conn_start, so it gets a real listener: build/echo_server.
# 127.0.0.1 only; every process started here runs under `timeout` and the
# server is stopped by its PID.
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
pass=0; fail=0; spid=
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
mkdir -p "$B"
tmp=$(mktemp -d "$B/client_errors.XXXXXX")
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for n in asan_echo_client asan_chat_client asan_frame_loop echo_server; do
    make -s "$B/$n" >"$tmp/build.log" 2>&1 || { bad "$n does not build"; cat "$tmp/build.log"; }
done

timeout 60 "$B/echo_server" --host 127.0.0.1 --port 0 >"$tmp/server.log" 2>&1 &
spid=$!
port=
for _ in $(seq 1 50); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/server.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { bad "echo_server did not start"; port=9; }

# one case: client, expected exit code, a regex stderr must match, then argv
run() {
    local name=$1 want=$2 re=$3; shift 3
    timeout 20 "$B/asan_$name" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
    local what="$name $(printf '%q' "$1")"
    if grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$tmp/err"; then
        bad "$what: sanitizer report"; head -n 20 "$tmp/err"
    elif [ "$rc" -ne "$want" ]; then
        bad "$what: exit $rc, want $want; stderr: $(head -c 300 "$tmp/err")"
    elif ! grep -zqE "$re" "$tmp/err"; then
        bad "$what: stderr lacks /$re/: $(head -c 300 "$tmp/err")"
    else
        ok "$what: exit $rc, $(head -n 1 "$tmp/err")"
    fi
}

crlf=$'ws://127.0.0.1:'"$port"$'/a\r\nX-Injected: 1'
for url in "$crlf" "ws://127.0.0.1:$port/a b" "127.0.0.1:$port/" "ws://[::1:$port/" "ws://:$port/"; do
    run echo_client 1 'echo_client: .*malformed URL' "$url" -n 1
    run chat_client 1 'chat_client: bad url' "$url"
done
run frame_loop 1 '^frame_loop: bad URL' "$crlf"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
