#!/usr/bin/env bash
# The cross compilers and qemu-user that tests/interop_qemu.sh needs, from
# Debian packages (bookworm names), installed when missing and run as root
# through rtws_apt of tests/deps.sh (same lock, so no two apt-get at once).
#   bash tests/qemu_deps.sh          installs them for every arch
#   . tests/qemu_deps.sh; rtws_qemu_deps ARCH && echo "$rtws_qemu_cc"
# ARCH is i686, aarch64 or s390x. rtws_qemu_deps returns 0 when the cross
# compiler, its C library and qemu-user are there; it sets rtws_qemu_cc (the
# compiler) and rtws_qemu_run (the qemu-user emulator of that arch).
. "$(dirname "${BASH_SOURCE[0]}")/deps.sh"

rtws_qemu_deps() {
    local arch=$1 libc qemu
    case $arch in
    i686) libc=libc6-dev-i386-cross; qemu=qemu-i386 ;;
    aarch64) libc=libc6-dev-arm64-cross; qemu=qemu-aarch64 ;;
    s390x) libc=libc6-dev-s390x-cross; qemu=qemu-s390x ;;
    *) return 1 ;;
    esac
    rtws_qemu_cc=$arch-linux-gnu-gcc
    rtws_qemu_run=$qemu
    if ! command -v "$rtws_qemu_cc" >/dev/null 2>&1 || ! command -v "$qemu" >/dev/null 2>&1 ||
        ! dpkg -s "$libc" >/dev/null 2>&1; then
        rtws_apt "gcc-$arch-linux-gnu" "$libc" qemu-user || return 1
    fi
    command -v "$rtws_qemu_cc" >/dev/null 2>&1 && command -v "$qemu" >/dev/null 2>&1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    st=0
    for a in i686 aarch64 s390x; do
        rtws_qemu_deps "$a" || { echo "qemu_deps: $a cross compiler or qemu-user missing"; st=1; }
    done
    exit $st
fi
