#!/bin/sh
# Runs once, when the primary's data directory is first initialised (the official image runs
# /docker-entrypoint-initdb.d/*.sh as postgres): the role the read replica streams WAL as, and
# the pg_hba line that lets it connect for replication (the image's "host all all all" line
# does not cover replication connections). wal_level=replica and max_wal_senders are
# PostgreSQL 15's defaults; docker-compose.yml keeps some WAL for a replica that falls behind.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="$REPLICATION_USER" -v password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication $REPLICATION_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
