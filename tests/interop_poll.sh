#!/usr/bin/env bash
# The poll(2) path on Linux (what macOS, the BSDs and any system without
# epoll use) through the whole end-to-end suite: every tests/e2e_*.c and the
# servers they start (echo_server, chat_server and their ASan builds) built
# with -DRTWS_NO_EPOLL, ASan+UBSan as usual, into build/poll/, and run from
# build/poll/run, where build/ points at build/poll, so "build/echo_server"
# in a test is the poll build. Ends with the sum of their result lines.
#   bash tests/interop_poll.sh                 every e2e test
#   bash tests/interop_poll.sh e2e_host ...    some of them
# Builds run RTWS_POLL_JOBS at a time (default: the cores), then the tests
# run RTWS_POLL_JOBS at a time through tests/run.sh. The ASan builds use
# RTWS_POLL_OPT (default -O0: half the compile time of make test's -O1, and
# compiling is most of this script's time; RTWS_POLL_OPT=-O1 builds them as
# make test does). Only what changed is rebuilt (make's own rules). No e2e test is left
# out: e2e_host drives rtws from its own epoll loop, which needs no epoll in
# rtws; e2e_redis skips without redis-server as it does natively.
set -u
cd "$(dirname "$0")/.."
P=build/poll
JOBS=${RTWS_POLL_JOBS:-$(nproc 2>/dev/null || echo 2)}
OPT=${RTWS_POLL_OPT:--O0}
start=$(date +%s)
if [ $# -gt 0 ]; then names=("$@")
else names=(); for f in tests/e2e_*.c; do n=${f#tests/}; names+=("${n%.c}"); done; fi
bins=(); for n in "${names[@]}"; do bins+=("$P/$n"); done
servers="$P/echo_server $P/chat_server $P/asan_echo_server $P/asan_chat_server"

# the Makefile's own rules with B=build/poll and the switch added
mkdir -p "$P"
# other flags than last time: build everything again
if [ "$(cat "$P/flags" 2>/dev/null)" != "$OPT" ]; then
    rm -f "$P"/e2e_* "$P"/asan_* "$P"/echo_server "$P"/chat_server; echo "$OPT" >"$P/flags"
fi
if ! make -k --no-print-directory -s -j"$JOBS" B="$P" \
    TEST_CFLAGS="-std=c99 -g $OPT \$(CWARN) \$(SAN) -I. -DRTWS_NO_EPOLL" \
    EX_CFLAGS='-std=c99 -O2 -g $(CWARN) -I. -DRTWS_NO_EPOLL' \
    "${bins[@]}" $servers >"$P/build.log" 2>&1; then
    echo "FAILED: the RTWS_NO_EPOLL build:"; grep -v 'getaddrinfo' "$P/build.log" | tail -n 30
fi
built=$(date +%s)
# a binary that did not build counts as one failure
missing=0
for b in "${bins[@]}"; do [ -x "$b" ] || { missing=$((missing + 1)); echo "FAILED: $b not built"; }; done

# the switch took: no program calls epoll (but e2e_host, whose own loop does)
epoll=0
if command -v nm >/dev/null 2>&1; then
    for b in "${bins[@]}" $servers; do
        [ -x "$b" ] && [ "${b##*/}" != e2e_host ] || continue
        if nm -D "$b" 2>/dev/null | grep -q 'epoll_wait'; then
            epoll=$((epoll + 1)); echo "FAILED: $b calls epoll_wait (built without RTWS_NO_EPOLL?)"
        fi
    done
fi
mkdir -p "$P/run"
ln -sfn .. "$P/run/build"
ln -sfn ../../../tests "$P/run/tests"
abs=(); for b in "${bins[@]}"; do [ -x "$b" ] && abs+=("$PWD/$b"); done
out=$(cd "$P/run" && TEST_JOBS=$JOBS bash "$OLDPWD/tests/run.sh" "${abs[@]}")
echo "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed' | sed 's/^/poll: /'
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
p=${line%% passed*}; f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
f=$((${f:-1} + missing + epoll))
echo "poll: build $((built - start))s, tests $(($(date +%s) - built))s (${#names[@]} e2e tests, $JOBS jobs)"
if [ -n "$s" ] && [ "$s" -gt 0 ]; then echo "${p:-0} passed, $f failed, $s skipped"; else echo "${p:-0} passed, $f failed"; fi
[ "$f" -eq 0 ]
