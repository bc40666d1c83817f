#!/usr/bin/env bash
# Issue 17's ingestion load run against the real service (Release build, fresh database, demo data): 16 senders post
# batches of 500 contract events as fast as the service takes them while probe clients time token, check and health
# requests; then the same rows are written straight into a copy of the events table (PostgreSQL binary COPY, SQLite
# plain 500-row transactions). One run prints accepted events/s, that floor, their ratio, and the probes' p99 idle and
# during ingestion, each phase with the load average; and the same ratio per CPU-second of the service, the database
# server and the load generator together (on a shared machine the wall-clock ratio also measures the scheduler).
# Scoring lag: from each batch's 2xx until its events are scored (read from the database), p50/p99, the backlog at the
# end and how long it took to drain; finding lag: an event that must raise a finding planted every 5 s, from its 2xx
# until the findings API lists it. Measured while saturating, then at paced fractions of the saturating rate (PACED).
#
#   bench/LoadRun/run-ingest.sh [sqlite|postgres] [seconds] [senders] [hosts]     defaults: sqlite 30 16 1
#
# hosts=2 (PostgreSQL only): two service processes on the same database, distinct ports and instance ids, the
# senders spread over both; probes and the findings API on the first.
# PACED="0.25 0.5 0.75" (the default) are the paced phases, as fractions of the saturating rate; PACED="" skips them.
# SERVER_SOURCE=/path/to/a/checkout measures another tree's service (a before/after comparison) with this load run.
# INGEST_SETTINGS="AuditAnalyzer__Live__MaxConcurrentBatches=4 ..." adds settings to the service's environment.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
provider=${1:-sqlite}
seconds=${2:-30}
senders=${3:-16}
hosts=${4:-1}
port=${BENCH_PORT:-5192}
paced=${PACED-0.25 0.5 0.75}
if [ "$hosts" != 1 ] && { [ "$hosts" != 2 ] || [ "$provider" != postgres ]; }; then
  echo "hosts: 1, or 2 on postgres" >&2
  exit 2
fi
source_tree=${SERVER_SOURCE:-$root}

deps_ensure_apt sqlite3
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
work=$(mktemp -d /tmp/crm-ingest-run.XXXXXX)
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  [ "$provider" = postgres ] && postgres_stop
  cp "$work"/server-*.log "$root/artifacts/bench/" 2>/dev/null # kept for a look after the run
  rm -rf "$work"
}
trap cleanup EXIT

server="$root/artifacts/bench/ingest-server-$(printf '%s' "$source_tree" | md5sum | cut -c1-8)"
dotnet build "$source_tree/src/Server" -c Release -o "$server" -v q -nologo >/dev/null
dotnet build bench/LoadRun -c Release -o "$root/artifacts/bench/loadrun" -v q -nologo >/dev/null

case "$provider" in
  sqlite)
    database=(Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/security.db")
    direct="Data Source=$work/security.db"
    ;;
  postgres)
    # shellcheck source=scripts/lib/postgres.sh
    . "$root/scripts/lib/postgres.sh"
    postgres_start
    connection="Host=127.0.0.1;Port=$POSTGRES_PORT;Username=postgres;Database=postgres"
    database=(Database__Provider=PostgreSql "Database__ConnectionString=$connection")
    direct=$connection
    ;;
  *) echo "usage: $0 [sqlite|postgres] [seconds] [senders]" >&2; exit 2 ;;
esac

urls=()
for host in $(seq 1 "$hosts"); do
  host_port=$((port + host - 1))
  if curl -s -o /dev/null "http://127.0.0.1:$host_port/"; then
    echo "port $host_port is taken by another process (another load run?): set BENCH_PORT" >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # INGEST_SETTINGS is a list of NAME=value words
  env ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
    Identity__DemoMode=true Identity__AllowHttp=true AuditAnalyzer__DemoHistory__Enabled=false \
    Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
    AuditAnalyzer__Live__InstanceId="bench-host-$host" "${database[@]}" ${INGEST_SETTINGS:-} \
    dotnet "$server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$host_port" >"$work/server-$host.log" 2>&1 &
  server_pids+=($!)
  urls+=("http://127.0.0.1:$host_port")
  # One after the other: the first creates the schema and seeds the demo data.
  ready=""
  for _ in $(seq 1 900); do
    curl -fs "http://127.0.0.1:$host_port/health/ready" >/dev/null 2>&1 && { ready=1; break; }
    kill -0 "${server_pids[-1]}" 2>/dev/null || { cat "$work/server-$host.log" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$ready" ] || { echo "host $host not ready after 180 s:" >&2; tail -n 20 "$work/server-$host.log" >&2; exit 1; }
done

# Decision checks are made for the demo sales rep.
if [ "$provider" = sqlite ]; then
  user=$(sqlite3 "$work/security.db" "select Id from AspNetUsers where UserName = 'alice'")
else
  user=$(postgres_run "$(postgres_bin)/psql" -h "$POSTGRES_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres -Atc "select \"Id\" from \"AspNetUsers\" where \"UserName\" = 'alice'")
fi
echo "server: $source_tree ($(git -C "$source_tree" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")), $hosts host(s), $(nproc) cores, $(date -u +%FT%TZ)"
dotnet "$root/artifacts/bench/loadrun/CrmSecurity.LoadRun.dll" ingest --urls "$(IFS=,; echo "${urls[*]}")" --fractions "$(echo $paced | tr ' ' ,)" \
  --provider "$provider" --db "$direct" --user "$user" --seconds "$seconds" --senders "$senders" --batch 500 \
  --floor-writers "$([ "$provider" = postgres ] && echo 4 || echo 1)" --server-pid "$(IFS=,; echo "${server_pids[*]}")" \
  --db-pid "$([ "$provider" = postgres ] && head -n1 "$POSTGRES_DIR/data/postmaster.pid" || echo 0)"
