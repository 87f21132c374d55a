#!/usr/bin/env bash
# The complete programs (```c blocks that start with "/* cc ") of README.md
# and docs/GUIDE.md compile with the strict flags, and the client ones run
# against echo_server.
set -u
cd "$(dirname "$0")/.."
B=build/readme
mkdir -p "$B"
pass=0; fail=0
rm -f "$B"/block*
for doc in README.md docs/GUIDE.md; do
  awk -v dir="$B" -v tag="$(basename "$doc" .md)" '
    /^```c$/ { inb = 1; n++; buf = ""; next }
    /^```$/ && inb { inb = 0; if (buf ~ /^\/\* cc /) { f = dir "/block_" tag n ".c"; printf "%s", buf > f; close(f) } next }
    inb { buf = buf $0 "\n" }
  ' "$doc"
done
for f in "$B"/block*.c; do
    [ -e "$f" ] || { echo "no complete program found in README.md or docs/GUIDE.md"; fail=$((fail + 1)); break; }
    if cc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. "$f" -o "${f%.c}" 2>"$B/err.log"; then
        pass=$((pass + 1)); echo "ok: $(head -n 1 "$f")"
    else
        fail=$((fail + 1)); echo "FAILED to compile: $(head -n 1 "$f")"; cat "$B/err.log"
    fi
done
json=$(grep -l 'rtws_json_writer_init' "$B"/block*.c | head -n 1)
if [ -n "$json" ] && [ -x "${json%.c}" ]; then
    out=$("${json%.c}" 2>&1)
    want='{"type":"message","channel":"chat:42","data":{"text":"h\u00e9llo","n":3},"seq":18} (héllo)'
    if [ "$out" = "$want" ]; then pass=$((pass + 1)); echo "ok: docs/GUIDE.md JSON example printed the reply"
    else fail=$((fail + 1)); echo "FAILED: docs/GUIDE.md JSON example printed: $out"; fi
fi
client=$(grep -l 'rtws_ctx_connect' "$B"/block*.c | head -n 1)
if [ -n "$client" ] && [ -x "${client%.c}" ]; then
    : >"$B/srv.log"
    build/echo_server --port 0 >"$B/srv.log" 2>&1 &
    spid=$!
    for _ in $(seq 50); do port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$B/srv.log"); [ -n "$port" ] && break; sleep 0.1; done
    out=$(timeout 10 "${client%.c}" "ws://127.0.0.1:$port/" 2>&1)
    if [ "$out" = "got hello" ]; then pass=$((pass + 1)); echo "ok: README client ran: $out"
    else fail=$((fail + 1)); echo "FAILED: README client printed: $out"; fi
    live=$(grep -l 'rtws_client_new' "$B"/block*.c | head -n 1)
    if [ -n "$live" ] && [ -x "${live%.c}" ]; then
        out=$(timeout 20 "${live%.c}" "ws://127.0.0.1:$port/" 3 2>&1)
        if echo "$out" | grep -q '^green: open' && [ "$(echo "$out" | grep -c '^got reading')" -ge 2 ]; then
            pass=$((pass + 1)); echo "ok: README reconnecting client ran"
        else fail=$((fail + 1)); echo "FAILED: README reconnecting client printed: $out"; fi
    fi
    kill "$spid"; wait "$spid" 2>/dev/null
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
