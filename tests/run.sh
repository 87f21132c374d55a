#!/usr/bin/env bash
# Runs every test program given on the command line, adds up their
# "N passed, M failed" lines, and ends with the total. A program that exits
# non-zero, or prints no such line, counts as one failure.
# TEST_JOBS programs run at once (default: the number of cores); each
# result line says how long its program took. The slowest programs are
# started first when build/test_times (written by the previous run) knows
# them, so the run ends with short programs instead of waiting on a long one.
# Every failing program is named again, with its failing lines, just above
# the total, so the last lines of a long log say what failed.
set -u
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
times=build/test_times

# the order: known durations, longest first; unknown ones first of all
order=()
if [ -f "$times" ]; then
    while read -r t; do order+=("$t"); done < <(
        for t in "$@"; do
            s=$(awk -v n="$(basename "$t")" '$1 == n {print $2}' "$times")
            echo "${s:-999999} $t"
        done | sort -s -k1,1nr | cut -d' ' -f2-)
else
    order=("$@")
fi

run_one() { # test, index
    local t=$1 i=$2 start rc
    start=$(date +%s.%N)
    if [ -x "$t" ]; then "$t" >"$dir/$i.out" 2>&1; rc=$?
    else bash "$t" >"$dir/$i.out" 2>&1; rc=$?; fi
    echo "$rc $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')" > "$dir/$i.rc"
}

report() { # test, index -> adds to the totals
    local t=$1 i=$2 name line p f s rc secs
    name=$(basename "$t")
    read -r rc secs < "$dir/$i.rc"
    echo "$name $secs" >> "$dir/times"
    line=$(grep -E '^([A-Za-z_]+: )?[0-9]+ passed, [0-9]+ failed' "$dir/$i.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "== $name: no result line (exit $rc, ${secs}s)"; tail -n 30 "$dir/$i.out"
        { echo "== $name: no result line (exit $rc)"; tail -n 8 "$dir/$i.out"; } >> "$dir/failures"
        total_f=$((total_f + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/^([A-Za-z_]+: )?([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then total_f=$((total_f + 1)); fi
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        echo "== $name: FAILED ($line, exit $rc, ${secs}s)"
        grep -v -E '^[0-9]+ passed' "$dir/$i.out" | tail -n 40
        { echo "== $name: FAILED ($line, exit $rc)"
          grep -i -E 'fail|error|assert|timeout|timed out' "$dir/$i.out" |
              grep -v -E '^([A-Za-z_]+: )?[0-9]+ passed|[0-9]+ passed, 0 failed' | head -n 8
        } >> "$dir/failures"
    else
        echo "== $name: $line (${secs}s)"
    fi
}

total_p=0; total_f=0; total_s=0
declare -A pid_of=() test_of=()
n=${#order[@]}; next=0; running=0; done_n=0
while [ "$done_n" -lt "$n" ]; do
    while [ "$running" -lt "$jobs" ] && [ "$next" -lt "$n" ]; do
        run_one "${order[$next]}" "$next" &
        pid_of[$next]=$!; test_of[$next]=${order[$next]}
        next=$((next + 1)); running=$((running + 1))
    done
    wait -n 2>/dev/null || true
    for i in "${!pid_of[@]}"; do
        if [ -f "$dir/$i.rc" ] && ! kill -0 "${pid_of[$i]}" 2>/dev/null; then
            wait "${pid_of[$i]}" 2>/dev/null || true
            report "${test_of[$i]}" "$i"
            unset "pid_of[$i]"
            running=$((running - 1)); done_n=$((done_n + 1))
        fi
    done
done
[ -d build ] && [ -f "$dir/times" ] && cp "$dir/times" "$times"
if [ -f "$dir/failures" ]; then
    echo "== failed programs (their full output is above):"
    cat "$dir/failures"
fi
if [ "$total_s" -gt 0 ]; then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
[ "$total_f" -eq 0 ]
