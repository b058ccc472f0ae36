#!/bin/sh
# Where your CA lives (not on db1, not on a host), as root: the database's
# certificate and one per host and per admin machine (CN = its role).
set -eu
CA_DIR=${CA_DIR:-/root/pam_otp-ca}     # the CA's key never leaves it
DB_HOST=${DB_HOST:-db1.example.org}    # the name hosts connect to
ROLES=${ROLES:-web1 web2 ops}          # hosts' and admins' login roles

umask 077
mkdir -p "$CA_DIR"
cd "$CA_DIR"
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
sign() { # file name, CN, extension
    new_key "$1"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 825 -extfile "$1.ext" -out "$1.crt"
}
if [ ! -e ca.crt ]; then
    new_key ca
    openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=pam_otp CA" -out ca.crt
fi
sign "$DB_HOST" "$DB_HOST" "subjectAltName=DNS:$DB_HOST"
for role in $ROLES; do
    sign "$role" "$role" "extendedKeyUsage=clientAuth"
done
