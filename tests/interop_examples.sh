#!/usr/bin/env bash
# The examples' command lines and the sans-I/O frame loop:
#  - every examples/*.c and examples/seeds/*/*.c, built as build/NAME, prints its usage on --help to
#    stdout with exit 0 and nothing on stderr, and on an unknown option prints
#    it to stderr with exit 2;
#  - autobahn_client without arguments says what it needs and exits nonzero
#    at once instead of waiting;
#  - build/frame_loop runs against build/echo_server (port picked by the OS):
#    its messages come back and it closes cleanly;
#  - every server (NAME ending in _server) refuses a --port that is not a
#    whole number from 0 to 65535 (exit 2, why on stderr) instead of
#    listening somewhere;
#  - every examples/seeds/*/*.c is at most 250 lines (issue 13) with no line
#    over 100 columns (STYLE.md §9, .clang-format's ColumnLimit).
# 127.0.0.1 only; every process started here is stopped by its PID and runs
# under `timeout`.
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
pass=0; fail=0; spid=
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
mkdir -p "$B"
tmp=$(mktemp -d "$B/examples_test.XXXXXX")
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

names=()
for src in examples/*.c examples/seeds/*/*.c; do
    [ -f "$src" ] || continue
    n=${src#examples/}; n=${n%.c}
    if make -s "$B/$n" >"$tmp/build.log" 2>&1; then names+=("$n")
    else bad "$n does not build"; cat "$tmp/build.log"; fi
done

# (a) --help: full usage on stdout, exit 0, stderr empty; unknown option: exit 2
for n in "${names[@]}"; do
    timeout 5 "$B/$n" --help >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -eq 0 ] && grep -qi usage "$tmp/out" && [ ! -s "$tmp/err" ]; then
        ok "$n --help"
    else
        bad "$n --help: exit $rc, stdout $(wc -c <"$tmp/out") bytes, stderr: $(head -c 300 "$tmp/err")"
    fi
    timeout 5 "$B/$n" --no-such-option >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -eq 2 ] && grep -qi usage "$tmp/err" && [ ! -s "$tmp/out" ]; then
        ok "$n --no-such-option: usage on stderr, exit 2"
    else
        bad "$n --no-such-option: exit $rc, stdout: $(head -c 300 "$tmp/out")"
    fi
done

# (a2) servers: a bad --port is refused at once (exit 2, why on stderr), never
# read as 0 (a port the OS picks) or cut to 16 bits
for n in "${names[@]}"; do
    case "$n" in *_server) ;; *) continue ;; esac
    for p in abc 70000 -1 8080x ""; do
        timeout 5 "$B/$n" --port "$p" >"$tmp/out" 2>"$tmp/err"; rc=$?
        if [ "$rc" -eq 2 ] && head -1 "$tmp/err" | grep -q -- "--port" && [ ! -s "$tmp/out" ]; then
            ok "$n --port '$p': refused, exit 2"
        else
            bad "$n --port '$p': exit $rc, stdout: $(head -c 200 "$tmp/out") stderr: $(head -c 200 "$tmp/err")"
        fi
    done
done

# (a3) clients' numbers: a number that is not one, or out of range, is refused
# (exit 2, the option named on stderr), never read as its leading digits or 0
check_num() { # name, then its arguments
    local n=$1; shift
    [ -x "$B/$n" ] || { bad "$n: not built"; return; }
    timeout 5 "$B/$n" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "${*: -2:1}" "$tmp/err"; then
        ok "$n $*: refused, exit 2"
    else
        bad "$n $*: exit $rc, stderr: $(head -c 200 "$tmp/err")"
    fi
}
check_num echo_client ws://127.0.0.1:1/ -n 5x
check_num echo_client ws://127.0.0.1:1/ -n 0
check_num echo_client ws://127.0.0.1:1/ -s -1
check_num echo_client ws://127.0.0.1:1/ -s " 64"
check_num rtwscat --port 80x
check_num rtwscat --port 70000
check_num rtwscat ws://127.0.0.1:1/ --count 5x
check_num rtwscat --listen 127.0.0.1:-1
check_num rtwscat ws://127.0.0.1:1/ --timeout 5x
check_num rtwscat ws://127.0.0.1:1/ --ping 0
check_num seeds/clarity/clarity_client ws://127.0.0.1:1/ --token t --ping-ms 5x
check_num seeds/clarity/clarity_client ws://127.0.0.1:1/ --token t --backoff-ms 0
check_num seeds/phase20/phase20_client ws://127.0.0.1:1/ --heartbeat-ms -1
check_num seeds/phase20/phase20_client ws://127.0.0.1:1/ --reconnect-ms 3s

# (b) autobahn_client with no arguments: usage on stderr, nonzero exit within 5 s
if [ -x "$B/autobahn_client" ]; then
    timeout 5 "$B/autobahn_client" >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qi usage "$tmp/err"; then
        ok "autobahn_client without arguments: exit $rc, usage on stderr"
    else
        bad "autobahn_client without arguments: exit $rc (124: still waiting after 5 s), stderr: $(head -c 300 "$tmp/err")"
    fi
else
    bad "no $B/autobahn_client"
fi

# (c) frame_loop against echo_server
if [ -x "$B/frame_loop" ] && [ -x "$B/echo_server" ]; then
    timeout 60 "$B/echo_server" --host 127.0.0.1 --port 0 >"$tmp/srv.log" 2>&1 &
    spid=$!; port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/srv.log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        bad "echo_server printed no 'listening on 127.0.0.1:P' line"; cat "$tmp/srv.log"
    else
        ok "echo_server --port 0 listens on 127.0.0.1:$port"
        timeout 20 "$B/frame_loop" "ws://127.0.0.1:$port/" --frames 30 --every 5 \
            >"$tmp/fl.out" 2>"$tmp/fl.err"; rc=$?
        summary=$(tail -n 1 "$tmp/fl.out")
        sent=$(echo "$summary" | sed -nE 's/.* ([0-9]+) sent, .*/\1/p')
        echoed=$(grep -c '^echo: {"type":"pos"' "$tmp/fl.out")
        if [ "$rc" -eq 0 ]; then ok "frame_loop exits 0"
        else bad "frame_loop exit $rc"; cat "$tmp/fl.out" "$tmp/fl.err"; fi
        if [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$echoed" -eq "$sent" ]; then
            ok "frame_loop: $echoed of $sent messages echoed"
        else
            bad "frame_loop: ${sent:-?} sent, $echoed echoed"; cat "$tmp/fl.out"
        fi
        if grep -q '^closed: code 1000, clean$' "$tmp/fl.out" && echo "$summary" | grep -q 'clean close$'; then
            ok "frame_loop: clean close (1000)"
        else
            bad "frame_loop: no clean close"; cat "$tmp/fl.out"
        fi
        if [ ! -s "$tmp/fl.err" ]; then ok "frame_loop: nothing on stderr"
        else bad "frame_loop stderr: $(head -c 300 "$tmp/fl.err")"; fi
    fi
    kill "$spid" 2>/dev/null; wait "$spid"; rc=$?; spid=
    if [ "$rc" -eq 0 ]; then ok "echo_server exits 0 on SIGTERM"
    else bad "echo_server exit $rc"; cat "$tmp/srv.log"; fi
else
    bad "no $B/frame_loop or $B/echo_server"
fi

# (d) the seed programs: <= 250 lines, <= 100 columns (wc -L: display width).
seeds=0
for src in examples/seeds/*/*.c; do
    [ -f "$src" ] || continue
    seeds=$((seeds + 1))
    max=250
    lines=$(wc -l <"$src"); width=$(LC_ALL=C.UTF-8 wc -L <"$src")
    if [ "$lines" -le "$max" ] && [ "$width" -le 100 ]; then
        ok "$src: $lines lines (at most $max), widest line $width columns"
    else
        bad "$src: $lines lines (at most $max), widest line $width columns (at most 100)"
        awk 'length($0) > 100 { print FILENAME ":" FNR ": " length($0) " columns" }' "$src" | head -5
    fi
done
[ "$seeds" -gt 0 ] || bad "no examples/seeds/*/*.c found"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
