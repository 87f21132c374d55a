#!/usr/bin/env bash
# wss:// with third parties (layer 5): Python `websockets` over `ssl` as a
# client of the rtws TLS echo server (RSA and EC keys) and as a server for the
# rtws TLS echo client; `openssl s_client` verifying the rtws server with the
# test CA; close_notify at the end of a clean close in both roles; and the
# conformance suite's sections 1, 5 and 7 through a TLS-terminating shim
# (tests/peers/tls_shim.py), the server built under ASan+UBSan.
# Certificates: tests/tls_certs.sh (build/tls). 127.0.0.1 only; every
# process started here is stopped by its PID.
set -u
cd "$(dirname "$0")/.."
B=build
T=$B/tls
pass=0; fail=0; skip=0; pids=()
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
skipped() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then bad "$* (missing and RTWS_REQUIRE_ALL=1)"
    else skip=$((skip + 1)); echo "skipped: $*"; fi
}
finish() {
    if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
    else echo "$pass passed, $fail failed"; fi
    [ "$fail" -eq 0 ]; exit
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT

if [ "$(tests/tls_deps.sh "${CC:-cc}")" != yes ]; then skipped "wss:// interop (apt-get install libbearssl-dev)"; finish; fi
for t in tls_echo_server tls_echo_client asan_tls_echo_server; do
    [ -x "$B/$t" ] || make -s "$B/$t" >/dev/null || { bad "build $t"; finish; }
done
command -v openssl >/dev/null || { skipped "openssl (for the test certificates)"; finish; }
tests/tls_certs.sh "$T" || { bad "test certificates"; finish; }

PY=/usr/bin/python3
. tests/deps.sh
ensure_py() {
    "$PY" -c 'import websockets' 2>/dev/null && return 0
    rtws_apt python3-websockets
    "$PY" -c 'import websockets' 2>/dev/null
}

start_server() { # LOG CMD...: sets $port and $spid once "listening on HOST:PORT" appears
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
stop_server() { # stops $spid; fails when it exited badly or the sanitizers spoke
    kill "$spid" 2>/dev/null; wait "$spid"; local rc=$?
    if grep -q 'Sanitizer' "$1"; then bad "$2: sanitizer report"; grep -A 20 Sanitizer "$1" | head -n 40
    elif [ "$rc" -ne 0 ] && [ "$rc" -ne 143 ]; then bad "$2: exit $rc"; tail -n 5 "$1"
    else ok "$2 exited cleanly"; fi
}
peer_result() { # NAME OUT RC: adds a peer's "N passed, M failed" to ours
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
    if [ -z "$line" ] || [ "$3" -ne 0 ]; then bad "$1 (exit $3)"; grep -v '^ok' "$2" | tail -n 20; return; fi
    p=${line%% passed*}; f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    pass=$((pass + p)); fail=$((fail + f))
    echo "$1: $line"
    [ "$f" -ne 0 ] && grep FAILED "$2"
}

# --- openssl s_client against the rtws TLS server
start_server "$B/tls_srv.log" "$B/asan_tls_echo_server" --port 0 --tls-cert "$T/srv_rsa_chain.pem" --tls-key "$T/rsa.key" || { bad "rtws TLS server"; finish; }
out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
      -CAfile "$T/ca.pem" -verify_return_error -verify_hostname localhost 2>&1)
if echo "$out" | grep -q 'Verify return code: 0 (ok)'; then ok "openssl s_client verifies the rtws server with the test CA"
else bad "openssl s_client verification"; echo "$out" | tail -n 20; fi
if echo "$out" | grep -q 'subject=CN = srv_rsa'; then ok "openssl s_client sees the server certificate (CN = srv_rsa)"
else bad "openssl s_client certificate subject"; echo "$out" | grep -E 'subject|issuer'; fi
if echo "$out" | grep -qE 'Protocol *: TLSv1.2|TLSv1.2, Cipher'; then ok "TLS 1.2 negotiated: $(echo "$out" | grep -m1 -E 'Cipher is|Cipher *:' | sed 's/^ *//')"
else bad "openssl s_client protocol"; fi
key=dGhlIHNhbXBsZSBub25jZQ==
out=$(printf 'GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n' "$key" |
      timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$T/ca.pem" -quiet 2>/dev/null | head -c 300)
if echo "$out" | grep -q 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='; then ok "upgrade through openssl s_client: 101 with RFC 6455's accept value"
else bad "upgrade through openssl s_client"; echo "$out"; fi
out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$T/rogue_ca.pem" -verify_return_error 2>&1)
if echo "$out" | grep -q 'certificate verify failed'; then ok "openssl s_client refuses it with an unknown CA"
else bad "openssl s_client with the wrong CA"; echo "$out" | tail -n 5; fi

# --- close_notify when the rtws server closes cleanly
timeout 30 "$PY" tests/peers/tls_close.py client "$port" "$T/ca.pem" >"$B/tls_cli.log" 2>&1
peer_result "tls_close.py client -> rtws TLS server" "$B/tls_cli.log" $?

# --- Python websockets over ssl as a client of the rtws TLS server (RSA, then EC)
if ensure_py; then
    timeout 120 "$PY" tests/peers/py_peer.py client "wss://localhost:$port/" --tls "$T/ca.pem" >"$B/tls_cli.log" 2>&1
    peer_result "python websockets (ssl) -> rtws TLS server, RSA" "$B/tls_cli.log" $?
fi
stop_server "$B/tls_srv.log" "rtws TLS server (RSA, ASan)"
start_server "$B/tls_srv.log" "$B/asan_tls_echo_server" --port 0 --tls-cert "$T/srv_ec.pem" --tls-key "$T/ec_pkcs8.key" || { bad "rtws TLS server (EC)"; finish; }
if ensure_py; then
    timeout 120 "$PY" tests/peers/py_peer.py client "wss://127.0.0.1:$port/" --tls "$T/ca.pem" >"$B/tls_cli.log" 2>&1
    peer_result "python websockets (ssl) -> rtws TLS server, EC" "$B/tls_cli.log" $?
fi
stop_server "$B/tls_srv.log" "rtws TLS server (EC, ASan)"

# --- close_notify when the rtws client closes cleanly
start_server "$B/tls_py.log" "$PY" tests/peers/tls_close.py server "$T/srv_rsa.pem" "$T/rsa.key" || bad "tls_close.py server"
if [ -n "$port" ]; then
    timeout 20 "$B/tls_echo_client" --ca "$T/ca.pem" -n 2 -s 100 "wss://localhost:$port/" >"$B/tls_cli.log" 2>&1 ||
        { bad "rtws TLS client -> tls_close.py server"; cat "$B/tls_cli.log"; }
    wait "$spid"; peer_result "rtws TLS client -> tls_close.py server" "$B/tls_py.log" 0
fi

# --- Python websockets over ssl as a server for the rtws TLS client
if ensure_py; then
    start_server "$B/tls_py.log" "$PY" tests/peers/py_peer.py server --tls "$T/srv_rsa.pem" "$T/rsa.key" || bad "python TLS server"
    runs=0
    for s in 0 125 126 65536 1048576 8388608; do
        for mode in "" --binary; do
            runs=$((runs + 1))
            if timeout 60 "$B/tls_echo_client" --ca "$T/ca.pem" -n 3 -s "$s" $mode "wss://localhost:$port/" >"$B/tls_cli.log" 2>&1; then
                ok "rtws TLS client -> python websockets (ssl): $s bytes ${mode:-text}"
            else bad "rtws TLS client -> python websockets (ssl): $s bytes ${mode:-text}"; cat "$B/tls_cli.log"; fi
        done
    done
    if timeout 20 "$B/tls_echo_client" --ca "$T/rogue_ca.pem" -n 1 "wss://localhost:$port/" >"$B/tls_cli.log" 2>&1; then
        bad "rtws TLS client accepted a server from an unknown CA"
    elif grep -q 'BR_ERR_X509_NOT_TRUSTED' "$B/tls_cli.log"; then ok "rtws TLS client refuses python's server with an unknown CA"
    else bad "rtws TLS client with the wrong CA"; cat "$B/tls_cli.log"; fi
    sleep 0.3
    closed=$(grep -c '^closed 1000$' "$B/tls_py.log")
    if [ "$closed" -eq "$runs" ]; then ok "python saw $runs clean closes with 1000"
    else bad "python saw $closed of $runs clean closes with 1000"; fi
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
else
    skipped "python websockets (apt-get install python3-websockets)"
fi

# --- conformance sections 1, 5, 7 over TLS: suite -> shim (plain to TLS) -> rtws TLS server
start_server "$B/tls_srv.log" "$B/asan_tls_echo_server" --port 0 --tls-cert "$T/srv_rsa.pem" --tls-key "$T/rsa.key" || { bad "rtws TLS server"; finish; }
srv_pid=$spid
start_server "$B/tls_shim.log" "$PY" tests/peers/tls_shim.py "$port" "$T/ca.pem" localhost || { bad "tls shim"; finish; }
shim_pid=$spid
timeout 600 "$PY" tests/autobahn/suite.py client "ws://127.0.0.1:$port/" --cases '1.*,5.*,7.*' \
    --json "$B/autobahn_tls.json" >"$B/ab_tls.log" 2>&1
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$B/ab_tls.log" | tail -n 1)
if [ -z "$line" ]; then bad "conformance over TLS: no result"; tail -n 30 "$B/ab_tls.log"
else
    pass=$((pass + ${line%% passed*})); fail=$((fail + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    echo "conformance sections 1, 5, 7 over TLS: $line ($(grep -E '^NON-STRICT' "$B/ab_tls.log"))"
    grep -E '^  section' "$B/ab_tls.log"; grep -E ' FAILED ' "$B/ab_tls.log" | head -n 20
fi
spid=$shim_pid; kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
spid=$srv_pid; stop_server "$B/tls_srv.log" "rtws TLS server after the conformance run (ASan)"
finish
