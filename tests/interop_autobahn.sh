#!/usr/bin/env bash
# The Autobahn-style conformance suite (tests/autobahn/suite.py) against both
# roles, with the examples built under ASan+UBSan: the server role through
# echo_server, the client role through autobahn_client. Any FAILED case fails.
set -u
cd "$(dirname "$0")/.."
B=build
PY=$(command -v python3 || echo /usr/bin/python3)
pass=0; fail=0
for t in asan_echo_server asan_autobahn_client; do
    [ -x "$B/$t" ] || make -s "$B/$t" >/dev/null || { echo "cannot build $t"; echo "0 passed, 1 failed"; exit 1; }
done
count() { # adds a suite log's closing line to the totals
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then fail=$((fail + 1)); echo "no result from $2"; tail -n 30 "$1"; return; fi
    pass=$((pass + ${line%% passed*})); fail=$((fail + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    echo "$2: $line ($(grep -E '^NON-STRICT' "$1"))"
    grep -E '^  section' "$1"; grep -E ' FAILED ' "$1" | head -n 20
}

: >"$B/ab_srv.log"
"$B/asan_echo_server" --port 0 >"$B/ab_srv.log" 2>&1 &
spid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$B/ab_srv.log"); [ -n "$port" ] && break; sleep 0.1
done
timeout 600 "$PY" tests/autobahn/suite.py client "ws://127.0.0.1:$port/" --json "$B/autobahn_server.json" >"$B/ab_server_role.log" 2>&1
kill "$spid"; wait "$spid"; src=$?
count "$B/ab_server_role.log" "server role (echo_server)"
# the server must have exited cleanly (SIGTERM handler) without sanitizer reports
if [ "$src" -ne 0 ] || grep -q 'Sanitizer' "$B/ab_srv.log"; then fail=$((fail + 1)); echo "echo_server exit $src"; tail -n 30 "$B/ab_srv.log"; fi

timeout 900 "$PY" tests/autobahn/suite.py server --port 0 --json "$B/autobahn_client.json" \
    --run "$B/asan_autobahn_client" "ws://127.0.0.1:{port}" rtws >"$B/ab_client_role.log" 2>&1
count "$B/ab_client_role.log" "client role (autobahn_client)"
if grep -q 'Sanitizer' "$B/ab_client_role.log"; then fail=$((fail + 1)); grep -A20 Sanitizer "$B/ab_client_role.log" | head -40; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
