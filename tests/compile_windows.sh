#!/usr/bin/env bash
# The Windows builds of `make compile-check`: rtws.h with the implementation,
# cross-compiled by mingw-w64 for x86_64 as C99 (gcc) and C++11 (g++) with
# the project's warnings (-Werror) and -Wvla (MSVC has no VLAs), with the
# switches that change the Windows code (RTWS_NO_HOST, RTWS_NO_THREADS,
# RTWS_NO_CLIENT, RTWS_NO_SERVER, RTWS_STATIC, RTWS_NO_SYSTEM_RANDOM), linked
# against ws2_32. When mingw-w64 is missing it says skipped (it installs
# nothing: tests/ports_deps.sh does, for tests/interop_windows.sh);
# RTWS_REQUIRE_ALL=1 makes that a failure.
# usage: tests/compile_windows.sh [build-dir]; writes "passed failed" to
# build-dir/compile_windows.counts
set -u
cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
WARN=${WARN:--Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Werror}
CWARN=${CWARN:-$WARN -Wstrict-prototypes -Wmissing-prototypes}
CC=x86_64-w64-mingw32-gcc CXX=x86_64-w64-mingw32-g++
mkdir -p "$B/win"
ERR=$B/win/compile.err
p=0 f=0
# What MSVC cannot compile, found by reading the header (no MSVC runs here):
# every __builtin_* and __attribute__ must sit under an #if naming __GNUC__
# or __clang__ (with a plain-C #else), and the __atomic builtins only in the
# non-MSVC half of the posting atomics (MSVC has the Interlocked* half).
# VLAs are refused by -Wvla in the builds below.
bad=$(awk '
    function gnu(   k) { # some enclosing #if/#elif branch asks for gcc or clang
        for (k = 1; k <= n; k++)
            if (st[k] !~ /^ELSE/ && st[k] ~ /[^!]defined\((__GNUC__|__clang__)\)/) return 1
        return 0
    }
    /^#[ \t]*(if|elif)/ {
        c = $0; while (c ~ /\\$/ && (getline nxt) > 0) c = c nxt
        if ($0 ~ /^#[ \t]*if/ && c !~ /^#[ \t]*elif/) st[++n] = c; else st[n] = c
    }
    /^#[ \t]*else/ { st[n] = "ELSE " st[n] }
    /^#[ \t]*endif/ { n-- }
    /^#if defined\(_MSC_VER\) && !defined\(__clang__\)/ { half = "msvc" }
    half == "msvc" && /^#else/ { half = "gcc" }
    /^#endif \/\* _MSC_VER \*\// { half = "" }
    /__builtin_|__attribute__/ && !gnu() { print NR ": " $0 }
    /__atomic_/ && half != "gcc" { print NR ": " $0 }
' rtws.h)
if [ -z "$bad" ]; then p=$((p + 1)); echo "ok: MSVC review: GCC builtins, attributes and __atomic all have an MSVC alternative"
else f=$((f + 1)); echo "compile FAILED: MSVC review: unguarded GCC-only code"; echo "$bad" | head -n 20; fi

if ! command -v $CC >/dev/null 2>&1 || ! command -v $CXX >/dev/null 2>&1; then
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then
        echo "compile FAILED: mingw-w64 missing (bash tests/ports_deps.sh installs it) and RTWS_REQUIRE_ALL=1"; f=1
    else echo "skipped: Windows compile checks (mingw-w64 missing; bash tests/ports_deps.sh installs it)"; fi
    echo "$p $f" > "$B/compile_windows.counts"
    exit 0
fi
try() { # try NAME CMD...
    local name=$1; shift
    if "$@" > "$ERR" 2>&1; then p=$((p + 1)); echo "ok: $name"
    else f=$((f + 1)); echo "compile FAILED: $name"; sed 's/^/    /' "$ERR" | head -n 20; fi
}
for D in "" " -DRTWS_NO_THREADS" " -DRTWS_NO_HOST" " -DRTWS_NO_CLIENT" " -DRTWS_NO_SERVER" \
         " -DRTWS_NO_HOST -DRTWS_NO_SYSTEM_RANDOM" " -DRTWS_STATIC -DCOMPILE_ONE"; do
    n=${D// -D/_}
    # shellcheck disable=SC2086 # flag lists
    src="tests/compile.c tests/compile2.c" # two units: declarations only in the second
    case $D in *COMPILE_ONE*) src=tests/compile.c ;; ?*) src=tests/compile_switches.c ;; esac
    # shellcheck disable=SC2086
    try "mingw gcc -std=c99$D" $CC -std=c99 $CWARN -Wvla $D -I. $src \
        -o "$B/win/compile$n.exe" -lws2_32
    # shellcheck disable=SC2086
    try "mingw g++ -std=c++11$D" $CXX -std=c++11 $WARN -Wvla $D -I. -fsyntax-only -x c++ ${src%% *}
done
echo "$p $f" > "$B/compile_windows.counts"
echo "windows: $p passed, $f failed"
[ "$f" -eq 0 ]
