#!/bin/sh
# Prints "yes" when CC (default cc) compiles and links against BearSSL. With
# --install, as root with apt-get, installs libbearssl-dev first when it is
# missing. Used by the Makefile to decide whether the wss:// tests are built.
install=0
[ "${1:-}" = --install ] && { install=1; shift; }
cc=${1:-cc}
try() {
    printf '#include <bearssl.h>\nint main(void) { br_ssl_client_context c; (void)c; return br_ssl_engine_last_error(&c.eng) * 0; }\n' |
        $cc -x c - -o /dev/null -lbearssl >/dev/null 2>&1
}
if ! try && [ $install = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbearssl-dev) >/dev/null 2>&1
fi
if try; then echo yes; else echo no; fi
