#!/usr/bin/env bash
# docs/API.md is what tests/api_doc.py makes of rtws.h today; every public
# function of rtws.h is in it; and every rtws_ name the docs call
# (`rtws_x(`, or a whole `rtws_x` in backticks) still exists in rtws.h, so a
# rename cannot leave stale names in README.md or docs/*.md (CHANGELOG.md
# keeps old names on purpose and is not checked). Ends "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. docs/API.md is up to date
if python3 tests/api_doc.py rtws.h >"$tmp/API.md"; then
    if cmp -s "$tmp/API.md" docs/API.md; then
        ok "docs/API.md matches rtws.h"
    else
        bad "docs/API.md is out of date; regenerate it with: python3 tests/api_doc.py rtws.h > docs/API.md"
        diff -u docs/API.md "$tmp/API.md" | head -n 40
    fi
else
    bad "tests/api_doc.py failed"
fi

# the public part of the header, and its names
sed -n '1,/^#endif \/\* RTWS_H \*\//p' rtws.h >"$tmp/public.h"
# RTWS_API declarations can wrap: take the name before the first '(' of each
awk '/RTWS_API/ { s = $0; while (s !~ /\(/ && (getline l) > 0) s = s " " l;
                  if (match(s, /rtws_[A-Za-z0-9_]+[ \t]*\(/)) { n = substr(s, RSTART, RLENGTH);
                  sub(/[ \t]*\($/, "", n); print n } }' "$tmp/public.h" | sort -u >"$tmp/api"
grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' rtws.h | sort -u >"$tmp/idents"

# 2. every public function is documented
n=$(wc -l <"$tmp/api")
missing=0
while read -r f; do
    if ! grep -q "id=\"$f\"" docs/API.md; then echo "  $f is not in docs/API.md"; missing=$((missing + 1)); fi
done <"$tmp/api"
if [ "$n" -gt 0 ] && [ "$missing" -eq 0 ]; then ok "all $n RTWS_API functions are in docs/API.md"
else bad "$missing of $n RTWS_API functions are missing from docs/API.md"; fi

# 3. no stale names in README.md and docs/*.md
stale=0
for doc in README.md docs/*.md; do
    [ "$doc" = docs/API.md ] && continue
    # calls: rtws_x( ; must be public functions (or function-like macros)
    grep -noE '\brtws_[A-Za-z0-9_]*[A-Za-z0-9]\(' "$doc" | while IFS=: read -r ln name; do
        name=${name%(}
        if ! grep -qx "$name" "$tmp/api" && ! grep -qE "^#define $name\(" "$tmp/public.h"; then
            echo "  $doc:$ln: $name( is not a public function of rtws.h"
        fi
    done >>"$tmp/stale"
    # whole names in backticks (`rtws_x`, `rtws_x()`): must exist in rtws.h
    grep -noE '`rtws_[A-Za-z0-9_]*[A-Za-z0-9](\(\))?`' "$doc" | while IFS=: read -r ln name; do
        name=${name//\`/}; name=${name%()}
        if ! grep -qx "$name" "$tmp/idents"; then echo "  $doc:$ln: \`$name\` does not exist in rtws.h"; fi
    done >>"$tmp/stale"
done
if [ -s "$tmp/stale" ]; then
    stale=$(sort -u "$tmp/stale" | wc -l); sort -u "$tmp/stale"
    bad "$stale stale rtws_ names in README.md or docs/*.md"
else
    ok "every rtws_ name in README.md and docs/*.md exists in rtws.h"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
