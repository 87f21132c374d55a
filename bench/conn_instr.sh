#!/bin/sh
# Instructions per message a server rtws_conn spends receiving masked
# messages, a git revision's rtws.h against the work tree's (callgrind's
# total Ir of bench/conn_instr.c's feed loop, divided by the messages).
#   bench/conn_instr.sh [REV]     (REV defaults to HEAD)
set -eu
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
git show "$rev:rtws.h" > "$d/old.h"
cp rtws.h "$d/new.h"
printf '%-10s %10s %10s %10s %10s %8s\n' header "bin 16" "text 16" "bin 64k" "text 64k" sizeof
for v in old new; do
    ${CC:-gcc} -std=c99 -O2 -I. -DRTWS_HDR="\"$d/$v.h\"" bench/conn_instr.c -o "$d/$v"
    line=""
    for t in "16 bin" "16 text" "65536 bin" "65536 text"; do
        set -- $t
        ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=feed "$d/$v" "$1" "$2" 2>&1 | awk '/Collected/ {print $4}')
        n=$(( 4 * (1048576 / $1) ))
        line="$line $(awk -v a="$ir" -v b="$n" 'BEGIN { printf "%10.1f", a / b }')"
    done
    sz=$("$d/$v" 16 bin | awk '{print $NF}')
    name=$rev; [ $v = new ] && name="work tree"
    printf '%-10s%s %8s\n' "$name" "$line" "$sz"
done
