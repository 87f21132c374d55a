#!/usr/bin/env bash
# Runs every test program given on the command line, adds up their
# "N passed, M failed" lines, and ends with the total. A program that exits
# non-zero, or prints no such line, counts as one failure.
set -u
total_p=0; total_f=0; total_s=0
for t in "$@"; do
    name=$(basename "$t")
    out=$(mktemp)
    if [ -x "$t" ]; then "$t" >"$out" 2>&1; rc=$?
    else bash "$t" >"$out" 2>&1; rc=$?; fi
    line=$(grep -E '^([A-Za-z_]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "== $name: no result line (exit $rc)"; tail -n 30 "$out"; total_f=$((total_f + 1))
    else
        p=$(echo "$line" | sed -E 's/^([A-Za-z_]+: )?([0-9]+) passed.*/\2/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p'); s=${s:-0}
        total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then total_f=$((total_f + 1)); fi
        if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
            echo "== $name: FAILED ($line, exit $rc)"; grep -v -E '^[0-9]+ passed' "$out" | tail -n 40
        else
            echo "== $name: $line"
        fi
    fi
    rm -f "$out"
done
if [ "$total_s" -gt 0 ]; then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
[ "$total_f" -eq 0 ]
