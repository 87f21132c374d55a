#!/usr/bin/env bash
# What the Windows port's tests need (tests/interop_windows.sh): the
# mingw-w64 cross compilers for x86_64 (C and C++) and wine64 to run their
# programs. Installed as root from Debian packages through tests/deps.sh's
# rtws_apt (same flock, so it never runs beside another apt-get); does nothing
# when everything is there already. Without root, or offline, it returns 1 and
# the caller says it skipped.
#   bash tests/ports_deps.sh       installs, exit 0 when all are present
#   . tests/ports_deps.sh; rtws_ports_deps
# shellcheck source=tests/deps.sh
. "$(dirname "${BASH_SOURCE[0]}")/deps.sh"

# Debian package names (bookworm): gcc-/g++-mingw-w64-x86-64 are the 64-bit
# halves of the "mingw-w64" metapackage (which also pulls the i686 ones);
# wine64 is the 64-bit loader (/usr/lib/wine/wine64).
RTWS_PORTS_PKGS="gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine64"

rtws_ports_deps() {
    # shellcheck disable=SC2086
    rtws_apt $RTWS_PORTS_PKGS || return 1
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 &&
        command -v x86_64-w64-mingw32-g++ >/dev/null 2>&1 &&
        [ -n "$(rtws_wine)" ]
}

# rtws_wine: prints the path of the 64-bit wine loader, empty when none
rtws_wine() {
    local w
    for w in wine wine64 /usr/lib/wine/wine64; do
        if command -v "$w" >/dev/null 2>&1; then command -v "$w"; return 0; fi
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    rtws_ports_deps || { echo "ports_deps: mingw-w64 / wine64 missing (not root, or apt-get failed)"; exit 1; }
    exit 0
fi
