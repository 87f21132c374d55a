#!/usr/bin/env bash
# clients/js/rtws.js (the JavaScript client) in Node: tests/js_client_test.mjs
# against build/chat_server on a port the OS picks, through a fault proxy
# (cut links, a half-open link, a server killed and replaced mid-stream) and
# against scripted servers (replay overlap, rate_limited, close 1008). The
# WebSocket is the ws package's (Node 20 has no global one), installed with
# npm into build/npm when missing. 127.0.0.1 only, at most 90 s; the test
# stops every process it started by its PID. Then clients/js/rtws.d.ts is
# compiled against tests/js_types_check.ts with tsc (typescript from npm).
# Without node or ws it is a skip, or a failure with RTWS_REQUIRE_ALL=1.
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
missing() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then
        echo "FAILED: $* (RTWS_REQUIRE_ALL=1)"; echo "0 passed, 1 failed"; exit 1
    fi
    echo "skipped: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0
}
command -v node >/dev/null || missing "no node"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || missing "node $(node --version) is older than 18"

. tests/deps.sh
export RTWS_WS_MODULE="$PWD/$B/npm/node_modules/ws"
rtws_npm ws
node -e "require(process.env.RTWS_WS_MODULE)" 2>/dev/null || missing "no ws package for node (npm install ws)"

make -s "$B/chat_server" >/dev/null || { echo "FAILED: build chat_server"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
timeout 80 node tests/js_client_test.mjs "$B/chat_server" >"$tmp" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$tmp"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp" | tail -n 1)
p=${line%% passed*}; p=${p:-0}
f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p'); f=${f:-1}
[ "$rc" -eq 124 ] && { echo "FAILED: tests/js_client_test.mjs still running after 80 s"; f=$((f + 1)); }
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "FAILED: tests/js_client_test.mjs exit $rc"; f=1; }

# rtws.d.ts against a TypeScript user (tests/js_types_check.ts), when npm can
# fetch typescript into build/npm; else that one check is skipped
s=0
tsc="$B/npm/node_modules/.bin/tsc"
[ -x "$tsc" ] || rtws_npm typescript
if [ -x "$tsc" ]; then
    if timeout 60 "$tsc" --noEmit --strict --module nodenext --moduleResolution nodenext --target es2020 \
        tests/js_types_check.ts >"$tmp" 2>&1; then
        p=$((p + 1)); echo "ok: rtws.d.ts: tests/js_types_check.ts compiles with tsc --strict"
    else
        f=$((f + 1)); echo "FAILED: rtws.d.ts"; head -n 20 "$tmp"
    fi
else
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then f=$((f + 1)); echo "FAILED: no typescript (RTWS_REQUIRE_ALL=1)"
    else s=1; echo "skipped: rtws.d.ts check (no typescript)"; fi
fi
if [ "$s" -gt 0 ]; then echo "$p passed, $f failed, $s skipped"; else echo "$p passed, $f failed"; fi
[ "$f" -eq 0 ]
