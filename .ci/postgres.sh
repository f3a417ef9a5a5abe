#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a cluster in a
# temporary directory owned by the `postgres` user (initdb refuses to run as root), on a
# loopback port and its own socket directory, so that nothing depends on a system service.
#
#   source .ci/postgres.sh && postgres_start   # exports SCENE_QR_TEST_POSTGRES
#   postgres_stop                               # stops it and removes the directory
#
# Installs Debian's `postgresql` package when its binaries are missing.

postgres_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

postgres_start() {
  local bin port
  if ! bin=$(postgres_bin); then
    echo "installing postgresql for the tests against PostgreSQL"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(postgres_bin)
  fi
  POSTGRES_DIR=$(mktemp -d /tmp/scene-qr-postgres.XXXXXX)
  chown postgres: "$POSTGRES_DIR"
  # A free port: the kernel picks one for a listener that is closed at once.
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  runuser -u postgres -- "$bin/initdb" -D "$POSTGRES_DIR/data" -A trust -U postgres \
    --encoding UTF8 --locale C.UTF-8 >"$POSTGRES_DIR/initdb.log"
  # Tests create a database each and run replicas with pools of their own.
  runuser -u postgres -- "$bin/pg_ctl" -D "$POSTGRES_DIR/data" -l "$POSTGRES_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $POSTGRES_DIR -c max_connections=400 -c fsync=on" \
    start >/dev/null
  POSTGRES_BIN=$bin
  export SCENE_QR_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port"
}

postgres_stop() {
  if [ -n "${POSTGRES_DIR:-}" ] && [ -d "$POSTGRES_DIR/data" ]; then
    runuser -u postgres -- "$POSTGRES_BIN/pg_ctl" -D "$POSTGRES_DIR/data" -m fast -w stop >/dev/null || true
    rm -rf "$POSTGRES_DIR"
  fi
}
