#!/usr/bin/env bash
# rtws as a user installs and uses it: `make install` into a temporary PREFIX
# (and a DESTDIR staging run), then one tiny program built against the
# installed copy through every route the README gives, and run:
#   pkg-config (rtws, rtws-bearssl), CMake find_package(rtws CONFIG) (plain,
#   COMPONENTS bearssl, a too-new version refused), CMake FetchContent of this
#   checkout, Meson dependency('rtws') (pkg-config) and Meson with this
#   checkout as a subproject (plain and -Drtws:bearssl=true); the top-level
#   CMakeLists.txt builds rtwscat; `make uninstall` leaves no file behind.
# The program checks RFC 6455's accept-key example, prints the version and
# whether the BearSSL transport is in (so a route that drops the define or the
# library fails). cmake, meson, ninja-build and pkg-config are installed with
# apt-get when missing and root, else skipped (failed under RTWS_REQUIRE_ALL=1).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
pass=0; fail=0; skip=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
skipped() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then bad "$* (missing and RTWS_REQUIRE_ALL=1)"
    else skip=$((skip + 1)); echo "skipped: $*"; fi
}
finish() {
    if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
    else echo "$pass passed, $fail failed"; fi
    [ "$fail" -eq 0 ]; exit
}

mkdir -p build
T=$(mktemp -d "$ROOT/build/install_test.XXXXXX")
trap 'rm -rf "$T"' EXIT
VERSION=$(sed -n 's/^#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h)

# the tools; apt-get update only when something is missing
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v meson >/dev/null || need+=(meson)
command -v ninja >/dev/null || need+=(ninja-build)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (tests/deps.sh)"
    . tests/deps.sh
    rtws_apt "${need[@]}" || echo "could not install ${need[*]}"
fi
have() { command -v "$1" >/dev/null; }
tls=0; [ -f /usr/include/bearssl.h ] && tls=1

# ---- make install, DESTDIR staging, the files and what they say ---------------
P=$T/prefix
if make -s install PREFIX="$P" >"$T/install.log" 2>&1; then ok "make install PREFIX=$P"
else bad "make install"; cat "$T/install.log"; finish; fi
for f in include/rtws.h share/pkgconfig/rtws.pc share/pkgconfig/rtws-bearssl.pc \
         share/cmake/rtws/rtwsConfig.cmake share/cmake/rtws/rtwsConfigVersion.cmake bin/rtwscat; do
    [ -f "$P/$f" ] || bad "make install left out $f"
done
if cmp -s rtws.h "$P/include/rtws.h" && [ -x "$P/bin/rtwscat" ]; then ok "rtws.h and an executable rtwscat installed"
else bad "installed rtws.h differs or rtwscat is not executable"; fi
if "$P/bin/rtwscat" --help >"$T/help.out" 2>&1 && grep -q '^usage: rtwscat' "$T/help.out"; then ok "installed rtwscat --help"
else bad "installed rtwscat --help"; head -n 5 "$T/help.out"; fi
if make -s install DESTDIR="$T/stage" PREFIX=/opt/rtws >"$T/stage.log" 2>&1 &&
    [ -f "$T/stage/opt/rtws/include/rtws.h" ] && grep -qx 'prefix=/opt/rtws' "$T/stage/opt/rtws/share/pkgconfig/rtws.pc"; then
    ok "DESTDIR stages under DESTDIR, the .pc names PREFIX"
else bad "DESTDIR install"; cat "$T/stage.log"; fi
if make -s uninstall DESTDIR="$T/stage" PREFIX=/opt/rtws >"$T/unstage.log" 2>&1 &&
    [ -z "$(find "$T/stage" -type f)" ]; then ok "make uninstall (DESTDIR) removed every file"
else bad "make uninstall left: $(find "$T/stage" -type f | tr '\n' ' ')"; fi

# ---- the program every route builds -------------------------------------------
mkdir -p "$T/app"
cat >"$T/app/app.c" <<'EOF'
#define RTWS_IMPLEMENTATION
#include <rtws.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char accept[29];
    rtws_upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept); /* RFC 6455 section 1.3 */
    if (strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) return 1;
    if (strcmp(rtws_version(), RTWS_VERSION_STRING) != 0) return 1;
    printf("rtws %s %s\n", rtws_version(), rtws_transport_bearssl() ? "bearssl" : "plain");
    return 0;
}
EOF
# expect NAME BINARY plain|bearssl: runs BINARY, compares its line
expect() {
    local out; out=$("$2" 2>&1)
    if [ "$out" = "rtws $VERSION $3" ]; then ok "$1: $out"; else bad "$1 printed: $out"; fi
}

# ---- pkg-config -----------------------------------------------------------------
if have pkg-config; then
    export PKG_CONFIG_PATH=$P/share/pkgconfig
    v=$(pkg-config --modversion rtws)
    [ "$v" = "$VERSION" ] && ok "pkg-config --modversion rtws: $v" || bad "pkg-config --modversion rtws: $v (rtws.h: $VERSION)"
    if cc -std=c99 -Wall -Wextra -Werror "$T/app/app.c" -o "$T/pc_plain" $(pkg-config --cflags --libs rtws) 2>"$T/pc.log"; then
        expect "pkg-config rtws" "$T/pc_plain" plain
    else bad "cc \$(pkg-config --cflags --libs rtws)"; cat "$T/pc.log"; fi
    if [ $tls = 1 ]; then
        if cc -std=c99 -Wall -Wextra -Werror "$T/app/app.c" -o "$T/pc_tls" $(pkg-config --cflags --libs rtws-bearssl) 2>"$T/pc.log"; then
            expect "pkg-config rtws-bearssl" "$T/pc_tls" bearssl
        else bad "cc \$(pkg-config --cflags --libs rtws-bearssl)"; cat "$T/pc.log"; fi
    else skipped "pkg-config rtws-bearssl (no libbearssl-dev)"; fi
    unset PKG_CONFIG_PATH
else skipped "pkg-config (apt-get install pkg-config)"; fi

# ---- CMake ----------------------------------------------------------------------
# cmake_build NAME DIR ARGS...: configures and builds DIR into $T/NAME
cmake_build() {
    local name=$1 dir=$2; shift 2
    cmake -S "$dir" -B "$T/$name" -G Ninja "$@" >"$T/$name.log" 2>&1 &&
        cmake --build "$T/$name" >>"$T/$name.log" 2>&1
}
if have cmake && have ninja; then
    mkdir -p "$T/cm"
    cp "$T/app/app.c" "$T/cm/"
    cat >"$T/cm/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.14)
project(app C)
set(WANT "1.0" CACHE STRING "")
if(TLS)
  find_package(rtws ${WANT} CONFIG REQUIRED COMPONENTS bearssl)
else()
  find_package(rtws ${WANT} CONFIG REQUIRED)
endif()
add_executable(app app.c)
target_link_libraries(app PRIVATE rtws::rtws)
set_target_properties(app PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
EOF
    if cmake_build cm_plain "$T/cm" -DCMAKE_PREFIX_PATH="$P"; then expect "CMake find_package(rtws 1.0 CONFIG)" "$T/cm_plain/app" plain
    else bad "CMake find_package"; tail -n 20 "$T/cm_plain.log"; fi
    if [ $tls = 1 ]; then
        if cmake_build cm_tls "$T/cm" -DCMAKE_PREFIX_PATH="$P" -DTLS=ON; then
            expect "CMake find_package(... COMPONENTS bearssl)" "$T/cm_tls/app" bearssl
        else bad "CMake find_package COMPONENTS bearssl"; tail -n 20 "$T/cm_tls.log"; fi
    else skipped "CMake with BearSSL (no libbearssl-dev)"; fi
    if cmake_build cm_v2 "$T/cm" -DCMAKE_PREFIX_PATH="$P" -DWANT=2.0; then bad "find_package(rtws 2.0) accepted $VERSION"
    elif grep -q "considered but not accepted" "$T/cm_v2.log"; then ok "find_package(rtws 2.0) refuses $VERSION (version file)"
    else bad "find_package(rtws 2.0) failed for another reason"; tail -n 10 "$T/cm_v2.log"; fi

    mkdir -p "$T/fc"
    cp "$T/app/app.c" "$T/fc/"
    cat >"$T/fc/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.14)
project(app C)
include(FetchContent)
FetchContent_Declare(rtws SOURCE_DIR "$ROOT")
FetchContent_MakeAvailable(rtws)
add_executable(app app.c)
target_link_libraries(app PRIVATE rtws::rtws)
EOF
    if cmake_build fc_plain "$T/fc"; then
        expect "CMake FetchContent (this checkout)" "$T/fc_plain/app" plain
        [ -e "$T/fc_plain/_deps/rtws-build/rtwscat" ] && bad "FetchContent built rtwscat (RTWS_BUILD_TOOLS should be off in a subproject)"
    else bad "CMake FetchContent"; tail -n 20 "$T/fc_plain.log"; fi
    if [ $tls = 1 ]; then
        if cmake_build fc_tls "$T/fc" -DRTWS_USE_BEARSSL=ON; then expect "CMake FetchContent -DRTWS_USE_BEARSSL=ON" "$T/fc_tls/app" bearssl
        else bad "CMake FetchContent with BearSSL"; tail -n 20 "$T/fc_tls.log"; fi
    fi
    if cmake_build top "$ROOT" && "$T/top/rtwscat" --help >/dev/null; then ok "CMakeLists.txt at the top builds rtwscat"
    else bad "top-level CMake build"; tail -n 20 "$T/top.log"; fi
else skipped "CMake (apt-get install cmake ninja-build)"; fi

# ---- Meson ----------------------------------------------------------------------
if have meson && have ninja && have pkg-config; then
    mkdir -p "$T/ms/subprojects"
    cp "$T/app/app.c" "$T/ms/"
    cat >"$T/ms/meson.build" <<'EOF'
project('app', 'c', default_options: ['c_std=c99'])
rtws_dep = dependency(get_option('tls') ? 'rtws-bearssl' : 'rtws', version: '>=1.0',
                      fallback: ['rtws', 'rtws_dep'])
executable('app', 'app.c', dependencies: rtws_dep)
EOF
    echo "option('tls', type: 'boolean', value: false)" >"$T/ms/meson_options.txt"
    ln -s "$ROOT" "$T/ms/subprojects/rtws"
    # meson_build NAME ARGS...
    meson_build() { local name=$1; shift; meson setup "$T/$name" "$T/ms" "$@" >"$T/$name.log" 2>&1 && ninja -C "$T/$name" >>"$T/$name.log" 2>&1; }
    if PKG_CONFIG_PATH=$P/share/pkgconfig meson_build ms_pc --wrap-mode=nofallback &&
        grep -q 'Run-time dependency rtws found: YES' "$T/ms_pc.log"; then
        expect "Meson dependency('rtws') through pkg-config" "$T/ms_pc/app" plain
    else bad "Meson with the installed copy"; tail -n 20 "$T/ms_pc.log"; fi
    if [ $tls = 1 ]; then
        if PKG_CONFIG_PATH=$P/share/pkgconfig meson_build ms_pc_tls --wrap-mode=nofallback -Dtls=true; then
            expect "Meson dependency('rtws-bearssl') through pkg-config" "$T/ms_pc_tls/app" bearssl
        else bad "Meson rtws-bearssl with the installed copy"; tail -n 20 "$T/ms_pc_tls.log"; fi
    fi
    if meson_build ms_sub --force-fallback-for=rtws; then expect "Meson subproject (this checkout)" "$T/ms_sub/app" plain
    else bad "Meson subproject"; tail -n 20 "$T/ms_sub.log"; fi
    if [ $tls = 1 ]; then
        if meson_build ms_sub_tls --force-fallback-for=rtws-bearssl -Dtls=true -Drtws:bearssl=true; then
            expect "Meson subproject -Drtws:bearssl=true" "$T/ms_sub_tls/app" bearssl
        else bad "Meson subproject with BearSSL"; tail -n 20 "$T/ms_sub_tls.log"; fi
    fi
else skipped "Meson (apt-get install meson ninja-build pkg-config)"; fi

# ---- make uninstall -------------------------------------------------------------
if make -s uninstall PREFIX="$P" >"$T/uninstall.log" 2>&1 && [ -z "$(find "$P" -type f)" ]; then
    ok "make uninstall removed every installed file"
else bad "make uninstall left: $(find "$P" -type f | tr '\n' ' ')"; fi
finish
