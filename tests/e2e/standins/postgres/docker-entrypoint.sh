#!/bin/bash
# Mirrors the behaviour of the official image's entrypoint that compose.yaml
# depends on; nothing more.
set -euo pipefail

if [ "${1:-postgres}" != "postgres" ]; then
    exec "$@"
fi

# POSTGRES_PASSWORD_FILE (Docker and Swarm secrets), as the official image.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set" >&2
        exit 1
    fi
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: POSTGRES_PASSWORD is not set (the official image refuses this too)" >&2
    exit 1
fi

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        db_ident=${POSTGRES_DB//\"/\"\"}
        echo "CREATE DATABASE \"$db_ident\";" \
            | as_postgres postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    echo "stand-in: initialised $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
fi

shift || true
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
