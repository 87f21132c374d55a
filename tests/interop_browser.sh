#!/usr/bin/env bash
# The chat demo in a real browser: examples/chat_server on a port the OS
# picks, headless Chromium driven over the DevTools protocol by
# tests/interop_browser.js (two pages in room "lobby", speaking through
# clients/js/rtws.js served at /rtws.js: presence, typing, a message each way,
# resume after a dropped connection, the status page), and
# screenshots in build/interop_browser.png and build/interop_browser_typing.png.
# 127.0.0.1 only, at most 60 s, every process started here stopped by its PID.
# Installs chromium with apt-get when missing and root; without a browser it
# is a skip, or a failure with RTWS_REQUIRE_ALL=1.
set -u
cd "$(dirname "$0")/.."
B=build
pids=()
tmp=$(mktemp -d)
cleanup() {
    local p c
    for p in "${pids[@]}"; do
        # the browser's helper processes go with it; stop them by PID too
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill "$c" 2>/dev/null; done
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
missing() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then
        echo "FAILED: $* (RTWS_REQUIRE_ALL=1)"; echo "0 passed, 1 failed"; exit 1
    fi
    echo "skipped: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0
}

find_chromium() {
    local c
    for c in /usr/lib/chromium/chromium chromium chromium-browser google-chrome; do
        command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }
    done
    return 1
}
CHROME=$(find_chromium)
. tests/deps.sh
if [ -z "$CHROME" ]; then
    rtws_apt chromium chromium-driver
    CHROME=$(find_chromium)
fi
[ -n "$CHROME" ] || missing "no chromium"
command -v node >/dev/null || missing "no node"

# a WebSocket for the driver: Node's own (flag on Node 20/21), else the ws package
NODE=(node)
if node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then :
elif node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
    NODE=(node --experimental-websocket)
else
    rtws_npm ws || missing "no WebSocket for node"
fi

[ -x "$B/chat_server" ] || make -s "$B/chat_server" >/dev/null || { echo "FAILED: build chat_server"; echo "0 passed, 1 failed"; exit 1; }

deadline=$((SECONDS + 60))
"$B/chat_server" --host 127.0.0.1 --port 0 >"$tmp/server.log" 2>&1 &
pids+=($!)
port=
while [ -z "$port" ] && [ $SECONDS -lt $((deadline - 50)) ]; do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/server.log")
    [ -n "$port" ] || sleep 0.1
done
[ -n "$port" ] || { echo "FAILED: chat_server did not start"; cat "$tmp/server.log"; echo "0 passed, 1 failed"; exit 1; }
grep -q "^open http://127.0.0.1:$port/ in a browser$" "$tmp/server.log" && url_line=1 || url_line=0

"$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 \
    --user-data-dir="$tmp/profile" about:blank >"$tmp/chrome.log" 2>&1 &
pids+=($!)
devtools=
while [ -z "$devtools" ] && [ $SECONDS -lt $((deadline - 40)) ]; do
    if [ -s "$tmp/profile/DevToolsActivePort" ]; then
        devtools="ws://127.0.0.1:$(sed -n 1p "$tmp/profile/DevToolsActivePort")$(sed -n 2p "$tmp/profile/DevToolsActivePort")"
    else
        sleep 0.1
    fi
done
[ -n "$devtools" ] || { echo "FAILED: chromium did not start"; tail -n 20 "$tmp/chrome.log"; echo "0 passed, 1 failed"; exit 1; }

left=$((deadline - SECONDS))
timeout "$left" "${NODE[@]}" tests/interop_browser.js "$devtools" "http://127.0.0.1:$port/" "$B/interop_browser.png" \
    >"$tmp/driver.log" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/driver.log" | grep -v ExperimentalWarning | grep -v 'node --trace-warnings'
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/driver.log" | tail -n 1)
p=${line%% passed*}; p=${p:-0}
f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p'); f=${f:-1}
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "FAILED: driver exit $rc"; f=1; }
if [ "$url_line" = 1 ]; then p=$((p + 1)); echo "ok: chat_server printed the URL to open"; else f=$((f + 1)); echo "FAILED: URL line"; fi

# graceful shutdown: SIGTERM closes with 1001 and exits 0
kill -TERM "${pids[0]}"
for _ in $(seq 30); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
if kill -0 "${pids[0]}" 2>/dev/null; then f=$((f + 1)); echo "FAILED: chat_server still running after SIGTERM"
else wait "${pids[0]}"; s=$?; if [ $s -eq 0 ]; then p=$((p + 1)); echo "ok: chat_server exits 0 on SIGTERM"; else f=$((f + 1)); echo "FAILED: chat_server exit $s"; fi; fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
