#!/usr/bin/env bash
# Make sure the services the integration tests use run on this machine:
#
#   PostgreSQL     127.0.0.1:5432, role novalite/novalite (CREATEDB), database test
#   MariaDB/MySQL  127.0.0.1:3306, user novalite/novalite, database test and
#                  novalite_* (the tests' throwaway databases)
#   RabbitMQ       127.0.0.1:5672, guest/guest (the package default, localhost only)
#
# What is missing is installed with apt-get (Debian/Ubuntu) and started, with
# systemctl when systemd runs, else directly (containers). Already running services
# are only probed, so a second run takes about a second. Needs root (or sudo) only
# when something has to be installed, started or created.
#
# A service whose URL is given in NOVALITE_TEST_PG_URL / NOVALITE_TEST_MYSQL_URL /
# NOVALITE_TEST_RABBIT_URL is left alone: the tests use that URL as it is.
# Usage: tools/ensure_services.sh [postgresql] [mariadb] [rabbitmq]   (default: all)
set -euo pipefail

log() { printf 'ensure_services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" = 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=(false)  # every privileged step fails with a message below
fi
as_root() { "${SUDO[@]}" "$@"; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() {  # port seconds name
    local deadline=$((SECONDS + $2))
    until port_open "$1"; do
        [ "$SECONDS" -lt "$deadline" ] || die "$3 did not open port $1 within $2 s"
        sleep 0.5
    done
}

has_systemd() { [ -d /run/systemd/system ]; }

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself"
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    # Package scripts must not start the daemons (that fails or hangs without an
    # init system); they are started below. Only a policy we add is removed again.
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    log "apt-get install $*"
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null || rc=$?
    if [ "$own_policy" = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" = 0 ] || die "apt-get install $* failed"
}

# ----------------------------------------------------------------------- RabbitMQ

ensure_rabbitmq() {
    if [ -n "${NOVALITE_TEST_RABBIT_URL:-}" ]; then
        log "RabbitMQ: using NOVALITE_TEST_RABBIT_URL as given"; return
    fi
    if port_open 5672; then log "RabbitMQ: running"; return; fi
    [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
    # The Erlang node is rabbit@<short hostname>, which must resolve.
    if ! getent hosts "$(hostname -s)" >/dev/null 2>&1; then
        log "RabbitMQ: adding $(hostname -s) to /etc/hosts"
        echo "127.0.0.1 $(hostname -s)" | as_root tee -a /etc/hosts >/dev/null
    fi
    log "RabbitMQ: starting"
    if has_systemd; then
        as_root systemctl start rabbitmq-server
    else
        # The Debian wrapper drops to the rabbitmq user when started as root.
        as_root /usr/sbin/rabbitmq-server -detached >/dev/null 2>&1 \
            || die "rabbitmq-server -detached failed (see /var/log/rabbitmq)"
    fi
    wait_port 5672 120 RabbitMQ
    log "RabbitMQ: started"
}

# --------------------------------------------------------------------- PostgreSQL

pg_admin() {  # psql as the superuser: peer auth on the local socket, else TCP
    if id postgres >/dev/null 2>&1 && as_root true 2>/dev/null; then
        as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"
    else
        psql -X -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 "$@"
    fi
}

pg_novalite_ok() {
    PGPASSWORD=novalite PGCONNECT_TIMEOUT=3 psql -X -q -h 127.0.0.1 -U novalite -d test \
        -Atc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgresql() {
    if [ -n "${NOVALITE_TEST_PG_URL:-}" ]; then
        log "PostgreSQL: using NOVALITE_TEST_PG_URL as given"; return
    fi
    if port_open 5432; then
        log "PostgreSQL: running"
    else
        if ! ls -d /etc/postgresql/*/ >/dev/null 2>&1 || ! command -v psql >/dev/null; then
            apt_install postgresql postgresql-client
        fi
        local ver
        ver=$(ls /etc/postgresql | sort -V | tail -n 1)
        if [ ! -d "/etc/postgresql/$ver/main" ]; then
            as_root pg_createcluster "$ver" main >/dev/null
        fi
        log "PostgreSQL $ver: starting"
        if has_systemd; then
            as_root systemctl start "postgresql@$ver-main"
        else
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
        fi
        wait_port 5432 60 PostgreSQL
        log "PostgreSQL: started"
    fi
    command -v psql >/dev/null || apt_install postgresql-client
    if pg_novalite_ok; then log "PostgreSQL: role novalite and database test ok"; return; fi
    log "PostgreSQL: creating role novalite and database test"
    pg_admin -d postgres <<'SQL'
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'novalite') THEN
        ALTER ROLE novalite LOGIN CREATEDB PASSWORD 'novalite';
    ELSE
        CREATE ROLE novalite LOGIN CREATEDB PASSWORD 'novalite';
    END IF;
END
$$;
SELECT 'CREATE DATABASE test' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'test')
\gexec
GRANT ALL ON DATABASE test TO novalite;
SQL
    pg_admin -d test -c 'GRANT ALL ON SCHEMA public TO novalite'
    pg_novalite_ok || die "PostgreSQL: novalite still cannot log in over TCP with its \
password; check pg_hba.conf (host all all 127.0.0.1/32 scram-sha-256 or md5)"
}

# ------------------------------------------------------------------ MariaDB/MySQL

mysql_client() { command -v mariadb || command -v mysql; }

my_novalite_ok() {
    "$(mysql_client)" --connect-timeout=3 -h 127.0.0.1 -P 3306 -u novalite -pnovalite \
        -e 'SELECT 1' test >/dev/null 2>&1
}

my_admin() {  # root: unix_socket auth as OS root on the socket, else TCP without password
    local client
    client=$(mysql_client)
    if as_root "$client" -u root -e 'SELECT 1' >/dev/null 2>&1; then
        as_root "$client" -u root "$@"
    else
        "$client" -h 127.0.0.1 -P 3306 -u root "$@"
    fi
}

ensure_mariadb() {
    if [ -n "${NOVALITE_TEST_MYSQL_URL:-}" ]; then
        log "MariaDB: using NOVALITE_TEST_MYSQL_URL as given"; return
    fi
    if port_open 3306; then
        log "MariaDB: running"
    else
        if [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
            apt_install mariadb-server mariadb-client
        fi
        log "MariaDB: starting"
        if has_systemd; then
            as_root systemctl start mariadb
        else
            local daemon=/usr/sbin/mariadbd
            [ -x "$daemon" ] || daemon=/usr/sbin/mysqld
            as_root install -d -o mysql -g mysql -m 755 /run/mysqld
            if [ ! -d /var/lib/mysql/mysql ]; then
                local installer
                installer=$(command -v mariadb-install-db || command -v mysql_install_db)
                as_root "$installer" --user=mysql --datadir=/var/lib/mysql >/dev/null
            fi
            as_root start-stop-daemon --start --oknodo --background --exec "$daemon" \
                -- --user=mysql
        fi
        wait_port 3306 60 MariaDB
        log "MariaDB: started"
    fi
    [ -n "$(mysql_client)" ] || apt_install mariadb-client
    if my_novalite_ok; then log "MariaDB: user novalite and database test ok"; return; fi
    log "MariaDB: creating user novalite and database test"
    my_admin <<'SQL'
CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'novalite'@'localhost' IDENTIFIED BY 'novalite';
CREATE USER IF NOT EXISTS 'novalite'@'127.0.0.1' IDENTIFIED BY 'novalite';
ALTER USER 'novalite'@'localhost' IDENTIFIED BY 'novalite';
ALTER USER 'novalite'@'127.0.0.1' IDENTIFIED BY 'novalite';
GRANT ALL PRIVILEGES ON `test`.* TO 'novalite'@'localhost', 'novalite'@'127.0.0.1';
GRANT ALL PRIVILEGES ON `novalite\_%`.* TO 'novalite'@'localhost', 'novalite'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
    my_novalite_ok || die "MariaDB: novalite still cannot log in over TCP"
}

# ---------------------------------------------------------------------------------

services=("$@")
[ "${#services[@]}" -gt 0 ] || services=(postgresql mariadb rabbitmq)
for service in "${services[@]}"; do
    case "$service" in
        postgresql|postgres|pg) ensure_postgresql ;;
        mariadb|mysql) ensure_mariadb ;;
        rabbitmq|rabbit) ensure_rabbitmq ;;
        *) die "unknown service $service (postgresql, mariadb, rabbitmq)" ;;
    esac
done
