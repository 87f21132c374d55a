#!/usr/bin/env bash
# tests/e2e_post.c under ThreadSanitizer: producer threads posting to a
# context's connections (rtws_ctx_post*) while its loop runs. `make test`
# builds build/tsan_e2e_post (-fsanitize=thread); this runs it at full size
# (4 producers x 100,000 messages to 100 connections, about 5 s here) and
# fails on any TSan report, a failed check, or a run over 300 s.
# usage: tests/interop_tsan.sh [messages per producer]
set -u
cd "$(dirname "$0")/.."
bin=build/tsan_e2e_post
if [ ! -x "$bin" ] || [ tests/e2e_post.c -nt "$bin" ] || [ rtws.h -nt "$bin" ]; then
    make --no-print-directory "$bin" > build/tsan_e2e_post.log 2>&1 ||
        { tail -n 20 build/tsan_e2e_post.log; echo "tsan: 0 passed, 1 failed (build)"; exit 1; }
fi
out=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" timeout 300 "$bin" "${1:-100000}" 2>&1)
rc=$?
echo "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed'
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    echo "tsan: 0 passed, 1 failed (exit $rc${line:+; $line})"
    exit 1
fi
echo "tsan: $line"
