#!/usr/bin/env bash
# .text of rtws itself in the builds the switches make (issue 12 goals:
# sans-I/O core <= 12 KB, full build without TLS <= 40 KB).
#   bash bench/size/switches.sh [build-dir]
# Each build compiles bench/size/size_lib.c (the implementation alone, every
# public function extern, so nothing is dropped) with
#   gcc -std=c99 -Os -ffunction-sections -fdata-sections -c
# and adds up the .text* sections of the object (size -A); the rodata column
# adds up .rodata* (strings such as rtws_err_str's, tables such as SHA-256's
# constants), which the .text figure leaves out, as it leaves out .eh_frame.
# BearSSL's own code is a library linked later: the TLS row counts rtws's
# code only.
set -eu
B=${1:-build}
mkdir -p "$B"
CFLAGS="-std=c99 -Os -ffunction-sections -fdata-sections"
text_of() { size -A "$1" | awk '$1 ~ /^\.text/ {t += $2} END {print t + 0}'; }
rodata_of() { size -A "$1" | awk '$1 ~ /^\.rodata/ {t += $2} END {print t + 0}'; }
row() { # name, flags...
    local name=$1 o
    shift
    o=$B/size_sw_$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').o
    # shellcheck disable=SC2086
    gcc $CFLAGS "$@" -I. -c bench/size/size_lib.c -o "$o"
    local t
    t=$(text_of "$o")
    printf '%-34s %7d B %6.1f KB %6d B   %s\n' "$name" "$t" "$(awk "BEGIN {print $t / 1024}")" \
        "$(rodata_of "$o")" "${*:-(none)}"
}
echo "gcc $(gcc -dumpfullversion), $CFLAGS -c bench/size/size_lib.c; .text* of the object (size -A)"
printf '%-34s %9s %9s %8s   %s\n' build text "" rodata switches
row "sans-I/O core (layers 0-3)" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS
row "  client only" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_SERVER
row "  server only" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_CLIENT
row "  + no system random" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_SYSTEM_RANDOM
row "  core without deflate" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_DEFLATE
row "  smallest server (no deflate)" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_DEFLATE -DRTWS_NO_CLIENT
row "  smallest client (no deflate)" -DRTWS_NO_HOST -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_DEFLATE -DRTWS_NO_SERVER
row "sans-I/O core + json (0-3, 6)" -DRTWS_NO_HOST -DRTWS_NO_REALTIME -DRTWS_NO_REDIS
row "sans-I/O core + resp (0-3, 6a)" -DRTWS_NO_HOST -DRTWS_NO_JSON
row "sans-I/O, all (0-3, 6, 6a, 7)" -DRTWS_NO_HOST
row "full without TLS"
row "  full without deflate" -DRTWS_NO_DEFLATE
row "  without redis (0-5, 6, 7)" -DRTWS_NO_REDIS
row "  without realtime (0-4, 6)" -DRTWS_NO_REALTIME
row "  without json, realtime (0-4)" -DRTWS_NO_JSON
row "client only" -DRTWS_NO_SERVER
row "  without json, realtime" -DRTWS_NO_SERVER -DRTWS_NO_JSON
row "server only" -DRTWS_NO_CLIENT
row "  without json, realtime" -DRTWS_NO_CLIENT -DRTWS_NO_JSON
row "smallest socket server" -DRTWS_NO_CLIENT -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_DEFLATE -DRTWS_NO_THREADS
row "smallest socket client" -DRTWS_NO_SERVER -DRTWS_NO_JSON -DRTWS_NO_REDIS -DRTWS_NO_DEFLATE -DRTWS_NO_THREADS
if echo '#include <bearssl.h>' | gcc -E -x c - > /dev/null 2>&1; then
    row "full with BearSSL (rtws code)" -DRTWS_USE_BEARSSL
else
    echo "full with BearSSL: skipped (no <bearssl.h>)"
fi
# the DEFLATE codec (layer 1, issue 18 goal <= 12 KB): what RTWS_NO_DEFLATE takes out
d_core=$(($(text_of "$B/size_sw_sans_I_O_core__layers_0_3_.o") - $(text_of "$B/size_sw___core_without_deflate.o")))
d_full=$(($(text_of "$B/size_sw_full_without_TLS.o") - $(text_of "$B/size_sw___full_without_deflate.o")))
printf 'deflate codec (delta of RTWS_NO_DEFLATE): %d B in the core, %d B in the full build\n' "$d_core" "$d_full"
if [ "${SIZE_DETAIL:-1}" = 1 ]; then
    echo
    echo "largest functions of the sans-I/O core (nm --size-sort, bytes):"
    nm --size-sort -S "$B/size_sw_sans_I_O_core__layers_0_3_.o" | awk '$3 ~ /[tT]/' |
        tail -n 25 | tac | while read -r _ sz _ name; do printf '  %6d  %s\n' "$((16#$sz))" "$name"; done
fi
