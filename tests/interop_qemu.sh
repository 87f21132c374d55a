#!/usr/bin/env bash
# The sans-I/O suites on other CPUs: cross-compiled (static, -O1, the
# project's warning flags with -Werror, no sanitizers: ASan does not run
# under qemu-user) for i686 (32-bit: 32-bit size_t, long and pointers),
# aarch64 and s390x (big-endian), and run under qemu-user (qemu-aarch64,
# qemu-s390x; i686 binaries run natively when this x86-64 kernel runs 32-bit
# code, else, or with RTWS_QEMU_I386=1, under qemu-i386). Every result line
# says its arch; the last line is the sum. Compilers and qemu-user come
# from tests/qemu_deps.sh (root, Debian packages); an arch whose tools are
# missing counts as one skip (RTWS_REQUIRE_ALL=1 makes it a failure).
#   bash tests/interop_qemu.sh                   all three arches
#   RTWS_QEMU_ARCHS="s390x" bash tests/interop_qemu.sh
#   RTWS_QEMU_TESTS="unit_frame unit_crypto" bash tests/interop_qemu.sh
# Builds and runs go RTWS_QEMU_JOBS at a time (default: the cores), arches
# mixed, so one arch's compiles overlap another's emulated runs. A binary is
# built again only when its test, rtws.h or tests/t.h is newer.
#
# Left out: unit tests of the HTTP router, JWT, proxy, budgets and other
# layer 7 parts (compile time: each test is another build of the whole
# header per arch; the layers whose bytes depend on the CPU -- frame, UTF-8,
# SHA-1/base64, JSON numbers, deflate, DNS, URL -- are all here) and every
# e2e_* test (sockets and timing under emulation; the poll path runs them
# natively, tests/interop_poll.sh). unit_url opens loopback sockets; qemu-user
# passes those system calls through, so it is included.
set -u
cd "$(dirname "$0")/.."
B=build/qemu
ARCHS=${RTWS_QEMU_ARCHS:-i686 aarch64 s390x}
JOBS=${RTWS_QEMU_JOBS:-$(nproc 2>/dev/null || echo 2)}
TESTS=${RTWS_QEMU_TESTS:-"unit_frame unit_handshake unit_json unit_conn unit_conn_ping unit_deflate
unit_resp unit_url unit_dns unit_base unit_crypto unit_budget conformance_frame
conformance_handshake conformance_json conformance_conn"}
CFLAGS="-std=c99 -O1 -g0 -static -Wall -Wextra -Wpedantic -Wshadow -Wconversion
-Wsign-conversion -Wcast-qual -Werror -Wstrict-prototypes -Wmissing-prototypes -I."
TIMEOUT=${RTWS_QEMU_TIMEOUT:-300}
pass=0; fail=0; skip=0
. tests/qemu_deps.sh
mkdir -p "$B"
start=$(date +%s)

# one job: build one test for one arch (again only when rtws.h, tests/t.h or
# the test is newer than the binary), then run it; writes DIR/T.out, .res
job() { # arch cc runner (- for natively) test
    local arch=$1 cc=$2 run=$3 t=$4 d=$B/$1 src bin rc s0 s1 s2 extra
    src=tests/$t.c; bin=$d/$t
    s0=$(date +%s)
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ rtws.h -nt "$bin" ] || [ tests/t.h -nt "$bin" ]; then
        rm -f "$bin"
        # the linker's warning about getaddrinfo in a static binary is noise here
        # i686: 64-bit file offsets for the tests' readdir (conformance_json):
        # under qemu-i386 the host's 64-bit directory offsets overflow a
        # 32-bit one (EOVERFLOW). rtws.h itself uses no off_t; time_t stays
        # the 32-bit default.
        extra=; [ "$arch" = i686 ] && extra=-D_FILE_OFFSET_BITS=64
        if ! $cc $CFLAGS $extra "$src" -o "$bin" -lm >"$d/$t.build" 2>&1; then
            echo "build 0 0" >"$d/$t.res"; return
        fi
    fi
    s1=$(date +%s)
    if [ "$run" = - ]; then timeout "$TIMEOUT" "$bin" >"$d/$t.out" 2>&1; rc=$?
    else timeout "$TIMEOUT" "$run" "$bin" >"$d/$t.out" 2>&1; rc=$?; fi
    s2=$(date +%s)
    echo "$rc $((s1 - s0)) $((s2 - s1))" >"$d/$t.res"
}
export -f job
export B CFLAGS TIMEOUT

list=()
for arch in $ARCHS; do
    if ! rtws_qemu_deps "$arch"; then
        if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then
            fail=$((fail + 1)); echo "FAILED: $arch: cross compiler or qemu-user missing (RTWS_REQUIRE_ALL=1)"
        else
            skip=$((skip + 1)); echo "skipped: $arch: cross compiler or qemu-user missing (tests/qemu_deps.sh, as root)"
        fi
        continue
    fi
    mkdir -p "$B/$arch"
    run=$rtws_qemu_run
    if [ "$arch" = i686 ] && [ "${RTWS_QEMU_I386:-0}" != 1 ]; then
        # does this kernel run 32-bit x86 itself? a static one-liner says
        printf 'int main(void) { return 0; }\n' >"$B/$arch/probe.c"
        if $rtws_qemu_cc -static "$B/$arch/probe.c" -o "$B/$arch/probe" 2>/dev/null &&
            "$B/$arch/probe" 2>/dev/null; then
            run=-
        fi
    fi
    echo "$arch: $rtws_qemu_cc ($($rtws_qemu_cc -dumpversion)), run $([ "$run" = - ] && echo 'natively (this kernel runs 32-bit x86)' || echo "$run")"
    rm -f "$B/$arch"/*.res
    for t in $TESTS; do
        [ -f "tests/$t.c" ] || continue
        list+=("$arch $rtws_qemu_cc $run $t")
    done
done

# the s390x runs are the slowest: started first
if [ ${#list[@]} -gt 0 ]; then
    printf '%s\n' "${list[@]}" | sort -s -k1,1r | xargs -P "$JOBS" -I{} bash -c 'job {}'
fi

for arch in $ARCHS; do
    [ -d "$B/$arch" ] && ls "$B/$arch"/*.res >/dev/null 2>&1 || continue
    ap=0; af=0; bt=0; rt=0
    for t in $TESTS; do
        [ -f "$B/$arch/$t.res" ] || continue
        read -r rc b r <"$B/$arch/$t.res"
        bt=$((bt + b)); rt=$((rt + r))
        if [ "$rc" = build ]; then
            af=$((af + 1)); echo "$arch: FAILED: $t does not build:"; head -n 20 "$B/$arch/$t.build"
            continue
        fi
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$B/$arch/$t.out" | tail -n 1)
        if [ -z "$line" ]; then
            af=$((af + 1)); echo "$arch: FAILED: $t: no result line (exit $rc)"; tail -n 20 "$B/$arch/$t.out"
            continue
        fi
        p=${line%% passed*}; f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        ap=$((ap + p)); af=$((af + f))
        if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
            [ "$f" -eq 0 ] && af=$((af + 1))
            echo "$arch: FAILED: $t: $line (exit $rc)"
            grep -E 'FAIL' "$B/$arch/$t.out" | head -n 20 | sed "s/^/$arch: /"
        else
            echo "$arch: $t: $line (${r}s)"
        fi
    done
    echo "$arch: $ap passed, $af failed (build ${bt}s, run ${rt}s)"
    pass=$((pass + ap)); fail=$((fail + af))
done
echo "qemu: wall time $(($(date +%s) - start))s with $JOBS jobs"
if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"; else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]
