#!/bin/sh
# The read replica's entrypoint: on first start (an empty data directory) copy the primary with
# pg_basebackup -R (which writes primary_conninfo and standby.signal, so PostgreSQL starts as a
# hot standby streaming from it), then hand over to the official image's entrypoint, which
# finds the data directory initialised and only starts the server (as postgres).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # The primary answers on TCP only once its first-start initialisation (and the replication
  # role, docker/postgres-primary-init.sh) is done.
  until pg_isready -q -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}"; do
    echo "replica: waiting for the primary at $PRIMARY_HOST"
    sleep 1
  done
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  PGPASSWORD="$REPLICATION_PASSWORD" gosu postgres pg_basebackup \
    -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}" -U "$REPLICATION_USER" \
    -D "$PGDATA" -R -X stream --checkpoint=fast
fi
exec docker-entrypoint.sh postgres -c hot_standby=on
