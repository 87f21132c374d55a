#!/usr/bin/env bash
# macOS and the BSDs, simulated on Linux: the end-to-end tests that reach the
# code such a system runs, built with -U__linux__ -DRTWS__SIMULATE_BSD (see
# rtws.h: poll(2) and not epoll, a pipe and not an eventfd to wake the loop,
# /dev/urandom and not getrandom(), sends without MSG_NOSIGNAL and
# SO_NOSIGPIPE asked for on every socket), ASan+UBSan, into build/bsdsim/, and
# run from build/bsdsim/run where build/ is build/bsdsim. Linux has no
# SO_NOSIGPIPE, so each program links tests/bsdsim_sigpipe.c, which ignores
# SIGPIPE (and counts it) as SO_NOSIGPIPE would have kept it away.
#   bash tests/interop_bsdsim.sh             the chosen tests (below)
#   bash tests/interop_bsdsim.sh e2e_X ...   others
# The chosen ones, and why (interop_poll.sh runs every e2e test on poll(2)):
#   e2e_post           the wake-up pipe, in the three loop styles
#   e2e_host           rtws_ctx_run_once and the pollfd export, peers that
#                      vanish mid-frame (sends that would raise SIGPIPE)
#   e2e_resolver       the resolver's UDP and TCP sockets, Happy Eyeballs
#   e2e_client_restart reconnects, refused connects
#   e2e_slow_sender    a full socket buffer against build/echo_server
#   e2e_transport      the transport table over plain TCP
# Then: no program imports epoll_*, eventfd or getrandom (nm -D), e2e_host
# excepted for epoll (its own loop uses it); with strace, e2e_client_restart's
# sends carry no MSG_NOSIGNAL and its sockets are asked for SO_NOSIGPIPE.
set -u
cd "$(dirname "$0")/.."
P=build/bsdsim
JOBS=${RTWS_BSDSIM_JOBS:-$(nproc 2>/dev/null || echo 2)}
SIM="-U__linux__ -U__linux -Ulinux -DRTWS__SIMULATE_BSD"
start=$(date +%s)
if [ $# -gt 0 ]; then names=("$@")
else names=(e2e_post e2e_host e2e_resolver e2e_client_restart e2e_slow_sender e2e_transport); fi
bins=(); for n in "${names[@]}"; do bins+=("$P/$n"); done
servers="$P/echo_server"
mkdir -p "$P"
fail=0
if ! cc -std=c99 -O1 -Wall -Wextra -Werror -c tests/bsdsim_sigpipe.c -o "$P/sigpipe.o" 2>"$P/build.log"; then
    echo "FAILED: tests/bsdsim_sigpipe.c"; cat "$P/build.log"; exit 1
fi
if ! make -k --no-print-directory -s -j"$JOBS" B="$P" \
    TEST_CFLAGS="-std=c99 -g -O0 \$(CWARN) \$(SAN) -I. $SIM $PWD/$P/sigpipe.o" \
    EX_CFLAGS="-std=c99 -O2 -g \$(CWARN) -I. $SIM" \
    "${bins[@]}" $servers >"$P/build.log" 2>&1; then
    echo "FAILED: the simulated build:"; grep -v 'getaddrinfo' "$P/build.log" | tail -n 30
fi
built=$(date +%s)
for b in "${bins[@]}" $servers; do [ -x "$b" ] || { fail=$((fail + 1)); echo "FAILED: $b not built"; }; done
# the simulation took
if command -v nm >/dev/null 2>&1; then
    for b in "${bins[@]}" $servers; do
        [ -x "$b" ] || continue
        pat='eventfd|getrandom|epoll_'; [ "${b##*/}" = e2e_host ] && pat='eventfd|getrandom'
        if nm -D "$b" 2>/dev/null | grep -qE "$pat"; then
            fail=$((fail + 1)); echo "FAILED: $b imports $(nm -D "$b" | grep -oE "$pat[a-z_0-9]*" | sort -u | tr '\n' ' ')"
        fi
    done
fi
mkdir -p "$P/run"
ln -sfn .. "$P/run/build"
ln -sfn ../../../tests "$P/run/tests"
# and at the system calls, when strace is there: sends carry no MSG_NOSIGNAL,
# every socket is asked for SO_NOSIGPIPE (macOS's 0x1022; Linux: ENOPROTOOPT)
if command -v strace >/dev/null 2>&1 && [ -x "$P/e2e_client_restart" ]; then
    (cd "$P/run" && timeout 120 strace -f -o "$PWD/../strace.log" -e trace=sendmsg,sendto,setsockopt \
        ../e2e_client_restart >/dev/null 2>&1)
    nosig=$(grep -cE '^[0-9]+ +send(msg|to)\(.*MSG_NOSIGNAL' "$P/strace.log")
    sends=$(grep -cE '^[0-9]+ +send(msg|to)\(' "$P/strace.log")
    nopipe=$(grep -c 'SOL_SOCKET, 0x1022' "$P/strace.log")
    echo "bsdsim: strace e2e_client_restart: $sends sends, $nosig with MSG_NOSIGNAL; $nopipe SO_NOSIGPIPE asked"
    if [ "$sends" -eq 0 ] || [ "$nosig" -ne 0 ] || [ "$nopipe" -eq 0 ]; then
        fail=$((fail + 1)); echo "FAILED: the sends of the simulated build (see $P/strace.log)"
    fi
fi
abs=(); for b in "${bins[@]}"; do [ -x "$b" ] && abs+=("$PWD/$b"); done
out=$(cd "$P/run" && TEST_JOBS=$JOBS bash "$OLDPWD/tests/run.sh" "${abs[@]}")
echo "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed' | sed 's/^/bsdsim: /'
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
p=${line%% passed*}; f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
f=$((${f:-1} + fail))
echo "bsdsim: build $((built - start))s, tests $(($(date +%s) - built))s (${#names[@]} e2e tests, $JOBS jobs)"
if [ -n "$s" ] && [ "$s" -gt 0 ]; then echo "${p:-0} passed, $f failed, $s skipped"; else echo "${p:-0} passed, $f failed"; fi
[ "$f" -eq 0 ]
