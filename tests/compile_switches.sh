#!/usr/bin/env bash
# The switch matrix of `make compile-check`: every combination of RTWS_NO_HOST,
# _JSON, _REALTIME, _CLIENT, _SERVER, _DEFLATE and _REDIS (128). Each allowed one is built from
# tests/compile_switches.c as C99 (gcc -O0, linked and run; nm then checks that
# the parts switched off are gone and the others are there) and as C++11
# (g++ -fsyntax-only). The combinations refused by design must stop at their
# #error with its message. Then: which system headers a RTWS_NO_HOST build
# includes, RTWS_NO_SYSTEM_RANDOM, and BearSSL with the switches.
#
# usage: tests/compile_switches.sh [build-dir]
#   WARN, CWARN: warning flags (the Makefile passes its own); BEARSSL=yes when
#   libbearssl is installed. Prints one line per check, "compile FAILED: ..."
#   for a failure, and writes "passed failed" to build-dir/compile_switches.counts.
set -u
B=${1:-build}
[ "$B" = --combo ] && B=$2 # a worker of the parallel run: --combo build-dir N
WARN=${WARN:--Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Werror}
CWARN=${CWARN:-$WARN -Wstrict-prototypes -Wmissing-prototypes}
BEARSSL=${BEARSSL:-no}
SRC=tests/compile_switches.c
mkdir -p "$B"
p=0 f=0
pass() { p=$((p + 1)); echo "ok: $*"; }
fail() {
    f=$((f + 1))
    echo "compile FAILED: $*"
    [ -s "$ERR" ] && sed 's/^/    /' "$ERR" | head -n 20
}

# present NAME: 0 when the build with the current switches should define it
has() { case " $D " in *" -DRTWS_NO_$1 "*) return 1 ;; esac; return 0; }
present() {
    case $1 in
    rtws_ctx_new | rtws_tls_err_str | rtws_ctx_run | rtws_opts_parse) has HOST ;;
    rtws_ctx_post) has HOST && has THREADS ;;
    rtws_ctx_listen | rtws_ctx_listen_tls) has HOST && has SERVER ;;
    rtws_ctx_connect | rtws_client_new) has HOST && has CLIENT ;;
    rtws_http_parse_request | rtws_http_check_upgrade | rtws_http_get_query | rtws_http_get_cookie | rtws_http_match) has SERVER ;;
    rtws_http_parse_response | rtws_conn_start | rtws_url_parse) has CLIENT ;;
    rtws_json_parse | rtws_time_format_iso) has JSON ;;
    rtws_resp_parse) has REDIS ;;
    rtws_redis_new) has REDIS && has HOST && has CLIENT ;;
    rtws_stream_new) has HOST && has CLIENT ;;
    rtws_jwt_hs256_verify) has JSON && has REALTIME ;;
    rtws_inflate_feed | rtws_deflate_compress) has DEFLATE ;;
    rtws_router_new) has JSON && has REALTIME && has SERVER ;;
    rtws_router_install) has JSON && has REALTIME && has SERVER && has HOST ;;
    rtws_rt_new) has JSON && has REALTIME && has CLIENT && has HOST ;;
    *) return 0 ;;
    esac
}
SYMS="rtws_frame_header_encode rtws_conn_init rtws_ctx_new rtws_tls_err_str rtws_ctx_listen
rtws_ctx_listen_tls rtws_ctx_connect rtws_client_new rtws_http_parse_request
rtws_http_check_upgrade rtws_http_parse_response rtws_conn_start rtws_url_parse rtws_json_parse
rtws_jwt_hs256_verify rtws_router_new rtws_router_install rtws_rt_new rtws_inflate_feed
rtws_deflate_compress rtws_ctx_post rtws_resp_parse rtws_redis_new rtws_stream_new
rtws_http_get_query rtws_http_get_cookie rtws_http_match rtws_ctx_run rtws_opts_parse
rtws_time_format_iso"

# check_syms BIN: every symbol in SYMS defined exactly when present() says so
check_syms() {
    local defined bad="" s
    defined=" $(nm -g --defined-only "$1" | awk '{print $3}' | tr '\n' ' ') "
    for s in $SYMS; do
        case $defined in *" $s "*) present "$s" || bad="$bad +$s" ;;
        *) present "$s" && bad="$bad -$s" ;; esac
    done
    [ -z "$bad" ] || { echo "symbols wrong (+ there, - missing):$bad" > "$ERR"; return 1; }
}

# expect_error MESSAGE FLAGS...: preprocessing must fail with MESSAGE
expect_error() {
    local msg=$1
    shift
    if gcc -std=c99 -E -I. "$@" "$SRC" -o /dev/null 2> "$ERR"; then
        : > "$ERR"; fail "$* compiled, expected #error: $msg"
    elif grep -q "$msg" "$ERR"; then pass "$* stops at #error: $msg"
    else fail "$* failed without the #error: $msg"; fi
}

# one combination (bit i of $1 switches the i-th of HOST JSON REALTIME CLIENT SERVER DEFLATE REDIS off)
combo() {
    local m=$1 i=0 sw name="" bin
    D=""
    for sw in HOST JSON REALTIME CLIENT SERVER DEFLATE REDIS; do
        if [ $(((m >> i) & 1)) = 1 ]; then D="$D -DRTWS_NO_$sw"; name="${name}_$sw"; fi
        i=$((i + 1))
    done
    name=${name:-_none}
    ERR=$B/compile_sw$name.err
    # shellcheck disable=SC2086 # $D is a list of flags
    if ! has CLIENT && ! has SERVER; then
        expect_error "RTWS_NO_CLIENT and RTWS_NO_SERVER together" $D
        return
    fi
    bin=$B/compile_sw$name
    # shellcheck disable=SC2086
    if ! gcc -std=c99 -O0 $CWARN $D -I. "$SRC" -o "$bin" 2> "$ERR"; then fail "gcc -std=c99$D"
    elif ! "$bin" > "$ERR" 2>&1; then fail "$bin (run)"
    elif ! check_syms "$bin"; then fail "nm $bin"
    else pass "gcc -std=c99$D: built, ran, symbols as switched"; fi
    # shellcheck disable=SC2086
    if g++ -std=c++11 $WARN $D -I. -fsyntax-only -x c++ "$SRC" 2> "$ERR"; then
        pass "g++ -std=c++11 -fsyntax-only$D"
    else fail "g++ -std=c++11 -fsyntax-only$D"; fi
}
if [ "${1:-}" = --combo ]; then
    combo "$3"
    exit 0
fi

# the 128 combinations, JOBS at a time (default: every CPU)
seq 0 127 | xargs -P "${JOBS:-$(nproc 2>/dev/null || echo 2)}" -n 1 bash "$0" --combo "$B" > "$B/compile_sw.out"
cat "$B/compile_sw.out"
p=$(grep -c '^ok: ' "$B/compile_sw.out")
f=$(grep -c '^compile FAILED: ' "$B/compile_sw.out")
ERR=$B/compile_sw.err

# RTWS_NO_HOST includes no socket header; with RTWS_NO_SYSTEM_RANDOM no
# <fcntl.h>/<unistd.h> either (the system random source needs them)
headers() { gcc -std=c99 -M -I. "$@" "$SRC" 2> "$ERR" | tr ' ' '\n' | grep -v -e '^$' -e '^.$'; }
inc=$(headers -DRTWS_NO_HOST | grep -E '/(sys/socket|poll|sys/poll|netdb|arpa/inet|netinet/in)\.h$')
if [ -z "$inc" ]; then pass "RTWS_NO_HOST includes no socket, poll or netdb header"
else echo "$inc" > "$ERR"; fail "RTWS_NO_HOST still includes socket headers"; fi
inc=$(headers -DRTWS_NO_HOST -DRTWS_NO_SYSTEM_RANDOM |
    grep -E '/(sys/socket|poll|sys/poll|netdb|arpa/inet|netinet/in|fcntl|unistd|sys/random)\.h$')
if [ -z "$inc" ]; then pass "RTWS_NO_HOST RTWS_NO_SYSTEM_RANDOM includes no fcntl, unistd or socket header"
else echo "$inc" > "$ERR"; fail "RTWS_NO_HOST RTWS_NO_SYSTEM_RANDOM still includes OS headers"; fi
bin=$B/compile_sw_HOST_NORANDOM
# shellcheck disable=SC2086 # flag lists
if gcc -std=c99 -O0 $CWARN -DRTWS_NO_HOST -DRTWS_NO_SYSTEM_RANDOM -I. "$SRC" -o "$bin" 2> "$ERR" &&
    "$bin" > "$ERR" 2>&1; then pass "gcc -std=c99 -DRTWS_NO_HOST -DRTWS_NO_SYSTEM_RANDOM"
else fail "gcc -std=c99 -DRTWS_NO_HOST -DRTWS_NO_SYSTEM_RANDOM"; fi

# RTWS_NO_THREADS leaves out cross-thread posting (rtws_ctx_post*), alone
# and with one role left out; as C++11 too
for D in " -DRTWS_NO_THREADS" " -DRTWS_NO_THREADS -DRTWS_NO_CLIENT" " -DRTWS_NO_THREADS -DRTWS_NO_SERVER"; do
    bin=$B/compile_sw_threads${D// -DRTWS_NO/}
    # shellcheck disable=SC2086
    if gcc -std=c99 -O0 $CWARN $D -I. "$SRC" -o "$bin" 2> "$ERR" && "$bin" > "$ERR" 2>&1 &&
        check_syms "$bin" && g++ -std=c++11 $WARN $D -I. -fsyntax-only -x c++ "$SRC" 2> "$ERR"; then
        pass "gcc -std=c99 and g++ -std=c++11$D"
    else fail "gcc -std=c99 / g++ -std=c++11$D"; fi
done

# TLS needs the host; with one role left out it keeps the other's half
expect_error "RTWS_USE_BEARSSL needs the host layer" -DRTWS_USE_BEARSSL -DRTWS_NO_HOST
if [ "$BEARSSL" = yes ]; then
    for D in " -DRTWS_NO_JSON" " -DRTWS_NO_REALTIME" " -DRTWS_NO_CLIENT" " -DRTWS_NO_SERVER" \
             " -DRTWS_NO_CLIENT -DRTWS_NO_JSON" " -DRTWS_NO_SERVER -DRTWS_NO_REALTIME"; do
        bin=$B/compile_sw_tls${D// -DRTWS_NO/}
        # shellcheck disable=SC2086
        if gcc -std=c99 -O0 $CWARN -DRTWS_USE_BEARSSL $D -I. "$SRC" -o "$bin" -lbearssl 2> "$ERR" &&
            "$bin" > "$ERR" 2>&1 && check_syms "$bin"; then
            pass "gcc -std=c99 -DRTWS_USE_BEARSSL$D"
        else fail "gcc -std=c99 -DRTWS_USE_BEARSSL$D"; fi
    done
fi

echo "$p $f" > "$B/compile_switches.counts"
echo "switches: $p passed, $f failed"
[ "$f" -eq 0 ]
