#!/bin/sh
# On the database server, as root, after `apt install postgresql
# postgresql-contrib` (which makes the cluster 15/main), in a directory
# holding ca.crt, db1.example.org.crt and db1.example.org.key from ca.sh.
set -eu
DB_HOST=${DB_HOST:-db1.example.org}    # the name in the server's certificate
LISTEN=${LISTEN:-*}                    # listen_addresses
PORT=${PORT:-5432}
SOCKET_DIR=${SOCKET_DIR:-/var/run/postgresql}
PG_CONF_DIR=${PG_CONF_DIR:-/etc/postgresql/15/main}
HOSTS_NET=${HOSTS_NET:-10.0.0.0/8}     # where hosts connect from
ADMINS_NET=${ADMINS_NET:-10.0.9.0/24}  # where admins run otp-enroll
HOSTS=${HOSTS:-web1 web2}              # a login role each, in pam_otp_host
ADMINS=${ADMINS:-ops}                  # a login role each, in pam_otp_admin

# TLS with the server's certificate from your CA; clients prove themselves
# with theirs (ssl_ca_file), nothing else gets in over TCP.
for f in ca.crt "$DB_HOST.crt"; do
    install -o postgres -g postgres -m 0644 "$f" "$PG_CONF_DIR/pam_otp-$f"
done
install -o postgres -g postgres -m 0600 "$DB_HOST.key" "$PG_CONF_DIR/pam_otp-$DB_HOST.key"
cat >"$PG_CONF_DIR/conf.d/pam_otp.conf" <<EOF
listen_addresses = '$LISTEN'
ssl = on
ssl_cert_file = '$PG_CONF_DIR/pam_otp-$DB_HOST.crt'
ssl_key_file = '$PG_CONF_DIR/pam_otp-$DB_HOST.key'
ssl_ca_file = '$PG_CONF_DIR/pam_otp-ca.crt'
EOF

# pg_hba.conf: the first line that matches decides, so these go first.
# Root on db1 may be the superuser in this database only (for db init).
sed -i "1i\\
local   pam_otp  postgres                      peer map=pam_otp_root\\
hostssl pam_otp  +pam_otp_host   $HOSTS_NET  cert\\
hostssl pam_otp  +pam_otp_admin  $ADMINS_NET cert" "$PG_CONF_DIR/pg_hba.conf"
cat >>"$PG_CONF_DIR/pg_ident.conf" <<EOF
pam_otp_root  root      postgres
pam_otp_root  postgres  postgres
EOF
pg_ctlcluster 15 main restart

runuser -u postgres -- createdb --host="$SOCKET_DIR" --port="$PORT" pam_otp
otp-enroll db init --conninfo "host=$SOCKET_DIR port=$PORT dbname=pam_otp user=postgres requirepeer=postgres"
for role in $HOSTS; do
    runuser -u postgres -- psql --host="$SOCKET_DIR" --port="$PORT" --dbname=pam_otp \
        --command="CREATE ROLE $role LOGIN IN ROLE pam_otp_host"
done
for role in $ADMINS; do
    runuser -u postgres -- psql --host="$SOCKET_DIR" --port="$PORT" --dbname=pam_otp \
        --command="CREATE ROLE $role LOGIN IN ROLE pam_otp_admin"
done
