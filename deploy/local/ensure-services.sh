#!/bin/bash
# Make sure the RabbitMQ (127.0.0.1:5672) and PostgreSQL (127.0.0.1:5432) that the tests use are up:
# reuse them when they run, start them when installed but stopped. Every wait is bounded.
set -euo pipefail
AMQP_PORT=${AMQP_PORT:-5672}
PG_PORT=${PG_PORT:-5432}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # wait_port PORT SECONDS WHAT
  local n=$(( $2 * 10 ))
  until port_open "$1"; do
    n=$((n - 1)); [ $n -gt 0 ] || { echo "ensure-services: $3 did not open port $1 within $2 s" >&2; exit 1; }
    sleep 0.1
  done
}

if ! port_open "$PG_PORT"; then
  cluster=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$cluster" ] || { echo "ensure-services: PostgreSQL is installed but has no cluster in /etc/postgresql" >&2; exit 1; }
  echo "ensure-services: starting PostgreSQL $cluster"
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
  wait_port "$PG_PORT" 60 PostgreSQL
fi
# Tests connect over TCP as postgres/postgres. Under trust auth the password is ignored; on a fresh
# Debian cluster (scram for 127.0.0.1) it must exist, so set it once through the local socket.
if ! PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
  PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc 'SELECT 1' >/dev/null \
    || { echo "ensure-services: cannot log in to PostgreSQL on 127.0.0.1:$PG_PORT as postgres" >&2; exit 1; }
fi

if ! port_open "$AMQP_PORT"; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached
  wait_port "$AMQP_PORT" 90 RabbitMQ
  timeout 60 rabbitmqctl -q await_startup >/dev/null 2>&1 || true
fi
