#!/bin/sh
# Instruction counts of the JSON parser, a git revision's rtws.h against the
# work tree's (callgrind; see bench/json_instr.c).
#   bench/json_instr.sh [REV]     (REV defaults to HEAD)
set -eu
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
git show "$rev:rtws.h" > "$d/old.h"
cp rtws.h "$d/new.h"
printf '%-10s %16s %16s\n' header "40k envelopes" "40 x 4k array"
for v in old new; do
    ${CC:-gcc} -std=c99 -O2 -I. -DRTWS_HDR="\"$d/$v.h\"" bench/json_instr.c -o "$d/$v"
    s=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$d/$v" 2>&1 | awk '/Collected/ {print $4}')
    b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$d/$v" big 2>&1 | awk '/Collected/ {print $4}')
    name=$rev; [ $v = new ] && name="work tree"
    printf '%-10s %16s %16s\n' "$name" "$s" "$b"
done
