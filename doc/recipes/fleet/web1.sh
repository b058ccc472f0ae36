#!/bin/sh
# On each host, as root, in a directory holding ca.crt and the host's
# certificate and key from ca.sh (web1.crt, web1.key), and the admin's
# (ops.crt, ops.key) where admins run otp-enroll.
set -eu
HOST=${HOST:-web1}                     # this host's role
ADMIN=${ADMIN-ops}                     # empty where no admin runs otp-enroll
DB_HOSTS=${DB_HOSTS:-db1.example.org,db2.example.org}   # primary, standby
PORT=${PORT:-5432}
CERT_DIR=${CERT_DIR:-/etc/pam_otp}
SERVICE_FILE=${SERVICE_FILE:-/etc/postgresql-common/pg_service.conf}

install -d -m 0755 "$CERT_DIR" "$(dirname "$SERVICE_FILE")"
install -m 0644 ca.crt "$CERT_DIR/ca.crt"
for role in $HOST $ADMIN; do
    install -m 0644 "$role.crt" "$CERT_DIR/$role.crt"
    install -m 0600 "$role.key" "$CERT_DIR/$role.key"
done

# The libpq service file: root's, 0644 (no secret in it).
service() { # service name, role
    cat <<EOF
[$1]
host=$DB_HOSTS
port=$PORT
dbname=pam_otp
user=$2
sslmode=verify-full
sslrootcert=$CERT_DIR/ca.crt
sslcert=$CERT_DIR/$2.crt
sslkey=$CERT_DIR/$2.key
target_session_attrs=read-write
connect_timeout=3
EOF
}
{
    service pam_otp "$HOST"
    if [ -n "$ADMIN" ]; then
        echo
        service pam_otp_admin "$ADMIN"
    fi
} >"$SERVICE_FILE"
chmod 0644 "$SERVICE_FILE"
