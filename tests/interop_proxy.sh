#!/usr/bin/env bash
# A real HTTP proxy (Debian's tinyproxy, installed with apt when missing and
# root) between build/echo_client and build/echo_server, issue 20: ws://
# through it by --proxy and by http_proxy (--proxy-env), its Basic auth (407
# without credentials, the echoes with them), its ConnectPort refusal (403),
# no_proxy skipping it; wss:// through it when BearSSL is built in. tinyproxy
# runs unprivileged (User nobody) in the foreground on a free 127.0.0.1 port
# with its own config file; every process started here is stopped by its PID.
set -u
cd "$(dirname "$0")/.."
B=build
T=$B/interop_proxy
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

. tests/deps.sh
command -v tinyproxy >/dev/null || rtws_apt tinyproxy >/dev/null 2>&1
command -v tinyproxy >/dev/null || { skipped "tinyproxy (apt-get install tinyproxy)"; finish; }
for t in echo_server echo_client; do
    [ -x "$B/$t" ] || make -s "$B/$t" >/dev/null || { bad "build $t"; finish; }
done
mkdir -p "$T"
chmod 755 "$T"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT: 0 once something listens there
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
start_proxy() { # NAME EXTRA-CONFIG-LINES: sets $pport
    pport=$(free_port)
    {
        echo "Port $pport"; echo "Listen 127.0.0.1"; echo "Timeout 30"; echo "MaxClients 20"
        echo "Allow 127.0.0.1"; echo "LogLevel Connect"
        if [ "$(id -u)" = 0 ]; then echo "User nobody"; echo "Group nogroup"; fi
        printf '%b' "$2"
    } >"$T/$1.conf"
    tinyproxy -d -c "$T/$1.conf" >"$T/$1.log" 2>&1 &
    pids+=("$!")
    wait_port "$pport" || { bad "tinyproxy $1 did not start"; cat "$T/$1.log"; finish; }
}

: >"$T/srv.log"
"$B/echo_server" --port 0 >"$T/srv.log" 2>&1 &
pids+=("$!")
for _ in $(seq 50); do sport=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$T/srv.log"); [ -n "$sport" ] && break; sleep 0.1; done
[ -n "${sport:-}" ] || { bad "echo_server did not start"; finish; }
url="ws://127.0.0.1:$sport/"

start_proxy open ""
open_port=$pport
out=$("$B/echo_client" "$url" -n 50 --proxy "http://127.0.0.1:$open_port" 2>&1)
if [ $? = 0 ] && echo "$out" | grep -q '^50/50 echoes' && grep -q "CONNECT 127.0.0.1:$sport" "$T/open.log"; then
    ok "ws:// through tinyproxy (--proxy): $out"
else bad "ws:// through tinyproxy: $out"; fi
n0=$(grep -c "Request.*CONNECT" "$T/open.log")
out=$(env -u no_proxy -u NO_PROXY http_proxy="http://127.0.0.1:$open_port" "$B/echo_client" "$url" -n 5 --proxy-env 2>&1)
rc=$?
n1=$(grep -c "Request.*CONNECT" "$T/open.log")
if [ $rc = 0 ] && echo "$out" | grep -q '^5/5 echoes' && [ "$n1" -eq $((n0 + 1)) ]; then ok "http_proxy from the environment"
else bad "http_proxy from the environment: $out ($n0 -> $n1 CONNECTs)"; fi
out=$(env no_proxy="localhost,127.0.0.1" http_proxy="http://127.0.0.1:$open_port" "$B/echo_client" "$url" -n 5 --proxy-env 2>&1)
n2=$(grep -c "Request.*CONNECT" "$T/open.log")
if echo "$out" | grep -q '^5/5 echoes' && [ "$n2" -eq "$n1" ]; then ok "no_proxy goes direct"
else bad "no_proxy: $out ($n1 -> $n2 CONNECTs)"; fi

start_proxy auth "BasicAuth rtws s3cret\n"
out=$("$B/echo_client" "$url" -n 5 --proxy "http://127.0.0.1:$pport" 2>&1)
if [ $? != 0 ] && echo "$out" | grep -q 'status 407'; then ok "no credentials: 407"
else bad "no credentials: $out"; fi
out=$("$B/echo_client" "$url" -n 5 --proxy "http://rtws:s3cret@127.0.0.1:$pport" 2>&1)
if [ $? = 0 ] && echo "$out" | grep -q '^5/5 echoes'; then ok "Basic credentials: $out"
else bad "Basic credentials: $out"; fi

start_proxy ports "ConnectPort 1\n"
out=$("$B/echo_client" "$url" -n 5 --proxy "http://127.0.0.1:$pport" 2>&1)
if [ $? != 0 ] && echo "$out" | grep -q 'status 403'; then ok "a port tinyproxy refuses: 403"
else bad "ConnectPort refusal: $out"; fi

if [ "$(tests/tls_deps.sh "${CC:-cc}")" = yes ] && command -v openssl >/dev/null; then
    ok_tls=1
    for t in tls_echo_server tls_echo_client; do
        [ -x "$B/$t" ] || make -s "$B/$t" >/dev/null || { bad "build $t"; ok_tls=0; }
    done
    tests/tls_certs.sh "$B/tls" >/dev/null 2>&1 || { bad "test certificates"; ok_tls=0; }
    if [ "$ok_tls" = 1 ]; then
        "$B/tls_echo_server" --port 0 --tls-cert "$B/tls/srv_rsa.pem" --tls-key "$B/tls/rsa.key" >"$T/tls.log" 2>&1 &
        pids+=("$!")
        for _ in $(seq 50); do tport=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$T/tls.log"); [ -n "$tport" ] && break; sleep 0.1; done
        out=$("$B/tls_echo_client" "wss://127.0.0.1:${tport:-0}/" -n 20 --ca "$B/tls/ca.pem" --proxy "http://127.0.0.1:$open_port" 2>&1)
        if [ $? = 0 ] && echo "$out" | grep -q '^20/20 echoes' && grep -q "CONNECT 127.0.0.1:${tport:-0}" "$T/open.log"; then
            ok "wss:// through tinyproxy: $out"
        else bad "wss:// through tinyproxy: $out"; cat "$T/tls.log"; fi
    fi
else
    skipped "wss:// through tinyproxy (BearSSL)"
fi
finish
