#!/usr/bin/env bash
# What the test suite needs from outside the repository, installed when
# missing and run as root (Debian packages with apt-get, npm packages into
# build/npm). Without root, or offline, nothing is installed and the tests
# that need a missing peer say they skipped (RTWS_REQUIRE_ALL=1 makes that
# a failure).
#   bash tests/deps.sh          installs everything the suite uses (make test
#                               runs it first, before tests run side by side)
#   . tests/deps.sh; rtws_apt PKG...; rtws_npm PKG...
# Installs take a lock (flock), so scripts running side by side never run two
# apt-get or two npm installs into one folder at once.
RTWS_DEPS_LOCK=${RTWS_DEPS_LOCK:-/tmp/rtws-deps.lock}

# rtws_apt PKG...: every PKG installed (dpkg says so) when this returns 0
rtws_apt() {
    local need=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    (
        flock 9
        need=()
        for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
        [ ${#need[@]} -eq 0 ] && exit 0
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1
        fi
    ) 9>"$RTWS_DEPS_LOCK"
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || return 1; done
}

# rtws_npm PKG...: node can require() every PKG from build/npm/node_modules
# (NODE_PATH is set to it) when this returns 0
rtws_npm() {
    local dir=${RTWS_NPM_DIR:-$PWD/build/npm} need=() p
    export NODE_PATH="$dir/node_modules"
    command -v node >/dev/null 2>&1 || return 1
    for p in "$@"; do node -e "require('$p')" >/dev/null 2>&1 || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    command -v npm >/dev/null 2>&1 || return 1
    mkdir -p "$dir"
    (
        flock 9
        cd "$dir" && npm install --silent --no-audit --no-fund "${need[@]}" >/dev/null 2>&1
    ) 9>"$dir/.lock"
    for p in "$@"; do node -e "require('$p')" >/dev/null 2>&1 || return 1; done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # the suite's peers: Python websockets, Chromium + its driver, Node's ws
    # package and TypeScript (rtws.d.ts), the build systems of
    # tests/interop_install.sh, tmux (tests/interop_rtwscat.sh), tinyproxy
    # (tests/interop_proxy.sh), redis-server (tests/e2e_redis.c), BearSSL
    # and openssl (wss://)
    st=0
    rtws_apt libbearssl-dev openssl python3-websockets chromium chromium-driver \
        cmake meson ninja-build pkg-config tmux tinyproxy redis-server || {
        echo "deps: some Debian packages are missing (not root, or apt-get failed)"; st=1; }
    rtws_npm ws typescript || { echo "deps: npm packages missing (ws, typescript)"; st=1; }
    exit $st
fi
