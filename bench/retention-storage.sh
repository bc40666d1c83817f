#!/usr/bin/env bash
# Bytes on disk per stored live event, for the retention arithmetic in docs/audit-analyzer.md ("Retention"): starts the
# service once on a fresh database so it creates its tables and indexes as it does for an operator, stops it, then
# inserts N contract events (the load run's shape: read of a contact, record id, source IP; 32-character user ids
# spread over 50,000 users) straight into analyzer_live_events with every index in place, and prints the growth of
# the database (SQLite: the file; PostgreSQL: pg_total_relation_size, i.e. heap, TOAST and indexes).
#
#   bench/retention-storage.sh [sqlite|postgres] [events]      defaults: sqlite 1000000
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
provider=${1:-sqlite}
events=${2:-1000000}
port=${BENCH_PORT:-5193}

deps_ensure_apt sqlite3
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
work=$(mktemp -d /tmp/crm-retention-storage.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  wait 2>/dev/null
  [ "$provider" = postgres ] && postgres_stop
  rm -rf "$work"
}
trap cleanup EXIT

server="$root/artifacts/bench/retention-server"
dotnet build src/Server -c Release -o "$server" -v q -nologo >/dev/null

case "$provider" in
  sqlite)
    database=(Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/security.db")
    ;;
  postgres)
    # shellcheck source=scripts/lib/postgres.sh
    . "$root/scripts/lib/postgres.sh"
    postgres_start
    database=(Database__Provider=PostgreSql "Database__ConnectionString=Host=127.0.0.1;Port=$POSTGRES_PORT;Username=postgres;Database=postgres")
    psql() { postgres_run "$(postgres_bin)/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"; }
    ;;
  *) echo "usage: $0 [sqlite|postgres] [events]" >&2; exit 2 ;;
esac

# The service creates its tables at start; it is stopped before the rows go in, so nothing else writes meanwhile.
env ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
  Identity__DemoMode=false Identity__AllowHttp=true AuditAnalyzer__DemoHistory__Enabled=false "${database[@]}" \
  dotnet "$server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

# One row as the service stores it: key "client:event_id", the line as sent, partition 0-15, times in .NET ticks.
start=$(date +%s.%N)
if [ "$provider" = sqlite ]; then
  before=$(stat -c %s "$work/security.db")
  sqlite3 "$work/security.db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $events)
INSERT INTO analyzer_live_events (event_key, client_id, user_id, partition, timestamp_ticks, line, scored, received_ticks)
SELECT 'demo-crm:ev-' || i, 'demo-crm', u, abs(random()) % 16, 639000000000000000 + i * 10000000,
       '{"event_id":"ev-' || i || '","timestamp":"2026-12-07T12:00:00.0000000+00:00","user_id":"' || u ||
       '","action":"read","entity":"contact","record_id":"' || (abs(random()) % 100000) || '","source_ip":"10.0.' ||
       (abs(random()) % 256) || '.' || (abs(random()) % 256) || '"}', 1, 639000000000000000 + i * 10000000
FROM (SELECT i, lower(hex(substr(sha3(i % 50000), 1, 16))) AS u FROM n);
PRAGMA wal_checkpoint(TRUNCATE);
SQL
  after=$(stat -c %s "$work/security.db")
else
  before=$(psql -c "SELECT pg_total_relation_size('analyzer_live_events')")
  psql <<SQL
INSERT INTO analyzer_live_events (event_key, client_id, user_id, partition, timestamp_ticks, line, scored, received_ticks)
SELECT 'demo-crm:ev-' || i, 'demo-crm', u, (random() * 15)::int, 639000000000000000 + i::bigint * 10000000,
       '{"event_id":"ev-' || i || '","timestamp":"2026-12-07T12:00:00.0000000+00:00","user_id":"' || u ||
       '","action":"read","entity":"contact","record_id":"' || (random() * 99999)::int || '","source_ip":"10.0.' ||
       (random() * 255)::int || '.' || (random() * 255)::int || '"}', true, 639000000000000000 + i::bigint * 10000000
FROM (SELECT i, md5((i % 50000)::text) AS u FROM generate_series(1, $events) AS i) AS rows;
VACUUM ANALYZE analyzer_live_events;
SQL
  after=$(psql -c "SELECT pg_total_relation_size('analyzer_live_events')")
fi
seconds=$(echo "$(date +%s.%N) - $start" | bc)
bytes=$((after - before))
echo "provider: $provider, events: $events, $(nproc) cores, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
echo "bytes: $bytes ($(echo "scale=1; $bytes / 1048576" | bc) MiB), per event: $((bytes / events)) B, per million events: $(echo "scale=0; $bytes * 1000000 / $events / 1048576" | bc) MiB, insert took ${seconds}s"
