# A throw-away PostgreSQL cluster on 127.0.0.1 for tests. Sourced; sets POSTGRES_PORT and POSTGRES_DIR.

postgres_bin() {
  local bin
  bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || { echo "error: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
  echo "$bin"
}

# Runs a server binary as the owner of the data directory: initdb and postgres refuse to run as root.
postgres_run() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

postgres_free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  echo "error: no free port found for PostgreSQL" >&2
  return 1
}

postgres_start() {
  local bin
  bin=$(postgres_bin)
  POSTGRES_DIR=$(mktemp -d /tmp/crm-security-pg.XXXXXX)
  POSTGRES_PORT=$(postgres_free_port)
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$POSTGRES_DIR"
  postgres_run "$bin/initdb" -D "$POSTGRES_DIR/data" -U postgres --auth=trust --no-sync -E UTF8 >"$POSTGRES_DIR/initdb.log" 2>&1 || {
    cat "$POSTGRES_DIR/initdb.log" >&2
    return 1
  }
  # fsync off: the cluster is thrown away after the run, durability buys nothing here.
  postgres_run "$bin/pg_ctl" -D "$POSTGRES_DIR/data" -l "$POSTGRES_DIR/server.log" -w -t 60 \
    -o "-p $POSTGRES_PORT -c listen_addresses=127.0.0.1 -k $POSTGRES_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || {
    cat "$POSTGRES_DIR/server.log" >&2
    return 1
  }
  export POSTGRES_PORT POSTGRES_DIR
}

postgres_version() {
  "$(postgres_bin)/postgres" --version | awk '{print $3}'
}

postgres_stop() {
  [ -n "${POSTGRES_DIR:-}" ] && [ -d "$POSTGRES_DIR/data" ] || return 0
  postgres_run "$(postgres_bin)/pg_ctl" -D "$POSTGRES_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$POSTGRES_DIR"
}
