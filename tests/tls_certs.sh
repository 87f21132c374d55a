#!/usr/bin/env bash
# Generates throwaway test certificates for the wss:// tests into DIR
# (default build/tls): a CA; server certificates signed by it for
# localhost, 127.0.0.1 and ::1 (RSA 2048 with a PKCS#1 key, EC P-256 with a
# SEC 1 key and the same EC key as PKCS#8); an expired one; one for another
# host name; and one from a CA nobody trusts. Never committed.
set -euo pipefail
DIR=${1:-build/tls}
mkdir -p "$DIR"
# one generator at a time per DIR (tests run side by side): the others wait
# for it and then find .done
if [ -z "${RTWS_CERTS_LOCKED:-}" ] && command -v flock >/dev/null; then
    exec env RTWS_CERTS_LOCKED=1 flock "$DIR/.lock" bash "$0" "$@"
fi
cd "$DIR"
[ -f .done ] && exit 0
rm -rf db && mkdir db && : > db/index.txt && echo 1000 > db/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = rtws test
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${ENV::SAN}
CNF
export SAN=DNS:localhost
ossl() { openssl "$@" 2>/dev/null; }
mkca() { # name
    ossl req -x509 -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 30 \
        -subj "/CN=rtws test $1" -config ca.cnf -extensions v3_ca
}
leaf() { # name keyfile ca san [startdate enddate]
    ossl req -new -key "$2" -out "$1.csr" -subj "/CN=$1" -config ca.cnf
    local dates=(-days 30)
    [ $# -ge 6 ] && dates=(-startdate "$5" -enddate "$6")
    SAN=$4 ossl ca -batch -config ca.cnf -cert "$3.pem" -keyfile "$3.key" -in "$1.csr" \
        -out "$1.pem" -extensions leaf -notext "${dates[@]}"
    rm -f "$1.csr"
}
mkca ca
mkca rogue_ca
ossl genrsa -traditional -out rsa.key 2048 || ossl genrsa -out rsa.key 2048
ossl ecparam -name prime256v1 -genkey -noout -out ec.key
ossl pkcs8 -topk8 -nocrypt -in ec.key -out ec_pkcs8.key
ALL="DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"
leaf srv_rsa rsa.key ca "$ALL"
leaf srv_ec ec.key ca "$ALL"
leaf srv_expired rsa.key ca "$ALL" 20200101000000Z 20200201000000Z
leaf srv_otherhost rsa.key ca "DNS:other.invalid"
leaf srv_rogue rsa.key rogue_ca "$ALL"
cat srv_rsa.pem ca.pem > srv_rsa_chain.pem
touch .done
